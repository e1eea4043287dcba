-- Foundation: organisms, accounts, sessions, settings, audit log.
-- Keep the same meaning as ../postgres/20261128000001_foundation.sql.

CREATE TABLE organisms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    is_demo     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id                    TEXT PRIMARY KEY,
    organism_id           TEXT REFERENCES organisms (id),
    username              TEXT NOT NULL UNIQUE,
    display_name          TEXT NOT NULL,
    role                  TEXT NOT NULL,
    password_hash         TEXT NOT NULL,
    must_change_password  INTEGER NOT NULL DEFAULT 1,
    failed_logins         INTEGER NOT NULL DEFAULT 0,
    locked_until          INTEGER,
    active                INTEGER NOT NULL DEFAULT 1,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    actor_user_id  TEXT,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    entity_type    TEXT NOT NULL,
    entity_id      TEXT NOT NULL,
    ip             TEXT
);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id);

CREATE TABLE audit_changes (
    audit_id      INTEGER NOT NULL REFERENCES audit_log (id),
    position      INTEGER NOT NULL,
    field         TEXT NOT NULL,
    before_value  TEXT,
    after_value   TEXT,
    PRIMARY KEY (audit_id, position)
);

-- The audit log is append-only: the database itself refuses to change or remove a record.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_changes_no_update BEFORE UPDATE ON audit_changes
BEGIN SELECT RAISE(ABORT, 'audit_changes is append-only'); END;
CREATE TRIGGER audit_changes_no_delete BEFORE DELETE ON audit_changes
BEGIN SELECT RAISE(ABORT, 'audit_changes is append-only'); END;
