-- Configuration groups and the instances they are attached to (postgres).

CREATE TABLE configurations (
    seq               BIGSERIAL UNIQUE,
    id                TEXT    PRIMARY KEY,
    project_id        TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    description       TEXT,
    datastore         TEXT    NOT NULL,
    datastore_version TEXT    NOT NULL,
    vals              TEXT    NOT NULL,
    created           BIGINT NOT NULL,
    updated           BIGINT NOT NULL,
    deleted           BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX configurations_project_seq ON configurations (project_id, seq);

ALTER TABLE instances ADD COLUMN configuration_id TEXT;
CREATE INDEX instances_configuration ON instances (configuration_id);
