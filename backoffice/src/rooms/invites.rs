//! Personal links to a room (R-ROOM-2): each member of a room has at most one current invite.
//!
//! A link carries a random 256-bit token, base64url without padding (43 characters). The
//! database keeps only the token's SHA-256, so a copy of the database opens no room. Issuing a
//! member a new token replaces the previous one, which stops working at once; revoking keeps the
//! hash so that the link is recognised as revoked rather than unknown. The member's email is
//! kept with the invite, for mailing the link.
//!
//! This module only answers "whose link is this". Whether the link may be used now (the room's
//! lifetime, its own revoked flag, the member's place) is decided by [`crate::rooms::access`];
//! a revocation by the room (`Remove` with revocation, `RevokeInvite`) revokes the invite in
//! the same save (`room_store::save`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use rooms::{ParticipantId, RoomId};
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::rooms::room_store::{from_bigint, to_bigint};
use crate::{Db, StoreError, UnixMillis};

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;
/// Characters of a token: 32 bytes in base64url without padding.
pub const TOKEN_CHARS: usize = 43;

/// The secret of a personal link (or of a calendar feed). Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteToken(String);

impl InviteToken {
    pub(crate) fn generate() -> Self {
        let mut bytes = [0_u8; TOKEN_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The token, to be put in the link sent to the member.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InviteToken(***)")
    }
}

/// Whether `text` has the shape of a token: exactly the 43 characters that encode 32 bytes.
pub(crate) fn is_well_formed(text: &str) -> bool {
    text.len() == TOKEN_CHARS
        && URL_SAFE_NO_PAD
            .decode(text)
            .is_ok_and(|bytes| bytes.len() == TOKEN_BYTES)
}

/// What the database stores instead of a token.
pub(crate) fn token_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The current invite of a member, without its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub room_id: RoomId,
    pub member_id: ParticipantId,
    /// Where the link is to be mailed.
    pub email: Option<String>,
    pub issued_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
}

/// Why a link does not open a room.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    /// Not a token at all; refused without asking the database.
    #[error("the link is malformed")]
    Malformed,
    /// No current invite has this token (never issued, or replaced by a newer one).
    #[error("the link is unknown")]
    Unknown,
    /// The invite was revoked.
    #[error("the link was revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Issues a member of a room a new personal link, replacing (and so disabling) any previous
/// one; a revocation is lifted. `email` replaces the address kept with the invite; `None` keeps
/// the previous one (a link issued again goes where the first one went). The member must be in
/// the saved room (else [`StoreError::NotFound`]).
pub async fn issue(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    room_id: RoomId,
    member_id: ParticipantId,
    email: Option<&str>,
) -> Result<InviteToken, StoreError> {
    let mut tx = db.begin().await?;
    let token = issue_in(&mut tx, actor, now, room_id, member_id, email).await?;
    tx.commit().await?;
    Ok(token)
}

/// [`issue`] in the caller's transaction.
pub async fn issue_in(
    tx: &mut sqlx::AnyConnection,
    actor: &Actor,
    now: UnixMillis,
    room_id: RoomId,
    member_id: ParticipantId,
    email: Option<&str>,
) -> Result<InviteToken, StoreError> {
    let room = to_bigint(room_id.get(), "room id")?;
    let member = to_bigint(member_id.get(), "member id")?;
    let token = InviteToken::generate();
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM room_members WHERE room_id = $1 AND member_id = $2")
            .bind(room)
            .bind(member)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    let previous: Option<Option<String>> =
        sqlx::query_scalar("SELECT email FROM room_invites WHERE room_id = $1 AND member_id = $2")
            .bind(room)
            .bind(member)
            .fetch_optional(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO room_invites (room_id, member_id, token_hash, email, issued_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, NULL) \
         ON CONFLICT (room_id, member_id) DO UPDATE SET token_hash = excluded.token_hash, \
         email = COALESCE(excluded.email, room_invites.email), issued_at = excluded.issued_at, \
         revoked_at = NULL",
    )
    .bind(room)
    .bind(member)
    .bind(token_hash(token.reveal()))
    .bind(email)
    .bind(now.0)
    .execute(&mut *tx)
    .await?;
    let mut changes = vec![Change::set(Field::Member, member_id.to_string())];
    match &previous {
        None => changes.push(Change::set(Field::Token, "***")),
        Some(_) => changes.push(Change::secret(Field::Token)),
    }
    let previous_email = previous.flatten();
    if let Some(email) = email.filter(|email| previous_email.as_deref() != Some(*email)) {
        changes.push(Change::new(
            Field::Email,
            previous_email,
            Some(email.to_owned()),
        ));
    }
    let entity_id = room_id.to_string();
    let record = NewRecord {
        action: Action::InviteIssued,
        entity_type: "room",
        entity_id: &entity_id,
        changes,
    };
    audit::record(tx, actor, now, record).await?;
    Ok(token)
}

