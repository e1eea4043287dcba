//! Per-room settings and the fixed limits of the room.

use std::num::NonZeroU8;
use std::time::Duration;

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 4000;
/// Longest mediator broadcast (a short notice such as "we resume in five minutes"), in characters.
pub const MAX_BROADCAST_CHARS: usize = 500;
/// Longest display name of a member, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
/// Longest name of a shared file, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;
/// Most posts (chat messages and shared files) one session keeps; a post beyond is refused.
pub const MAX_POSTS_PER_SESSION: usize = 2000;
/// Most posts a view carries: the latest ones the member may read; older ones are paged
/// ([`crate::Room::history_page`]).
pub const VIEW_HISTORY_POSTS: usize = 200;
/// Most posts one page of history carries.
pub const MAX_HISTORY_PAGE: usize = 200;
/// Most tracks one member may publish at once (microphone, camera, screen, screen audio).
pub const MAX_TRACKS_PER_MEMBER: usize = 4;

/// How long a room lives by default (R-ROOM-3): 90 days from creation.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// Settings fixed when the room is created.
///
/// Every combination of field values is valid, so the fields are public.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomSettings {
    /// How long the room accepts commands after its creation (R-ROOM-3).
    pub lifetime: Duration,
    /// Most members connected at once, mediators included (R-ROOM-4: mediator + 4).
    ///
    /// One seat is always kept for a mediator: members who are not mediators may occupy at most
    /// `capacity - 1` connections, so the mediator can never be locked out of their own room.
    pub capacity: NonZeroU8,
    /// Arriving members enter the plenary without waiting for a mediator to admit them.
    ///
    /// It applies only to members who have not been sent out or removed by a mediator.
    pub auto_admit: bool,
    /// When the last connected mediator leaves, everybody else is moved to the waiting room until
    /// a mediator is back (the room is never left unsupervised).
    pub hold_when_no_mediator: bool,
}

/// Default capacity: the mediator plus four participants.
const DEFAULT_CAPACITY: NonZeroU8 = match NonZeroU8::new(5) {
    Some(capacity) => capacity,
    None => panic!("5 is not zero"),
};

impl Default for RoomSettings {
    fn default() -> Self {
        RoomSettings {
            lifetime: DEFAULT_LIFETIME,
            capacity: DEFAULT_CAPACITY,
            auto_admit: false,
            hold_when_no_mediator: true,
        }
    }
}
