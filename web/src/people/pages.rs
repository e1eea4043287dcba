//! The people registry as a page: search by name, codice fiscale or partita IVA, register a
//! person (with the duplicate check), merge two records of the same person.
//!
//! - `GET /anagrafica?q=TEXT`, `POST /anagrafica` (a person), `POST /anagrafica/unisci`
//!   (`from`, `into`).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use backoffice::people::{self, Kind, NewPerson, PersonError};
use backoffice::platform::access::Permission;
use serde::Deserialize;

use crate::http::auth::CurrentUser;
use crate::http::csrf::CsrfToken;
use crate::http::error::capitalised;
use crate::http::error::AppError;
use crate::http::render::{render, Nav, PageForm};
use crate::state::AppState;

/// Results shown for one search.
const SEARCH_ROWS: i64 = 100;

struct PersonRow {
    id: String,
    display_name: String,
    identifier: String,
    birth_date: String,
    merged: bool,
}

#[derive(Template)]
#[template(path = "people/people.html")]
struct PeoplePage {
    nav: Nav,
    query: String,
    people: Vec<PersonRow>,
    draft: PersonForm,
    candidates: Vec<(String, String)>,
    error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PeopleQuery {
    #[serde(default)]
    q: String,
}

/// The person form, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct PersonForm {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub family_name: String,
    #[serde(default)]
    pub company_name: String,
    #[serde(default)]
    pub fiscal_code: String,
    #[serde(default)]
    pub vat_number: String,
    #[serde(default)]
    pub birth_date: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub pec: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub confirm_not_duplicate: Option<String>,
}

fn text(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|value| !value.is_empty())
}

impl PersonForm {
    /// Registers the person typed in (unless someone may be the same, and the clerk did not
    /// confirm); the page forms of the registry and of a case's participants share it.
    pub async fn register(
        &self,
        state: &AppState,
        current: &CurrentUser,
    ) -> Result<people::Person, PersonError> {
        let new = NewPerson {
            kind: Kind::parse(&self.kind),
            given_name: text(&self.given_name),
            family_name: text(&self.family_name),
            company_name: text(&self.company_name),
            fiscal_code: text(&self.fiscal_code),
            vat_number: text(&self.vat_number),
            birth_date: text(&self.birth_date),
            email: text(&self.email),
            pec: text(&self.pec),
            phone: text(&self.phone),
            address: text(&self.address),
        };
        people::create(
            &state.db,
            &current.actor(),
            state.clock_now(),
            current.user.organism_id.as_deref(),
            &new,
            self.confirm_not_duplicate.is_some(),
        )
        .await
    }
}

async fn page(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    query: &str,
    (draft, candidates, error): (PersonForm, Vec<(String, String)>, Option<String>),
) -> Result<Response, AppError> {
    current.require(Permission::ManagePeople)?;
    let people = if query.trim().chars().count() >= 2 {
        people::search(
            &state.db,
            current.user.organism_id.as_deref(),
            query,
            SEARCH_ROWS,
        )
        .await?
        .into_iter()
        .map(|person| PersonRow {
            identifier: person
                .fiscal_code
                .clone()
                .or(person.vat_number.clone())
                .unwrap_or_default(),
            birth_date: person.birth_date.clone().unwrap_or_default(),
            merged: person.merged_into.is_some(),
            id: person.id,
            display_name: person.display_name,
        })
        .collect()
    } else {
        Vec::new()
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = PeoplePage {
        nav: Nav::new(current, csrf),
        query: query.to_owned(),
        people,
        draft,
        candidates,
        error,
    };
    Ok((status, render(&page)).into_response())
}

/// `GET /anagrafica`.
pub async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Query(query): Query<PeopleQuery>,
) -> Result<Response, AppError> {
    page(&state, &current, &csrf, &query.q, Default::default()).await
}

/// `POST /anagrafica`: registers a person unless someone may be the same (then the page lists
/// the candidates and asks for confirmation).
pub async fn add(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    PageForm(form): PageForm<PersonForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManagePeople)?;
    let created = form.register(&state, &current).await;
    match created {
        Ok(person) => {
            let query = person
                .fiscal_code
                .or(person.vat_number)
                .unwrap_or(person.display_name);
            let query: String = url::form_urlencoded::byte_serialize(query.as_bytes()).collect();
            Ok(Redirect::to(&format!("/anagrafica?q={query}")).into_response())
        }
        Err(PersonError::Duplicates(candidates)) => {
            let candidates = candidates
                .into_iter()
                .map(|candidate| (candidate.person.id, candidate.person.display_name))
                .collect();
            let message = "Nell'anagrafica c'è già chi potrebbe essere questa persona: se è \
                           un'altra, lo confermi e la registri."
                .to_owned();
            page(
                &state,
                &current,
                &csrf,
                "",
                (form, candidates, Some(message)),
            )
            .await
        }
        Err(PersonError::Store(error)) => Err(error.into()),
        Err(other) => {
            let message = capitalised(&other.to_string());
            page(
                &state,
                &current,
                &csrf,
                "",
                (form, Vec::new(), Some(message)),
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct MergeForm {
    from: String,
    into: String,
    #[serde(default)]
    q: String,
}

/// `POST /anagrafica/unisci`: record `from` continues as `into` (both kept; cases follow).
pub async fn merge(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    PageForm(form): PageForm<MergeForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManagePeople)?;
    let merged = crate::people::api::merge_people(&state, &current, (&form.from, &form.into)).await;
    let query: String = url::form_urlencoded::byte_serialize(form.q.as_bytes()).collect();
    match merged {
        Ok(_) => Ok(Redirect::to(&format!("/anagrafica?q={query}")).into_response()),
        Err(PersonError::NotFound) => Err(AppError::NotFound),
        Err(PersonError::Store(error)) => Err(error.into()),
        Err(other) => {
            let message = capitalised(&other.to_string());
            page(
                &state,
                &current,
                &csrf,
                &form.q,
                (PersonForm::default(), Vec::new(), Some(message)),
            )
            .await
        }
    }
}
