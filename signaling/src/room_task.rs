//! The task that owns one live [`rooms::Room`], so no lock is ever held around a room.
//!
//! The task receives requests (a connection attaches or detaches, a member's command, a back
//! office command), feeds them to the room, persists the new durable state through
//! `backoffice::rooms::room_store` **before** anything is delivered, then delivers the room's outputs
//! to the members' connections.
//!
//! **Invariant:** the room task never waits for a client. Each connection has a bounded outbox;
//! a connection whose outbox is full is dropped (the client is told `slow_consumer` when its
//! socket closes) and the room goes on.
//!
//! **Invariant:** one way out. A connection leaves the room either because the room closes it
//! (superseded, removed, meeting ended…) or through [`RoomTask::drop_connection`], whatever the
//! cause (its socket closed, its outbox was full or already closed, when an event, an `ack` or
//! the `welcome` did not fit). The room always applies the disconnect, which is saved and
//! audited like any command: presence shows the member gone and, when it was the mediator, the
//! others are held at once.
//!
//! **Invariant:** a room that lost its claim stops at once. Saves carry the epoch of this
//! node's claim; when the database refuses one because another node took the room over
//! ([`StoreError::Fenced`]), nothing was stored, the request is refused like any failed save,
//! and the task closes every connection (`bye` `server_shutdown`: the clients reconnect and
//! are redirected to the new owner) and ends.
//!
//! **Invariant:** each member has one event stream, numbered from 1. Every event a member is
//! sent is logged on the stream (a bounded log), so a client that reconnects with the last
//! `seq` it saw receives exactly the events after it: none lost, none twice.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use backoffice::platform::audit::{Action, Actor, Change, Field, NewRecord};
use backoffice::rooms::room_files;
use backoffice::rooms::room_store::{self, Serving};
use backoffice::{Db, StoreError, UnixMillis};
use rand::RngCore;
use rooms::{
    CloseReason, Command, ConnectionId, Location, Output, ParticipantId, Room, RoomError, Timestamp,
};
use sfu::Sfu;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::hub::{HubError, SignalingSettings};
use crate::protocol::{
    ByeReason, ErrorCode, NumberedCommand, Resume, ServerMessage, WireEvent, WireId, WireMember,
    WirePost, PROTOCOL_VERSION,
};

/// What a connection receives from its room.
#[derive(Debug)]
pub enum Outbound {
    /// A text frame to send as is.
    Frame(Arc<str>),
    /// Send `bye` with this reason and close.
    Close(ByeReason),
}

/// A refusal sent to a client, with its code.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The code and the Italian message for a refused room command.
    pub fn from_room_error(error: &RoomError) -> Self {
        let (code, message) = match error {
            RoomError::NotYetOpen { .. } => (
                ErrorCode::RoomNotYetOpen,
                "La stanza virtuale non è ancora aperta.",
            ),
            RoomError::Expired { .. } => (
                ErrorCode::RoomExpired,
                "La stanza virtuale è chiusa: il periodo di validità del collegamento è terminato. \
                 Per un nuovo collegamento si rivolga alla segreteria dell'organismo.",
            ),
            RoomError::InviteRevoked(_) => (
                ErrorCode::InviteRevoked,
                "Questo collegamento non è più valido. Si rivolga alla segreteria dell'organismo.",
            ),
            RoomError::RoomFull { .. } => (
                ErrorCode::RoomFull,
                "La stanza virtuale ha già il numero massimo di partecipanti collegati. \
                 Riprovi più tardi o si rivolga alla segreteria.",
            ),
            RoomError::SessionFull(_) => (
                ErrorCode::ChatFull,
                "Questa sessione ha raggiunto il numero massimo di messaggi e documenti: non se \
                 ne possono aggiungere altri.",
            ),
            RoomError::NotAllowed { .. } | RoomError::TargetIsMediator(_) => (
                ErrorCode::NotAllowed,
                "Questa operazione è riservata al mediatore.",
            ),
            _ => (ErrorCode::InvalidCommand, "Operazione non possibile in questo momento."),
        };
        // The person reads the message; the code tells programs the rest.
        Self::new(code, message)
    }

    fn message(&self, seq: Option<u64>) -> ServerMessage {
        ServerMessage::Error {
            seq,
            code: self.code,
            message: self.message.clone(),
        }
    }
}

