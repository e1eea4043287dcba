-- The agenda: meeting rooms of the organism's offices (sedi) and the meetings of cases, in a
-- room or online. Keep the same meaning as ../postgres/20261128000009_agenda.sql.
CREATE TABLE meeting_places (
    id           TEXT PRIMARY KEY,
    organism_id  TEXT REFERENCES organisms (id),
    sede         TEXT NOT NULL,
    room         TEXT NOT NULL,
    UNIQUE (organism_id, sede, room)
);

-- Times are Unix milliseconds; a meeting occupies [starts_at, ends_at).
CREATE TABLE meetings (
    id            TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES cases (id),
    starts_at     INTEGER NOT NULL,
    ends_at       INTEGER NOT NULL CHECK (ends_at > starts_at),
    place_id      TEXT REFERENCES meeting_places (id),
    mediator_id   TEXT REFERENCES mediators (id),
    created_at    INTEGER NOT NULL,
    cancelled_at  INTEGER
);
CREATE INDEX meetings_mediator ON meetings (mediator_id, starts_at);
CREATE INDEX meetings_place ON meetings (place_id, starts_at);
