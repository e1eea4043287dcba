//! Tests of the room: stories with named actors, and property tests over random command
//! sequences that check the invariants after every step.
#![allow(clippy::unwrap_used)]

mod properties;
mod stories;
mod support;
