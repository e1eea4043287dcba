//! One error type for pages and one for the JSON API, mapped to responses in one place, and
//! the one table from every back-office error to an HTTP answer (the `From` impls below): a
//! handler writes `?`, and a `NotFound` is a 404 wherever it comes from.
//!
//! **Invariant:** a client never sees internal text (SQL, paths, causes): a 500 shows only the
//! request id, and the cause is logged in the request's span.

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;

use backoffice::mediation::agenda::{AgendaError, Conflict, ConflictKind};
use backoffice::mediation::case_record::RecordError;
use backoffice::mediation::mediators::MediatorError;
use backoffice::mediation::scheduling::ScheduleError;
use backoffice::people::PersonError;
use backoffice::platform::rome_time;
use backoffice::rooms::room_files::{UploadError, MAX_ROOM_FILE_BYTES};
use backoffice::StoreError;
use signaling::hub::HubError;

use crate::account::throttle::ThrottleUnavailable;
use crate::telemetry;

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
    /// A meeting overlaps others; each is explained.
    #[error("the meeting overlaps {} others", .0.len())]
    Overlaps(Vec<Conflict>),
    #[error("payload too large")]
    TooLarge { max_bytes: usize },
    /// A request body over its route's limit (not a file: a form or a JSON body).
    #[error("request body too large")]
    BodyTooLarge,
    #[error("unsupported type")]
    UnsupportedType,
    /// The request was not received and answered within its deadline.
    #[error("request timed out")]
    TimedOut,
    /// Too many uploads are under way (from this link, or on this server).
    #[error("too many uploads at once")]
    TooManyUploads,
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::PasswordChangeRequired | Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) | Self::Overlaps(_) => StatusCode::CONFLICT,
            Self::TooLarge { .. } | Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::TooManyUploads => StatusCode::TOO_MANY_REQUESTS,
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
            Self::Overlaps(_) => "conflicts",
            Self::TooLarge { .. } | Self::BodyTooLarge => "too_large",
            Self::UnsupportedType => "unsupported_type",
            Self::TimedOut => "timed_out",
            Self::TooManyUploads => "too_many_uploads",
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
            Self::Overlaps(conflicts) => {
                let reasons: Vec<String> = conflicts.iter().map(overlap_explained).collect();
                (
                    "Incontro sovrapposto",
                    format!(
                        "L'incontro si sovrappone ad altri: scelga un altro orario, un'altra sala \
                         o un altro mediatore. {}",
                        reasons.join(" ")
                    ),
                )
            }
            Self::TooLarge { max_bytes } => (
                "File troppo grande",
                format!(
                    "Il file supera il limite di {} MB.",
                    max_bytes.div_ceil(1024 * 1024)
                ),
            ),
            Self::BodyTooLarge => (
                "Richiesta troppo grande",
                "La richiesta supera la dimensione massima ammessa.".to_owned(),
            ),
            Self::UnsupportedType => (
                "Tipo di file non ammesso",
                "Si possono condividere documenti PDF e immagini (PNG, JPEG, GIF, WebP)."
                    .to_owned(),
            ),
            Self::TimedOut => (
                "Tempo scaduto",
                "La richiesta non è stata completata entro il tempo previsto, per esempio \
                 perché la connessione è lenta. Riprovi."
                    .to_owned(),
            ),
            Self::TooManyUploads => (
                "Troppi caricamenti in corso",
                "Sono già in corso troppi caricamenti di file. Attenda che terminino e riprovi."
                    .to_owned(),
            ),
            Self::Internal(_) => (
                "Errore del server",
                format!(
                    "Si è verificato un errore imprevisto. Riprovi tra qualche istante; se il \
                     problema persiste, comunichi all'assistenza il codice della richiesta: {}.",
                    telemetry::request_id().unwrap_or_else(|| "non disponibile".to_owned())
                ),
            ),
        }
    }

    /// `Dati non validi: {reason}.`, the answer to a value the back office refuses.
    pub fn invalid(reason: impl std::fmt::Display) -> Self {
        Self::BadRequest(format!("Dati non validi: {reason}."))
    }

    /// What a form shows above itself when the person can put it right (a value refused, a
    /// conflict), rather than an error page.
    pub fn for_the_form(&self) -> Option<String> {
        match self {
            Self::BadRequest(_) | Self::Conflict(_) | Self::Overlaps(_) => Some(self.italian().1),
            _ => None,
        }
    }

    /// The answer for a request to `path`: JSON under `/api/`, a page elsewhere. For
    /// middleware, which runs before any handler has chosen.
    pub fn answer_for(self, path: &str) -> Response {
        if path.starts_with("/api/") {
            ApiError(self).into_response()
        } else {
            self.into_response()
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
        let mut body = serde_json::json!({ "error": error.code(), "message": message });
        if let AppError::Overlaps(conflicts) = &error {
            body["conflicts"] = conflicts.iter().map(overlap_json).collect();
        }
        (error.status(), Json(body)).into_response()
    }
}

/// `message` with its first letter in upper case and a full stop.
pub fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// A meeting in the way, as an API client reads it.
fn overlap_json(conflict: &Conflict) -> serde_json::Value {
    let kind = match conflict.kind {
        ConflictKind::Mediator => "mediator",
        ConflictKind::Room => "room",
    };
    serde_json::json!({
        "kind": kind,
        "meeting": conflict.meeting,
        "case": conflict.case_reference,
        "starts_at": conflict.starts_at.0,
        "ends_at": conflict.ends_at.0,
        "explanation": overlap_explained(conflict),
    })
}

