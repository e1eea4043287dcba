-- API tokens of integrations, per body (organismo): only the SHA-256 (hex) of the secret is
-- kept. A token acts for its creator, limited to its scopes (permission codes, space-separated).
-- Keep the same meaning as ../postgres/20261205000020_api_tokens.sql.
CREATE TABLE api_tokens (
    id           TEXT NOT NULL PRIMARY KEY,
    organism_id  TEXT REFERENCES organisms (id),
    created_by   TEXT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_tokens_organism ON api_tokens (organism_id);
