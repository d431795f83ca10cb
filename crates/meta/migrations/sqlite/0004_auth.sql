-- Built-in authentication (sqlite): projects and API tokens, stored as the
-- SHA-256 of the token (the token itself is shown once, when it is made).

CREATE TABLE projects (
    id      TEXT PRIMARY KEY,
    created INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id          TEXT    PRIMARY KEY,
    token_hash  TEXT    NOT NULL UNIQUE,
    project_id  TEXT REFERENCES projects (id),
    is_admin    BOOLEAN NOT NULL,
    description TEXT,
    created     INTEGER NOT NULL
);
