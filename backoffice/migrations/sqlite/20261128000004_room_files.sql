-- Files uploaded in a room (shared with a session by a `share_file` post). The bytes live in the
-- file store under `rooms/<room id>/<file id>`; only the SHA-256 and the checked type are here.
-- Keep the same meaning as ../postgres/20261128000004_room_files.sql.
CREATE TABLE room_files (
    id           TEXT PRIMARY KEY,
    room_id      INTEGER NOT NULL,
    member_id    INTEGER NOT NULL,
    name         TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size_bytes   INTEGER NOT NULL CHECK (size_bytes > 0),
    sha256       TEXT NOT NULL,
    uploaded_at  INTEGER NOT NULL,
    FOREIGN KEY (room_id, member_id) REFERENCES room_members (room_id, member_id)
);
CREATE INDEX room_files_room ON room_files (room_id);
