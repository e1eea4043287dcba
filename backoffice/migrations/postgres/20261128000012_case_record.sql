-- The full record of a mediation case (R-CASE-1): how it came (type), what it is about
-- (subject, value), when the other side was told and how it answered, who takes part (parties
-- with their lawyers and representatives, the CTU), money in and out, and how it ended.
-- Mediators may have a back-office login (a mediator sees only their cases) and an address for
-- invitations. Keep the same meaning as ../sqlite/20261128000012_case_record.sql.
ALTER TABLE cases ADD COLUMN filed_on TEXT;
ALTER TABLE cases ADD COLUMN kind TEXT
    CHECK (kind IN ('mandatory', 'court_ordered', 'contract_clause', 'voluntary'));
-- A code of mediators::SUBJECTS.
ALTER TABLE cases ADD COLUMN subject TEXT;
ALTER TABLE cases ADD COLUMN subject_note TEXT;
-- In euro cents; NULL with value_indeterminate = 1 for a value that cannot be determined.
ALTER TABLE cases ADD COLUMN value_cents BIGINT CHECK (value_cents >= 0);
ALTER TABLE cases ADD COLUMN value_indeterminate BIGINT NOT NULL DEFAULT 0
    CHECK (value_indeterminate IN (0, 1));
ALTER TABLE cases ADD COLUMN communication_sent_on TEXT;
ALTER TABLE cases ADD COLUMN response TEXT NOT NULL DEFAULT 'pending'
    CHECK (response IN ('pending', 'accepted', 'refused'));
ALTER TABLE cases ADD COLUMN response_on TEXT;
ALTER TABLE cases ADD COLUMN outcome TEXT
    CHECK (outcome IN ('agreement', 'no_agreement', 'absent', 'withdrawn'));
ALTER TABLE cases ADD COLUMN closed_on TEXT;
-- The office (sede) of the organism that handles the case.
ALTER TABLE cases ADD COLUMN sede TEXT;

-- Who takes part in a case. A lawyer or representative acts for one party (represents) and is
-- on that party's side; the CTU has no side. Rows are never deleted: removed_at ends them.
CREATE TABLE case_parties (
    id          TEXT PRIMARY KEY,
    case_id     TEXT NOT NULL REFERENCES cases (id),
    person_id   TEXT NOT NULL REFERENCES people (id),
    role        TEXT NOT NULL CHECK (role IN ('party', 'lawyer', 'representative', 'expert')),
    side        TEXT CHECK (side IN ('istante', 'chiamata')),
    represents  TEXT REFERENCES case_parties (id),
    created_at  BIGINT NOT NULL,
    removed_at  BIGINT,
    CHECK ((role = 'expert') = (side IS NULL)),
    CHECK ((role IN ('lawyer', 'representative')) = (represents IS NOT NULL))
);
CREATE INDEX case_parties_case ON case_parties (case_id);
CREATE INDEX case_parties_person ON case_parties (person_id);

-- Income (fees paid by the parties) and expenses of a case, in euro cents.
CREATE TABLE case_ledger (
    id            TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL REFERENCES cases (id),
    direction     TEXT NOT NULL CHECK (direction IN ('income', 'expense')),
    amount_cents  BIGINT NOT NULL CHECK (amount_cents > 0),
    description   TEXT NOT NULL,
    on_date       TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX case_ledger_case ON case_ledger (case_id);

ALTER TABLE mediators ADD COLUMN user_id TEXT REFERENCES users (id);
ALTER TABLE mediators ADD COLUMN email TEXT;

-- Meetings: a version bumped at every change (the iCalendar SEQUENCE of invitations) and why
-- a meeting was cancelled.
ALTER TABLE meetings ADD COLUMN sequence BIGINT NOT NULL DEFAULT 0;
ALTER TABLE meetings ADD COLUMN cancel_reason TEXT;

-- The room member each participant of a case (or its mediator) is, once the case's room has
-- them: "participant:<case_parties id>" or "mediator:<mediators id>".
CREATE TABLE case_room_members (
    room_id          BIGINT NOT NULL REFERENCES rooms (id),
    participant_key  TEXT NOT NULL,
    member_id        BIGINT NOT NULL,
    PRIMARY KEY (room_id, participant_key)
);

-- What each role may do in an organism, where the administrator decided otherwise than the
-- built-in table (access::Role::default_allows). organism_key is '' for the installation.
CREATE TABLE role_permissions (
    organism_key  TEXT NOT NULL,
    role          TEXT NOT NULL,
    permission    TEXT NOT NULL,
    allowed       INTEGER NOT NULL CHECK (allowed IN (0, 1)),
    PRIMARY KEY (organism_key, role, permission)
);
