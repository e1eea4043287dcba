//! One WebSocket: `hello`, then commands in and events out until either side closes.
//!
//! **Invariant:** nothing a client sends reaches a room before the client has proved who it is
//! with a valid invite token (`backoffice::rooms::access`); a malformed, unknown, oversized or too-frequent message gets a
//! typed `error` and changes nothing.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket};
use backoffice::platform::audit::Actor;
use backoffice::rooms::access::{self, AccessError, Need};
use backoffice::rooms::invites::InviteError;
use backoffice::rooms::room_store;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::hub::{Hub, HubError};
use crate::protocol::{
    ByeReason, ClientMessage, ErrorCode, MediaMessage, ProtocolError, ServerMessage,
};
use crate::room_task::{Attach, Outbound, Refusal, RoomHandle};
use sfu::{PeerEvent, PeerKey};

/// A logged-in back-office user. Only rooms of their own organism (body) are open to them:
/// another body's room is refused as if it did not exist. One linked to a member of the room
/// (typically the mediator) joins as that member; one who `may_observe` (segreteria,
/// administrators) otherwise joins as the room's segreteria observer: a member like the others,
/// admitted by the mediator, who sees and hears only the session they are in.
#[derive(Debug, Clone)]
pub struct Staff {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    /// The user's organism; the room's case must belong to the same one.
    pub organism_id: Option<String>,
    pub may_observe: bool,
}

impl Staff {
    /// The staff member's stable member id in every room: derived from the user id, so that
    /// joining again finds the same member.
    fn member(&self) -> rooms::ParticipantId {
        let digest = Sha256::digest(self.user_id.as_bytes());
        let mut first = [0_u8; 8];
        first.copy_from_slice(&digest[..8]);
        rooms::ParticipantId::new((u64::from_be_bytes(first) >> 1).max(1))
    }

    fn actor(&self, ip: Option<&str>) -> Actor {
        Actor {
            user_id: Some(self.user_id.clone()),
            label: self.username.clone(),
            ip: ip.map(str::to_owned),
        }
    }
}

/// Serves one upgraded WebSocket until it closes. `staff` is the request's logged-in
/// back-office user, if any (used only by a `hello` that names a room).
pub async fn serve(
    mut socket: WebSocket,
    hub: Arc<Hub>,
    ip: Option<IpAddr>,
    staff: Option<Staff>,
    shutdown: watch::Receiver<bool>,
) {
    let ip = ip.map(|ip| ip.to_string());
    let Some(Greeted {
        handle,
        member,
        resume,
        by_login,
        take_over,
    }) = hello(&mut socket, &hub, staff.as_ref(), ip.as_deref()).await
    else {
        return;
    };
    let (outbox, inbox) = mpsc::channel(hub.settings().outbox_capacity);
    let actor = match &staff {
        Some(staff) if by_login => staff.actor(ip.as_deref()),
        _ => Actor::room_member(member.get(), ip),
    };
    let attached = handle
        .attach(Attach {
            member,
            resume,
            outbox,
            actor,
            // A personal link always takes over: the link is the person's, wherever opened.
            take_over: take_over || !by_login,
        })
        .await;
    let connection = match attached {
        Ok(connection) => connection,
        Err(refusal) => {
            refuse(&mut socket, &refusal, None).await;
            return;
        }
    };
    let (media_events, media_inbox) = mpsc::unbounded_channel();
    let mut session = Session {
        socket,
        hub: &hub,
        handle: handle.clone(),
        connection,
        member,
        inbox,
        media_events,
        media_inbox,
        limiter: RateLimiter::new(
            hub.settings().messages_per_second,
            hub.settings().message_burst,
        ),
        last_heard: Instant::now(),
    };
    session.run(shutdown).await;
    if let Some(sfu) = hub.sfu() {
        sfu.close(session.peer_key());
    }
    handle.detach(connection).await;
}

/// Who a `hello` proved to be, and where.
struct Greeted {
    handle: RoomHandle,
    member: rooms::ParticipantId,
    resume: Option<crate::protocol::Resume>,
    /// Joined from a back-office login rather than a personal link.
    by_login: bool,
    /// The `hello` asked to take over a connection still open.
    take_over: bool,
}

