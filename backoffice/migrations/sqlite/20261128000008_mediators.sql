-- Mediators of an organism, what they are qualified for, when they cannot take a case, whom
-- they must not mediate for, and who was appointed on each case (with the reason).
-- Keep the same meaning as ../postgres/20261128000008_mediators.sql.
CREATE TABLE mediators (
    id            TEXT PRIMARY KEY,
    organism_id   TEXT REFERENCES organisms (id),
    display_name  TEXT NOT NULL,
    -- Subject-matter codes (mediators::SUBJECTS), comma-separated.
    subjects      TEXT NOT NULL,
    active        INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at    INTEGER NOT NULL
);

-- Whole days, YYYY-MM-DD, both included.
CREATE TABLE mediator_unavailability (
    mediator_id  TEXT NOT NULL REFERENCES mediators (id),
    from_date    TEXT NOT NULL,
    to_date      TEXT NOT NULL,
    CHECK (from_date <= to_date)
);

-- People of the registry the mediator declared a conflict of interest with.
CREATE TABLE mediator_conflicts (
    mediator_id  TEXT NOT NULL REFERENCES mediators (id),
    person_id    TEXT NOT NULL REFERENCES people (id),
    PRIMARY KEY (mediator_id, person_id)
);

-- Every appointment, the latest of a case being the current one.
CREATE TABLE case_appointments (
    case_id       TEXT NOT NULL REFERENCES cases (id),
    mediator_id   TEXT NOT NULL REFERENCES mediators (id),
    appointed_at  INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    overridden    INTEGER NOT NULL CHECK (overridden IN (0, 1))
);
CREATE INDEX case_appointments_mediator ON case_appointments (mediator_id, appointed_at);
