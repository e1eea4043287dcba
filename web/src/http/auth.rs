//! Who is asking: the session cookie, API tokens, and the user extractors (login and logout
//! are in `account`).
//!
//! **Invariant:** every page and API call that needs a user takes [`CurrentUser`] (or
//! [`ApiUser`]) and asks [`CurrentUser::require`], which asks
//! [`backoffice::platform::access::Policy::allows`]: permissions are decided in one place. A
//! call with an API token acts as the token's creator, limited to the token's scopes.
//!
//! **Invariant:** an API token is a credential of `/api/` routes only ([`accept_api_tokens`], the
//! middleware that accepts it); pages read the session cookie alone. An API call that carries
//! a bearer token is judged by it and never by a session cookie beside it.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use backoffice::platform::access::{self, Permission, Policy};
use backoffice::platform::accounts::User;
use backoffice::platform::api_tokens::{self, Grant};
use backoffice::platform::audit::Actor;
use backoffice::platform::sessions::{self, SessionToken};

use crate::http::client_ip::ClientIp;
use crate::http::cookies::{self, CookieName};
use crate::http::error::{ApiError, AppError};
use crate::state::AppState;

pub(crate) const SESSION_COOKIE: CookieName = CookieName::new("accordo_session");

/// The session token the request's cookie carries, if any (live or not).
pub(crate) fn session_token(headers: &HeaderMap, state: &AppState) -> Option<SessionToken> {
    cookies::read(headers, SESSION_COOKIE, state.config.secure_cookies())
        .map(|value| SessionToken::from_cookie(&value))
}

/// A logged-in user whose password is not a one-time password any more, or an integration
/// calling with an API token (acting as the token's creator).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub ip: Option<IpAddr>,
    /// What the roles of the user's organism may do.
    pub policy: Policy,
    /// The API token the call was made with, if any: it narrows what the user may do.
    pub token: Option<TokenUse>,
}

/// An API token in use for one request, and the permission it was refused, if any (recorded
/// in the audit log once the request is answered).
#[derive(Debug, Clone)]
pub struct TokenUse {
    pub grant: Arc<Grant>,
    refused: Arc<Mutex<Option<Permission>>>,
}

/// A logged-in user, possibly still on a one-time password (for the password page only).
#[derive(Debug, Clone)]
pub struct SessionUser(pub CurrentUser);

/// [`CurrentUser`] for the JSON API: failures answer JSON.
#[derive(Debug, Clone)]
pub struct ApiUser(pub CurrentUser);

impl CurrentUser {
    /// `Ok` when the user's role (and the API token's scopes) allow `permission`, else
    /// [`AppError::Forbidden`].
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.allows(permission) {
            return Ok(());
        }
        if let Some(token) = &self.token {
            *token
                .refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(permission);
        }
        Err(AppError::Forbidden)
    }

    /// Whether the user's role may do `permission` (for pages that show what one may do), and,
    /// with an API token, whether the token's scopes include it.
    pub fn allows(&self, permission: Permission) -> bool {
        self.policy.allows(self.user.role, permission)
            && self
                .token
                .as_ref()
                .is_none_or(|token| token.grant.in_scope(permission))
    }

    /// The user (through the API token, if any) as the author of a change, for the audit log.
    pub fn actor(&self) -> Actor {
        let ip = self.ip.map(|ip| ip.to_string());
        match &self.token {
            Some(token) => token.grant.actor(ip),
            None => Actor {
                user_id: Some(self.user.id.clone()),
                label: self.user.username.clone(),
                ip,
            },
        }
    }
}

/// The token of an `Authorization: Bearer TOKEN` header, if the request has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn session_user(parts: &Parts, state: &AppState) -> Result<CurrentUser, AppError> {
    let token = session_token(&parts.headers, state).ok_or(AppError::Unauthenticated)?;
    let user = sessions::lookup(
        &state.db,
        &token,
        state.clock_now(),
        state.config.session_idle_timeout(),
    )
    .await?
    .ok_or(AppError::Unauthenticated)?;
    let policy = access::policy(&state.db, user.organism_id.as_deref()).await?;
    Ok(CurrentUser {
        user,
        ip: ClientIp::of(&parts.extensions, &parts.headers, state),
        policy,
        token: None,
    })
}

impl FromRequestParts<AppState> for SessionUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        session_user(parts, state).await.map(SessionUser)
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let current = session_user(parts, state).await?;
        if current.user.must_change_password {
            return Err(AppError::PasswordChangeRequired);
        }
        Ok(current)
    }
}

impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    /// `None` for a visitor who is not logged in (or must still change the password).
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, AppError> {
        match <CurrentUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(current) => Ok(Some(current)),
            Err(AppError::Unauthenticated | AppError::PasswordChangeRequired) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    /// The caller of an API token accepted by [`accept_api_tokens`]; else, without a bearer token,
    /// the session's user. Any other bearer token (a room link's) is no credential here.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(TokenCaller(current)) = parts.extensions.get::<TokenCaller>() {
            return Ok(ApiUser(current.clone()));
        }
        if bearer(&parts.headers).is_some() {
            return Err(ApiError(AppError::Unauthenticated));
        }
        Ok(ApiUser(
            <CurrentUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?,
        ))
    }
}

/// The caller of a request made with an API token, as [`accept_api_tokens`] hands it to
/// [`ApiUser`] (and to nothing else: pages never see it).
#[derive(Clone)]
struct TokenCaller(CurrentUser);

/// Middleware: accepts an API token (`Authorization: Bearer acc_…`) on `/api/` routes and
/// hands the handler its caller; refuses a token that is unknown, revoked or expired, or whose
/// creator is disabled, with 401 (recorded, but for an unknown one). Once the request is
/// answered, a permission the token was refused is recorded too.
pub async fn accept_api_tokens(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let Some(secret) = bearer(request.headers())
        .filter(|secret| is_api && secret.starts_with(api_tokens::PREFIX))
        .map(str::to_owned)
    else {
        return next.run(request).await;
    };
    let ip = ClientIp::of(request.extensions(), request.headers(), &state);
    let now = state.clock_now();
    let grant = match api_tokens::authenticate(&state.db, now, &secret, ip.map(|ip| ip.to_string()))
        .await
    {
        Ok(Ok(grant)) => Arc::new(grant),
        Ok(Err(_)) => return ApiError(AppError::Unauthenticated).into_response(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let policy = match access::policy(&state.db, grant.user.organism_id.as_deref()).await {
        Ok(policy) => policy,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let token = TokenUse {
        grant: grant.clone(),
        refused: Arc::default(),
    };
    let refused = token.refused.clone();
    request.extensions_mut().insert(TokenCaller(CurrentUser {
        user: grant.user.clone(),
        ip,
        policy,
        token: Some(token),
    }));
    let response = next.run(request).await;
    let refused = *refused
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(permission) = refused {
        let recorded = api_tokens::record_out_of_scope(
            &state.db,
            state.clock_now(),
            &grant,
            ip.map(|ip| ip.to_string()),
            permission,
        )
        .await;
        if let Err(error) = recorded {
            return ApiError::from(error).into_response();
        }
    }
    response
}