/// Waits for `hello`, checks the token (or the staff session) and finds the room.
async fn hello(
    socket: &mut WebSocket,
    hub: &Hub,
    staff: Option<&Staff>,
    ip: Option<&str>,
) -> Option<Greeted> {
    let first = tokio::time::timeout(hub.settings().hello_timeout, next_text(socket)).await;
    let text = match first {
        Ok(Some(Ok(text))) => text,
        Ok(Some(Err(error))) => {
            let refusal = Refusal {
                code: error.code(),
                message: error.to_string(),
            };
            refuse(socket, &refusal, None).await;
            return None;
        }
        Ok(None) => return None,
        Err(_) => {
            let refusal = Refusal {
                code: ErrorCode::HelloRequired,
                message: "Nessun messaggio `hello` ricevuto in tempo.".to_owned(),
            };
            refuse(socket, &refusal, None).await;
            return None;
        }
    };
    let (token, room, resume, take_over) = match ClientMessage::parse(&text) {
        Ok(ClientMessage::Hello {
            token,
            room,
            resume,
            take_over,
            ..
        }) => (token, room, resume, take_over),
        Ok(_) => {
            let refusal = Refusal {
                code: ErrorCode::HelloRequired,
                message: "Il primo messaggio deve essere `hello`.".to_owned(),
            };
            refuse(socket, &refusal, None).await;
            return None;
        }
        Err(error) => {
            let refusal = Refusal {
                code: error.code(),
                message: error.to_string(),
            };
            refuse(socket, &refusal, None).await;
            return None;
        }
    };
    let by_login = token.is_none();
    let resolved = match (token, room) {
        (Some(token), _) => access::by_link(hub.db(), &token, hub.clock().now(), Need::Enter)
            .await
            .map(|granted| (granted.room, granted.member_id())),
        (None, room) => match (staff, room) {
            (Some(staff), Some(room)) => {
                let room = rooms::RoomId::new(room.0);
                match staff_member(hub, staff, room, ip).await {
                    Ok(member) => Ok((room, member)),
                    Err(refusal) => {
                        refuse(socket, &refusal, None).await;
                        return None;
                    }
                }
            }
            _ => {
                let refusal = Refusal {
                    code: ErrorCode::NotLoggedIn,
                    message: "Per entrare senza collegamento personale occorre aver effettuato \
                              l'accesso al gestionale."
                        .to_owned(),
                };
                refuse(socket, &refusal, None).await;
                return None;
            }
        },
    };
    let (room, member) = match resolved {
        Ok(found) => found,
        Err(error) => {
            let refusal = match error {
                AccessError::Closed(error) => Refusal::from_room_error(&error),
                AccessError::NotAdmitted => Refusal::new(
                    ErrorCode::NotAllowed,
                    "Occorre prima essere ammessi dal mediatore.",
                ),
                AccessError::Link(InviteError::Malformed | InviteError::Unknown) => Refusal {
                    code: ErrorCode::InvalidToken,
                    message: "Il collegamento non è valido. Controlli di aver aperto l'indirizzo \
                              completo ricevuto per email, oppure si rivolga alla segreteria."
                        .to_owned(),
                },
                AccessError::Link(InviteError::Revoked) => Refusal {
                    code: ErrorCode::InviteRevoked,
                    message: "Questo collegamento è stato revocato. Si rivolga alla segreteria \
                              dell'organismo."
                        .to_owned(),
                },
                AccessError::Link(InviteError::Store(error)) => {
                    tracing::error!(%error, "invite lookup failed");
                    Refusal {
                        code: ErrorCode::Unavailable,
                        message: "Servizio momentaneamente non disponibile.".to_owned(),
                    }
                }
            };
            refuse(socket, &refusal, None).await;
            return None;
        }
    };
    match hub.room(room).await {
        Ok(handle) => Some(Greeted {
            handle,
            member,
            resume,
            by_login,
            take_over,
        }),
        Err(HubError::Elsewhere(url)) => {
            let ws_url = format!(
                "{}/ws/v1",
                url.trim_end_matches('/').replacen("http", "ws", 1)
            );
            let bye = ServerMessage::Bye {
                reason: ByeReason::Redirect,
                url: Some(ws_url),
            };
            let _ = socket.send(Message::Text(bye.to_json().into())).await;
            let _ = socket.send(Message::Close(None)).await;
            None
        }
        Err(error) => {
            let refusal = match error {
                HubError::RoomNotFound => Refusal {
                    code: ErrorCode::RoomNotFound,
                    message: "La stanza virtuale non esiste più.".to_owned(),
                },
                other => {
                    tracing::error!(error = %other, "room could not be loaded");
                    Refusal {
                        code: ErrorCode::Unavailable,
                        message: "Servizio momentaneamente non disponibile.".to_owned(),
                    }
                }
            };
            refuse(socket, &refusal, None).await;
            None
        }
    }
}

