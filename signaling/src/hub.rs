//! The registry of the live rooms on this node: each is loaded from the database on first use
//! and served by its own task ([`crate::room_task`]) until it is idle, claimed by another node,
//! or the server stops.
//!
//! **Invariant:** the registry's lock is never held across I/O. Each room has a slot of its
//! own, held while that room is loaded (its claim in Redis, its state from the database):
//! callers for the same room wait for one load, callers for other rooms do not wait at all.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use backoffice::mediation::scheduling;
use backoffice::platform::audit::Actor;
use backoffice::rooms::room_store;
use backoffice::Db;
use rooms::{Command, ParticipantId, Redacted, Role, Room, RoomError, RoomId, Side};
use sfu::Sfu;

use crate::clock::Clock;
use crate::cluster::{Claim, ClusterError, Ownership};
use crate::ice::IceServers;
use crate::room_task::{RoomHandle, RoomTask};

/// Tunable limits of the signaling edge.
#[derive(Debug, Clone)]
pub struct SignalingSettings {
    /// Messages waiting for one connection before it is dropped as too slow.
    pub outbox_capacity: usize,
    /// Events kept per member for resuming after a dropped connection.
    pub resume_log: usize,
    /// How often the server pings an idle connection.
    pub heartbeat_interval: Duration,
    /// Silence after which a connection is considered dead.
    pub heartbeat_timeout: Duration,
    /// Time a new connection has to send `hello`.
    pub hello_timeout: Duration,
    /// A room nobody has been connected to for this long leaves memory (it stays in the
    /// database and comes back on the next connection).
    pub idle_unload: Duration,
    /// The STUN/TURN servers handed out in `welcome`.
    pub ice_servers: IceServers,
    /// Sustained messages per second a client may send.
    pub messages_per_second: u32,
    /// Messages a client may send in a burst above the sustained rate.
    pub message_burst: u32,
}

impl Default for SignalingSettings {
    fn default() -> Self {
        Self {
            outbox_capacity: 256,
            resume_log: 1024,
            heartbeat_interval: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(45),
            hello_timeout: Duration::from_secs(10),
            idle_unload: Duration::from_secs(10 * 60),
            ice_servers: IceServers::default(),
            messages_per_second: 10,
            message_burst: 40,
        }
    }
}

