//! The OpenAPI 3.1 document of the JSON API, served at `GET /api/v1/openapi.json`.
//!
//! The document (`web/openapi.json`) is written by hand and embedded in the binary;
//! `tests/tests/app/openapi.rs` keeps it true: every `/api/v1` route of
//! the server (`server::route_table`) is in it with the same methods (and nothing else is), every
//! operation answers a caller without credentials as it says, and every `$ref` resolves.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /api/v1/openapi.json`: public, so that a client can be written against it.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