/// The member a logged-in user joins `room` as: the member linked to their account, or else
/// (when they may observe) the room's segreteria observer, added on first use.
async fn staff_member(
    hub: &Hub,
    staff: &Staff,
    room: rooms::RoomId,
    ip: Option<&str>,
) -> Result<rooms::ParticipantId, Refusal> {
    let unavailable = |error: &dyn std::fmt::Display| {
        tracing::error!(%error, "staff could not join");
        Refusal {
            code: ErrorCode::Unavailable,
            message: "Servizio momentaneamente non disponibile.".to_owned(),
        }
    };
    let not_found = || Refusal {
        code: ErrorCode::RoomNotFound,
        message: "La stanza virtuale non esiste.".to_owned(),
    };
    // Another body's room answers exactly like an unknown one: no existence oracle.
    match room_store::room_case(hub.db(), room).await {
        Ok(Some(case)) if case.organism_id == staff.organism_id => {}
        Ok(_) => return Err(not_found()),
        Err(error) => return Err(unavailable(&error)),
    }
    match room_store::member_of_user(hub.db(), room, &staff.user_id).await {
        Ok(Some(member)) => return Ok(member),
        Ok(None) => {}
        Err(error) => return Err(unavailable(&error)),
    }
    if !staff.may_observe {
        return Err(Refusal {
            code: ErrorCode::NotLoggedIn,
            message: "Il suo account non partecipa a questa stanza: usi il collegamento \
                      personale ricevuto per email."
                .to_owned(),
        });
    }
    let member = staff.member();
    let actor = staff.actor(ip);
    let command = rooms::Command::AddMember {
        member,
        role: rooms::Role::SegreteriaObserver,
        side: None,
        display_name: rooms::Redacted::new(staff.display_name.clone()),
    };
    match hub.office_command(room, actor, command).await {
        Ok(()) | Err(HubError::Room(rooms::RoomError::MemberExists(_))) => Ok(member),
        Err(HubError::Room(error)) => Err(Refusal::from_room_error(&error)),
        Err(HubError::RoomNotFound) => Err(not_found()),
        Err(error) => Err(unavailable(&error)),
    }
}

/// The next text frame, skipping control frames; `None` when the socket closed.
async fn next_text(socket: &mut WebSocket) -> Option<Result<String, ProtocolError>> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) => return Some(Ok(text.to_string())),
            Ok(Message::Binary(_)) => {
                return Some(Err(ProtocolError::Malformed(
                    "binary frames are not used".to_owned(),
                )))
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
}

/// Sends the error and a `bye`, then closes.
async fn refuse(socket: &mut WebSocket, refusal: &Refusal, seq: Option<u64>) {
    let error = ServerMessage::Error {
        seq,
        code: refusal.code,
        message: refusal.message.clone(),
    };
    let reason = match refusal.code {
        ErrorCode::RoomExpired => ByeReason::RoomExpired,
        ErrorCode::InviteRevoked => ByeReason::InviteRevoked,
        _ => ByeReason::Refused,
    };
    let _ = socket.send(Message::Text(error.to_json().into())).await;
    close(socket, reason).await;
}

