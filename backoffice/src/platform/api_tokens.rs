//! API tokens: how an integration (a body's case management, its accounting) calls the JSON API
//! without a person's session.
//!
//! A body's administrator creates a token with a name, a subset of permissions (its scopes) and
//! optionally an expiry; the secret (`acc_` and 256 random bits, base64url) is shown once and
//! only its SHA-256 is stored, as for sessions and personal links. A token acts for its body
//! and its creator, with the permissions both its scopes and its creator's role allow
//! ([`Grant`]). Creating and revoking a token, and refusing one (revoked, expired, its creator
//! disabled, or asked for something outside its scopes), each write an audit record.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::platform::access::Permission;
use crate::platform::accounts::{self, User};
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::{Db, StoreError, UnixMillis};

/// What every token starts with, so that a leaked one is recognisable (secret scanners).
pub const PREFIX: &str = "acc_";
const SECRET_BYTES: usize = 32;
/// The longest name of a token.
pub const MAX_NAME_CHARS: usize = 100;

/// A token's secret, as the integration presents it. Its `Debug` does not print it.
pub struct TokenSecret(String);

impl TokenSecret {
    fn generate() -> Self {
        let mut bytes = [0_u8; SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The secret, to be shown once to the administrator who created it.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(***)")
    }
}

fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A token as its body's administrator sees it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub organism_id: Option<String>,
    pub name: String,
    /// The username of the administrator who created it.
    pub created_by: String,
    pub scopes: Vec<Permission>,
    pub created_at: UnixMillis,
    pub expires_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
}

impl ApiToken {
    /// Whether the token may still be used at `now`.
    pub fn is_usable(&self, now: UnixMillis) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expires| expires > now)
    }
}

/// What a new token may do.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub scopes: &'a [Permission],
    pub expires_at: Option<UnixMillis>,
}

/// A token accepted for a request: who it acts for and what it may do.
#[derive(Debug, Clone)]
pub struct Grant {
    pub token: ApiToken,
    /// The creator, whose body and role the token acts with.
    pub user: User,
}

impl Grant {
    /// Whether the token's scopes include `permission` (the creator's role is asked apart).
    pub fn in_scope(&self, permission: Permission) -> bool {
        self.token.scopes.contains(&permission)
    }

    /// The token as the author of a change: its creator, through the token.
    pub fn actor(&self, ip: Option<String>) -> Actor {
        Actor {
            user_id: Some(self.user.id.clone()),
            label: format!("{} (token «{}»)", self.user.username, self.token.name),
            ip,
        }
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token has this secret (nothing to record: it belongs to no body).
    Unknown,
    Revoked,
    Expired,
    /// Its creator's account is disabled.
    CreatorDisabled,
}

impl Refusal {
    /// The reason as the audit record keeps it.
    fn code(self) -> &'static str {
        match self {
            Refusal::Unknown => "unknown",
            Refusal::Revoked => "revoked",
            Refusal::Expired => "expired",
            Refusal::CreatorDisabled => "creator_disabled",
        }
    }
}

const COLUMNS: &str = "t.id, t.organism_id, t.name, u.username, t.scopes, t.created_at, \
                       t.expires_at, t.revoked_at, t.created_by";

