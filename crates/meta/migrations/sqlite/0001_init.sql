-- Initial schema (SQLite). Timestamps are epoch milliseconds, as in the
-- PostgreSQL schema, so both backends decode rows with the same code.

CREATE TABLE flavors (
    id      INTEGER PRIMARY KEY,
    name    TEXT    NOT NULL,
    ram_mb  INTEGER NOT NULL,
    vcpus   INTEGER NOT NULL,
    disk_gb INTEGER NOT NULL
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

-- AUTOINCREMENT is only allowed on the INTEGER PRIMARY KEY in SQLite, so
-- `seq` is the key here and `id` is UNIQUE; the PostgreSQL schema has the
-- same columns with `id` as the key. Either way `seq` gives creation order.
CREATE TABLE instances (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    project_id        TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    operating_status  TEXT    NOT NULL,
    flavor_id         INTEGER NOT NULL,
    datastore         TEXT    NOT NULL,
    datastore_version TEXT    NOT NULL,
    volume_size_gb    INTEGER NOT NULL,
    volume_used_bytes INTEGER,
    ip                TEXT,
    fault_message     TEXT,
    fault_created     INTEGER,
    created           INTEGER NOT NULL,
    updated           INTEGER NOT NULL,
    last_heartbeat    INTEGER,
    deleted           BOOLEAN NOT NULL DEFAULT FALSE
);

-- Two live instances never share an address; a deleted one frees it.
CREATE UNIQUE INDEX instances_live_ip ON instances (ip) WHERE deleted = FALSE;
CREATE INDEX instances_project_seq ON instances (project_id, seq);
CREATE INDEX instances_flavor ON instances (flavor_id);

CREATE TABLE tasks (
    id          TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    payload     TEXT    NOT NULL,
    error       TEXT,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL
);

CREATE INDEX tasks_state_created ON tasks (state, created);
CREATE INDEX tasks_instance ON tasks (instance_id);
