-- Documents of a case file (fascicolo), kept in the file store under `cases/<case id>/<id>`.
-- `shareable` = 0: for the mediator only; 1: the mediator may show it to the parties in a room.
-- Keep the same meaning as ../sqlite/20261128000005_case_documents.sql.
CREATE TABLE case_documents (
    id           TEXT PRIMARY KEY,
    case_id      TEXT NOT NULL REFERENCES cases (id),
    name         TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL CHECK (size_bytes > 0),
    sha256       TEXT NOT NULL,
    shareable    BIGINT NOT NULL CHECK (shareable IN (0, 1)),
    added_at     BIGINT NOT NULL
);
CREATE INDEX case_documents_case ON case_documents (case_id);