/// Why a room could not be reached or a back-office command failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("no such room")]
    RoomNotFound,
    #[error("the stored room is inconsistent: {0}")]
    Inconsistent(#[from] rooms::Inconsistency),
    #[error(transparent)]
    Store(#[from] backoffice::StoreError),
    #[error(transparent)]
    Room(#[from] RoomError),
    #[error("the room task has stopped")]
    Stopped,
    /// Another node serves the room; clients reconnect there.
    #[error("the room is served by {0}")]
    Elsewhere(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// A room's place in the registry; its lock is held while the room is loaded or unloaded.
type Slot = Arc<tokio::sync::Mutex<SlotState>>;

#[derive(Default)]
enum SlotState {
    /// Just made: the first caller loads the room.
    #[default]
    Empty,
    /// Served by a task on this node.
    Live(RoomHandle),
    /// Taken out of the registry (unloaded, stopped, or its load failed): whoever waited on
    /// this slot looks the room up again.
    Retired,
}

/// The registry of live rooms on this node.
pub struct Hub {
    db: Db,
    clock: Arc<dyn Clock>,
    settings: SignalingSettings,
    ownership: Ownership,
    sfu: Option<Sfu>,
    /// Never held across an `.await`.
    rooms: std::sync::Mutex<HashMap<RoomId, Slot>>,
}

impl Hub {
    /// A hub; call [`Hub::maintain`] once to renew claims and unload idle rooms.
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        settings: SignalingSettings,
        ownership: Ownership,
        sfu: Option<Sfu>,
    ) -> Self {
        Self {
            db,
            clock,
            settings,
            ownership,
            sfu,
            rooms: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The node's media plane, if it has one.
    pub fn sfu(&self) -> Option<&Sfu> {
        self.sfu.as_ref()
    }

    /// Looks after the live rooms until the hub is dropped: keeps this node's heartbeat and
    /// renews its claims (with several nodes) and unloads rooms nobody has been connected to
    /// for [`SignalingSettings::idle_unload`], giving up their claims. A room whose claim was
    /// lost (this node was cut off longer than a claim lasts) is stopped here, and its clients
    /// reconnect to the new owner. Returns the task, to abort it (which stops the heartbeat
    /// too, as a crash would).
    pub fn maintain(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let every = self
            .ownership
            .renew_every()
            .unwrap_or(self.settings.idle_unload)
            .min(self.settings.idle_unload);
        let hub = Arc::downgrade(self);
        let heartbeat = self.ownership.heartbeat_every().map(|beat_every| {
            let ownership = self.ownership.clone();
            async move {
                let mut beats = tokio::time::interval(beat_every);
                loop {
                    beats.tick().await;
                    if let Err(error) = ownership.heartbeat().await {
                        tracing::error!(%error, "node heartbeat not sent");
                    }
                }
            }
        });
        let maintenance = async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let Some(hub) = hub.upgrade() else {
                    return;
                };
                hub.unload_idle().await;
                hub.renew_claims().await;
            }
        };
        // One task: the heartbeat stops with the maintenance (the hub dropped, or aborted).
        tokio::spawn(async move {
            match heartbeat {
                Some(heartbeat) => {
                    tokio::select! {
                        () = heartbeat => {}
                        () = maintenance => {}
                    }
                }
                None => maintenance.await,
            }
        })
    }

    /// The registry, locked (a panic elsewhere cannot leave the map half-changed: every change
    /// is one insert or remove).
    fn registry(&self) -> MutexGuard<'_, HashMap<RoomId, Slot>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The rooms' slots, for going through them without holding the registry.
    fn slots(&self) -> Vec<(RoomId, Slot)> {
        self.registry()
            .iter()
            .map(|(id, slot)| (*id, slot.clone()))
            .collect()
    }

    /// Takes `slot` out of the registry (unless it was replaced already) and marks it retired,
    /// under the slot's own lock (`state`), so that nobody picks up a room that is stopping.
    fn retire(&self, id: RoomId, slot: &Slot, state: &mut SlotState) {
        let mut rooms = self.registry();
        if rooms
            .get(&id)
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            rooms.remove(&id);
        }
        *state = SlotState::Retired;
    }

    /// The live rooms' handles, skipping slots in use (a room loading or being looked up):
    /// those are not idle, and their claims are fresh.
    fn live_handles(&self) -> Vec<(RoomId, Slot, RoomHandle)> {
        self.slots()
            .into_iter()
            .filter_map(|(id, slot)| {
                let handle = match &*slot.try_lock().ok()? {
                    SlotState::Live(handle) => handle.clone(),
                    SlotState::Empty | SlotState::Retired => return None,
                };
                Some((id, slot, handle))
            })
            .collect()
    }

    async fn unload_idle(&self) {
        let mut unloaded = Vec::new();
        for (id, slot, handle) in self.live_handles() {
            // The slot stays locked while the room answers, so nobody picks up the handle of a
            // room that is stopping; requests already queued are served first (FIFO inbox).
            let mut state = slot.lock().await;
            if !matches!(&*state, SlotState::Live(current) if current.same_task(&handle)) {
                continue;
            }
            if handle.unload_if_idle(self.settings.idle_unload).await {
                self.retire(id, &slot, &mut state);
                unloaded.push(id);
            }
        }
        if let Err(error) = self.ownership.release(&unloaded).await {
            tracing::error!(%error, "claims of unloaded rooms not released; they expire");
        }
    }

    async fn renew_claims(&self) {
        let live = self.live_handles();
        let ids: Vec<RoomId> = live.iter().map(|(id, _, _)| *id).collect();
        let lost = match self.ownership.renew(&ids).await {
            Ok(lost) => lost,
            Err(error) => return tracing::error!(%error, "room claims not renewed"),
        };
        for (id, slot, handle) in live {
            if !lost.contains(&id) {
                continue;
            }
            tracing::warn!(
                room = id.get(),
                "room claimed by another node; stopping it here"
            );
            let mut state = slot.lock().await;
            if matches!(&*state, SlotState::Live(current) if current.same_task(&handle)) {
                self.retire(id, &slot, &mut state);
                handle.stop().await;
            }
        }
    }

    /// How many rooms are live (or loading) on this node.
    pub async fn live_rooms(&self) -> usize {
        self.registry().len()
    }

    /// On a clean stop: stops every live room and waits for its task to end (each serves
    /// what is already queued first, saves included), so that nothing is written after the
    /// database closes; then gives up the claims on them.
    pub async fn release_all(&self) {
        let slots: Vec<(RoomId, Slot)> = self.registry().drain().collect();
        let mut stopped = Vec::new();
        for (id, slot) in slots {
            // Waits for a load in progress, whose room is then stopped too.
            let mut state = slot.lock().await;
            if let SlotState::Live(handle) = std::mem::replace(&mut *state, SlotState::Retired) {
                handle.stop().await;
                stopped.push((id, handle));
            }
        }
        for (_, handle) in &stopped {
            handle.stopped().await;
        }
        let live: Vec<RoomId> = stopped.iter().map(|(id, _)| *id).collect();
        if let Err(error) = self.ownership.release(&live).await {
            tracing::error!(%error, "room claims not released; they expire by themselves");
        }
    }

    /// The limits in force.
    pub fn settings(&self) -> &SignalingSettings {
        &self.settings
    }

    /// The database (the connection resolves invites through it).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The live room, loaded from the database and started on first use; with several nodes,
    /// [`HubError::Elsewhere`] when another node serves it.
    pub async fn room(&self, id: RoomId) -> Result<RoomHandle, HubError> {
        loop {
            let slot = self.registry().entry(id).or_default().clone();
            let mut state = slot.lock().await;
            match &*state {
                SlotState::Live(handle) if !handle.is_stopped() => return Ok(handle.clone()),
                // Unloaded meanwhile: the registry has a new slot for the room.
                SlotState::Retired => continue,
                // A task that ended by itself (it panicked) is replaced.
                SlotState::Empty | SlotState::Live(_) => {}
            }
            return match self.load(id).await {
                Ok(handle) => {
                    *state = SlotState::Live(handle.clone());
                    Ok(handle)
                }
                Err(error) => {
                    self.retire(id, &slot, &mut state);
                    Err(error)
                }
            };
        }
    }

    /// Claims the room for this node under a new epoch, takes it over in the database under
    /// that epoch, loads it and starts its task.
    async fn load(&self, id: RoomId) -> Result<RoomHandle, HubError> {
        let stored_epoch = room_store::stored_epoch(&self.db, id)
            .await?
            .ok_or(HubError::RoomNotFound)?;
        let epoch = match self.ownership.claim(id, stored_epoch).await? {
            Claim::Mine { epoch } => epoch,
            Claim::Elsewhere(url) => return Err(HubError::Elsewhere(url)),
        };
        let (snapshot, serving) = room_store::load_to_serve(&self.db, id, epoch)
            .await?
            .ok_or(HubError::RoomNotFound)?;
        let room = Room::restore(snapshot)?;
        Ok(RoomTask::start(
            room,
            serving,
            self.db.clone(),
            self.clock.clone(),
            self.settings.clone(),
            self.sfu.clone(),
        ))
    }

    /// Applies a back-office command (add a member, revoke an invite) to the room, live or not.
    pub async fn office_command(
        &self,
        id: RoomId,
        actor: Actor,
        command: Command,
    ) -> Result<(), HubError> {
        self.room(id).await?.office(actor, command).await
    }

    /// Adds a person to a room, live or not, under a new member id, which it returns: the one
    /// way in for a new member (an invitation from the back office, the demo room). The room
    /// saves and audits the addition and tells the connected members.
    pub async fn add_member(
        &self,
        id: RoomId,
        actor: Actor,
        role: Role,
        side: Option<Side>,
        display_name: String,
    ) -> Result<ParticipantId, HubError> {
        let member = scheduling::new_member_id();
        let command = Command::AddMember {
            member,
            role,
            side,
            display_name: Redacted::new(display_name),
        };
        self.office_command(id, actor, command).await?;
        Ok(member)
    }
}
