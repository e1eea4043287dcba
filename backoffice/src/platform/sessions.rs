//! Server-side login sessions.
//!
//! The browser holds a random 256-bit token in a cookie; the database holds only its SHA-256,
//! so a copy of the database does not let anyone log in. Sessions expire after a period of
//! inactivity and, in any case, after an absolute lifetime.

use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::platform::accounts::{self, User};
use crate::platform::audit::{self, Action, Actor, NewRecord};
use crate::{Db, StoreError, UnixMillis};

/// The default for how long a session lasts without requests (the configuration may say
/// otherwise).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session ends after this long whatever happens.
pub const ABSOLUTE_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The secret the browser holds. Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    fn generate() -> Self {
        let mut bytes = [0_u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(hex::encode(bytes))
    }

    /// The token as the cookie carries it.
    pub fn from_cookie(value: &str) -> Self {
        Self(value.to_owned())
    }

    /// The value to put in the cookie.
    pub fn cookie_value(&self) -> &str {
        &self.0
    }

    /// What the database stores of the token: its SHA-256, in hexadecimal.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// Opens a session for a user who just logged in.
pub async fn create(db: &Db, user_id: &str, now: UnixMillis) -> Result<SessionToken, StoreError> {
    let token = SessionToken::generate();
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(token.hash())
    .bind(user_id)
    .bind(now.0)
    .bind(now.plus(ABSOLUTE_LIFETIME).0)
    .execute(db.pool())
    .await?;
    Ok(token)
}

/// The user of a live session, refreshing its idle timer; `None` for an unknown or expired
/// session, one without requests for `idle_timeout`, or a disabled user.
pub async fn lookup(
    db: &Db,
    token: &SessionToken,
    now: UnixMillis,
    idle_timeout: Duration,
) -> Result<Option<User>, StoreError> {
    let idle_cutoff = UnixMillis(
        now.0
            .saturating_sub(i64::try_from(idle_timeout.as_millis()).unwrap_or(i64::MAX)),
    );
    let row = sqlx::query(
        "UPDATE sessions SET last_seen_at = $1 \
         WHERE token_hash = $2 AND expires_at > $1 AND last_seen_at > $3 RETURNING user_id",
    )
    .bind(now.0)
    .bind(token.hash())
    .bind(idle_cutoff.0)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let user_id: String = row.try_get("user_id")?;
    Ok(accounts::find_by_id(db, &user_id)
        .await?
        .filter(|user| user.active))
}

/// Ends a session (logout), with its audit record.
pub async fn end(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    token: &SessionToken,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    let user_id: Option<String> =
        sqlx::query_scalar("DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id")
            .bind(token.hash())
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(user_id) = user_id {
        let record = NewRecord {
            action: Action::UserLogout,
            entity_type: "user",
            entity_id: &user_id,
            changes: vec![],
        };
        audit::record(&mut tx, actor, now, record).await?;
    }
    tx.commit().await?;
    Ok(())
}
