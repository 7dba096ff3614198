-- Endpoints: one scoring URI over several versions (docs/endpoints.md).
-- The document holds the versions and their traffic; secrets the sealed keys.
CREATE TABLE endpoints (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    compute_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    doc          TEXT NOT NULL,
    secrets      TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, name_key)
);
