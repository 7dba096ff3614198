-- Registered models: each registration of a name is a new version; the
-- artifact itself lives in the artifact store under artifact_key.
CREATE TABLE models (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    version      INTEGER NOT NULL,
    doc          TEXT NOT NULL,
    artifact_key TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, name_key, version)
);
