//! The wire protocol, version 1: JSON text frames over one WebSocket. `docs/protocol.md`
//! documents every message; this module is its single implementation.
//!
//! Wire types are separate from the domain types of `rooms` and convert by hand, so that the
//! room can change without changing what clients see (and the reverse).
//!
//! Identifiers of rooms and members are strings of decimal digits on the wire: they are 63-bit
//! numbers, more than a JavaScript number holds exactly. Session ids are small numbers.

use rooms::{
    ChatMessage, Event, FileRef, Location, MemberCard, MemberView, ParticipantId, PlaceView, Post,
    Presence, Redacted, SessionId, SessionKind, SharedFile, Side, Timestamp, WaitingNotice,
};
use serde::{Deserialize, Serialize};

use crate::ice::WireIceServer;

/// The protocol version this server speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The latest time a client may name (the largest integer a JavaScript number holds exactly).
pub const MAX_TIME: u64 = (1 << 53) - 1;
/// The largest text frame accepted from a client, in bytes, except SDP.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 16 * 1024;
/// The largest `sdp_offer` or `sdp_answer`, in bytes: a browser's description grows with every
/// m-line (about 3 KB per video), and a full room with screen shares has a dozen or more. Also
/// the WebSocket's frame limit: a larger frame closes the connection.
pub const MAX_SDP_MESSAGE_BYTES: usize = 256 * 1024;

/// Why a client message was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error(
        "message larger than {MAX_CLIENT_MESSAGE_BYTES} bytes ({MAX_SDP_MESSAGE_BYTES} for SDP)"
    )]
    TooLarge,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u32),
}

impl ProtocolError {
    /// The error code sent to the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::TooLarge => ErrorCode::TooLarge,
            ProtocolError::Malformed(_) => ErrorCode::Malformed,
            ProtocolError::UnknownType(_) => ErrorCode::UnknownType,
            ProtocolError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
        }
    }
}

/// An identifier as the wire carries it: decimal digits in a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WireId(pub u64);

impl Serialize for WireId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for WireId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(serde::de::Error::custom(
                "an id is a string of decimal digits",
            ));
        }
        text.parse()
            .map(WireId)
            .map_err(|_| serde::de::Error::custom("id out of range"))
    }
}

impl From<ParticipantId> for WireId {
    fn from(id: ParticipantId) -> Self {
        WireId(id.get())
    }
}

impl WireId {
    pub fn member(self) -> ParticipantId {
        ParticipantId::new(self.0)
    }
}

/// Picks up a dropped connection where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    /// The `stream` of the `welcome` the client had.
    pub stream: String,
    /// The `seq` of the last event the client received.
    pub last_seq: u64,
}

/// A message from a client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first message on every connection.
    Hello {
        v: u32,
        /// The personal link's token. Without it, `room` names the room and the WebSocket
        /// request's login session says who is joining (back-office staff).
        #[serde(default)]
        token: Option<String>,
        #[serde(default)]
        room: Option<WireId>,
        #[serde(default)]
        resume: Option<Resume>,
        /// With `room`: close the member's connection that is still open (another window or
        /// device) and take its place; without it such a `hello` is refused with
        /// `already_connected`. A personal link always takes over.
        #[serde(default)]
        take_over: bool,
    },
    /// Application-level heartbeat; answered with `pong`.
    Ping,
    /// Older posts of the member's current session, answered with `chat_history` to this
    /// connection only (not numbered: it changes nothing).
    ChatHistory {
        session: u64,
        /// Only posts numbered below this one.
        before_seq: u64,
        /// At most this many (and at most `rooms::MAX_HISTORY_PAGE`).
        limit: u32,
    },
    /// Media negotiation with the SFU (not numbered: it belongs to this connection only).
    #[serde(untagged)]
    Media(MediaMessage),
    /// A room command, numbered by the client.
    #[serde(untagged)]
    Command(NumberedCommand),
}

/// SDP and ICE between a client and the SFU. The client offers first (what it sends); later
/// the server offers (what it should receive) and the client answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum MediaMessage {
    SdpOffer {
        sdp: String,
        /// The `mid`s of the m-lines that carry a screen share (not a camera).
        #[serde(default)]
        screen_mids: Vec<String>,
    },
    SdpAnswer {
        sdp: String,
    },
    IceCandidate {
        candidate: String,
        #[serde(default)]
        mid: Option<String>,
    },
    /// What the client wants to receive, to choose simulcast layers.
    ReceivePreferences {
        /// The most the client wants to receive in all, bits per second.
        #[serde(default)]
        max_bitrate: Option<u64>,
        /// Per video track id (the `a=msid` track id), the height of its tile in pixels.
        #[serde(default)]
        tiles: std::collections::BTreeMap<WireId, u32>,
    },
}

