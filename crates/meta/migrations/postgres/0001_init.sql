-- Initial schema (PostgreSQL). Timestamps are epoch milliseconds, as in the
-- SQLite schema, so both backends decode rows with the same code.

CREATE TABLE flavors (
    id      BIGINT PRIMARY KEY,
    name    TEXT   NOT NULL,
    ram_mb  BIGINT NOT NULL,
    vcpus   BIGINT NOT NULL,
    disk_gb BIGINT NOT NULL
);

CREATE TABLE datastores (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    default_version TEXT
);

CREATE TABLE datastore_versions (
    id           TEXT    PRIMARY KEY,
    datastore_id TEXT    NOT NULL REFERENCES datastores (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    manager      TEXT    NOT NULL,
    active       BOOLEAN NOT NULL,
    UNIQUE (datastore_id, name)
);

CREATE TABLE instances (
    seq               BIGSERIAL UNIQUE,
    id                TEXT    PRIMARY KEY,
    project_id        TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    operating_status  TEXT    NOT NULL,
    flavor_id         BIGINT  NOT NULL,
    datastore         TEXT    NOT NULL,
    datastore_version TEXT    NOT NULL,
    volume_size_gb    BIGINT  NOT NULL,
    volume_used_bytes BIGINT,
    ip                TEXT,
    fault_message     TEXT,
    fault_created     BIGINT,
    created           BIGINT  NOT NULL,
    updated           BIGINT  NOT NULL,
    last_heartbeat    BIGINT,
    deleted           BOOLEAN NOT NULL DEFAULT FALSE
);

-- Two live instances never share an address; a deleted one frees it.
CREATE UNIQUE INDEX instances_live_ip ON instances (ip) WHERE deleted = FALSE;
CREATE INDEX instances_project_seq ON instances (project_id, seq);
CREATE INDEX instances_flavor ON instances (flavor_id);

CREATE TABLE tasks (
    id          TEXT   PRIMARY KEY,
    kind        TEXT   NOT NULL,
    instance_id TEXT   NOT NULL,
    state       TEXT   NOT NULL,
    step        TEXT   NOT NULL,
    attempts    BIGINT NOT NULL,
    payload     TEXT   NOT NULL,
    error       TEXT,
    created     BIGINT NOT NULL,
    updated     BIGINT NOT NULL
);

CREATE INDEX tasks_state_created ON tasks (state, created);
CREATE INDEX tasks_instance ON tasks (instance_id);
