-- A room member who is also a back-office user (typically the mediator) may join from their
-- login instead of the personal link. One member per user per room.
CREATE TABLE room_member_users (
    room_id    BIGINT NOT NULL,
    member_id  BIGINT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id),
    PRIMARY KEY (room_id, member_id),
    UNIQUE (room_id, user_id),
    FOREIGN KEY (room_id, member_id) REFERENCES room_members (room_id, member_id)
);
