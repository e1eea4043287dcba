//! The people registry: search, register with the duplicate check, merge.

pub(crate) mod api;
pub(crate) mod pages;

use crate::http::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/anagrafica", pages::list)
        .post("/anagrafica", pages::add)
        .post("/anagrafica/unisci", pages::merge)
        .get("/api/v1/people", api::list)
        .post("/api/v1/people", api::create)
        .get("/api/v1/people/duplicates", api::duplicates)
        .get("/api/v1/people/{person}", api::show)
        .post("/api/v1/people/{person}/merge", api::merge)
}
