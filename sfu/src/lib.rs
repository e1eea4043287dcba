//! The media plane: one UDP port for every peer, RTP forwarded only along the forwarding plan
//! that `rooms` computes.
//!
//! Built on str0m (sans-IO WebRTC): one task owns every peer connection of the node and the
//! one UDP socket; a change of who-sees-whom is a plain function call.
//!
//! # Layout
//! - this file: the [`Sfu`] handle the signaling edge talks to, and the types it exchanges.
//! - `engine`: the task that owns the socket and the peers, and forwards media; it reads the
//!   clock once per turn and feeds that time to the pure modules below.
//! - `rewrite`: the renumbering of forwarded packets, so that each subscriber sees one
//!   continuous stream across simulcast switches and pauses.
//! - `layers`: the simulcast layer each subscriber receives of each video, from the tile
//!   height and bitrate cap the client declares and the downlink estimate; switched on a
//!   keyframe.
//! - `downlink`: each subscriber's downlink estimate from the loss it reports (the loss-based
//!   half of Google Congestion Control).
//! - `keyframes`: keyframe requests (PLI) to a publisher, at most one per layer every 250 ms;
//!   one refused for coming too soon is owed, not dropped.
//! - `tcp`: ICE-TCP connections (the fallback where UDP is blocked), framed into datagrams.
//!
//! `rewrite`, `layers`, `downlink` and `keyframes` are pure: no I/O, no clock (the time is an
//! input), each with its own unit tests.
//!
//! **Invariant** (confidentiality, with `rooms`): a media packet of track T reaches peer P only
//! if the room's current forwarding plan lists P's connection as a receiver of T. The plan is
//! read on every packet from [`Sfu::set_plan`]'s table, which the room task writes before it
//! acknowledges the command that changed it: once a caucus starts, no further packet crosses.
//!
//! **Negotiation policy:** the client offers first (its own tracks: microphone, camera,
//! screen); from then on the server offers whenever the tracks a peer should receive change
//! (one offer at a time, send-only m-lines, stream id = the publisher's member id, track id =
//! the track id). A client offer while a server offer is pending wins: the server drops its
//! offer and makes it again after answering.
//!
//! **API boundary:** SDP and ICE candidates go in and out as strings; tracks are identified by
//! `rooms::TrackId`, peers by room and connection. No JSON, no HTTP, no database.

mod downlink;
mod engine;
mod keyframes;
mod layers;
mod rewrite;
mod tcp;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rooms::{ConnectionId, ForwardingPlan, ParticipantId, RoomId, TrackId, TrackKind};
use tokio::sync::mpsc;

/// Where the media plane listens and what it tells clients.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The UDP address to bind (port 0 picks a free one).
    pub udp: SocketAddr,
    /// The TCP address for ICE-TCP (port 0 picks a free one); `None` turns ICE-TCP off.
    pub tcp: Option<SocketAddr>,
    /// The address announced to clients when the server is behind a 1:1 NAT; the bound
    /// address otherwise.
    pub public_ip: Option<IpAddr>,
    /// A peer nothing is heard from for this long (no ICE check, RTCP or media) is closed.
    pub silence_timeout: Duration,
}

/// One peer connection: a member's WebSocket connection in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerKey {
    pub room: RoomId,
    pub connection: ConnectionId,
}

/// What the media plane tells the signaling edge about one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// The answer to the client's offer.
    Answer(String),
    /// A server offer (the tracks to receive changed); the client answers it.
    Offer(String),
    /// The client started sending a track; the room should know (it decides who gets it).
    TrackPublished { track: TrackId, kind: TrackKind },
    /// The client stopped sending a track (a screen share ended).
    TrackUnpublished(TrackId),
    /// The loudest member this peer can hear changed (only members whose audio the room's
    /// plan lets this peer receive are considered).
    ActiveSpeaker(ParticipantId),
    /// The peer connection failed or timed out (no ICE consent): the member is gone.
    Closed,
    /// A client message could not be used (bad SDP, answer without offer…).
    Rejected(String),
}

