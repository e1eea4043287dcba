//! The JSON API the segreteria uses to open a case's online room and invite people (until the
//! full back office of issue #6 drives it from the case pages).
//!
//! Every change of a live room goes through `signaling::hub::Hub::office_command` (a new member
//! through `Hub::add_member`), so the room task stays the only writer of a room's state.

use std::num::NonZeroU8;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::access::Permission;
use backoffice::{accounts, cases, invites, room_store, StoreError};
use rooms::{Command, ParticipantId, RoomId, RoomSettings};
use rooms::{Role, Side};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use signaling::hub::HubError;
use signaling::protocol::WireId;

use crate::auth::{ApiUser, CurrentUser};
use crate::config::Config;
use crate::error::{ApiError, AppError};
use crate::state::AppState;

/// `Json<T>` whose rejection is a typed [`ApiError`] instead of axum's plain text.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(value)| ApiJson(value))
            .map_err(|rejection: JsonRejection| {
                ApiError(AppError::BadRequest(format!(
                    "Corpo della richiesta non valido: {}",
                    rejection.body_text()
                )))
            })
    }
}

/// `Path<T>` whose rejection is a typed [`ApiError`] (404: no such thing at that address).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|_| ApiError(AppError::NotFound))
    }
}

/// `Query<T>` whose rejection is a typed [`ApiError`] instead of axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                ApiError(AppError::BadRequest(format!(
                    "Parametri della richiesta non validi: {}",
                    rejection.body_text()
                )))
            })
    }
}

