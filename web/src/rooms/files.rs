//! Files in the room: a member uploads a PDF or an image, then offers it to their session with
//! the `share_file` command of the room protocol; the others of that session download it.
//!
//! Members have no back-office account: both requests authenticate with the personal link's
//! token in `Authorization: Bearer …` (a header, so it stays out of URLs and logs). Who may
//! read what is decided by `backoffice::rooms::room_files::read`.
//!
//! - `POST /api/v1/room-files?name=NAME` with the bytes as body: 201 `{ id, name, media_type,
//!   size, sha256 }`; 413 `too_large`, 415 `unsupported_type` (told by content, not by name),
//!   400 `bad_request` (empty file or bad name), 401 `unauthenticated` (bad, revoked or expired
//!   link), 403 `forbidden` (not in a session), 429 `too_many_uploads` (more than
//!   [`crate::state::UPLOADS_PER_LINK`] from the link or [`crate::state::UPLOADS_PER_NODE`] in all under way). A declared
//!   `Content-Length` over the limit is refused before the body is read.
//! - `GET /api/v1/room-files/{id}`: the bytes, with their checked type; 404 when the member may
//!   not read the file (whether or not it exists).
//! - `GET /api/v1/room-case-documents` (mediators): the shareable documents of the room's case
//!   file; `POST /api/v1/room-case-documents/{id}/copy`: a room file copied from one of them,
//!   201 as for an upload, then shared with `share_file` like any other.

use std::pin::Pin;

use axum::body::HttpBody;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::mediation::case_documents;
use backoffice::platform::audit::Actor;
use backoffice::rooms::access::{self, AccessError, Granted, Need};
use backoffice::rooms::invites::InviteError;
use backoffice::rooms::room_files::{self, RoomFile, MAX_ROOM_FILE_BYTES};
use backoffice::rooms::room_store;
use rooms::{ParticipantId, RoomId};
use serde::Deserialize;
use serde_json::json;

use crate::http::auth;
use crate::http::error::{ApiError, AppError};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::state::{AppState, UploadSlot};

/// The body limit of file uploads: one byte over the largest file, so that the handler sees
/// an oversized file and refuses it with its own error.
pub const UPLOAD_BODY_LIMIT: usize = MAX_ROOM_FILE_BYTES + 1;

#[derive(Deserialize)]
pub struct UploadQuery {
    name: String,
}

/// The member whose link token the request carries, if they may use it for `need` now
/// (`backoffice::rooms::access`, the one check the WebSocket and the room page make too): a
/// bad, revoked or expired link is 401, a member not in a session (waiting, removed, meeting
/// ended) 403.
async fn member(state: &AppState, headers: &HeaderMap, need: Need) -> Result<Granted, ApiError> {
    let token = auth::bearer(headers).ok_or(AppError::Unauthenticated)?;
    access::by_link(&state.db, token, state.clock.now(), need)
        .await
        .map_err(|error| {
            ApiError(match error {
                AccessError::Link(InviteError::Store(error)) => AppError::from(error),
                AccessError::NotAdmitted => AppError::Forbidden,
                AccessError::Link(_) | AccessError::Closed(_) => AppError::Unauthenticated,
            })
        })
}

/// The room and member whose link token the request carries, as an extractor: placed before
/// the query and the body, so that a caller without a valid token gets 401 whatever else is
/// wrong with the request.
pub struct LinkMember(RoomId, ParticipantId);

impl FromRequestParts<AppState> for LinkMember {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let granted = member(state, &parts.headers, Need::TakePart).await?;
        Ok(LinkMember(granted.room, granted.member_id()))
    }
}

/// The member uploading a file, checked before anything of the body is read: the link (401), the
/// declared `Content-Length` (413), then a free upload slot (429).
pub struct Uploader {
    room: RoomId,
    member: ParticipantId,
    _slot: UploadSlot,
}

impl FromRequestParts<AppState> for Uploader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let granted = member(state, &parts.headers, Need::TakePart).await?;
        refuse_declared_too_large(&parts.headers)?;
        let slot = state
            .upload_slots
            .take((granted.room, granted.member_id()))
            .ok_or(AppError::TooManyUploads)?;
        Ok(Uploader {
            room: granted.room,
            member: granted.member_id(),
            _slot: slot,
        })
    }
}

fn too_large() -> ApiError {
    ApiError(AppError::TooLarge {
        max_bytes: MAX_ROOM_FILE_BYTES,
    })
}

