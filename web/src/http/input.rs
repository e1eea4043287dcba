//! Input refused at the edge, before any handler: the NUL character. No text the server keeps
//! may contain it, and PostgreSQL refuses it in a text value, so a path, a query or a field
//! carrying one would otherwise fail deep inside with a 500.
//!
//! Paths and queries are checked for `%00` (the only way a URI carries NUL); form and JSON
//! bodies, up to [`MAX_CHECKED_BODY_BYTES`], for the raw byte, `%00` and the JSON escape
//! `\u0000`. Multipart uploads are not read here: a file may contain NUL, and a 20 MB body is
//! not buffered to look.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use crate::http::error::AppError;
use crate::http::extract::read_body;

/// The largest form or JSON body read (axum's default limit for its extractors).
const MAX_CHECKED_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Middleware: 400 for a request whose path, query, form or JSON body holds NUL.
pub async fn refuse_nul(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let in_uri = has_percent_nul(path.as_bytes())
        || request
            .uri()
            .query()
            .is_some_and(|query| has_percent_nul(query.as_bytes()));
    if in_uri {
        return refusal(&path);
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let check: fn(&[u8]) -> bool = if content_type.starts_with("application/x-www-form-urlencoded")
    {
        has_percent_nul
    } else if content_type.starts_with("application/json") || content_type.contains("+json") {
        has_json_nul
    } else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body, MAX_CHECKED_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => return error.answer_for(&path),
    };
    if bytes.contains(&0) || check(&bytes) {
        return refusal(&path);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refusal(path: &str) -> Response {
    AppError::BadRequest(
        "La richiesta contiene un carattere non ammesso (il carattere nullo).".to_owned(),
    )
    .answer_for(path)
}

/// `%00` in percent-encoded text.
fn has_percent_nul(text: &[u8]) -> bool {
    text.windows(3).any(|window| window == b"%00")
}

/// `\u0000` in JSON text, as an escape: an even number of backslashes before it would make
/// it the literal text `\u0000`, which is harmless.
fn has_json_nul(text: &[u8]) -> bool {
    text.windows(6)
        .enumerate()
        .filter(|(_, window)| *window == br"\u0000")
        .any(|(start, _)| {
            let backslashes_before = text[..start]
                .iter()
                .rev()
                .take_while(|byte| **byte == b'\\')
                .count();
            backslashes_before % 2 == 0
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_nul_is_found_in_paths_queries_and_forms() {
        assert!(has_percent_nul(b"/api/v1/cases/%00/history"));
        assert!(has_percent_nul(b"title=a%00b&x=1"));
        assert!(!has_percent_nul(b"title=100%25&x=%2500"));
    }

    #[test]
    fn only_a_real_json_escape_counts() {
        assert!(has_json_nul(br#"{"title":"a\u0000b"}"#));
        assert!(has_json_nul(br#"{"title":"\\\u0000"}"#));
        assert!(!has_json_nul(br#"{"title":"a\\u0000b"}"#));
        assert!(has_json_nul(br#"{"title":"\u00001"}"#));
        assert!(!has_json_nul(br#"{"title":"\u0001"}"#));
    }
}
