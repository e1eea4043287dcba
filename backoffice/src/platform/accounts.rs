//! Users: creation, login, password changes.
//!
//! **Invariant:** only argon2id hashes are stored; a created or reset account carries a
//! one-time password that must be replaced at first login (`must_change_password`).

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::is_unique_violation;
use crate::platform::access::Role;
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::platform::names;
use crate::platform::password;
use crate::{Db, StoreError, UnixMillis};

pub use crate::platform::password::{OneTimePassword, PasswordPolicyError};

/// A user account, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub organism_id: Option<String>,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub must_change_password: bool,
    pub active: bool,
}

/// A username: 3 to 64 characters among lowercase letters, digits and `.`, `_`, `-`, `@`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Parses a typed username (case-insensitive; stored lowercase).
    pub fn parse(typed: &str) -> Result<Self, InvalidUsername> {
        let lower = typed.trim().to_lowercase();
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@".contains(c);
        if !(3..=64).contains(&lower.len()) || !lower.chars().all(allowed) {
            return Err(InvalidUsername);
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A username that breaks the rule of [`Username::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a username has 3 to 64 characters among a-z, 0-9, '.', '_', '-', '@'")]
pub struct InvalidUsername;

/// What a new account needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub display_name: String,
    pub role: Role,
    pub organism_id: Option<String>,
}

/// Why a login was refused. The interface shows the same message for an unknown user and a
/// wrong password.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("the new password is the same as the current one")]
    Unchanged,
    #[error(transparent)]
    Policy(#[from] PasswordPolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

const USER_COLUMNS: &str = "id, organism_id, username, display_name, role, \
     must_change_password, active";

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        organism_id: row.try_get("organism_id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        must_change_password: row.try_get::<i64, _>("must_change_password")? != 0,
        active: row.try_get::<i64, _>("active")? != 0,
    })
}

/// Creates an account with a one-time password, returned to be handed over once.
pub async fn create_user(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    new: NewUser,
) -> Result<(User, OneTimePassword), StoreError> {
    if !names::is_one_line(&new.display_name) {
        return Err(StoreError::Invalid("user display name"));
    }
    let one_time = OneTimePassword::generate();
    let hash = password::hash(one_time.reveal().to_owned()).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO users (id, organism_id, username, display_name, role, password_hash, \
         must_change_password, failed_logins, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 1, 0, 1, $7, $7)",
    )
    .bind(id.as_str())
    .bind(new.organism_id.as_deref())
    .bind(new.username.as_str())
    .bind(new.display_name.as_str())
    .bind(new.role.as_str())
    .bind(hash.as_str())
    .bind(now.0)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(error) if is_unique_violation(&error) => return Err(StoreError::AlreadyExists("user")),
        other => other?,
    };
    audit::record(
        &mut tx,
        actor,
        now,
        NewRecord {
            action: Action::UserCreated,
            entity_type: "user",
            entity_id: &id,
            changes: vec![
                Change::set(Field::Username, new.username.as_str()),
                Change::set(Field::DisplayName, new.display_name.as_str()),
                Change::set(Field::Role, new.role.as_str()),
            ],
        },
    )
    .await?;
    tx.commit().await?;
    let user = find_by_id(db, &id).await?.ok_or(StoreError::NotFound)?;
    Ok((user, one_time))
}

/// Creates the first administrator, `admin`, when the installation has no user at all.
/// Returns its one-time password, or `None` when users already exist.
pub async fn ensure_first_admin(
    db: &Db,
    now: UnixMillis,
    organism_id: Option<String>,
) -> Result<Option<OneTimePassword>, StoreError> {
    if count(db).await? > 0 {
        return Ok(None);
    }
    let new = NewUser {
        username: Username("admin".to_owned()),
        display_name: "Amministratore".to_owned(),
        role: Role::Admin,
        organism_id,
    };
    match create_user(db, &Actor::system(), now, new).await {
        Ok((_, one_time)) => Ok(Some(one_time)),
        // Another node created it first.
        Err(StoreError::AlreadyExists(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// How many accounts exist.
pub async fn count(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(db.pool())
        .await?)
}

/// The account with this id.
pub async fn find_by_id(db: &Db, id: &str) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The account with this username (case-insensitive).
pub async fn find_by_username(db: &Db, username: &str) -> Result<Option<User>, StoreError> {
    let Ok(username) = Username::parse(username) else {
        return Ok(None);
    };
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
    let row = sqlx::query(&sql)
        .bind(username.as_str())
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// The accounts of one body (organism), by username; `None` lists only the accounts that
/// belong to no body, never every body's.
pub async fn list(db: &Db, organism_id: Option<&str>) -> Result<Vec<User>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users \
         WHERE organism_id = $1 OR ($1 IS NULL AND organism_id IS NULL) ORDER BY username"
    );
    let rows = sqlx::query(&sql)
        .bind(organism_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(user_from_row).collect()
}

/// Checks a login. Counts failures per account for the audit log (`failed_logins`); a success
/// resets the count. Locks are the caller's: they hold per account and client address.
pub async fn authenticate(
    db: &Db,
    actor_ip: Option<&str>,
    now: UnixMillis,
    username: &str,
    typed_password: &str,
) -> Result<User, LoginError> {
    let Ok(username) = Username::parse(username) else {
        spend_a_verification(typed_password).await;
        return Err(LoginError::InvalidCredentials);
    };
    let sql = format!(
        "SELECT {USER_COLUMNS}, password_hash, failed_logins FROM users WHERE username = $1"
    );
    let row = sqlx::query(&sql)
        .bind(username.as_str())
        .fetch_optional(db.pool())
        .await
        .map_err(StoreError::from)?;
    let Some(row) = row else {
        spend_a_verification(typed_password).await;
        return Err(LoginError::InvalidCredentials);
    };
    let user = user_from_row(&row)?;
    let stored_hash: String = row.try_get("password_hash").map_err(StoreError::from)?;
    let matches = password::verify(typed_password.to_owned(), Some(stored_hash)).await;
    let actor = Actor {
        user_id: matches.then(|| user.id.clone()),
        label: if matches {
            user.username.clone()
        } else {
            "anonimo".to_owned()
        },
        ip: actor_ip.map(str::to_owned),
    };
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    if matches && user.active {
        sqlx::query("UPDATE users SET failed_logins = 0 WHERE id = $1")
            .bind(user.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from)?;
        audit::record(
            &mut tx,
            &actor,
            now,
            login_record(Action::UserLogin, &user.id, vec![]),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        return Ok(user);
    }
    // Increment in the database so that concurrent failures all count.
    let failed: i64 = sqlx::query_scalar(
        "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
    )
    .bind(user.id.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let changes = vec![Change::changed(
        Field::FailedLogins,
        (failed - 1).to_string(),
        failed.to_string(),
    )];
    audit::record(
        &mut tx,
        &actor,
        now,
        login_record(Action::UserLoginFailed, &user.id, changes),
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Err(LoginError::InvalidCredentials)
}

/// Spends the time of one password verification without checking anything: a refusal that
/// needs no check (an unknown user, a lock) takes as long as one that does.
pub async fn spend_a_verification(typed_password: &str) {
    password::verify(typed_password.to_owned(), None).await;
}

/// Records in the audit log that too many failures from `actor_ip` locked `username` until
/// `until` (nothing for a username that does not exist).
pub async fn record_lock(
    db: &Db,
    actor_ip: Option<&str>,
    now: UnixMillis,
    username: &str,
    until: UnixMillis,
) -> Result<(), StoreError> {
    let Some(user) = find_by_username(db, username).await? else {
        return Ok(());
    };
    let actor = Actor {
        user_id: None,
        label: "anonimo".to_owned(),
        ip: actor_ip.map(str::to_owned),
    };
    let changes = vec![Change::set(Field::LockedUntil, until.0.to_string())];
    let mut tx = db.begin().await?;
    audit::record(
        &mut tx,
        &actor,
        now,
        login_record(Action::UserLocked, &user.id, changes),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

fn login_record<'a>(action: Action, user_id: &'a str, changes: Vec<Change>) -> NewRecord<'a> {
    NewRecord {
        action,
        entity_type: "user",
        entity_id: user_id,
        changes,
    }
}

/// Replaces a user's password after checking the current one and the policy; clears the
/// one-time flag and ends every session of the user but the one the change was made from,
/// named by the hash the database stores of it (`SessionToken::hash`).
pub async fn change_password(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    user_id: &str,
    kept_session_hash: &str,
    current: &str,
    new: &str,
) -> Result<(), PasswordChangeError> {
    let row = sqlx::query("SELECT username, password_hash FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await
        .map_err(StoreError::from)?
        .ok_or(StoreError::NotFound)?;
    let username: String = row.try_get("username").map_err(StoreError::from)?;
    let stored: String = row.try_get("password_hash").map_err(StoreError::from)?;
    if !password::verify(current.to_owned(), Some(stored)).await {
        return Err(PasswordChangeError::WrongCurrentPassword);
    }
    if current == new {
        return Err(PasswordChangeError::Unchanged);
    }
    password::check_policy(&username, new)?;
    let hash = password::hash(new.to_owned()).await?;
    store_password(
        db,
        actor,
        now,
        user_id,
        &hash,
        Some(kept_session_hash),
        Action::UserPasswordChanged,
    )
    .await?;
    Ok(())
}

/// Gives an account a new one-time password and ends its sessions (administrators, command
/// line).
pub async fn reset_password(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    username: &str,
) -> Result<OneTimePassword, StoreError> {
    let username = Username::parse(username).map_err(|_| StoreError::NotFound)?;
    let user_id: String = sqlx::query_scalar("SELECT id FROM users WHERE username = $1")
        .bind(username.as_str())
        .fetch_optional(db.pool())
        .await?
        .ok_or(StoreError::NotFound)?;
    let one_time = OneTimePassword::generate();
    let hash = password::hash(one_time.reveal().to_owned()).await?;
    store_password(
        db,
        actor,
        now,
        &user_id,
        &hash,
        None,
        Action::UserPasswordReset,
    )
    .await?;
    Ok(one_time)
}

/// Stores a new password hash. A change by the user keeps the session it was made from; a
/// reset (`kept_session_hash` `None`) stores a one-time password and ends every session.
async fn store_password(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    user_id: &str,
    hash: &str,
    kept_session_hash: Option<&str>,
    action: Action,
) -> Result<(), StoreError> {
    let one_time = kept_session_hash.is_none();
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE users SET password_hash = $1, must_change_password = $2, failed_logins = 0, \
         updated_at = $3 WHERE id = $4",
    )
    .bind(hash)
    .bind(i64::from(one_time))
    .bind(now.0)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    // Whoever holds a stolen session loses it with the password. (An empty string is never
    // the hash of a token.)
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(kept_session_hash.unwrap_or_default())
        .execute(&mut *tx)
        .await?;
    let changes = vec![
        Change::secret(Field::Password),
        Change::set(Field::MustChangePassword, one_time.to_string()),
    ];
    audit::record(
        &mut tx,
        actor,
        now,
        NewRecord {
            action,
            entity_type: "user",
            entity_id: user_id,
            changes,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
