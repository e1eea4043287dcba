//! The room WebSocket, `/ws/v1`: upgraded here, served by `signaling` (protocol in
//! `docs/protocol.md`).
//!
//! **Invariant:** an upgrade that carries a login session comes from a page of this service:
//! its `Origin` is the origin of `public_url` or of this node's own address. A browser always
//! sends `Origin` with a WebSocket, so a login upgrade without one is refused too. A personal
//! link proves itself with the token in `hello`, not with anything the browser adds by itself,
//! so an upgrade without `Origin` (a program) may carry one; a browser page elsewhere may not.

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::platform::access::Permission;
use signaling::connection::Staff;
use signaling::protocol::MAX_SDP_MESSAGE_BYTES;
use url::{Origin, Url};

use crate::http::auth::CurrentUser;
use crate::state::AppState;

/// The origins a browser page may open the room WebSocket from: those of the public address
/// and of this node's own address (`node_url`, or the address it listens on).
pub(crate) fn allowed_origins(public_url: &Url, node_url: &str) -> Vec<Origin> {
    let mut origins = vec![public_url.origin()];
    origins.extend(Url::parse(node_url).ok().map(|url| url.origin()));
    origins
}

/// Whether an upgrade may go ahead, from its `Origin` header and whether it carries a login.
fn origin_allowed(allowed: &[Origin], origin: Option<&str>, logged_in: bool) -> bool {
    match origin {
        Some(origin) => Url::parse(origin)
            .map(|url| allowed.contains(&url.origin()))
            .unwrap_or(false),
        None => !logged_in,
    }
}

/// `GET /ws/v1`: the room WebSocket (protocol in `docs/protocol.md`).
pub async fn room_socket(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    staff: Option<CurrentUser>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .map(|value| value.to_str().unwrap_or_default());
    if !origin_allowed(&state.socket_origins, origin, staff.is_some()) {
        let body = serde_json::json!({
            "error": "forbidden_origin",
            "message": "Connessione rifiutata: la stanza virtuale si apre soltanto dalle pagine \
                        di questo servizio.",
        });
        return (StatusCode::FORBIDDEN, Json(body)).into_response();
    }
    let hub = state.hub.clone();
    let stopping = state.stopping.clone();
    // A logged-in user may join a room of their organism where they are a member (the
    // mediator) without the personal link; the segreteria and administrators may also observe
    // such a room.
    let staff = staff.map(|current| Staff {
        may_observe: current.require(Permission::ManageRooms).is_ok(),
        user_id: current.user.id,
        username: current.user.username,
        display_name: current.user.display_name,
        organism_id: current.user.organism_id,
    });
    upgrade
        .max_message_size(MAX_SDP_MESSAGE_BYTES)
        .max_frame_size(MAX_SDP_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            signaling::connection::serve(socket, hub, Some(address.ip()), staff, stopping)
        })
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pages_of_the_service_open_a_login_socket() {
        let public = Url::parse("https://accordo.example.org").unwrap();
        let allowed = allowed_origins(&public, "http://10.0.0.7:8080");
        for (origin, logged_in, expected) in [
            (Some("https://accordo.example.org"), true, true),
            (Some("https://accordo.example.org:443"), true, true),
            (Some("http://10.0.0.7:8080"), true, true),
            (Some("http://accordo.example.org"), true, false),
            (Some("https://evil.example.org"), true, false),
            (Some("https://evil.example.org"), false, false),
            (Some("null"), false, false),
            (Some(""), true, false),
            (None, true, false),
            (None, false, true),
        ] {
            assert_eq!(
                origin_allowed(&allowed, origin, logged_in),
                expected,
                "{origin:?}, logged in: {logged_in}"
            );
        }
    }
}
