//! The server's key for CSRF tokens: `HMAC(key, cookie value)`. A leaf module, so that the
//! application state can hold the key without depending on the middleware that uses it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The server's signing key for CSRF tokens.
pub struct CsrfKey(Vec<u8>);

impl CsrfKey {
    pub fn new(secret: Vec<u8>) -> Self {
        Self(secret)
    }

    fn mac(&self, cookie_value: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(cookie_value.as_bytes());
        mac
    }

    pub(crate) fn token_for(&self, cookie_value: &str) -> String {
        hex::encode(self.mac(cookie_value).finalize().into_bytes())
    }

    pub(crate) fn verify(&self, cookie_value: &str, token: &str) -> bool {
        let Ok(signature) = hex::decode(token) else {
            return false;
        };
        self.mac(cookie_value).verify_slice(&signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::CsrfKey;

    #[test]
    fn a_token_verifies_only_with_its_cookie_and_key() {
        let key = CsrfKey::new(vec![7; 32]);
        let token = key.token_for("cookie-a");
        assert!(key.verify("cookie-a", &token));
        assert!(!key.verify("cookie-b", &token));
        assert!(!CsrfKey::new(vec![8; 32]).verify("cookie-a", &token));
        assert!(!key.verify("cookie-a", "zz"));
        assert!(!key.verify("cookie-a", ""));
    }
}
