//! Reading and writing the few cookies Accordo sets.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy)]
pub enum SameSite {
    Strict,
    Lax,
}

/// A cookie's name. Over HTTPS it carries the `__Host-` prefix, with which the browser
/// accepts the cookie only with `Secure`, `Path=/` and no `Domain`: a neighbouring subdomain
/// cannot plant or overwrite it. Over plain HTTP (development, tests) browsers refuse the
/// prefix, so the plain name is used.
#[derive(Debug, Clone, Copy)]
pub struct CookieName(&'static str);

impl CookieName {
    const HOST_PREFIX: &'static str = "__Host-";

    /// A cookie called `plain` over HTTP and `__Host-plain` over HTTPS.
    pub const fn new(plain: &'static str) -> Self {
        Self(plain)
    }

    /// The name on a site served over HTTPS (`secure`) or not.
    pub fn on_site(self, secure: bool) -> String {
        if secure {
            format!("{}{}", Self::HOST_PREFIX, self.0)
        } else {
            self.0.to_owned()
        }
    }
}

/// The value of cookie `name` in the request, if any.
pub fn read(headers: &HeaderMap, name: CookieName, secure: bool) -> Option<String> {
    let name = name.on_site(secure);
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
    name: CookieName,
    value: &str,
    same_site: SameSite,
    max_age: Option<Duration>,
    secure: bool,
) -> HeaderValue {
    let name = name.on_site(secure);
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
pub fn expire(name: CookieName, secure: bool) -> HeaderValue {
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
        let session = CookieName::new("accordo_session");
        assert_eq!(read(&headers, session, false).as_deref(), Some("abc"));
        assert_eq!(read(&headers, session, true), None);
        assert_eq!(read(&headers, CookieName::new("missing"), false), None);
    }

    #[test]
    fn over_https_a_cookie_has_the_host_prefix_and_its_conditions() {
        let name = CookieName::new("s");
        let cookie = build(
            name,
            "v",
            SameSite::Lax,
            Some(Duration::from_secs(60)),
            true,
        );
        assert_eq!(
            cookie,
            "__Host-s=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(!cookie.to_str().unwrap().contains("Domain"));
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("s=x; __Host-s=v"));
        assert_eq!(read(&headers, name, true).as_deref(), Some("v"));
    }

    #[test]
    fn over_http_a_cookie_has_its_plain_name() {
        let cookie = build(CookieName::new("s"), "v", SameSite::Strict, None, false);
        assert_eq!(cookie, "s=v; Path=/; HttpOnly; SameSite=Strict");
    }
}
