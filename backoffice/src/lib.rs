//! The back office: the conventional core of Accordo over sqlx.
//!
//! Everything durable lives here, behind one [`Db`] handle that speaks to SQLite or PostgreSQL
//! with the same repository code (sqlx's `Any` driver; `$1` placeholders work on both).
//!
//! # Layout
//! - [`db`]: connecting, migrations (one directory per backend, same meaning), readiness.
//! - [`access`]: roles, permissions and the one function that decides who may do what.
//! - [`accounts`]: users, argon2id passwords, login with lockout, one-time passwords.
//! - [`sessions`]: server-side login sessions (only a hash of the cookie is stored).
//! - [`audit`]: the append-only audit log every state change writes to, in its transaction.
//! - [`organisms`]: the bodies (organismi) that run on an installation; the demo one.
//! - [`cases`]: cases (fascicoli): numbering and the minimal record a room belongs to.
//! - [`case_record`]: the full record of a case: details, participants, accounts, history.
//! - [`room_store`]: mediation rooms kept durable: a [`rooms::RoomSnapshot`] saved after every
//!   command and loaded back to restore the room; one room per case.
//! - [`scheduling`]: online meetings scheduled from a case: room, links and invitations in one
//!   transaction; moving and cancelling them.
//! - [`invites`]: the personal links to a room, one current token per member (only its hash is
//!   stored).
//! - [`settings`]: installation-wide values such as the secret that signs tokens.
//! - [`rome_time`]: times as a person in Italy reads them (Europe/Rome, without a tz database).
//! - [`ical`]: iCalendar text for feeds and the `.ics` attached to invitations.
//! - [`files`]: the file store (local directory or an S3-compatible bucket).
//! - [`outbox`]: mail queued in the transaction of the change that causes it, and the worker
//!   step that delivers it (SMTP or `.eml` files) at least once, with retries and backoff.
//!
//! **Invariant:** every function that changes state takes an [`audit::Actor`] and writes its
//! audit record in the same transaction as the change, so a change without its record cannot
//! be committed.
//!
//! **API boundary:** this crate speaks Rust types, not HTTP or JSON; `web` maps them to pages
//! and API bodies. Times are Unix milliseconds ([`UnixMillis`]) taken as arguments where a test
//! needs to move the clock.

pub mod access;
pub mod accounts;
pub mod agenda;
pub mod audit;
pub mod case_documents;
pub mod case_record;
pub mod cases;
pub mod dates;
pub mod db;
pub mod files;
pub mod fiscal;
pub mod ical;
pub mod invites;
pub mod mediators;
pub mod organisms;
pub mod outbox;
pub mod people;
pub mod rome_time;
pub mod room_files;
pub mod room_store;
pub mod scheduling;
pub mod sessions;
pub mod settings;

mod error;
mod password;

pub use db::{Backend, Db};
pub use error::StoreError;

/// A point in time as milliseconds since the Unix epoch, the one time type stored in the
/// database (portable between SQLite and PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    /// This time moved forward by `duration`.
    pub fn plus(self, duration: std::time::Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }
}