/// A room command with the client's sequence number: strictly increasing per member, so that
/// a command re-sent after a reconnection is recognised and not applied twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberedCommand {
    pub seq: u64,
    pub command: WireCommand,
}

impl<'de> Deserialize<'de> for NumberedCommand {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Numbered {
            seq: u64,
            #[serde(flatten)]
            command: WireCommand,
        }
        let numbered = Numbered::deserialize(deserializer)?;
        Ok(NumberedCommand {
            seq: numbered.seq,
            command: numbered.command,
        })
    }
}

/// The commands a member may send. Mediator-only ones are refused by the room for others.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireCommand {
    Admit { member: WireId },
    SendToWaitingRoom { member: WireId },
    Remove { member: WireId, revoke_invite: bool },
    StartCaucus { members: Vec<WireId> },
    JoinSession { session: u64 },
    MoveToSession { member: WireId, session: u64 },
    EndCaucus { session: u64 },
    BackToPlenary {},
    EndMeeting {},
    SetCaucusTimer { session: u64, ends_at: Option<u64> },
    Broadcast { text: String },
    Chat { text: String },
    ShareFile { file: String, name: String },
}

/// The command types clients may send, for telling "unknown type" from "malformed".
const CLIENT_TYPES: &[&str] = &[
    "hello",
    "ping",
    "chat_history",
    "admit",
    "send_to_waiting_room",
    "remove",
    "start_caucus",
    "join_session",
    "move_to_session",
    "end_caucus",
    "back_to_plenary",
    "end_meeting",
    "set_caucus_timer",
    "broadcast",
    "chat",
    "share_file",
    "sdp_offer",
    "sdp_answer",
    "ice_candidate",
    "receive_preferences",
];

impl ClientMessage {
    /// Parses one text frame. Never panics; every failure is a typed [`ProtocolError`].
    pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
        if text.len() > MAX_SDP_MESSAGE_BYTES {
            return Err(ProtocolError::TooLarge);
        }
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|error| ProtocolError::Malformed(error.to_string()))?;
        let kind = value
            .get("type")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| ProtocolError::Malformed("missing `type`".to_owned()))?;
        let sdp = matches!(kind, "sdp_offer" | "sdp_answer");
        if !sdp && text.len() > MAX_CLIENT_MESSAGE_BYTES {
            return Err(ProtocolError::TooLarge);
        }
        if !CLIENT_TYPES.contains(&kind) {
            let shown: String = kind.chars().take(40).collect();
            return Err(ProtocolError::UnknownType(shown));
        }
        let message = match kind {
            "hello" | "ping" | "chat_history" => ClientMessage::deserialize(&value),
            "sdp_offer" | "sdp_answer" | "ice_candidate" | "receive_preferences" => {
                MediaMessage::deserialize(&value).map(ClientMessage::Media)
            }
            _ => NumberedCommand::deserialize(&value).map(ClientMessage::Command),
        }
        .map_err(|error| ProtocolError::Malformed(error.to_string()))?;
        if let ClientMessage::Hello { v, token, room, .. } = &message {
            if *v != PROTOCOL_VERSION {
                return Err(ProtocolError::UnsupportedVersion(*v));
            }
            if token.is_some() == room.is_some() {
                return Err(ProtocolError::Malformed(
                    "`hello` names either a `token` or a `room`".to_owned(),
                ));
            }
        }
        Ok(message)
    }
}

