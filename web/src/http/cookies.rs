//! Reading and writing the few cookies Accordo sets.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy)]
pub enum SameSite {
    Strict,
    Lax,
}

/// The value of cookie `name` in the request, if any.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value: always HttpOnly and for the whole site; `max_age` `None` makes a
/// browser-session cookie; `Secure` when the site is served over HTTPS.
pub fn build(
    name: &str,
    value: &str,
    same_site: SameSite,
    max_age: Option<Duration>,
    secure: bool,
) -> HeaderValue {
    let same_site = match same_site {
        SameSite::Strict => "Strict",
        SameSite::Lax => "Lax",
    };
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(max_age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", max_age.as_secs()));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn expire(name: &str, secure: bool) -> HeaderValue {
    build(name, "", SameSite::Lax, Some(Duration::ZERO), secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; accordo_session=abc; b=2"),
        );
        assert_eq!(read(&headers, "accordo_session").as_deref(), Some("abc"));
        assert_eq!(read(&headers, "missing"), None);
    }

    #[test]
    fn builds_secure_http_only_cookies() {
        let cookie = build("s", "v", SameSite::Lax, Some(Duration::from_secs(60)), true);
        assert_eq!(
            cookie,
            "s=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
    }
}
