//! Who is asking: session cookies, the user extractors, login, logout, password change.
//!
//! **Invariant:** every page and API call that needs a user takes [`CurrentUser`] (or
//! [`ApiUser`]) and asks [`CurrentUser::require`], which asks
//! [`backoffice::access::Role::allows`]: permissions are decided in one place.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use backoffice::access::{self, Permission, Policy};
use backoffice::accounts::{self, LoginError, PasswordChangeError, PasswordPolicyError, User};
use backoffice::audit::Actor;
use backoffice::sessions::{self, SessionToken};
use backoffice::UnixMillis;
use serde::Deserialize;

use crate::cookies;
use crate::csrf::CsrfToken;
use crate::error::{ApiError, AppError};
use crate::pages::{self, LoginPage, PageForm, PasswordPage};
use crate::state::AppState;

const SESSION_COOKIE: &str = "accordo_session";

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

fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

async fn session_user(parts: &Parts, state: &AppState) -> Result<CurrentUser, AppError> {
    let token = cookies::read(&parts.headers, SESSION_COOKIE).ok_or(AppError::Unauthenticated)?;
    let user = sessions::lookup(
        &state.db,
        &SessionToken::from_cookie(&token),
        UnixMillis::now(),
    )
    .await?
    .ok_or(AppError::Unauthenticated)?;
    let policy = access::policy(&state.db, user.organism_id.as_deref()).await?;
    Ok(CurrentUser {
        user,
        ip: client_ip(parts),
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

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(token) = cookies::read(&headers, SESSION_COOKIE) {
        let token = SessionToken::from_cookie(&token);
        if sessions::lookup(&state.db, &token, UnixMillis::now())
            .await?
            .is_some()
        {
            return Ok(Redirect::to("/").into_response());
        }
    }
    Ok(pages::render(&LoginPage::new(&csrf, "", None)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// `POST /login`.
pub async fn login_submit(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    ConnectInfo(address): ConnectInfo<SocketAddr>,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, AppError> {
    state
        .login_limiter
        .attempt(address.ip(), Instant::now())
        .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })?;
    let now = UnixMillis::now();
    let ip = address.ip().to_string();
    let refused = |status: StatusCode, message: String| {
        let page = LoginPage::new(&csrf, &form.username, Some(message));
        (status, pages::render(&page)).into_response()
    };
    let user =
        match accounts::authenticate(&state.db, Some(&ip), now, &form.username, &form.password)
            .await
        {
            Ok(user) => user,
            Err(LoginError::InvalidCredentials) => {
                return Ok(refused(
                    StatusCode::UNAUTHORIZED,
                    "Nome utente o password non corretti.".to_owned(),
                ));
            }
            Err(LoginError::Locked { until }) => {
                let minutes = ((until.0 - now.0).max(0) + 59_999) / 60_000;
                return Ok(refused(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Account temporaneamente bloccato dopo troppi tentativi non riusciti. \
                     Riprovi tra {minutes} minuti oppure chieda all'amministratore di \
                     reimpostare la password."
                    ),
                ));
            }
            Err(LoginError::Store(error)) => return Err(error.into()),
        };
    let token = sessions::create(&state.db, &user.id, now).await?;
    let cookie = cookies::build(
        SESSION_COOKIE,
        token.cookie_value(),
        cookies::SameSite::Lax,
        Some(sessions::ABSOLUTE_LIFETIME),
        state.config.secure_cookies(),
    );
    let next = if user.must_change_password {
        "/password"
    } else {
        "/"
    };
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(next)).into_response())
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    SessionUser(current): SessionUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(token) = cookies::read(&headers, SESSION_COOKIE) {
        let token = SessionToken::from_cookie(&token);
        sessions::end(&state.db, &current.actor(), UnixMillis::now(), &token).await?;
    }
    let cookie = cookies::expire(SESSION_COOKIE, state.config.secure_cookies());
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

/// `GET /password`.
pub async fn password_page(
    SessionUser(current): SessionUser,
    Extension(csrf): Extension<CsrfToken>,
) -> Response {
    pages::render(&PasswordPage::new(&csrf, &current.user, None)).into_response()
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

/// `POST /password`.
pub async fn password_submit(
    State(state): State<AppState>,
    SessionUser(current): SessionUser,
    Extension(csrf): Extension<CsrfToken>,
    PageForm(form): PageForm<PasswordForm>,
) -> Result<Response, AppError> {
    let refused = |message: &str| {
        let page = PasswordPage::new(&csrf, &current.user, Some(message.to_owned()));
        Ok((StatusCode::UNPROCESSABLE_ENTITY, pages::render(&page)).into_response())
    };
    if form.new_password != form.confirm_password {
        return refused("La nuova password e la conferma non coincidono.");
    }
    let changed = accounts::change_password(
        &state.db,
        &current.actor(),
        UnixMillis::now(),
        &current.user.id,
        &form.current_password,
        &form.new_password,
    )
    .await;
    match changed {
        Ok(()) => Ok(Redirect::to("/").into_response()),
        Err(PasswordChangeError::WrongCurrentPassword) => {
            refused("La password attuale non è corretta.")
        }
        Err(PasswordChangeError::Unchanged) => {
            refused("La nuova password deve essere diversa da quella attuale.")
        }
        Err(PasswordChangeError::Policy(PasswordPolicyError::TooShort)) => refused(
            "La nuova password è troppo corta: servono almeno 12 caratteri. Una frase di \
             alcune parole è facile da ricordare e difficile da indovinare.",
        ),
        Err(PasswordChangeError::Policy(PasswordPolicyError::TooLong)) => {
            refused("La nuova password è troppo lunga: al massimo 256 caratteri.")
        }
        Err(PasswordChangeError::Policy(PasswordPolicyError::SameAsUsername)) => {
            refused("La nuova password non può coincidere con il nome utente.")
        }
        Err(PasswordChangeError::Store(error)) => Err(error.into()),
    }
}
