//! The case record over JSON, and online meetings scheduled from the case.
//!
//! - `GET /api/v1/cases`: the cases the user may see (a mediator: only the cases they are the
//!   current mediator of).
//! - `GET /api/v1/cases/{case}`: the whole record: details, participants, mediator, meetings,
//!   accounts.
//! - `PUT /api/v1/cases/{case}`: replaces the details (every field; the audit record lists
//!   those that changed).
//! - `POST /api/v1/cases/{case}/participants` `{ person, role, side?, represents? }`;
//!   `DELETE /api/v1/cases/{case}/participants/{participant}`.
//! - `POST /api/v1/cases/{case}/ledger` `{ direction, amount_cents, description, on_date }`.
//! - `GET /api/v1/cases/{case}/history`: the audit records of the case, newest first.
//! - `POST /api/v1/cases/{case}/online-meetings` `{ starts_at, duration_minutes }`: books the
//!   appointed mediator, creates the room if needed, issues the links and queues the
//!   invitations, in one transaction; 201 with who was invited (and, for people without an
//!   address, their link, shown once); 409 with the conflicts.
//! - `POST /api/v1/meetings/{meeting}/reschedule` `{ starts_at, duration_minutes }` and
//!   `POST /api/v1/meetings/{meeting}/cancel` `{ reason }`: the same people are told.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::access::Permission;
use backoffice::case_record::{
    self, CaseKind, Details, Direction, NewParticipant, Outcome, PartyRole, RecordError, Scope,
    Side,
};
use backoffice::scheduling::{self, Context, ScheduleError, Scheduled};
use backoffice::{mediators, StoreError, UnixMillis};
use serde::Deserialize;
use serde_json::{json, Value};
use signaling::protocol::WireId;

use crate::agenda_api::conflict_json;
use crate::auth::{ApiUser, CurrentUser};
use crate::error::{ApiError, AppError};
use crate::rooms_api::{room_settings, ApiJson};
use crate::state::AppState;

/// The longest meeting accepted, in minutes.
pub const MAX_MEETING_MINUTES: u32 = 12 * 60;

/// Which cases `current` may see; `Forbidden` without [`Permission::ViewCases`].
pub fn scope(current: &CurrentUser) -> Result<Scope<'_>, AppError> {
    current.require(Permission::ViewCases)?;
    Ok(if current.allows(Permission::ViewAllCases) {
        Scope::All
    } else {
        Scope::MediatorUser(&current.user.id)
    })
}

pub fn record_error(error: RecordError) -> AppError {
    match error {
        RecordError::Invalid(message) => {
            AppError::BadRequest(format!("Dati non validi: {message}."))
        }
        RecordError::NotFound => AppError::NotFound,
        RecordError::Store(error) => error.into(),
    }
}

/// Why a scheduling request was refused.
#[derive(Debug)]
pub enum Refusal {
    Schedule(ScheduleError),
    App(AppError),
}

impl From<ScheduleError> for Refusal {
    fn from(error: ScheduleError) -> Self {
        Refusal::Schedule(error)
    }
}

impl From<AppError> for Refusal {
    fn from(error: AppError) -> Self {
        Refusal::App(error)
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        Refusal::App(error.into())
    }
}

impl Refusal {
    /// Conflicts answer 409 with each meeting in the way; the rest as [`AppError`]s.
    pub fn into_response(self) -> Response {
        match self {
            Refusal::Schedule(ScheduleError::Conflicts(conflicts)) => {
                let listed: Vec<Value> = conflicts.iter().map(conflict_json).collect();
                let body = json!({
                    "error": "conflicts",
                    "message": "L'incontro si sovrappone ad altri: scelga un altro orario.",
                    "conflicts": listed,
                });
                (StatusCode::CONFLICT, Json(body)).into_response()
            }
            Refusal::Schedule(error) => ApiError(schedule_app_error(error)).into_response(),
            Refusal::App(error) => ApiError(error).into_response(),
        }
    }