/// A connection as it attaches to its room.
pub struct Attach {
    pub member: ParticipantId,
    pub resume: Option<Resume>,
    pub outbox: mpsc::Sender<Outbound>,
    /// Who is connecting, for the audit log.
    pub actor: Actor,
    /// Whether this connection replaces one of the member's still open (which is closed with
    /// `superseded`); without it, the attach is refused with `already_connected`. A resume of
    /// the member's current stream replaces the old connection either way: it is the same
    /// client coming back before the server noticed it had gone.
    pub take_over: bool,
}

enum Request {
    Attach {
        attach: Attach,
        reply: oneshot::Sender<Result<ConnectionId, Refusal>>,
    },
    Command {
        connection: ConnectionId,
        numbered: NumberedCommand,
    },
    Detach {
        connection: ConnectionId,
    },
    Office {
        actor: Actor,
        command: Command,
        reply: oneshot::Sender<Result<(), HubError>>,
    },
    /// A command of the edge itself on behalf of a connection (a track the SFU saw start).
    Internal {
        connection: ConnectionId,
        command: Command,
    },
    /// A page of older posts for a connection (`chat_history`), answered to it only.
    History {
        connection: ConnectionId,
        session: rooms::SessionId,
        before: rooms::PostSeq,
        limit: usize,
    },
    /// This node no longer serves the room: close every connection and stop.
    Stop,
    /// Stop and answer `true` when nobody has been connected for `idle_for`.
    UnloadIfIdle {
        idle_for: Duration,
        reply: oneshot::Sender<bool>,
    },
}

/// A live room's mailbox.
#[derive(Clone)]
pub struct RoomHandle {
    id: rooms::RoomId,
    requests: mpsc::Sender<Request>,
}

impl RoomHandle {
    /// Attaches a connection; on success the welcome (and any replay) is already in its outbox.
    pub async fn attach(&self, attach: Attach) -> Result<ConnectionId, Refusal> {
        let (reply, answer) = oneshot::channel();
        let unavailable = || Refusal::new(ErrorCode::Unavailable, "La stanza non risponde.");
        self.requests
            .send(Request::Attach { attach, reply })
            .await
            .map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }

    /// Hands a member's command to the room; the answer arrives in the outbox.
    pub async fn command(&self, connection: ConnectionId, numbered: NumberedCommand) {
        // A stopped room closes every outbox, which the connection notices.
        let _ = self
            .requests
            .send(Request::Command {
                connection,
                numbered,
            })
            .await;
    }

    /// Asks for a page of older posts of `session`; the answer arrives in the outbox.
    pub async fn history(
        &self,
        connection: ConnectionId,
        session: rooms::SessionId,
        before: rooms::PostSeq,
        limit: usize,
    ) {
        let _ = self
            .requests
            .send(Request::History {
                connection,
                session,
                before,
                limit,
            })
            .await;
    }

    /// The room's id.
    pub fn id(&self) -> rooms::RoomId {
        self.id
    }

    /// A command the edge issues for a connection (no client sequence number, no answer):
    /// `PublishTrack` when the SFU sees a track start.
    pub async fn internal(&self, connection: ConnectionId, command: Command) {
        let _ = self
            .requests
            .send(Request::Internal {
                connection,
                command,
            })
            .await;
    }

    /// Tells the room a connection is gone.
    pub async fn detach(&self, connection: ConnectionId) {
        let _ = self.requests.send(Request::Detach { connection }).await;
    }

