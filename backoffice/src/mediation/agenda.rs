//! The agenda: meetings of cases, in a meeting room of one of the organism's offices (sedi) or
//! online, with their mediator. A meeting is refused when its mediator or its room already has
//! a meeting overlapping it (times are half-open: one may end when the next starts); the
//! conflicts come back so that the clerk sees which meetings are in the way. Each mediator may
//! have a calendar feed: a secret URL their calendar application reads the meetings from.

use sqlx::Row;

use crate::mediation::cases::CaseId;
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::platform::names;
use crate::rooms::invites::{is_well_formed, token_hash, InviteToken};
use crate::{Backend, Db, StoreError, UnixMillis};

/// A meeting to schedule.
#[derive(Debug, Clone)]
pub struct NewMeeting<'a> {
    pub case_id: &'a CaseId,
    pub starts_at: UnixMillis,
    pub ends_at: UnixMillis,
    /// A meeting room (`meeting_places` id), or `None` for an online meeting.
    pub place: Option<&'a str>,
    pub mediator: Option<&'a str>,
}

/// What a meeting clashes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// The same mediator is busy.
    Mediator,
    /// The same meeting room is taken.
    Room,
}

/// A meeting in the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub kind: ConflictKind,
    pub meeting: String,
    pub case_reference: String,
    pub starts_at: UnixMillis,
    pub ends_at: UnixMillis,
}