    /// What a page tells the clerk, if it is something they can act on.
    pub fn message(&self) -> Option<String> {
        match self {
            Refusal::Schedule(ScheduleError::Conflicts(conflicts)) => {
                let reasons: Vec<String> = conflicts
                    .iter()
                    .filter_map(|conflict| {
                        conflict_json(conflict)["explanation"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .collect();
                Some(format!(
                    "L'incontro si sovrappone ad altri. {}",
                    reasons.join(" ")
                ))
            }
            Refusal::Schedule(ScheduleError::Invalid(message)) => Some(capitalised(message)),
            Refusal::App(AppError::BadRequest(message) | AppError::Conflict(message)) => {
                Some(message.clone())
            }
            _ => None,
        }
    }
}

/// `message` with its first letter in upper case and a full stop.
pub fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// A refused scheduling other than conflicts, as an [`AppError`].
pub fn schedule_app_error(error: ScheduleError) -> AppError {
    match error {
        ScheduleError::Invalid(message) => {
            AppError::BadRequest(format!("Dati non validi: {message}."))
        }
        ScheduleError::NotFound => AppError::NotFound,
        ScheduleError::Conflicts(_) => {
            AppError::Conflict("L'incontro si sovrappone ad altri.".to_owned())
        }
        ScheduleError::MembersMissing => AppError::Conflict(
            "La stanza della pratica è cambiata nel frattempo: riprovi.".to_owned(),
        ),
        ScheduleError::Store(error) => error.into(),
    }
}

fn bad(message: &str) -> ApiError {
    ApiError(AppError::BadRequest(message.to_owned()))
}

/// The case fields as JSON.
pub fn details_json(details: &Details) -> Value {
    json!({
        "title": details.title,
        "filed_on": details.filed_on,
        "kind": details.kind.map(CaseKind::code),
        "subject": details.subject,
        "subject_note": details.subject_note,
        "value_cents": details.value_cents,
        "value_indeterminate": details.value_indeterminate,
        "communication_sent_on": details.communication_sent_on,
        "response": details.response.map(case_record::Response::code),
        "response_on": details.response_on,
        "outcome": details.outcome.map(Outcome::code),
        "closed_on": details.closed_on,
        "sede": details.sede,
    })
}

/// `GET /api/v1/cases`.
pub async fn list(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
) -> Result<Json<Value>, ApiError> {
    let scope = scope(&current)?;
    let cases =
        case_record::list(&state.db, current.user.organism_id.as_deref(), scope, 500).await?;
    let cases: Vec<Value> = cases
        .iter()
        .map(|summary| {
            json!({
                "id": summary.case.id,
                "reference": summary.case.reference.as_str(),
                "mediator": summary.mediator,
                "details": details_json(&summary.details),
            })
        })
        .collect();
    Ok(Json(json!({ "cases": cases })))
}

/// `GET /api/v1/cases/{case}`.
pub async fn show(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(case_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope(&current)?;
    let organism = current.user.organism_id.as_deref();
    let (case, details) = case_record::find(&state.db, organism, scope, &case_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let participants = case_record::participants(&state.db, &case.id).await?;
    let mediator = mediators::appointed(&state.db, &case.id).await?;
    let meetings = backoffice::agenda::of_case(&state.db, &case.id).await?;
    let ledger = case_record::entries(&state.db, &case.id).await?;
    Ok(Json(json!({
        "id": case.id,
        "reference": case.reference.as_str(),
        "details": details_json(&details),
        "participants": participants.iter().map(|p| json!({
            "id": p.id,
            "person": p.person_id,
            "display_name": p.display_name,
            "role": p.role.code(),
            "side": p.side.map(Side::code),
            "represents": p.represents,
        })).collect::<Vec<_>>(),
        "mediator": mediator.map(|(mediator, reason)| json!({
            "id": mediator.mediator.id,
            "display_name": mediator.mediator.display_name,
            "reason": reason,
        })),
        "meetings": meetings.iter().map(|m| json!({
            "id": m.id,
            "starts_at": m.starts_at.0,
            "ends_at": m.ends_at.0,
            "online": m.place.is_none(),
            "cancelled": m.cancelled,
        })).collect::<Vec<_>>(),
        "ledger": ledger.iter().map(|e| json!({
            "id": e.id,
            "direction": e.direction.code(),
            "amount_cents": e.amount_cents,
            "description": e.description,
            "on_date": e.on_date,
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetailsBody {
    pub title: String,
    #[serde(default)]
    pub filed_on: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub subject_note: Option<String>,
    #[serde(default)]
    pub value_cents: Option<i64>,
    #[serde(default)]
    pub value_indeterminate: bool,
    #[serde(default)]
    pub communication_sent_on: Option<String>,
    #[serde(default)]
    pub response: Option<String>,
    #[serde(default)]
    pub response_on: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub closed_on: Option<String>,
    #[serde(default)]
    pub sede: Option<String>,
}

/// Reads a closed-set code; blank is `None`.
fn code<T>(
    value: Option<&str>,
    parse: fn(&str) -> Option<T>,
    what: &str,
) -> Result<Option<T>, AppError> {
    match value.map(str::trim).filter(|value| !value.is_empty()) {
        None => Ok(None),
        Some(code) => parse(code)
            .map(Some)
            .ok_or_else(|| AppError::BadRequest(format!("Dati non validi: {what} sconosciuto."))),
    }
}

impl DetailsBody {
    pub fn details(self) -> Result<Details, AppError> {
        Ok(Details {
            kind: code(self.kind.as_deref(), CaseKind::parse, "tipo di mediazione")?,
            response: code(
                self.response.as_deref(),
                case_record::Response::parse,
                "esito dell'invito",
            )?,
            outcome: code(self.outcome.as_deref(), Outcome::parse, "esito")?,
            title: self.title,
            filed_on: self.filed_on,
            subject: self.subject,
            subject_note: self.subject_note,
            value_cents: self.value_cents,
            value_indeterminate: self.value_indeterminate,
            communication_sent_on: self.communication_sent_on,
            response_on: self.response_on,
            closed_on: self.closed_on,
            sede: self.sede,
        })
    }
}

/// `PUT /api/v1/cases/{case}`.
pub async fn update(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(case_id): Path<String>,
    ApiJson(body): ApiJson<DetailsBody>,
) -> Result<Json<Value>, ApiError> {
    let details = update_details(&state, &current, &case_id, body).await?;
    Ok(Json(json!({ "details": details_json(&details) })))
}

/// Replaces the details of case `case_id` of the user's organism with `body`.
pub async fn update_details(
    state: &AppState,
    current: &CurrentUser,
    case_id: &str,
    body: DetailsBody,
) -> Result<Details, AppError> {
    current.require(Permission::ManageCases)?;
    case_record::update(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        case_id,
        body.details()?,
    )
    .await
    .map_err(record_error)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantBody {
    pub person: String,
    pub role: String,
    #[serde(default)]
    pub side: Option<String>,
    #[serde(default)]
    pub represents: Option<String>,
}

/// Adds a participant described by `body` to case `case_id`.
pub async fn add_participant_to(
    state: &AppState,
    current: &CurrentUser,
    case_id: &str,
    body: &ParticipantBody,
) -> Result<String, AppError> {
    current.require(Permission::ManageCases)?;
    let role = PartyRole::parse(&body.role)
        .ok_or_else(|| AppError::BadRequest("Dati non validi: ruolo sconosciuto.".to_owned()))?;
    let new = NewParticipant {
        person_id: &body.person,
        role,
        side: code(body.side.as_deref(), Side::parse, "lato")?,
        represents: body.represents.as_deref().filter(|id| !id.is_empty()),
    };
    case_record::add_participant(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        case_id,
        &new,
    )
    .await
    .map_err(record_error)
}

/// `POST /api/v1/cases/{case}/participants`.
pub async fn add_participant(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(case_id): Path<String>,
    ApiJson(body): ApiJson<ParticipantBody>,
) -> Result<Response, ApiError> {
    let id = add_participant_to(&state, &current, &case_id, &body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// Checks that case `case_id` is the user's organism's, for changes keyed by the case alone.
pub async fn own_case(
    state: &AppState,
    current: &CurrentUser,
    case_id: &str,
) -> Result<(), AppError> {
    case_record::find(
        &state.db,
        current.user.organism_id.as_deref(),
        Scope::All,
        case_id,
    )
    .await?
    .map(|_| ())
    .ok_or(AppError::NotFound)
}

/// `DELETE /api/v1/cases/{case}/participants/{participant}`.
pub async fn remove_participant(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path((case_id, participant)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageCases)?;
    own_case(&state, &current, &case_id).await?;
    case_record::remove_participant(
        &state.db,
        &current.actor(),
        state.clock_now(),
        &case_id,
        &participant,
    )
    .await
    .map_err(record_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    pub direction: String,
    pub amount_cents: i64,
    pub description: String,
    pub on_date: String,
}

/// `POST /api/v1/cases/{case}/ledger`.
pub async fn add_entry(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(case_id): Path<String>,
    ApiJson(body): ApiJson<EntryBody>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageCases)?;
    own_case(&state, &current, &case_id).await?;
    let direction = Direction::parse(&body.direction)
        .ok_or_else(|| bad("Dati non validi: movimento sconosciuto."))?;
    let id = case_record::add_entry(
        &state.db,
        &current.actor(),
        state.clock_now(),
        &case_id,
        (
            direction,
            body.amount_cents,
            &body.description,
            &body.on_date,
        ),
    )
    .await
    .map_err(record_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// `GET /api/v1/cases/{case}/history`.
pub async fn history(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(case_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope(&current)?;
    case_record::find(
        &state.db,
        current.user.organism_id.as_deref(),
        scope,
        &case_id,
    )
    .await?
    .ok_or(AppError::NotFound)?;
    let records = case_record::history(&state.db, &case_id).await?;
    let records: Vec<Value> = records
        .iter()
        .map(|record| {
            json!({
                "at": record.at.0,
                "actor": record.actor,
                "action": record.action,
                "changes": record.changes.iter().map(|change| json!({
                    "field": change.field, "before": change.before, "after": change.after,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "history": records })))
}

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
        room_settings: room_settings(&state.config, false),
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
    case_id: &str,
) -> Result<(), Refusal> {
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
            .await
            .map_err(|error| AppError::Internal(error.to_string()))?;
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
        return Err(AppError::BadRequest(format!(
            "Dati non validi: la durata va da 1 a {MAX_MEETING_MINUTES} minuti."
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
    case_id: &str,
    window: (UnixMillis, UnixMillis),
) -> Result<Scheduled, Refusal> {
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
    Path(case_id): Path<String>,
    ApiJson(body): ApiJson<WindowBody>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    let window = window(body.starts_at, body.duration_minutes)?;
    match schedule_for(&state, &current, &case_id, window).await {
        Ok(scheduled) => {
            Ok((StatusCode::CREATED, Json(scheduled_json(&scheduled))).into_response())
        }
        Err(refusal) => Ok(refusal.into_response()),
    }
}

/// Moves meeting `meeting` (completing the room first, for people added since).
pub async fn reschedule_meeting(
    state: &AppState,
    current: &CurrentUser,
    meeting: &str,
    window: (UnixMillis, UnixMillis),
) -> Result<Scheduled, Refusal> {
    let case_id = backoffice::agenda::case_of(&state.db, meeting)
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
    Path(meeting): Path<String>,
    ApiJson(body): ApiJson<WindowBody>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    let window = window(body.starts_at, body.duration_minutes)?;
    match reschedule_meeting(&state, &current, &meeting, window).await {
        Ok(scheduled) => Ok(Json(scheduled_json(&scheduled)).into_response()),
        Err(refusal) => Ok(refusal.into_response()),
    }
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
) -> Result<(), Refusal> {
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
    Path(meeting): Path<String>,
    ApiJson(body): ApiJson<CancelBody>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageAgenda)?;
    match cancel_meeting(&state, &current, &meeting, &body.reason).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(refusal) => Ok(refusal.into_response()),
    }
}