    /// Applies a back-office command and waits for the room's answer.
    pub(crate) async fn office(&self, actor: Actor, command: Command) -> Result<(), HubError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Office {
                actor,
                command,
                reply,
            })
            .await
            .map_err(|_| HubError::Stopped)?;
        answer.await.map_err(|_| HubError::Stopped)?
    }

    /// Asks the task to close every connection and end, after what is already queued.
    pub(crate) async fn stop(&self) {
        let _ = self.requests.send(Request::Stop).await;
    }

    /// Ends the task when nobody has been connected for `idle_for`; `true` when it ended (or
    /// had already ended).
    pub(crate) async fn unload_if_idle(&self, idle_for: Duration) -> bool {
        let (reply, answer) = oneshot::channel();
        let asked = self
            .requests
            .send(Request::UnloadIfIdle { idle_for, reply })
            .await;
        asked.is_err() || answer.await.unwrap_or(true)
    }

    /// Whether both handles reach the same task.
    pub(crate) fn same_task(&self, other: &RoomHandle) -> bool {
        self.requests.same_channel(&other.requests)
    }

    /// Whether the task has ended.
    pub(crate) fn is_stopped(&self) -> bool {
        self.requests.is_closed()
    }

    /// Completes when the task has ended (and dropped its inbox).
    pub(crate) async fn stopped(&self) {
        self.requests.closed().await;
    }
}

/// One member's numbered event stream.
struct Stream {
    /// Random per room task: a stream from before a restart is recognised as gone.
    id: String,
    /// The seq of the last event put on the stream.
    seq: u64,
    log: VecDeque<(u64, Arc<str>)>,
    /// The highest command seq processed for this member (saved with the room).
    last_command_seq: u64,
}

impl Stream {
    fn new() -> Self {
        Self::after_command(0)
    }

    /// A new stream of a member whose commands up to `last_command_seq` were processed.
    fn after_command(last_command_seq: u64) -> Self {
        let mut bytes = [0_u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self {
            id: bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
            seq: 0,
            log: VecDeque::new(),
            last_command_seq,
        }
    }

    /// The logged events after `last_seq`, or `None` when some were already trimmed.
    fn since(&self, last_seq: u64) -> Option<Vec<Arc<str>>> {
        let oldest = self.log.front().map_or(self.seq + 1, |(seq, _)| *seq);
        if last_seq + 1 < oldest {
            return None;
        }
        Some(
            self.log
                .iter()
                .filter(|(seq, _)| *seq > last_seq)
                .map(|(_, frame)| frame.clone())
                .collect(),
        )
    }
}

struct Connection {
    member: ParticipantId,
    outbox: mpsc::Sender<Outbound>,
    actor: Actor,
}

/// Why a connection leaves the room without the room asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropReason {
    /// Its socket closed: the connection detached.
    Detached,
    /// Its outbox was full: the client does not read fast enough.
    Slow,
    /// Its outbox was already closed: the connection ended and its detach is on the way.
    Closed,
}

/// The owner of one live room.
pub(crate) struct RoomTask {
    room: Room,
    /// The epoch of this node's claim on the room: every save carries it.
    epoch: u64,
    /// Set when a save was refused under a newer claim: the task then ends.
    claim_lost: bool,
    db: Db,
    clock: Arc<dyn Clock>,
    settings: SignalingSettings,
    sfu: Option<Sfu>,
    connections: HashMap<ConnectionId, Connection>,
    streams: HashMap<ParticipantId, Stream>,
    next_connection: u64,
    wake_at: Option<Timestamp>,
    /// When the last connection went away (or the room was loaded).
    idle_since: tokio::time::Instant,
    /// Completes when the media plane has put the last forwarding plan in force.
    plan_applied: Option<oneshot::Receiver<()>>,
    /// Connections whose outbox refused a message, dropped once the current request is done.
    failed: Vec<(ConnectionId, DropReason)>,
}

