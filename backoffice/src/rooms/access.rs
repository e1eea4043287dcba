//! Who may use a room through a personal link, decided in one place.
//!
//! **Invariant:** the room WebSocket's `hello`, the room page and the room-file API all ask
//! [`by_link`]; none of them decides on its own. A link opens a room when it is the member's
//! current link, not revoked (neither the invite nor the member's flag in the room), and the
//! room is open now (created, lifetime not over). Actions that show or take what is said in a
//! session ([`Need::TakePart`]: room files) further need the member to be in a session: admitted,
//! not sent or removed to the waiting room, not held there, not waiting after the meeting ended.
//!
//! The answer is read from the durable room (`room_store`), which the room task saves before it
//! delivers anything: once a removal or an admission is acknowledged, this check agrees with it.

use rooms::{CaseRef, Location, MemberRecord, ParticipantId, RoomError, RoomId, Timestamp};
use sqlx::Row;

use crate::rooms::invites::{is_well_formed, token_hash, InviteError};
use crate::rooms::room_store::{from_bigint, member_from_row, time_from_bigint};
use crate::StoreError;

/// What the caller is about to do with the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Open the room: the page, the WebSocket (the room then puts the member where they belong).
    Enter,
    /// Take part in a session: upload, read or copy its files.
    TakePart,
}

/// A link that may be used, with what the room knows of its member.
#[derive(Debug, Clone)]
pub struct Granted {
    pub room: RoomId,
    pub member: MemberRecord,
    pub case_ref: CaseRef,
}

impl Granted {
    /// The member's id.
    pub fn member_id(&self) -> ParticipantId {
        self.member.id
    }
}

/// Why a link may not be used now.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Malformed, unknown, replaced or revoked link.
    #[error(transparent)]
    Link(#[from] InviteError),
    /// The room is not open now (not yet, or its lifetime is over); the room's own words.
    #[error(transparent)]
    Closed(RoomError),
    /// The member is not in a session (waiting, sent out, removed, or the meeting ended).
    #[error("the member is not in a session")]
    NotAdmitted,
}

impl From<StoreError> for AccessError {
    fn from(error: StoreError) -> Self {
        Self::Link(InviteError::Store(error))
    }
}

/// Whether the link `token` may be used at `now` for `need`, and by whom.
pub async fn by_link(
    db: &crate::Db,
    token: &str,
    now: Timestamp,
    need: Need,
) -> Result<Granted, AccessError> {
    if !is_well_formed(token) {
        return Err(InviteError::Malformed.into());
    }
    // One statement: the link, the room and the member as one consistent read.
    let row = sqlx::query(
        "SELECT i.revoked_at, r.id AS room_id, r.case_ref, r.created_at, r.lifetime_ms, \
         m.member_id, m.role, m.side, m.display_name, m.invite_revoked, m.location, \
         m.location_session FROM room_invites i \
         JOIN rooms r ON r.id = i.room_id \
         JOIN room_members m ON m.room_id = i.room_id AND m.member_id = i.member_id \
         WHERE i.token_hash = $1",
    )
    .bind(token_hash(token))
    .fetch_optional(db.pool())
    .await
    .map_err(StoreError::from)?
    .ok_or(InviteError::Unknown)?;
    let member = member_from_row(&row)?;
    let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(StoreError::from)?;
    if revoked_at.is_some() || member.invite_revoked {
        return Err(InviteError::Revoked.into());
    }
    let created_at = time_from_bigint(row.try_get("created_at").map_err(StoreError::from)?)?;
    let lifetime = from_bigint(
        row.try_get("lifetime_ms").map_err(StoreError::from)?,
        "lifetime",
    )?;
    let closes_at = created_at.saturating_add(std::time::Duration::from_millis(lifetime));
    if now < created_at {
        return Err(AccessError::Closed(RoomError::NotYetOpen {
            opens_at: created_at,
        }));
    }
    if now >= closes_at {
        return Err(AccessError::Closed(RoomError::Expired {
            expired_at: closes_at,
        }));
    }
    if need == Need::TakePart && !matches!(member.location, Location::InSession(_)) {
        return Err(AccessError::NotAdmitted);
    }
    let case_ref: String = row.try_get("case_ref").map_err(StoreError::from)?;
    Ok(Granted {
        room: RoomId::new(from_bigint(
            row.try_get("room_id").map_err(StoreError::from)?,
            "room id",
        )?),
        member,
        case_ref: CaseRef::parse(&case_ref)
            .map_err(|_| StoreError::Corrupt("case reference".to_owned()))?,
    })
}
