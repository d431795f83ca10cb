-- Per-project quota limits that differ from the configured defaults (postgres).

CREATE TABLE quotas (
    project_id  TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    hard_limit  BIGINT  NOT NULL,
    PRIMARY KEY (project_id, resource)
);

CREATE INDEX backups_project_live ON backups (project_id, deleted);
