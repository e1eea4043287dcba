//! The JSON API the segreteria uses to open a case's online room and invite people (until the
//! full back office of issue #6 drives it from the case pages).
//!
//! Every change of a live room goes through `signaling::hub::Hub::office_command` (a new member
//! through `Hub::add_member`), so the room task stays the only writer of a room's state.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::mediation::cases::CaseId;
use backoffice::platform::access::Permission;
use backoffice::platform::accounts;
use backoffice::platform::names;
use backoffice::rooms::invites;
use backoffice::rooms::room_store;
use rooms::{Command, ParticipantId, RoomId};
use rooms::{Role, Side};
use serde::Deserialize;
use serde_json::json;
use signaling::protocol::WireId;

use crate::http::auth::{ApiUser, CurrentUser};
use crate::http::error::{capitalised, ApiError, AppError};
use crate::http::extract::{ApiJson, ApiPath};
use crate::state::AppState;

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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRoom {
    #[serde(default)]
    auto_admit: bool,
}

/// `POST /api/v1/cases/{case}/room`: opens the case's online room.
pub async fn create_room(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(case_id): ApiPath<CaseId>,
    ApiJson(body): ApiJson<NewRoom>,
) -> Result<Response, ApiError> {
    office(&current)?;
    crate::cases::scope::own_case(&state, &current, &case_id).await?;
    let settings = state.config.room_settings(body.auto_admit);
    let now = state.clock_now();
    let room = room_store::create_room(&state.db, &current.actor(), now, &case_id, settings)
        .await
        .map_err(AppError::from)?;
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
    if !names::is_one_line(&display_name) {
        return Err(bad(&capitalised(names::NOT_ONE_LINE)));
    }
    let member = state
        .hub
        .add_member(room, current.actor(), role, side, display_name)
        .await
        .map_err(AppError::from)?;
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
        .map_err(AppError::from)?;
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
    .map_err(AppError::from)?;
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
        .map_err(AppError::from)?;
    // The room's save revoked the link too, in the same transaction.
    Ok(StatusCode::NO_CONTENT.into_response())
}
