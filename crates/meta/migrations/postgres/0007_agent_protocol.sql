-- The agent protocol version an instance's agent announced in its last
-- heartbeat (NULL: not heard yet). The control plane sends an agent only
-- requests its version has.

ALTER TABLE instances ADD COLUMN agent_protocol BIGINT;
