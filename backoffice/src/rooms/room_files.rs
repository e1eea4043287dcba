//! Files uploaded by members of a room, to share with their session (a `share_file` post).
//!
//! A file is accepted only when its content is a PDF or an image (PNG, JPEG, GIF, WebP), told by
//! its first bytes, never by its name; and up to [`MAX_ROOM_FILE_BYTES`]. The bytes go to the
//! file store, the row (with the SHA-256) and an audit record to the database in one
//! transaction; a failed transaction removes the stored bytes again.
//!
//! **Invariant** (confidentiality): a member may read a file only if they uploaded it, or were
//! in the session when it was shared there (the post's audience): a file shared in a caucus never
//! reaches anyone outside it.

use sha2::{Digest, Sha256};
use sqlx::Row;

use rooms::{ParticipantId, RoomId};

use crate::mediation::case_documents;
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::platform::files::FileStore;
use crate::rooms::room_store::to_bigint;
use crate::{Db, StoreError, UnixMillis};

/// The largest file a member may upload, in bytes.
pub const MAX_ROOM_FILE_BYTES: usize = 20 * 1024 * 1024;
/// The most a room may hold in uploaded files, in bytes.
pub const ROOM_QUOTA_BYTES: u64 = 200 * 1024 * 1024;
/// The longest file name kept, in characters (longer names are refused).
pub const MAX_FILE_NAME_CHARS: usize = 200;

/// A file as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomFile {
    pub id: String,
    pub name: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is larger than {MAX_ROOM_FILE_BYTES} bytes")]
    TooLarge,
    #[error("the content is not a PDF or an image")]
    UnsupportedType,
    #[error("the room holds {ROOM_QUOTA_BYTES} bytes of files already")]
    QuotaExceeded,
    #[error("the file name is empty, too long or has control characters")]
    BadName,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The media type of `bytes` by their signature, if it is one Accordo accepts.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let starts = |signature: &[u8]| bytes.starts_with(signature);
    if starts(b"%PDF-") {
        Some("application/pdf")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Some("image/webp")
    } else {
        None
    }
}

/// A new file record for `bytes` named `name`, if both are acceptable (name, size, type by
/// content); its id is 128 random bits.
pub(crate) fn checked(name: &str, bytes: &[u8]) -> Result<RoomFile, UploadError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_FILE_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(UploadError::BadName);
    }
    if bytes.is_empty() {
        return Err(UploadError::Empty);
    }
    if bytes.len() > MAX_ROOM_FILE_BYTES {
        return Err(UploadError::TooLarge);
    }
    let media_type = sniff(bytes).ok_or(UploadError::UnsupportedType)?;
    Ok(RoomFile {
        id: hex::encode(rand::random::<[u8; 16]>()),
        name: name.to_owned(),
        media_type: media_type.to_owned(),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
    })
}

fn object_path(room: RoomId, id: &str) -> String {
    format!("rooms/{}/{id}", room.get())
}

/// Stores a file `member` of `room` uploads. Nothing is stored when it is refused.
pub async fn upload(
    db: &Db,
    files: &FileStore,
    actor: &Actor,
    now: UnixMillis,
    (room, member): (RoomId, ParticipantId),
    name: &str,
    bytes: Vec<u8>,
) -> Result<RoomFile, UploadError> {
    let file = checked(name, &bytes)?;
    let path = object_path(room, &file.id);
    files
        .put_recorded(&path, bytes, record(db, actor, now, (room, member), &file))
        .await?;
    Ok(file)
}

