//! Login, logout and the password change.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use backoffice::platform::accounts::{self, LoginError, PasswordChangeError, PasswordPolicyError};
use backoffice::platform::sessions;
use backoffice::UnixMillis;
use serde::Deserialize;

use super::pages::{LoginPage, PasswordPage};
use crate::http::auth::{session_token, SessionUser, SESSION_COOKIE};
use crate::http::client_ip::ClientIp;
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
    if let Some(token) = session_token(&headers, &state) {
        let idle_timeout = state.config.session_idle_timeout();
        if sessions::lookup(&state.db, &token, state.clock_now(), idle_timeout)
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

/// The one answer to a refused login, whether the user is unknown, the password wrong or the
/// account locked for this address: the answer must not tell which.
const LOGIN_REFUSED: &str = "Nome utente o password non corretti. Dopo ripetuti tentativi non \
     riusciti, l'accesso da questo indirizzo resta sospeso per alcuni minuti.";

/// `POST /login`.
pub async fn login_submit(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    ClientIp(ip): ClientIp,
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, AppError> {
    let throttle = &state.login_throttle;
    if let Some(retry_after_secs) = throttle.attempt_from(ip).await? {
        return Err(AppError::RateLimited { retry_after_secs });
    }
    let now = state.clock_now();
    let address = ip.to_string();
    let refused = || {
        let page = LoginPage::new(&csrf, &form.username, Some(LOGIN_REFUSED.to_owned()));
        Ok((StatusCode::UNAUTHORIZED, render(&page)).into_response())
    };
    if throttle.is_locked(&form.username, ip, now).await?.is_some() {
        // The password is not checked, but the time of a check is spent all the same.
        accounts::spend_a_verification(&form.password).await;
        return refused();
    }
    let authenticated = accounts::authenticate(
        &state.db,
        Some(&address),
        now,
        &form.username,
        &form.password,
    )
    .await;
    let user = match authenticated {
        Ok(user) => user,
        Err(LoginError::InvalidCredentials) => {
            count_failure(&state, &form.username, ip, now).await?;
            return refused();
        }
        Err(LoginError::Store(error)) => return Err(error.into()),
    };
    throttle.succeeded(&form.username, ip).await?;
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

/// Counts a wrong password for `username` from `ip`; a failure that locks the pair is audited.
async fn count_failure(
    state: &AppState,
    username: &str,
    ip: IpAddr,
    now: UnixMillis,
) -> Result<(), AppError> {
    if let Some(until) = state.login_throttle.failed(username, ip, now).await? {
        let address = ip.to_string();
        accounts::record_lock(&state.db, Some(&address), now, username, until).await?;
    }
    Ok(())
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<AppState>,
    SessionUser(current): SessionUser,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(token) = session_token(&headers, &state) {
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

/// `POST /password`: limited like the login form, since it checks the current password too.
pub async fn password_submit(
    State(state): State<AppState>,
    SessionUser(current): SessionUser,
    Extension(csrf): Extension<CsrfToken>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    PageForm(form): PageForm<PasswordForm>,
) -> Result<Response, AppError> {
    let throttle = &state.login_throttle;
    if let Some(retry_after_secs) = throttle.attempt_from(ip).await? {
        return Err(AppError::RateLimited { retry_after_secs });
    }
    let now = state.clock_now();
    let username = &current.user.username;
    if let Some(until) = throttle.is_locked(username, ip, now).await? {
        let retry_after_secs = u64::try_from((until.0 - now.0).max(0) / 1000 + 1).unwrap_or(1);
        return Err(AppError::RateLimited { retry_after_secs });
    }
    let kept_session = session_token(&headers, &state).ok_or(AppError::Unauthenticated)?;
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
        now,
        &current.user.id,
        &kept_session.hash(),
        &form.current_password,
        &form.new_password,
    )
    .await;
    // The current password was right: the failures from this address are forgiven.
    if matches!(
        changed,
        Ok(()) | Err(PasswordChangeError::Unchanged | PasswordChangeError::Policy(_))
    ) {
        throttle.succeeded(username, ip).await?;
    }
    match changed {
        Ok(()) => Ok(Redirect::to("/").into_response()),
        Err(PasswordChangeError::WrongCurrentPassword) => {
            count_failure(&state, username, ip, now).await?;
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
