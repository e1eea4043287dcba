//! `POST /api/v1/cases/{case}/documents?name=NAME&shareable=BOOL`: the segreteria adds a
//! document to a case file, with its bytes as body (PDF or image, told by content; 20 MiB at
//! most). `shareable=false` keeps it for the mediator only. 201 `{ id, name, media_type, size,
//! sha256, shareable }`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::mediation::case_documents;
use backoffice::mediation::cases::CaseId;
use backoffice::platform::access::Permission;
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::ApiUser;
use crate::http::error::{ApiError, AppError};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::rooms::files::FileBody;
use crate::state::AppState;

/// The body limit of a document sent to the API: as for room files.
pub const UPLOAD_BODY_LIMIT: usize = crate::rooms::files::UPLOAD_BODY_LIMIT;

/// The body limit of a page's upload form: the file and the multipart framing around it.
pub const FORM_BODY_LIMIT: usize = backoffice::rooms::room_files::MAX_ROOM_FILE_BYTES + 64 * 1024;

#[derive(Deserialize)]
pub struct NewDocument {
    name: String,
    shareable: bool,
}

pub async fn add(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(case): ApiPath<CaseId>,
    ApiQuery(query): ApiQuery<NewDocument>,
    FileBody(body): FileBody,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageCaseFiles)?;
    crate::cases::scope::own_case(&state, &current, &case).await?;
    let document = case_documents::add(
        &state.db,
        &state.files,
        &current.actor(),
        state.clock_now(),
        &case,
        (&query.name, query.shareable),
        body,
    )
    .await
    .map_err(AppError::from)?;
    let body = json!({
        "id": document.id,
        "name": document.name,
        "media_type": document.media_type,
        "size": document.size,
        "sha256": document.sha256,
        "shareable": document.shareable,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
