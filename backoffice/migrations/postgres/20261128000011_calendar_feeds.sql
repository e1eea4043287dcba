-- One calendar feed (iCalendar URL) per mediator: only the SHA-256 (hex) of its token is kept.
-- Keep the same meaning as ../sqlite/20261128000011_calendar_feeds.sql.
CREATE TABLE mediator_feeds (
    mediator_id  TEXT PRIMARY KEY REFERENCES mediators (id),
    token_hash   TEXT NOT NULL UNIQUE,
    issued_at    BIGINT NOT NULL
);
