//! The inputs of a room.

use crate::ids::{ConnectionId, FileRef, ParticipantId, Redacted, SessionId, Timestamp, TrackId};
use crate::member::{Role, Side};
use crate::output::TrackKind;

/// Everything that can happen to a room, fed to [`crate::Room::handle`] with the time it happens.
///
/// Commands with a `by` field are issued by a connected member; the edge fills `by` from the
/// authenticated connection, never from the client's message. Mediator commands fail with
/// [`crate::RoomError::NotAllowed`] when `by` is not a mediator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    // --- back office (segreteria) ---
    /// Invites a person to the room (R-ROOM-2). A mediator must have no side.
    AddMember {
        /// The new member's id.
        member: ParticipantId,
        /// Their part in the mediation.
        role: Role,
        /// Their side, if any.
        side: Option<Side>,
        /// The name shown to the others (1 to [`crate::MAX_DISPLAY_NAME_CHARS`] characters).
        display_name: Redacted<String>,
    },
    /// Revokes the member's join link: they are disconnected (if connected) and can no longer
    /// connect. A member who is not a mediator is also moved to the waiting room.
    RevokeInvite {
        /// Whose link is revoked.
        member: ParticipantId,
    },

    // --- connection lifecycle (the edge) ---
    /// A WebSocket authenticated as `member` opened. A newer connection of the same member takes
    /// over: the older one is closed with [`crate::CloseReason::Superseded`].
    Connect {
        /// Who connected.
        member: ParticipantId,
        /// The new connection.
        connection: ConnectionId,
    },
    /// A WebSocket closed. If `connection` is not the member's current connection (for example
    /// the one a newer connection superseded) the command succeeds and changes nothing.
    Disconnect {
        /// Whose connection closed.
        member: ParticipantId,
        /// The connection that closed.
        connection: ConnectionId,
    },

    // --- mediator ---
    /// Lets a waiting member into the plenary.
    Admit {
        /// The mediator.
        by: ParticipantId,
        /// The waiting member.
        member: ParticipantId,
    },
    /// Sends a member who is in a session to the waiting room (temporary exclusion, R-ROOM-5).
    SendToWaitingRoom {
        /// The mediator.
        by: ParticipantId,
        /// The member sent out.
        member: ParticipantId,
    },
    /// Disconnects a member and puts them in the waiting room; optionally revokes their link.
    Remove {
        /// The mediator.
        by: ParticipantId,
        /// The member removed.
        member: ParticipantId,
        /// Also revoke their join link.
        revoke_invite: bool,
    },
    /// Opens a new caucus (sessione separata) with `members` and the issuing mediator.
    /// The members leave wherever they were (a waiting member is admitted straight into it);
    /// everybody else stays where they are.
    StartCaucus {
        /// The mediator, who moves into the caucus too.
        by: ParticipantId,
        /// Who else takes part (at least one member other than `by`).
        members: Vec<ParticipantId>,
    },
    /// The mediator moves themselves into another open session.
    JoinSession {
        /// The mediator.
        by: ParticipantId,
        /// Where they go.
        session: SessionId,
    },
    /// The mediator moves a member (waiting or in a session) into an open session.
    MoveToSession {
        /// The mediator.
        by: ParticipantId,
        /// The member moved.
        member: ParticipantId,
        /// Where they go.
        session: SessionId,
    },
    /// Closes a caucus; its members go back to the plenary and its posts are dropped.
    EndCaucus {
        /// The mediator.
        by: ParticipantId,
        /// The caucus closed.
        session: SessionId,
    },
    /// Closes every caucus and brings everybody who was in one back to the plenary.
    /// Members in the waiting room stay there.
    BackToPlenary {
        /// The mediator.
        by: ParticipantId,
    },
    /// Ends the meeting: every caucus closes, everybody (the mediators too) is disconnected with
    /// [`crate::CloseReason::MeetingEnded`], and whoever was in a session and is not a mediator
    /// waits to be admitted when they come back for the next meeting. Members, links and the
    /// plenary stay.
    EndMeeting {
        /// The mediator.
        by: ParticipantId,
    },
    /// Sets (`Some`) or clears (`None`) the end time of a caucus. When it comes, the caucus members
    /// and the connected mediators are told time is up; nobody is moved.
    SetCaucusTimer {
        /// The mediator.
        by: ParticipantId,
        /// The caucus.
        session: SessionId,
        /// When time is up; must be later than now.
        ends_at: Option<Timestamp>,
    },
    /// A short notice from a mediator to every connected member, wherever they are.
    Broadcast {
        /// The mediator.
        by: ParticipantId,
        /// The notice (1 to [`crate::MAX_BROADCAST_CHARS`] characters).
        text: Redacted<String>,
    },

    // --- any member in a session ---
    /// A chat message to the sender's current session.
    Chat {
        /// The sender, who must be in a session.
        by: ParticipantId,
        /// The message (1 to [`crate::MAX_CHAT_CHARS`] characters).
        text: Redacted<String>,
    },
    /// Shares a document with the sender's current session (R-ROOM-6).
    ShareFile {
        /// The sender, who must be in a session.
        by: ParticipantId,
        /// The document.
        file: FileRef,
        /// The name shown (1 to [`crate::MAX_FILE_NAME_CHARS`] characters).
        name: Redacted<String>,
    },

    // --- media (any connected member) ---
    /// The member's connection started sending a track.
    PublishTrack {
        /// The publisher, who must be connected.
        by: ParticipantId,
        /// The track id (unique in the room while published).
        track: TrackId,
        /// What the track carries.
        kind: TrackKind,
    },
    /// The member stopped sending a track.
    UnpublishTrack {
        /// The publisher.
        by: ParticipantId,
        /// The track.
        track: TrackId,
    },
}
