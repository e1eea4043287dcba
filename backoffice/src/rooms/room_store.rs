//! The durable state of mediation rooms: [`RoomSnapshot`]s kept in tables, so that a room
//! survives a restart of the server and can be rebuilt anywhere with [`Room::restore`].
//!
//! - `rooms`: one row per room, at most one room per case: the case reference, settings and the
//!   two counters of the snapshot.
//! - `room_members`: every member with role, side, display name, revoked flag and location. A
//!   room never forgets a member (a removed member waits), so rows are never deleted.
//! - `room_sessions`: the plenary and every caucus. A session that is no longer in the snapshot
//!   is marked ended (`ended_at`), never deleted.
//! - `room_posts`, `room_post_audience`: chat messages and shared files with the members who may
//!   read them, written once when first saved and never changed.
//!
//! The edge calls [`save`] after every command that changed a room, with that command's audit
//! record, and [`load_to_serve`] to bring a room back.
//!
//! **Invariant:** a room is written only under the newest claim. The node serving a live room
//! holds an epoch (fencing token, `rooms.epoch`): [`load_to_serve`] raises the stored epoch to
//! its own before reading, and [`save`] writes only when no newer epoch is stored, so a node
//! that lost its claim ([`StoreError::Fenced`]) cannot overwrite the new owner's state.
//! Each member's last command number is saved with the room in the same transaction: a
//! command whose effect was stored is known as processed wherever the room is served next.
//!
//! **Invariant:** `load(save(snapshot)) == snapshot` for every snapshot of a real room. Every
//! field has its column; ids, counters and times are stored as they are, and a value the
//! database cannot hold (2^63 or more, a lifetime finer than a millisecond) is refused with
//! [`StoreError::Invalid`], never rounded.
//!
//! **Invariant:** posts are kept with the case. The posts of an ended caucus stay in
//! `room_posts`, but [`load`] returns only the open sessions and their posts, as the room itself
//! holds them.

use std::collections::BTreeMap;
use std::num::NonZeroU8;
use std::time::Duration;

use rand::Rng;
use rooms::{
    ChatMessage, FileRef, Location, MemberRecord, ParticipantId, Post, PostRecord, PostSeq,
    Redacted, Role, Room, RoomId, RoomSettings, RoomSnapshot, SessionId, SessionRecord, SharedFile,
    Side, Timestamp,
};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Row};

use crate::error::{is_foreign_key_violation, is_unique_violation};
use crate::mediation::cases::CaseId;
use crate::mediation::cases::{self, Case, CASE_COLUMNS};
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::{Backend, Db, StoreError, UnixMillis};

/// Ids drawn for a new room before giving up when each one is taken. Ids are random among
/// 2^63 - 1 values: even a second draw never happens in practice.
const ID_ATTEMPTS: usize = 3;

/// Most rows one multi-row statement carries, far below the parameter limits of both backends.
const ROWS_PER_STATEMENT: usize = 100;

/// Creates the room of a case, with no members yet, and returns its first snapshot.
///
/// The id is a random positive 63-bit number. An unknown case is [`StoreError::NotFound`]; a
/// case that already has a room is [`StoreError::AlreadyExists`]`("room")`.
pub async fn create_room(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    case_id: &CaseId,
    settings: RoomSettings,
) -> Result<RoomSnapshot, StoreError> {
    let case = cases::find(db, case_id)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        if room_for_case(db, &case.id).await?.is_some() {
            return Err(StoreError::AlreadyExists("room"));
        }
        let snapshot = new_snapshot(&case, now, settings, &[])?;
        let mut tx = db.begin().await?;
        let inserted = insert_room(&mut tx, actor, now, &case.id, &snapshot).await;
        let inserted = match inserted {
            Ok(()) => tx.commit().await.map_err(StoreError::from),
            Err(error) => Err(error),
        };
        match inserted {
            Ok(()) => return Ok(snapshot),
            // Either the drawn id is taken or another room was just created for the case,
            // which the check at the top of the loop tells.
            Err(StoreError::Database(error))
                if is_unique_violation(&error) && attempts < ID_ATTEMPTS => {}
            Err(StoreError::Database(error)) if is_unique_violation(&error) => {
                if room_for_case(db, &case.id).await?.is_some() {
                    return Err(StoreError::AlreadyExists("room"));
                }
                return Err(StoreError::Database(error));
            }
            Err(error) => return Err(error),
        }
    }
}

/// A member to put in a room as it is created.
#[derive(Debug, Clone)]
pub struct FirstMember {
    pub member: ParticipantId,
    pub role: Role,
    pub side: Option<Side>,
    pub display_name: String,
}

