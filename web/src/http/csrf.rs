//! Cross-site request forgery protection, on every state-changing request.
//!
//! Signed double submit: the browser holds a random value in an HttpOnly, SameSite=Strict
//! cookie; forms carry `HMAC(server secret, cookie value, session token)` in a hidden field (or
//! the API in the `X-CSRF-Token` header); without a session (the login form) the HMAC covers
//! the cookie value alone. A forged cross-site request has neither the cookie (SameSite) nor
//! a way to compute the signature (the secret never leaves the server).
//!
//! The token is bound to the session, and the cookie gets a new value whenever a response
//! sets or ends the session (login, logout): a token from before a login or a logout is
//! worth nothing after it.
//!
//! **Invariant:** the [`protect`] middleware wraps the whole router; no POST, PUT, PATCH or
//! DELETE reaches a handler without a valid token, except an API call that carries a bearer
//! token instead of a session ([`credential`], the only exemption).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use backoffice::platform::sessions::SessionToken;
use rand::RngCore;

use crate::http::auth::{self, session_token, SESSION_COOKIE};
use crate::http::cookies::{self, CookieName};
use crate::http::error::{ApiError, AppError};
use crate::http::extract::read_body;
use crate::state::AppState;

const COOKIE: CookieName = CookieName::new("accordo_csrf");
/// The hidden form field that carries the token.
pub const FIELD: &str = "csrf_token";
const HEADER: &str = "x-csrf-token";
/// The largest form body read to find the token.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The token to put in the forms of this response.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// Middleware: answers an API call without any credential with 401, checks the token on
/// state-changing requests and hands every request the token for its forms, setting the cookie
/// when the browser has none yet.
///
/// The order an API caller meets: authentication (here, for a call with no credential at all;
/// in the extractors for a credential that is not valid), then CSRF (here), then reading the
/// request and the permission (in the handler).
pub async fn protect(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let secure = state.config.secure_cookies();
    let existing = cookies::read(request.headers(), COOKIE, secure);
    let session = session_token(request.headers(), &state);
    let session = session.as_ref().map(SessionToken::cookie_value);
    let is_api = request.uri().path().starts_with("/api/");
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let request = if unsafe_method {
        match credential(&request, is_api, secure) {
            // No ambient credential a forged cross-site request could borrow: the bearer
            // (an API token, or a room link's token) is judged by the handler's extractor.
            Credential::Bearer => request,
            Credential::Nothing if is_api => {
                return ApiError(AppError::Unauthenticated).into_response()
            }
            Credential::Session | Credential::Nothing => {
                match verified(&state, existing.as_deref(), session, request, is_api).await {
                    Ok(request) => request,
                    Err(error) if is_api => return ApiError(error).into_response(),
                    Err(error) => return error.into_response(),
                }
            }
        }
    } else {
        request
    };
    let (cookie_value, is_new) = match existing {
        Some(value) => (value, false),
        None => (new_cookie_value(), true),
    };
    let mut request = request;
    request
        .extensions_mut()
        .insert(CsrfToken(state.csrf.token_for(&cookie_value, session)));
    let mut response = next.run(request).await;
    let new_value = if sets_session_cookie(&response, secure) {
        Some(new_cookie_value())
    } else {
        is_new.then_some(cookie_value)
    };
    if let Some(value) = new_value {
        let cookie = cookies::build(COOKIE, &value, cookies::SameSite::Strict, None, secure);
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// What a request presents as its credential, as far as CSRF is concerned.
enum Credential {
    /// `Authorization: Bearer …` on an API route: an API token or a room link's token. A
    /// browser never adds it by itself, so it is exempt from CSRF; the extractors of API
    /// routes then read only the bearer, never the session cookie beside it
    /// ([`crate::http::auth::bearer`]).
    Bearer,
    /// A session cookie: CSRF applies.
    Session,
    /// Neither.
    Nothing,
}

/// **The one place that decides which requests are exempt from CSRF.** Pages never are: a
/// bearer token is not a credential there.
fn credential(request: &Request, is_api: bool, secure: bool) -> Credential {
    if is_api && auth::bearer(request.headers()).is_some() {
        Credential::Bearer
    } else if cookies::read(request.headers(), SESSION_COOKIE, secure).is_some() {
        Credential::Session
    } else {
        Credential::Nothing
    }
}

fn new_cookie_value() -> String {
    let mut bytes = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether the response starts or ends a session (it sets the session cookie).
fn sets_session_cookie(response: &Response, secure: bool) -> bool {
    let prefix = format!("{}=", SESSION_COOKIE.on_site(secure));
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.starts_with(&prefix))
}

async fn verified(
    state: &AppState,
    cookie_value: Option<&str>,
    session: Option<&str>,
    request: Request,
    is_api: bool,
) -> Result<Request, AppError> {
    let cookie_value = cookie_value.ok_or(AppError::Csrf)?;
    if let Some(token) = header_token(request.headers()) {
        return if state.csrf.verify(cookie_value, session, &token) {
            Ok(request)
        } else {
            Err(AppError::Csrf)
        };
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("multipart/form-data") && !is_api {
        // A file upload form: its body is too large to buffer here, so the page puts the
        // token in the action's query string instead.
        let token = request
            .uri()
            .query()
            .and_then(|query| {
                url::form_urlencoded::parse(query.as_bytes())
                    .find(|(name, _)| name == FIELD)
                    .map(|(_, value)| value.into_owned())
            })
            .ok_or(AppError::Csrf)?;
        return if state.csrf.verify(cookie_value, session, &token) {
            Ok(request)
        } else {
            Err(AppError::Csrf)
        };
    }
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(AppError::Csrf);
    }
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, MAX_FORM_BYTES).await?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == FIELD)
        .map(|(_, value)| value.into_owned())
        .ok_or(AppError::Csrf)?;
    if !state.csrf.verify(cookie_value, session, &token) {
        return Err(AppError::Csrf);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(HEADER)
        .and_then(|value: &HeaderValue| value.to_str().ok())
        .map(str::to_owned)
}
