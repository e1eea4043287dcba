//! The task that owns the UDP socket and every peer connection of the node.
//!
//! It feeds datagrams and time to the str0m instances (RTP mode), forwards each incoming RTP
//! packet to the peers the room's plan allows, renumbered for each (see `rewrite`), negotiates
//! send-only m-lines for newly allowed tracks, and asks publishers for a keyframe when someone
//! starts (or resumes) receiving their video.
//! ICE-TCP connections (see `tcp`) deliver their frames here too and are answered the same way.
//!
//! The media decisions are pure state machines of their own, which this task feeds and obeys:
//! the simulcast layer each subscriber receives (`layers`), its downlink estimate
//! (`downlink`), and the pacing of keyframe requests (`keyframes`). The task reads the clock
//! once per turn of its loop and gives that time to all of them and to str0m.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rooms::{ParticipantId, RoomId, TrackId, TrackKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Ssrc, Vp8Descriptor};
use str0m::stats::{MediaEgressStats, MediaIngressStats};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::downlink::{DownlinkEstimate, StreamReport};
use crate::keyframes::{KeyframePacing, OWED_RETRY_INTERVAL};
use crate::layers::{choose_layers, Admission, LayerChoice, Layers, Wanted};
use crate::rewrite::{Renumbering, SourcePacket, Verdict};
use crate::tcp::{Link, TcpEvent};
use crate::{Command, MediaStats, MediaTotals, PeerEvent, PeerKey, Plans, RoomMediaStats};

/// Datagrams read in one go after the socket wakes the task, before the peers are polled.
const RECEIVE_BATCH: usize = 64;
/// The longest the task sleeps when no peer asks for an earlier wake-up.
const IDLE_WAKE: Duration = Duration::from_millis(100);
/// How often the loudest speaker is looked for.
const SPEAKER_INTERVAL: Duration = Duration::from_millis(300);
/// The smoothed loudness (0–127, 127 - level in -dBov) above which someone is speaking.
const SPEAKING_LOUDNESS: f32 = 60.0;
/// How often str0m reports statistics, and `/metrics` figures are refreshed.
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// How often peers are checked for silence.
const SILENCE_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// The latest cumulative figures of one stream of a peer.
#[derive(Debug, Clone, Copy, Default)]
struct StreamFigures {
    packets: u64,
    bytes: u64,
    /// NACKs received from the remote side (outgoing streams).
    nacks: u64,
    /// NACKs sent to the remote side (incoming streams).
    nacks_sent: u64,
    keyframe_requests: u64,
    loss: f32,
    rtt: Option<Duration>,
    jitter: u32,
}

impl From<&MediaIngressStats> for StreamFigures {
    fn from(stats: &MediaIngressStats) -> Self {
        Self {
            packets: stats.packets,
            bytes: stats.bytes,
            // On an incoming stream, the keyframe requests and NACKs are the ones we sent.
            nacks: 0,
            nacks_sent: stats.nacks,
            keyframe_requests: stats.plis + stats.firs,
            loss: stats.loss.unwrap_or(0.0),
            rtt: stats.rtt,
            jitter: stats.jitter,
        }
    }
}

impl From<&MediaEgressStats> for StreamFigures {
    fn from(stats: &MediaEgressStats) -> Self {
        Self {
            packets: stats.packets,
            bytes: stats.bytes,
            nacks: stats.nacks,
            nacks_sent: 0,
            keyframe_requests: 0,
            loss: stats.loss.unwrap_or(0.0),
            rtt: stats.rtt,
            jitter: 0,
        }
    }
}

/// The state of one track a peer should receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outgoing {
    /// Needs an m-line: goes into the next server offer.
    ToOpen,
    /// In an offer the client has not answered yet.
    Negotiating(Mid),
    /// Negotiated: media can be written to this mid.
    Open(Mid),
}

/// A published track and where it comes from.
struct TrackSource {
    publisher: PeerKey,
    member: ParticipantId,
    mid: Mid,
    kind: TrackKind,
    /// The keyframe requests made to the publisher, and those owed.
    keyframes: KeyframePacing,
    /// Whether NACKs are on for this incoming video (see [`Engine::ask_for_losses`]).
    nack_on: bool,
    /// Simulcast layers and their bitrates; none without simulcast.
    layers: Layers,
    /// Smoothed loudness of an audio track, from the audio level header extension.
    loudness: f32,
}

struct Peer {
    member: ParticipantId,
    rtc: Rtc,
    events: mpsc::UnboundedSender<PeerEvent>,
    pending: Option<SdpPendingOffer>,
    screen_mids: Vec<String>,
    /// Incoming m-lines and the track each carries.
    published: HashMap<Mid, TrackId>,
    /// Tracks this peer should receive (now or earlier) and their negotiation state.
    outgoing: HashMap<TrackId, Outgoing>,
    /// M-lines of tracks that ended (a screen share stopped): made inactive in the next offer.
    retiring: Vec<Mid>,
    /// The tracks the plan allowed at the last plan change, to find the newly allowed ones.
    allowed: HashSet<TrackId>,
    /// Latest figures per incoming and outgoing stream.
    ingress: HashMap<(Mid, Option<Rid>), StreamFigures>,
    egress: HashMap<(Mid, Option<Rid>), StreamFigures>,
    /// The most this peer wants to receive, bits per second (declared by the client).
    max_bitrate: Option<u64>,
    /// The height of the tile each video is shown in (declared by the client).
    tile_heights: HashMap<TrackId, u32>,
    /// The simulcast layer received of each simulcast track.
    layers: HashMap<TrackId, LayerChoice>,
    /// The last active speaker told to this peer.
    speaker: Option<ParticipantId>,
    /// When a datagram of this peer last arrived (or the peer was created).
    last_heard: Instant,
    /// The downlink estimate, from the loss the peer reports (see
    /// [`Engine::estimate_downlinks`]).
    downlink: DownlinkEstimate,
    /// When str0m wants this peer's next `Input::Timeout` (from its last `Output::Timeout`).
    next_timeout: Instant,
    /// The m-line and layer of each incoming SSRC (looked up once).
    sources: HashMap<Ssrc, (Mid, Option<Rid>)>,
    /// How the packets of each track this peer receives are renumbered for it.
    renumbering: HashMap<TrackId, Renumbering>,
}

