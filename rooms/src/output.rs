//! The outputs of a room: events for members, connections to close, the forwarding plan for the
//! SFU and the next time the room wants to be woken.

use crate::ids::{
    ConnectionId, FileRef, ParticipantId, PostSeq, Redacted, SessionId, Timestamp, TrackId,
};
use crate::view::{MemberView, Presence};

/// What the room asks the edge to do, drained with [`crate::Room::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Deliver `event` on `connection`, the current connection of member `to`.
    Notify {
        /// The member the event is for.
        to: ParticipantId,
        /// Their connection at the time the event was produced.
        connection: ConnectionId,
        /// What happened.
        event: Event,
    },
    /// Close `connection` (after sending the reason to the client).
    CloseConnection {
        /// Whose connection it is (or was).
        member: ParticipantId,
        /// The connection to close.
        connection: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
    /// The forwarding plan changed: the SFU must forward media exactly along this plan, at once.
    Forwarding(ForwardingPlan),
    /// Call [`crate::Room::handle_timeout`] at this time (caucus timer or room expiry).
    /// A later `Timeout` replaces an earlier one; a call made early or late is harmless.
    Timeout(Timestamp),
}

/// Why the room closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The same member connected again; the newer connection took over.
    Superseded,
    /// A mediator removed the member.
    Removed,
    /// The member's join link was revoked.
    InviteRevoked,
    /// The room reached the end of its lifetime.
    RoomExpired,
    /// A mediator ended the meeting.
    MeetingEnded,
}

/// An event for one member. Events are typed; the edge renders them in Italian.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Everything the member may know now, history included. Sent when the member connects and
    /// whenever their own place changes (admitted, moved, sent out, held, released).
    View(MemberView),
    /// What the member may know about presence changed while their place stayed the same.
    Presence(Presence),
    /// A chat message in the member's session.
    Chat(ChatMessage),
    /// A document shared in the member's session.
    FileShared(SharedFile),
    /// A notice from a mediator to the whole room.
    Broadcast {
        /// The notice.
        text: Redacted<String>,
        /// When it was sent.
        at: Timestamp,
    },
    /// The timer of a caucus ran out. Sent to its members and to the connected mediators.
    CaucusTimeUp {
        /// The caucus.
        session: SessionId,
        /// When the timer was due.
        ends_at: Timestamp,
    },
}

/// A chat message, posted in one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// Its sequence number in the room.
    pub seq: PostSeq,
    /// The session it was posted in.
    pub session: SessionId,
    /// The sender.
    pub from: ParticipantId,
    /// The message.
    pub text: Redacted<String>,
    /// When it was sent.
    pub at: Timestamp,
}

/// A document shared in one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedFile {
    /// Its sequence number in the room (shared with chat messages).
    pub seq: PostSeq,
    /// The session it was shared in.
    pub session: SessionId,
    /// Who shared it.
    pub from: ParticipantId,
    /// The document in the back office's store.
    pub file: FileRef,
    /// The name shown.
    pub name: Redacted<String>,
    /// When it was shared.
    pub at: Timestamp,
}

/// One entry of a session's history: a chat message or a shared document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Post {
    /// A chat message.
    Chat(ChatMessage),
    /// A shared document.
    File(SharedFile),
}

impl Post {
    /// The post's sequence number.
    pub fn seq(&self) -> PostSeq {
        match self {
            Post::Chat(message) => message.seq,
            Post::File(file) => file.seq,
        }
    }

    /// Who posted it.
    pub fn sender(&self) -> ParticipantId {
        match self {
            Post::Chat(message) => message.from,
            Post::File(file) => file.from,
        }
    }

    /// The session the post belongs to.
    pub fn session(&self) -> SessionId {
        match self {
            Post::Chat(message) => message.session,
            Post::File(file) => file.session,
        }
    }
}

/// What a track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// Microphone (or other) audio.
    Audio,
    /// Camera video.
    Video,
    /// A shared screen or window.
    ScreenShare,
}

/// One end of a media flow: a member on one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// The member.
    pub member: ParticipantId,
    /// Their connection (peer connection on the SFU side).
    pub connection: ConnectionId,
}

/// Where one published track may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackForwarding {
    /// The track.
    pub track: TrackId,
    /// What it carries.
    pub kind: TrackKind,
    /// Who sends it.
    pub publisher: Endpoint,
    /// Who may receive it, sorted: the other connected members of the publisher's session.
    /// Empty when the publisher is in the waiting room.
    pub receivers: Vec<Endpoint>,
}

/// The forwarding table the SFU applies: for every published track, who may receive it.
/// Anything not listed here must not be forwarded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardingPlan {
    tracks: Vec<TrackForwarding>,
}

impl ForwardingPlan {
    pub(crate) fn from_sorted(tracks: Vec<TrackForwarding>) -> Self {
        ForwardingPlan { tracks }
    }

    /// Every published track with its receivers, sorted by track id.
    pub fn tracks(&self) -> &[TrackForwarding] {
        &self.tracks
    }

    /// Whether `track` may be forwarded to `connection`.
    pub fn allows(&self, track: TrackId, connection: ConnectionId) -> bool {
        self.tracks
            .binary_search_by_key(&track, |entry| entry.track)
            .ok()
            .and_then(|index| self.tracks.get(index))
            .is_some_and(|entry| {
                entry
                    .receivers
                    .iter()
                    .any(|receiver| receiver.connection == connection)
            })
    }
}
