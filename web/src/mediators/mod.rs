//! The mediators' register, the appointment of a mediator to a case, unavailability and
//! conflicts of interest, and each mediator's calendar feed.

pub(crate) mod api;
mod calendar;
mod pages;

use crate::http::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/mediatori", pages::list)
        .post("/mediatori", pages::add)
        .post(
            "/mediatori/{mediator}/indisponibilita",
            pages::unavailability,
        )
        .post("/mediatori/{mediator}/calendario", pages::calendar)
        .get("/api/v1/mediators", api::list)
        .post("/api/v1/mediators", api::add)
        .post(
            "/api/v1/mediators/{mediator}/unavailability",
            api::unavailability,
        )
        .post("/api/v1/mediators/{mediator}/conflicts", api::conflict)
        .post("/api/v1/mediators/{mediator}/calendar", calendar::issue)
        .get("/calendar/{token}", calendar::feed)
        .post("/api/v1/cases/{case}/appointment", api::appoint)
}
