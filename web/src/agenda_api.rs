//! The agenda over JSON (segreteria and administrators).
//!
//! - `POST /api/v1/places` `{ "sede", "room" }`: a meeting room of an office; 201 `{ "id" }`.
//! - `POST /api/v1/cases/{case}/meetings` `{ "starts_at" (Unix ms), "duration_minutes",
//!   "place"? (a room id; none: online), "mediator"? }`: 201 `{ "id" }`; 409 `conflicts` with
//!   each meeting in the way and an Italian explanation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::access::Permission;
use backoffice::agenda::{self, AgendaError, Conflict, ConflictKind, NewMeeting};
use serde::Deserialize;
use serde_json::json;

use crate::auth::ApiUser;
use crate::error::{ApiError, AppError};
use crate::rooms_api::ApiJson;
use crate::state::AppState;
use backoffice::rome_time;

fn agenda_error(error: AgendaError) -> Response {
    match error {
        AgendaError::Conflicts(conflicts) => {
            let listed: Vec<serde_json::Value> = conflicts.iter().map(conflict_json).collect();
            let body = json!({
                "error": "conflicts",
                "message": "L'incontro si sovrappone ad altri: scelga un altro orario, un'altra sala o un altro mediatore.",
                "conflicts": listed,
            });
            (StatusCode::CONFLICT, Json(body)).into_response()
        }
        AgendaError::Invalid(reason) => {
            ApiError(AppError::BadRequest(format!("Dati non validi: {reason}."))).into_response()
        }
        AgendaError::Store(error) => ApiError::from(error).into_response(),
    }
}

pub fn conflict_json(conflict: &Conflict) -> serde_json::Value {
    let (kind, who) = match conflict.kind {
        ConflictKind::Mediator => ("mediator", "Il mediatore ha già"),
        ConflictKind::Room => ("room", "La sala ospita già"),
    };
    json!({
        "kind": kind,
        "meeting": conflict.meeting,
        "case": conflict.case_reference,
        "starts_at": conflict.starts_at.0,
        "ends_at": conflict.ends_at.0,
        "explanation": format!(
            "{who} un incontro dal {} al {} (pratica {}).",
            rome_time::format(conflict.starts_at),
            rome_time::format(conflict.ends_at),
            conflict.case_reference
        ),
    })
}

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
    match agenda::add_place(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        (&body.sede, &body.room),
    )
    .await
    {
        Ok(id) => Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response()),
        Err(error) => Ok(agenda_error(error)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMeetingBody {
    starts_at: i64,
    duration_minutes: u32,
    #[serde(default)]
    place: Option<String>,
    #[serde(default)]
    mediator: Option<String>,
}

pub async fn schedule(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(case): Path<String>,
    ApiJson(body): ApiJson<NewMeetingBody>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    let (starts_at, ends_at) = crate::cases_api::window(body.starts_at, body.duration_minutes)?;
    crate::cases_api::own_case(&state, &current, &case).await?;
    let organism = current.user.organism_id.as_deref();
    if let Some(place) = &body.place {
        let known = agenda::places(&state.db, organism).await?;
        if !known.iter().any(|(id, _, _)| id == place) {
            return Err(
                AppError::BadRequest("Dati non validi: sala sconosciuta.".to_owned()).into(),
            );
        }
    }
    if let Some(mediator) = &body.mediator {
        let known = backoffice::mediators::list(&state.db, organism).await?;
        if !known.iter().any(|m| &m.mediator.id == mediator) {
            return Err(
                AppError::BadRequest("Dati non validi: mediatore sconosciuto.".to_owned()).into(),
            );
        }
    }
    let meeting = NewMeeting {
        case_id: &case,
        starts_at,
        ends_at,
        place: body.place.as_deref(),
        mediator: body.mediator.as_deref(),
    };
    match agenda::schedule(&state.db, &current.actor(), state.clock_now(), &meeting).await {
        Ok(id) => Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response()),
        Err(error) => Ok(agenda_error(error)),
    }
}