impl RoomTask {
    /// Starts the task that owns `room`, served under `serving` (the claim's epoch and the
    /// members' last command numbers as stored); returns its mailbox.
    pub(crate) fn start(
        room: Room,
        serving: Serving,
        db: Db,
        clock: Arc<dyn Clock>,
        settings: SignalingSettings,
        sfu: Option<Sfu>,
    ) -> RoomHandle {
        let id = room.id();
        let (requests, inbox) = mpsc::channel(1024);
        let streams = serving
            .last_command_seqs
            .into_iter()
            .map(|(member, seq)| (member, Stream::after_command(seq)))
            .collect();
        let task = RoomTask {
            room,
            epoch: serving.epoch,
            claim_lost: false,
            db,
            clock,
            settings,
            sfu,
            connections: HashMap::new(),
            streams,
            next_connection: 1,
            wake_at: None,
            idle_since: tokio::time::Instant::now(),
            plan_applied: None,
            failed: Vec::new(),
        };
        tokio::spawn(task.run(inbox));
        RoomHandle { id, requests }
    }

    async fn run(mut self, mut inbox: mpsc::Receiver<Request>) {
        // The room asks to be woken (its expiry, caucus timers) through outputs.
        self.deliver_pending();
        loop {
            let sleep = self.wake_at.map(|at| {
                let now = self.clock.now().as_unix_millis();
                Duration::from_millis(at.as_unix_millis().saturating_sub(now))
            });
            let had_connections = !self.connections.is_empty();
            tokio::select! {
                request = inbox.recv() => match request {
                    Some(request) => {
                        if !self.serve(request).await {
                            break;
                        }
                    }
                    None => break,
                },
                () = async { tokio::time::sleep(sleep.unwrap_or_default()).await }, if sleep.is_some() => {
                    self.wake_at = None;
                    let before = self.room.clone();
                    self.room.handle_timeout(self.clock.now());
                    if self.persist_or_rollback(before, &Actor::system(), None).await.is_ok() {
                        self.deliver_pending();
                    }
                }
            }
            while let Some((connection, reason)) = self.failed.pop() {
                self.drop_connection(connection, reason).await;
            }
            if self.claim_lost {
                tracing::warn!(
                    room = self.room.id().get(),
                    "another node took the room over; stopping it here"
                );
                self.close_all();
                break;
            }
            if had_connections && self.connections.is_empty() {
                self.idle_since = tokio::time::Instant::now();
            }
        }
    }

    /// Serves one request; `false` when the task must end.
    async fn serve(&mut self, request: Request) -> bool {
        match request {
            Request::Attach { attach, reply } => {
                let outcome = self.attach(attach).await;
                let _ = reply.send(outcome);
            }
            Request::Command {
                connection,
                numbered,
            } => self.command(connection, numbered).await,
            Request::Detach { connection } => {
                self.drop_connection(connection, DropReason::Detached).await;
            }
            Request::History {
                connection,
                session,
                before,
                limit,
            } => self.history(connection, session, before, limit),
            Request::Internal {
                connection,
                command,
            } => {
                if let Some(actor) = self.connections.get(&connection).map(|c| c.actor.clone()) {
                    if let Err(error) = self.apply(&actor, command).await {
                        tracing::warn!(%error, "an edge command was refused by the room");
                    }
                }
            }
            Request::Office {
                actor,
                command,
                reply,
            } => {
                let outcome = self.apply(&actor, command).await;
                let _ = reply.send(outcome);
            }
            Request::Stop => {
                self.close_all();
                return false;
            }
            Request::UnloadIfIdle { idle_for, reply } => {
                let idle = self.connections.is_empty() && self.idle_since.elapsed() >= idle_for;
                let _ = reply.send(idle);
                return !idle;
            }
        }
        true
    }

    /// The room leaves this node: its connections close (their clients reconnect, to wherever
    /// the room is served next); the live state goes with it.
    fn close_all(&mut self) {
        for (_, connection) in self.connections.drain() {
            let _ = connection
                .outbox
                .try_send(Outbound::Close(ByeReason::ServerShutdown));
        }
    }

