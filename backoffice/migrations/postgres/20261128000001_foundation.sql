-- Foundation: organisms, accounts, sessions, settings, audit log.
-- Keep the same meaning as ../sqlite/20261128000001_foundation.sql.

CREATE TABLE organisms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    is_demo     BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id                    TEXT PRIMARY KEY,
    organism_id           TEXT REFERENCES organisms (id),
    username              TEXT NOT NULL UNIQUE,
    display_name          TEXT NOT NULL,
    role                  TEXT NOT NULL,
    password_hash         TEXT NOT NULL,
    must_change_password  BIGINT NOT NULL DEFAULT 1,
    failed_logins         BIGINT NOT NULL DEFAULT 0,
    locked_until          BIGINT,
    active                BIGINT NOT NULL DEFAULT 1,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE audit_log (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             BIGINT NOT NULL,
    actor_user_id  TEXT,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    entity_type    TEXT NOT NULL,
    entity_id      TEXT NOT NULL,
    ip             TEXT
);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id);

CREATE TABLE audit_changes (
    audit_id      BIGINT NOT NULL REFERENCES audit_log (id),
    position      BIGINT NOT NULL,
    field         TEXT NOT NULL,
    before_value  TEXT,
    after_value   TEXT,
    PRIMARY KEY (audit_id, position)
);

-- The audit log is append-only: the database itself refuses to change or remove a record.
CREATE FUNCTION refuse_audit_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER audit_changes_append_only BEFORE UPDATE OR DELETE ON audit_changes
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