/// The snapshot of a new room of `case` holding `members`, under a fresh random id.
fn new_snapshot(
    case: &Case,
    now: UnixMillis,
    settings: RoomSettings,
    members: &[FirstMember],
) -> Result<RoomSnapshot, StoreError> {
    let created_at =
        Timestamp::from_unix_millis(u64::try_from(now.0).map_err(|_| StoreError::Invalid("time"))?);
    let id = RoomId::new(rand::thread_rng().gen_range(1..=i64::MAX).unsigned_abs());
    let mut room = Room::new(id, case.reference.clone(), created_at, settings);
    for member in members {
        let command = rooms::Command::AddMember {
            member: member.member,
            role: member.role,
            side: member.side,
            display_name: Redacted::new(member.display_name.clone()),
        };
        room.handle(created_at, command)
            .map_err(|_| StoreError::Invalid("room member"))?;
    }
    Ok(room.snapshot())
}

/// Creates the room of `case` with `members`, in the caller's transaction (the caller knows
/// the case has no room yet: a concurrent creation makes the commit fail on the unique case).
pub async fn create_room_in(
    conn: &mut AnyConnection,
    actor: &Actor,
    now: UnixMillis,
    case: &Case,
    settings: RoomSettings,
    members: &[FirstMember],
) -> Result<RoomSnapshot, StoreError> {
    let snapshot = new_snapshot(case, now, settings, members)?;
    insert_room(conn, actor, now, &case.id, &snapshot).await?;
    Ok(snapshot)
}

async fn insert_room(
    tx: &mut AnyConnection,
    actor: &Actor,
    now: UnixMillis,
    case_id: &CaseId,
    snapshot: &RoomSnapshot,
) -> Result<(), StoreError> {
    let room = RoomRow::new(snapshot)?;
    sqlx::query(
        "INSERT INTO rooms (id, case_id, case_ref, created_at, lifetime_ms, capacity, \
         auto_admit, hold_when_no_mediator, next_session, next_post) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(room.id)
    .bind(case_id)
    .bind(room.case_ref)
    .bind(room.created_at)
    .bind(room.lifetime_ms)
    .bind(room.capacity)
    .bind(room.auto_admit)
    .bind(room.hold_when_no_mediator)
    .bind(room.next_session)
    .bind(room.next_post)
    .execute(&mut *tx)
    .await?;
    write_contents(tx, now, room.id, snapshot, &BTreeMap::new()).await?;
    let settings = &snapshot.settings;
    let entity_id = snapshot.id.to_string();
    let record = NewRecord {
        action: Action::RoomCreated,
        entity_type: "room",
        entity_id: &entity_id,
        changes: vec![
            Change::set(Field::CaseId, case_id.as_str()),
            Change::set(Field::CaseRef, snapshot.case_ref.as_str()),
            Change::set(Field::Capacity, settings.capacity.to_string()),
            Change::set(Field::LifetimeMs, room.lifetime_ms.to_string()),
            Change::set(Field::AutoAdmit, settings.auto_admit.to_string()),
            Change::set(
                Field::HoldWhenNoMediator,
                settings.hold_when_no_mediator.to_string(),
            ),
        ],
    };
    audit::record(tx, actor, now, record).await?;
    Ok(())
}

/// What the node serving a live room stores with its snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Serving {
    /// The epoch of the node's claim on the room (its fencing token).
    pub epoch: u64,
    /// The highest command number processed for each member (absent: none yet).
    pub last_command_seqs: BTreeMap<ParticipantId, u64>,
}

