//! The STUN and TURN servers handed to each member, with time-limited TURN credentials.
//!
//! TURN credentials follow the "TURN REST API" scheme that coturn implements with
//! `use-auth-secret` (draft-uberti-behave-turn-rest-00 §2.2): the username is
//! `EXPIRY:MEMBER` (EXPIRY in Unix seconds) and the password is
//! `base64(HMAC-SHA1(shared secret, username))`. The TURN server checks them without asking
//! Accordo; a leaked credential stops working at its expiry.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rooms::ParticipantId;
use serde::Serialize;
use sha1::Sha1;

/// The ICE servers of the installation.
#[derive(Debug, Clone, Default)]
pub struct IceServers {
    /// `stun:host:port` URLs.
    pub stun: Vec<String>,
    /// `turn:` / `turns:` URLs, sharing one secret.
    pub turn: Vec<String>,
    /// coturn's `static-auth-secret`.
    pub turn_secret: Option<String>,
    /// How long a TURN credential is valid.
    pub credential_ttl: Duration,
}

/// One entry of `RTCConfiguration.iceServers`, as a browser takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WireIceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl IceServers {
    /// The servers for `member` at `now_secs` (Unix seconds), with fresh TURN credentials.
    pub fn for_member(&self, member: ParticipantId, now_secs: u64) -> Vec<WireIceServer> {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(WireIceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if let (false, Some(secret)) = (self.turn.is_empty(), &self.turn_secret) {
            let expiry = now_secs.saturating_add(self.credential_ttl.as_secs());
            let username = format!("{expiry}:{}", member.get());
            servers.push(WireIceServer {
                urls: self.turn.clone(),
                credential: Some(turn_password(secret, &username)),
                username: Some(username),
            });
        }
        servers
    }
}

/// `base64(HMAC-SHA1(secret, username))`.
fn turn_password(secret: &str, username: &str) -> String {
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_credentials_follow_the_rest_api_scheme() {
        let servers = IceServers {
            stun: vec!["stun:stun.example:3478".to_owned()],
            turn: vec!["turn:turn.example:3478?transport=udp".to_owned()],
            turn_secret: Some("north".to_owned()),
            credential_ttl: Duration::from_secs(3600),
        };
        let handed = servers.for_member(ParticipantId::new(42), 1_700_000_000);
        assert_eq!(handed.len(), 2);
        assert_eq!(handed[0].username, None);
        assert_eq!(handed[1].username.as_deref(), Some("1700003600:42"));
        // `printf '1700003600:42' | openssl dgst -sha1 -hmac north -binary | base64`
        assert_eq!(
            handed[1].credential.as_deref(),
            Some("WO3ZFttCQxBYtA2Ohz7jjGcQStA=")
        );
    }

    #[test]
    fn no_servers_without_configuration() {
        assert!(IceServers::default()
            .for_member(ParticipantId::new(1), 0)
            .is_empty());
    }
}
