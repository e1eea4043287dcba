//! Password hashing (argon2id) and the password policy.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::seq::SliceRandom;

use crate::StoreError;

/// The shortest password the policy accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest, so that hashing cost stays bounded.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Why a chosen password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    #[error("password shorter than {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("password longer than {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("password equal to the username")]
    SameAsUsername,
}

/// Checks a password a person chose.
pub fn check_policy(username: &str, password: &str) -> Result<(), PasswordPolicyError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooLong);
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(PasswordPolicyError::SameAsUsername);
    }
    Ok(())
}

/// Hashes with argon2id and a fresh salt, off the async workers.
pub async fn hash(password: String) -> Result<String, StoreError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|_| StoreError::PasswordHash)
    })
    .await
    .map_err(|_| StoreError::PasswordHash)?
}

/// Verifies `password` against a stored PHC string, off the async workers. With no stored
/// hash (unknown user) it still spends the time of one verification, so that response times
/// do not tell which usernames exist.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

/// The hash of a password nobody knows, verified against when the user does not exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$YMB0Cm1mEKaNjTvF+rT/OwZ8Okq5lAmCEVJoNy1ekPs";

/// A password generated for one use: the user must replace it at first login.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimePassword(String);

impl OneTimePassword {
    /// Four groups of four characters from an alphabet without look-alikes (no 0/O, 1/l/I),
    /// about 90 bits of entropy.
    pub fn generate() -> Self {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut rng = rand::thread_rng();
        let groups: Vec<String> = (0..4)
            .map(|_| {
                (0..4)
                    .filter_map(|_| ALPHABET.choose(&mut rng).map(|byte| char::from(*byte)))
                    .collect()
            })
            .collect();
        Self(groups.join("-"))
    }

    /// The password, to be shown once to the person it is for.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OneTimePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimePassword(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_short_long_and_username() {
        assert_eq!(
            check_policy("mario", "corta"),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(
            check_policy("mario", &"x".repeat(MAX_PASSWORD_CHARS + 1)),
            Err(PasswordPolicyError::TooLong)
        );
        assert_eq!(
            check_policy("mario.rossi.1", "MARIO.ROSSI.1"),
            Err(PasswordPolicyError::SameAsUsername)
        );
        assert_eq!(check_policy("mario", "una frase lunga e sicura"), Ok(()));
    }

    #[test]
    fn one_time_passwords_pass_the_policy_and_differ() {
        let first = OneTimePassword::generate();
        let second = OneTimePassword::generate();
        assert_eq!(first.reveal().len(), 19);
        assert_eq!(check_policy("admin", first.reveal()), Ok(()));
        assert_ne!(first, second);
        assert_eq!(format!("{first:?}"), "OneTimePassword(***)");
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let hash = hash("una frase lunga e sicura".to_owned())
            .await
            .expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("una frase lunga e sicura".to_owned(), Some(hash.clone())).await);
        assert!(!verify("un'altra frase".to_owned(), Some(hash)).await);
        assert!(!verify("qualunque".to_owned(), None).await);
    }
}
