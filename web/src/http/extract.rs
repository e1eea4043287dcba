//! The extractors of the API: each rejection is a typed [`ApiError`] with an Italian message of
//! ours, never the framework's or serde's text (which is English and names Rust types).
//!
//! - a body that is not JSON, or not of the expected shape: 400 `bad_request`, naming the field
//!   when it can;
//! - a body over the route's limit: 413 `too_large` ([`body_refusal`], shared with the upload
//!   extractors);
//! - a path segment that cannot be an id (a room id that is not digits): 400 `bad_request`
//!   "identificativo non valido" — an id that is well formed but unknown is a 404, answered by
//!   the handler;
//! - a query string with a missing, unknown or malformed parameter: 400 `bad_request`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::http::error::{ApiError, AppError};

/// `Json<T>` whose rejection is a typed [`ApiError`].
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers()) {
            return Err(bad_request(
                "Il corpo della richiesta deve essere in formato JSON, con l'intestazione \
                 `Content-Type: application/json`.",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError(body_refusal(&rejection)))?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
            if error.inner().is_data() {
                shape_refusal(&error.path().to_string())
            } else {
                not_json()
            }
        })?;
        deserializer.end().map_err(|_| not_json())?;
        Ok(ApiJson(value))
    }
}

/// Whether the request says its body is JSON (`application/json`, or a `+json` type).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn not_json() -> ApiError {
    bad_request("Il corpo della richiesta non è JSON valido.")
}

/// A JSON body that does not have the expected shape, at `path` (`.` for the whole body).
fn shape_refusal(path: &str) -> ApiError {
    let place = if path == "." {
        String::new()
    } else {
        format!(" in `{path}`")
    };
    ApiError(AppError::BadRequest(format!(
        "Il corpo JSON non è valido{place}: manca un campo obbligatorio, c'è un campo non previsto \
         o un valore è di tipo sbagliato."
    )))
}

fn bad_request(message: &str) -> ApiError {
    ApiError(AppError::BadRequest(message.to_owned()))
}

/// Why a body could not be read: over the route's limit (413), or cut off (400).
pub fn body_refusal(rejection: &BytesRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::BodyTooLarge
    } else {
        AppError::BadRequest("Il corpo della richiesta non è arrivato per intero.".to_owned())
    }
}

/// `Path<T>` whose rejection is a typed [`ApiError`]: 400, the id is not valid.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|_| {
                bad_request(
                    "Identificativo non valido: l'indirizzo contiene un identificativo che non \
                     può esistere.",
                )
            })
    }
}

/// `Query<T>` whose rejection is a typed [`ApiError`], naming the parameter when it can.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| match error.path().to_string().as_str() {
                "." => bad_request(
                    "Parametri della richiesta non validi: manca un parametro obbligatorio.",
                ),
                parameter => ApiError(AppError::BadRequest(format!(
                    "Parametri della richiesta non validi: `{parameter}` non è previsto o ha un \
                     valore non valido."
                ))),
            })
    }
}

/// The most items a listing answers at once.
pub const MAX_LIMIT: usize = 200;
/// How many items a listing answers when the caller does not say.
pub const DEFAULT_LIMIT: usize = 50;

/// The `limit` of a listing: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn listing_limit(requested: Option<usize>) -> Result<usize, ApiError> {
    match requested.unwrap_or(DEFAULT_LIMIT) {
        limit @ 1..=MAX_LIMIT => Ok(limit),
        _ => Err(ApiError(AppError::BadRequest(format!(
            "Il parametro `limit` deve essere tra 1 e {MAX_LIMIT}."
        )))),
    }
}

/// The first `limit` of `items`, and whether there were more.
pub fn first<T>(mut items: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = items.len() > limit;
    items.truncate(limit);
    (items, more)
}

/// A request body read whole, up to `limit` bytes, by the middleware that must see it before
/// the handler (CSRF's form field, the NUL check). A longer body is 413; a body that breaks off
/// (the client went away or stalled) gets the same answer, which nobody reads.
pub async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, AppError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| AppError::BodyTooLarge)
}
