//! Login, logout and the password change.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use backoffice::platform::accounts::{self, LoginError, PasswordChangeError, PasswordPolicyError};
use backoffice::platform::sessions::{self, SessionToken};
use serde::Deserialize;

use super::pages::{LoginPage, PasswordPage};
use crate::http::auth::{SessionUser, SESSION_COOKIE};
use crate::http::cookies;
use crate::http::csrf::CsrfToken;
use crate::http::error::AppError;
use crate::http::render::{render, PageForm};
use crate::state::AppState;

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(token) = cookies::read(&headers, SESSION_COOKIE) {
        let token = SessionToken::from_cookie(&token);
        if sessions::lookup(&state.db, &token, state.clock_now())
            .await?
            .is_some()
        {
            return Ok(Redirect::to("/").into_response());
        }
    }
    Ok(render(&LoginPage::new(&csrf, "", None)).into_response())
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
    let now = state.clock_now();
    let ip = address.ip().to_string();
    let refused = |status: StatusCode, message: String| {
        let page = LoginPage::new(&csrf, &form.username, Some(message));
        (status, render(&page)).into_response()
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
        sessions::end(&state.db, &current.actor(), state.clock_now(), &token).await?;
    }
    let cookie = cookies::expire(SESSION_COOKIE, state.config.secure_cookies());
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

/// `GET /password`.
pub async fn password_page(
    SessionUser(current): SessionUser,
    Extension(csrf): Extension<CsrfToken>,
) -> Response {
    render(&PasswordPage::new(&csrf, &current.user, None)).into_response()
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
        Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
    };
    if form.new_password != form.confirm_password {
        return refused("La nuova password e la conferma non coincidono.");
    }
    let changed = accounts::change_password(
        &state.db,
        &current.actor(),
        state.clock_now(),
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
