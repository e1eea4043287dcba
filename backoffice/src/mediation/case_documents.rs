//! Documents of a case file (fascicolo): added by the segreteria, each either for the mediator
//! only or shareable, which lets the mediator show it to the people of a room session.
//!
//! The checks are those of room files (`room_files::checked`: name, size, type by content). A
//! document reaches a room only as a copy the mediator makes with
//! [`crate::rooms::room_files::copy_from_case`], which then follows the room's rules.

use sqlx::Row;

use crate::mediation::cases::CaseId;
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::platform::files::FileStore;
use crate::rooms::room_files::{self, UploadError};
use crate::{Db, StoreError, UnixMillis};

/// A document of a case file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseDocument {
    pub id: String,
    pub case_id: CaseId,
    pub name: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
    /// Whether the mediator may show it to the parties.
    pub shareable: bool,
}

pub(crate) fn object_path(case_id: &CaseId, id: &str) -> String {
    format!("cases/{case_id}/{id}")
}

/// Adds a document to case `case_id`; nothing is stored when it is refused.
pub async fn add(
    db: &Db,
    files: &FileStore,
    actor: &Actor,
    now: UnixMillis,
    case_id: &CaseId,
    (name, shareable): (&str, bool),
    bytes: Vec<u8>,
) -> Result<CaseDocument, UploadError> {
    if crate::mediation::cases::find(db, case_id).await?.is_none() {
        return Err(StoreError::NotFound.into());
    }
    let checked = room_files::checked(name, &bytes)?;
    let document = CaseDocument {
        id: checked.id,
        case_id: case_id.clone(),
        name: checked.name,
        media_type: checked.media_type,
        size: checked.size,
        sha256: checked.sha256,
        shareable,
    };
    let path = object_path(case_id, &document.id);
    files
        .put_recorded(&path, bytes, record(db, actor, now, &document))
        .await?;
    Ok(document)
}

async fn record(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    document: &CaseDocument,
) -> Result<(), StoreError> {
    let size = i64::try_from(document.size).map_err(|_| StoreError::Invalid("file size"))?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO case_documents (id, case_id, name, media_type, size_bytes, sha256, \
         shareable, added_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&document.id)
    .bind(&document.case_id)
    .bind(&document.name)
    .bind(&document.media_type)
    .bind(size)
    .bind(&document.sha256)
    .bind(i64::from(document.shareable))
    .bind(now.0)
    .execute(&mut *tx)
    .await?;
    let record = NewRecord {
        action: Action::CaseDocumentAdded,
        entity_type: "case",
        entity_id: document.case_id.as_str(),
        changes: vec![
            Change::set(Field::Document, document.id.clone()),
            Change::set(Field::MediaType, document.media_type.clone()),
            Change::set(Field::Size, document.size.to_string()),
            Change::set(Field::Sha256, document.sha256.clone()),
            Change::set(Field::Shareable, document.shareable.to_string()),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await?;
    Ok(())
}

const COLUMNS: &str = "id, case_id, name, media_type, size_bytes, sha256, shareable";

fn from_row(row: &sqlx::any::AnyRow) -> Result<CaseDocument, StoreError> {
    let size: i64 = row.try_get("size_bytes")?;
    let shareable: i64 = row.try_get("shareable")?;
    Ok(CaseDocument {
        id: row.try_get("id")?,
        case_id: row.try_get("case_id")?,
        name: row.try_get("name")?,
        media_type: row.try_get("media_type")?,
        size: u64::try_from(size).map_err(|_| StoreError::Corrupt("file size".to_owned()))?,
        sha256: row.try_get("sha256")?,
        shareable: shareable == 1,
    })
}

/// The documents of case `case_id` the mediator may show in a room, oldest first.
pub async fn shareable(db: &Db, case_id: &CaseId) -> Result<Vec<CaseDocument>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM case_documents WHERE case_id = $1 AND shareable = 1 \
         ORDER BY added_at, id"
    );
    let rows = sqlx::query(&sql).bind(case_id).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// Every document of case `case_id`, for the staff (shareable or not), oldest first.
pub async fn all(db: &Db, case_id: &CaseId) -> Result<Vec<CaseDocument>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM case_documents WHERE case_id = $1 ORDER BY added_at, id");
    let rows = sqlx::query(&sql).bind(case_id).fetch_all(db.pool()).await?;
    rows.iter().map(from_row).collect()
}

/// Document `id` of case `case_id` with its bytes, if it exists.
pub async fn read(
    db: &Db,
    files: &FileStore,
    case_id: &CaseId,
    id: &str,
) -> Result<Option<(CaseDocument, Vec<u8>)>, StoreError> {
    let Some(document) = find(db, case_id, id).await? else {
        return Ok(None);
    };
    let bytes = files.get(&object_path(case_id, id)).await?;
    Ok(Some((document, bytes)))
}

/// Document `id` of case `case_id`, if it exists.
pub async fn find(db: &Db, case_id: &CaseId, id: &str) -> Result<Option<CaseDocument>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM case_documents WHERE case_id = $1 AND id = $2");
    let row = sqlx::query(&sql)
        .bind(case_id)
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}
