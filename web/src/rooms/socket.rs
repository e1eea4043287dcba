//! The room WebSocket, `/ws/v1`: upgraded here, served by `signaling` (protocol in
//! `docs/protocol.md`).

use std::net::SocketAddr;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use backoffice::platform::access::Permission;
use signaling::connection::Staff;
use signaling::protocol::MAX_SDP_MESSAGE_BYTES;

use crate::http::auth::CurrentUser;
use crate::state::AppState;

/// `GET /ws/v1`: the room WebSocket (protocol in `docs/protocol.md`).
pub async fn room_socket(
    State(state): State<AppState>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    staff: Option<CurrentUser>,
    upgrade: WebSocketUpgrade,
) -> impl IntoResponse {
    let hub = state.hub.clone();
    let stopping = state.stopping.clone();
    // A logged-in user may join a room where they are a member (the mediator) without the
    // personal link; the segreteria and administrators may also observe any room.
    let staff = staff.map(|current| Staff {
        may_observe: current.require(Permission::ManageRooms).is_ok(),
        user_id: current.user.id,
        username: current.user.username,
        display_name: current.user.display_name,
    });
    upgrade
        .max_message_size(MAX_SDP_MESSAGE_BYTES)
        .max_frame_size(MAX_SDP_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            signaling::connection::serve(socket, hub, Some(address.ip()), staff, stopping)
        })
}
