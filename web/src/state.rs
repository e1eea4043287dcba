//! What every handler can reach.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use backoffice::mail::link_key::LinkKey;
use backoffice::platform::files::FileStore;
use backoffice::{Db, UnixMillis};
use ipnet::IpNet;
use rooms::{ParticipantId, RoomId};
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
    /// Room-file uploads under way, capped per link and per node.
    pub upload_slots: Arc<UploadSlots>,
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

/// The most uploads one link may have under way at once.
pub const UPLOADS_PER_LINK: usize = 2;
/// The most room-file uploads one node receives at once.
pub const UPLOADS_PER_NODE: usize = 16;

/// Uploads under way, per link and in all (in memory, per node): an upload beyond either cap
/// is refused (429) before its body is read, so bodies held in memory stay bounded.
#[derive(Default)]
pub struct UploadSlots {
    under_way: Mutex<HashMap<(RoomId, ParticipantId), usize>>,
}

impl UploadSlots {
    /// A slot for an upload by `member` of `room`, held until the slot is dropped; `None` when a
    /// cap is reached.
    pub fn take(self: &Arc<Self>, member: (RoomId, ParticipantId)) -> Option<UploadSlot> {
        // A poisoned lock only means another request panicked while counting; the counts are
        // still usable.
        let mut under_way = self
            .under_way
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let in_all: usize = under_way.values().sum();
        let by_member = under_way.entry(member).or_default();
        if in_all >= UPLOADS_PER_NODE || *by_member >= UPLOADS_PER_LINK {
            if *by_member == 0 {
                under_way.remove(&member);
            }
            return None;
        }
        *by_member += 1;
        Some(UploadSlot {
            slots: Arc::clone(self),
            member,
        })
    }
}

/// One upload under way; dropping it frees the slot.
pub struct UploadSlot {
    slots: Arc<UploadSlots>,
    member: (RoomId, ParticipantId),
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        let mut under_way = self
            .slots
            .under_way
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = under_way.get_mut(&self.member) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                under_way.remove(&self.member);
            }
        }
    }
}