/// Refuses a body whose declared length is over the largest file, without reading it; the
/// declared length otherwise (0 when none is declared).
fn refuse_declared_too_large(headers: &HeaderMap) -> Result<usize, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > MAX_ROOM_FILE_BYTES as u64 => Err(too_large()),
        // Not over the largest file, so it fits a usize.
        Some(length) => Ok(usize::try_from(length).unwrap_or(MAX_ROOM_FILE_BYTES)),
        None => Ok(0),
    }
}

/// An uploaded file's bytes, read once into one buffer. A body declared or found larger than the
/// largest file is refused like any file too large (413 `too_large`, JSON, in Italian) as soon
/// as that is known: on its `Content-Length` before reading, or at the first byte over.
pub struct FileBody(pub Vec<u8>);

impl<S: Send + Sync> FromRequest<S> for FileBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let declared = refuse_declared_too_large(request.headers())?;
        let mut body = request.into_body();
        let mut bytes = Vec::with_capacity(declared.min(MAX_ROOM_FILE_BYTES));
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let frame = frame.map_err(|_| {
                ApiError(AppError::BadRequest(
                    "Il file non è arrivato per intero.".to_owned(),
                ))
            })?;
            if let Ok(data) = frame.into_data() {
                if bytes.len().saturating_add(data.len()) > MAX_ROOM_FILE_BYTES {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(FileBody(bytes))
    }
}

/// `POST /api/v1/room-files?name=NAME`.
pub async fn upload(
    State(state): State<AppState>,
    Uploader { room, member, .. }: Uploader,
    ApiQuery(query): ApiQuery<UploadQuery>,
    FileBody(body): FileBody,
) -> Result<Response, ApiError> {
    let stored = room_files::upload(
        &state.db,
        &state.files,
        &Actor::room_member(member.get(), None),
        state.clock_now(),
        (room, member),
        &query.name,
        body,
    )
    .await
    .map_err(AppError::from)?;
    Ok(created(&stored))
}

fn created(file: &RoomFile) -> Response {
    let body = json!({
        "id": file.id,
        "name": file.name,
        "media_type": file.media_type,
        "size": file.size,
        "sha256": file.sha256,
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

/// The room and member of a mediator's link token; 404 for anyone else. (A mediator is always
/// in a session: `rooms` never puts one in the waiting room.)
async fn mediator(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(RoomId, ParticipantId), ApiError> {
    let granted = member(state, headers, Need::Enter).await?;
    if granted.member.role != rooms::Role::Mediator {
        return Err(AppError::NotFound.into());
    }
    Ok((granted.room, granted.member_id()))
}

/// `GET /api/v1/room-case-documents`.
pub async fn case_documents(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (room, _) = mediator(&state, &headers).await?;
    let case = room_store::room_case(&state.db, room)
        .await?
        .ok_or(AppError::NotFound)?;
    let documents = case_documents::shareable(&state.db, &case.id).await?;
    let listed: Vec<serde_json::Value> = documents
        .iter()
        .map(|document| {
            json!({
                "id": document.id,
                "name": document.name,
                "media_type": document.media_type,
                "size": document.size,
            })
        })
        .collect();
    Ok(Json(json!({ "documents": listed })).into_response())
}

/// `POST /api/v1/room-case-documents/{id}/copy`.
pub async fn copy_case_document(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(document): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (room, member) = mediator(&state, &headers).await?;
    let copied = room_files::copy_from_case(
        &state.db,
        &state.files,
        &Actor::room_member(member.get(), None),
        state.clock_now(),
        (room, member),
        &document,
    )
    .await
    .map_err(AppError::from)?
    .ok_or(AppError::NotFound)?;
    Ok(created(&copied))
}

/// `GET /api/v1/room-files/{id}`.
pub async fn download(
    State(state): State<AppState>,
    LinkMember(room, member): LinkMember,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (file, bytes) = room_files::read(&state.db, &state.files, (room, member), &id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(inline_file(&file.media_type, bytes)?)
}

/// A stored file as the browser shows it (its own viewer, never cached).
pub fn inline_file(media_type: &str, bytes: Vec<u8>) -> Result<Response, AppError> {
    let content_type =
        HeaderValue::from_str(media_type).map_err(|error| AppError::Internal(error.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("inline"),
            ),
        ],
        bytes,
    )
        .into_response())
}
