//! The key that seals the personal links of queued mail.
//!
//! A mail that carries a personal room link is stored with a placeholder where the link goes
//! and the link itself sealed (ChaCha20-Poly1305) under this key, which is kept outside the
//! database: in `link_key` of the configuration, or in a key file of the data directory created
//! with mode 0600 at first start. A stolen copy of the database therefore holds no link that
//! opens a room. The outbox opens the seal only to render the mail as it sends it.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// Bytes of a key.
const KEY_BYTES: usize = 32;
/// Bytes of a nonce (random for each seal).
const NONCE_BYTES: usize = 12;
/// Starts every sealed text, so that a later format can be told apart.
const SEALED_PREFIX: &str = "v1.";

/// Why a key cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum LinkKeyError {
    #[error(
        "the link key must be 64 hexadecimal digits (32 bytes), e.g. from `openssl rand -hex 32`"
    )]
    Malformed,
    #[error("the link key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
}

/// The seal could not be opened: another key, or a text that was not sealed by this module.
#[derive(Debug, thiserror::Error)]
#[error("the sealed link does not open with this key")]
pub struct SealBroken;

/// The installation's link key. Its `Debug` does not print it.
#[derive(Clone)]
pub struct LinkKey(Key);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(***)")
    }
}

impl LinkKey {
    /// A key written as 64 hexadecimal digits (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<LinkKey, LinkKeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| LinkKeyError::Malformed)?;
        if bytes.len() != KEY_BYTES {
            return Err(LinkKeyError::Malformed);
        }
        Ok(LinkKey(*Key::from_slice(&bytes)))
    }

    /// A new random key.
    pub fn generate() -> LinkKey {
        LinkKey(ChaCha20Poly1305::generate_key(&mut OsRng))
    }

    /// The key kept in the file at `path`; when there is none, a new key is written there
    /// (readable by its owner only) and returned.
    pub fn load_or_create(path: &Path) -> Result<LinkKey, LinkKeyError> {
        let failed = |source| LinkKeyError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => return LinkKey::parse(&text),
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(failed(error))
            }
            Err(_) => {}
        }
        let key = LinkKey::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                writeln!(file, "{}", hex::encode(key.0))
                    .and_then(|()| file.sync_all())
                    .map_err(failed)?;
                Ok(key)
            }
            // Another node sharing the directory wrote it first: use theirs.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(failed)?;
                LinkKey::parse(&text)
            }
            Err(error) => Err(failed(error)),
        }
    }

    /// `link` sealed and bound to `context` (the mail's idempotency key, so that a seal cannot
    /// be moved to another mail), as printable text.
    pub fn seal(&self, link: &str, context: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: link.as_bytes(),
            aad: context.as_bytes(),
        };
        // Encrypting into a Vec fails only for a message longer than the cipher's limit
        // (256 GiB); a link is a few hundred bytes.
        let sealed = ChaCha20Poly1305::new(&self.0)
            .encrypt(&nonce, payload)
            .expect("a link is far below the cipher's length limit");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The link sealed by [`LinkKey::seal`] with the same `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SealBroken> {
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
            .filter(|bytes| bytes.len() > NONCE_BYTES)
            .ok_or(SealBroken)?;
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: sealed,
            aad: context.as_bytes(),
        };
        let link = ChaCha20Poly1305::new(&self.0)
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SealBroken)?;
        String::from_utf8(link).map_err(|_| SealBroken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "https://accordo.example/r/AbCdEfGh0123456789AbCdEfGh0123456789abcde";

    #[test]
    fn a_sealed_link_opens_only_with_its_key_and_its_mail() {
        let key = LinkKey::generate();
        let sealed = key.seal(LINK, "meeting:m1:v1:invitation:party-a");
        assert!(!sealed.contains("AbCdEfGh"), "{sealed}");
        assert_ne!(sealed, key.seal(LINK, "meeting:m1:v1:invitation:party-a"));
        assert_eq!(
            key.open(&sealed, "meeting:m1:v1:invitation:party-a").ok(),
            Some(LINK.to_owned())
        );
        assert!(key
            .open(&sealed, "meeting:m1:v1:invitation:party-b")
            .is_err());
        assert!(LinkKey::generate()
            .open(&sealed, "meeting:m1:v1:invitation:party-a")
            .is_err());
        assert!(key.open(LINK, "meeting:m1:v1:invitation:party-a").is_err());
        assert!(key.open("v1.", "meeting:m1:v1:invitation:party-a").is_err());
    }

    #[test]
    fn keys_are_64_hex_digits() {
        let text = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        assert!(LinkKey::parse(text).is_ok());
        assert!(LinkKey::parse(&format!(" {text}\n")).is_ok());
        assert!(LinkKey::parse(&text[2..]).is_err());
        assert!(LinkKey::parse(&text.replace('a', "g")).is_err());
        assert_eq!(
            format!("{:?}", LinkKey::parse(text).ok()),
            "Some(LinkKey(***))"
        );
    }

    #[test]
    fn the_key_file_is_created_once_for_its_owner_only() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("link.key");
        let first = LinkKey::load_or_create(&path).expect("created");
        let second = LinkKey::load_or_create(&path).expect("loaded");
        let sealed = first.seal(LINK, "k");
        assert_eq!(second.open(&sealed, "k").ok(), Some(LINK.to_owned()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").expect("write");
        assert!(matches!(
            LinkKey::load_or_create(&path),
            Err(LinkKeyError::Malformed)
        ));
    }
}
