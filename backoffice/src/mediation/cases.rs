//! Cases (fascicoli: the file of one mediation). For now only the minimal record a room belongs
//! to: an id, the organism, the reference people know the case by, and a title.
//!
//! **Invariant:** a reference is a valid [`rooms::CaseRef`] and unique within its organism
//! (cases without an organism share one namespace).

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::{is_foreign_key_violation, is_unique_violation};
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::platform::names;
use crate::{Db, StoreError, UnixMillis};
use rooms::CaseRef;

/// The id of a case: the key the back office gives it (never the reference people read), typed
/// so that it cannot be passed where another id is expected.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    sqlx::Type,
    serde::Serialize,
    serde::Deserialize,
)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct CaseId(String);

impl CaseId {
    /// The id `id` names, as received (from a path, a form, a row); whether a case has it is
    /// for the query to say.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A case, as far as rooms need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub id: CaseId,
    /// The organism that runs the case, if any.
    pub organism_id: Option<String>,
    /// The reference people know the case by, e.g. `MED-2026-0042`.
    pub reference: CaseRef,
    pub title: String,
    pub created_at: UnixMillis,
}

/// The columns [`case_from_row`] reads.
pub(crate) const CASE_COLUMNS: &str = "id, organism_id, reference, title, created_at";

pub(crate) fn case_from_row(row: &AnyRow) -> Result<Case, StoreError> {
    let reference: String = row.try_get("reference")?;
    Ok(Case {
        id: row.try_get("id")?,
        organism_id: row.try_get("organism_id")?,
        reference: CaseRef::parse(&reference)
            .map_err(|_| StoreError::Corrupt(format!("case reference {reference:?}")))?,
        title: row.try_get("title")?,
        created_at: UnixMillis(row.try_get("created_at")?),
    })
}

/// Creates a case with only a reference and a title. The reference must be a valid
/// [`CaseRef`] (else [`StoreError::Invalid`]) not yet used in the organism (else
/// [`StoreError::AlreadyExists`]); an unknown organism is [`StoreError::NotFound`]. The title is
/// trimmed and must not be blank.
pub async fn create_minimal(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism_id: Option<&str>,
    reference: &str,
    title: &str,
) -> Result<Case, StoreError> {
    let reference = CaseRef::parse(reference).map_err(|_| StoreError::Invalid("case reference"))?;
    let title = title.trim();
    if title.is_empty() || !names::is_one_line(title) {
        return Err(StoreError::Invalid("case title"));
    }
    let mut tx = db.begin().await?;
    let case = insert(&mut tx, actor, now, organism_id, reference, title, None).await?;
    tx.commit().await?;
    Ok(case)
}

/// Registers a case with the next number of `organism_id` in `year` (1, 2, 3… without gaps
/// or duplicates, also under concurrent registrations): its reference is `NUMBER/YEAR`.
pub async fn register(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism_id: Option<&str>,
    year: u16,
    title: &str,
) -> Result<Case, StoreError> {
    let title = title.trim();
    if title.is_empty() || !names::is_one_line(title) {
        return Err(StoreError::Invalid("case title"));
    }
    let mut tx = db.begin().await?;
    // The first statement writes: the counter row stays locked until commit, and SQLite takes
    // its write lock at once (no read-then-write upgrade to fail under contention).
    let number: i64 = sqlx::query_scalar(
        "INSERT INTO case_counters (organism_key, year, last_number) VALUES ($1, $2, 1) \
         ON CONFLICT (organism_key, year) \
         DO UPDATE SET last_number = case_counters.last_number + 1 RETURNING last_number",
    )
    .bind(organism_id.unwrap_or(""))
    .bind(i64::from(year))
    .fetch_one(&mut *tx)
    .await?;
    let reference = CaseRef::parse(&format!("{number}/{year}"))
        .map_err(|_| StoreError::Invalid("case reference"))?;
    let case = insert(
        &mut tx,
        actor,
        now,
        organism_id,
        reference,
        title,
        Some((i64::from(year), number)),
    )
    .await?;
    tx.commit().await?;
    Ok(case)
}

/// Inserts a case and its audit record in `tx`.
async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    actor: &Actor,
    now: UnixMillis,
    organism_id: Option<&str>,
    reference: CaseRef,
    title: &str,
    numbered: Option<(i64, i64)>,
) -> Result<Case, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let inserted = sqlx::query(
        "INSERT INTO cases (id, organism_id, reference, title, created_at, year, number) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.as_str())
    .bind(organism_id)
    .bind(reference.as_str())
    .bind(title)
    .bind(now.0)
    .bind(numbered.map(|(year, _)| year))
    .bind(numbered.map(|(_, number)| number))
    .execute(&mut **tx)
    .await;
    match inserted {
        Err(error) if is_unique_violation(&error) => return Err(StoreError::AlreadyExists("case")),
        Err(error) if is_foreign_key_violation(&error) => return Err(StoreError::NotFound),
        other => other?,
    };
    let mut changes = Vec::with_capacity(3);
    if let Some(organism_id) = organism_id {
        changes.push(Change::set(Field::OrganismId, organism_id));
    }
    changes.push(Change::set(Field::Reference, reference.as_str()));
    changes.push(Change::set(Field::Title, title));
    let record = NewRecord {
        action: Action::CaseCreated,
        entity_type: "case",
        entity_id: &id,
        changes,
    };
    audit::record(tx, actor, now, record).await?;
    Ok(Case {
        id: CaseId::new(id),
        organism_id: organism_id.map(str::to_owned),
        reference,
        title: title.to_owned(),
        created_at: now,
    })
}

/// The case with this id.
pub async fn find(db: &Db, id: &CaseId) -> Result<Option<Case>, StoreError> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(db.pool()).await?;
    row.as_ref().map(case_from_row).transpose()
}