impl Peer {
    fn emit(&self, event: PeerEvent) {
        let _ = self.events.send(event);
    }
}

/// How the media task reaches its clients.
pub(crate) struct Transports {
    pub(crate) udp: UdpSocket,
    /// The UDP address announced in the host candidate.
    pub(crate) udp_announced: SocketAddr,
    /// The ICE-TCP address announced in the passive TCP candidate, if TCP is on.
    pub(crate) tcp_announced: Option<SocketAddr>,
    pub(crate) tcp_events: mpsc::Receiver<TcpEvent>,
    /// Keeps `tcp_events` open when no listener feeds it.
    pub(crate) _tcp_keepalive: mpsc::Sender<TcpEvent>,
}

/// What woke the media task.
enum Wakeup {
    /// A datagram arrived on the UDP socket: its length and sender (`None`: reading failed).
    Datagram(Option<(usize, SocketAddr)>),
    Tcp(TcpEvent),
    Command(Command),
    /// A str0m timer, an owed keyframe request or the idle wake-up.
    Timer,
}

pub(crate) struct Engine {
    transports: Transports,
    /// Open ICE-TCP connections by client address.
    tcp_links: HashMap<SocketAddr, Link>,
    /// A peer that sends nothing (no ICE check, no RTCP, no media) for this long is gone.
    silence_timeout: Duration,
    plans: Arc<Plans>,
    peers: HashMap<PeerKey, Peer>,
    /// Remote addresses already matched to a peer (the fast path of demultiplexing).
    by_address: HashMap<(Protocol, SocketAddr), PeerKey>,
    tracks: HashMap<TrackId, TrackSource>,
    next_track: u64,
    stats: Arc<Mutex<MediaStats>>,
    /// The totals of peers already gone, so that node totals never go down.
    retired: MediaTotals,
    stats_refreshed: Instant,
    speakers_checked: Instant,
    silence_checked: Instant,
    /// Peers given input or written to since they were last drained: only these (and those
    /// whose timer is due) are polled, so a packet costs its publisher and its receivers, not
    /// every peer of the node.
    dirty: Vec<PeerKey>,
    /// Whether some track owes a keyframe request (see [`KeyframePacing`]).
    keyframes_owed: bool,
}

impl Engine {
    pub(crate) fn new(
        transports: Transports,
        silence_timeout: Duration,
        plans: Arc<Plans>,
        stats: Arc<Mutex<MediaStats>>,
    ) -> Self {
        let now = Instant::now();
        Self {
            transports,
            tcp_links: HashMap::new(),
            silence_timeout,
            plans,
            peers: HashMap::new(),
            by_address: HashMap::new(),
            tracks: HashMap::new(),
            next_track: 1,
            stats,
            retired: MediaTotals::default(),
            stats_refreshed: now,
            speakers_checked: now,
            silence_checked: now,
            dirty: Vec::new(),
            keyframes_owed: false,
        }
    }

