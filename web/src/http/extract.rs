//! The JSON extractors of the API: each rejection is a typed, Italian [`ApiError`] instead of
//! axum's plain text.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;

use crate::http::error::{ApiError, AppError};

/// `Json<T>` whose rejection is a typed [`ApiError`] instead of axum's plain text.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(value)| ApiJson(value))
            .map_err(|rejection: JsonRejection| {
                ApiError(AppError::BadRequest(format!(
                    "Corpo della richiesta non valido: {}",
                    rejection.body_text()
                )))
            })
    }
}

/// `Path<T>` whose rejection is a typed [`ApiError`] (404: no such thing at that address).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(|_| ApiError(AppError::NotFound))
    }
}

/// `Query<T>` whose rejection is a typed [`ApiError`] instead of axum's plain text.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| {
                ApiError(AppError::BadRequest(format!(
                    "Parametri della richiesta non validi: {}",
                    rejection.body_text()
                )))
            })
    }
}