    async fn attach(&mut self, attach: Attach) -> Result<ConnectionId, Refusal> {
        let member = attach.member;
        let stream = self.streams.entry(member).or_insert_with(Stream::new);
        let resumable = attach
            .resume
            .as_ref()
            .filter(|resume| resume.stream == stream.id);
        if resumable.is_some_and(|resume| resume.last_seq > stream.seq) {
            return Err(Refusal::new(
                ErrorCode::InvalidResume,
                "Ripresa non valida: il numero di sequenza non è mai stato inviato.",
            ));
        }
        let connected = self.connections.values().any(|open| open.member == member);
        if connected && !attach.take_over && resumable.is_none() {
            return Err(Refusal::new(
                ErrorCode::AlreadyConnected,
                "Risulta già collegato alla stanza da un'altra finestra o da un altro \
                 dispositivo. Può chiudere l'altro collegamento, oppure entrare comunque da \
                 qui: l'altro collegamento verrà chiuso.",
            ));
        }
        // The welcome, the replay and the fresh view must fit the new outbox; a longer replay
        // is not offered and the client starts afresh from the view, as after a trimmed log.
        let replay = resumable
            .and_then(|resume| stream.since(resume.last_seq))
            .filter(|frames| frames.len() + 2 <= attach.outbox.max_capacity());

        let connection = ConnectionId::new(self.next_connection);
        self.next_connection += 1;
        let before = self.room.clone();
        let command = Command::Connect { member, connection };
        let record = audit_record(&command);
        self.room
            .handle(self.clock.now(), command)
            .map_err(|error| Refusal::from_room_error(&error))?;
        self.persist_or_rollback(before, &attach.actor, record)
            .await
            .map_err(|_| Refusal::new(ErrorCode::Unavailable, "Archivio non disponibile."))?;

        let snapshot = self.room.snapshot();
        let record = snapshot.members.iter().find(|record| record.id == member);
        let stream = self.streams.entry(member).or_insert_with(Stream::new);
        let welcome = ServerMessage::Welcome {
            v: PROTOCOL_VERSION,
            room: WireId(self.room.id().get()),
            member: WireMember {
                id: member.into(),
                name: record
                    .map(|record| record.display_name.expose().clone())
                    .unwrap_or_default(),
                role: record.map_or("", |record| record.role.code()),
                side: record.and_then(|record| record.side).map(rooms::Side::code),
                connected: true,
            },
            expires_at: self.room.expires_at().as_unix_millis(),
            stream: stream.id.clone(),
            seq: stream.seq,
            resumed: replay.is_some(),
            last_command_seq: stream.last_command_seq,
            ice_servers: self
                .settings
                .ice_servers
                .for_member(member, self.clock.now().as_unix_millis() / 1000),
        };
        self.connections.insert(
            connection,
            Connection {
                member,
                outbox: attach.outbox,
                actor: attach.actor,
            },
        );
        self.push(connection, Outbound::Frame(welcome.to_json().into()));
        for frame in replay.unwrap_or_default() {
            self.push(connection, Outbound::Frame(frame));
        }
        self.deliver_pending();
        Ok(connection)
    }

    /// A member may share only a file they uploaded to this room.
    async fn check_shared_file(&self, command: &Command) -> Option<Refusal> {
        let Command::ShareFile { by, file, .. } = command else {
            return None;
        };
        match room_files::uploaded_by(&self.db, self.room.id(), *by, file.as_str()).await {
            Ok(true) => None,
            Ok(false) => Some(Refusal::new(
                ErrorCode::InvalidCommand,
                "Il documento non risulta caricato da lei in questa stanza.",
            )),
            Err(error) => {
                tracing::error!(%error, "shared file lookup failed");
                Some(Refusal::new(
                    ErrorCode::Unavailable,
                    "Servizio momentaneamente non disponibile.",
                ))
            }
        }
    }