impl WireCommand {
    /// The room command this asks for, on behalf of `by`.
    pub fn into_room_command(self, by: ParticipantId) -> Result<rooms::Command, ProtocolError> {
        use rooms::Command;
        let session = |raw: u64| SessionId::new(raw);
        Ok(match self {
            WireCommand::Admit { member } => Command::Admit {
                by,
                member: member.member(),
            },
            WireCommand::SendToWaitingRoom { member } => Command::SendToWaitingRoom {
                by,
                member: member.member(),
            },
            WireCommand::Remove {
                member,
                revoke_invite,
            } => Command::Remove {
                by,
                member: member.member(),
                revoke_invite,
            },
            WireCommand::StartCaucus { members } => Command::StartCaucus {
                by,
                members: members.into_iter().map(WireId::member).collect(),
            },
            WireCommand::JoinSession { session: raw } => Command::JoinSession {
                by,
                session: session(raw),
            },
            WireCommand::MoveToSession {
                member,
                session: raw,
            } => Command::MoveToSession {
                by,
                member: member.member(),
                session: session(raw),
            },
            WireCommand::EndCaucus { session: raw } => Command::EndCaucus {
                by,
                session: session(raw),
            },
            WireCommand::BackToPlenary {} => Command::BackToPlenary { by },
            WireCommand::EndMeeting {} => Command::EndMeeting { by },
            WireCommand::SetCaucusTimer {
                session: raw,
                ends_at,
            } => {
                if ends_at.is_some_and(|at| at > MAX_TIME) {
                    return Err(ProtocolError::Malformed(
                        "ends_at is out of range".to_owned(),
                    ));
                }
                Command::SetCaucusTimer {
                    by,
                    session: session(raw),
                    ends_at: ends_at.map(Timestamp::from_unix_millis),
                }
            }
            WireCommand::Broadcast { text } => Command::Broadcast {
                by,
                text: Redacted::new(text),
            },
            WireCommand::Chat { text } => Command::Chat {
                by,
                text: Redacted::new(text),
            },
            WireCommand::ShareFile { file, name } => Command::ShareFile {
                by,
                file: FileRef::parse(&file)
                    .map_err(|error| ProtocolError::Malformed(format!("file: {error}")))?,
                name: Redacted::new(name),
            },
        })
    }
}

/// Machine-readable error codes (the `code` of an `error` message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // The message itself.
    TooLarge,
    Malformed,
    UnknownType,
    UnsupportedVersion,
    HelloRequired,
    RateLimited,
    Replayed,
    // The link.
    InvalidToken,
    /// `hello` named a room without a logged-in staff session allowed to join it.
    NotLoggedIn,
    InviteRevoked,
    // The room.
    RoomNotFound,
    RoomNotYetOpen,
    RoomExpired,
    RoomFull,
    /// The session holds `rooms::MAX_POSTS_PER_SESSION` posts already.
    ChatFull,
    NotAllowed,
    InvalidCommand,
    // The server.
    InvalidResume,
    /// A login `hello` without `take_over` while the member is connected elsewhere.
    AlreadyConnected,
    Unavailable,
    // Media.
    /// The SDP or candidate could not be used.
    MediaRefused,
    /// This server has no media plane.
    MediaUnavailable,
}

/// Why the server closes a connection (the `reason` of a `bye` message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ByeReason {
    /// The same link was opened on another device or tab.
    Superseded,
    /// The mediator removed this member.
    Removed,
    /// The link was revoked.
    InviteRevoked,
    /// The room's life is over.
    RoomExpired,
    /// The mediator ended the meeting.
    MeetingEnded,
    /// The client did not read its messages fast enough.
    SlowConsumer,
    /// Nothing heard from the client for too long.
    HeartbeatTimeout,
    /// The `hello` was refused (see the preceding `error`).
    Refused,
    /// The server is stopping; reconnect.
    ServerShutdown,
    /// Another node serves this room: reconnect to `url`.
    Redirect,
    /// The media connection failed or timed out (no ICE consent): reconnect.
    MediaFailed,
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `hello`.
    Welcome {
        v: u32,
        room: WireId,
        member: WireMember,
        expires_at: u64,
        /// Identifies this member's event stream; give it back in `resume`.
        stream: String,
        /// The seq of the last event already sent on this stream.
        seq: u64,
        /// True when the events after `resume.last_seq` are replayed next.
        resumed: bool,
        /// The highest command seq the server has processed for this member.
        last_command_seq: u64,
        /// `RTCConfiguration.iceServers` for this member (TURN credentials expire).
        ice_servers: Vec<WireIceServer>,
    },
    /// A room event, numbered on this member's stream.
    Event {
        seq: u64,
        event: WireEvent,
    },
    /// A command was applied.
    Ack {
        seq: u64,
        /// The new caucus, in the answer to `start_caucus`.
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<u64>,
    },
    /// A message was refused; `seq` names the refused command, if any.
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        code: ErrorCode,
        message: String,
    },
    Pong,
    /// The answer to `chat_history`: posts oldest first, and whether older ones remain.
    ChatHistory {
        session: u64,
        posts: Vec<WirePost>,
        more: bool,
    },
    /// The answer to the client's `sdp_offer`.
    SdpAnswer {
        sdp: String,
    },
    /// A server offer: the tracks this client receives changed; answer with `sdp_answer`.
    SdpOffer {
        sdp: String,
    },
    /// The loudest member this client can hear (of its own session) changed.
    ActiveSpeaker {
        member: WireId,
    },
    /// The server closes the connection after this.
    Bye {
        reason: ByeReason,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
}

