//! Domain newtypes: identifiers, time, opaque references and redacted text.
//!
//! Every type here has private fields and no setters. Numeric ids are handed out by the edge
//! (database rows, WebSocket connections, SFU tracks) and wrapped with `new`; the string
//! references are built with `parse`, which refuses values the room could not store safely.

use std::fmt;
use std::time::Duration;

/// Longest accepted [`CaseRef`] or [`FileRef`], in characters.
pub const MAX_REFERENCE_CHARS: usize = 128;

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u64);

        impl $name {
            /// Wraps a raw id handed out by the edge.
            pub const fn new(raw: u64) -> Self {
                Self(raw)
            }

            /// The raw id, for storage and wire formats.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

numeric_id!(
    /// Identifies a room (one per case meeting series); assigned by the back office.
    RoomId
);
numeric_id!(
    /// Identifies a member of the room (one person invited to it); assigned by the back office.
    ParticipantId
);
numeric_id!(
    /// Identifies one live WebSocket connection; assigned by the edge, never reused by it.
    ConnectionId
);
numeric_id!(
    /// Identifies one published media track; assigned by the edge (SFU).
    TrackId
);

/// Identifies a session of the room: the plenary or one caucus (sessione separata).
///
/// The plenary is always [`SessionId::PLENARY`]; caucus ids come from a counter inside the room,
/// so they are deterministic and never reused within a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(u64);

impl SessionId {
    /// The plenary session, which exists for the whole life of the room.
    pub const PLENARY: SessionId = SessionId(0);

    /// Wraps a raw session id received from a client (e.g. in a join request).
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw id, for storage and wire formats.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Whether this is the plenary session.
    pub const fn is_plenary(self) -> bool {
        self.0 == Self::PLENARY.0
    }

    /// The id after this one (saturating; a room cannot open 2^64 caucuses).
    pub(crate) const fn next(self) -> SessionId {
        SessionId(self.0.saturating_add(1))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Sequence number of a post (chat message or shared file), increasing across the whole room.
///
/// Clients use it to order and de-duplicate posts; the edge uses it as a storage key. It is
/// not shown to people: a gap only says that posts were made somewhere the reader was not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PostSeq(u64);

impl PostSeq {
    /// The first sequence number of a new room.
    pub const FIRST: PostSeq = PostSeq(1);

    /// Wraps a stored sequence number (used when rebuilding a [`crate::RoomSnapshot`]).
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// The raw number, for storage and wire formats.
    pub const fn get(self) -> u64 {
        self.0
    }

    pub(crate) const fn next(self) -> PostSeq {
        PostSeq(self.0.saturating_add(1))
    }
}

/// A point in time: milliseconds since the Unix epoch (UTC).
///
/// The room never reads a clock: every command carries `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_millis(self) -> u64 {
        self.0
    }

    /// This instant plus `duration`, saturating at the end of representable time.
    pub fn saturating_add(self, duration: Duration) -> Timestamp {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }
}

/// Why a [`CaseRef`] or [`FileRef`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The reference is empty.
    #[error("the reference is empty")]
    Empty,
    /// The reference is longer than [`MAX_REFERENCE_CHARS`].
    #[error("the reference is longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The reference contains whitespace or control characters.
    #[error("the reference contains whitespace or control characters")]
    BadCharacter,
}

fn check_reference(raw: &str) -> Result<(), ReferenceError> {
    if raw.is_empty() {
        return Err(ReferenceError::Empty);
    }
    if raw.chars().count() > MAX_REFERENCE_CHARS {
        return Err(ReferenceError::TooLong {
            max: MAX_REFERENCE_CHARS,
        });
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ReferenceError::BadCharacter);
    }
    Ok(())
}

macro_rules! string_ref {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses an opaque reference: non-empty, at most [`MAX_REFERENCE_CHARS`]
            /// characters, no whitespace or control characters.
            pub fn parse(raw: &str) -> Result<Self, ReferenceError> {
                check_reference(raw)?;
                Ok(Self(raw.to_owned()))
            }

            /// The reference as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_ref!(
    /// Opaque reference to the case (fascicolo) the room belongs to, e.g. `"MED-2025-0142"`.
    CaseRef
);
string_ref!(
    /// Opaque reference to a document in the back office's store, shared into a session.
    FileRef
);

/// Text written by or about a person (names, chat, file names).
///
/// Its `Debug` prints `***`, so logging a command, an event or a room never writes personal data
/// or case contents. Read the text with [`Redacted::expose`] where it is really needed.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Redacted<T>(T);

impl<T> Redacted<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Redacted<String> {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl From<String> for Redacted<String> {
    fn from(value: String) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_refuse_empty_long_and_spaced_values() {
        assert_eq!(CaseRef::parse(""), Err(ReferenceError::Empty));
        assert_eq!(
            FileRef::parse(&"x".repeat(MAX_REFERENCE_CHARS + 1)),
            Err(ReferenceError::TooLong {
                max: MAX_REFERENCE_CHARS
            })
        );
        assert_eq!(
            CaseRef::parse("MED 2025"),
            Err(ReferenceError::BadCharacter)
        );
        assert_eq!(
            CaseRef::parse("MED-2025-0142").map(|c| c.to_string()),
            Ok("MED-2025-0142".to_owned())
        );
    }

    #[test]
    fn redacted_text_never_shows_in_debug_output() {
        let secret = Redacted::from("la mia offerta massima è 40.000 euro");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(secret.expose(), "la mia offerta massima è 40.000 euro");
    }

    #[test]
    fn timestamps_add_durations_without_overflow() {
        let t = Timestamp::from_unix_millis(1_000);
        assert_eq!(
            t.saturating_add(Duration::from_secs(2)).as_unix_millis(),
            3_000
        );
        assert_eq!(
            Timestamp::from_unix_millis(u64::MAX)
                .saturating_add(Duration::from_secs(1))
                .as_unix_millis(),
            u64::MAX
        );
    }
}
