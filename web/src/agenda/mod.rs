//! The agenda by day, week and month; the offices (sedi) and their meeting rooms.

pub(crate) mod api;
mod pages;

use crate::http::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/agenda", pages::agenda)
        .get("/sedi", pages::places)
        .post("/sedi", pages::add_place)
        .post("/api/v1/places", api::add_place)
        .get("/api/v1/meetings", api::meetings)
}
