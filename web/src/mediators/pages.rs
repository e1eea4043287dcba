//! The register of mediators as a page: who they are, what they are qualified for, their
//! login and address for invitations, and the periods they cannot take meetings.
//!
//! - `GET /mediatori`, `POST /mediatori` (the subjects are repeated `subjects` fields).
//! - `POST /mediatori/{mediator}/indisponibilita` `from`, `to`.
//! - `POST /mediatori/{mediator}/calendario`: a new calendar feed URL, shown once.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use backoffice::mediation::mediators::{self, MediatorError};
use backoffice::platform::access::Permission;
use serde::Deserialize;

use crate::http::auth::CurrentUser;
use crate::http::csrf::CsrfToken;
use crate::http::error::AppError;
use crate::http::render::{render, Nav, PageForm};
use crate::mediators::api::{register, NewMediator};
use crate::state::AppState;

struct MediatorRow {
    id: String,
    display_name: String,
    subjects: String,
    email: String,
    has_login: bool,
}

#[derive(Template)]
#[template(path = "mediators/mediators.html")]
struct MediatorsPage {
    nav: Nav,
    mediators: Vec<MediatorRow>,
    subjects: Vec<(&'static str, &'static str)>,
    error: Option<String>,
    /// `(mediator, url)` of a calendar feed just issued.
    feed: Option<(String, String)>,
}

async fn page(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    (error, feed): (Option<String>, Option<(String, String)>),
) -> Result<Response, AppError> {
    current.require(Permission::ManageMediators)?;
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mediators = mediators::list(&state.db, current.user.organism_id.as_deref())
        .await?
        .into_iter()
        .map(|registered| MediatorRow {
            subjects: registered
                .mediator
                .subjects
                .iter()
                .filter_map(|code| {
                    mediators::SUBJECTS
                        .iter()
                        .find(|(known, _)| known == code)
                        .map(|(_, label)| *label)
                })
                .collect::<Vec<_>>()
                .join(", "),
            id: registered.mediator.id,
            display_name: registered.mediator.display_name,
            email: registered.email.unwrap_or_else(|| "—".to_owned()),
            has_login: registered.user_id.is_some(),
        })
        .collect();
    let page = MediatorsPage {
        nav: Nav::new(current, csrf),
        mediators,
        subjects: mediators::SUBJECTS.to_vec(),
        error,
        feed,
    };
    Ok((status, render(&page)).into_response())
}

/// `GET /mediatori`.
pub async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, AppError> {
    page(&state, &current, &csrf, (None, None)).await
}

/// `POST /mediatori`: a form with repeated `subjects` fields, read by hand (the standard form
/// extractor takes one value per name).
pub async fn add(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    body: Bytes,
) -> Result<Response, AppError> {
    let mut new = NewMediator {
        display_name: String::new(),
        subjects: Vec::new(),
        email: None,
        username: None,
    };
    for (name, value) in url::form_urlencoded::parse(&body) {
        match name.as_ref() {
            "display_name" => new.display_name = value.into_owned(),
            "subjects" => new.subjects.push(value.into_owned()),
            "email" => new.email = Some(value.into_owned()).filter(|v| !v.trim().is_empty()),
            "username" => new.username = Some(value.into_owned()),
            _ => {}
        }
    }
    match register(&state, &current, &new).await {
        Ok(_) => Ok(Redirect::to("/mediatori").into_response()),
        Err(AppError::BadRequest(message)) => {
            page(&state, &current, &csrf, (Some(message), None)).await
        }
        Err(other) => Err(other),
    }
}

#[derive(Debug, Deserialize)]
pub struct PeriodForm {
    from: String,
    to: String,
}

/// `POST /mediatori/{mediator}/indisponibilita`.
pub async fn unavailability(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    PageForm(form): PageForm<PeriodForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageMediators)?;
    let added = mediators::add_unavailability(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        (&id, &form.from, &form.to),
    )
    .await;
    match added {
        Ok(()) => Ok(Redirect::to("/mediatori").into_response()),
        Err(MediatorError::Invalid(reason)) => {
            let message = crate::http::error::capitalised(reason);
            page(&state, &current, &csrf, (Some(message), None)).await
        }
        Err(MediatorError::NotFound) => Err(AppError::NotFound),
        Err(MediatorError::Store(error)) => Err(error.into()),
    }
}

/// `POST /mediatori/{mediator}/calendario`: the mediator's calendar feed (a previous one stops
/// working); the address is shown once, to be given to the mediator.
pub async fn calendar(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageAgenda)?;
    let organism = current.user.organism_id.as_deref();
    let name = mediators::list(&state.db, organism)
        .await?
        .into_iter()
        .find(|registered| registered.mediator.id == id)
        .map(|registered| registered.mediator.display_name)
        .ok_or(AppError::NotFound)?;
    let token = backoffice::mediation::agenda::issue_feed(
        &state.db,
        &current.actor(),
        state.clock_now(),
        organism,
        &id,
    )
    .await
    .map_err(|error| AppError::Internal(error.to_string()))?;
    let base = state.config.public_url.as_str().trim_end_matches('/');
    let url = format!("{base}/calendar/{}", token.reveal());
    page(&state, &current, &csrf, (None, Some((name, url)))).await
}
