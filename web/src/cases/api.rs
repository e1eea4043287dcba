//! The case record over JSON.
//!
//! - `POST /api/v1/cases` `{ reference?, title }`: registers a case (numbered when no
//!   reference is given).
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
//!
//! Meetings scheduled from the case are in `meetings`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::mediation::case_record::{
    self, CaseKind, Details, Direction, NewParticipant, Outcome, PartyRole, Side,
};
use backoffice::mediation::cases::CaseId;
use backoffice::mediation::mediators;
use backoffice::platform::access::Permission;
use serde::Deserialize;
use serde_json::{json, Value};

use super::scope::{own_case, scope};
use crate::http::auth::{ApiUser, CurrentUser};
use crate::http::error::{ApiError, AppError};
use crate::http::extract::{ApiJson, ApiPath};
use crate::state::AppState;

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
    ApiPath(case_id): ApiPath<CaseId>,
) -> Result<Json<Value>, ApiError> {
    let scope = scope(&current)?;
    let organism = current.user.organism_id.as_deref();
    let (case, details) = case_record::find(&state.db, organism, scope, &case_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let participants = case_record::participants(&state.db, &case.id).await?;
    let mediator = mediators::appointed(&state.db, &case.id).await?;
    let meetings = backoffice::mediation::agenda::of_case(&state.db, &case.id).await?;
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
    ApiPath(case_id): ApiPath<CaseId>,
    ApiJson(body): ApiJson<DetailsBody>,
) -> Result<Json<Value>, ApiError> {
    let details = update_details(&state, &current, &case_id, body).await?;
    Ok(Json(json!({ "details": details_json(&details) })))
}

/// Replaces the details of case `case_id` of the user's organism with `body`.
pub async fn update_details(
    state: &AppState,
    current: &CurrentUser,
    case_id: &CaseId,
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
    .map_err(AppError::from)
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
    case_id: &CaseId,
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
    .map_err(AppError::from)
}

/// `POST /api/v1/cases/{case}/participants`.
pub async fn add_participant(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(case_id): ApiPath<CaseId>,
    ApiJson(body): ApiJson<ParticipantBody>,
) -> Result<Response, ApiError> {
    let id = add_participant_to(&state, &current, &case_id, &body).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// `DELETE /api/v1/cases/{case}/participants/{participant}`.
pub async fn remove_participant(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath((case_id, participant)): ApiPath<(CaseId, String)>,
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
    .map_err(AppError::from)?;
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
    ApiPath(case_id): ApiPath<CaseId>,
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
    .map_err(AppError::from)?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

/// `GET /api/v1/cases/{case}/history`.
pub async fn history(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(case_id): ApiPath<CaseId>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    /// Without it, the case gets the next number of the organism's year (`NUMBER/YEAR`).
    #[serde(default)]
    reference: Option<String>,
    title: String,
}

/// `POST /api/v1/cases`: a minimal case record.
pub async fn create_case(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiJson(body): ApiJson<NewCase>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageCases)?;
    let now = state.clock_now();
    let organism = current.user.organism_id.as_deref();
    let actor = current.actor();
    let case = match body.reference.as_deref() {
        Some(reference) => {
            backoffice::mediation::cases::create_minimal(
                &state.db,
                &actor,
                now,
                organism,
                reference,
                &body.title,
            )
            .await
        }
        None => {
            let year = backoffice::platform::rome_time::year(now);
            backoffice::mediation::cases::register(
                &state.db,
                &actor,
                now,
                organism,
                year,
                &body.title,
            )
            .await
        }
    }?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": case.id,
            "reference": case.reference.as_str(),
            "title": case.title,
        })),
    )
        .into_response())
}