async fn close(socket: &mut WebSocket, reason: ByeReason) {
    let bye = ServerMessage::Bye { reason, url: None };
    let _ = socket.send(Message::Text(bye.to_json().into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// A token bucket: `burst` messages at once, refilled at `per_second`.
struct RateLimiter {
    per_second: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            refilled: Instant::now(),
        }
    }

    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Session<'a> {
    socket: WebSocket,
    hub: &'a Hub,
    handle: RoomHandle,
    connection: rooms::ConnectionId,
    member: rooms::ParticipantId,
    inbox: mpsc::Receiver<Outbound>,
    /// Events of this connection's peer in the SFU.
    media_events: mpsc::UnboundedSender<PeerEvent>,
    media_inbox: mpsc::UnboundedReceiver<PeerEvent>,
    limiter: RateLimiter,
    last_heard: Instant,
}

impl Session<'_> {
    fn peer_key(&self) -> PeerKey {
        PeerKey {
            room: self.handle.id(),
            connection: self.connection,
        }
    }

    async fn run(&mut self, mut shutdown: watch::Receiver<bool>) {
        let settings = self.hub.settings().clone();
        let mut heartbeat = tokio::time::interval(settings.heartbeat_interval);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                outbound = self.inbox.recv() => match outbound {
                    Some(Outbound::Frame(frame)) => {
                        if self.socket.send(Message::Text(frame.as_ref().into())).await.is_err() {
                            return;
                        }
                    }
                    Some(Outbound::Close(reason)) => return close(&mut self.socket, reason).await,
                    // The room dropped this connection because its outbox was full.
                    None => return close(&mut self.socket, ByeReason::SlowConsumer).await,
                },
                Some(event) = self.media_inbox.recv() => {
                    if !self.media_event(event).await {
                        return close(&mut self.socket, ByeReason::MediaFailed).await;
                    }
                },
                incoming = self.socket.recv() => {
                    self.last_heard = Instant::now();
                    match incoming {
                        Some(Ok(Message::Text(text))) => self.received(&text).await,
                        Some(Ok(Message::Binary(_))) => {
                            let error = ProtocolError::Malformed("binary frames are not used".to_owned());
                            self.send(&ServerMessage::Error { seq: None, code: error.code(), message: error.to_string() }).await;
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                    }
                },
                _ = heartbeat.tick() => {
                    if self.last_heard.elapsed() > settings.heartbeat_timeout {
                        return close(&mut self.socket, ByeReason::HeartbeatTimeout).await;
                    }
                    if self.socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                        return;
                    }
                },
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return close(&mut self.socket, ByeReason::ServerShutdown).await;
                    }
                },
            }
        }
    }

    /// Acts on an event of the SFU peer; `false` when the peer is gone.
    async fn media_event(&mut self, event: PeerEvent) -> bool {
        match event {
            PeerEvent::Answer(sdp) => self.send(&ServerMessage::SdpAnswer { sdp }).await,
            PeerEvent::Offer(sdp) => self.send(&ServerMessage::SdpOffer { sdp }).await,
            PeerEvent::TrackPublished { track, kind } => {
                let command = rooms::Command::PublishTrack {
                    by: self.member,
                    track,
                    kind,
                };
                self.handle.internal(self.connection, command).await;
            }
            PeerEvent::TrackUnpublished(track) => {
                let command = rooms::Command::UnpublishTrack {
                    by: self.member,
                    track,
                };
                self.handle.internal(self.connection, command).await;
            }
            PeerEvent::Rejected(reason) => {
                let message = ServerMessage::Error {
                    seq: None,
                    code: ErrorCode::MediaRefused,
                    message: format!("Negoziazione audio/video non riuscita: {reason}"),
                };
                self.send(&message).await;
            }
            PeerEvent::ActiveSpeaker(member) => {
                let message = ServerMessage::ActiveSpeaker {
                    member: member.into(),
                };
                self.send(&message).await;
            }
            PeerEvent::Closed => return false,
        }
        true
    }

    /// Hands a negotiation message to the SFU; `false` when this node has no media plane.
    fn media(&mut self, message: MediaMessage) -> bool {
        let Some(sfu) = self.hub.sfu() else {
            return false;
        };
        let key = self.peer_key();
        let sent = match message {
            MediaMessage::SdpOffer { sdp, screen_mids } => sfu.offer(
                key,
                self.member,
                sdp,
                screen_mids,
                self.media_events.clone(),
            ),
            MediaMessage::SdpAnswer { sdp } => sfu.answer(key, sdp),
            MediaMessage::IceCandidate { candidate, .. } => sfu.candidate(key, candidate),
            MediaMessage::ReceivePreferences { max_bitrate, tiles } => {
                let tiles = tiles
                    .into_iter()
                    .map(|(track, height)| (rooms::TrackId::new(track.0), height))
                    .collect();
                sfu.preferences(key, max_bitrate, tiles)
            }
        };
        sent.is_ok()
    }

    async fn received(&mut self, text: &str) {
        if !self.limiter.allow() {
            let message = ServerMessage::Error {
                seq: None,
                code: ErrorCode::RateLimited,
                message: "Troppi messaggi: rallenti, per favore.".to_owned(),
            };
            return self.send(&message).await;
        }
        match ClientMessage::parse(text) {
            Ok(ClientMessage::Command(numbered)) => {
                self.handle.command(self.connection, numbered).await
            }
            Ok(ClientMessage::Media(message)) => {
                if !self.media(message) {
                    let message = ServerMessage::Error {
                        seq: None,
                        code: ErrorCode::MediaUnavailable,
                        message: "Audio e video non sono disponibili su questo server.".to_owned(),
                    };
                    self.send(&message).await;
                }
            }
            Ok(ClientMessage::Ping) => self.send(&ServerMessage::Pong).await,
            Ok(ClientMessage::ChatHistory {
                session,
                before_seq,
                limit,
            }) => {
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                self.handle
                    .history(
                        self.connection,
                        rooms::SessionId::new(session),
                        rooms::PostSeq::new(before_seq),
                        limit,
                    )
                    .await
            }
            Ok(ClientMessage::Hello { .. }) => {
                let message = ServerMessage::Error {
                    seq: None,
                    code: ErrorCode::Malformed,
                    message: "`hello` va inviato una sola volta.".to_owned(),
                };
                self.send(&message).await;
            }
            Err(error) => {
                let message = ServerMessage::Error {
                    seq: None,
                    code: error.code(),
                    message: error.to_string(),
                };
                self.send(&message).await;
            }
        }
    }

    async fn send(&mut self, message: &ServerMessage) {
        let _ = self
            .socket
            .send(Message::Text(message.to_json().into()))
            .await;
    }
}
