//! The mediators' register and appointments (segreteria and administrators).
//!
//! - `GET /api/v1/mediators?limit=`: the active mediators of the user's body, by name; at most
//!   `limit` (50 by default, 200 at most): `{ "mediators": [...], "more" }`.
//! - `POST /api/v1/mediators` `{ "display_name", "subjects": [code…] }`: 201 the mediator.
//! - `POST /api/v1/mediators/{id}/unavailability` `{ "from", "to" }` (AAAA-MM-GG): 204.
//! - `POST /api/v1/mediators/{id}/conflicts` `{ "person" }` (a registry id): 204.
//! - `POST /api/v1/cases/{case}/appointment` `{ "subject", "date", "parties": [person id…],
//!   "mediator"?, "override_reason"? }`: appoints the engine's proposal, or the chosen mediator
//!   when it differs and a reason is given; 201 `{ "mediator", "reason", "overridden",
//!   "proposed" }`; 409 when nobody fits and none was chosen.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::mediation::case_record::{self, Scope};
use backoffice::mediation::cases::CaseId;
use backoffice::mediation::mediators::{self, Need, Proposal};
use backoffice::platform::access::Permission;
use backoffice::platform::accounts;
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::{ApiUser, CurrentUser};
use crate::http::error::{ApiError, AppError};
use crate::http::extract::{first, listing_limit, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMediator {
    pub display_name: String,
    pub subjects: Vec<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The username of the mediator's back-office login, if they have one.
    #[serde(default)]
    pub username: Option<String>,
}

/// Registers a mediator of the user's organism; `username` links their back-office login.
pub async fn register(
    state: &AppState,
    current: &CurrentUser,
    body: &NewMediator,
) -> Result<mediators::Mediator, AppError> {
    current.require(Permission::ManageMediators)?;
    let username = body
        .username
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty());
    let user = match username {
        None => None,
        Some(username) => Some(
            accounts::find_by_username(&state.db, username)
                .await?
                .filter(|user| user.active && user.organism_id == current.user.organism_id)
                .ok_or_else(|| {
                    AppError::BadRequest("Nessun utente attivo con questo nome utente.".to_owned())
                })?,
        ),
    };
    let profile = mediators::Profile {
        display_name: &body.display_name,
        subjects: &body.subjects,
        email: body.email.as_deref(),
        user_id: user.as_ref().map(|user| user.id.as_str()),
    };
    mediators::add(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        &profile,
    )
    .await
    .map_err(AppError::from)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /api/v1/mediators?limit=`.
pub async fn list(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    current.require(Permission::ManageMediators)?;
    let limit = listing_limit(query.limit)?;
    let registered = mediators::list(&state.db, current.user.organism_id.as_deref()).await?;
    let (registered, more) = first(registered, limit);
    let listed: Vec<serde_json::Value> = registered
        .iter()
        .map(|registered| {
            let mediator = &registered.mediator;
            json!({
                "id": mediator.id,
                "display_name": mediator.display_name,
                "subjects": mediator.subjects,
                "email": registered.email,
            })
        })
        .collect();
    Ok(Json(json!({ "mediators": listed, "more": more })))
}

pub async fn add(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiJson(body): ApiJson<NewMediator>,
) -> Result<Response, ApiError> {
    let mediator = register(&state, &current, &body).await?;
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
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Period>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageMediators)?;
    mediators::add_unavailability(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        (&id, &body.from, &body.to),
    )
    .await
    .map_err(AppError::from)?;
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
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Conflict>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManageMediators)?;
    mediators::add_conflict(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        (&id, &body.person),
    )
    .await
    .map_err(AppError::from)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appointment {
    /// Default: the case's subject matter.
    #[serde(default)]
    subject: Option<String>,
    /// The date the mediator must be free (`YYYY-MM-DD`); default: today.
    #[serde(default)]
    date: Option<String>,
    /// Registry ids the mediator must have no conflict with; default: the case's participants.
    #[serde(default)]
    parties: Option<Vec<String>>,
    #[serde(default)]
    mediator: Option<String>,
    #[serde(default)]
    override_reason: Option<String>,
}

impl Appointment {
    /// From the case's own data: the engine's proposal, or `mediator` with a reason.
    pub fn chosen(mediator: Option<String>, override_reason: Option<String>) -> Self {
        Self {
            subject: None,
            date: None,
            parties: None,
            mediator,
            override_reason,
        }
    }
}

/// An appointment made: who, why, and what the engine had proposed.
pub struct Appointed {
    pub mediator: String,
    pub reason: String,
    pub overridden: bool,
    pub proposal: Option<Proposal>,
}

/// Appoints a mediator on case `case_id` of the user's organism: the engine's proposal (from
/// the case's subject matter and participants unless `body` says otherwise), or the clerk's
/// choice with a reason.
pub async fn appoint_on_case(
    state: &AppState,
    current: &CurrentUser,
    case_id: &CaseId,
    body: Appointment,
) -> Result<Appointed, AppError> {
    current.require(Permission::ManageMediators)?;
    let organism = current.user.organism_id.as_deref();
    let (_, details) = case_record::find(&state.db, organism, Scope::All, case_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let subject = body.subject.or(details.subject).ok_or_else(|| {
        AppError::BadRequest(
            "Indichi prima la materia della pratica: serve a proporre il mediatore.".to_owned(),
        )
    })?;
    let date = body
        .date
        .unwrap_or_else(|| backoffice::platform::rome_time::date(state.clock_now()));
    let parties = match body.parties {
        Some(parties) => parties,
        None => case_record::participants(&state.db, case_id)
            .await?
            .into_iter()
            .map(|participant| participant.person_id)
            .collect(),
    };
    let need = Need {
        subject: &subject,
        date: &date,
        parties: &parties,
    };
    let proposal = mediators::propose(&state.db, organism, &need)
        .await
        .map_err(AppError::from)?;
    let proposed_id = proposal.as_ref().map(|p| p.mediator.id.clone());
    if let Some(chosen) = body.mediator.as_deref().filter(|m| !m.is_empty()) {
        let registered = mediators::list(&state.db, organism).await?;
        if !registered.iter().any(|m| m.mediator.id == chosen) {
            return Err(AppError::BadRequest(
                "Dati non validi: mediatore sconosciuto o non attivo.".to_owned(),
            ));
        }
    }
    let (mediator, reason, overridden) = match (body.mediator.filter(|m| !m.is_empty()), &proposal)
    {
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
            ))
        }
    };
    mediators::appoint(
        &state.db,
        &current.actor(),
        state.clock_now(),
        case_id,
        (&mediator, &reason, overridden),
    )
    .await
    .map_err(AppError::from)?;
    Ok(Appointed {
        mediator,
        reason,
        overridden,
        proposal,
    })
}

pub async fn appoint(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(case): ApiPath<CaseId>,
    ApiJson(body): ApiJson<Appointment>,
) -> Result<Response, ApiError> {
    let appointed = appoint_on_case(&state, &current, &case, body).await?;
    let proposed = appointed
        .proposal
        .map(|p| json!({ "mediator": p.mediator.id, "reason": p.reason }));
    let body = json!({
        "mediator": appointed.mediator,
        "reason": appointed.reason,
        "overridden": appointed.overridden,
        "proposed": proposed,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
