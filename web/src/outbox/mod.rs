//! Outgoing mail: the worker that delivers the outbox, its JSON API and its page (segreteria
//! and administrators).
//!
//! - `GET /api/v1/outbox?case=ID`: the newest mails of the user's organism (of one case with
//!   `case`), newest first: `{ "mails": [ { "id", "kind", "kind_label", "to_name", "to_email",
//!   "subject", "state", "state_label", "attempts", "last_error", "next_attempt_at",
//!   "sent_at", "created_at", "case", "meeting" } ] }` (times in Unix ms).
//! - `POST /api/v1/outbox/{id}/retry`: a failed mail goes back in the queue, due now; 200
//!   `{ "id", "state", "state_label" }`; 404 when the organism has no such mail, 409 when it
//!   has not failed.
//! - `GET /posta?case=ID`: the same list as a page ("Posta in uscita"), with a "Riprova"
//!   button on failed mails that posts to `POST /posta/{id}/riprova`.

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use backoffice::mail::outbox::{self, DeliveryState, Mailer, OutboxEntry};
use backoffice::mediation::cases::CaseId;
use backoffice::platform::access::Permission;
use backoffice::platform::rome_time;
use backoffice::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::auth::{ApiUser, CurrentUser};
use crate::http::csrf::CsrfToken;
use crate::http::error::{ApiError, AppError};
use crate::http::extract::{ApiPath, ApiQuery};
use crate::http::render::{render, Nav};
use crate::http::routes::Routes;
use crate::state::AppState;

pub fn routes() -> Routes {
    Routes::new()
        .get("/api/v1/outbox", list)
        .post("/api/v1/outbox/{id}/retry", retry)
        .get("/posta", page)
        .post("/posta/{id}/riprova", page_retry)
}

/// The mails one round of the worker sends at most.
const WORKER_BATCH: u32 = 20;
/// The mails a list shows.
const LIST_LIMIT: u32 = 200;

/// Starts the worker: every `outbox_poll_ms` it sends the mail that is due (at the time of
/// [`AppState::clock_now`]). When the node stops it finishes the round it is in, then ends.
pub fn spawn_worker(state: AppState, mailer: Mailer) -> tokio::task::JoinHandle<()> {
    let poll = Duration::from_millis(state.config.outbox_poll_ms);
    let mut stopping = state.stopping.clone();
    tokio::spawn(async move {
        loop {
            if let Err(error) = outbox::deliver_due(
                &state.db,
                &mailer,
                &state.link_key,
                state.clock_now(),
                WORKER_BATCH,
            )
            .await
            {
                tracing::error!(%error, "outbox delivery round failed");
            }
            tokio::select! {
                _ = stopping.wait_for(|stopping| *stopping) => break,
                () = tokio::time::sleep(poll) => {}
            }
        }
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    #[serde(default)]
    case: Option<String>,
}

fn entry_json(entry: &OutboxEntry) -> Value {
    json!({
        "id": entry.id,
        "kind": entry.kind.code(),
        "kind_label": entry.kind.label_it(),
        "to_name": entry.to_name,
        "to_email": entry.to_email,
        "subject": entry.subject,
        "state": entry.state.code(),
        "state_label": entry.state.label_it(),
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        "next_attempt_at": entry.next_attempt_at.0,
        "sent_at": entry.sent_at.map(|at| at.0),
        "created_at": entry.created_at.0,
        "case": entry.case_id,
        "meeting": entry.meeting_id,
    })
}

async fn entries(
    state: &AppState,
    current: &CurrentUser,
    case: Option<&str>,
) -> Result<Vec<OutboxEntry>, StoreError> {
    outbox::list(
        &state.db,
        current.user.organism_id.as_deref(),
        case.filter(|case| !case.is_empty())
            .map(CaseId::new)
            .as_ref(),
        LIST_LIMIT,
    )
    .await
}

/// `GET /api/v1/outbox`.
pub async fn list(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiQuery(query): ApiQuery<OutboxQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require(Permission::ViewOutbox)?;
    let mails = entries(&state, &current, query.case.as_deref()).await?;
    let mails: Vec<Value> = mails.iter().map(entry_json).collect();
    Ok(Json(json!({ "mails": mails })))
}

/// Sends a failed mail again, for the API and the page alike.
async fn requeue(state: &AppState, current: &CurrentUser, id: &str) -> Result<(), AppError> {
    current.require(Permission::ViewOutbox)?;
    outbox::retry(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        id,
    )
    .await
    .map_err(|error| match error {
        StoreError::NotFound => AppError::NotFound,
        StoreError::Invalid(_) => AppError::Conflict(
            "Si può inviare di nuovo solo un messaggio non consegnato; questo è già in coda, \
             consegnato o annullato."
                .to_owned(),
        ),
        other => other.into(),
    })
}

/// `POST /api/v1/outbox/{id}/retry`.
pub async fn retry(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    requeue(&state, &current, &id).await?;
    let pending = DeliveryState::Pending;
    Ok(Json(json!({
        "id": id,
        "state": pending.code(),
        "state_label": pending.label_it(),
    })))
}

struct MailRow {
    id: String,
    to_name: String,
    to_email: String,
    subject: String,
    kind: &'static str,
    state: &'static str,
    state_code: &'static str,
    attempts: u32,
    last_error: String,
    created_at: String,
    /// When it was sent, or when it will be tried next.
    when: String,
    may_retry: bool,
}

#[derive(Template)]
#[template(path = "outbox/outbox.html")]
struct OutboxPage {
    nav: Nav,
    rows: Vec<MailRow>,
    filtered: bool,
}

/// `GET /posta`: "Posta in uscita".
pub async fn page(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Query(query): Query<OutboxQuery>,
) -> Result<Response, AppError> {
    current.require(Permission::ViewOutbox)?;
    let mails = entries(&state, &current, query.case.as_deref()).await?;
    let rows = mails
        .into_iter()
        .map(|mail| MailRow {
            to_name: mail.to_name,
            to_email: mail.to_email,
            subject: mail.subject,
            kind: mail.kind.label_it(),
            state: mail.state.label_it(),
            state_code: mail.state.code(),
            attempts: mail.attempts,
            last_error: mail.last_error.unwrap_or_default(),
            created_at: rome_time::format(mail.created_at),
            when: match (mail.state, mail.sent_at) {
                (_, Some(sent_at)) => format!("inviato il {}", rome_time::format(sent_at)),
                (DeliveryState::Pending, None) => format!(
                    "prossimo tentativo il {}",
                    rome_time::format(mail.next_attempt_at)
                ),
                _ => String::new(),
            },
            may_retry: mail.state == DeliveryState::Failed,
            id: mail.id,
        })
        .collect();
    Ok(render(&OutboxPage {
        nav: Nav::new(&current, &csrf),
        rows,
        filtered: query.case.is_some_and(|case| !case.is_empty()),
    }))
}

/// `POST /posta/{id}/riprova`: the page's "Riprova" button; back to the page.
pub async fn page_retry(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    requeue(&state, &current, &id).await?;
    Ok(Redirect::to("/posta").into_response())
}
