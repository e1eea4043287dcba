-- Rooms: a minimal case record, the durable state of mediation rooms, personal invite links.
-- Keep the same meaning as ../sqlite/20261128000002_rooms.sql.

-- A case (fascicolo). Minimal for now: the full record comes with the case work.
CREATE TABLE cases (
    id           TEXT PRIMARY KEY,
    organism_id  TEXT REFERENCES organisms (id),
    reference    TEXT NOT NULL,
    title        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (organism_id, reference)
);
-- NULLs are distinct in a UNIQUE constraint: cases without an organism need their own index.
CREATE UNIQUE INDEX cases_reference_without_organism ON cases (reference)
    WHERE organism_id IS NULL;

-- One mediation room per case: the settings and counters of rooms::RoomSnapshot. Ids are
-- random positive 63-bit numbers; times are Unix milliseconds.
CREATE TABLE rooms (
    id                     BIGINT PRIMARY KEY CHECK (id > 0),
    case_id                TEXT NOT NULL UNIQUE REFERENCES cases (id),
    case_ref               TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    lifetime_ms            BIGINT NOT NULL CHECK (lifetime_ms >= 0),
    capacity               BIGINT NOT NULL CHECK (capacity BETWEEN 1 AND 255),
    auto_admit             BIGINT NOT NULL CHECK (auto_admit IN (0, 1)),
    hold_when_no_mediator  BIGINT NOT NULL CHECK (hold_when_no_mediator IN (0, 1)),
    next_session           BIGINT NOT NULL CHECK (next_session >= 0),
    next_post              BIGINT NOT NULL CHECK (next_post >= 0)
);

-- Every member a room ever had (a room forgets nobody), and where each one is.
CREATE TABLE room_members (
    room_id           BIGINT NOT NULL REFERENCES rooms (id),
    member_id         BIGINT NOT NULL CHECK (member_id >= 0),
    role              TEXT NOT NULL CHECK (role IN ('mediator', 'party', 'lawyer',
                          'representative', 'expert', 'segreteria_observer')),
    side              TEXT,
    display_name      TEXT NOT NULL,
    invite_revoked    BIGINT NOT NULL CHECK (invite_revoked IN (0, 1)),
    location          TEXT NOT NULL CHECK (location IN ('waiting_to_enter',
                          'sent_to_waiting_room', 'held_for_mediator', 'in_session')),
    -- The session of `in_session`, or the previous one of `held_for_mediator`.
    location_session  BIGINT,
    PRIMARY KEY (room_id, member_id),
    CHECK ((location IN ('held_for_mediator', 'in_session')) = (location_session IS NOT NULL))
);

-- The plenary and every caucus. A session that leaves the room's snapshot is ended, never
-- deleted: its posts stay with the case.
CREATE TABLE room_sessions (
    room_id        BIGINT NOT NULL REFERENCES rooms (id),
    session_id     BIGINT NOT NULL CHECK (session_id >= 0),
    opened_at      BIGINT NOT NULL,
    timer_ends_at  BIGINT,
    ended_at       BIGINT,
    PRIMARY KEY (room_id, session_id)
);

-- Chat messages and shared files, numbered across the room; written once, never changed.
CREATE TABLE room_posts (
    room_id     BIGINT NOT NULL,
    seq         BIGINT NOT NULL CHECK (seq >= 0),
    session_id  BIGINT NOT NULL,
    sender_id   BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('chat', 'file')),
    chat_text   TEXT,
    file_ref    TEXT,
    file_name   TEXT,
    posted_at   BIGINT NOT NULL,
    PRIMARY KEY (room_id, seq),
    FOREIGN KEY (room_id, session_id) REFERENCES room_sessions (room_id, session_id),
    FOREIGN KEY (room_id, sender_id) REFERENCES room_members (room_id, member_id),
    CHECK ((kind = 'chat' AND chat_text IS NOT NULL AND file_ref IS NULL AND file_name IS NULL)
        OR (kind = 'file' AND chat_text IS NULL AND file_ref IS NOT NULL
            AND file_name IS NOT NULL))
);
CREATE INDEX room_posts_session ON room_posts (room_id, session_id);

-- Who was in the session when a post was made: its only readers.
CREATE TABLE room_post_audience (
    room_id    BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    member_id  BIGINT NOT NULL,
    PRIMARY KEY (room_id, seq, member_id),
    FOREIGN KEY (room_id, seq) REFERENCES room_posts (room_id, seq),
    FOREIGN KEY (room_id, member_id) REFERENCES room_members (room_id, member_id)
);

-- The current personal link of each member: only the SHA-256 (hex) of its token is stored.
CREATE TABLE room_invites (
    room_id     BIGINT NOT NULL,
    member_id   BIGINT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    email       TEXT,
    issued_at   BIGINT NOT NULL,
    revoked_at  BIGINT,
    PRIMARY KEY (room_id, member_id),
    FOREIGN KEY (room_id, member_id) REFERENCES room_members (room_id, member_id)
);
