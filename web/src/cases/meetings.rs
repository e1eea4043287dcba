//! Meetings scheduled from a case: online (room, personal links and invitations in one
//! transaction) or in a meeting room of an office; moved and cancelled, telling the same people.
//!
//! - `POST /api/v1/cases/{case}/online-meetings` `{ starts_at, duration_minutes }`: books the
//!   appointed mediator, creates the room if needed, issues the links and queues the
//!   invitations, in one transaction; 201 with who was invited (and, for people without an
//!   address, their link, shown once); 409 with the conflicts.
//! - `POST /api/v1/cases/{case}/meetings` `{ "starts_at" (Unix ms), "duration_minutes",
//!   "place"? (a room id; none: online), "mediator"? }`: 201 `{ "id" }`; 409 `conflicts` with
//!   each meeting in the way and an Italian explanation.
//! - `POST /api/v1/meetings/{meeting}/reschedule` `{ starts_at, duration_minutes }` and
//!   `POST /api/v1/meetings/{meeting}/cancel` `{ reason }`: the same people are told.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::mediation::agenda::{self, NewMeeting};
use backoffice::mediation::cases::CaseId;
use backoffice::mediation::scheduling::{self, Context, Scheduled};
use backoffice::platform::access::Permission;
use backoffice::UnixMillis;
use serde::Deserialize;
use serde_json::{json, Value};
use signaling::protocol::WireId;

use super::scope::own_case;
use crate::http::auth::{ApiUser, CurrentUser};
use crate::http::error::{ApiError, AppError};
use crate::http::extract::{ApiJson, ApiPath};
use crate::state::AppState;

/// The longest meeting accepted, in minutes.
pub const MAX_MEETING_MINUTES: u32 = 12 * 60;

/// The scheduling context of `current`'s organism on this server.
pub fn context<'a>(
    state: &'a AppState,
    current: &'a CurrentUser,
    leads: &'a [Duration],
) -> Context<'a> {
    let from = state.config.mail_from.as_str();
    let organizer = match from.rsplit_once('<') {
        Some((name, address)) => (
            name.trim().trim_matches('"'),
            address.trim_end_matches('>').trim(),
        ),
        None => ("Segreteria", from.trim()),
    };
    Context {
        organism: current.user.organism_id.as_deref(),
        public_url: state.config.public_url.as_str().trim_end_matches('/'),
        organizer,
        reminder_leads: leads,
        office_email: state.config.office_email.as_deref(),
        room_settings: state.config.room_settings(false),
        link_key: &state.link_key,
    }
}

/// The reminder lead times of the configuration.
pub fn reminder_leads(state: &AppState) -> Vec<Duration> {
    state
        .config
        .reminder_lead_hours
        .iter()
        .map(|hours| Duration::from_secs(u64::from(*hours) * 3600))
        .collect()
}

/// Adds to the case's live room the people who joined the case after the room was made.
async fn complete_room(
    state: &AppState,
    current: &CurrentUser,
    case_id: &CaseId,
) -> Result<(), AppError> {
    let Some((room, missing)) = scheduling::missing_members(&state.db, case_id).await? else {
        return Ok(());
    };
    for attendee in missing {
        let display_name = attendee.display_name.clone();
        let member = state
            .hub
            .add_member(
                room,
                current.actor(),
                attendee.role,
                attendee.side,
                display_name,
            )
            .await?;
        scheduling::record_member(
            &state.db,
            &current.actor(),
            state.clock_now(),
            room,
            &attendee,
            member,
        )
        .await?;
    }
    Ok(())
}

/// The meeting window of a request, checked.
pub fn window(starts_at: i64, duration_minutes: u32) -> Result<(UnixMillis, UnixMillis), AppError> {
    if duration_minutes == 0 || duration_minutes > MAX_MEETING_MINUTES {
        return Err(AppError::invalid(format!(
            "la durata va da 1 a {MAX_MEETING_MINUTES} minuti"
        )));
    }
    Ok((
        UnixMillis(starts_at),
        UnixMillis(starts_at.saturating_add(i64::from(duration_minutes) * 60_000)),
    ))
}

