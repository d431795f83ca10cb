-- Task leases (postgres): the task manager that runs a task holds it until
-- `lease_expires` (epoch milliseconds, the database's clock) and renews it
-- while the task runs; NULL owner = unclaimed. Another task manager may
-- claim the task once the lease has expired.

ALTER TABLE tasks ADD COLUMN lease_owner TEXT;
ALTER TABLE tasks ADD COLUMN lease_expires BIGINT;
