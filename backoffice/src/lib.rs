//! The back office: the conventional core of Accordo over sqlx.
//!
//! Everything durable lives here, behind one [`Db`] handle that speaks to SQLite or PostgreSQL
//! with the same repository code (sqlx's `Any` driver; `$1` placeholders work on both).
//!
//! # Layout
//! One folder per area; a new module (signatures, fees, protocol, preservation …) gets its own.
//! - [`platform`]: the database ([`Db`], migrations for both backends), accounts, sessions,
//!   permissions ([`platform::access`]), the audit log, the bodies (organismi), settings, the
//!   file store, and time as Italy reads it.
//! - [`people`]: the people registry every area shares, with the codice fiscale and partita IVA
//!   checks ([`people::fiscal`]).
//! - [`mediation`]: cases (numbering, the full record, the case file), the mediators' register
//!   and appointment engine, the agenda, and online meetings scheduled from the case.
//! - [`rooms`]: mediation rooms kept durable ([`rooms::room_store`]: a [`::rooms::RoomSnapshot`]
//!   saved and loaded back), their personal links and their files.
//! - [`mail`]: the outbox (mail queued in the transaction of its change, delivered at least
//!   once) and iCalendar text.
//!
//! **Invariant:** every function that changes state takes an [`platform::audit::Actor`] and writes its
//! audit record in the same transaction as the change, so a change without its record cannot
//! be committed.
//!
//! **API boundary:** this crate speaks Rust types, not HTTP or JSON; `web` maps them to pages
//! and API bodies. Times are Unix milliseconds ([`UnixMillis`]) taken as arguments where a test
//! needs to move the clock.

pub mod mail;
pub mod mediation;
pub mod people;
pub mod platform;
pub mod rooms;

mod error;

pub use error::StoreError;
pub use platform::db::{Backend, Db};

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
