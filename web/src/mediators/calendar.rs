//! Mediators' calendar feeds (iCalendar, RFC 5545).
//!
//! - `POST /api/v1/mediators/{id}/calendar` (segreteria): issues the feed; 201 `{ "url" }`,
//!   shown once (a new one replaces it).
//! - `GET /calendar/{token}`: the mediator's meetings as `text/calendar`, for calendar
//!   applications (which cannot log in: the token in the URL is the credential). Events name
//!   the case reference and the place, never the parties.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::mail::ical;
use backoffice::mediation::agenda::{self, AgendaError, FeedMeeting};
use backoffice::platform::access::Permission;
use backoffice::{StoreError, UnixMillis};
use serde_json::json;

use crate::http::auth::ApiUser;
use crate::http::error::{ApiError, AppError};
use crate::http::extract::ApiPath;
use crate::state::AppState;

/// `POST /api/v1/mediators/{id}/calendar`.
pub async fn issue(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(mediator): ApiPath<String>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    let token = agenda::issue_feed(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        &mediator,
    )
    .await
    .map_err(|error| match error {
        AgendaError::Store(StoreError::NotFound) => ApiError(AppError::NotFound),
        AgendaError::Store(error) => ApiError::from(error),
        other => ApiError(AppError::Internal(other.to_string())),
    })?;
    let base = state.config.public_url.as_str().trim_end_matches('/');
    let url = format!("{base}/calendar/{}", token.reveal());
    Ok((StatusCode::CREATED, Json(json!({ "url": url }))).into_response())
}

/// `GET /calendar/{token}`.
pub async fn feed(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let meetings = agenda::feed(&state.db, &token)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/calendar; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        render(&meetings, state.clock_now()),
    )
        .into_response())
}

/// The iCalendar text of `meetings`.
pub fn render(meetings: &[FeedMeeting], now: UnixMillis) -> String {
    let texts: Vec<(String, String)> = meetings
        .iter()
        .map(|meeting| {
            let summary = format!(
                "Incontro di mediazione – pratica {}",
                meeting.case_reference
            );
            let location = match &meeting.place {
                Some((sede, room)) => format!("{sede} – {room}"),
                None => "Online (stanza virtuale Accordo)".to_owned(),
            };
            (summary, location)
        })
        .collect();
    let events: Vec<ical::Event<'_>> = meetings
        .iter()
        .zip(&texts)
        .map(|(meeting, (summary, location))| ical::Event {
            uid: &meeting.id,
            sequence: meeting.sequence,
            starts_at: meeting.starts_at,
            ends_at: meeting.ends_at,
            summary,
            location,
            description: None,
            url: None,
        })
        .collect();
    ical::feed("Incontri di mediazione", &events, now)
}