/// A meeting in the way, as a person reads it.
fn overlap_explained(conflict: &Conflict) -> String {
    let who = match conflict.kind {
        ConflictKind::Mediator => "Il mediatore ha già",
        ConflictKind::Room => "La sala ospita già",
    };
    format!(
        "{who} un incontro dal {} al {} (pratica {}).",
        rome_time::format(conflict.starts_at),
        rome_time::format(conflict.ends_at),
        conflict.case_reference
    )
}

/// How a stored thing is named to the user.
fn italian_name(what: &str) -> &str {
    match what {
        "case" => "la pratica",
        "case title" => "l'oggetto della pratica",
        "user display name" => "il nome dell'utente",
        "case reference" => "il numero della pratica",
        "room" => "la stanza della pratica",
        "member link" => "il collegamento dell'utente alla stanza",
        "room member" => "il partecipante",
        "api token name" => "il nome del token (da 1 a 100 caratteri)",
        "api token scopes" => "i permessi del token (almeno uno)",
        "api token expiry" => "la scadenza del token (deve essere futura)",
        other => other,
    }
}

// The table: every back-office error, as an HTTP answer.

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::AlreadyExists(what) => {
                Self::Conflict(format!("Esiste già {}.", italian_name(what)))
            }
            StoreError::Invalid(what) => {
                Self::BadRequest(format!("Valore non valido: {}.", italian_name(what)))
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<RecordError> for AppError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::Invalid(reason) => Self::invalid(reason),
            RecordError::NotFound => Self::NotFound,
            RecordError::Store(error) => error.into(),
        }
    }
}

impl From<ScheduleError> for AppError {
    fn from(error: ScheduleError) -> Self {
        match error {
            ScheduleError::Invalid(reason) => Self::invalid(reason),
            ScheduleError::NotFound => Self::NotFound,
            ScheduleError::Conflicts(conflicts) => Self::Overlaps(conflicts),
            ScheduleError::MembersMissing => Self::Conflict(
                "La stanza della pratica è cambiata nel frattempo: riprovi.".to_owned(),
            ),
            ScheduleError::Store(error) => error.into(),
        }
    }
}

impl From<AgendaError> for AppError {
    fn from(error: AgendaError) -> Self {
        match error {
            AgendaError::Conflicts(conflicts) => Self::Overlaps(conflicts),
            AgendaError::Invalid(reason) => Self::invalid(reason),
            AgendaError::Store(error) => error.into(),
        }
    }
}

impl From<MediatorError> for AppError {
    fn from(error: MediatorError) -> Self {
        match error {
            MediatorError::Invalid(reason) => Self::invalid(reason),
            MediatorError::NotFound => Self::NotFound,
            MediatorError::Store(error) => error.into(),
        }
    }
}

/// Duplicates are not an error to the registry's callers: they show the candidates
/// (`people::api`, `people::pages`) before they get here.
impl From<PersonError> for AppError {
    fn from(error: PersonError) -> Self {
        match error {
            PersonError::Fiscal(error) => Self::BadRequest(capitalised(&error.to_string())),
            PersonError::Invalid(reason) => Self::BadRequest(capitalised(reason)),
            PersonError::Conflict(reason) => Self::Conflict(capitalised(reason)),
            PersonError::NotFound => Self::NotFound,
            PersonError::Duplicates(_) => Self::Conflict("Possibili duplicati.".to_owned()),
            PersonError::Store(error) => error.into(),
        }
    }
}

impl From<UploadError> for AppError {
    fn from(error: UploadError) -> Self {
        match error {
            UploadError::TooLarge => Self::TooLarge {
                max_bytes: MAX_ROOM_FILE_BYTES,
            },
            UploadError::UnsupportedType => Self::UnsupportedType,
            UploadError::QuotaExceeded => Self::Conflict(
                "La stanza ha raggiunto lo spazio massimo per i documenti: si rivolga alla \
                 segreteria."
                    .to_owned(),
            ),
            UploadError::Empty => Self::BadRequest("Il file è vuoto.".to_owned()),
            UploadError::BadName => Self::BadRequest(
                "Il nome del file è vuoto, troppo lungo o contiene caratteri non ammessi."
                    .to_owned(),
            ),
            UploadError::Store(error) => error.into(),
        }
    }
}

impl From<HubError> for AppError {
    fn from(error: HubError) -> Self {
        match error {
            HubError::RoomNotFound => Self::NotFound,
            HubError::Store(error) => error.into(),
            HubError::Room(error) => {
                Self::BadRequest(format!("Operazione rifiutata dalla stanza: {error}."))
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ThrottleUnavailable> for AppError {
    fn from(error: ThrottleUnavailable) -> Self {
        Self::Internal(error.to_string())
    }
}

/// The error page a person reads.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

impl ErrorPage<'_> {
    /// The page, or its text alone if the template fails.
    pub fn render_or_plain(&self) -> String {
        self.render()
            .unwrap_or_else(|_| format!("{}: {}", self.title, self.message))
    }
}
