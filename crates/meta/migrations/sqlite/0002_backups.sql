-- Backups and the progress of long operations (SQLite).

CREATE TABLE backups (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    project_id        TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    description       TEXT,
    instance_id       TEXT    NOT NULL,
    parent_id         TEXT,
    status            TEXT    NOT NULL,
    datastore         TEXT    NOT NULL,
    datastore_version TEXT    NOT NULL,
    strategy          TEXT    NOT NULL,
    location          TEXT,
    object_key        TEXT    NOT NULL,
    plain_bytes       INTEGER,
    stored_bytes      INTEGER,
    checksum          TEXT,
    wrapped_key       TEXT    NOT NULL,
    key_id            TEXT    NOT NULL,
    codec             TEXT    NOT NULL,
    info              TEXT    NOT NULL,
    fault             TEXT,
    created           INTEGER NOT NULL,
    updated           INTEGER NOT NULL,
    deleted           BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX backups_project_seq ON backups (project_id, seq);
CREATE INDEX backups_instance ON backups (instance_id);
CREATE INDEX backups_parent ON backups (parent_id);

-- One row per running backup or restore, keyed by the backup or instance id.
CREATE TABLE progress (
    subject          TEXT    PRIMARY KEY,
    phase            TEXT    NOT NULL,
    bytes_done       INTEGER NOT NULL,
    bytes_total      INTEGER,
    bytes_per_second INTEGER NOT NULL,
    stored_bytes     INTEGER NOT NULL,
    updated          INTEGER NOT NULL
);