fn created(body: serde_json::Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn office(current: &CurrentUser) -> Result<(), ApiError> {
    current.require(Permission::ManageRooms).map_err(ApiError)
}

/// Checks that `room` is the room of a case of the user's organism (else 404).
async fn own_room(state: &AppState, current: &CurrentUser, room: RoomId) -> Result<(), ApiError> {
    let case = room_store::room_case(&state.db, room)
        .await?
        .ok_or(AppError::NotFound)?;
    if case.organism_id != current.user.organism_id {
        return Err(AppError::NotFound.into());
    }
    Ok(())
}

/// How a stored thing is named to the user.
fn italian(what: &str) -> &str {
    match what {
        "case" => "la pratica",
        "case title" => "l'oggetto della pratica",
        "case reference" => "il numero della pratica",
        "room" => "la stanza della pratica",
        "member link" => "il collegamento dell'utente alla stanza",
        "room member" => "il partecipante",
        other => other,
    }
}

fn store_error(error: StoreError) -> ApiError {
    ApiError(match error {
        StoreError::AlreadyExists(what) => {
            AppError::Conflict(format!("Esiste già {}.", italian(what)))
        }
        StoreError::Invalid(what) => {
            AppError::BadRequest(format!("Valore non valido: {}.", italian(what)))
        }
        StoreError::NotFound => AppError::NotFound,
        other => AppError::from(other),
    })
}

fn hub_error(error: HubError) -> ApiError {
    ApiError(match error {
        HubError::RoomNotFound => AppError::NotFound,
        HubError::Room(error) => {
            AppError::BadRequest(format!("Operazione rifiutata dalla stanza: {error}."))
        }
        other => AppError::Internal(other.to_string()),
    })
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
            cases::create_minimal(&state.db, &actor, now, organism, reference, &body.title).await
        }
        None => {
            let year = backoffice::rome_time::year(now);
            cases::register(&state.db, &actor, now, organism, year, &body.title).await
        }
    }
    .map_err(store_error)?;
    Ok(created(json!({
        "id": case.id,
        "reference": case.reference.as_str(),
        "title": case.title,
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRoom {
    #[serde(default)]
    auto_admit: bool,
}

/// The settings of a new room: lifetime and capacity from the configuration.
pub fn room_settings(config: &Config, auto_admit: bool) -> RoomSettings {
    RoomSettings {
        lifetime: Duration::from_secs(u64::from(config.room_lifetime_days) * 24 * 60 * 60),
        capacity: NonZeroU8::new(u8::try_from(config.room_capacity).unwrap_or(u8::MAX))
            .unwrap_or(NonZeroU8::MIN),
        auto_admit,
        hold_when_no_mediator: true,
    }
}

/// `POST /api/v1/cases/{case}/room`: opens the case's online room.
pub async fn create_room(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    Path(case_id): Path<String>,
    ApiJson(body): ApiJson<NewRoom>,
) -> Result<Response, ApiError> {
    office(&current)?;
    crate::cases_api::own_case(&state, &current, &case_id).await?;
    let settings = room_settings(&state.config, body.auto_admit);
    let now = state.clock_now();
    let room = room_store::create_room(&state.db, &current.actor(), now, &case_id, settings)
        .await
        .map_err(store_error)?;
    let expires_at = room.created_at.as_unix_millis() + settings.lifetime.as_millis() as u64;
    Ok(created(
        json!({ "room": WireId(room.id.get()), "expires_at": expires_at }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    role: String,
    #[serde(default)]
    side: Option<String>,
    display_name: String,
    #[serde(default)]
    email: Option<String>,
    /// A back-office user (typically the mediator) who may also join from their login.
    #[serde(default)]
    username: Option<String>,
}

/// `POST /api/v1/rooms/{room}/members`: invites a person; answers their personal link once.
pub async fn add_member(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(room): ApiPath<WireId>,
    ApiJson(body): ApiJson<NewMember>,
) -> Result<Response, ApiError> {
    office(&current)?;
    own_room(&state, &current, RoomId::new(room.0)).await?;
    let bad = |message: &str| ApiError(AppError::BadRequest(message.to_owned()));
    let role = Role::from_code(&body.role).ok_or_else(|| bad("Ruolo sconosciuto."))?;
    let user = match body.username.as_deref() {
        None => None,
        Some(username) => Some(
            accounts::find_by_username(&state.db, username)
                .await?
                .filter(|user| user.active && user.organism_id == current.user.organism_id)
                .ok_or_else(|| bad("Nessun utente attivo con questo nome utente."))?,
        ),
    };
    let side = match body.side.as_deref() {
        None => None,
        Some(name) => Some(Side::from_code(name).ok_or_else(|| bad("Parte sconosciuta."))?),
    };
    let room = RoomId::new(room.0);
    let display_name = body.display_name.trim().to_owned();
    let member = state
        .hub
        .add_member(room, current.actor(), role, side, display_name)
        .await
        .map_err(hub_error)?;
    if let Some(user) = user {
        room_store::link_user(
            &state.db,
            &current.actor(),
            state.clock_now(),
            room,
            member,
            &user.id,
        )
        .await
        .map_err(store_error)?;
    }
    let link = issue_link(&state, &current, room, member, body.email.as_deref()).await?;
    Ok(created(
        json!({ "member": WireId(member.get()), "link": link }),
    ))
}

async fn issue_link(
    state: &AppState,
    current: &CurrentUser,
    room: RoomId,
    member: ParticipantId,
    email: Option<&str>,
) -> Result<String, ApiError> {
    let token = invites::issue(
        &state.db,
        &current.actor(),
        state.clock_now(),
        room,
        member,
        email,
    )
    .await
    .map_err(store_error)?;
    let base = state.config.public_url.as_str().trim_end_matches('/');
    Ok(format!("{base}/r/{}", token.reveal()))
}

/// `POST /api/v1/rooms/{room}/members/{member}/invite`: a new personal link; the old one stops
/// working.
pub async fn reissue_invite(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath((room, member)): ApiPath<(WireId, WireId)>,
) -> Result<Response, ApiError> {
    office(&current)?;
    let room = RoomId::new(room.0);
    own_room(&state, &current, room).await?;
    let member = member.member();
    let link = issue_link(&state, &current, room, member, None).await?;
    Ok(created(
        json!({ "member": WireId(member.get()), "link": link }),
    ))
}

/// `POST /api/v1/rooms/{room}/members/{member}/revoke`: the link stops working at once and a
/// connected member is disconnected.
pub async fn revoke_invite(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath((room, member)): ApiPath<(WireId, WireId)>,
) -> Result<Response, ApiError> {
    office(&current)?;
    let room = RoomId::new(room.0);
    own_room(&state, &current, room).await?;
    let member = member.member();
    state
        .hub
        .office_command(room, current.actor(), Command::RevokeInvite { member })
        .await
        .map_err(hub_error)?;
    invites::revoke(&state.db, &current.actor(), state.clock_now(), room, member)
        .await
        .map_err(store_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