fn token_from_row(row: &sqlx::any::AnyRow) -> Result<ApiToken, StoreError> {
    let scopes: String = row.try_get("scopes")?;
    let scopes = scopes
        .split_whitespace()
        .map(|code| {
            Permission::parse(code)
                .ok_or_else(|| StoreError::Corrupt(format!("api token scope {code}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ApiToken {
        id: row.try_get("id")?,
        organism_id: row.try_get("organism_id")?,
        name: row.try_get("name")?,
        created_by: row.try_get("username")?,
        scopes,
        created_at: UnixMillis(row.try_get("created_at")?),
        expires_at: row.try_get::<Option<i64>, _>("expires_at")?.map(UnixMillis),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(UnixMillis),
    })
}

fn scope_codes(scopes: &[Permission]) -> String {
    scopes
        .iter()
        .map(|permission| permission.code())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Creates a token of `creator`'s body; the secret is returned once. The caller has checked
/// that the creator may grant each scope.
pub async fn create(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    creator: &User,
    new: NewToken<'_>,
) -> Result<(ApiToken, TokenSecret), StoreError> {
    let name = new.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(StoreError::Invalid("api token name"));
    }
    if new.scopes.is_empty() {
        return Err(StoreError::Invalid("api token scopes"));
    }
    if new.expires_at.is_some_and(|expires| expires <= now) {
        return Err(StoreError::Invalid("api token expiry"));
    }
    let mut scopes = new.scopes.to_vec();
    scopes.sort_by_key(|scope| Permission::ALL.iter().position(|p| p == scope));
    scopes.dedup();
    let id = uuid::Uuid::now_v7().to_string();
    let secret = TokenSecret::generate();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO api_tokens (id, organism_id, created_by, name, token_hash, scopes, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(creator.organism_id.as_deref())
    .bind(&creator.id)
    .bind(name)
    .bind(token_hash(secret.reveal()))
    .bind(scope_codes(&scopes))
    .bind(now.0)
    .bind(new.expires_at.map(|at| at.0))
    .execute(&mut *tx)
    .await?;
    let mut changes = vec![
        Change::set(Field::Name, name),
        Change::set(Field::Scopes, scope_codes(&scopes)),
        Change::secret(Field::Token),
    ];
    if let Some(expires_at) = new.expires_at {
        changes.push(Change::set(Field::ExpiresAt, expires_at.0.to_string()));
    }
    let record = NewRecord {
        action: Action::ApiTokenCreated,
        entity_type: "api_token",
        entity_id: &id,
        changes,
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await?;
    let token = ApiToken {
        id,
        organism_id: creator.organism_id.clone(),
        name: name.to_owned(),
        created_by: creator.username.clone(),
        scopes,
        created_at: now,
        expires_at: new.expires_at,
        revoked_at: None,
    };
    Ok((token, secret))
}

/// The tokens of `organism`, newest first.
pub async fn list(db: &Db, organism: Option<&str>) -> Result<Vec<ApiToken>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.created_by \
         WHERE COALESCE(t.organism_id, '') = $1 ORDER BY t.created_at DESC, t.id DESC"
    );
    let rows = sqlx::query(&sql)
        .bind(organism.unwrap_or(""))
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(token_from_row).collect()
}

/// Revokes token `id` of `organism`; `NotFound` for a token of another body or one already
/// revoked (nothing changes).
pub async fn revoke(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    id: &str,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    let revoked = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 \
         WHERE id = $2 AND COALESCE(organism_id, '') = $3 AND revoked_at IS NULL",
    )
    .bind(now.0)
    .bind(id)
    .bind(organism.unwrap_or(""))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if revoked == 0 {
        return Err(StoreError::NotFound);
    }
    let record = NewRecord {
        action: Action::ApiTokenRevoked,
        entity_type: "api_token",
        entity_id: id,
        changes: vec![Change::set(Field::RevokedAt, now.0.to_string())],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await?;
    Ok(())
}

/// The token whose secret is `secret`, if it may be used at `now`. A known token that may not
/// be used is refused with an audit record; an unknown one is not recorded (it belongs to no
/// body, and anyone could fill the log with them).
pub async fn authenticate(
    db: &Db,
    now: UnixMillis,
    secret: &str,
    ip: Option<String>,
) -> Result<Result<Grant, Refusal>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.created_by \
         WHERE t.token_hash = $1"
    );
    let Some(row) = sqlx::query(&sql)
        .bind(token_hash(secret))
        .fetch_optional(db.pool())
        .await?
    else {
        return Ok(Err(Refusal::Unknown));
    };
    let token = token_from_row(&row)?;
    let created_by: String = row.try_get("created_by")?;
    let user = accounts::find_by_id(db, &created_by)
        .await?
        .ok_or(StoreError::Corrupt(format!(
            "api token {} creator",
            token.id
        )))?;
    let grant = Grant { token, user };
    let refusal = if grant.token.revoked_at.is_some() {
        Refusal::Revoked
    } else if !grant.token.is_usable(now) {
        Refusal::Expired
    } else if !grant.user.active {
        Refusal::CreatorDisabled
    } else {
        return Ok(Ok(grant));
    };
    record_refusal(db, now, &grant, ip, refusal.code()).await?;
    Ok(Err(refusal))
}

/// Records that `grant`'s token was refused `permission` (outside its scopes or its creator's
/// role).
pub async fn record_out_of_scope(
    db: &Db,
    now: UnixMillis,
    grant: &Grant,
    ip: Option<String>,
    permission: Permission,
) -> Result<(), StoreError> {
    record_refusal(db, now, grant, ip, permission.code()).await
}

async fn record_refusal(
    db: &Db,
    now: UnixMillis,
    grant: &Grant,
    ip: Option<String>,
    reason: &str,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    let record = NewRecord {
        action: Action::ApiTokenRefused,
        entity_type: "api_token",
        entity_id: &grant.token.id,
        changes: vec![Change::set(Field::Reason, reason)],
    };
    audit::record(&mut tx, &grant.actor(ip), now, record).await?;
    tx.commit().await?;
    Ok(())
}
