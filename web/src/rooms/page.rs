//! `GET /r/{token}`: the room page a personal link opens.
//!
//! When the link is good and the room open, the page starts with the lobby: whom the person
//! joins as, for which case, a camera and microphone check and the privacy notice; the
//! WebSocket opens only when they choose to enter. Otherwise the page connects at once and shows
//! the refusal the room WebSocket gives (forged, revoked or expired link, room not yet open): the
//! explanations live in one place, `signaling`.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use backoffice::rooms::access::{self, Need};

use crate::http::render::render;
use crate::state::AppState;

/// Who opens the room, as the lobby names them.
pub struct Joining {
    pub name: String,
    pub role: &'static str,
    pub case_reference: String,
}

#[derive(Template)]
#[template(path = "rooms/room.html")]
pub struct RoomPage {
    /// `None`: the page asks the WebSocket at once, which explains the refusal.
    pub joining: Option<Joining>,
}

/// How a room role is named in the interface.
pub fn room_role_label(role: rooms::Role) -> &'static str {
    match role {
        rooms::Role::Mediator => "Mediatore",
        rooms::Role::Party => "Parte",
        rooms::Role::Lawyer => "Avvocato",
        rooms::Role::Representative => "Rappresentante",
        rooms::Role::Expert => "CTU",
        rooms::Role::SegreteriaObserver => "Segreteria",
    }
}

/// The page; `Cache-Control: no-store` and `Referrer-Policy: no-referrer` (set for every page)
/// keep the token out of caches and of any other request. The only page allowed the camera,
/// the microphone and screen sharing.
pub async fn room_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let joining = joining(&state, &token).await;
    let mut response = render(&RoomPage { joining });
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response.headers_mut().insert(
        header::HeaderName::from_static("permissions-policy"),
        header::HeaderValue::from_static(crate::server::ROOM_PERMISSIONS_POLICY),
    );
    response.into_response()
}

/// Whom the link opens the room for, if the link works and the room is open now
/// (`backoffice::rooms::access`, the same check as the WebSocket's).
async fn joining(state: &AppState, token: &str) -> Option<Joining> {
    let granted = access::by_link(&state.db, token, state.clock.now(), Need::Enter)
        .await
        .ok()?;
    Some(Joining {
        name: granted.member.display_name.expose().clone(),
        role: room_role_label(granted.member.role),
        case_reference: granted.case_ref.as_str().to_owned(),
    })
}
