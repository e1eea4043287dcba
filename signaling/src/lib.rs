//! The WebSocket edge of a mediation room: a typed, versioned JSON protocol, the connection
//! lifecycle (heartbeats, resume, back-pressure) and fan-out across nodes.
//!
//! This crate is laid down by the foundation (issue #2) so that the workspace has its final
//! shape and the dependency-direction invariants in `ARCHITECTURE.md` can be checked from the
//! first commit; the protocol itself arrives with the rooms work (issue #3).
