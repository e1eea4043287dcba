//! `POST /api/v1/cases/{case}/documents?name=NAME&shareable=BOOL`: the segreteria adds a
//! document to a case file, with its bytes as body (PDF or image, told by content; 20 MiB at
//! most). `shareable=false` keeps it for the mediator only. 201 `{ id, name, media_type, size,
//! sha256, shareable }`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::access::Permission;
use backoffice::case_documents;
use serde::Deserialize;
use serde_json::json;

use crate::auth::ApiUser;
use crate::error::ApiError;
use crate::room_files_api::{upload_error, FileBody};
use crate::rooms_api::ApiQuery;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct NewDocument {
    name: String,
    shareable: bool,
}

pub async fn add(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(case): Path<String>,
    ApiQuery(query): ApiQuery<NewDocument>,
    FileBody(body): FileBody,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageCaseFiles)?;
    crate::cases_api::own_case(&state, &current, &case).await?;
    let document = case_documents::add(
        &state.db,
        &state.files,
        &current.actor(),
        state.clock_now(),
        &case,
        (&query.name, query.shareable),
        body.to_vec(),
    )
    .await
    .map_err(upload_error)?;
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