impl ServerMessage {
    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        // Serializing these plain types cannot fail: no maps with non-string keys, no
        // user-defined Serialize that errors.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"unavailable","message":"serialization"}"#.to_owned()
        })
    }
}

/// A member as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WireMember {
    pub id: WireId,
    pub name: String,
    pub role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub side: Option<String>,
    pub connected: bool,
}

impl From<&MemberCard> for WireMember {
    fn from(card: &MemberCard) -> Self {
        WireMember {
            id: card.id.into(),
            name: card.display_name.expose().clone(),
            role: card.role.code(),
            side: card.side.map(Side::code),
            connected: card.connected,
        }
    }
}

/// A room event as a member receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireEvent {
    /// Everything the member may know now, with the history of their session.
    View {
        presence: WirePresence,
        history: Vec<WirePost>,
    },
    /// What the member may know of who is where changed.
    Presence(WirePresence),
    Chat(WirePost),
    FileShared(WirePost),
    Broadcast {
        text: String,
        at: u64,
    },
    CaucusTimeUp {
        session: u64,
        ends_at: u64,
    },
}

/// Where the member is and whom they may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WirePresence {
    pub place: WirePlace,
    /// Mediators only: where everybody is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overview: Option<WireOverview>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WirePlace {
    WaitingRoom {
        /// `mediator_not_connected`, `private_session_in_progress` or `waiting_for_admission`.
        notice: &'static str,
    },
    Session {
        session: u64,
        /// `plenary` or `caucus`.
        session_kind: &'static str,
        timer_ends_at: Option<u64>,
        members: Vec<WireMember>,
        private_session_elsewhere: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WireOverview {
    pub members: Vec<WireMemberStatus>,
    pub sessions: Vec<WireSessionSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WireMemberStatus {
    #[serde(flatten)]
    pub member: WireMember,
    /// `waiting_to_enter`, `sent_to_waiting_room`, `held_for_mediator` or `in_session`.
    pub location: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
    pub invite_revoked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WireSessionSummary {
    pub session: u64,
    pub session_kind: &'static str,
    pub opened_at: u64,
    pub timer_ends_at: Option<u64>,
}

/// A chat message or a shared file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "post", rename_all = "snake_case")]
pub enum WirePost {
    Chat {
        seq: u64,
        session: u64,
        from: WireId,
        text: String,
        at: u64,
    },
    File {
        seq: u64,
        session: u64,
        from: WireId,
        file: String,
        name: String,
        at: u64,
    },
}

fn session_kind_name(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Plenary => "plenary",
        SessionKind::Caucus => "caucus",
    }
}

fn chat_post(message: &ChatMessage) -> WirePost {
    WirePost::Chat {
        seq: message.seq.get(),
        session: message.session.get(),
        from: message.from.into(),
        text: message.text.expose().clone(),
        at: message.at.as_unix_millis(),
    }
}

fn file_post(file: &SharedFile) -> WirePost {
    WirePost::File {
        seq: file.seq.get(),
        session: file.session.get(),
        from: file.from.into(),
        file: file.file.as_str().to_owned(),
        name: file.name.expose().clone(),
        at: file.at.as_unix_millis(),
    }
}

impl From<&Post> for WirePost {
    fn from(post: &Post) -> Self {
        match post {
            Post::Chat(message) => chat_post(message),
            Post::File(file) => file_post(file),
        }
    }
}

impl From<&Presence> for WirePresence {
    fn from(presence: &Presence) -> Self {
        let place = match &presence.place {
            PlaceView::WaitingRoom(notice) => WirePlace::WaitingRoom {
                notice: match notice {
                    WaitingNotice::MediatorNotConnected => "mediator_not_connected",
                    WaitingNotice::PrivateSessionInProgress => "private_session_in_progress",
                    WaitingNotice::WaitingForAdmission => "waiting_for_admission",
                },
            },
            PlaceView::Session(view) => WirePlace::Session {
                session: view.session.get(),
                session_kind: session_kind_name(view.kind),
                timer_ends_at: view.timer_ends_at.map(Timestamp::as_unix_millis),
                members: view.members.iter().map(WireMember::from).collect(),
                private_session_elsewhere: view.private_session_elsewhere,
            },
        };
        let overview = presence.overview.as_ref().map(|overview| WireOverview {
            members: overview
                .members
                .iter()
                .map(|status| {
                    let (location, session) = match status.location {
                        Location::WaitingToEnter => ("waiting_to_enter", None),
                        Location::SentToWaitingRoom => ("sent_to_waiting_room", None),
                        Location::HeldForMediator { .. } => ("held_for_mediator", None),
                        Location::InSession(session) => ("in_session", Some(session.get())),
                    };
                    WireMemberStatus {
                        member: WireMember::from(&status.card),
                        location,
                        session,
                        invite_revoked: status.invite_revoked,
                    }
                })
                .collect(),
            sessions: overview
                .sessions
                .iter()
                .map(|summary| WireSessionSummary {
                    session: summary.session.get(),
                    session_kind: session_kind_name(summary.kind),
                    opened_at: summary.opened_at.as_unix_millis(),
                    timer_ends_at: summary.timer_ends_at.map(Timestamp::as_unix_millis),
                })
                .collect(),
        });
        WirePresence { place, overview }
    }
}

impl From<&MemberView> for WireEvent {
    fn from(view: &MemberView) -> Self {
        WireEvent::View {
            presence: WirePresence::from(&view.presence),
            history: view.history.iter().map(WirePost::from).collect(),
        }
    }
}

impl From<&Event> for WireEvent {
    fn from(event: &Event) -> Self {
        match event {
            Event::View(view) => WireEvent::from(view),
            Event::Presence(presence) => WireEvent::Presence(WirePresence::from(presence)),
            Event::Chat(message) => WireEvent::Chat(chat_post(message)),
            Event::FileShared(file) => WireEvent::FileShared(file_post(file)),
            Event::Broadcast { text, at } => WireEvent::Broadcast {
                text: text.expose().clone(),
                at: at.as_unix_millis(),
            },
            Event::CaucusTimeUp { session, ends_at } => WireEvent::CaucusTimeUp {
                session: session.get(),
                ends_at: ends_at.as_unix_millis(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_hello_commands_and_ping() {
        let hello = ClientMessage::parse(r#"{"type":"hello","v":1,"token":"abc"}"#).unwrap();
        assert_eq!(
            hello,
            ClientMessage::Hello {
                v: 1,
                token: Some("abc".to_owned()),
                room: None,
                resume: None,
                take_over: false,
            }
        );
        let chat = ClientMessage::parse(r#"{"type":"chat","seq":3,"text":"buongiorno"}"#).unwrap();
        assert_eq!(
            chat,
            ClientMessage::Command(NumberedCommand {
                seq: 3,
                command: WireCommand::Chat {
                    text: "buongiorno".to_owned()
                }
            })
        );
        let caucus =
            ClientMessage::parse(r#"{"type":"start_caucus","seq":4,"members":["17","18"]}"#)
                .unwrap();
        assert!(matches!(
            caucus,
            ClientMessage::Command(NumberedCommand {
                seq: 4,
                command: WireCommand::StartCaucus { .. }
            })
        ));
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#).unwrap(),
            ClientMessage::Ping
        );
    }

    #[test]
    fn parses_media_negotiation() {
        let offer =
            ClientMessage::parse(r#"{"type":"sdp_offer","sdp":"v=0\r\n","screen_mids":["2"]}"#)
                .unwrap();
        assert_eq!(
            offer,
            ClientMessage::Media(MediaMessage::SdpOffer {
                sdp: "v=0\r\n".to_owned(),
                screen_mids: vec!["2".to_owned()]
            })
        );
        let candidate = ClientMessage::parse(
            r#"{"type":"ice_candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host"}"#,
        )
        .unwrap();
        assert!(matches!(
            candidate,
            ClientMessage::Media(MediaMessage::IceCandidate { mid: None, .. })
        ));
    }

    #[test]
    fn refuses_bad_messages_with_typed_errors() {
        let cases = [
            ("not json", ErrorCode::Malformed),
            (r#"{"seq":1}"#, ErrorCode::Malformed),
            (r#"{"type":"explode","seq":1}"#, ErrorCode::UnknownType),
            (
                r#"{"type":"chat","text":"senza seq"}"#,
                ErrorCode::Malformed,
            ),
            (
                r#"{"type":"chat","seq":-1,"text":"x"}"#,
                ErrorCode::Malformed,
            ),
            (
                r#"{"type":"admit","seq":1,"member":17}"#,
                ErrorCode::Malformed,
            ),
            (
                r#"{"type":"admit","seq":1,"member":"1x"}"#,
                ErrorCode::Malformed,
            ),
            (
                r#"{"type":"hello","v":2,"token":"t"}"#,
                ErrorCode::UnsupportedVersion,
            ),
            (
                r#"{"type":"hello","v":1,"token":"t","extra":true}"#,
                ErrorCode::Malformed,
            ),
            (
                r#"{"type":"share_file","seq":1,"file":"","name":"a.pdf"}"#,
                ErrorCode::Malformed,
            ),
        ];
        for (text, code) in cases {
            let parsed = ClientMessage::parse(text).and_then(|message| match message {
                ClientMessage::Command(numbered) => numbered
                    .command
                    .into_room_command(ParticipantId::new(1))
                    .map(|_| ()),
                _ => Ok(()),
            });
            assert_eq!(parsed.map_err(|error| error.code()), Err(code), "{text}");
        }
        let huge = format!(
            r#"{{"type":"chat","seq":1,"text":"{}"}}"#,
            "x".repeat(MAX_CLIENT_MESSAGE_BYTES)
        );
        assert_eq!(ClientMessage::parse(&huge), Err(ProtocolError::TooLarge));
        // A browser's SDP for a full room is larger than any other message, and accepted.
        let sdp = "a=candidate:1 1 udp 1 192.0.2.1 9 typ host\\r\\n".repeat(2000);
        let offer = format!(r#"{{"type":"sdp_offer","sdp":"{sdp}"}}"#);
        assert!(offer.len() > MAX_CLIENT_MESSAGE_BYTES);
        assert!(ClientMessage::parse(&offer).is_ok());
        let huge_offer = format!(
            r#"{{"type":"sdp_offer","sdp":"{}"}}"#,
            "x".repeat(MAX_SDP_MESSAGE_BYTES)
        );
        assert_eq!(
            ClientMessage::parse(&huge_offer),
            Err(ProtocolError::TooLarge)
        );
    }

    #[test]
    fn server_messages_have_the_documented_shape() {
        let message = ServerMessage::Event {
            seq: 7,
            event: WireEvent::Chat(WirePost::Chat {
                seq: 41,
                session: 0,
                from: WireId(12345678901234567),
                text: "buongiorno".to_owned(),
                at: 1_700_000_000_000,
            }),
        };
        assert_eq!(
            message.to_json(),
            r#"{"type":"event","seq":7,"event":{"kind":"chat","post":"chat","seq":41,"session":0,"from":"12345678901234567","text":"buongiorno","at":1700000000000}}"#
        );
        let bye = ServerMessage::Bye {
            reason: ByeReason::Superseded,
            url: None,
        };
        assert_eq!(bye.to_json(), r#"{"type":"bye","reason":"superseded"}"#);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Whatever arrives, the parser answers with a message or a typed error, never a panic.
        #[test]
        fn the_parser_never_panics_on_arbitrary_text(text in ".{0,300}") {
            let _ = ClientMessage::parse(&text);
        }

        /// Nearly-valid messages: known shapes with fields mutated to random JSON values.
        #[test]
        fn the_parser_never_panics_on_mutated_messages(
            kind in proptest::sample::select(CLIENT_TYPES),
            seq in proptest::option::of(any::<i64>()),
            field in "[a-z_]{1,12}",
            value in prop_oneof![
                Just(serde_json::Value::Null),
                any::<bool>().prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                ".{0,20}".prop_map(serde_json::Value::from),
                proptest::collection::vec(".{0,5}", 0..4).prop_map(serde_json::Value::from),
            ],
        ) {
            let mut object = serde_json::Map::new();
            object.insert("type".to_owned(), serde_json::Value::from(kind));
            if let Some(seq) = seq {
                object.insert("seq".to_owned(), serde_json::Value::from(seq));
            }
            object.insert(field, value);
            let text = serde_json::Value::Object(object).to_string();
            if let Ok(ClientMessage::Command(numbered)) = ClientMessage::parse(&text) {
                let _ = numbered.command.into_room_command(ParticipantId::new(1));
            }
        }
    }
}