/// The row and audit record of `file`, if the room has room for it. The room's row is locked
/// before its files are counted, so uploads into one room are counted one at a time and the
/// quota holds however many run at once (PostgreSQL: the row lock of a no-op update; SQLite:
/// `Db::begin` takes the write lock already).
async fn record(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    (room, member): (RoomId, ParticipantId),
    file: &RoomFile,
) -> Result<(), UploadError> {
    let room_id = to_bigint(room.get(), "room id")?;
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    let locked = sqlx::query("UPDATE rooms SET next_post = next_post WHERE id = $1")
        .bind(room_id)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?;
    if locked.rows_affected() == 0 {
        return Err(StoreError::NotFound.into());
    }
    let used: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(size_bytes), 0) AS BIGINT) FROM room_files WHERE room_id = $1",
    )
    .bind(room_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    if u64::try_from(used)
        .unwrap_or(u64::MAX)
        .saturating_add(file.size)
        > ROOM_QUOTA_BYTES
    {
        return Err(UploadError::QuotaExceeded);
    }
    sqlx::query(
        "INSERT INTO room_files (id, room_id, member_id, name, media_type, size_bytes, sha256, \
         uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&file.id)
    .bind(room_id)
    .bind(to_bigint(member.get(), "member id")?)
    .bind(&file.name)
    .bind(&file.media_type)
    .bind(to_bigint(file.size, "file size")?)
    .bind(&file.sha256)
    .bind(now.0)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let entity = room.get().to_string();
    let record = NewRecord {
        action: Action::RoomFileUploaded,
        entity_type: "room",
        entity_id: &entity,
        // What was stored, never what it is called or says.
        changes: vec![
            Change::set(Field::File, file.id.clone()),
            Change::set(Field::MediaType, file.media_type.clone()),
            Change::set(Field::Size, file.size.to_string()),
            Change::set(Field::Sha256, file.sha256.clone()),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// A copy, in `room`, of shareable document `document` of the room's case, made by `member`
/// (the mediator: the caller checks the role) to share it with their session. `None` when the
/// document is not a shareable one of this room's case.
pub async fn copy_from_case(
    db: &Db,
    files: &FileStore,
    actor: &Actor,
    now: UnixMillis,
    (room, member): (RoomId, ParticipantId),
    document: &str,
) -> Result<Option<RoomFile>, UploadError> {
    let Some(case) = crate::rooms::room_store::room_case(db, room).await? else {
        return Ok(None);
    };
    let Some(document) = case_documents::find(db, &case.id, document).await? else {
        return Ok(None);
    };
    if !document.shareable {
        return Ok(None);
    }
    let bytes = files
        .get(&case_documents::object_path(&case.id, &document.id))
        .await?;
    upload(db, files, actor, now, (room, member), &document.name, bytes)
        .await
        .map(Some)
}

/// Whether `member` uploaded file `id` in `room` (only the uploader may share it).
pub async fn uploaded_by(
    db: &Db,
    room: RoomId,
    member: ParticipantId,
    id: &str,
) -> Result<bool, StoreError> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM room_files WHERE id = $1 AND room_id = $2 AND member_id = $3",
    )
    .bind(id)
    .bind(to_bigint(room.get(), "room id")?)
    .bind(to_bigint(member.get(), "member id")?)
    .fetch_optional(db.pool())
    .await?;
    Ok(found.is_some())
}

/// File `id` of `room` with its bytes, if `member` may read it (see the module invariant).
pub async fn read(
    db: &Db,
    files: &FileStore,
    (room, member): (RoomId, ParticipantId),
    id: &str,
) -> Result<Option<(RoomFile, Vec<u8>)>, StoreError> {
    let room_id = to_bigint(room.get(), "room id")?;
    let member_id = to_bigint(member.get(), "member id")?;
    let row = sqlx::query(
        "SELECT f.id, f.name, f.media_type, f.size_bytes, f.sha256 FROM room_files f \
         WHERE f.id = $1 AND f.room_id = $2 AND (f.member_id = $3 OR EXISTS ( \
             SELECT 1 FROM room_posts p JOIN room_post_audience a \
             ON a.room_id = p.room_id AND a.seq = p.seq \
             WHERE p.room_id = f.room_id AND p.file_ref = f.id AND a.member_id = $3))",
    )
    .bind(id)
    .bind(room_id)
    .bind(member_id)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let size: i64 = row.try_get("size_bytes")?;
    let file = RoomFile {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        media_type: row.try_get("media_type")?,
        size: u64::try_from(size).map_err(|_| StoreError::Corrupt("file size".to_owned()))?,
        sha256: row.try_get("sha256")?,
    };
    let bytes = files.get(&object_path(room, &file.id)).await?;
    Ok(Some((file, bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_is_told_by_the_content_not_the_name() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), Some("application/pdf"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), Some("image/png"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a"), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"<html><script>"), None);
        assert_eq!(sniff(b"PK\x03\x04"), None, "a .docx is a zip: not accepted");
        assert_eq!(sniff(b""), None);
    }
}