    async fn command(&mut self, connection: ConnectionId, numbered: NumberedCommand) {
        let Some(member) = self.connections.get(&connection).map(|c| c.member) else {
            return;
        };
        let seq = numbered.seq;
        let stream = self.streams.entry(member).or_insert_with(Stream::new);
        if seq <= stream.last_command_seq {
            let refusal = Refusal::new(
                ErrorCode::Replayed,
                format!(
                    "Comando già ricevuto: il numero {seq} non supera {}.",
                    stream.last_command_seq
                ),
            );
            self.send_to(connection, &refusal.message(Some(seq)));
            return;
        }
        stream.last_command_seq = seq;
        let command = match numbered.command.into_room_command(member) {
            Ok(command) => command,
            Err(error) => {
                let refusal = Refusal::new(error.code(), error.to_string());
                self.send_to(connection, &refusal.message(Some(seq)));
                return;
            }
        };
        if let Some(refusal) = self.check_shared_file(&command).await {
            self.send_to(connection, &refusal.message(Some(seq)));
            return;
        }
        let actor = self
            .connections
            .get(&connection)
            .map(|c| c.actor.clone())
            .unwrap_or_else(Actor::system);
        let starts_caucus = matches!(command, Command::StartCaucus { .. });
        match self.apply(&actor, command).await {
            Ok(()) => {
                // The ack promises the media already obey the new plan.
                if let Some(applied) = self.plan_applied.take() {
                    let _ = applied.await;
                }
                // The mediator who starts a caucus is in it at once (mediators are never held).
                let session = match self.room.location_of(member) {
                    Some(Location::InSession(session)) if starts_caucus => Some(session.get()),
                    _ => None,
                };
                self.send_to(connection, &ServerMessage::Ack { seq, session });
            }
            Err(HubError::Room(error)) => {
                self.send_to(
                    connection,
                    &Refusal::from_room_error(&error).message(Some(seq)),
                );
            }
            Err(_) => {
                let refusal = Refusal::new(ErrorCode::Unavailable, "Archivio non disponibile.");
                self.send_to(connection, &refusal.message(Some(seq)));
            }
        }
    }

    /// Answers `chat_history`: what the room lets the member read (their current session,
    /// posts they were present for), to this connection only.
    fn history(
        &mut self,
        connection: ConnectionId,
        session: rooms::SessionId,
        before: rooms::PostSeq,
        limit: usize,
    ) {
        let Some(member) = self.connections.get(&connection).map(|c| c.member) else {
            return;
        };
        let message = match self.room.history_page(member, session, before, limit) {
            Ok(page) => ServerMessage::ChatHistory {
                session: session.get(),
                posts: page.posts.iter().map(WirePost::from).collect(),
                more: page.more,
            },
            Err(error) => Refusal::from_room_error(&error).message(None),
        };
        self.send_to(connection, &message);
    }

    /// The one way a connection leaves the room without the room asking: it is forgotten here
    /// (which closes its outbox: an open connection says `slow_consumer`), and the room applies
    /// the disconnect, saved and audited. The disconnect stands even when the save fails: the
    /// connection is gone, and the room must not count on it (a mediator no longer there holds
    /// the others); the next save stores the state.
    async fn drop_connection(&mut self, connection: ConnectionId, reason: DropReason) {
        let Some(gone) = self.connections.remove(&connection) else {
            return;
        };
        // A closed outbox is a connection that already ended, not a slow one.
        if reason == DropReason::Slow {
            tracing::warn!("dropping a connection that does not keep up");
        }
        let command = Command::Disconnect {
            member: gone.member,
            connection,
        };
        let record = audit_record(&command);
        if let Err(error) = self.room.handle(self.clock.now(), command) {
            tracing::error!(%error, "the room refused a disconnect");
            return;
        }
        if let Err(error) = self.persist(&gone.actor, record).await {
            tracing::error!(%error, "a disconnect was not saved; the room goes on without it");
        }
        self.deliver_pending();
    }

