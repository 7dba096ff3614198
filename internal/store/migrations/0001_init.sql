-- Berth's store: one schema for SQLite and PostgreSQL. Only portable types
-- (TEXT, BIGINT, INTEGER); times are Unix milliseconds; sealed columns hold
-- AES-GCM ciphertext made by package secretbox.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL UNIQUE,
    region     TEXT NOT NULL,
    settings   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE computes (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    doc          TEXT NOT NULL,
    secrets      TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, name_key)
);

CREATE TABLE operations (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL,
    workspace_name   TEXT NOT NULL,
    target_type      TEXT NOT NULL,
    target_id        TEXT NOT NULL,
    target_name      TEXT NOT NULL,
    kind             TEXT NOT NULL,
    state            TEXT NOT NULL,
    step             TEXT NOT NULL DEFAULT '',
    step_index       INTEGER NOT NULL DEFAULT 0,
    attempt          INTEGER NOT NULL DEFAULT 0,
    params           TEXT NOT NULL DEFAULT '',
    scratch          TEXT NOT NULL DEFAULT '',
    error            TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT NOT NULL DEFAULT '',
    lease_expires    BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT NOT NULL DEFAULT 0,
    finished_at      BIGINT NOT NULL DEFAULT 0,
    updated_at       BIGINT NOT NULL
);

-- One active operation per target, enforced by the database itself so that
-- two servers cannot both start one.
CREATE UNIQUE INDEX operations_one_active ON operations (target_id)
    WHERE state IN ('Pending', 'Running');
CREATE INDEX operations_claim ON operations (state, lease_expires);
CREATE INDEX operations_target ON operations (target_id, created_at);

CREATE TABLE operation_events (
    operation_id TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    time         BIGINT NOT NULL,
    level        TEXT NOT NULL,
    message      TEXT NOT NULL,
    PRIMARY KEY (operation_id, seq)
);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    hash         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    workspace    TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0,
    revoked_at   BIGINT NOT NULL DEFAULT 0
);
