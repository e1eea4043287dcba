//! One error type for pages and one for the JSON API, mapped to responses in one place.
//!
//! **Invariant:** a client never sees internal text (SQL, paths, causes): a 500 shows only the
//! request id, and the cause is logged in the request's span.

use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;

use crate::pages::ErrorPage;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not logged in")]
    Unauthenticated,
    #[error("the password must be changed first")]
    PasswordChangeRequired,
    #[error("permission denied")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("missing or invalid CSRF token")]
    Csrf,
    #[error("too many attempts")]
    RateLimited { retry_after_secs: u64 },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large")]
    TooLarge { max_bytes: usize },
    #[error("unsupported type")]
    UnsupportedType,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<backoffice::StoreError> for AppError {
    fn from(error: backoffice::StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PasswordChangeRequired | Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable machine-readable code for the API.
    fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::PasswordChangeRequired => "password_change_required",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Csrf => "csrf",
            Self::RateLimited { .. } => "rate_limited",
            Self::BadRequest(_) => "bad_request",
            Self::Conflict(_) => "conflict",
            Self::TooLarge { .. } => "too_large",
            Self::UnsupportedType => "unsupported_type",
            Self::Internal(_) => "internal",
        }
    }

    /// The title and explanation a person reads.
    fn italian(&self) -> (&'static str, String) {
        match self {
            Self::Unauthenticated => (
                "Accesso richiesto",
                "Per continuare acceda con il suo nome utente e la sua password.".to_owned(),
            ),
            Self::PasswordChangeRequired => (
                "Cambio password richiesto",
                "Prima di continuare deve sostituire la password provvisoria.".to_owned(),
            ),
            Self::Forbidden => (
                "Accesso negato",
                "Il suo profilo non ha i permessi per aprire questa pagina. Se ritiene di \
                 averne bisogno, si rivolga all'amministratore del sistema."
                    .to_owned(),
            ),
            Self::NotFound => (
                "Pagina non trovata",
                "L'indirizzo richiesto non esiste o non è più disponibile.".to_owned(),
            ),
            Self::Csrf => (
                "Modulo scaduto",
                "Il modulo non è più valido, per esempio perché è rimasto aperto a lungo. \
                 Ricarichi la pagina e riprovi."
                    .to_owned(),
            ),
            Self::RateLimited { retry_after_secs } => (
                "Troppi tentativi",
                format!(
                    "Sono stati fatti troppi tentativi da questo indirizzo. Riprovi tra {} \
                     minuti.",
                    retry_after_secs.div_ceil(60).max(1)
                ),
            ),
            Self::BadRequest(message) => ("Richiesta non valida", message.clone()),
            Self::Conflict(message) => ("Operazione in conflitto", message.clone()),
            Self::TooLarge { max_bytes } => (
                "File troppo grande",
                format!(
                    "Il file supera il limite di {} MB.",
                    max_bytes.div_ceil(1024 * 1024)
                ),
            ),
            Self::UnsupportedType => (
                "Tipo di file non ammesso",
                "Si possono condividere documenti PDF e immagini (PNG, JPEG, GIF, WebP)."
                    .to_owned(),
            ),
            Self::Internal(_) => (
                "Errore del server",
                "Si è verificato un errore imprevisto. Riprovi tra qualche istante; se il \
                 problema persiste, comunichi all'assistenza il codice della richiesta."
                    .to_owned(),
            ),
        }
    }

    fn log(&self) {
        if let Self::Internal(cause) = self {
            tracing::error!(%cause, "request failed");
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        match self {
            Self::Unauthenticated => return Redirect::to("/login").into_response(),
            Self::PasswordChangeRequired => return Redirect::to("/password").into_response(),
            _ => {}
        }
        let (title, message) = self.italian();
        let page = ErrorPage {
            title,
            message: &message,
        };
        let mut response = (self.status(), Html(page.render_or_plain())).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

/// The same failures, answered as JSON for `/api/`.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = self.0;
        error.log();
        let (_, message) = error.italian();
        let body = serde_json::json!({ "error": error.code(), "message": message });
        (error.status(), Json(body)).into_response()
    }
}
