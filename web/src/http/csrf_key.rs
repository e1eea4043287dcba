//! The server's key for CSRF tokens: `HMAC(key, cookie value, session token)`. A leaf module, so that the
//! application state can hold the key without depending on the middleware that uses it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The server's signing key for CSRF tokens.
pub struct CsrfKey(Vec<u8>);

impl CsrfKey {
    pub fn new(secret: Vec<u8>) -> Self {
        Self(secret)
    }

    fn mac(&self, cookie_value: &str, session: Option<&str>) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(cookie_value.as_bytes());
        if let Some(session) = session {
            // Both values are hexadecimal: the separator keeps the two apart.
            mac.update(b"|");
            mac.update(session.as_bytes());
        }
        mac
    }

    /// The token for a browser's CSRF cookie and its session, if it has one.
    pub(crate) fn token_for(&self, cookie_value: &str, session: Option<&str>) -> String {
        hex::encode(self.mac(cookie_value, session).finalize().into_bytes())
    }

    pub(crate) fn verify(&self, cookie_value: &str, session: Option<&str>, token: &str) -> bool {
        let Ok(signature) = hex::decode(token) else {
            return false;
        };
        self.mac(cookie_value, session)
            .verify_slice(&signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::CsrfKey;

    #[test]
    fn a_token_verifies_only_with_its_cookie_and_key() {
        let key = CsrfKey::new(vec![7; 32]);
        let token = key.token_for("cookie-a", None);
        assert!(key.verify("cookie-a", None, &token));
        assert!(!key.verify("cookie-b", None, &token));
        assert!(!CsrfKey::new(vec![8; 32]).verify("cookie-a", None, &token));
        assert!(!key.verify("cookie-a", None, "zz"));
        assert!(!key.verify("cookie-a", None, ""));
    }

    #[test]
    fn a_token_verifies_only_with_its_session() {
        let key = CsrfKey::new(vec![7; 32]);
        let token = key.token_for("cookie-a", Some("session-1"));
        assert!(key.verify("cookie-a", Some("session-1"), &token));
        assert!(!key.verify("cookie-a", Some("session-2"), &token));
        assert!(!key.verify("cookie-a", None, &token));
        assert!(!key.verify(
            "cookie-a",
            Some("session-1"),
            &key.token_for("cookie-a", None)
        ));
    }
}
