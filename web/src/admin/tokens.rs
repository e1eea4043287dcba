//! API tokens of the body, for its administrator: the page `/admin/token` and its JSON twin
//! `/api/v1/api-tokens`, both through [`create`] and [`revoke`]. A token may be given only
//! permissions its creator has (through a token: only those of that token).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use backoffice::platform::access::Permission;
use backoffice::platform::api_tokens::{self, ApiToken, NewToken, TokenSecret};
use backoffice::platform::rome_time;
use backoffice::UnixMillis;
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::{ApiUser, CurrentUser};
use crate::http::csrf::CsrfToken;
use crate::http::error::{ApiError, AppError};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::render::{render, Nav, PageForm};
use crate::state::AppState;

/// Creates a token of the caller's body with `scopes` (permission codes).
async fn create(
    state: &AppState,
    current: &CurrentUser,
    name: &str,
    scopes: &[String],
    expires_at: Option<UnixMillis>,
) -> Result<(ApiToken, TokenSecret), AppError> {
    current.require(Permission::ManageUsers)?;
    let mut permissions = Vec::with_capacity(scopes.len());
    for code in scopes {
        let permission = Permission::parse(code)
            .ok_or_else(|| AppError::invalid(format_args!("permesso sconosciuto «{code}»")))?;
        if !current.allows(permission) {
            return Err(AppError::invalid(format_args!(
                "non può concedere a un token un permesso che lei non ha («{}»)",
                permission.label()
            )));
        }
        permissions.push(permission);
    }
    let new = NewToken {
        name,
        scopes: &permissions,
        expires_at,
    };
    let user = &current.user;
    Ok(api_tokens::create(&state.db, &current.actor(), state.clock_now(), user, new).await?)
}

/// Revokes token `id` of the caller's body.
async fn revoke(state: &AppState, current: &CurrentUser, id: &str) -> Result<(), AppError> {
    current.require(Permission::ManageUsers)?;
    let organism = current.user.organism_id.as_deref();
    let actor = current.actor();
    Ok(api_tokens::revoke(&state.db, &actor, state.clock_now(), organism, id).await?)
}

fn token_json(token: &ApiToken) -> serde_json::Value {
    json!({
        "id": token.id,
        "name": token.name,
        "created_by": token.created_by,
        "scopes": token.scopes.iter().map(|scope| scope.code()).collect::<Vec<_>>(),
        "created_at": token.created_at.0,
        "expires_at": token.expires_at.map(|at| at.0),
        "revoked_at": token.revoked_at.map(|at| at.0),
    })
}

/// `GET /api/v1/api-tokens`: the body's tokens, newest first (never their secrets).
pub async fn api_list(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    current.require(Permission::ManageUsers)?;
    let tokens = api_tokens::list(&state.db, current.user.organism_id.as_deref()).await?;
    let tokens: Vec<_> = tokens.iter().map(token_json).collect();
    Ok(Json(json!({ "tokens": tokens })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    expires_at: Option<i64>,
}

/// `POST /api/v1/api-tokens`: 201 with the token and, once, its secret (`token`).
pub async fn api_create(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiJson(body): ApiJson<NewTokenBody>,
) -> Result<Response, ApiError> {
    let expires_at = body.expires_at.map(UnixMillis);
    let (token, secret) = create(&state, &current, &body.name, &body.scopes, expires_at).await?;
    let mut answer = token_json(&token);
    answer["token"] = json!(secret.reveal());
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `POST /api/v1/api-tokens/{token}/revoke`: 204.
pub async fn api_revoke(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    revoke(&state, &current, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

struct TokenRow {
    id: String,
    name: String,
    created_by: String,
    scopes: Vec<&'static str>,
    created_at: String,
    expires_at: String,
    state: &'static str,
    usable: bool,
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensPage {
    nav: Nav,
    tokens: Vec<TokenRow>,
    /// `(code, label)` of each permission the administrator may give.
    scopes: Vec<(&'static str, &'static str)>,
    /// The name and secret of the token just created, shown once.
    created: Option<(String, String)>,
    error: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    created: Option<(String, String)>,
    error: Option<String>,
) -> Result<TokensPage, AppError> {
    let now = state.clock_now();
    let tokens = api_tokens::list(&state.db, current.user.organism_id.as_deref())
        .await?
        .into_iter()
        .map(|token| TokenRow {
            state: if token.revoked_at.is_some() {
                "Revocato"
            } else if token.is_usable(now) {
                "Attivo"
            } else {
                "Scaduto"
            },
            usable: token.is_usable(now),
            scopes: token.scopes.iter().map(|scope| scope.label()).collect(),
            created_at: rome_time::format(token.created_at),
            expires_at: token
                .expires_at
                .map_or_else(|| "Nessuna".to_owned(), rome_time::format),
            id: token.id,
            name: token.name,
            created_by: token.created_by,
        })
        .collect();
    Ok(TokensPage {
        nav: Nav::new(current, csrf),
        tokens,
        scopes: Permission::ALL
            .into_iter()
            .filter(|permission| current.allows(*permission))
            .map(|permission| (permission.code(), permission.label()))
            .collect(),
        created,
        error,
    })
}

/// `GET /admin/token`.
pub async fn page(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageUsers)?;
    Ok(render(
        &tokens_page(&state, &current, &csrf, None, None).await?,
    ))
}

/// `POST /admin/token`: the fields `name`, `expires_on` (a date, optional) and one `scope` per
/// permission ticked. Shows the secret once.
pub async fn page_create(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    PageForm(fields): PageForm<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageUsers)?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.trim())
            .unwrap_or_default()
    };
    let scopes: Vec<String> = fields
        .iter()
        .filter(|(field, _)| field == "scope")
        .map(|(_, code)| code.clone())
        .collect();
    let expires_at = match field("expires_on") {
        "" => Ok(None),
        // Valid to the end of the day chosen, Italian time.
        date => rome_time::at_local(date, 24 * 60 - 1)
            .map(Some)
            .ok_or_else(|| AppError::BadRequest("La data di scadenza non è valida.".to_owned())),
    };
    let created = match expires_at {
        Ok(expires_at) => create(&state, &current, field("name"), &scopes, expires_at).await,
        Err(error) => Err(error),
    };
    let (created, error) = match created {
        Ok((token, secret)) => (Some((token.name, secret.reveal().to_owned())), None),
        Err(error) => match error.for_the_form() {
            Some(message) => (None, Some(message)),
            None => return Err(error),
        },
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = tokens_page(&state, &current, &csrf, created, error).await?;
    Ok((status, render(&page)).into_response())
}

/// `POST /admin/token/{token}/revoca`.
pub async fn page_revoke(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    revoke(&state, &current, &id).await?;
    Ok(Redirect::to("/admin/token").into_response())
}
