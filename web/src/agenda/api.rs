//! The agenda over JSON (segreteria and administrators).
//!
//! - `POST /api/v1/places` `{ "sede", "room" }`: a meeting room of an office; 201 `{ "id" }`.
//!
//! Meetings are booked from their case (`cases::meetings`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::mediation::agenda::{self};
use backoffice::platform::access::Permission;
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::ApiUser;
use crate::http::error::ApiError;
use crate::http::extract::ApiJson;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPlace {
    sede: String,
    room: String,
}

pub async fn add_place(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiJson(body): ApiJson<NewPlace>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    let id = agenda::add_place(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        (&body.sede, &body.room),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}