/// Why a client's SDP was refused.
#[derive(Debug, thiserror::Error)]
pub enum SfuError {
    #[error("the media plane has stopped")]
    Stopped,
}

/// Media figures of one room's current peers, refreshed every second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomMediaStats {
    /// Peer connections.
    pub peers: u64,
    /// Tracks being published.
    pub tracks: u64,
    /// Packets, bytes, NACKs and keyframe requests of the room's current peers.
    pub traffic: MediaTotals,
    /// The worst fraction of packets lost, over every stream of the room (0 to 1).
    pub loss: f64,
    /// The longest round-trip time to a peer, in seconds.
    pub rtt_seconds: f64,
    /// The largest interarrival jitter of an incoming stream, in RTP clock units.
    pub jitter: u64,
}

/// Media traffic counts: of a room's current peers, or of the node since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaTotals {
    /// RTP packets and bytes received from publishers.
    pub packets_in: u64,
    pub bytes_in: u64,
    /// RTP packets and bytes sent to subscribers.
    pub packets_out: u64,
    pub bytes_out: u64,
    /// NACKs the subscribers sent (packets they asked again).
    pub nacks: u64,
    /// NACKs sent to the publishers (packets lost on the way in, asked again).
    pub nacks_sent: u64,
    /// Keyframe requests (PLI and FIR) sent to the publishers.
    pub keyframe_requests: u64,
}

impl std::ops::AddAssign for MediaTotals {
    fn add_assign(&mut self, more: MediaTotals) {
        self.packets_in += more.packets_in;
        self.bytes_in += more.bytes_in;
        self.packets_out += more.packets_out;
        self.bytes_out += more.bytes_out;
        self.nacks += more.nacks;
        self.nacks_sent += more.nacks_sent;
        self.keyframe_requests += more.keyframe_requests;
    }
}

/// The media figures `/metrics` shows.
#[derive(Debug, Clone, Default)]
pub struct MediaStats {
    pub rooms: HashMap<RoomId, RoomMediaStats>,
    /// Totals of the node since it started (they never go down).
    pub totals: MediaTotals,
}

/// The shared forwarding table: the current plan of every room, written by the room tasks,
/// read on every packet.
#[derive(Default)]
pub(crate) struct Plans(Mutex<HashMap<RoomId, Arc<ForwardingPlan>>>);

impl Plans {
    pub(crate) fn get(&self, room: RoomId) -> Option<Arc<ForwardingPlan>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&room)
            .cloned()
    }

    fn set(&self, room: RoomId, plan: ForwardingPlan) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(room, Arc::new(plan));
    }
}

pub(crate) enum Command {
    Offer {
        key: PeerKey,
        member: ParticipantId,
        sdp: String,
        screen_mids: Vec<String>,
        events: mpsc::UnboundedSender<PeerEvent>,
    },
    Answer {
        key: PeerKey,
        sdp: String,
    },
    Candidate {
        key: PeerKey,
        candidate: String,
    },
    Close {
        key: PeerKey,
    },
    Preferences {
        key: PeerKey,
        max_bitrate: Option<u64>,
        tiles: Vec<(TrackId, u32)>,
    },
    PlanChanged {
        room: RoomId,
        /// Told once the plan is in force and the packets written before it are on the wire.
        applied: Option<tokio::sync::oneshot::Sender<()>>,
    },
}

/// The handle to the node's media plane.
#[derive(Clone)]
pub struct Sfu {
    commands: mpsc::UnboundedSender<Command>,
    plans: Arc<Plans>,
    stats: Arc<Mutex<MediaStats>>,
    local_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
}

/// Bytes of kernel buffer asked for the media socket, each way. Every peer's media goes
/// through this one socket: a burst of video for a full node overflows the default (about
/// 200 KiB) before the task reads it. The kernel caps the figure at `net.core.rmem_max` /
/// `wmem_max` (raise them on a busy node; README, Operations).
const MEDIA_SOCKET_BUFFER: usize = 4 << 20;

