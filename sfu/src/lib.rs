//! The media plane: one UDP port for every peer, RTP/RTCP forwarded only along the forwarding
//! plan that `rooms` computes.
//!
//! This crate is laid down by the foundation (issue #2) so that the workspace has its final
//! shape and the dependency-direction invariants in `ARCHITECTURE.md` can be checked from the
//! first commit; the forwarding itself arrives with issue #4.
