//! Files in the room: a member uploads a PDF or an image, then offers it to their session with
//! the `share_file` command of the room protocol; the others of that session download it.
//!
//! Members have no back-office account: both requests authenticate with the personal link's
//! token in `Authorization: Bearer …` (a header, so it stays out of URLs and logs). Who may
//! read what is decided by `backoffice::room_files::read`.
//!
//! - `POST /api/v1/room-files?name=NAME` with the bytes as body: 201 `{ id, name, media_type,
//!   size, sha256 }`; 413 `too_large`, 415 `unsupported_type` (told by content, not by name),
//!   400 `bad_request` (empty file or bad name), 401 `unauthenticated`.
//! - `GET /api/v1/room-files/{id}`: the bytes, with their checked type; 404 when the member may
//!   not read the file (whether or not it exists).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::audit::Actor;
use backoffice::invites;
use backoffice::room_files::{self, UploadError, MAX_ROOM_FILE_BYTES};
use rooms::{ParticipantId, RoomId};
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, AppError};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct UploadQuery {
    name: String,
}

/// The room and member whose link token the request carries.
async fn member(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(RoomId, ParticipantId), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(AppError::Unauthenticated)?;
    invites::resolve(&state.db, token.trim())
        .await
        .map_err(|_| ApiError(AppError::Unauthenticated))
}

/// `POST /api/v1/room-files?name=NAME`.
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<UploadQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (room, member) = member(&state, &headers).await?;
    let actor = Actor {
        user_id: None,
        label: format!("partecipante {}", member.get()),
        ip: None,
    };
    let stored = room_files::upload(
        &state.db,
        &state.files,
        &actor,
        state.clock_now(),
        (room, member),
        &query.name,
        body.to_vec(),
    )
    .await
    .map_err(|error| match error {
        UploadError::TooLarge => AppError::TooLarge {
            max_bytes: MAX_ROOM_FILE_BYTES,
        },
        UploadError::UnsupportedType => AppError::UnsupportedType,
        UploadError::Empty => AppError::BadRequest("Il file è vuoto.".to_owned()),
        UploadError::BadName => AppError::BadRequest(
            "Il nome del file è vuoto, troppo lungo o contiene caratteri non ammessi.".to_owned(),
        ),
        UploadError::Store(error) => error.into(),
    })?;
    let body = json!({
        "id": stored.id,
        "name": stored.name,
        "media_type": stored.media_type,
        "size": stored.size,
        "sha256": stored.sha256,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `GET /api/v1/room-files/{id}`.
pub async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let reader = member(&state, &headers).await?;
    let (file, bytes) = room_files::read(&state.db, &state.files, reader, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    let content_type = HeaderValue::from_str(&file.media_type)
        .map_err(|error| AppError::Internal(error.to_string()))?;
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