    /// Feeds a command to the room, persists the result, then delivers the outputs.
    async fn apply(&mut self, actor: &Actor, command: Command) -> Result<(), HubError> {
        let before = self.room.clone();
        let record = audit_record(&command);
        let persist = !matches!(
            command,
            Command::PublishTrack { .. } | Command::UnpublishTrack { .. }
        );
        self.room.handle(self.clock.now(), command)?;
        if persist {
            self.persist_or_rollback(before, actor, record).await?;
        }
        self.deliver_pending();
        Ok(())
    }

    /// Saves the room's durable state. On failure the room goes back to `before` and its
    /// outputs are dropped: what was not stored did not happen.
    async fn persist_or_rollback(
        &mut self,
        before: Room,
        actor: &Actor,
        record: Option<(Action, Vec<Change>)>,
    ) -> Result<(), StoreError> {
        let saved = self.persist(actor, record).await;
        if let Err(error) = &saved {
            tracing::error!(%error, "room state not saved; command undone");
            self.room = before;
        }
        saved
    }

    /// Saves the room's durable state, under this node's claim and with the members' last
    /// command numbers, with the audit record of what changed it. A save refused because
    /// another node took the room over marks the claim lost.
    async fn persist(
        &mut self,
        actor: &Actor,
        record: Option<(Action, Vec<Change>)>,
    ) -> Result<(), StoreError> {
        let now = UnixMillis(i64::try_from(self.clock.now().as_unix_millis()).unwrap_or(i64::MAX));
        let entity_id = self.room.id().get().to_string();
        let audit = record.map(|(action, changes)| NewRecord {
            action,
            entity_type: "room",
            entity_id: &entity_id,
            changes,
        });
        let serving = Serving {
            epoch: self.epoch,
            last_command_seqs: self
                .streams
                .iter()
                .map(|(member, stream)| (*member, stream.last_command_seq))
                .collect(),
        };
        let saved =
            room_store::save(&self.db, actor, now, &self.room.snapshot(), &serving, audit).await;
        if matches!(saved, Err(StoreError::Fenced)) {
            self.claim_lost = true;
        }
        saved
    }

    /// Delivers every output the room has queued.
    fn deliver_pending(&mut self) {
        while let Some(output) = self.room.poll_output() {
            match output {
                Output::Notify {
                    to,
                    connection,
                    event,
                } => {
                    let stream = self.streams.entry(to).or_insert_with(Stream::new);
                    stream.seq += 1;
                    let frame: Arc<str> = ServerMessage::Event {
                        seq: stream.seq,
                        event: WireEvent::from(&event),
                    }
                    .to_json()
                    .into();
                    stream.log.push_back((stream.seq, frame.clone()));
                    while stream.log.len() > self.settings.resume_log {
                        stream.log.pop_front();
                    }
                    self.push(connection, Outbound::Frame(frame));
                }
                Output::CloseConnection {
                    connection, reason, ..
                } => {
                    if let Some(closed) = self.connections.remove(&connection) {
                        let _ = closed.outbox.try_send(Outbound::Close(bye_reason(reason)));
                    }
                }
                // Applied before the command's `ack` is sent: from then on no packet goes
                // where the new plan does not allow.
                Output::Forwarding(plan) => {
                    if let Some(sfu) = &self.sfu {
                        self.plan_applied = Some(sfu.set_plan(self.room.id(), plan));
                    }
                }
                Output::Timeout(at) => {
                    self.wake_at = Some(self.wake_at.map_or(at, |current| current.min(at)));
                }
            }
        }
    }

    fn send_to(&mut self, connection: ConnectionId, message: &ServerMessage) {
        self.push(connection, Outbound::Frame(message.to_json().into()));
    }