/// The room and member a link opens. A malformed token is refused before the database is asked.
pub async fn resolve(db: &Db, token: &str) -> Result<(RoomId, ParticipantId), InviteError> {
    if !is_well_formed(token) {
        return Err(InviteError::Malformed);
    }
    let row = sqlx::query(
        "SELECT room_id, member_id, revoked_at FROM room_invites WHERE token_hash = $1",
    )
    .bind(token_hash(token))
    .fetch_optional(db.pool())
    .await
    .map_err(StoreError::from)?
    .ok_or(InviteError::Unknown)?;
    let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(StoreError::from)?;
    if revoked_at.is_some() {
        return Err(InviteError::Revoked);
    }
    let room: i64 = row.try_get("room_id").map_err(StoreError::from)?;
    let member: i64 = row.try_get("member_id").map_err(StoreError::from)?;
    Ok((
        RoomId::new(from_bigint(room, "room id")?),
        ParticipantId::new(from_bigint(member, "member id")?),
    ))
}

/// Revokes a member's current link. Revoking a member without a working link changes nothing
/// and succeeds; a member not in the saved room is [`StoreError::NotFound`].
pub async fn revoke(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    room_id: RoomId,
    member_id: ParticipantId,
) -> Result<(), StoreError> {
    let room = to_bigint(room_id.get(), "room id")?;
    let member = to_bigint(member_id.get(), "member id")?;
    let mut tx = db.begin().await?;
    let revoked = sqlx::query(
        "UPDATE room_invites SET revoked_at = $1 \
         WHERE room_id = $2 AND member_id = $3 AND revoked_at IS NULL",
    )
    .bind(now.0)
    .bind(room)
    .bind(member)
    .execute(&mut *tx)
    .await?;
    if revoked.rows_affected() == 0 {
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM room_members WHERE room_id = $1 AND member_id = $2")
                .bind(room)
                .bind(member)
                .fetch_optional(&mut *tx)
                .await?;
        return if exists.is_some() {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        };
    }
    let entity_id = room_id.to_string();
    let record = NewRecord {
        action: Action::InviteRevoked,
        entity_type: "room",
        entity_id: &entity_id,
        changes: vec![
            Change::set(Field::Member, member_id.to_string()),
            Change::set(Field::RevokedAt, now.0.to_string()),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await?;
    Ok(())
}

/// The current invite of a member, if one was issued.
pub async fn current(
    db: &Db,
    room_id: RoomId,
    member_id: ParticipantId,
) -> Result<Option<Invite>, StoreError> {
    let row = sqlx::query(
        "SELECT email, issued_at, revoked_at FROM room_invites \
         WHERE room_id = $1 AND member_id = $2",
    )
    .bind(to_bigint(room_id.get(), "room id")?)
    .bind(to_bigint(member_id.get(), "member id")?)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(Invite {
            room_id,
            member_id,
            email: row.try_get("email")?,
            issued_at: UnixMillis(row.try_get("issued_at")?),
            revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(UnixMillis),
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters_and_differ() {
        let first = InviteToken::generate();
        let second = InviteToken::generate();
        assert_eq!(first.reveal().len(), TOKEN_CHARS);
        assert!(first
            .reveal()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert!(is_well_formed(first.reveal()));
        assert_ne!(first, second);
        assert_eq!(format!("{first:?}"), "InviteToken(***)");
    }

    #[test]
    fn only_the_exact_shape_is_well_formed() {
        let token = InviteToken::generate();
        let text = token.reveal();
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&text[1..]));
        assert!(!is_well_formed(&format!("{text}A")));
        assert!(!is_well_formed(&format!("{text}=")));
        assert!(!is_well_formed(&format!("+{}", &text[1..])));
        assert!(!is_well_formed(&format!("/{}", &text[1..])));
        assert!(!is_well_formed(&format!("é{}", &text[2..])));
        // The last character carries 4 bits: one with the spare bits set encodes no token.
        assert!(is_well_formed(&format!("{}A", &"A".repeat(42))));
        assert!(!is_well_formed(&format!("{}B", &"A".repeat(42))));
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
