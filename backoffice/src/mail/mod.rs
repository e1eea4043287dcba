//! Outgoing mail: the outbox (queued in the transaction of the change that causes it, delivered
//! at least once) and the iCalendar text of invitations and feeds.

pub mod ical;
pub mod link_key;
pub mod outbox;