#[derive(Debug, thiserror::Error)]
pub enum AgendaError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the meeting clashes with others")]
    Conflicts(Vec<Conflict>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds a meeting room of `sede` (a sede is made by its first room); a room already there is
/// [`AgendaError::Invalid`].
pub async fn add_place(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    (sede, room): (&str, &str),
) -> Result<String, AgendaError> {
    let (sede, room) = (sede.trim(), room.trim());
    if sede.is_empty() || room.is_empty() {
        return Err(AgendaError::Invalid("servono la sede e il nome della sala"));
    }
    if !names::is_one_line(sede) || !names::is_one_line(room) {
        return Err(AgendaError::Invalid(names::NOT_ONE_LINE));
    }
    let taken = places(db, organism)
        .await?
        .iter()
        .any(|(_, known_sede, known_room)| {
            known_sede.to_lowercase() == sede.to_lowercase()
                && known_room.to_lowercase() == room.to_lowercase()
        });
    if taken {
        return Err(AgendaError::Invalid(
            "questa sala è già registrata per la sede",
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    let inserted = sqlx::query(
        "INSERT INTO meeting_places (id, organism_id, sede, room) VALUES ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(organism)
    .bind(sede)
    .bind(room)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(error) if crate::error::is_unique_violation(&error) => {
            return Err(AgendaError::Invalid(
                "questa sala è già registrata per la sede",
            ))
        }
        other => other.map_err(StoreError::from)?,
    };
    let record = NewRecord {
        action: Action::PlaceAdded,
        entity_type: "place",
        entity_id: &id,
        changes: vec![
            Change::set(Field::Sede, sede),
            Change::set(Field::Room, room),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(id)
}

/// The meeting rooms of `organism`: `(id, sede, room)`, by sede and room.
pub async fn places(
    db: &Db,
    organism: Option<&str>,
) -> Result<Vec<(String, String, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, sede, room FROM meeting_places \
         WHERE (organism_id = $1 OR ($1 IS NULL AND organism_id IS NULL)) ORDER BY sede, room",
    )
    .bind(organism)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("id")?,
                row.try_get("sede")?,
                row.try_get("room")?,
            ))
        })
        .collect()
}

/// The meetings (not cancelled) overlapping `[starts_at, ends_at)` that share the mediator or
/// the room of `meeting`.
async fn conflicts(
    conn: &mut sqlx::AnyConnection,
    meeting: &NewMeeting<'_>,
) -> Result<Vec<Conflict>, StoreError> {
    let rows = sqlx::query(
        "SELECT m.id, m.starts_at, m.ends_at, m.mediator_id, m.place_id, c.reference \
         FROM meetings m JOIN cases c ON c.id = m.case_id \
         WHERE m.cancelled_at IS NULL AND m.starts_at < $1 AND m.ends_at > $2 \
         AND ((m.mediator_id IS NOT NULL AND m.mediator_id = $3) \
              OR (m.place_id IS NOT NULL AND m.place_id = $4)) \
         ORDER BY m.starts_at",
    )
    .bind(meeting.ends_at.0)
    .bind(meeting.starts_at.0)
    .bind(meeting.mediator)
    .bind(meeting.place)
    .fetch_all(conn)
    .await?;
    let mut found = Vec::new();
    for row in &rows {
        let mediator: Option<String> = row.try_get("mediator_id")?;
        let kind = if mediator.is_some() && mediator.as_deref() == meeting.mediator {
            ConflictKind::Mediator
        } else {
            ConflictKind::Room
        };
        found.push(Conflict {
            kind,
            meeting: row.try_get("id")?,
            case_reference: row.try_get("reference")?,
            starts_at: UnixMillis(row.try_get("starts_at")?),
            ends_at: UnixMillis(row.try_get("ends_at")?),
        });
    }
    Ok(found)
}

/// Schedules `meeting` unless it clashes ([`AgendaError::Conflicts`]); returns its id.
pub async fn schedule(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    meeting: &NewMeeting<'_>,
) -> Result<String, AgendaError> {
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    let id = schedule_in(&mut tx, db.backend(), actor, now, meeting).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(id)
}

/// Serialises bookings of the same mediator or room (on PostgreSQL; SQLite's write lock does
/// it there), until the caller's transaction ends.
pub(crate) async fn lock_resources(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    resources: [Option<&str>; 2],
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        // Two clerks booking the same mediator or room at once: the second waits for the
        // first to commit, then sees its meeting.
        for key in resources.into_iter().flatten() {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// [`schedule`] in the caller's transaction: the meeting is written, then checked; on a
/// clash the caller must roll back.
pub(crate) async fn schedule_in(
    tx: &mut sqlx::AnyConnection,
    backend: Backend,
    actor: &Actor,
    now: UnixMillis,
    meeting: &NewMeeting<'_>,
) -> Result<String, AgendaError> {
    if meeting.ends_at.0 <= meeting.starts_at.0 {
        return Err(AgendaError::Invalid("l'incontro deve finire dopo l'inizio"));
    }
    lock_resources(tx, backend, [meeting.mediator, meeting.place]).await?;
    // Written first, checked after: on SQLite the insert takes the write lock, so concurrent
    // bookings queue up behind it instead of failing to upgrade a read lock.
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO meetings (id, case_id, starts_at, ends_at, place_id, mediator_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(meeting.case_id)
    .bind(meeting.starts_at.0)
    .bind(meeting.ends_at.0)
    .bind(meeting.place)
    .bind(meeting.mediator)
    .bind(now.0)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    check_free(tx, meeting, &id).await?;
    let record = NewRecord {
        action: Action::MeetingScheduled,
        entity_type: "case",
        entity_id: meeting.case_id.as_str(),
        changes: vec![
            Change::set(Field::Meeting, id.clone()),
            Change::set(Field::StartsAt, meeting.starts_at.0.to_string()),
            Change::set(Field::EndsAt, meeting.ends_at.0.to_string()),
            Change::set(Field::Online, meeting.place.is_none().to_string()),
        ],
    };
    audit::record(tx, actor, now, record).await?;
    Ok(id)
}

/// Refuses with the clashes when meetings other than `id` overlap `meeting`'s mediator or room.
pub(crate) async fn check_free(
    tx: &mut sqlx::AnyConnection,
    meeting: &NewMeeting<'_>,
    id: &str,
) -> Result<(), AgendaError> {
    let clashes: Vec<Conflict> = conflicts(tx, meeting)
        .await?
        .into_iter()
        .filter(|conflict| conflict.meeting != id)
        .collect();
    if clashes.is_empty() {
        Ok(())
    } else {
        Err(AgendaError::Conflicts(clashes))
    }
}

/// A meeting as a calendar shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMeeting {
    pub id: String,
    pub starts_at: UnixMillis,
    pub ends_at: UnixMillis,
    pub case_reference: String,
    /// The iCalendar SEQUENCE: how many times the meeting changed.
    pub sequence: u32,
    /// `(sede, room)`, or `None` online.
    pub place: Option<(String, String)>,
}

/// Issues the calendar feed of `mediator` (of `organism`); a previous feed stops working.
pub async fn issue_feed(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    mediator: &str,
) -> Result<InviteToken, AgendaError> {
    let known: Option<String> = sqlx::query_scalar(
        "SELECT id FROM mediators WHERE id = $1 \
         AND (organism_id = $2 OR ($2 IS NULL AND organism_id IS NULL))",
    )
    .bind(mediator)
    .bind(organism)
    .fetch_optional(db.pool())
    .await
    .map_err(StoreError::from)?;
    if known.is_none() {
        return Err(StoreError::NotFound.into());
    }
    let token = InviteToken::generate();
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    sqlx::query("DELETE FROM mediator_feeds WHERE mediator_id = $1")
        .bind(mediator)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    sqlx::query(
        "INSERT INTO mediator_feeds (mediator_id, token_hash, issued_at) VALUES ($1, $2, $3)",
    )
    .bind(mediator)
    .bind(token_hash(token.reveal()))
    .bind(now.0)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let record = NewRecord {
        action: Action::MediatorFeedIssued,
        entity_type: "mediator",
        entity_id: mediator,
        changes: Vec::new(),
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(token)
}

/// The meetings (not cancelled) of the mediator whose feed `token` is; `None` for a token that
/// is malformed, unknown or replaced.
pub async fn feed(db: &Db, token: &str) -> Result<Option<Vec<FeedMeeting>>, StoreError> {
    if !is_well_formed(token) {
        return Ok(None);
    }
    let mediator: Option<String> =
        sqlx::query_scalar("SELECT mediator_id FROM mediator_feeds WHERE token_hash = $1")
            .bind(token_hash(token))
            .fetch_optional(db.pool())
            .await?;
    let Some(mediator) = mediator else {
        return Ok(None);
    };
    let rows = sqlx::query(
        "SELECT m.id, m.starts_at, m.ends_at, m.sequence, c.reference, p.sede, p.room \
         FROM meetings m JOIN cases c ON c.id = m.case_id \
         LEFT JOIN meeting_places p ON p.id = m.place_id \
         WHERE m.mediator_id = $1 AND m.cancelled_at IS NULL ORDER BY m.starts_at",
    )
    .bind(&mediator)
    .fetch_all(db.pool())
    .await?;
    let mut meetings = Vec::with_capacity(rows.len());
    for row in &rows {
        let sede: Option<String> = row.try_get("sede")?;
        let room: Option<String> = row.try_get("room")?;
        meetings.push(FeedMeeting {
            id: row.try_get("id")?,
            starts_at: UnixMillis(row.try_get("starts_at")?),
            ends_at: UnixMillis(row.try_get("ends_at")?),
            case_reference: row.try_get("reference")?,
            sequence: u32::try_from(row.try_get::<i64, _>("sequence")?).unwrap_or(u32::MAX),
            place: sede.zip(room),
        });
    }
    Ok(Some(meetings))
}

/// A meeting of a case, as the case page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseMeeting {
    pub id: String,
    pub starts_at: UnixMillis,
    pub ends_at: UnixMillis,
    /// `(sede, room)`, or `None` online.
    pub place: Option<(String, String)>,
    pub mediator: Option<String>,
    pub cancelled: bool,
    pub cancel_reason: Option<String>,
}

/// The meetings of case `case_id`, cancelled ones included, by start.
pub async fn of_case(db: &Db, case_id: &CaseId) -> Result<Vec<CaseMeeting>, StoreError> {
    let rows = sqlx::query(
        "SELECT m.id, m.starts_at, m.ends_at, m.cancelled_at, m.cancel_reason, p.sede, p.room, \
         d.display_name AS mediator FROM meetings m \
         LEFT JOIN meeting_places p ON p.id = m.place_id \
         LEFT JOIN mediators d ON d.id = m.mediator_id \
         WHERE m.case_id = $1 ORDER BY m.starts_at",
    )
    .bind(case_id)
    .fetch_all(db.pool())
    .await?;
    let mut meetings = Vec::with_capacity(rows.len());
    for row in &rows {
        let sede: Option<String> = row.try_get("sede")?;
        let room: Option<String> = row.try_get("room")?;
        let cancelled: Option<i64> = row.try_get("cancelled_at")?;
        meetings.push(CaseMeeting {
            id: row.try_get("id")?,
            starts_at: UnixMillis(row.try_get("starts_at")?),
            ends_at: UnixMillis(row.try_get("ends_at")?),
            place: sede.zip(room),
            mediator: row.try_get("mediator")?,
            cancelled: cancelled.is_some(),
            cancel_reason: row.try_get("cancel_reason")?,
        });
    }
    Ok(meetings)
}

/// The case meeting `id` belongs to.
pub async fn case_of(db: &Db, id: &str) -> Result<Option<CaseId>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT case_id FROM meetings WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// A meeting as the agenda views show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgendaItem {
    pub id: String,
    pub case_id: CaseId,
    pub case_reference: String,
    pub case_title: String,
    pub starts_at: UnixMillis,
    pub ends_at: UnixMillis,
    /// `(sede, room)`, or `None` online.
    pub place: Option<(String, String)>,
    pub mediator: Option<String>,
}

/// The meetings (not cancelled) of `organism` starting in `[from, to)`, by start; with
/// `mediator_user`, only those of the mediator linked to that user.
pub async fn between(
    db: &Db,
    organism: Option<&str>,
    (from, to): (UnixMillis, UnixMillis),
    mediator_user: Option<&str>,
) -> Result<Vec<AgendaItem>, StoreError> {
    let mut sql = "SELECT m.id, m.case_id, m.starts_at, m.ends_at, c.reference, c.title, \
         p.sede, p.room, d.display_name AS mediator FROM meetings m \
         JOIN cases c ON c.id = m.case_id \
         LEFT JOIN meeting_places p ON p.id = m.place_id \
         LEFT JOIN mediators d ON d.id = m.mediator_id \
         WHERE m.cancelled_at IS NULL AND m.starts_at >= $1 AND m.starts_at < $2 \
         AND (c.organism_id = $3 OR ($3 IS NULL AND c.organism_id IS NULL))"
        .to_owned();
    if mediator_user.is_some() {
        sql.push_str(" AND d.user_id = $4");
    }
    sql.push_str(" ORDER BY m.starts_at, m.id");
    let mut query = sqlx::query(&sql).bind(from.0).bind(to.0).bind(organism);
    if let Some(user) = mediator_user {
        query = query.bind(user);
    }
    let rows = query.fetch_all(db.pool()).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        let sede: Option<String> = row.try_get("sede")?;
        let room: Option<String> = row.try_get("room")?;
        items.push(AgendaItem {
            id: row.try_get("id")?,
            case_id: row.try_get("case_id")?,
            case_reference: row.try_get("reference")?,
            case_title: row.try_get("title")?,
            starts_at: UnixMillis(row.try_get("starts_at")?),
            ends_at: UnixMillis(row.try_get("ends_at")?),
            place: sede.zip(room),
            mediator: row.try_get("mediator")?,
        });
    }
    Ok(items)
}
