//! The agenda over JSON (segreteria and administrators).
//!
//! - `POST /api/v1/places` `{ "sede", "room" }`: a meeting room of an office; 201 `{ "id" }`.
//! - `GET /api/v1/meetings?from=&to=&limit=`: the meetings (not cancelled) of the user's body
//!   starting in `[from, to)` (Unix milliseconds, at most 366 days apart), by start; a user who
//!   may not see every case sees only their own, as on the agenda page; at most `limit` (50 by
//!   default, 200 at most): `{ "meetings": [...], "more" }`.
//!
//! Meetings are booked from their case (`cases::meetings`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::mediation::agenda::{self, AgendaItem};
use backoffice::platform::access::Permission;
use backoffice::UnixMillis;
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::ApiUser;
use crate::http::error::{ApiError, AppError};
use crate::http::extract::{first, listing_limit, ApiJson, ApiQuery};
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

/// The longest window `GET /api/v1/meetings` reads at once.
const MAX_WINDOW_MS: i64 = 366 * 24 * 60 * 60 * 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingsQuery {
    from: i64,
    to: i64,
    #[serde(default)]
    limit: Option<usize>,
}

fn meeting_json(item: &AgendaItem) -> serde_json::Value {
    json!({
        "id": item.id,
        "case": item.case_id,
        "case_reference": item.case_reference,
        "case_title": item.case_title,
        "starts_at": item.starts_at.0,
        "ends_at": item.ends_at.0,
        "place": item.place.as_ref().map(|(sede, room)| json!({ "sede": sede, "room": room })),
        "mediator": item.mediator,
    })
}

/// `GET /api/v1/meetings?from=&to=&limit=`.
pub async fn meetings(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiQuery(query): ApiQuery<MeetingsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    current.require(Permission::ViewCases)?;
    let limit = listing_limit(query.limit)?;
    if query.to <= query.from || query.to.saturating_sub(query.from) > MAX_WINDOW_MS {
        return Err(AppError::BadRequest(
            "L'intervallo non è valido: `to` deve seguire `from` di non più di 366 giorni."
                .to_owned(),
        )
        .into());
    }
    let only_mine = !current.allows(Permission::ViewAllCases);
    let items = agenda::between(
        &state.db,
        current.user.organism_id.as_deref(),
        (UnixMillis(query.from), UnixMillis(query.to)),
        only_mine.then_some(current.user.id.as_str()),
    )
    .await?;
    let (items, more) = first(items, limit);
    let listed: Vec<serde_json::Value> = items.iter().map(meeting_json).collect();
    Ok(Json(json!({ "meetings": listed, "more": more })))
}