    /// The task's loop. A turn handles what woke the task, does the periodic work that is
    /// due and polls the peers; the clock is read once per turn, and everything done in the
    /// turn is given that time.
    pub(crate) async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0_u8; 2000];
        let mut wakeup = Wakeup::Timer;
        loop {
            let now = Instant::now();
            match wakeup {
                Wakeup::Datagram(received) => {
                    if let Some((len, source)) = received {
                        let datagram = buf.get(..len).unwrap_or_default();
                        self.receive(now, Protocol::Udp, source, datagram);
                    }
                    // Whatever else is waiting is read now, before the peers are polled: one
                    // wake-up and one polling round for a burst instead of one per datagram.
                    for _ in 1..RECEIVE_BATCH {
                        let Ok((len, source)) = self.transports.udp.try_recv_from(&mut buf) else {
                            break;
                        };
                        let datagram = buf.get(..len).unwrap_or_default();
                        self.receive(now, Protocol::Udp, source, datagram);
                    }
                }
                Wakeup::Tcp(event) => self.tcp_event(now, event),
                Wakeup::Command(command) => self.command(now, command),
                Wakeup::Timer => {}
            }
            self.periodic_work(now);
            let wake = self.poll_all(now);
            wakeup = tokio::select! {
                received = self.transports.udp.recv_from(&mut buf) => {
                    Wakeup::Datagram(received.ok())
                }
                Some(event) = self.transports.tcp_events.recv() => Wakeup::Tcp(event),
                command = inbox.recv() => match command {
                    Some(command) => Wakeup::Command(command),
                    None => return,
                },
                () = tokio::time::sleep_until(wake.into()) => Wakeup::Timer,
            };
        }
    }

    /// The work done every turn, and at intervals: owed keyframe requests, silent peers, the
    /// active speakers, layer bitrates, downlink estimates and statistics.
    fn periodic_work(&mut self, now: Instant) {
        self.request_owed_keyframes(now);
        let mut ran = false;
        if now.duration_since(self.silence_checked) >= SILENCE_CHECK_INTERVAL {
            self.silence_checked = now;
            self.end_silent_peers(now);
            ran = true;
        }
        if now.duration_since(self.speakers_checked) >= SPEAKER_INTERVAL {
            self.speakers_checked = now;
            self.announce_speakers();
            ran = true;
        }
        let since = now.duration_since(self.stats_refreshed);
        if since >= STATS_INTERVAL {
            self.stats_refreshed = now;
            self.measure_layers(now, since);
            self.publish_stats();
            ran = true;
        }
        if ran {
            // The periodic work may have touched any peer.
            self.touch_all();
        }
    }

    /// Asks again for the keyframes that were refused for coming too soon; those still too
    /// soon stay owed.
    fn request_owed_keyframes(&mut self, now: Instant) {
        if !std::mem::take(&mut self.keyframes_owed) {
            return;
        }
        let owed: Vec<(TrackId, Option<Rid>)> = self
            .tracks
            .iter_mut()
            .flat_map(|(track, source)| {
                source
                    .keyframes
                    .take_owed()
                    .map(|layer| (*track, layer))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (track, layer) in owed {
            self.request_layer_keyframe(now, track, layer);
        }
    }

    /// Marks every peer to be polled (after work that may have touched any of them).
    fn touch_all(&mut self) {
        self.dirty.extend(self.peers.keys().copied());
    }

    /// Tells each peer who is speaking loudest among the members it can hear, when that
    /// changes. Only audio the room's plan lets the peer receive counts: a peer never learns
    /// that someone in another session speaks.
    fn announce_speakers(&mut self) {
        for peer in self.peers.values_mut() {
            let loudest = peer
                .allowed
                .iter()
                .filter_map(|track| self.tracks.get(track))
                .filter(|source| source.kind == TrackKind::Audio)
                .filter(|source| source.loudness >= SPEAKING_LOUDNESS)
                .max_by(|a, b| a.loudness.total_cmp(&b.loudness))
                .map(|source| source.member);
            if let Some(member) = loudest.filter(|member| peer.speaker != Some(*member)) {
                peer.speaker = Some(member);
                peer.emit(PeerEvent::ActiveSpeaker(member));
            }
        }
    }

    /// Measures each simulcast layer's bitrate over the last interval, then lets every peer
    /// choose its layers again.
    fn measure_layers(&mut self, now: Instant, elapsed: Duration) {
        for source in self.tracks.values_mut() {
            source.layers.measure(elapsed);
        }
        self.estimate_downlinks(now);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for key in keys {
            self.choose_layers(now, key);
        }
    }

    /// Estimates each subscriber's downlink from the loss it reports on the streams it is
    /// receiving (RTCP receiver reports; see [`DownlinkEstimate`]). `choose_layers` keeps the
    /// layers within the estimate.
    fn estimate_downlinks(&mut self, now: Instant) {
        for peer in self.peers.values_mut() {
            let sent: u64 = peer
                .layers
                .iter()
                .filter_map(|(track, choice)| {
                    let source = self.tracks.get(track)?;
                    source.layers.measured(choice.current()?)
                })
                .sum();
            let streams = peer.egress.iter().map(|(stream, figures)| StreamReport {
                stream: *stream,
                packets: figures.packets,
                loss: figures.loss,
            });
            peer.downlink.estimate(now, streams, sent);
        }
    }

    /// Writes the figures `/metrics` reads: per room (current peers) and node totals.
    fn publish_stats(&mut self) {
        let mut rooms: HashMap<RoomId, RoomMediaStats> = HashMap::new();
        let mut totals = self.retired;
        for (key, peer) in &self.peers {
            let room = rooms.entry(key.room).or_default();
            room.peers += 1;
            room.tracks += peer.published.len() as u64;
            let contribution = peer_totals(peer);
            totals += contribution;
            room.traffic += contribution;
            for figures in peer.ingress.values().chain(peer.egress.values()) {
                room.loss = room.loss.max(f64::from(figures.loss));
                let rtt = figures.rtt.map_or(0.0, |rtt| rtt.as_secs_f64());
                room.rtt_seconds = room.rtt_seconds.max(rtt);
                room.jitter = room.jitter.max(u64::from(figures.jitter));
            }
        }
        *self
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = MediaStats { rooms, totals };
    }

    /// Disconnects the peers nothing was heard from for the silence timeout: a client that
    /// vanished without a word (network gone, device off). Browsers send ICE consent checks
    /// and RTCP every few seconds even with microphone and camera off, so silence is death.
    fn end_silent_peers(&mut self, now: Instant) {
        for peer in self.peers.values_mut() {
            if peer.rtc.is_alive() && now.duration_since(peer.last_heard) >= self.silence_timeout {
                tracing::info!("media peer silent for too long: closed");
                peer.rtc.disconnect();
            }
        }
    }

    fn tcp_event(&mut self, now: Instant, event: TcpEvent) {
        match event {
            TcpEvent::Opened { remote, link } => {
                self.tcp_links.insert(remote, link);
            }
            TcpEvent::Frame { remote, frame } => self.receive(now, Protocol::Tcp, remote, &frame),
            TcpEvent::Closed { remote } => {
                self.tcp_links.remove(&remote);
                self.by_address.remove(&(Protocol::Tcp, remote));
            }
        }
    }

    fn receive(&mut self, now: Instant, proto: Protocol, source: SocketAddr, datagram: &[u8]) {
        let Ok(contents) = datagram.try_into() else {
            return;
        };
        // The destination is the address of our candidate, as the client addressed it (the
        // announced one, which differs from the bound one behind a 1:1 NAT).
        let destination = match proto {
            Protocol::Udp => self.transports.udp_announced,
            _ => match self.transports.tcp_announced {
                Some(address) => address,
                None => return,
            },
        };
        let input = Input::Receive(
            now,
            Receive {
                proto,
                source,
                destination,
                contents,
            },
        );
        let known = self
            .by_address
            .get(&(proto, source))
            .copied()
            .filter(|key| {
                self.peers
                    .get(key)
                    .is_some_and(|peer| peer.rtc.accepts(&input))
            });
        let key = known.or_else(|| {
            self.peers
                .iter()
                .find(|(_, peer)| peer.rtc.accepts(&input))
                .map(|(key, _)| *key)
        });
        let Some(key) = key else {
            return;
        };
        self.by_address.insert((proto, source), key);
        self.dirty.push(key);
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.last_heard = now;
            if let Err(error) = peer.rtc.handle_input(input) {
                tracing::warn!(%error, "media input refused: peer closed");
                peer.rtc.disconnect();
            }
        }
        // In RTP mode str0m holds one received packet until it is polled: poll now, before
        // the next datagram (a closed peer stays dirty and is removed by `poll_all`).
        self.drain(now, key, &mut Vec::new());
    }

    fn command(&mut self, now: Instant, command: Command) {
        // Commands are rare (offers, answers, plan changes): poll everyone afterwards.
        self.touch_all();
        match command {
            Command::Offer {
                key,
                member,
                sdp,
                screen_mids,
                events,
            } => self.offer(now, key, member, &sdp, screen_mids, events),
            Command::Answer { key, sdp } => self.answer(now, key, &sdp),
            Command::Candidate { key, candidate } => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    let line = candidate.trim_start_matches("a=");
                    match Candidate::from_sdp_string(line) {
                        Ok(candidate) => peer.rtc.add_remote_candidate(candidate),
                        Err(_) => {
                            peer.emit(PeerEvent::Rejected("invalid ICE candidate".to_owned()))
                        }
                    }
                }
            }
            Command::Close { key } => self.remove(key),
            Command::Preferences {
                key,
                max_bitrate,
                tiles,
            } => self.preferences(now, key, max_bitrate, tiles),
            Command::PlanChanged { room, applied } => {
                self.plan_changed(now, room);
                // Packets written before the change leave now, before the room acknowledges.
                self.poll_all(now);
                if let Some(applied) = applied {
                    let _ = applied.send(());
                }
            }
        }
    }

    fn offer(
        &mut self,
        now: Instant,
        key: PeerKey,
        member: ParticipantId,
        sdp: &str,
        screen_mids: Vec<String>,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) {
        let offer = match SdpOffer::from_sdp_string(sdp) {
            Ok(offer) => offer,
            Err(error) => {
                let _ = events.send(PeerEvent::Rejected(format!("invalid SDP offer: {error}")));
                return;
            }
        };
        if !self.peers.contains_key(&key) {
            let mut rtc = Rtc::builder()
                .set_ice_lite(true)
                // Packets are forwarded as they come, not re-packetised frames.
                .set_rtp_mode(true)
                .clear_codecs()
                .enable_opus(true, false)
                .enable_vp8(true)
                .set_stats_interval(Some(STATS_INTERVAL))
                .build(now);
            let tcp = self.transports.tcp_announced.map(|address| {
                Candidate::builder()
                    .tcp()
                    .host(address)
                    .tcptype(TcpType::Passive)
                    .build()
            });
            let candidates = std::iter::once(Candidate::host(self.transports.udp_announced, "udp"))
                .chain(tcp)
                .collect::<Result<Vec<_>, _>>();
            match candidates {
                Ok(candidates) => {
                    for candidate in candidates {
                        rtc.add_local_candidate(candidate);
                    }
                }
                Err(error) => {
                    let _ =
                        events.send(PeerEvent::Rejected(format!("no local candidate: {error}")));
                    return;
                }
            }
            self.peers.insert(
                key,
                Peer {
                    member,
                    rtc,
                    events: events.clone(),
                    pending: None,
                    screen_mids: Vec::new(),
                    published: HashMap::new(),
                    outgoing: HashMap::new(),
                    retiring: Vec::new(),
                    allowed: HashSet::new(),
                    ingress: HashMap::new(),
                    egress: HashMap::new(),
                    max_bitrate: None,
                    tile_heights: HashMap::new(),
                    layers: HashMap::new(),
                    speaker: None,
                    last_heard: now,
                    downlink: DownlinkEstimate::default(),
                    next_timeout: now,
                    sources: HashMap::new(),
                    renumbering: HashMap::new(),
                },
            );
        }
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.events = events;
        peer.screen_mids = screen_mids;
        // A client offer wins over a pending server offer, which is made again later.
        if peer.pending.take().is_some() {
            for state in peer.outgoing.values_mut() {
                if matches!(state, Outgoing::Negotiating(_)) {
                    *state = Outgoing::ToOpen;
                }
            }
        }
        match peer.rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => peer.emit(PeerEvent::Answer(answer.to_sdp_string())),
            Err(error) => peer.emit(PeerEvent::Rejected(format!("offer refused: {error}"))),
        }
        self.plan_changed(now, key.room);
    }

    fn answer(&mut self, now: Instant, key: PeerKey, sdp: &str) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let Some(pending) = peer.pending.take() else {
            peer.emit(PeerEvent::Rejected(
                "no offer is waiting for an answer".to_owned(),
            ));
            return;
        };
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(answer) => answer,
            Err(error) => {
                peer.emit(PeerEvent::Rejected(format!("invalid SDP answer: {error}")));
                return;
            }
        };
        if let Err(error) = peer.rtc.sdp_api().accept_answer(pending, answer) {
            peer.emit(PeerEvent::Rejected(format!("answer refused: {error}")));
            return;
        }
        let mut opened = Vec::new();
        for (track, state) in peer.outgoing.iter_mut() {
            if let Outgoing::Negotiating(mid) = *state {
                *state = Outgoing::Open(mid);
                opened.push(*track);
            }
        }
        let allowed: Vec<TrackId> = opened
            .into_iter()
            .filter(|track| peer.allowed.contains(track))
            .collect();
        for track in allowed {
            self.request_keyframe(now, track);
        }
        self.negotiate(key);
    }

    fn remove(&mut self, key: PeerKey) {
        if let Some(mut peer) = self.peers.remove(&key) {
            let gone = peer_totals(&peer);
            self.retired += gone;
            peer.rtc.disconnect();
            self.by_address.retain(|_, owner| *owner != key);
            self.tracks.retain(|_, source| source.publisher != key);
        }
    }

    /// Brings every peer of `room` in line with the room's current plan: new receivers get
    /// m-lines and a keyframe.
    fn plan_changed(&mut self, now: Instant, room: RoomId) {
        let plan = self.plans.get(room);
        let keys: Vec<PeerKey> = self
            .peers
            .keys()
            .filter(|key| key.room == room)
            .copied()
            .collect();
        let mut keyframes = Vec::new();
        for key in &keys {
            let Some(peer) = self.peers.get_mut(key) else {
                continue;
            };
            let now_allowed: HashSet<TrackId> = plan
                .iter()
                .flat_map(|plan| plan.tracks())
                .filter(|entry| self.tracks.contains_key(&entry.track))
                .filter(|entry| {
                    entry
                        .receivers
                        .iter()
                        .any(|r| r.connection == key.connection)
                })
                .map(|entry| entry.track)
                .collect();
            for track in &now_allowed {
                match peer.outgoing.get(track) {
                    None => {
                        peer.outgoing.insert(*track, Outgoing::ToOpen);
                    }
                    Some(Outgoing::Open(_)) if !peer.allowed.contains(track) => {
                        keyframes.push(*track)
                    }
                    Some(_) => {}
                }
            }
            for stopped in peer.allowed.difference(&now_allowed) {
                if let Some(renumbering) = peer.renumbering.get_mut(stopped) {
                    renumbering.pause();
                }
            }
            peer.allowed = now_allowed;
        }
        for track in keyframes {
            self.request_keyframe(now, track);
        }
        for key in keys {
            self.choose_layers(now, key);
            self.negotiate(key);
        }
    }

    /// Sends a server offer for the tracks waiting for an m-line, unless one is pending.
    fn negotiate(&mut self, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.pending.is_some() || !peer.rtc.is_alive() {
            return;
        }
        let waiting: Vec<TrackId> = peer
            .outgoing
            .iter()
            .filter(|(_, state)| **state == Outgoing::ToOpen)
            .map(|(track, _)| *track)
            .collect();
        if waiting.is_empty() && peer.retiring.is_empty() {
            return;
        }
        let mut api = peer.rtc.sdp_api();
        for mid in peer.retiring.drain(..) {
            api.set_direction(mid, Direction::Inactive);
        }
        let mut added = Vec::new();
        for track in waiting {
            let Some(source) = self.tracks.get(&track) else {
                continue;
            };
            let kind = match source.kind {
                TrackKind::Audio => MediaKind::Audio,
                TrackKind::Video | TrackKind::ScreenShare => MediaKind::Video,
            };
            // The track id of a screen share says so: the client shows it large.
            let track_label = match source.kind {
                TrackKind::ScreenShare => format!("screen-{}", track.get()),
                TrackKind::Audio | TrackKind::Video => track.get().to_string(),
            };
            let mid = api.add_media(
                kind,
                Direction::SendOnly,
                Some(source.member.get().to_string()),
                Some(track_label),
                None,
            );
            added.push((track, mid));
        }
        let Some((offer, pending)) = api.apply() else {
            return;
        };
        for (track, mid) in added {
            peer.outgoing.insert(track, Outgoing::Negotiating(mid));
        }
        peer.pending = Some(pending);
        peer.emit(PeerEvent::Offer(offer.to_sdp_string()));
    }

    /// Asks the publisher of `track` for a keyframe (PLI) of every layer, paced (see
    /// [`KeyframePacing`]).
    fn request_keyframe(&mut self, now: Instant, track: TrackId) {
        let layers: Vec<Option<Rid>> = match self.tracks.get(&track) {
            Some(source) if !source.layers.rids().is_empty() => {
                source.layers.rids().iter().copied().map(Some).collect()
            }
            Some(_) => vec![None],
            None => return,
        };
        for layer in layers {
            self.request_layer_keyframe(now, track, layer);
        }
    }

    /// Asks the publisher of `track` for a keyframe of one layer (`None`: no simulcast).
    fn request_layer_keyframe(&mut self, now: Instant, track: TrackId, layer: Option<Rid>) {
        let Some(source) = self.tracks.get_mut(&track) else {
            return;
        };
        if source.kind == TrackKind::Audio {
            return;
        }
        if !source.keyframes.may_request(layer, now) {
            self.keyframes_owed = true;
            return;
        }
        let Some(publisher) = self.peers.get_mut(&source.publisher) else {
            return;
        };
        if let Some(stream) = publisher
            .rtc
            .direct_api()
            .stream_rx_by_mid(source.mid, layer)
        {
            stream.request_keyframe(KeyframeRequestKind::Pli);
            source.keyframes.requested(layer, now);
        }
        self.dirty.push(source.publisher);
    }

    /// Chooses the simulcast layer `key` receives of each simulcast track it may receive (see
    /// [`choose_layers`]). A new target layer is asked for a keyframe; the switch happens on
    /// it.
    fn choose_layers(&mut self, now: Instant, key: PeerKey) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let wanted: Vec<Wanted<'_>> = peer
            .allowed
            .iter()
            .filter_map(|track| {
                Some(Wanted {
                    track: *track,
                    layers: &self.tracks.get(track)?.layers,
                    tile_height: peer.tile_heights.get(track).copied(),
                })
            })
            .collect();
        let chosen = choose_layers(&wanted, peer.max_bitrate, peer.downlink.cap());
        let mut keyframes = Vec::new();
        for (track, rid) in chosen {
            if peer.layers.entry(track).or_default().aim(rid) {
                keyframes.push((track, rid));
            }
        }
        for (track, rid) in keyframes {
            self.request_layer_keyframe(now, track, Some(rid));
        }
    }

    /// The client's receive preferences: a bitrate cap, and tile heights per track.
    fn preferences(
        &mut self,
        now: Instant,
        key: PeerKey,
        max_bitrate: Option<u64>,
        tiles: Vec<(TrackId, u32)>,
    ) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.max_bitrate = max_bitrate;
        peer.tile_heights = tiles.into_iter().collect();
        self.choose_layers(now, key);
    }

    /// Gives due timers their `Input::Timeout`, drains the output of every peer that has any
    /// (until none is left: draining one peer may write to others); returns when the task
    /// must wake next.
    fn poll_all(&mut self, now: Instant) -> Instant {
        for (key, peer) in &mut self.peers {
            if peer.next_timeout <= now && peer.rtc.is_alive() {
                let _ = peer.rtc.handle_input(Input::Timeout(now));
                self.dirty.push(*key);
            }
        }
        let mut dead = Vec::new();
        while !self.dirty.is_empty() {
            let round: HashSet<PeerKey> = std::mem::take(&mut self.dirty).into_iter().collect();
            for key in round {
                self.drain(now, key, &mut dead);
            }
        }
        for key in dead {
            if let Some(peer) = self.peers.get(&key) {
                peer.emit(PeerEvent::Closed);
            }
            self.remove(key);
        }
        // Owed keyframe requests are retried soon after the interval allows them.
        let first_wake = if self.keyframes_owed {
            now + OWED_RETRY_INTERVAL
        } else {
            now + IDLE_WAKE
        };
        self.peers
            .values()
            .map(|peer| peer.next_timeout)
            .fold(first_wake, Instant::min)
    }

    /// Polls peer `key` until str0m has nothing more to do now; a closed peer goes to `dead`.
    fn drain(&mut self, now: Instant, key: PeerKey, dead: &mut Vec<PeerKey>) {
        // Whether the peer was given its due timeout during this drain.
        let mut timed_out = false;
        while let Some(peer) = self.peers.get_mut(&key) {
            if !peer.rtc.is_alive() {
                if !dead.contains(&key) {
                    dead.push(key);
                }
                return;
            }
            let output = match peer.rtc.poll_output() {
                Ok(output) => output,
                Err(error) => {
                    tracing::warn!(%error, "media output failed: peer closed");
                    peer.rtc.disconnect();
                    continue;
                }
            };
            match output {
                // Packets just written are sent on the next timeout, which str0m wants at
                // once: given now rather than after another turn of the task's loop.
                Output::Timeout(at) if at <= now && !timed_out => {
                    timed_out = true;
                    if let Err(error) = peer.rtc.handle_input(Input::Timeout(now)) {
                        tracing::warn!(%error, "media timeout failed: peer closed");
                        peer.rtc.disconnect();
                    }
                }
                Output::Timeout(at) => {
                    peer.next_timeout = at;
                    return;
                }
                Output::Transmit(transmit) => {
                    // A full socket buffer or link queue drops the datagram, as the network
                    // would.
                    if transmit.proto == Protocol::Udp {
                        let _ = self
                            .transports
                            .udp
                            .try_send_to(&transmit.contents, transmit.destination);
                    } else if let Some(link) = self.tcp_links.get(&transmit.destination) {
                        let _ = link.try_send(transmit.contents.to_vec());
                    }
                }
                Output::Event(event) => self.event(now, key, event),
            }
        }
    }

    fn event(&mut self, now: Instant, key: PeerKey, event: Event) {
        match event {
            Event::Connected => {
                // Keyframes asked for while the connection was being set up went nowhere:
                // ask again for every video this peer may receive.
                let tracks: Vec<TrackId> = self
                    .peers
                    .get(&key)
                    .map(|peer| {
                        peer.outgoing
                            .iter()
                            .filter(|(track, state)| {
                                matches!(state, Outgoing::Open(_)) && peer.allowed.contains(track)
                            })
                            .map(|(track, _)| *track)
                            .collect()
                    })
                    .unwrap_or_default();
                for track in tracks {
                    self.request_keyframe(now, track);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    tracing::info!("media peer lost ICE connectivity: closed");
                    peer.rtc.disconnect();
                }
            }
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                let layers = added
                    .simulcast
                    .map(|simulcast| {
                        let groups = if simulcast.send.is_empty() {
                            simulcast.recv
                        } else {
                            simulcast.send
                        };
                        groups.into_iter().map(|layer| layer.rid).collect()
                    })
                    .unwrap_or_default();
                self.track_added(key, added.mid, added.kind, layers);
            }
            Event::MediaChanged(changed) => {
                let Some(peer) = self.peers.get(&key) else {
                    return;
                };
                let published = peer.published.get(&changed.mid).copied();
                let kind = peer.rtc.media(changed.mid).map(|media| media.kind());
                match (published, changed.direction.is_receiving(), kind) {
                    (Some(track), false, _) => self.track_ended(key, changed.mid, track),
                    // A stopped share started again on the same m-line.
                    (None, true, Some(kind)) => {
                        self.track_added(key, changed.mid, kind, Vec::new())
                    }
                    _ => {}
                }
            }
            Event::RtpPacket(packet) => self.forward(now, key, packet),
            Event::MediaIngressStats(stats) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.ingress
                        .insert((stats.mid, stats.rid), StreamFigures::from(&stats));
                }
            }
            Event::MediaEgressStats(stats) => {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.egress
                        .insert((stats.mid, stats.rid), StreamFigures::from(&stats));
                }
            }
            Event::KeyframeRequest(request) => {
                // A subscriber lost its picture: ask the publisher for the layer it receives.
                let wanted = self.peers.get(&key).and_then(|peer| {
                    let track = peer
                        .outgoing
                        .iter()
                        .find(|(_, state)| **state == Outgoing::Open(request.mid))
                        .map(|(track, _)| *track)?;
                    Some((
                        track,
                        peer.layers.get(&track).and_then(LayerChoice::current),
                    ))
                });
                match wanted {
                    Some((track, Some(layer))) => {
                        self.request_layer_keyframe(now, track, Some(layer))
                    }
                    Some((track, None)) => self.request_keyframe(now, track),
                    None => {}
                }
            }
            _ => {}
        }
    }

    fn track_added(&mut self, key: PeerKey, mid: Mid, kind: MediaKind, layers: Vec<Rid>) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        if peer.published.contains_key(&mid) {
            return;
        }
        let kind = match kind {
            MediaKind::Audio => TrackKind::Audio,
            MediaKind::Video if peer.screen_mids.iter().any(|m| m.as_str() == &*mid) => {
                TrackKind::ScreenShare
            }
            MediaKind::Video => TrackKind::Video,
        };
        let track = TrackId::new(self.next_track);
        self.next_track += 1;
        peer.published.insert(mid, track);
        peer.emit(PeerEvent::TrackPublished { track, kind });
        self.tracks.insert(
            track,
            TrackSource {
                publisher: key,
                member: peer.member,
                mid,
                kind,
                keyframes: KeyframePacing::default(),
                nack_on: false,
                layers: Layers::new(layers),
                loudness: 0.0,
            },
        );
    }

    /// A publisher stopped sending a track (its m-line is no longer sending: a screen share
    /// ended). The room is told; every subscriber's m-line for it goes inactive.
    fn track_ended(&mut self, key: PeerKey, mid: Mid, track: TrackId) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        peer.published.remove(&mid);
        peer.emit(PeerEvent::TrackUnpublished(track));
        self.tracks.remove(&track);
        let subscribers: Vec<PeerKey> = self
            .peers
            .iter_mut()
            .filter_map(|(other, peer)| {
                let state = peer.outgoing.remove(&track)?;
                peer.allowed.remove(&track);
                peer.layers.remove(&track);
                match state {
                    Outgoing::Open(mid) | Outgoing::Negotiating(mid) => peer.retiring.push(mid),
                    Outgoing::ToOpen => {}
                }
                Some(*other)
            })
            .collect();
        for subscriber in subscribers {
            self.negotiate(subscriber);
        }
    }

    /// Turns NACKs on for an incoming video stream. str0m asks again for lost packets only
    /// when the publisher offered RTX; a publisher without RTX (webrtc-rs 0.21, some
    /// devices) resends on the original stream, which repairs the frame just as well.
    fn ask_for_losses(&mut self, track: TrackId) {
        let Some(source) = self.tracks.get_mut(&track) else {
            return;
        };
        if source.nack_on || source.kind == TrackKind::Audio {
            return;
        }
        let Some(peer) = self.peers.get_mut(&source.publisher) else {
            return;
        };
        if let Some(stream) = peer.rtc.direct_api().stream_rx_by_mid(source.mid, None) {
            stream.suppress_nack(false);
            source.nack_on = true;
        }
    }

    /// Forwards a publisher's RTP packet to every peer the room's plan lets receive it,
    /// renumbered for each (see [`Renumbering`]).
    fn forward(&mut self, now: Instant, from: PeerKey, packet: RtpPacket) {
        let Some(publisher) = self.peers.get_mut(&from) else {
            return;
        };
        let ssrc = packet.header.ssrc;
        let (mid, rid) = match publisher.sources.get(&ssrc) {
            Some(known) => *known,
            None => {
                let mut api = publisher.rtc.direct_api();
                let Some(stream) = api.stream_rx(&ssrc) else {
                    return;
                };
                let known = (stream.mid(), stream.rid());
                publisher.sources.insert(ssrc, known);
                known
            }
        };
        let Some(track) = publisher.published.get(&mid).copied() else {
            return;
        };
        let params = publisher
            .rtc
            .codec_config()
            .find(|params| params.pt() == packet.header.payload_type)
            .copied();
        self.ask_for_losses(track);
        let Some(source) = self.tracks.get_mut(&track) else {
            return;
        };
        if let Some(rid) = rid {
            source.layers.received(rid, packet.payload.len() as u64);
        }
        let header = &packet.header.ext_vals;
        if let Some(level) = header.audio_level {
            // RFC 6464: the level is in -dBov, 0 the loudest, 127 silence.
            let silent = header.voice_activity == Some(false);
            let loudness = if silent {
                0.0
            } else {
                127.0 - f32::from(level.unsigned_abs().min(127))
            };
            source.loudness = 0.8 * source.loudness + 0.2 * loudness;
        }
        let video = source.kind != TrackKind::Audio;
        // Audio can start anywhere; video on the first packet of a keyframe.
        let starts_keyframe = !video
            || Vp8Descriptor::parse(&packet.payload)
                .is_ok_and(|descriptor| descriptor.starts_keyframe(&packet.payload));
        let source_packet = SourcePacket {
            ssrc,
            seq_no: packet.seq_no,
            time: packet.header.timestamp,
            starts_keyframe,
            clock_rate: if video { 90_000 } else { 48_000 },
            arrival: packet.timestamp,
        };
        // Only what receivers use is passed on (not the publisher's mid, rid or transport
        // sequence numbers).
        let ext_vals = ExtensionValues {
            audio_level: header.audio_level,
            voice_activity: header.voice_activity,
            video_orientation: header.video_orientation,
            ..ExtensionValues::default()
        };
        let Some(plan) = self.plans.get(from.room) else {
            return;
        };
        let Some(entry) = plan.tracks().iter().find(|entry| entry.track == track) else {
            return;
        };
        // Layers (or streams) receivers wait for a keyframe of.
        let mut waiting = Vec::new();
        for receiver in &entry.receivers {
            let key = PeerKey {
                room: from.room,
                connection: receiver.connection,
            };
            let Some(peer) = self.peers.get_mut(&key) else {
                continue;
            };
            let Some(Outgoing::Open(out_mid)) = peer.outgoing.get(&track).copied() else {
                continue;
            };
            if let Some(rid) = rid {
                // Switch layers only on a keyframe of the wanted one; until it comes, keep
                // asking (paced) and forward the current layer.
                match peer
                    .layers
                    .entry(track)
                    .or_default()
                    .admit(rid, starts_keyframe)
                {
                    Admission::Forward => {}
                    Admission::AwaitKeyframe => {
                        waiting.push(Some(rid));
                        continue;
                    }
                    Admission::Drop => continue,
                }
            }
            let (seq_no, time) = match peer
                .renumbering
                .entry(track)
                .or_default()
                .map(source_packet)
            {
                Verdict::Send { seq_no, time } => (seq_no, time),
                Verdict::Stale => continue,
                Verdict::NeedsKeyframe => {
                    waiting.push(rid);
                    continue;
                }
            };
            let Some(pt) = params
                .and_then(|params| peer.rtc.codec_config().match_params(params))
                .map(|params| params.pt())
            else {
                continue;
            };
            let mut api = peer.rtc.direct_api();
            let Some(stream) = api.stream_tx_by_mid(out_mid, None) else {
                continue;
            };
            stream.write_rtp(
                RtpWrite::new(pt, seq_no, time, packet.timestamp, packet.payload.clone())
                    .marker(packet.header.marker)
                    .ext_vals(ext_vals.clone())
                    .nackable(video),
            );
            self.dirty.push(key);
        }
        waiting.dedup();
        for layer in waiting {
            self.request_layer_keyframe(now, track, layer);
        }
    }
}

/// The cumulative figures of one peer's streams.
fn peer_totals(peer: &Peer) -> MediaTotals {
    let mut totals = MediaTotals::default();
    for figures in peer.ingress.values() {
        totals.packets_in += figures.packets;
        totals.bytes_in += figures.bytes;
        totals.keyframe_requests += figures.keyframe_requests;
        totals.nacks_sent += figures.nacks_sent;
    }
    for figures in peer.egress.values() {
        totals.packets_out += figures.packets;
        totals.bytes_out += figures.bytes;
        totals.nacks += figures.nacks;
    }
    totals
}
