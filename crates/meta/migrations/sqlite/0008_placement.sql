-- The compute host an instance's server was placed on (NULL: the
-- local-process driver, or not placed yet). Recorded before the host is
-- asked to create the server, so a resumed create goes to the same host.

ALTER TABLE instances ADD COLUMN compute_host TEXT;