/// Schedules an online meeting of `case_id`.
pub async fn schedule_for(
    state: &AppState,
    current: &CurrentUser,
    case_id: &CaseId,
    window: (UnixMillis, UnixMillis),
) -> Result<Scheduled, AppError> {
    own_case(state, current, case_id).await?;
    complete_room(state, current, case_id).await?;
    let leads = reminder_leads(state);
    Ok(scheduling::schedule_online(
        &state.db,
        &current.actor(),
        state.clock_now(),
        &context(state, current, &leads),
        case_id,
        window,
    )
    .await?)
}

/// The JSON of a scheduling's result.
fn scheduled_json(scheduled: &Scheduled) -> Value {
    json!({
        "meeting": scheduled.meeting_id,
        "room": WireId(scheduled.room_id.get()),
        "invited": scheduled.invited.iter().map(|invited| json!({
            "display_name": invited.display_name,
            "part": invited.part,
            "email": invited.email,
            "link": invited.link_to_hand_over,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowBody {
    starts_at: i64,
    duration_minutes: u32,
}

/// `POST /api/v1/cases/{case}/online-meetings`.
pub async fn schedule_online(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(case_id): ApiPath<CaseId>,
    ApiJson(body): ApiJson<WindowBody>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    let window = window(body.starts_at, body.duration_minutes)?;
    let scheduled = schedule_for(&state, &current, &case_id, window).await?;
    Ok((StatusCode::CREATED, Json(scheduled_json(&scheduled))).into_response())
}

/// Moves meeting `meeting` (completing the room first, for people added since).
pub async fn reschedule_meeting(
    state: &AppState,
    current: &CurrentUser,
    meeting: &str,
    window: (UnixMillis, UnixMillis),
) -> Result<Scheduled, AppError> {
    let case_id = backoffice::mediation::agenda::case_of(&state.db, meeting)
        .await?
        .ok_or(AppError::NotFound)?;
    own_case(state, current, &case_id).await?;
    complete_room(state, current, &case_id).await?;
    let leads = reminder_leads(state);
    Ok(scheduling::reschedule(
        &state.db,
        &current.actor(),
        state.clock_now(),
        &context(state, current, &leads),
        meeting,
        window,
    )
    .await?)
}

/// `POST /api/v1/meetings/{meeting}/reschedule`.
pub async fn reschedule(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(meeting): ApiPath<String>,
    ApiJson(body): ApiJson<WindowBody>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    let window = window(body.starts_at, body.duration_minutes)?;
    let scheduled = reschedule_meeting(&state, &current, &meeting, window).await?;
    Ok(Json(scheduled_json(&scheduled)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    reason: String,
}

/// Cancels meeting `meeting` of the user's organism.
pub async fn cancel_meeting(
    state: &AppState,
    current: &CurrentUser,
    meeting: &str,
    reason: &str,
) -> Result<(), AppError> {
    let leads = reminder_leads(state);
    Ok(scheduling::cancel(
        &state.db,
        &current.actor(),
        state.clock_now(),
        &context(state, current, &leads),
        meeting,
        reason,
    )
    .await?)
}

/// `POST /api/v1/meetings/{meeting}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(meeting): ApiPath<String>,
    ApiJson(body): ApiJson<CancelBody>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    cancel_meeting(&state, &current, &meeting, &body.reason).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
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

/// `POST /api/v1/cases/{case}/meetings`: a meeting in a meeting room (or online, without
/// invitations).
pub async fn schedule_in_person(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(case): ApiPath<CaseId>,
    ApiJson(body): ApiJson<NewMeetingBody>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    let (starts_at, ends_at) = window(body.starts_at, body.duration_minutes)?;
    own_case(&state, &current, &case).await?;
    let organism = current.user.organism_id.as_deref();
    if let Some(place) = &body.place {
        let known = agenda::places(&state.db, organism).await?;
        if !known.iter().any(|(id, _, _)| id == place) {
            return Err(AppError::invalid("sala sconosciuta").into());
        }
    }
    if let Some(mediator) = &body.mediator {
        let known = backoffice::mediation::mediators::list(&state.db, organism).await?;
        if !known.iter().any(|m| &m.mediator.id == mediator) {
            return Err(AppError::invalid("mediatore sconosciuto").into());
        }
    }
    let meeting = NewMeeting {
        case_id: &case,
        starts_at,
        ends_at,
        place: body.place.as_deref(),
        mediator: body.mediator.as_deref(),
    };
    let id = agenda::schedule(&state.db, &current.actor(), state.clock_now(), &meeting).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}
