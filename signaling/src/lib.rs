//! The WebSocket edge of a mediation room: a typed, versioned JSON protocol
//! (`docs/protocol.md`), the connection lifecycle (hello, heartbeats, resume, back-pressure,
//! rate limits) and the live rooms, one task each.
//!
//! # Layout
//! - [`protocol`]: every message on the wire, its parser and the conversions from `rooms`.
//! - [`hub`]: the registry of the live rooms on this node, and the one way to add a member.
//! - [`room_task`]: the task that owns one live room: requests in, saves, outputs out, and the
//!   one way a connection leaves it.
//! - [`connection`]: one WebSocket from `hello` to `bye`.
//! - [`ice`]: the STUN/TURN servers handed to members, with time-limited TURN credentials.
//! - [`clock`]: the time rooms see; a manual clock for tests.
//! - [`cluster`]: which node serves which room (in-process, or claims in Redis).
//!
//! **API boundary:** `web` upgrades the HTTP request and hands the socket to
//! [`connection::serve`]; the back office adds a person to a room through
//! [`hub::Hub::add_member`] and changes a live room through [`hub::Hub::office_command`]. Rooms
//! decide, this crate carries.

pub mod clock;
pub mod cluster;
pub mod connection;
pub mod hub;
pub mod ice;
pub mod protocol;
pub mod room_task;
