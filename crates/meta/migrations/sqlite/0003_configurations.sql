-- Configuration groups and the instances they are attached to (sqlite).

CREATE TABLE configurations (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT    NOT NULL UNIQUE,
    project_id        TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    description       TEXT,
    datastore         TEXT    NOT NULL,
    datastore_version TEXT    NOT NULL,
    vals              TEXT    NOT NULL,
    created           INTEGER NOT NULL,
    updated           INTEGER NOT NULL,
    deleted           BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX configurations_project_seq ON configurations (project_id, seq);

ALTER TABLE instances ADD COLUMN configuration_id TEXT;
CREATE INDEX instances_configuration ON instances (configuration_id);
