//! The mediators' register and appointments (segreteria and administrators).
//!
//! - `POST /api/v1/mediators` `{ "display_name", "subjects": [code…] }`: 201 the mediator.
//! - `POST /api/v1/mediators/{id}/unavailability` `{ "from", "to" }` (AAAA-MM-GG): 204.
//! - `POST /api/v1/mediators/{id}/conflicts` `{ "person" }` (a registry id): 204.
//! - `POST /api/v1/cases/{case}/appointment` `{ "subject", "date", "parties": [person id…],
//!   "mediator"?, "override_reason"? }`: appoints the engine's proposal, or the chosen mediator
//!   when it differs and a reason is given; 201 `{ "mediator", "reason", "overridden",
//!   "proposed" }`; 409 when nobody fits and none was chosen.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::access::Permission;
use backoffice::mediators::{self, MediatorError, Need};
use serde::Deserialize;
use serde_json::json;

use crate::auth::ApiUser;
use crate::error::{ApiError, AppError};
use crate::rooms_api::ApiJson;
use crate::state::AppState;

fn mediator_error(error: MediatorError) -> ApiError {
    ApiError(match error {
        MediatorError::Invalid(reason) => {
            AppError::BadRequest(format!("Dati non validi: {reason}."))
        }
        MediatorError::Store(error) => error.into(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMediator {
    display_name: String,
    subjects: Vec<String>,
}

pub async fn add(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiJson(body): ApiJson<NewMediator>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageMediators)?;
    let mediator = mediators::add(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        &body.display_name,
        &body.subjects,
    )
    .await
    .map_err(mediator_error)?;
    let body = json!({ "id": mediator.id, "display_name": mediator.display_name, "subjects": mediator.subjects });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    from: String,
    to: String,
}

pub async fn unavailability(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Period>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageMediators)?;
    mediators::add_unavailability(&state.db, &id, &body.from, &body.to)
        .await
        .map_err(mediator_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conflict {
    person: String,
}

pub async fn conflict(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Conflict>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageMediators)?;
    mediators::add_conflict(&state.db, &id, &body.person)
        .await
        .map_err(mediator_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appointment {
    subject: String,
    date: String,
    #[serde(default)]
    parties: Vec<String>,
    #[serde(default)]
    mediator: Option<String>,
    #[serde(default)]
    override_reason: Option<String>,
}

pub async fn appoint(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(case): Path<String>,
    ApiJson(body): ApiJson<Appointment>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageMediators)?;
    let need = Need {
        subject: &body.subject,
        date: &body.date,
        parties: &body.parties,
    };
    let proposal = mediators::propose(&state.db, current.user.organism_id.as_deref(), &need)
        .await
        .map_err(mediator_error)?;
    let proposed_id = proposal.as_ref().map(|p| p.mediator.id.clone());
    let (mediator, reason, overridden) = match (body.mediator, &proposal) {
        (Some(chosen), _) if Some(&chosen) != proposed_id.as_ref() => {
            let why = body
                .override_reason
                .as_deref()
                .map(str::trim)
                .filter(|why| !why.is_empty())
                .ok_or_else(|| {
                    AppError::BadRequest(
                        "Per nominare un mediatore diverso da quello proposto serve il motivo."
                            .to_owned(),
                    )
                })?;
            (chosen, format!("Scelta della segreteria: {why}"), true)
        }
        (_, Some(proposal)) => (proposal.mediator.id.clone(), proposal.reason.clone(), false),
        (_, None) => {
            return Err(AppError::Conflict(
                "Nessun mediatore qualificato, disponibile e senza conflitti: ne scelga uno \
                 indicando il motivo."
                    .to_owned(),
            )
            .into())
        }
    };
    mediators::appoint(
        &state.db,
        &current.actor(),
        state.clock_now(),
        &case,
        (&mediator, &reason, overridden),
    )
    .await
    .map_err(mediator_error)?;
    let proposed = proposal.map(|p| json!({ "mediator": p.mediator.id, "reason": p.reason }));
    let body = json!({ "mediator": mediator, "reason": reason, "overridden": overridden, "proposed": proposed });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
