//! Why a command was refused. A refused command changed nothing and produced no output.

use crate::ids::{ConnectionId, ParticipantId, Redacted, SessionId, Timestamp, TrackId};
use crate::settings::{
    MAX_BROADCAST_CHARS, MAX_CHAT_CHARS, MAX_DISPLAY_NAME_CHARS, MAX_FILE_NAME_CHARS,
};

/// A command the room refused. Messages are for logs (English, no personal data); the edge maps
/// each variant to the Italian text people see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// The room's window has not started yet (`now` is before its creation).
    #[error("the room opens at {} ms", opens_at.as_unix_millis())]
    NotYetOpen {
        /// When the room opens.
        opens_at: Timestamp,
    },
    /// The room's lifetime is over.
    #[error("the room expired at {} ms", expired_at.as_unix_millis())]
    Expired {
        /// When it expired.
        expired_at: Timestamp,
    },
    /// No member has this id.
    #[error("member {0} is not in this room")]
    UnknownMember(ParticipantId),
    /// A member with this id already exists.
    #[error("member {0} is already in this room")]
    MemberExists(ParticipantId),
    /// A mediator was given a side; mediators are impartial.
    #[error("a mediator belongs to no side")]
    MediatorWithSide,
    /// The member's join link was revoked.
    #[error("the invite of member {0} was revoked")]
    InviteRevoked(ParticipantId),
    /// All seats are taken (one seat is always kept for a mediator).
    #[error("the room is full ({capacity} connections)")]
    RoomFull {
        /// The room's capacity.
        capacity: u8,
    },
    /// The connection id is already in use in this room.
    #[error("connection {0} is already in use")]
    ConnectionInUse(ConnectionId),
    /// The member issuing the command is not connected.
    #[error("member {0} is not connected")]
    NotConnected(ParticipantId),
    /// Only a mediator may issue this command.
    #[error("member {by} is not a mediator")]
    NotAllowed {
        /// Who tried.
        by: ParticipantId,
    },
    /// Mediators cannot be admitted, sent out or removed.
    #[error("member {0} is a mediator")]
    TargetIsMediator(ParticipantId),
    /// The member is not in the waiting room.
    #[error("member {0} is not waiting")]
    NotWaiting(ParticipantId),
    /// The member is already in the waiting room.
    #[error("member {0} is already waiting")]
    AlreadyWaiting(ParticipantId),
    /// The member is already in that session.
    #[error("member {member} is already in session {session}")]
    AlreadyThere {
        /// The member.
        member: ParticipantId,
        /// The session.
        session: SessionId,
    },
    /// No open session has this id.
    #[error("session {0} is not open")]
    UnknownSession(SessionId),
    /// The session is the plenary, not a caucus.
    #[error("session {0} is not a caucus")]
    NotACaucus(SessionId),
    /// No caucus is open.
    #[error("no caucus is open")]
    NoCaucusOpen,
    /// A caucus needs at least one member besides the mediator who starts it.
    #[error("a caucus needs at least one member besides the mediator")]
    EmptyCaucus,
    /// The member is in the waiting room, where nobody can post.
    #[error("member {0} is in the waiting room")]
    NotInSession(ParticipantId),
    /// The session holds [`crate::MAX_POSTS_PER_SESSION`] posts already.
    #[error("session {0} holds the most posts it may")]
    SessionFull(SessionId),
    /// A text is empty or only whitespace.
    #[error("the {field} is empty")]
    EmptyText {
        /// Which text.
        field: TextField,
    },
    /// A text is too long.
    #[error("the {field} is longer than {max} characters")]
    TextTooLong {
        /// Which text.
        field: TextField,
        /// The limit in characters.
        max: usize,
    },
    /// A timer must end after now.
    #[error("the deadline {} ms is not in the future", deadline.as_unix_millis())]
    DeadlineNotInFuture {
        /// The refused deadline.
        deadline: Timestamp,
    },
    /// The track id is already published.
    #[error("track {0} is already published")]
    TrackInUse(TrackId),
    /// The member publishes no track with this id.
    #[error("track {0} is not published by this member")]
    UnknownTrack(TrackId),
    /// The member already publishes the most tracks allowed.
    #[error("a member may publish at most {max} tracks")]
    TooManyTracks {
        /// The limit.
        max: usize,
    },
}

/// Which user-written text a [`RoomError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextField {
    /// A member's display name.
    DisplayName,
    /// A chat message.
    Chat,
    /// A mediator broadcast.
    Broadcast,
    /// The name of a shared file.
    FileName,
}

impl TextField {
    /// The longest accepted text, in characters.
    pub const fn max_chars(self) -> usize {
        match self {
            TextField::DisplayName => MAX_DISPLAY_NAME_CHARS,
            TextField::Chat => MAX_CHAT_CHARS,
            TextField::Broadcast => MAX_BROADCAST_CHARS,
            TextField::FileName => MAX_FILE_NAME_CHARS,
        }
    }

    /// Checks `text` against this field's rules: not blank, not longer than [`Self::max_chars`].
    pub fn check(self, text: &Redacted<String>) -> Result<(), RoomError> {
        let text = text.expose();
        if text.trim().is_empty() {
            return Err(RoomError::EmptyText { field: self });
        }
        let max = self.max_chars();
        // Counting stops past the limit, so a huge text costs no more than a legal one.
        if text.chars().nth(max).is_some() {
            return Err(RoomError::TextTooLong { field: self, max });
        }
        Ok(())
    }
}

impl std::fmt::Display for TextField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TextField::DisplayName => "display name",
            TextField::Chat => "chat message",
            TextField::Broadcast => "broadcast",
            TextField::FileName => "file name",
        })
    }
}
