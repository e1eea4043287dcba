//! The mediation room of Accordo, as a pure state machine (sans-IO, in the style of str0m).
//!
//! A [`Room`] is the live state of one online mediation room (R-ROOM-1…5): who is invited,
//! who is connected, who waits in the waiting room (sala d'attesa), who is in the plenary or in
//! a caucus (sessione separata), what was said and shared in each session, and which media may
//! flow to whom. It performs no I/O, reads no clock, draws no random numbers and spawns nothing:
//! time is an input and everything it decides comes out as typed [`Output`]s.
//!
//! ```
//! use rooms::{CaseRef, Command, Output, ParticipantId, Role, Room, RoomId, RoomSettings, Timestamp};
//!
//! let created = Timestamp::from_unix_millis(1_700_000_000_000);
//! let case = CaseRef::parse("MED-2025-0142").expect("a valid case reference");
//! let mut room = Room::new(RoomId::new(7), case, created, RoomSettings::default());
//! let mediator = ParticipantId::new(1);
//! room.handle(created, Command::AddMember {
//!     member: mediator,
//!     role: Role::Mediator,
//!     side: None,
//!     display_name: "Avv. Rossi".into(),
//! })?;
//! while let Some(output) = room.poll_output() {
//!     if let Output::Timeout(at) = output {
//!         assert_eq!(at, room.expires_at()); // wake the room at expiry
//!     }
//! }
//! assert!(room.is_expired(room.expires_at()));
//! # Ok::<(), rooms::RoomError>(())
//! ```
//!
//! # Layout
//!
//! - [`ids`]: newtypes — `RoomId`, `ParticipantId`, `ConnectionId`, `TrackId`, `SessionId`,
//!   `PostSeq`, `Timestamp`, `CaseRef`, `FileRef`, and `Redacted` for personal text.
//! - [`settings`]: `RoomSettings` (lifetime, capacity, auto-admit, hold) and the fixed limits.
//! - [`member`]: roles, sides, and `Location` / `Place` — where a member is.
//! - [`command`]: `Command`, every input of a room.
//! - [`output`]: `Output`, `Event`, posts, and the `ForwardingPlan` for the SFU.
//! - [`view`]: who may know what — `MemberView`, `Presence`, the mediator overview.
//! - [`error`]: `RoomError`, why a command was refused.
//! - `room`: the state machine itself: validate, apply, emit.
//! - `confidentiality`: the confidentiality invariant, [`Room::check_confidentiality`].
//! - [`snapshot`]: `RoomSnapshot`, the durable facts, and `Room::restore`.
//!
//! # Invariants
//!
//! **Invariant** (confidentiality, R-ROOM-5): nothing of a session — media in the forwarding
//! plan, chat, shared files, presence details, history — reaches a member outside that session
//! at the time it happens. It is stated once, in [`Room::check_confidentiality`]; every output
//! passes it before it is queued (a breach panics: a bug fails closed), and the property tests
//! check it again on every output of thousands of random command sequences.
//!
//! **Invariant**: every member is in exactly one place — the waiting room, the plenary, or one
//! caucus — because one `Location` field records it. Mediators are always in a session.
//!
//! **Invariant** (atomicity): [`Room::handle`] either succeeds, possibly queueing outputs, or
//! returns a [`RoomError`] having changed nothing and queued nothing. Commands are validated
//! against `&self` first; the mutation step that follows cannot fail.
//!
//! **Invariant** (supervision): with `hold_when_no_mediator` (the default), while no mediator is
//! connected nobody else is in a session: they wait, and go back to where they were as soon as a
//! mediator connects.
//!
//! The structural invariants are listed on `Room::check_structure` (in `snapshot`), which
//! [`Room::restore`] uses to refuse damaged snapshots.
//!
//! # Rules worth knowing
//!
//! - Mediators enter their session directly; everybody else waits until a mediator admits them,
//!   unless `auto_admit` is on (it never overrides a mediator who sent someone out).
//! - When the last mediator disconnects, the others are held in the waiting room ("waiting for
//!   the mediator"); when a mediator connects again they go back to where they were, caucus
//!   included, without a new admission — nobody was ever unsupervised in between.
//! - A member who reconnects returns to their place; a newer connection supersedes the older
//!   one, which is closed with [`CloseReason::Superseded`]. A `Disconnect` naming a connection
//!   that is no longer the member's current one succeeds and changes nothing (the edge races
//!   with takeovers and need not track them).
//! - One seat is always kept for a mediator: others may fill at most `capacity - 1` seats.
//! - A caucus timer only notifies (the caucus and the connected mediators); nobody is moved.
//! - A member reads the posts of their current session made while they were in it — not those
//!   made while they were away, and never another session's. A caucus's posts go when it ends.
//! - Commands that would change nothing (admit someone already in, join the session you are
//!   in, end a caucus that is not open) are refused with a typed error, except the stale
//!   `Disconnect` above, repeating `RevokeInvite` or `Remove`, and clearing a timer not set.
//!
//! # API boundary
//!
//! The edge (`signaling`) owns one `Room` per live room, in one task, without a lock. It turns
//! authenticated WebSocket messages into [`Command`]s — filling `by` from the connection, never
//! from the client — calls [`Room::handle`] with the current time, then drains
//! [`Room::poll_output`] before the next input: [`Output::Notify`] goes to one connection,
//! [`Output::CloseConnection`] closes one, [`Output::Forwarding`] goes to the SFU, and
//! [`Output::Timeout`] says when to call [`Room::handle_timeout`]. Join tokens, JSON, the
//! database and Italian wording all live at the edge: this crate knows ids, typed events and
//! [`RoomSnapshot`]s. It depends on nothing but `thiserror`.

mod confidentiality;
mod room;

pub mod command;
pub mod error;
pub mod ids;
pub mod member;
pub mod output;
pub mod settings;
pub mod snapshot;
pub mod view;

#[cfg(test)]
mod tests;

pub use command::Command;
pub use confidentiality::Breach;
pub use error::{RoomError, TextField};
pub use ids::{
    CaseRef, ConnectionId, FileRef, ParticipantId, PostSeq, Redacted, ReferenceError, RoomId,
    SessionId, Timestamp, TrackId, MAX_REFERENCE_CHARS,
};
pub use member::{Location, Place, Role, Side};
pub use output::{
    ChatMessage, CloseReason, Endpoint, Event, ForwardingPlan, Output, Post, SharedFile,
    TrackForwarding, TrackKind,
};
pub use room::Room;
pub use settings::{
    RoomSettings, DEFAULT_LIFETIME, MAX_BROADCAST_CHARS, MAX_CHAT_CHARS, MAX_DISPLAY_NAME_CHARS,
    MAX_FILE_NAME_CHARS, MAX_HISTORY_PAGE, MAX_POSTS_PER_SESSION, MAX_TRACKS_PER_MEMBER,
    VIEW_HISTORY_POSTS,
};
pub use snapshot::{Inconsistency, MemberRecord, PostRecord, RoomSnapshot, SessionRecord};
pub use view::{
    HistoryPage, MediatorOverview, MemberCard, MemberStatus, MemberView, PlaceView, Presence,
    SessionKind, SessionSummary, SessionView, WaitingNotice,
};