/// The UDP socket of the media plane, bound to `address`, with large buffers.
fn media_socket(address: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    // A smaller buffer than asked for is not an error: the node still works, it drops sooner.
    let _ = socket.set_recv_buffer_size(MEDIA_SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(MEDIA_SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

impl Sfu {
    /// Binds the UDP socket (and the ICE-TCP listener) and starts the media task.
    pub async fn start(config: SfuConfig) -> std::io::Result<Sfu> {
        let udp = media_socket(config.udp)?;
        let local_addr = udp.local_addr()?;
        let announce = |bound: SocketAddr| {
            SocketAddr::new(config.public_ip.unwrap_or(bound.ip()), bound.port())
        };
        let (tcp_keepalive, tcp_events) = mpsc::channel(1024);
        let tcp_addr = match config.tcp {
            Some(address) => {
                let listener = tokio::net::TcpListener::bind(address).await?;
                let bound = listener.local_addr()?;
                tokio::spawn(tcp::accept(listener, tcp_keepalive.clone()));
                Some(bound)
            }
            None => None,
        };
        let transports = engine::Transports {
            udp,
            udp_announced: announce(local_addr),
            tcp_announced: tcp_addr.map(announce),
            tcp_events,
            _tcp_keepalive: tcp_keepalive,
        };
        let plans = Arc::new(Plans::default());
        let stats = Arc::new(Mutex::new(MediaStats::default()));
        let (commands, inbox) = mpsc::unbounded_channel();
        let engine = engine::Engine::new(
            transports,
            config.silence_timeout,
            plans.clone(),
            stats.clone(),
        );
        tokio::spawn(engine.run(inbox));
        Ok(Sfu {
            commands,
            plans,
            stats,
            local_addr,
            tcp_addr,
        })
    }

    /// The media figures as of the last refresh (every second).
    pub fn stats(&self) -> MediaStats {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The UDP address the media plane is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The TCP address ICE-TCP listens on, if it is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// A client's offer: opens the peer (or renegotiates it). `screen_mids` names the
    /// m-lines that carry a screen share rather than a camera. The answer, and every later
    /// event of this peer, arrive on `events`.
    pub fn offer(
        &self,
        key: PeerKey,
        member: ParticipantId,
        sdp: String,
        screen_mids: Vec<String>,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<(), SfuError> {
        self.send(Command::Offer {
            key,
            member,
            sdp,
            screen_mids,
            events,
        })
    }

    /// The client's answer to the last server offer.
    pub fn answer(&self, key: PeerKey, sdp: String) -> Result<(), SfuError> {
        self.send(Command::Answer { key, sdp })
    }

    /// A trickled ICE candidate from the client (`candidate:…` line).
    pub fn candidate(&self, key: PeerKey, candidate: String) -> Result<(), SfuError> {
        self.send(Command::Candidate { key, candidate })
    }

    /// What the client wants to receive: at most `max_bitrate` bits per second in all, and
    /// each listed video in a tile this many pixels high. The SFU picks simulcast layers
    /// accordingly (the lowest that fills each tile, lowered further to fit the bitrate).
    pub fn preferences(
        &self,
        key: PeerKey,
        max_bitrate: Option<u64>,
        tiles: Vec<(TrackId, u32)>,
    ) -> Result<(), SfuError> {
        self.send(Command::Preferences {
            key,
            max_bitrate,
            tiles,
        })
    }

    /// The member's connection ended: close its peer.
    pub fn close(&self, key: PeerKey) {
        let _ = self.send(Command::Close { key });
    }

    /// The room's new forwarding plan. Takes effect for media at once (the next packet is
    /// checked against it); negotiation and keyframe requests for new receivers follow. The
    /// returned receiver completes when the media task has also sent out every packet it had
    /// written before the change: after that, nothing crosses where the plan forbids.
    pub fn set_plan(
        &self,
        room: RoomId,
        plan: ForwardingPlan,
    ) -> tokio::sync::oneshot::Receiver<()> {
        self.plans.set(room, plan);
        let (applied, done) = tokio::sync::oneshot::channel();
        let _ = self.send(Command::PlanChanged {
            room,
            applied: Some(applied),
        });
        done
    }

    fn send(&self, command: Command) -> Result<(), SfuError> {
        self.commands.send(command).map_err(|_| SfuError::Stopped)
    }
}