/// Stores the whole snapshot of a room created with [`create_room`], in one transaction with
/// `audit_record` when given (the command that changed the room) and what `serving` tells
/// (a member's stored command number never goes down).
///
/// Cheap enough to call after every command: a handful of statements whatever the history, as
/// posts already stored are not sent again. Idempotent: saving the same snapshot twice changes
/// nothing (but writes `audit_record` twice). Sessions missing from the snapshot are marked
/// ended at `now`; their posts stay stored. An unknown room is [`StoreError::NotFound`]; a
/// room stored under a newer epoch than `serving.epoch` is [`StoreError::Fenced`], and
/// nothing is written.
pub async fn save(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    snapshot: &RoomSnapshot,
    serving: &Serving,
    audit_record: Option<NewRecord<'_>>,
) -> Result<(), StoreError> {
    let room = RoomRow::new(snapshot)?;
    let epoch = to_bigint(serving.epoch, "epoch")?;
    let mut tx = db.begin().await?;
    let updated = sqlx::query(
        "UPDATE rooms SET case_ref = $1, created_at = $2, lifetime_ms = $3, capacity = $4, \
         auto_admit = $5, hold_when_no_mediator = $6, next_session = $7, next_post = $8, \
         epoch = $10 WHERE id = $9 AND epoch <= $10",
    )
    .bind(room.case_ref)
    .bind(room.created_at)
    .bind(room.lifetime_ms)
    .bind(room.capacity)
    .bind(room.auto_admit)
    .bind(room.hold_when_no_mediator)
    .bind(room.next_session)
    .bind(room.next_post)
    .bind(room.id)
    .bind(epoch)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(not_updated(&mut tx, room.id).await);
    }
    write_contents(&mut tx, now, room.id, snapshot, &serving.last_command_seqs).await?;
    if let Some(record) = audit_record {
        audit::record(&mut tx, actor, now, record).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Why a conditional update of the room `id` changed no row: the room is unknown
/// ([`StoreError::NotFound`]) or stored under a newer epoch ([`StoreError::Fenced`]).
async fn not_updated(conn: &mut AnyConnection, id: i64) -> StoreError {
    let exists = sqlx::query_scalar::<_, i64>("SELECT 1 FROM rooms WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await;
    match exists {
        Ok(Some(_)) => StoreError::Fenced,
        Ok(None) => StoreError::NotFound,
        Err(error) => error.into(),
    }
}

/// The epoch a room was last saved or taken over under; `None` for an unknown room. A node
/// claiming the room takes a higher one.
pub async fn stored_epoch(db: &Db, room_id: RoomId) -> Result<Option<u64>, StoreError> {
    let epoch: Option<i64> = sqlx::query_scalar("SELECT epoch FROM rooms WHERE id = $1")
        .bind(to_bigint(room_id.get(), "room id")?)
        .fetch_optional(db.pool())
        .await?;
    epoch.map(|raw| from_bigint(raw, "epoch")).transpose()
}

/// Takes the room over under `epoch`, then loads it: from now on saves under an older epoch
/// are refused, so the snapshot returned is the last one any earlier owner could store.
/// Returns the snapshot (as [`load`]) and the members' last command numbers; `None` for an
/// unknown room, [`StoreError::Fenced`] when a newer epoch is stored already.
pub async fn load_to_serve(
    db: &Db,
    room_id: RoomId,
    epoch: u64,
) -> Result<Option<(RoomSnapshot, Serving)>, StoreError> {
    let id = to_bigint(room_id.get(), "room id")?;
    let mut tx = db.begin().await?;
    let raised = sqlx::query("UPDATE rooms SET epoch = $1 WHERE id = $2 AND epoch <= $1")
        .bind(to_bigint(epoch, "epoch")?)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if raised.rows_affected() == 0 {
        return match not_updated(&mut tx, id).await {
            StoreError::NotFound => Ok(None),
            error => Err(error),
        };
    }
    tx.commit().await?;
    let Some(snapshot) = load(db, room_id).await? else {
        return Ok(None);
    };
    let rows = sqlx::query(
        "SELECT member_id, last_command_seq FROM room_members \
         WHERE room_id = $1 AND last_command_seq > 0",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    let last_command_seqs = rows
        .iter()
        .map(|row| {
            Ok((
                ParticipantId::new(from_bigint(row.try_get("member_id")?, "member id")?),
                from_bigint(row.try_get("last_command_seq")?, "command number")?,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    let serving = Serving {
        epoch,
        last_command_seqs,
    };
    Ok(Some((snapshot, serving)))
}

/// The snapshot of a room as last saved, with its open sessions and their posts only; `None`
/// for an unknown room.
pub async fn load(db: &Db, room_id: RoomId) -> Result<Option<RoomSnapshot>, StoreError> {
    let id = to_bigint(room_id.get(), "room id")?;
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        // One consistent view across the reads below, even while the room is being saved.
        // (A SQLite transaction reads one snapshot of the database already.)
        // `query`, not `raw_sql`: the latter's future is not `Send` for every lifetime, which
        // axum handlers and spawned tasks require.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    let Some(room) = sqlx::query(
        "SELECT case_ref, created_at, lifetime_ms, capacity, auto_admit, \
         hold_when_no_mediator, next_session, next_post FROM rooms WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let members = sqlx::query(
        "SELECT member_id, role, side, display_name, invite_revoked, location, \
         location_session FROM room_members WHERE room_id = $1 ORDER BY member_id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let sessions = sqlx::query(
        "SELECT session_id, opened_at, timer_ends_at FROM room_sessions \
         WHERE room_id = $1 AND ended_at IS NULL ORDER BY session_id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let posts = sqlx::query(
        "SELECT p.seq, p.session_id, p.sender_id, p.kind, p.chat_text, p.file_ref, \
         p.file_name, p.posted_at FROM room_posts p JOIN room_sessions s \
         ON s.room_id = p.room_id AND s.session_id = p.session_id \
         WHERE p.room_id = $1 AND s.ended_at IS NULL ORDER BY p.seq",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let audience = sqlx::query(
        "SELECT a.seq, a.member_id FROM room_post_audience a \
         JOIN room_posts p ON p.room_id = a.room_id AND p.seq = a.seq \
         JOIN room_sessions s ON s.room_id = p.room_id AND s.session_id = p.session_id \
         WHERE a.room_id = $1 AND s.ended_at IS NULL ORDER BY a.seq, a.member_id",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;

    let mut readers: BTreeMap<i64, Vec<ParticipantId>> = BTreeMap::new();
    for row in &audience {
        let member = ParticipantId::new(from_bigint(row.try_get("member_id")?, "reader")?);
        readers.entry(row.try_get("seq")?).or_default().push(member);
    }
    let mut sessions = sessions
        .iter()
        .map(session_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    for row in &posts {
        let seq: i64 = row.try_get("seq")?;
        let post = post_from_row(row)?;
        let session = sessions
            .iter_mut()
            .find(|session| session.id == post.session())
            .ok_or_else(|| StoreError::Corrupt(format!("session of post {seq}")))?;
        session.posts.push(PostRecord {
            post,
            audience: readers.remove(&seq).unwrap_or_default(),
        });
    }
    Ok(Some(RoomSnapshot {
        id: room_id,
        case_ref: rooms::CaseRef::parse(&room.try_get::<String, _>("case_ref")?)
            .map_err(|_| StoreError::Corrupt(format!("case reference of room {room_id}")))?,
        created_at: time_from_bigint(room.try_get("created_at")?)?,
        settings: settings_from_row(&room)?,
        members: members
            .iter()
            .map(member_from_row)
            .collect::<Result<_, _>>()?,
        sessions,
        next_session: SessionId::new(from_bigint(room.try_get("next_session")?, "next session")?),
        next_post: PostSeq::new(from_bigint(room.try_get("next_post")?, "next post")?),
    }))
}

/// Links a room member to a back-office user, who may then join from their login. Audited
/// (`room.member_linked`). A member or user already linked in this room is
/// [`StoreError::AlreadyExists`]; an unknown member or user is [`StoreError::NotFound`].
pub async fn link_user(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    room_id: RoomId,
    member_id: ParticipantId,
    user_id: &str,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    link_user_in(&mut tx, actor, now, room_id, member_id, user_id).await?;
    tx.commit().await?;
    Ok(())
}

/// [`link_user`] in the caller's transaction.
pub async fn link_user_in(
    tx: &mut AnyConnection,
    actor: &Actor,
    now: UnixMillis,
    room_id: RoomId,
    member_id: ParticipantId,
    user_id: &str,
) -> Result<(), StoreError> {
    let room = to_bigint(room_id.get(), "room id")?;
    let member = to_bigint(member_id.get(), "member id")?;
    let inserted = sqlx::query(
        "INSERT INTO room_member_users (room_id, member_id, user_id) VALUES ($1, $2, $3)",
    )
    .bind(room)
    .bind(member)
    .bind(user_id)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(error) if is_unique_violation(&error) => {
            return Err(StoreError::AlreadyExists("member link"))
        }
        Err(error) if is_foreign_key_violation(&error) => return Err(StoreError::NotFound),
        other => other?,
    };
    let entity_id = room_id.get().to_string();
    let record = NewRecord {
        action: Action::RoomMemberLinked,
        entity_type: "room",
        entity_id: &entity_id,
        changes: vec![
            Change::set(Field::Member, member_id.get().to_string()),
            Change::set(Field::User, user_id),
        ],
    };
    audit::record(tx, actor, now, record).await
}

/// The member a back-office user is in a room, if linked.
pub async fn member_of_user(
    db: &Db,
    room_id: RoomId,
    user_id: &str,
) -> Result<Option<ParticipantId>, StoreError> {
    let room = to_bigint(room_id.get(), "room id")?;
    let member: Option<i64> = sqlx::query_scalar(
        "SELECT member_id FROM room_member_users WHERE room_id = $1 AND user_id = $2",
    )
    .bind(room)
    .bind(user_id)
    .fetch_optional(db.pool())
    .await?;
    member
        .map(|raw| from_bigint(raw, "member id").map(ParticipantId::new))
        .transpose()
}

/// The room of a case, if it has one.
pub async fn room_for_case(db: &Db, case_id: &CaseId) -> Result<Option<RoomId>, StoreError> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM rooms WHERE case_id = $1")
        .bind(case_id)
        .fetch_optional(db.pool())
        .await?;
    id.map(|raw| from_bigint(raw, "room id").map(RoomId::new))
        .transpose()
}

/// The case a room belongs to; `None` for an unknown room.
pub async fn room_case(db: &Db, room_id: RoomId) -> Result<Option<Case>, StoreError> {
    let sql = format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE id = (SELECT case_id FROM rooms WHERE id = $1)"
    );
    let row = sqlx::query(&sql)
        .bind(to_bigint(room_id.get(), "room id")?)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(cases::case_from_row).transpose()
}

/// Writes members (with their last command numbers, where given), sessions and new posts of
/// `snapshot`; the `rooms` row exists already.
async fn write_contents(
    conn: &mut AnyConnection,
    now: UnixMillis,
    room_id: i64,
    snapshot: &RoomSnapshot,
    last_command_seqs: &BTreeMap<ParticipantId, u64>,
) -> Result<(), StoreError> {
    let sessions = snapshot
        .sessions
        .iter()
        .map(SessionRow::new)
        .collect::<Result<Vec<_>, _>>()?;
    let members = snapshot
        .members
        .iter()
        .map(|member| {
            let seq = last_command_seqs.get(&member.id).copied().unwrap_or(0);
            MemberRow::new(member, seq)
        })
        .collect::<Result<Vec<_>, _>>()?;
    insert_rows(
        conn,
        "room_sessions",
        &[
            "room_id",
            "session_id",
            "opened_at",
            "timer_ends_at",
            "ended_at",
        ],
        "ON CONFLICT (room_id, session_id) DO UPDATE SET opened_at = excluded.opened_at, \
         timer_ends_at = excluded.timer_ends_at, ended_at = NULL",
        &sessions,
        |query, session| {
            query
                .bind(room_id)
                .bind(session.id)
                .bind(session.opened_at)
                .bind(session.timer_ends_at)
                .bind(None::<i64>)
        },
    )
    .await?;
    end_other_sessions(conn, now, room_id, &sessions).await?;
    revoke_newly_revoked_links(conn, now, room_id, &members).await?;
    insert_rows(
        conn,
        "room_members",
        &[
            "room_id",
            "member_id",
            "role",
            "side",
            "display_name",
            "invite_revoked",
            "location",
            "location_session",
            "last_command_seq",
        ],
        "ON CONFLICT (room_id, member_id) DO UPDATE SET role = excluded.role, \
         side = excluded.side, display_name = excluded.display_name, \
         invite_revoked = excluded.invite_revoked, location = excluded.location, \
         location_session = excluded.location_session, \
         last_command_seq = CASE WHEN excluded.last_command_seq > room_members.last_command_seq \
         THEN excluded.last_command_seq ELSE room_members.last_command_seq END",
        &members,
        |query, member| {
            query
                .bind(room_id)
                .bind(member.id)
                .bind(member.role)
                .bind(member.side.as_deref())
                .bind(member.display_name)
                .bind(member.invite_revoked)
                .bind(member.location)
                .bind(member.location_session)
                .bind(member.last_command_seq)
        },
    )
    .await?;
    insert_new_posts(conn, room_id, snapshot).await
}

/// Revokes, at `now`, the personal links of members whose link the room revoked since the last
/// save (`Remove` with revocation, `RevokeInvite`): the link stops working in the same
/// transaction as the room change. Must run before the members are written.
async fn revoke_newly_revoked_links(
    conn: &mut AnyConnection,
    now: UnixMillis,
    room_id: i64,
    members: &[MemberRow<'_>],
) -> Result<(), StoreError> {
    let revoked: Vec<i64> = members
        .iter()
        .filter(|member| member.invite_revoked != 0)
        .map(|member| member.id)
        .collect();
    if revoked.is_empty() {
        return Ok(());
    }
    let list = (3..revoked.len() + 3)
        .map(|index| format!("${index}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE room_invites SET revoked_at = $1 WHERE room_id = $2 AND revoked_at IS NULL \
         AND member_id IN (SELECT member_id FROM room_members WHERE room_id = $2 \
         AND invite_revoked = 0 AND member_id IN ({list}))"
    );
    let mut query = sqlx::query(&sql).bind(now.0).bind(room_id);
    for member in revoked {
        query = query.bind(member);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Marks ended, at `now`, the sessions of the room still open in the database but not in
/// `open` (the caucuses that ended since the last save).
async fn end_other_sessions(
    conn: &mut AnyConnection,
    now: UnixMillis,
    room_id: i64,
    open: &[SessionRow],
) -> Result<(), StoreError> {
    let mut sql = "UPDATE room_sessions SET ended_at = $1 \
                   WHERE room_id = $2 AND ended_at IS NULL"
        .to_owned();
    if !open.is_empty() {
        let list = (3..open.len() + 3)
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        sql.push_str(&format!(" AND session_id NOT IN ({list})"));
    }
    let mut query = sqlx::query(&sql).bind(now.0).bind(room_id);
    for session in open {
        query = query.bind(session.id);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Inserts the posts of `snapshot` not stored yet, with their audiences.
///
/// Posts are numbered in increasing order across the room, and every save stores all the posts
/// of its snapshot: a post numbered at most the highest stored one is either stored or was
/// dropped from the room before the save that stored the higher one, so it is in no later
/// snapshot. Only posts above the highest stored number need sending.
async fn insert_new_posts(
    conn: &mut AnyConnection,
    room_id: i64,
    snapshot: &RoomSnapshot,
) -> Result<(), StoreError> {
    let all_posts = || snapshot.sessions.iter().flat_map(|session| &session.posts);
    if all_posts().next().is_none() {
        return Ok(());
    }
    let highest_stored: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM room_posts WHERE room_id = $1")
            .bind(room_id)
            .fetch_one(&mut *conn)
            .await?;
    let mut posts = Vec::new();
    let mut readers = Vec::new();
    for record in all_posts() {
        let row = PostRow::new(&record.post)?;
        if row.seq <= highest_stored {
            continue;
        }
        for reader in &record.audience {
            readers.push((row.seq, to_bigint(reader.get(), "member id")?));
        }
        posts.push(row);
    }
    insert_rows(
        conn,
        "room_posts",
        &[
            "room_id",
            "seq",
            "session_id",
            "sender_id",
            "kind",
            "chat_text",
            "file_ref",
            "file_name",
            "posted_at",
        ],
        "ON CONFLICT (room_id, seq) DO NOTHING",
        &posts,
        |query, post| {
            query
                .bind(room_id)
                .bind(post.seq)
                .bind(post.session_id)
                .bind(post.sender_id)
                .bind(post.kind)
                .bind(post.chat_text)
                .bind(post.file_ref)
                .bind(post.file_name)
                .bind(post.posted_at)
        },
    )
    .await?;
    insert_rows(
        conn,
        "room_post_audience",
        &["room_id", "seq", "member_id"],
        "ON CONFLICT (room_id, seq, member_id) DO NOTHING",
        &readers,
        |query, (seq, member)| query.bind(room_id).bind(*seq).bind(*member),
    )
    .await
}

type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Runs `INSERT INTO table (columns) VALUES (…), (…) {conflict}` over `rows`,
/// [`ROWS_PER_STATEMENT`] at a time; `bind` binds one row's values in the order of `columns`.
async fn insert_rows<R>(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    conflict: &str,
    rows: &[R],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q R) -> AnyQuery<'q>,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {} {conflict}",
            columns.join(", "),
            placeholders(chunk.len(), columns.len())
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = bind(query, row);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `($1, $2), ($3, $4)` for 2 rows of 2 columns: the placeholders work on both backends.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let values = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({values})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `u64` (id, counter, time) as the `BIGINT` that stores it; 2^63 and above are refused.
pub(crate) fn to_bigint(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(what))
}

/// A stored `BIGINT` as the `u64` it was.
pub(crate) fn from_bigint(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} {value}")))
}

fn time_to_bigint(at: Timestamp) -> Result<i64, StoreError> {
    to_bigint(at.as_unix_millis(), "time")
}

pub(crate) fn time_from_bigint(value: i64) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_unix_millis(from_bigint(value, "time")?))
}

/// The `rooms` row of a snapshot.
struct RoomRow<'a> {
    id: i64,
    case_ref: &'a str,
    created_at: i64,
    lifetime_ms: i64,
    capacity: i64,
    auto_admit: i64,
    hold_when_no_mediator: i64,
    next_session: i64,
    next_post: i64,
}

impl<'a> RoomRow<'a> {
    fn new(snapshot: &'a RoomSnapshot) -> Result<Self, StoreError> {
        let settings = &snapshot.settings;
        Ok(Self {
            id: to_bigint(snapshot.id.get(), "room id")?,
            case_ref: snapshot.case_ref.as_str(),
            created_at: time_to_bigint(snapshot.created_at)?,
            lifetime_ms: lifetime_to_millis(settings.lifetime)?,
            capacity: i64::from(settings.capacity.get()),
            auto_admit: i64::from(settings.auto_admit),
            hold_when_no_mediator: i64::from(settings.hold_when_no_mediator),
            next_session: to_bigint(snapshot.next_session.get(), "session id")?,
            next_post: to_bigint(snapshot.next_post.get(), "post number")?,
        })
    }
}

/// Whole milliseconds, like every time the database holds: a finer lifetime would not come
/// back equal.
fn lifetime_to_millis(lifetime: Duration) -> Result<i64, StoreError> {
    let millis = i64::try_from(lifetime.as_millis())
        .ok()
        .filter(|&millis| Duration::from_millis(millis.unsigned_abs()) == lifetime);
    millis.ok_or(StoreError::Invalid("room lifetime"))
}

fn settings_from_row(row: &AnyRow) -> Result<RoomSettings, StoreError> {
    let lifetime_ms = from_bigint(row.try_get("lifetime_ms")?, "room lifetime")?;
    let capacity: i64 = row.try_get("capacity")?;
    let capacity = u8::try_from(capacity)
        .ok()
        .and_then(NonZeroU8::new)
        .ok_or_else(|| StoreError::Corrupt(format!("room capacity {capacity}")))?;
    Ok(RoomSettings {
        lifetime: Duration::from_millis(lifetime_ms),
        capacity,
        auto_admit: row.try_get::<i64, _>("auto_admit")? != 0,
        hold_when_no_mediator: row.try_get::<i64, _>("hold_when_no_mediator")? != 0,
    })
}

/// A `room_members` row.
struct MemberRow<'a> {
    id: i64,
    role: &'static str,
    side: Option<String>,
    display_name: &'a str,
    invite_revoked: i64,
    location: &'static str,
    location_session: Option<i64>,
    last_command_seq: i64,
}

impl<'a> MemberRow<'a> {
    fn new(member: &'a MemberRecord, last_command_seq: u64) -> Result<Self, StoreError> {
        let (location, location_session) = location_columns(member.location)?;
        Ok(Self {
            id: to_bigint(member.id.get(), "member id")?,
            role: member.role.code(),
            side: member.side.map(Side::code),
            display_name: member.display_name.expose(),
            invite_revoked: i64::from(member.invite_revoked),
            location,
            location_session,
            last_command_seq: to_bigint(last_command_seq, "command number")?,
        })
    }
}

pub(crate) fn member_from_row(row: &AnyRow) -> Result<MemberRecord, StoreError> {
    let side: Option<String> = row.try_get("side")?;
    Ok(MemberRecord {
        id: ParticipantId::new(from_bigint(row.try_get("member_id")?, "member id")?),
        role: parse_role(&row.try_get::<String, _>("role")?)?,
        side: side.as_deref().map(parse_side).transpose()?,
        display_name: Redacted::new(row.try_get("display_name")?),
        invite_revoked: row.try_get::<i64, _>("invite_revoked")? != 0,
        location: parse_location(
            &row.try_get::<String, _>("location")?,
            row.try_get("location_session")?,
        )?,
    })
}

fn parse_role(code: &str) -> Result<Role, StoreError> {
    Role::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("member role {code:?}")))
}

fn parse_side(code: &str) -> Result<Side, StoreError> {
    Side::from_code(code).ok_or_else(|| StoreError::Corrupt(format!("member side {code:?}")))
}

/// The `location` code and `location_session` of a member.
fn location_columns(location: Location) -> Result<(&'static str, Option<i64>), StoreError> {
    let session = |id: SessionId| to_bigint(id.get(), "session id").map(Some);
    Ok(match location {
        Location::WaitingToEnter => ("waiting_to_enter", None),
        Location::SentToWaitingRoom => ("sent_to_waiting_room", None),
        Location::HeldForMediator { previous } => ("held_for_mediator", session(previous)?),
        Location::InSession(id) => ("in_session", session(id)?),
    })
}

fn parse_location(code: &str, session: Option<i64>) -> Result<Location, StoreError> {
    let session = session
        .map(|raw| from_bigint(raw, "session id").map(SessionId::new))
        .transpose()?;
    match (code, session) {
        ("waiting_to_enter", None) => Ok(Location::WaitingToEnter),
        ("sent_to_waiting_room", None) => Ok(Location::SentToWaitingRoom),
        ("held_for_mediator", Some(previous)) => Ok(Location::HeldForMediator { previous }),
        ("in_session", Some(id)) => Ok(Location::InSession(id)),
        _ => Err(StoreError::Corrupt(format!("member location {code:?}"))),
    }
}

/// A `room_sessions` row of an open session.
struct SessionRow {
    id: i64,
    opened_at: i64,
    timer_ends_at: Option<i64>,
}

impl SessionRow {
    fn new(session: &SessionRecord) -> Result<Self, StoreError> {
        Ok(Self {
            id: to_bigint(session.id.get(), "session id")?,
            opened_at: time_to_bigint(session.opened_at)?,
            timer_ends_at: session.timer_ends_at.map(time_to_bigint).transpose()?,
        })
    }
}

/// An open session, without its posts yet.
fn session_from_row(row: &AnyRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: SessionId::new(from_bigint(row.try_get("session_id")?, "session id")?),
        opened_at: time_from_bigint(row.try_get("opened_at")?)?,
        timer_ends_at: row
            .try_get::<Option<i64>, _>("timer_ends_at")?
            .map(time_from_bigint)
            .transpose()?,
        posts: Vec::new(),
    })
}

/// A `room_posts` row: a chat message (`chat_text`) or a shared file (`file_ref`, `file_name`).
struct PostRow<'a> {
    seq: i64,
    session_id: i64,
    sender_id: i64,
    kind: &'static str,
    chat_text: Option<&'a str>,
    file_ref: Option<&'a str>,
    file_name: Option<&'a str>,
    posted_at: i64,
}

impl<'a> PostRow<'a> {
    fn new(post: &'a Post) -> Result<Self, StoreError> {
        let (kind, chat_text, file_ref, file_name, at) = match post {
            Post::Chat(message) => ("chat", Some(message.text.expose()), None, None, message.at),
            Post::File(file) => (
                "file",
                None,
                Some(file.file.as_str()),
                Some(file.name.expose()),
                file.at,
            ),
        };
        Ok(Self {
            seq: to_bigint(post.seq().get(), "post number")?,
            session_id: to_bigint(post.session().get(), "session id")?,
            sender_id: to_bigint(post.sender().get(), "member id")?,
            kind,
            chat_text: chat_text.map(String::as_str),
            file_ref,
            file_name: file_name.map(String::as_str),
            posted_at: time_to_bigint(at)?,
        })
    }
}

fn post_from_row(row: &AnyRow) -> Result<Post, StoreError> {
    let raw_seq: i64 = row.try_get("seq")?;
    let seq = PostSeq::new(from_bigint(raw_seq, "post number")?);
    let session = SessionId::new(from_bigint(row.try_get("session_id")?, "session id")?);
    let from = ParticipantId::new(from_bigint(row.try_get("sender_id")?, "member id")?);
    let at = time_from_bigint(row.try_get("posted_at")?)?;
    let corrupt = || StoreError::Corrupt(format!("post {raw_seq}"));
    let kind: String = row.try_get("kind")?;
    match kind.as_str() {
        "chat" => {
            let text: Option<String> = row.try_get("chat_text")?;
            Ok(Post::Chat(ChatMessage {
                seq,
                session,
                from,
                text: Redacted::new(text.ok_or_else(corrupt)?),
                at,
            }))
        }
        "file" => {
            let file_ref: Option<String> = row.try_get("file_ref")?;
            let name: Option<String> = row.try_get("file_name")?;
            let file = file_ref
                .as_deref()
                .and_then(|raw| FileRef::parse(raw).ok())
                .ok_or_else(corrupt)?;
            Ok(Post::File(SharedFile {
                seq,
                session,
                from,
                file,
                name: Redacted::new(name.ok_or_else(corrupt)?),
                at,
            }))
        }
        _ => Err(corrupt()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(placeholders(1, 3), "($1, $2, $3)");
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
    }

    #[test]
    fn roles_sides_and_locations_round_trip_through_their_codes() {
        for role in Role::ALL {
            assert_eq!(parse_role(role.code()).ok(), Some(role));
        }
        for side in [
            Side::Istante,
            Side::Chiamata,
            Side::Other(0),
            Side::Other(255),
        ] {
            assert_eq!(parse_side(&side.code()).ok(), Some(side));
        }
        let caucus = SessionId::new(3);
        for location in [
            Location::WaitingToEnter,
            Location::SentToWaitingRoom,
            Location::HeldForMediator { previous: caucus },
            Location::InSession(SessionId::PLENARY),
            Location::InSession(caucus),
        ] {
            let (code, session) = location_columns(location).expect("storable location");
            assert_eq!(parse_location(code, session).ok(), Some(location));
        }
    }

    #[test]
    fn unknown_codes_are_corrupt() {
        assert!(matches!(parse_role("judge"), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            parse_side("other-256"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            parse_side("convenuta"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            parse_location("in_session", None),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            parse_location("waiting_to_enter", Some(0)),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn values_beyond_bigint_are_refused_not_truncated() {
        assert_eq!(to_bigint(u64::MAX >> 1, "id").ok(), Some(i64::MAX));
        assert!(matches!(
            to_bigint(1 << 63, "id"),
            Err(StoreError::Invalid("id"))
        ));
        assert!(matches!(from_bigint(-1, "id"), Err(StoreError::Corrupt(_))));
        assert_eq!(
            lifetime_to_millis(Duration::from_secs(90 * 24 * 60 * 60)).ok(),
            Some(7_776_000_000)
        );
        assert!(lifetime_to_millis(Duration::from_micros(1_500)).is_err());
        assert!(lifetime_to_millis(Duration::MAX).is_err());
    }
}
