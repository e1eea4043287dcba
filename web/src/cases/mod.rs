//! Cases: the register and the case page, the full record (details, participants, accounts,
//! history), the case file (documents), and meetings scheduled from the case (online or in a
//! meeting room), moved and cancelled.

pub(crate) mod api;
mod documents;
pub(crate) mod meetings;
mod pages;
pub(crate) mod scope;

use crate::http::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/pratiche", pages::list)
        .post("/pratiche", pages::create)
        .get("/pratiche/{case}", pages::show)
        .post("/pratiche/{case}/dati", pages::update_details)
        .post("/pratiche/{case}/partecipanti", pages::add_participant)
        .post(
            "/pratiche/{case}/partecipanti/{participant}/rimuovi",
            pages::remove_participant,
        )
        .post("/pratiche/{case}/mediatore", pages::appoint)
        .post("/pratiche/{case}/incontri", pages::schedule)
        .post("/pratiche/{case}/movimenti", pages::add_entry)
        .upload(
            "/pratiche/{case}/documenti",
            pages::add_document,
            documents::FORM_BODY_LIMIT,
        )
        .get(
            "/pratiche/{case}/documenti/{document}",
            pages::download_document,
        )
        .post("/incontri/{meeting}/sposta", pages::reschedule)
        .post("/incontri/{meeting}/annulla", pages::cancel)
        .get("/api/v1/cases", api::list)
        .post("/api/v1/cases", api::create_case)
        .get("/api/v1/cases/{case}", api::show)
        .put("/api/v1/cases/{case}", api::update)
        .post("/api/v1/cases/{case}/participants", api::add_participant)
        .delete(
            "/api/v1/cases/{case}/participants/{participant}",
            api::remove_participant,
        )
        .post("/api/v1/cases/{case}/ledger", api::add_entry)
        .get("/api/v1/cases/{case}/history", api::history)
        .post(
            "/api/v1/cases/{case}/online-meetings",
            meetings::schedule_online,
        )
        .post(
            "/api/v1/cases/{case}/meetings",
            meetings::schedule_in_person,
        )
        .post(
            "/api/v1/meetings/{meeting}/reschedule",
            meetings::reschedule,
        )
        .post("/api/v1/meetings/{meeting}/cancel", meetings::cancel)
        .upload(
            "/api/v1/cases/{case}/documents",
            documents::add,
            documents::UPLOAD_BODY_LIMIT,
        )
}
