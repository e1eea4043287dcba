-- Several nodes: the epoch (fencing token) of the claim under which a room was last saved or
-- taken over. A save under an older epoch is refused, so a node that lost its claim cannot
-- overwrite the state of the room's new owner.
ALTER TABLE rooms ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0 CHECK (epoch >= 0);

-- The highest command number processed for each member, saved with the room, so that a
-- command already applied is refused as `replayed` after a restart or a failover too.
ALTER TABLE room_members ADD COLUMN last_command_seq BIGINT NOT NULL DEFAULT 0
    CHECK (last_command_seq >= 0);