    /// Puts a message in a connection's outbox. A connection that cannot take it gets nothing
    /// more (its stream log keeps the events for a resume) and is dropped once the current
    /// request is done.
    fn push(&mut self, connection: ConnectionId, outbound: Outbound) {
        if self.failed.iter().any(|(failed, _)| *failed == connection) {
            return;
        }
        let Some(target) = self.connections.get(&connection) else {
            return;
        };
        let reason = match target.outbox.try_send(outbound) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => DropReason::Slow,
            Err(TrySendError::Closed(_)) => DropReason::Closed,
        };
        self.failed.push((connection, reason));
    }
}

fn bye_reason(reason: CloseReason) -> ByeReason {
    match reason {
        CloseReason::Superseded => ByeReason::Superseded,
        CloseReason::Removed => ByeReason::Removed,
        CloseReason::InviteRevoked => ByeReason::InviteRevoked,
        CloseReason::RoomExpired => ByeReason::RoomExpired,
        CloseReason::MeetingEnded => ByeReason::MeetingEnded,
    }
}

/// The audit record of a room command: what happened, never what was said.
fn audit_record(command: &Command) -> Option<(Action, Vec<Change>)> {
    let member = |id: &ParticipantId| Change::set(Field::Member, id.get().to_string());
    let session = |id: &rooms::SessionId| Change::set(Field::Session, id.get().to_string());
    Some(match command {
        Command::AddMember {
            member: id,
            role,
            side,
            ..
        } => (
            Action::RoomMemberAdded,
            vec![
                member(id),
                Change::set(Field::Role, role.code()),
                Change::set(Field::Side, side.map(rooms::Side::code).unwrap_or_default()),
            ],
        ),
        Command::RevokeInvite { member: id } => (Action::RoomInviteRevoked, vec![member(id)]),
        Command::Connect { member: id, .. } => (Action::RoomMemberConnected, vec![member(id)]),
        Command::Disconnect { member: id, .. } => {
            (Action::RoomMemberDisconnected, vec![member(id)])
        }
        Command::Admit { member: id, .. } => (Action::RoomMemberAdmitted, vec![member(id)]),
        Command::SendToWaitingRoom { member: id, .. } => {
            (Action::RoomMemberSentToWaitingRoom, vec![member(id)])
        }
        Command::Remove {
            member: id,
            revoke_invite,
            ..
        } => (
            Action::RoomMemberRemoved,
            vec![
                member(id),
                Change::set(Field::RevokeInvite, revoke_invite.to_string()),
            ],
        ),
        Command::StartCaucus { members, .. } => (
            Action::RoomCaucusStarted,
            vec![Change::set(
                Field::Members,
                members
                    .iter()
                    .map(|id| id.get().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )],
        ),
        Command::JoinSession { session: id, .. } => (Action::RoomSessionJoined, vec![session(id)]),
        Command::MoveToSession {
            member: id,
            session: to,
            ..
        } => (Action::RoomMemberMoved, vec![member(id), session(to)]),
        Command::EndCaucus { session: id, .. } => (Action::RoomCaucusEnded, vec![session(id)]),
        Command::BackToPlenary { .. } => (Action::RoomBackToPlenary, vec![]),
        Command::EndMeeting { .. } => (Action::RoomMeetingEnded, vec![]),
        Command::SetCaucusTimer {
            session: id,
            ends_at,
            ..
        } => (
            Action::RoomCaucusTimerSet,
            vec![
                session(id),
                Change::set(
                    Field::EndsAt,
                    ends_at
                        .map(|at| at.as_unix_millis().to_string())
                        .unwrap_or_default(),
                ),
            ],
        ),
        Command::Broadcast { .. } => (Action::RoomBroadcastSent, vec![]),
        Command::Chat { .. } => (Action::RoomChatPosted, vec![]),
        Command::ShareFile { file, .. } => (
            Action::RoomFileShared,
            vec![Change::set(Field::File, file.as_str())],
        ),
        Command::PublishTrack { .. } | Command::UnpublishTrack { .. } => return None,
    })
}
