//! Who is asking: the session cookie and the user extractors (login and logout are in
//! `account`).
//!
//! **Invariant:** every page and API call that needs a user takes [`CurrentUser`] (or
//! [`ApiUser`]) and asks [`CurrentUser::require`], which asks
//! [`backoffice::platform::access::Role::allows`]: permissions are decided in one place.

use std::net::IpAddr;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use backoffice::platform::access::{self, Permission, Policy};
use backoffice::platform::accounts::User;
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

/// A logged-in user whose password is not a one-time password any more.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub ip: Option<IpAddr>,
    /// What the roles of the user's organism may do.
    pub policy: Policy,
}

/// A logged-in user, possibly still on a one-time password (for the password page only).
#[derive(Debug, Clone)]
pub struct SessionUser(pub CurrentUser);

/// [`CurrentUser`] for the JSON API: failures answer JSON.
#[derive(Debug, Clone)]
pub struct ApiUser(pub CurrentUser);

impl CurrentUser {
    /// `Ok` when the user's role allows `permission`, else [`AppError::Forbidden`].
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.allows(permission) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Whether the user's role may do `permission` (for pages that show what one may do).
    pub fn allows(&self, permission: Permission) -> bool {
        self.policy.allows(self.user.role, permission)
    }

    /// The user as the author of a change, for the audit log.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: Some(self.user.id.clone()),
            label: self.user.username.clone(),
            ip: self.ip.map(|ip| ip.to_string()),
        }
    }
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
        ip: ClientIp::of(parts, state),
        policy,
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

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(ApiUser(
            <CurrentUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?,
        ))
    }
}
