//! What every handler can reach.

use std::sync::Arc;

use backoffice::mail::link_key::LinkKey;
use backoffice::platform::files::FileStore;
use backoffice::{Db, UnixMillis};
use ipnet::IpNet;
use signaling::clock::Clock;
use signaling::hub::Hub;
use tokio::sync::watch;

use crate::account::throttle::LoginThrottle;
use crate::config::Config;
use crate::http::csrf_key::CsrfKey;
use crate::telemetry::Metrics;

/// Shared, cheaply cloned application state.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub files: FileStore,
    pub csrf: Arc<CsrfKey>,
    pub metrics: Metrics,
    /// The limits on password guessing (shared through Redis with several nodes).
    pub login_throttle: Arc<LoginThrottle>,
    /// The reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<[IpNet]>,
    /// The live rooms of this node.
    pub hub: Arc<Hub>,
    /// The origins a browser page may open the room WebSocket from.
    pub socket_origins: Arc<[url::Origin]>,
    /// The time rooms and invites see (a manual clock in tests).
    pub clock: Arc<dyn Clock>,
    /// Flips to `true` when the node stops: open WebSockets say `bye` and close.
    pub stopping: watch::Receiver<bool>,
    /// Seals personal links in queued mail (see `backoffice::mail::link_key`).
    pub link_key: Arc<LinkKey>,
}

impl AppState {
    /// The current time of [`AppState::clock`], as the back office stores it.
    pub fn clock_now(&self) -> UnixMillis {
        UnixMillis(i64::try_from(self.clock.now().as_unix_millis()).unwrap_or(i64::MAX))
    }
}
