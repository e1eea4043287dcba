//! The people registry over JSON (segreteria and administrators).
//!
//! - `GET /api/v1/people/duplicates?fiscal_code=&vat_number=&given_name=&family_name=&birth_date=`:
//!   who may be the person being typed (any field may be missing): `{ "candidates": [ { "person",
//!   "reason" } ] }`, reason `same_fiscal_code` (omocodia variants included), `same_vat_number`
//!   or `same_name_and_birth_date`.
//! - `POST /api/v1/people`: adds a person; 201 with the person; 400 with the reason in Italian
//!   (a wrong check character, a birth date that does not match the codice fiscale…); 409
//!   `possible_duplicates` with the candidates, unless `confirm_not_duplicate` is true.
//! - `GET /api/v1/people?q=&limit=`: the registry of the user's body, by name, those whose
//!   name, company name, codice fiscale or partita IVA contains `q` (all without it); at most
//!   `limit` (50 by default, 200 at most): `{ "people": [...], "more" }`.
//! - `GET /api/v1/people/{id}`: the person (with `merged_into` when merged).
//! - `POST /api/v1/people/{id}/merge` `{ "into" }`: the record `id` continues as `into` (kept,
//!   pointing at it); 200 with the continuing person; 409 when one of them was merged already.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use backoffice::people::{self, Candidate, Kind, NewPerson, Person, PersonError};
use backoffice::platform::access::Permission;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::auth::{ApiUser, CurrentUser};
use crate::http::error::{ApiError, AppError};
use crate::http::extract::{first, listing_limit, ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonFields {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    family_name: Option<String>,
    #[serde(default)]
    company_name: Option<String>,
    #[serde(default)]
    fiscal_code: Option<String>,
    #[serde(default)]
    vat_number: Option<String>,
    #[serde(default)]
    birth_date: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    pec: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    confirm_not_duplicate: bool,
}

impl PersonFields {
    fn person(self) -> Result<(NewPerson, bool), ApiError> {
        let kind = match self.kind.as_deref() {
            None => None,
            Some(code) => Some(Kind::parse(code).ok_or_else(|| {
                ApiError(AppError::BadRequest(
                    "Tipo di persona sconosciuto.".to_owned(),
                ))
            })?),
        };
        let person = NewPerson {
            kind,
            given_name: self.given_name,
            family_name: self.family_name,
            company_name: self.company_name,
            fiscal_code: self.fiscal_code,
            vat_number: self.vat_number,
            birth_date: self.birth_date,
            email: self.email,
            pec: self.pec,
            phone: self.phone,
            address: self.address,
        };
        Ok((person, self.confirm_not_duplicate))
    }
}

fn person_json(person: &Person) -> Value {
    json!({
        "id": person.id,
        "kind": person.kind.code(),
        "display_name": person.display_name,
        "fiscal_code": person.fiscal_code,
        "vat_number": person.vat_number,
        "birth_date": person.birth_date,
        "merged_into": person.merged_into,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /api/v1/people?q=&limit=`.
pub async fn list(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiQuery(query): ApiQuery<PeopleQuery>,
) -> Result<Json<Value>, ApiError> {
    current.require(Permission::ManagePeople)?;
    let limit = listing_limit(query.limit)?;
    let organism = current.user.organism_id.as_deref();
    let read = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let found = people::search(&state.db, organism, &query.q, read).await?;
    let (people, more) = first(found, limit);
    let people: Vec<Value> = people.iter().map(person_json).collect();
    Ok(Json(json!({ "people": people, "more": more })))
}

/// `GET /api/v1/people/{id}`.
pub async fn show(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManagePeople)?;
    let person = people::find(&state.db, current.user.organism_id.as_deref(), &id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Json(person_json(&person)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merge {
    into: String,
}

/// `POST /api/v1/people/{id}/merge`.
pub async fn merge(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Merge>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManagePeople)?;
    let continuing = merge_people(&state, &current, (&id, &body.into))
        .await
        .map_err(AppError::from)?;
    Ok(Json(person_json(&continuing)).into_response())
}

/// Merges person `from` into `into` in the user's organism (the page and the API share it;
/// both have checked [`Permission::ManagePeople`]).
pub async fn merge_people(
    state: &AppState,
    current: &CurrentUser,
    (from, into): (&str, &str),
) -> Result<Person, PersonError> {
    people::merge(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        (from, into),
    )
    .await
}

fn candidates_json(candidates: &[Candidate]) -> Vec<Value> {
    candidates
        .iter()
        .map(|candidate| {
            json!({ "person": person_json(&candidate.person), "reason": candidate.reason.code() })
        })
        .collect()
}

/// `GET /api/v1/people/duplicates`.
pub async fn duplicates(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiQuery(fields): ApiQuery<PersonFields>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManagePeople)?;
    let (probe, _) = fields.person()?;
    let candidates =
        people::duplicates(&state.db, current.user.organism_id.as_deref(), &probe).await?;
    Ok(Json(json!({ "candidates": candidates_json(&candidates) })).into_response())
}

/// `POST /api/v1/people`.
pub async fn create(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiJson(fields): ApiJson<PersonFields>,
) -> Result<Response, ApiError> {
    current.require(Permission::ManagePeople)?;
    let (new, confirmed) = fields.person()?;
    let created = people::create(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        &new,
        confirmed,
    )
    .await;
    match created {
        Ok(person) => Ok((StatusCode::CREATED, Json(person_json(&person))).into_response()),
        Err(PersonError::Duplicates(candidates)) => {
            let body = json!({
                "error": "possible_duplicates",
                "message": "Nel registro ci sono persone che potrebbero essere la stessa: \
                            controlli e, se è davvero un'altra persona, confermi.",
                "candidates": candidates_json(&candidates),
            });
            Ok((StatusCode::CONFLICT, Json(body)).into_response())
        }
        Err(other) => Err(AppError::from(other).into()),
    }
}
