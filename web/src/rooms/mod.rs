//! Online rooms: opening a case's room and inviting people (JSON API), the page a personal
//! link opens, the room WebSocket (served by `signaling`), and the files shared in a room.

pub(crate) mod api;
pub(crate) mod files;
mod page;
pub(crate) mod socket;

use crate::http::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .post("/api/v1/cases/{case}/room", api::create_room)
        .post("/api/v1/rooms/{room}/members", api::add_member)
        .post(
            "/api/v1/rooms/{room}/members/{member}/invite",
            api::reissue_invite,
        )
        .post(
            "/api/v1/rooms/{room}/members/{member}/revoke",
            api::revoke_invite,
        )
        .upload(
            "/api/v1/room-files",
            files::upload,
            files::UPLOAD_BODY_LIMIT,
        )
        .get("/api/v1/room-files/{file}", files::download)
        .get("/api/v1/room-case-documents", files::case_documents)
        .post(
            "/api/v1/room-case-documents/{document}/copy",
            files::copy_case_document,
        )
        .get("/ws/v1", socket::room_socket)
        .get("/r/{token}", page::room_page)
}
