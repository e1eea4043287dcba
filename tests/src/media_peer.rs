//! A synthetic participant that behaves like a browser on the media side, for loopback tests and
//! the load generator.
//!
//! A [`MediaPeer`] is one WebRTC peer connection (the `webrtc` crate, 0.21) bound to a single UDP
//! socket on `127.0.0.1`: its only ICE candidate is a loopback host candidate, mDNS is off and no
//! STUN or TURN server is configured, so nothing leaves the loopback interface.
//!
//! # What it sends
//!
//! Each enabled [`Source`] is a send-only transceiver in the media stream `stream_id` with the
//! track id `"audio"`, `"video"` or `"screen"`:
//!
//! - audio: Opus, one 20 ms packet every 20 ms (a TOC byte, then the probe), each with the
//!   audio level header extension (see [Audio level](#audio-level));
//! - video and screen: VP8 at `video_fps`. Every frame is one to three RTP packets of about
//!   [`VIDEO_PACKET_BYTES`], with an RFC 7741 payload descriptor (X=1, 15-bit picture id). A
//!   keyframe starts with a VP8 payload header whose P bit is clear, followed by the start code
//!   `9d 01 2a` and the frame size (RFC 6386 §9.1); an interframe has P=1. A keyframe goes out
//!   every `keyframe_interval`, on the first frame after the connection comes up, and on the next
//!   frame after a PLI or FIR from the remote side.
//!
//! Every payload carries a *probe* right after the codec headers (the Opus TOC byte; the VP8
//! payload descriptor and, on a frame's first packet, the payload header), then zero padding:
//!
//! ```text
//! "ACRD" | source: u8 (0 audio, 1 video, 2 screen) | tag length: u8 | tag (the peer's name)
//!        | packet counter of the source: u64 BE | send time, Unix microseconds: u64 BE
//!        [ | layer: u8, only in simulcast packets: b'l', b'm' or b'h' ]
//! ```
//!
//! A receiver attributes packets by the probe, not by SSRC, so counts survive an SFU that rewrites
//! SSRCs and sequence numbers, and the counter shows losses and retransmissions end to end.
//!
//! The layer byte is an addition that changes nothing for what was there before: a packet that is
//! not simulcast ends its probe with the send time as it always did, and since the padding after
//! the probe is zero, a parser reads a missing layer byte and a zero one alike as "no layer".
//!
//! ## Simulcast
//!
//! With [`PeerOptions::simulcast`] the camera is published as browsers publish simulcast: one
//! m-line, one track, three encodings with the RTP stream ids (rids) `l`, `m` and `h`, each
//! with its own SSRC. The offer's video m-section then carries `a=rid:l send`, `a=rid:m send`,
//! `a=rid:h send` and `a=simulcast:send l;m;h` and, as a browser's does, no `a=ssrc` lines: a
//! receiver learns each layer's SSRC from the packets. Every packet of a layer therefore carries
//! the SDES `mid` and `rtp-stream-id` header extensions (RFC 8285 one-byte form) with the ids the
//! negotiation settled on, read back from the sender's parameters before every frame. A layer
//! sends nothing until the mid and both ids are known, so no packet of a layer ever goes out
//! without them (retransmissions are copies and carry them too). The repaired-rid extension is
//! offered but unused: there is no RTX.
//!
//! Each layer is an independent VP8 stream with its own SSRC, sequence numbers, picture ids,
//! probe counter and keyframe schedule (every `keyframe_interval`, on connection, and after a PLI
//! or FIR whose media SSRC is that layer's: a request for one layer makes only that layer send a
//! keyframe). The layers differ in the frame size of their keyframes and in volume:
//!
//! | rid | keyframe size | packets per frame (keyframe) | payload bytes per packet |
//! |-----|---------------|------------------------------|--------------------------|
//! | `l` | 320x180       | 1 (2)                        | [`LOW_LAYER_PACKET_BYTES`] |
//! | `m` | 640x360       | 1 (2)                        | [`VIDEO_PACKET_BYTES`]     |
//! | `h` | 1280x720      | 2 or 3 (4)                   | [`VIDEO_PACKET_BYTES`]     |
//!
//! and every probe names its layer, so a receiver behind an SFU (which forwards one layer at a
//! time, renumbered into one continuous stream) tells which layer it is getting.
//!
//! ## Audio level
//!
//! As a browser does, the peer offers the client-to-mixer audio level header extension (RFC 6464,
//! `urn:ietf:params:rtp-hdrext:ssrc-audio-level`) on its audio m-lines, and only there, and
//! every audio packet carries it in the RFC 8285 one-byte form: one byte, bit 7 the voice
//! activity flag (V), bits 0–6 the level in -dBov (0 the loudest, 127 silence). The microphone
//! is either silent, level [`SILENT_AUDIO_LEVEL`] with V=0, or speaking, level
//! [`SPEAKING_AUDIO_LEVEL`] with V=1: [`PeerOptions::speaking`] at first, then
//! [`MediaPeer::set_speaking`]. The value is read as each packet is built, so a change shows from
//! the next packet on (within 20 ms).
//!
//! The extension is registered last in the media engine, so it takes the first id left after
//! the others: 5 in an offer the peer makes before any negotiation (transport-cc is 1, and the
//! video m-lines' mid, rid and repaired rid are 2, 3 and 4, as before; the audio m-lines carry
//! transport-cc and the audio level only). Once a negotiation settled an id, later offers and
//! answers keep it; in an answer to a remote offer, the id is the remote offer's. As for
//! simulcast, the id written is the negotiated one, read back from the sender's parameters before
//! every packet. `webrtc` refuses to send a packet with an extension id its sender did not
//! negotiate, so a remote side that does not accept the extension gets the audio without it.
//!
//! Received packets are not examined for it.
//!
//! # What it receives
//!
//! Every remote track is read by its own task. Statistics are kept per track
//! ([`RemoteTrackStats`]) and per publisher tag and source ([`PublisherStats`]), and are readable
//! synchronously. A [`Mark`] snapshots the counters so a test can ask what arrived after it.
//!
//! Simulcast packets are also counted per camera layer ([`PublisherStats::layer`],
//! [`MediaPeer::packets_from_layer`], [`Mark::keyframes_from_layer`], …), by the layer byte of
//! their probe, whether they came as three SSRCs of one remote track (straight from a simulcast
//! publisher: `webrtc` 0.21 gives one remote track per m-line and delivers every layer's packets
//! on it) or as the one stream an SFU makes of them. [`MediaPeer::current_layer`] is the layer of
//! the last camera packet received from a publisher, and the frame size of the last keyframe is
//! kept too ([`SourceStats::keyframe_size`]). The probe counters are per layer, so the gap
//! accounting (`missing`, `recovered`, `duplicates`) is kept per layer; the camera's totals sum
//! the layers'. Behind an SFU that switches layers, the counters of a layer it stopped forwarding
//! jump when it resumes: that shows as `missing` in the layer, not as loss.
//!
//! # How negotiation maps to the SFU
//!
//! The peer publishes with [`MediaPeer::create_offer`] / [`MediaPeer::set_remote_answer`] and
//! accepts the server's renegotiation offers (which add send-only m-lines for what it should
//! receive) with [`MediaPeer::accept_offer`]. Descriptions are returned only once ICE gathering
//! has completed, so the candidate is inside the SDP and trickle is optional.
//!
//! # Inside
//!
//! Keyframe requests and deliberate packet loss live in one interceptor placed closest to the
//! wire. On the way in it sees every PLI and FIR: the `webrtc` crate routes inbound RTCP to a
//! track by *track id*, so a peer that both sends and receives a track called "video" would get the
//! PLI for its own camera on the remote track; matching the media SSRC here avoids that. On the way
//! out it drops packets after the NACK responder has stored them, so the remote side's NACKs
//! bring them back. RTX is not negotiated: with RTX, `webrtc` 0.21's NACK generator never learns
//! that a packet was repaired and asks for it again every 100 ms. The same interceptor keeps, on
//! request ([`PeerOptions::capture_outgoing_rtp`]), a copy of the last RTP packets as they go to
//! SRTP, header extensions and all, so a test can read what is on the wire.
//!
//! A keyframe request is routed by its media SSRC alone: each simulcast layer is a source of its
//! own for the interceptor, so a PLI or FIR for one layer's SSRC reaches that layer's generator
//! and no other, and one for an unknown SSRC is ignored.
//!
//! Everything runs on the Tokio runtime of the caller.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::network::{lock, ControlledRuntime, Network};
use anyhow::{anyhow, bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::interceptor::{Interceptor, Packet as ChainPacket, Slot, StreamInfo, TaggedPacket};
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_nack, configure_rtcp_reports, configure_simulcast_extension_headers, configure_twcc,
};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RTCRtpHeaderExtensionParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sdp::extmap::{AUDIO_LEVEL_URI, SDES_MID_URI, SDES_RTP_STREAM_ID_URI};
use rtc::shared::marshal::Marshal;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription, Registry, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::{RtpSender, RtpTransceiver};

/// The payload type VP8 is offered with (the usual browser choice).
const VP8_PAYLOAD_TYPE: u8 = 96;
/// The payload type Opus is offered with (the usual browser choice).
const OPUS_PAYLOAD_TYPE: u8 = 111;
/// One Opus packet every 20 ms: 960 samples at 48 kHz.
const AUDIO_PACKET_INTERVAL: Duration = Duration::from_millis(20);
const AUDIO_SAMPLES_PER_PACKET: u32 = 960;
/// The RTP clock of VP8.
const VIDEO_CLOCK_RATE: u64 = 90_000;
/// The payload size of a video packet, codec headers and probe included.
pub const VIDEO_PACKET_BYTES: usize = 1000;
/// The payload size of a packet of the low simulcast layer (`l`), codec headers and probe
/// included.
pub const LOW_LAYER_PACKET_BYTES: usize = 300;
/// The payload size of an audio packet, TOC byte and probe included.
const AUDIO_PACKET_BYTES: usize = 80;
/// The audio level (RFC 6464, -dBov) of a speaking microphone; sent with the voice activity flag
/// set.
pub const SPEAKING_AUDIO_LEVEL: u8 = 20;
/// The audio level (RFC 6464, -dBov) of a silent microphone: silence itself; sent with the voice
/// activity flag clear.
pub const SILENT_AUDIO_LEVEL: u8 = 127;
/// Opus TOC byte: configuration 31 (CELT fullband, 20 ms), mono, one frame.
const OPUS_TOC: u8 = 0xf8;
/// What starts every probe.
const PROBE_MAGIC: &[u8; 4] = b"ACRD";
/// How long descriptions wait for ICE gathering to complete.
const GATHERING_PATIENCE: Duration = Duration::from_secs(2);
/// How often the `wait_*` helpers look again.
const WAIT_STEP: Duration = Duration::from_millis(5);
/// Latency samples kept per publisher (the oldest go first).
const LATENCY_SAMPLES_KEPT: usize = 100_000;
/// Keyframe arrival times kept per publisher and source.
const KEYFRAME_TIMES_KEPT: usize = 10_000;
/// Gaps in a source's packet counter remembered as missing at most.
const MISSING_COUNTERS_KEPT: usize = 10_000;
/// Deliberately dropped packets remembered, so that their retransmission goes through.
const DROPPED_PACKETS_KEPT: usize = 1024;
/// Where the interceptor of [`MediaPeer`] sits in the chain: nearer the wire than everything
/// `webrtc` registers (the congestion controller is at 1000, the NACK responder at 4000).
const WIRE_SLOT: usize = 500;

/// A media source a peer can publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// The microphone: Opus.
    Audio,
    /// The camera: VP8.
    Video,
    /// Screen sharing: a second VP8 track.
    Screen,
}

impl Source {
    /// The track id this source is published with (the second half of `a=msid`).
    pub fn track_id(self) -> &'static str {
        match self {
            Source::Audio => "audio",
            Source::Video => "video",
            Source::Screen => "screen",
        }
    }

    pub fn kind(self) -> MediaKind {
        match self {
            Source::Audio => MediaKind::Audio,
            Source::Video | Source::Screen => MediaKind::Video,
        }
    }

    fn code(self) -> u8 {
        match self {
            Source::Audio => 0,
            Source::Video => 1,
            Source::Screen => 2,
        }
    }

    fn from_code(code: u8) -> Option<Source> {
        match code {
            0 => Some(Source::Audio),
            1 => Some(Source::Video),
            2 => Some(Source::Screen),
            _ => None,
        }
    }

    /// The frame size announced in this source's keyframes.
    fn frame_size(self) -> (u16, u16) {
        match self {
            Source::Screen => (1920, 1080),
            Source::Audio | Source::Video => (640, 480),
        }
    }
}

/// A simulcast layer of the camera, named on the wire by its RTP stream id (rid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// rid `l`: 320x180, about one packet of [`LOW_LAYER_PACKET_BYTES`] per frame.
    Low,
    /// rid `m`: 640x360, about one packet of [`VIDEO_PACKET_BYTES`] per frame.
    Medium,
    /// rid `h`: 1280x720, two or three packets of [`VIDEO_PACKET_BYTES`] per frame.
    High,
}

impl Layer {
    /// Every layer, lowest first: the order of the encodings and of `a=simulcast:send l;m;h`.
    pub const ALL: [Layer; 3] = [Layer::Low, Layer::Medium, Layer::High];

    /// The RTP stream id of the layer (`a=rid`, and the `rtp-stream-id` header extension).
    pub fn rid(self) -> &'static str {
        match self {
            Layer::Low => "l",
            Layer::Medium => "m",
            Layer::High => "h",
        }
    }

    pub fn from_rid(rid: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|layer| layer.rid() == rid)
    }

    /// The frame size announced in this layer's keyframes.
    pub fn frame_size(self) -> (u16, u16) {
        match self {
            Layer::Low => (320, 180),
            Layer::Medium => (640, 360),
            Layer::High => (1280, 720),
        }
    }

    /// The layer byte of the probe: the rid's one ASCII letter.
    fn code(self) -> u8 {
        self.rid().as_bytes()[0]
    }

    fn from_code(code: u8) -> Option<Layer> {
        Layer::ALL.into_iter().find(|layer| layer.code() == code)
    }
}

/// Audio or video, as the m-line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
}

/// Outgoing packets to lose on purpose, before they reach the wire (but after the NACK responder
/// has stored them, so a NACK from the remote side brings them back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropPolicy {
    /// The first transmission of every n-th packet of each video stream (camera and screen);
    /// retransmissions always go through.
    EveryNthVideoPacket(u64),
}

/// How a [`MediaPeer`] behaves.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// The media stream id of the published tracks (`a=msid:<stream_id> <track_id>`); empty
    /// means the peer's name.
    pub stream_id: String,
    pub audio: bool,
    pub video: bool,
    pub screen: bool,
    /// The longest time between two keyframes of a video source.
    pub keyframe_interval: Duration,
    /// Frames per second of each video source.
    pub video_fps: u32,
    pub drop_outgoing: Option<DropPolicy>,
    /// Publish the camera as simulcast: three encodings with the rids `l`, `m` and `h` (see
    /// [`Layer`] and the module documentation). Only the camera; the screen stays one stream.
    pub simulcast: bool,
    /// How many of the last outgoing RTP packets to keep, marshalled as they go to SRTP, for
    /// [`MediaPeer::captured_outgoing_rtp`]; 0 keeps none.
    pub capture_outgoing_rtp: usize,
    /// Whether the microphone starts out speaking (see [`MediaPeer::set_speaking`]).
    pub speaking: bool,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            stream_id: String::new(),
            audio: true,
            video: true,
            screen: false,
            keyframe_interval: Duration::from_secs(2),
            video_fps: 30,
            drop_outgoing: None,
            simulcast: false,
            capture_outgoing_rtp: 0,
            speaking: false,
        }
    }
}

impl PeerOptions {
    /// A peer that publishes nothing and only receives.
    pub fn receive_only() -> Self {
        PeerOptions {
            audio: false,
            video: false,
            screen: false,
            ..PeerOptions::default()
        }
    }

    fn sources(&self) -> Vec<Source> {
        [
            (self.audio, Source::Audio),
            (self.video, Source::Video),
            (self.screen, Source::Screen),
        ]
        .into_iter()
        .filter_map(|(enabled, source)| enabled.then_some(source))
        .collect()
    }
}

/// What arrived on one remote track.
#[derive(Debug, Clone)]
pub struct RemoteTrackStats {
    /// The sender's media stream id (from `a=msid`).
    pub stream_id: String,
    pub track_id: String,
    pub kind: MediaKind,
    /// The SSRC of the last packet.
    pub ssrc: u32,
    pub packets: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// VP8 keyframes, recognised by the payload descriptor and header.
    pub keyframes: u64,
    pub first_packet_at: Option<Instant>,
    pub last_packet_at: Option<Instant>,
    /// Packets by the publisher tag of their probe.
    pub packets_by_tag: BTreeMap<String, u64>,
    /// Simulcast packets by the layer named in their probe.
    pub packets_by_layer: BTreeMap<Layer, u64>,
    /// The layer named in the probe of the last packet (`None` when it was not simulcast).
    pub layer: Option<Layer>,
    /// Packets that broke the track's RTP numbering: a sequence number more than
    /// [`SEQUENCE_JUMP`] away from the highest one so far, or a newer packet with an older
    /// timestamp. A receiver sees one continuous stream even when what the SFU forwards on the
    /// track changes (another simulcast layer, a pause for a caucus).
    pub discontinuities: u64,
    /// The highest sequence number so far and its timestamp.
    highest: Option<(u16, u32)>,
}

/// How far a sequence number may be from the highest one so far, forward (packets lost) or
/// backward (reordered, retransmitted), and still belong to the same run.
pub const SEQUENCE_JUMP: u16 = 64;

impl RemoteTrackStats {
    fn on_numbering(&mut self, seq: u16, timestamp: u32) {
        let Some((highest, highest_timestamp)) = self.highest else {
            self.highest = Some((seq, timestamp));
            return;
        };
        let ahead = seq.wrapping_sub(highest);
        if ahead != 0 && ahead < 0x8000 {
            // Reinterpreting the wrapped difference as signed tells earlier from later.
            let earlier = (timestamp.wrapping_sub(highest_timestamp) as i32) < 0;
            if ahead > SEQUENCE_JUMP || earlier {
                self.discontinuities += 1;
            }
            self.highest = Some((seq, timestamp));
        } else if highest.wrapping_sub(seq) > SEQUENCE_JUMP {
            self.discontinuities += 1;
        }
    }
}

/// What arrived from one publisher's source, across every track that carried it.
#[derive(Debug, Clone, Default)]
pub struct SourceStats {
    pub packets: u64,
    /// Payload bytes.
    pub bytes: u64,
    pub keyframes: u64,
    /// The frame size (width, height) announced by the last keyframe.
    pub keyframe_size: Option<(u16, u16)>,
    pub first_packet_at: Option<Instant>,
    pub last_packet_at: Option<Instant>,
    /// The highest probe counter seen (of a simulcast camera: only per layer, `None` in the
    /// camera's totals).
    pub highest_counter: Option<u64>,
    /// Counters skipped over and not (yet) received.
    pub missing: u64,
    /// Packets that arrived after a later one and filled a gap: retransmissions or reordering.
    pub recovered: u64,
    /// Packets whose counter had already arrived.
    pub duplicates: u64,
}

/// What arrived from one publisher, by source and, for a simulcast camera, by layer.
#[derive(Debug, Clone, Default)]
pub struct PublisherStats {
    /// Every source's totals; a simulcast camera's are its layers' together.
    pub sources: BTreeMap<Source, SourceStats>,
    /// The simulcast camera's packets by the layer their probe names.
    pub layers: BTreeMap<Layer, SourceStats>,
    /// The layer of the last camera packet (`None` if it was not simulcast, or none came).
    pub current_layer: Option<Layer>,
}

impl PublisherStats {
    pub fn source(&self, source: Source) -> SourceStats {
        self.sources.get(&source).cloned().unwrap_or_default()
    }

    /// What arrived of the camera's simulcast `layer`.
    pub fn layer(&self, layer: Layer) -> SourceStats {
        self.layers.get(&layer).cloned().unwrap_or_default()
    }

    pub fn packets(&self) -> u64 {
        self.sources.values().map(|source| source.packets).sum()
    }

    pub fn keyframes(&self) -> u64 {
        self.sources.values().map(|source| source.keyframes).sum()
    }
}

/// One-way delays (receive time minus the send time in the probe).
#[derive(Debug, Clone, Default)]
pub struct LatencySamples {
    sorted: Vec<Duration>,
}

impl LatencySamples {
    fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        LatencySamples { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Every sample, shortest first.
    pub fn as_slice(&self) -> &[Duration] {
        &self.sorted
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The `p`-th percentile (`0.0..=100.0`, nearest rank); `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<Duration> {
        if self.sorted.is_empty() {
            return None;
        }
        let rank = (p.clamp(0.0, 100.0) / 100.0 * self.sorted.len() as f64).ceil() as usize;
        Some(self.sorted[rank.saturating_sub(1).min(self.sorted.len() - 1)])
    }

    pub fn max(&self) -> Option<Duration> {
        self.sorted.last().copied()
    }
}

/// A snapshot of what a peer had received, to ask later what arrived since.
pub struct Mark {
    at: Instant,
    packets: HashMap<String, u64>,
    keyframes: HashMap<String, u64>,
    /// (packets, keyframes) by publisher and camera layer.
    layers: HashMap<(String, Layer), (u64, u64)>,
    received: Arc<Mutex<Received>>,
}

impl Mark {
    /// When the mark was taken.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// Packets from publisher `tag` since the mark.
    pub fn packets_from(&self, tag: &str) -> u64 {
        let now = lock(&self.received).publisher_stats(tag).packets();
        now - self.packets.get(tag).copied().unwrap_or(0)
    }

    /// Keyframes from publisher `tag` since the mark.
    pub fn keyframes_from(&self, tag: &str) -> u64 {
        let now = lock(&self.received).publisher_stats(tag).keyframes();
        now - self.keyframes.get(tag).copied().unwrap_or(0)
    }

    /// Packets of publisher `tag`'s camera layer `layer` since the mark.
    pub fn packets_from_layer(&self, tag: &str, layer: Layer) -> u64 {
        let now = lock(&self.received)
            .publisher_stats(tag)
            .layer(layer)
            .packets;
        now - self.layer_snapshot(tag, layer).0
    }

    /// Keyframes of publisher `tag`'s camera layer `layer` since the mark.
    pub fn keyframes_from_layer(&self, tag: &str, layer: Layer) -> u64 {
        let now = lock(&self.received)
            .publisher_stats(tag)
            .layer(layer)
            .keyframes;
        now - self.layer_snapshot(tag, layer).1
    }

    /// When the first keyframe of publisher `tag`'s `source` after the mark arrived.
    pub fn first_keyframe_from(&self, tag: &str, source: Source) -> Option<Instant> {
        lock(&self.received).first_keyframe_after(tag, Unit::Source(source), self.at)
    }

    /// When the first keyframe of publisher `tag`'s camera layer `layer` after the mark arrived.
    pub fn first_keyframe_from_layer(&self, tag: &str, layer: Layer) -> Option<Instant> {
        lock(&self.received).first_keyframe_after(tag, Unit::Layer(layer), self.at)
    }

    /// Waits up to `timeout` for a keyframe of publisher `tag`'s camera layer `layer` after the
    /// mark; returns when it arrived.
    pub async fn wait_for_keyframe_from_layer(
        &self,
        tag: &str,
        layer: Layer,
        timeout: Duration,
    ) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.first_keyframe_from_layer(tag, layer) {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }

    fn layer_snapshot(&self, tag: &str, layer: Layer) -> (u64, u64) {
        self.layers
            .get(&(tag.to_owned(), layer))
            .copied()
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for a keyframe of publisher `tag`'s `source` after the mark;
    /// returns when it arrived.
    pub async fn wait_for_keyframe_from(
        &self,
        tag: &str,
        source: Source,
        timeout: Duration,
    ) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.first_keyframe_from(tag, source) {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }

    /// Latency samples of packets from publisher `tag` that arrived after the mark.
    pub fn latency_from(&self, tag: &str) -> LatencySamples {
        lock(&self.received).latency_from(tag, Some(self.at))
    }
}

/// A synthetic participant: see the module documentation.
pub struct MediaPeer {
    name: String,
    connection: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    outgoing: Vec<Arc<Outgoing>>,
    generators: Vec<JoinHandle<()>>,
    network: Network,
}

/// What the peer connection's callbacks, the generators and the readers share.
struct Shared {
    connection_state: watch::Sender<RTCPeerConnectionState>,
    gathering_state: watch::Sender<RTCIceGatheringState>,
    received: Arc<Mutex<Received>>,
    readers: Mutex<Vec<JoinHandle<()>>>,
    /// Outgoing packets dropped by the [`DropPolicy`].
    dropped: Arc<AtomicU64>,
    /// The last outgoing RTP packets, marshalled (see [`PeerOptions::capture_outgoing_rtp`]).
    captured: Arc<Mutex<VecDeque<Bytes>>>,
}

/// One published source: one track, one transceiver, and one encoding, or three for a simulcast
/// camera.
struct Outgoing {
    /// One per encoding, lowest layer first.
    encodings: Vec<Arc<LocalSource>>,
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    transceiver: Arc<dyn RtpTransceiver>,
}

/// What the generator of one encoding of a published source and the wire interceptor share.
/// (Kept apart from [`Outgoing`]: the interceptor lives inside the connection, and holding the
/// sender there would make a reference cycle.)
struct LocalSource {
    source: Source,
    /// The simulcast layer this encoding is (`None` unless the camera is simulcast).
    layer: Option<Layer>,
    ssrc: u32,
    /// Set by a PLI or FIR, cleared by the next frame (a keyframe).
    keyframe_requested: AtomicBool,
    keyframe_requests: AtomicU64,
    sent_packets: AtomicU64,
    /// Whether the microphone is speaking, for the audio level of its packets (audio only).
    speaking: AtomicBool,
}

impl MediaPeer {
    /// A peer named `name` (the publisher tag of everything it sends) that publishes the sources
    /// `options` enables.
    pub async fn new(name: &str, options: PeerOptions) -> Result<MediaPeer> {
        if name.is_empty() || name.len() > 64 {
            bail!("a peer name is 1 to 64 bytes, got {name:?}");
        }
        let stream_id = if options.stream_id.is_empty() {
            name.to_owned()
        } else {
            options.stream_id.clone()
        };

        let mut media_engine = MediaEngine::default();
        // Codecs first: `configure_nack` and `configure_twcc` add their feedback to the codecs
        // already registered.
        media_engine.register_codec(opus_codec(), RtpCodecKind::Audio)?;
        media_engine.register_codec(vp8_codec(), RtpCodecKind::Video)?;
        let registry = configure_nack(Registry::new(), &mut media_engine);
        let registry = configure_rtcp_reports(registry);
        let registry = configure_twcc(registry, &mut media_engine)?;
        configure_simulcast_extension_headers(&mut media_engine)?;
        // Last, so that the extensions above keep their ids: offered on audio m-lines only, in
        // every direction (as browsers offer it).
        media_engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )?;

        let (connection_state, _) = watch::channel(RTCPeerConnectionState::New);
        let (gathering_state, _) = watch::channel(RTCIceGatheringState::New);
        let shared = Arc::new(Shared {
            connection_state,
            gathering_state,
            received: Arc::new(Mutex::new(Received::default())),
            readers: Mutex::new(Vec::new()),
            dropped: Arc::new(AtomicU64::new(0)),
            captured: Arc::new(Mutex::new(VecDeque::new())),
        });

        // Per source, its encodings: one, or one per layer for a simulcast camera.
        let sources: Vec<Vec<Arc<LocalSource>>> = options
            .sources()
            .into_iter()
            .map(|source| {
                let layers = if source == Source::Video && options.simulcast {
                    Layer::ALL.map(Some).to_vec()
                } else {
                    vec![None]
                };
                layers
                    .into_iter()
                    .map(|layer| {
                        Arc::new(LocalSource {
                            source,
                            layer,
                            ssrc: random_u32(),
                            keyframe_requested: AtomicBool::new(false),
                            keyframe_requests: AtomicU64::new(0),
                            sent_packets: AtomicU64::new(0),
                            speaking: AtomicBool::new(options.speaking),
                        })
                    })
                    .collect()
            })
            .collect();
        let wire = WireInterceptor {
            locals: sources.iter().flatten().cloned().collect(),
            drop_policy: options.drop_outgoing,
            video_packets: HashMap::new(),
            dropped: VecDeque::new(),
            dropped_count: Arc::clone(&shared.dropped),
            capture_limit: options.capture_outgoing_rtp,
            captured: Arc::clone(&shared.captured),
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        };
        let registry = registry.with(Slot::from(WIRE_SLOT), wire);

        let setting_engine = SettingEngineBuilder::new()
            .with_multicast_dns_mode(MulticastDnsMode::Disabled)
            .with_network_types(vec![NetworkType::Udp4])
            .build();
        let (runtime, network) = ControlledRuntime::new();
        let connection = PeerConnectionBuilder::new()
            .with_runtime(runtime)
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(media_engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Events {
                shared: Arc::clone(&shared),
            }))
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .context("build the peer connection")?;
        let connection: Arc<dyn PeerConnection> = Arc::new(connection);

        let mut outgoing = Vec::new();
        for encodings in sources {
            let source = encodings[0].source;
            let codec = match source.kind() {
                MediaKind::Audio => opus_codec(),
                MediaKind::Video => vp8_codec(),
            };
            // Several encodings, each with a rid and its SSRC, make the track simulcast: the
            // offer gets `a=rid:<rid> send` per encoding and `a=simulcast:send l;m;h`, in this
            // order, and (the setting engine's default) no `a=ssrc` lines for them.
            let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
                stream_id.clone(),
                source.track_id().to_owned(),
                format!("{name} {}", source.track_id()),
                match source.kind() {
                    MediaKind::Audio => RtpCodecKind::Audio,
                    MediaKind::Video => RtpCodecKind::Video,
                },
                encodings
                    .iter()
                    .map(|local| RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            rid: local.layer.map(Layer::rid).unwrap_or_default().to_owned(),
                            ssrc: Some(local.ssrc),
                            ..Default::default()
                        },
                        codec: codec.rtp_codec.clone(),
                        ..Default::default()
                    })
                    .collect(),
            )));
            // Send-only, as a browser publishing to an SFU. It also keeps the transceiver out of
            // remote offers: `webrtc` pairs a remote send-only m-line only with a local
            // receive-only transceiver, so the peer's own tracks never answer someone else's.
            let transceiver = connection
                .add_transceiver_from_track(
                    Arc::clone(&track) as Arc<dyn TrackLocal>,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        streams: vec![],
                        send_encodings: vec![],
                    }),
                )
                .await
                .with_context(|| format!("add the {} transceiver", source.track_id()))?;
            let sender = transceiver
                .sender()
                .await?
                .ok_or_else(|| anyhow!("the {} transceiver has no sender", source.track_id()))?;
            outgoing.push(Arc::new(Outgoing {
                encodings,
                track,
                sender,
                transceiver,
            }));
        }

        // One generator per encoding: each simulcast layer is a stream of its own.
        let generators = outgoing
            .iter()
            .flat_map(|out| {
                out.encodings.iter().map(|local| {
                    tokio::spawn(generate(
                        Arc::clone(out),
                        Arc::clone(local),
                        name.to_owned(),
                        options.clone(),
                        shared.connection_state.subscribe(),
                    ))
                })
            })
            .collect();

        Ok(MediaPeer {
            name: name.to_owned(),
            connection,
            shared,
            outgoing,
            generators,
            network,
        })
    }

    /// The publisher tag of this peer.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates an offer, sets it as the local description and returns its SDP once ICE
    /// gathering has completed.
    pub async fn create_offer(&self) -> Result<String> {
        let offer = self.connection.create_offer(None).await?;
        self.connection.set_local_description(offer).await?;
        self.local_sdp().await
    }

    /// Applies the remote answer to the last offer.
    pub async fn set_remote_answer(&self, sdp: &str) -> Result<()> {
        let answer = RTCSessionDescription::answer(sdp.to_owned())?;
        self.connection.set_remote_description(answer).await?;
        Ok(())
    }

    /// Applies a remote offer (a renegotiation from the server, typically adding send-only
    /// m-lines to receive), answers it and returns the answer's SDP.
    pub async fn accept_offer(&self, sdp: &str) -> Result<String> {
        let offer = RTCSessionDescription::offer(sdp.to_owned())?;
        self.connection.set_remote_description(offer).await?;
        let answer = self.connection.create_answer(None).await?;
        self.connection.set_local_description(answer).await?;
        self.local_sdp().await
    }

    /// Adds a trickled remote candidate (`candidate:…` or `a=candidate:…`), for the m-line
    /// `mid` (the first one when `None`).
    pub async fn add_remote_candidate(&self, candidate: &str, mid: Option<&str>) -> Result<()> {
        let candidate = candidate.trim().trim_start_matches("a=");
        self.connection
            .add_ice_candidate(RTCIceCandidateInit {
                candidate: candidate.to_owned(),
                sdp_mid: mid.map(str::to_owned),
                sdp_mline_index: if mid.is_none() { Some(0) } else { None },
                ..RTCIceCandidateInit::default()
            })
            .await?;
        Ok(())
    }

    /// The state of the peer connection (ICE and DTLS together).
    pub fn connection_state(&self) -> RTCPeerConnectionState {
        *self.shared.connection_state.borrow()
    }

    /// Waits up to `timeout` for the connection to be connected.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut state = self.shared.connection_state.subscribe();
        tokio::time::timeout(
            timeout,
            state.wait_for(|state| *state == RTCPeerConnectionState::Connected),
        )
        .await
        .is_ok_and(|changed| changed.is_ok())
    }

    /// What arrived on each remote track so far.
    pub fn stats(&self) -> Vec<RemoteTrackStats> {
        lock(&self.shared.received)
            .tracks
            .iter()
            .map(|track| track.stats.clone())
            .collect()
    }

    /// What arrived from publisher `tag` so far.
    pub fn publisher_stats(&self, tag: &str) -> PublisherStats {
        lock(&self.shared.received).publisher_stats(tag)
    }

    /// Packets received from publisher `tag`, all sources together.
    pub fn packets_from(&self, tag: &str) -> u64 {
        self.publisher_stats(tag).packets()
    }

    /// Packets received from publisher `tag` that the publisher sent after `instant` (by the
    /// send time in their probe; sender and receiver share this machine's clock). Counts the
    /// packets whose probe survived the trip (every audio packet, the first packet of each
    /// video frame).
    pub fn packets_from_sent_after(&self, tag: &str, instant: Instant) -> u64 {
        let received = lock(&self.shared.received);
        let Some(publisher) = received.publishers.get(tag) else {
            return 0;
        };
        publisher
            .latencies
            .iter()
            .filter(|(arrived, delay)| {
                arrived
                    .checked_sub(*delay)
                    .is_some_and(|sent| sent > instant)
            })
            .count() as u64
    }

    /// Keyframes received from publisher `tag`, all sources together.
    pub fn keyframes_from(&self, tag: &str) -> u64 {
        self.publisher_stats(tag).keyframes()
    }

    /// Packets received of publisher `tag`'s camera layer `layer`.
    pub fn packets_from_layer(&self, tag: &str, layer: Layer) -> u64 {
        self.publisher_stats(tag).layer(layer).packets
    }

    /// Keyframes received of publisher `tag`'s camera layer `layer`.
    pub fn keyframes_from_layer(&self, tag: &str, layer: Layer) -> u64 {
        self.publisher_stats(tag).layer(layer).keyframes
    }

    /// The layer of the last camera packet received from publisher `tag`: which layer an SFU is
    /// forwarding now. `None` before any, or when the last one was not simulcast.
    pub fn current_layer(&self, tag: &str) -> Option<Layer> {
        lock(&self.shared.received)
            .publishers
            .get(tag)
            .and_then(|publisher| publisher.current_layer)
    }

    /// Latency samples of everything received from publisher `tag`.
    pub fn latency_from(&self, tag: &str) -> LatencySamples {
        lock(&self.shared.received).latency_from(tag, None)
    }

    /// Waits up to `timeout` until at least `n` packets from publisher `tag` have arrived.
    pub async fn wait_for_packets_from(&self, tag: &str, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.packets_from(tag) >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }

    /// A snapshot of the counters, to compute what arrives from now on.
    pub fn mark(&self) -> Mark {
        let received = lock(&self.shared.received);
        let mut packets = HashMap::new();
        let mut keyframes = HashMap::new();
        let mut layers = HashMap::new();
        for tag in received.publishers.keys() {
            let stats = received.publisher_stats(tag);
            packets.insert(tag.clone(), stats.packets());
            keyframes.insert(tag.clone(), stats.keyframes());
            for (layer, layer_stats) in &stats.layers {
                layers.insert(
                    (tag.clone(), *layer),
                    (layer_stats.packets, layer_stats.keyframes),
                );
            }
        }
        Mark {
            at: Instant::now(),
            packets,
            keyframes,
            layers,
            received: Arc::clone(&self.shared.received),
        }
    }

    /// Sends a PLI for the remote track that last carried publisher `tag`'s video `source`,
    /// with the SSRC of its last packet.
    pub async fn request_keyframe(&self, tag: &str, source: Source) -> Result<()> {
        let carrier = lock(&self.shared.received).track_carrying(tag, Unit::Source(source));
        let (track, media_ssrc) =
            carrier.ok_or_else(|| anyhow!("no track has carried {tag}'s {source:?} yet"))?;
        send_pli(track, media_ssrc).await
    }

    /// Sends a PLI for the SSRC that last carried publisher `tag`'s camera layer `layer` (from a
    /// simulcast publisher directly, each layer has its own SSRC; behind an SFU, it is the SSRC
    /// of the one stream the SFU sends).
    pub async fn request_keyframe_for_layer(&self, tag: &str, layer: Layer) -> Result<()> {
        let carrier = lock(&self.shared.received).track_carrying(tag, Unit::Layer(layer));
        let (track, media_ssrc) =
            carrier.ok_or_else(|| anyhow!("no track has carried {tag}'s layer {layer:?} yet"))?;
        send_pli(track, media_ssrc).await
    }

    /// Packets written to the connection for `source`, every simulcast layer together
    /// (including any the drop policy lost).
    pub fn sent_packets(&self, source: Source) -> u64 {
        self.encodings(source)
            .map(|local| local.sent_packets.load(Ordering::Relaxed))
            .sum()
    }

    /// Packets written to the connection for the camera's simulcast `layer`.
    pub fn sent_packets_of_layer(&self, layer: Layer) -> u64 {
        self.layer_encoding(layer)
            .map_or(0, |local| local.sent_packets.load(Ordering::Relaxed))
    }

    /// PLIs and FIRs received for `source`, every simulcast layer together.
    pub fn keyframe_requests_received(&self, source: Source) -> u64 {
        self.encodings(source)
            .map(|local| local.keyframe_requests.load(Ordering::Relaxed))
            .sum()
    }

    /// PLIs and FIRs received for the SSRC of the camera's simulcast `layer`.
    pub fn keyframe_requests_received_for_layer(&self, layer: Layer) -> u64 {
        self.layer_encoding(layer)
            .map_or(0, |local| local.keyframe_requests.load(Ordering::Relaxed))
    }

    /// Makes the microphone speaking (audio level [`SPEAKING_AUDIO_LEVEL`], voice activity flag
    /// set) or silent ([`SILENT_AUDIO_LEVEL`], flag clear) from its next packet on. Does nothing
    /// for a peer without audio.
    pub fn set_speaking(&self, speaking: bool) {
        for local in self.encodings(Source::Audio) {
            local.speaking.store(speaking, Ordering::Relaxed);
        }
    }

    /// Outgoing packets lost on purpose by the [`DropPolicy`].
    pub fn dropped_packets(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The SSRC `source` is sent with; `None` for a simulcast camera, which has one per layer
    /// ([`MediaPeer::layer_ssrc`]).
    pub fn ssrc(&self, source: Source) -> Option<u32> {
        match self.outgoing_source(source)?.encodings.as_slice() {
            [single] => Some(single.ssrc),
            _ => None,
        }
    }

    /// The SSRC the camera's simulcast `layer` is sent with.
    pub fn layer_ssrc(&self, layer: Layer) -> Option<u32> {
        self.layer_encoding(layer).map(|local| local.ssrc)
    }

    /// The last outgoing RTP packets (at most [`PeerOptions::capture_outgoing_rtp`], oldest
    /// first), marshalled as they go to SRTP: header, header extensions, payload. Every
    /// interceptor has had them (the transport-wide sequence number is in); packets lost by the
    /// [`DropPolicy`] are not there, their retransmissions are.
    pub fn captured_outgoing_rtp(&self) -> Vec<Bytes> {
        lock(&self.shared.captured).iter().cloned().collect()
    }

    /// Disappears without a word, as a device that lost its network: from now on nothing this
    /// peer sends reaches the wire (no media, RTCP, ICE consent check or DTLS close).
    pub fn vanish(&self) {
        self.network.vanish();
    }

    /// Limits what reaches this peer to `bits_per_second`, as a slow line: the rest is lost.
    pub fn limit_downlink(&self, bits_per_second: u64) {
        self.network.limit_downlink(bits_per_second);
    }

    /// Stops sending and closes the connection.
    pub async fn close(mut self) -> Result<()> {
        self.stop_tasks();
        self.connection.close().await?;
        Ok(())
    }

    fn outgoing_source(&self, source: Source) -> Option<&Arc<Outgoing>> {
        self.outgoing
            .iter()
            .find(|out| out.encodings.iter().any(|local| local.source == source))
    }

    fn encodings(&self, source: Source) -> impl Iterator<Item = &Arc<LocalSource>> {
        self.outgoing_source(source)
            .into_iter()
            .flat_map(|out| out.encodings.iter())
    }

    fn layer_encoding(&self, layer: Layer) -> Option<&Arc<LocalSource>> {
        self.encodings(Source::Video)
            .find(|local| local.layer == Some(layer))
    }

    fn stop_tasks(&mut self) {
        for generator in self.generators.drain(..) {
            generator.abort();
        }
        for reader in lock(&self.shared.readers).drain(..) {
            reader.abort();
        }
    }

    /// The local description, once gathering has completed (or after [`GATHERING_PATIENCE`]).
    async fn local_sdp(&self) -> Result<String> {
        let mut gathering = self.shared.gathering_state.subscribe();
        // Gathering that does not finish in time still leaves the host candidate gathered so
        // far; the description is usable with it.
        let _ = tokio::time::timeout(
            GATHERING_PATIENCE,
            gathering.wait_for(|state| *state == RTCIceGatheringState::Complete),
        )
        .await;
        let description = self
            .connection
            .local_description()
            .await
            .ok_or_else(|| anyhow!("no local description"))?;
        Ok(description.sdp)
    }
}

impl Drop for MediaPeer {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

fn opus_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        },
        payload_type: OPUS_PAYLOAD_TYPE,
    }
}

fn vp8_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: MIME_TYPE_VP8.to_owned(),
            clock_rate: VIDEO_CLOCK_RATE as u32,
            channels: 0,
            sdp_fmtp_line: String::new(),
            // NACK, NACK PLI and transport-cc are added by `configure_nack` / `configure_twcc`.
            rtcp_feedback: vec![RTCPFeedback {
                typ: "ccm".to_owned(),
                parameter: "fir".to_owned(),
            }],
        },
        payload_type: VP8_PAYLOAD_TYPE,
    }
}

/// The peer connection's callbacks.
struct Events {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.shared.gathering_state.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.shared.connection_state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let reader = tokio::spawn(read_track(track, Arc::clone(&self.shared.received)));
        lock(&self.shared.readers).push(reader);
    }
}

/// Reads one remote track until it ends, feeding the statistics.
async fn read_track(track: Arc<dyn TrackRemote>, received: Arc<Mutex<Received>>) {
    let kind = match track.kind().await {
        RtpCodecKind::Audio => MediaKind::Audio,
        _ => MediaKind::Video,
    };
    let (stream_id, track_id) = (track.stream_id().await, track.track_id().await);
    let index = lock(&received).add_track(Arc::clone(&track), stream_id, track_id, kind);
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                lock(&received).on_packet(index, &packet, Instant::now(), unix_micros());
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

/// Everything received, behind one mutex (never held across an `.await`).
#[derive(Default)]
struct Received {
    tracks: Vec<ReceivedTrack>,
    publishers: HashMap<String, Publisher>,
}

struct ReceivedTrack {
    remote: Arc<dyn TrackRemote>,
    stats: RemoteTrackStats,
}

#[derive(Default)]
struct Publisher {
    sources: BTreeMap<Source, PublisherSource>,
    /// The simulcast camera's layers.
    layers: BTreeMap<Layer, PublisherSource>,
    /// The layer of the last camera packet.
    current_layer: Option<Layer>,
    /// (arrival, one-way delay), oldest first.
    latencies: VecDeque<(Instant, Duration)>,
}

/// What packets are counted by: a publisher's source, or one layer of its simulcast camera.
#[derive(Debug, Clone, Copy)]
enum Unit {
    Source(Source),
    Layer(Layer),
}

impl Publisher {
    fn unit(&self, unit: Unit) -> Option<&PublisherSource> {
        match unit {
            Unit::Source(source) => self.sources.get(&source),
            Unit::Layer(layer) => self.layers.get(&layer),
        }
    }
}

#[derive(Default)]
struct PublisherSource {
    stats: SourceStats,
    /// Counters skipped over, not received yet.
    missing: BTreeSet<u64>,
    keyframe_times: VecDeque<Instant>,
    /// The track that carried the last packet, and its SSRC.
    last_track: Option<(usize, u32)>,
}

impl PublisherSource {
    /// Counts a packet (not its probe counter: see [`PublisherSource::on_counter`]).
    fn on_packet(
        &mut self,
        track: (usize, u32),
        bytes: usize,
        inspected: &Inspected,
        now: Instant,
    ) {
        self.last_track = Some(track);
        let stats = &mut self.stats;
        stats.packets += 1;
        stats.bytes += bytes as u64;
        stats.first_packet_at.get_or_insert(now);
        stats.last_packet_at = Some(now);
        if inspected.keyframe {
            stats.keyframes += 1;
            stats.keyframe_size = inspected.frame_size;
            if self.keyframe_times.len() == KEYFRAME_TIMES_KEPT {
                self.keyframe_times.pop_front();
            }
            self.keyframe_times.push_back(now);
        }
    }

    /// Accounts for the probe counter of a packet: gaps, their recovery, duplicates.
    fn on_counter(&mut self, counter: u64) {
        let stats = &mut self.stats;
        match stats.highest_counter {
            None => stats.highest_counter = Some(counter),
            Some(highest) if counter > highest => {
                for skipped in (highest + 1)..counter {
                    if self.missing.len() == MISSING_COUNTERS_KEPT {
                        self.missing.pop_first();
                    }
                    self.missing.insert(skipped);
                }
                stats.highest_counter = Some(counter);
            }
            Some(_) => {
                if self.missing.remove(&counter) {
                    stats.recovered += 1;
                } else {
                    stats.duplicates += 1;
                }
            }
        }
        stats.missing = self.missing.len() as u64;
    }
}

impl Received {
    fn add_track(
        &mut self,
        remote: Arc<dyn TrackRemote>,
        stream_id: String,
        track_id: String,
        kind: MediaKind,
    ) -> usize {
        self.tracks.push(ReceivedTrack {
            remote,
            stats: RemoteTrackStats {
                stream_id,
                track_id,
                kind,
                ssrc: 0,
                packets: 0,
                bytes: 0,
                keyframes: 0,
                first_packet_at: None,
                last_packet_at: None,
                packets_by_tag: BTreeMap::new(),
                packets_by_layer: BTreeMap::new(),
                layer: None,
                discontinuities: 0,
                highest: None,
            },
        });
        self.tracks.len() - 1
    }

    fn on_packet(
        &mut self,
        index: usize,
        packet: &rtc::rtp::Packet,
        now: Instant,
        now_micros: u64,
    ) {
        let Some(track) = self.tracks.get_mut(index) else {
            return;
        };
        let payload = &packet.payload[..];
        let inspected = inspect_payload(track.stats.kind, payload);
        let stats = &mut track.stats;
        stats.ssrc = packet.header.ssrc;
        stats.on_numbering(packet.header.sequence_number, packet.header.timestamp);
        stats.packets += 1;
        stats.bytes += payload.len() as u64;
        stats.first_packet_at.get_or_insert(now);
        stats.last_packet_at = Some(now);
        if inspected.keyframe {
            stats.keyframes += 1;
        }
        let Some(probe) = &inspected.probe else {
            return;
        };
        *stats.packets_by_tag.entry(probe.tag.clone()).or_default() += 1;
        stats.layer = probe.layer;
        if let Some(layer) = probe.layer {
            *stats.packets_by_layer.entry(layer).or_default() += 1;
        }

        let publisher = self.publishers.entry(probe.tag.clone()).or_default();
        if publisher.latencies.len() == LATENCY_SAMPLES_KEPT {
            publisher.latencies.pop_front();
        }
        let delay = Duration::from_micros(now_micros.saturating_sub(probe.sent_at_micros));
        publisher.latencies.push_back((now, delay));

        let carrier = (index, packet.header.ssrc);
        let source = publisher.sources.entry(probe.source).or_default();
        source.on_packet(carrier, payload.len(), &inspected, now);
        match probe.layer {
            // Each layer counts its own probes: the gaps are per layer.
            Some(layer) => {
                let layer_record = publisher.layers.entry(layer).or_default();
                layer_record.on_packet(carrier, payload.len(), &inspected, now);
                layer_record.on_counter(probe.counter);
            }
            None => source.on_counter(probe.counter),
        }
        if probe.source == Source::Video {
            publisher.current_layer = probe.layer;
        }
    }

    fn publisher_stats(&self, tag: &str) -> PublisherStats {
        let Some(publisher) = self.publishers.get(tag) else {
            return PublisherStats::default();
        };
        let layers: BTreeMap<Layer, SourceStats> = publisher
            .layers
            .iter()
            .map(|(layer, record)| (*layer, record.stats.clone()))
            .collect();
        let sources = publisher
            .sources
            .iter()
            .map(|(source, record)| {
                let mut stats = record.stats.clone();
                if *source == Source::Video {
                    // The gaps of a simulcast camera are its layers'.
                    for layer in layers.values() {
                        stats.missing += layer.missing;
                        stats.recovered += layer.recovered;
                        stats.duplicates += layer.duplicates;
                    }
                }
                (*source, stats)
            })
            .collect();
        PublisherStats {
            sources,
            layers,
            current_layer: publisher.current_layer,
        }
    }

    fn first_keyframe_after(&self, tag: &str, unit: Unit, after: Instant) -> Option<Instant> {
        self.publishers
            .get(tag)?
            .unit(unit)?
            .keyframe_times
            .iter()
            .copied()
            .find(|at| *at >= after)
    }

    fn latency_from(&self, tag: &str, after: Option<Instant>) -> LatencySamples {
        let samples = self
            .publishers
            .get(tag)
            .map(|publisher| {
                publisher
                    .latencies
                    .iter()
                    .filter(|(at, _)| after.is_none_or(|after| *at >= after))
                    .map(|(_, delay)| *delay)
                    .collect()
            })
            .unwrap_or_default();
        LatencySamples::new(samples)
    }

    fn track_carrying(&self, tag: &str, unit: Unit) -> Option<(Arc<dyn TrackRemote>, u32)> {
        let (index, ssrc) = self.publishers.get(tag)?.unit(unit)?.last_track?;
        Some((Arc::clone(&self.tracks.get(index)?.remote), ssrc))
    }
}

/// The generator of one encoding of a published source (the source, or one simulcast layer of
/// the camera): runs until aborted.
async fn generate(
    out: Arc<Outgoing>,
    local: Arc<LocalSource>,
    tag: String,
    options: PeerOptions,
    mut connection_state: watch::Receiver<RTCPeerConnectionState>,
) {
    let local = local.as_ref();
    let period = match local.source.kind() {
        MediaKind::Audio => AUDIO_PACKET_INTERVAL,
        MediaKind::Video => Duration::from_secs(1) / options.video_fps.max(1),
    };
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stream = StreamWriter {
        sequence_number: random_u32() as u16,
        timestamp_base: random_u32(),
        started: Instant::now(),
        counter: 0,
        picture_id: random_u32() as u16 & 0x7fff,
        frames: 0,
        last_keyframe: None,
        payload_type: None,
    };
    let mut mid = None;
    loop {
        ticker.tick().await;
        if *connection_state.borrow_and_update() != RTCPeerConnectionState::Connected {
            // A receiver joining (or coming back) needs a keyframe first.
            stream.last_keyframe = None;
            continue;
        }
        if stream.payload_type.is_none() {
            stream.payload_type = negotiated_payload_type(&out.sender).await;
        }
        let Some(payload_type) = stream.payload_type else {
            continue;
        };
        // A simulcast layer is known to a receiver only by its mid and rid: nothing goes out
        // without them. Looked up for every frame, as a renegotiation could move the ids.
        let extensions = match local.layer {
            None => None,
            Some(layer) => match layer_extensions(&out, layer, &mut mid).await {
                Some(extensions) => Some(extensions),
                None => {
                    stream.last_keyframe = None;
                    continue;
                }
            },
        };
        let packets = match local.source.kind() {
            MediaKind::Audio => {
                let mut packet = stream.audio_packet(local, &tag, payload_type);
                // Looked up for every packet too. Without a negotiated id (the remote side did
                // not accept the extension) the packet goes without it: `webrtc` would refuse it.
                if let Some(id) = audio_level_id(&out.sender).await {
                    let level = audio_level(local.speaking.load(Ordering::Relaxed));
                    // The id was checked to fit the one-byte form and the value is one byte.
                    let _ = packet.header.set_extension(id, level);
                }
                vec![packet]
            }
            MediaKind::Video => stream.video_frame(local, &tag, payload_type, &options),
        };
        for mut packet in packets {
            if let Some(extensions) = &extensions {
                extensions.apply(&mut packet.header);
            }
            local.sent_packets.fetch_add(1, Ordering::Relaxed);
            if out.track.write_rtp(packet).await.is_err() {
                // Not bound (yet, or any more): the next frame that goes out must be a keyframe.
                stream.last_keyframe = None;
            }
        }
    }
}

async fn negotiated_payload_type(sender: &Arc<dyn RtpSender>) -> Option<u8> {
    let parameters = sender.get_parameters().await.ok()?;
    parameters
        .rtp_parameters
        .codecs
        .first()
        .map(|codec| codec.payload_type)
}

/// The header extensions every packet of a simulcast layer carries (RFC 8852).
struct LayerExtensions {
    mid_id: u8,
    mid: Bytes,
    rid_id: u8,
    rid: Bytes,
}

impl LayerExtensions {
    fn apply(&self, header: &mut rtc::rtp::header::Header) {
        // Both ids were checked to fit the one-byte form and the values are a few bytes: these
        // cannot fail.
        let _ = header.set_extension(self.mid_id, self.mid.clone());
        let _ = header.set_extension(self.rid_id, self.rid.clone());
    }
}

/// The negotiated ids of the mid and rid extensions for `layer`, and the transceiver's mid
/// (remembered in `mid` once known); `None` until all three are known.
async fn layer_extensions(
    out: &Outgoing,
    layer: Layer,
    mid: &mut Option<Bytes>,
) -> Option<LayerExtensions> {
    if mid.is_none() {
        *mid = out
            .transceiver
            .mid()
            .await
            .ok()
            .flatten()
            .filter(|mid| !mid.is_empty() && mid.len() <= 16)
            .map(Bytes::from);
    }
    let parameters = out.sender.get_parameters().await.ok()?;
    let extensions = &parameters.rtp_parameters.header_extensions;
    Some(LayerExtensions {
        mid_id: extension_id(extensions, SDES_MID_URI)?,
        mid: mid.clone()?,
        rid_id: extension_id(extensions, SDES_RTP_STREAM_ID_URI)?,
        rid: Bytes::from_static(layer.rid().as_bytes()),
    })
}

/// The id negotiated for the header extension `uri`, if it fits the one-byte form (RFC 8285).
fn extension_id(extensions: &[RTCRtpHeaderExtensionParameters], uri: &str) -> Option<u8> {
    extensions
        .iter()
        .find(|extension| extension.uri == uri)
        .and_then(|extension| u8::try_from(extension.id).ok())
        .filter(|id| (1..=14).contains(id))
}

/// The negotiated id of the audio level extension on `sender`'s m-line; `None` until the
/// negotiation settled one, or if it did not keep the extension.
async fn audio_level_id(sender: &Arc<dyn RtpSender>) -> Option<u8> {
    let parameters = sender.get_parameters().await.ok()?;
    extension_id(
        &parameters.rtp_parameters.header_extensions,
        AUDIO_LEVEL_URI,
    )
}

/// The audio level extension's one byte (RFC 6464): the voice activity flag (bit 7), then the
/// level in -dBov (bits 0–6).
fn audio_level(speaking: bool) -> Bytes {
    let byte = if speaking {
        0x80 | SPEAKING_AUDIO_LEVEL
    } else {
        SILENT_AUDIO_LEVEL
    };
    Bytes::copy_from_slice(&[byte])
}

/// Sends a PLI for `media_ssrc` on `track`.
async fn send_pli(track: Arc<dyn TrackRemote>, media_ssrc: u32) -> Result<()> {
    track
        .write_rtcp(vec![Box::new(PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        })])
        .await?;
    Ok(())
}

/// How the frames of one video encoding look.
struct FrameShape {
    /// The frame size announced in keyframes.
    frame_size: (u16, u16),
    /// The payload size of each packet, codec headers and probe included.
    packet_bytes: usize,
    packets: usize,
}

impl FrameShape {
    /// The shape of frame number `frames` of `local`.
    fn of(local: &LocalSource, keyframe: bool, frames: u64) -> FrameShape {
        let alternate = (frames % 2) as usize;
        match local.layer {
            None => FrameShape {
                frame_size: local.source.frame_size(),
                packet_bytes: VIDEO_PACKET_BYTES,
                packets: if keyframe { 3 } else { 1 + alternate },
            },
            Some(layer) => FrameShape {
                frame_size: layer.frame_size(),
                packet_bytes: match layer {
                    Layer::Low => LOW_LAYER_PACKET_BYTES,
                    Layer::Medium | Layer::High => VIDEO_PACKET_BYTES,
                },
                packets: match (layer, keyframe) {
                    (Layer::Low | Layer::Medium, false) => 1,
                    (Layer::Low | Layer::Medium, true) => 2,
                    (Layer::High, false) => 2 + alternate,
                    (Layer::High, true) => 4,
                },
            },
        }
    }
}

/// The RTP state of one encoding of a published source.
struct StreamWriter {
    sequence_number: u16,
    timestamp_base: u32,
    started: Instant,
    /// The probe counter of the next packet.
    counter: u64,
    picture_id: u16,
    frames: u64,
    last_keyframe: Option<Instant>,
    payload_type: Option<u8>,
}

impl StreamWriter {
    fn audio_packet(&mut self, out: &LocalSource, tag: &str, payload_type: u8) -> rtc::rtp::Packet {
        let mut payload = BytesMut::with_capacity(AUDIO_PACKET_BYTES);
        payload.put_u8(OPUS_TOC);
        self.put_probe(&mut payload, out, tag);
        payload.resize(AUDIO_PACKET_BYTES.max(payload.len()), 0);
        let timestamp = self
            .timestamp_base
            .wrapping_add((self.frames as u32).wrapping_mul(AUDIO_SAMPLES_PER_PACKET));
        self.frames += 1;
        self.rtp(out.ssrc, payload_type, timestamp, false, payload.freeze())
    }

    fn video_frame(
        &mut self,
        out: &LocalSource,
        tag: &str,
        payload_type: u8,
        options: &PeerOptions,
    ) -> Vec<rtc::rtp::Packet> {
        let now = Instant::now();
        let requested = out.keyframe_requested.swap(false, Ordering::Relaxed);
        let keyframe = requested
            || self
                .last_keyframe
                .is_none_or(|last| now.duration_since(last) >= options.keyframe_interval);
        if keyframe {
            self.last_keyframe = Some(now);
        }
        let shape = FrameShape::of(out, keyframe, self.frames);
        let elapsed = now.duration_since(self.started).as_micros() as u64;
        let timestamp = self
            .timestamp_base
            .wrapping_add((elapsed * VIDEO_CLOCK_RATE / 1_000_000) as u32);
        let picture_id = self.picture_id;
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        self.frames += 1;

        (0..shape.packets)
            .map(|index| {
                let first = index == 0;
                let mut payload = BytesMut::with_capacity(shape.packet_bytes);
                // RFC 7741 payload descriptor: X=1, S on the first packet, PID=0; then I=1 and
                // a 15-bit picture id (M=1).
                payload.put_u8(if first { 0x90 } else { 0x80 });
                payload.put_u8(0x80);
                payload.put_u16(0x8000 | picture_id);
                if first {
                    put_vp8_payload_header(&mut payload, keyframe, shape.frame_size);
                }
                self.put_probe(&mut payload, out, tag);
                payload.resize(shape.packet_bytes.max(payload.len()), 0);
                let last = index + 1 == shape.packets;
                self.rtp(out.ssrc, payload_type, timestamp, last, payload.freeze())
            })
            .collect()
    }

    fn put_probe(&mut self, payload: &mut BytesMut, out: &LocalSource, tag: &str) {
        payload.put_slice(PROBE_MAGIC);
        payload.put_u8(out.source.code());
        // The name was checked to be at most 64 bytes.
        payload.put_u8(tag.len() as u8);
        payload.put_slice(tag.as_bytes());
        payload.put_u64(self.counter);
        payload.put_u64(unix_micros());
        if let Some(layer) = out.layer {
            payload.put_u8(layer.code());
        }
        self.counter += 1;
    }

    fn rtp(
        &mut self,
        ssrc: u32,
        payload_type: u8,
        timestamp: u32,
        marker: bool,
        payload: Bytes,
    ) -> rtc::rtp::Packet {
        let sequence_number = self.sequence_number;
        self.sequence_number = self.sequence_number.wrapping_add(1);
        rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker,
                payload_type,
                sequence_number,
                timestamp,
                ssrc,
                ..Default::default()
            },
            payload,
        }
    }
}

/// The VP8 payload header (RFC 6386 §9.1, RFC 7741 §4.3): the 3-byte frame tag, and for a
/// keyframe the start code and the frame size.
fn put_vp8_payload_header(payload: &mut BytesMut, keyframe: bool, (width, height): (u16, u16)) {
    const FIRST_PARTITION_SIZE: u32 = 256;
    let inverse_key_frame = u32::from(!keyframe);
    let version = 0;
    let show_frame = 1;
    let tag = inverse_key_frame | (version << 1) | (show_frame << 4) | (FIRST_PARTITION_SIZE << 5);
    payload.put_slice(&tag.to_le_bytes()[..3]);
    if keyframe {
        payload.put_slice(&[0x9d, 0x01, 0x2a]);
        // 14 bits of size, 2 bits of scaling (none).
        payload.put_u16_le(width & 0x3fff);
        payload.put_u16_le(height & 0x3fff);
    }
}

/// What a received payload says about itself.
struct Inspected {
    keyframe: bool,
    /// The frame size a keyframe announces.
    frame_size: Option<(u16, u16)>,
    probe: Option<Probe>,
}

/// The probe embedded after the codec headers.
struct Probe {
    source: Source,
    tag: String,
    counter: u64,
    sent_at_micros: u64,
    /// The simulcast layer, for a packet of one.
    layer: Option<Layer>,
}

/// Finds the codec headers of a payload (Opus TOC byte, VP8 descriptor and payload header),
/// whether it starts a VP8 keyframe, and the probe after them.
fn inspect_payload(kind: MediaKind, payload: &[u8]) -> Inspected {
    let (frame_size, probe_at) = match kind {
        MediaKind::Audio => (None, Some(1)),
        MediaKind::Video => match vp8_headers(payload) {
            Some((frame_size, length)) => (frame_size, Some(length)),
            None => (None, None),
        },
    };
    Inspected {
        keyframe: frame_size.is_some(),
        frame_size,
        probe: probe_at
            .and_then(|at| payload.get(at..))
            .and_then(parse_probe),
    }
}

/// Parses the VP8 payload descriptor and, on the first packet of a frame, the payload header;
/// returns the frame size (width, height) if this packet starts a keyframe, and the length of the
/// codec headers.
fn vp8_headers(payload: &[u8]) -> Option<(Option<(u16, u16)>, usize)> {
    let first = *payload.first()?;
    let mut length = 1;
    if first & 0x80 != 0 {
        let extension = *payload.get(1)?;
        length = 2;
        if extension & 0x80 != 0 {
            // Picture id: one byte, or two when its M bit is set.
            length += if payload.get(length)? & 0x80 != 0 {
                2
            } else {
                1
            };
        }
        if extension & 0x40 != 0 {
            length += 1; // TL0PICIDX
        }
        if extension & 0x30 != 0 {
            length += 1; // TID / KEYIDX
        }
    }
    let starts_frame = first & 0x10 != 0 && first & 0x07 == 0;
    if !starts_frame {
        return Some((None, length));
    }
    let keyframe = payload.get(length)? & 0x01 == 0;
    if keyframe {
        let start_code = payload.get(length + 3..length + 6)?;
        if start_code != [0x9d, 0x01, 0x2a] {
            return None;
        }
        let size = payload.get(length + 6..length + 10)?;
        // 14 bits of size, 2 bits of scaling.
        let width = u16::from_le_bytes([size[0], size[1]]) & 0x3fff;
        let height = u16::from_le_bytes([size[2], size[3]]) & 0x3fff;
        Some((Some((width, height)), length + 10))
    } else {
        Some((None, length + 3))
    }
}

fn parse_probe(bytes: &[u8]) -> Option<Probe> {
    let rest = bytes.strip_prefix(PROBE_MAGIC)?;
    let (&source, rest) = rest.split_first()?;
    let (&tag_length, rest) = rest.split_first()?;
    let tag = rest.get(..usize::from(tag_length))?;
    let rest = &rest[usize::from(tag_length)..];
    let counter = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let sent_at_micros = u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?);
    // Absent, or the zero padding, when the packet is not simulcast.
    let layer = rest.get(16).copied().and_then(Layer::from_code);
    Some(Probe {
        source: Source::from_code(source)?,
        tag: String::from_utf8(tag.to_vec()).ok()?,
        counter,
        sent_at_micros,
        layer,
    })
}

/// The interceptor nearest the wire: notices keyframe requests for the published video sources
/// and applies the [`DropPolicy`].
struct WireInterceptor {
    locals: Vec<Arc<LocalSource>>,
    drop_policy: Option<DropPolicy>,
    /// First transmissions per video SSRC since the last one dropped.
    video_packets: HashMap<u32, u64>,
    /// (SSRC, sequence number) of recently dropped packets: their retransmission goes through.
    dropped: VecDeque<(u32, u16)>,
    dropped_count: Arc<AtomicU64>,
    /// How many outgoing packets `captured` keeps.
    capture_limit: usize,
    captured: Arc<Mutex<VecDeque<Bytes>>>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl WireInterceptor {
    fn video_source(&self, ssrc: u32) -> Option<&LocalSource> {
        self.locals
            .iter()
            .find(|local| local.ssrc == ssrc && local.source.kind() == MediaKind::Video)
            .map(Arc::as_ref)
    }

    fn keyframe_requested(&self, ssrc: u32) {
        if let Some(local) = self.video_source(ssrc) {
            local.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            local.keyframe_requested.store(true, Ordering::Relaxed);
        }
    }

    /// Keeps a marshalled copy of an outgoing packet, if asked to.
    fn capture(&self, packet: &rtc::rtp::Packet) {
        if self.capture_limit == 0 {
            return;
        }
        let Ok(bytes) = packet.marshal() else {
            return;
        };
        let mut captured = lock(&self.captured);
        if captured.len() >= self.capture_limit {
            captured.pop_front();
        }
        captured.push_back(bytes.freeze());
    }

    /// Whether the policy loses this outgoing RTP packet.
    fn drops(&mut self, packet: &rtc::rtp::Packet) -> bool {
        let Some(DropPolicy::EveryNthVideoPacket(n)) = self.drop_policy else {
            return false;
        };
        let key = (packet.header.ssrc, packet.header.sequence_number);
        if n == 0 || self.video_source(key.0).is_none() {
            return false;
        }
        if let Some(position) = self.dropped.iter().position(|dropped| *dropped == key) {
            // The retransmission of a packet dropped before.
            self.dropped.remove(position);
            return false;
        }
        let since_last_drop = self.video_packets.entry(key.0).or_default();
        *since_last_drop += 1;
        if *since_last_drop < n {
            return false;
        }
        *since_last_drop = 0;
        if self.dropped.len() == DROPPED_PACKETS_KEPT {
            self.dropped.pop_front();
        }
        self.dropped.push_back(key);
        self.dropped_count.fetch_add(1, Ordering::Relaxed);
        true
    }
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for WireInterceptor {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let ChainPacket::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                let any = packet.as_any();
                if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                    self.keyframe_requested(pli.media_ssrc);
                } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                    for entry in &fir.fir {
                        self.keyframe_requested(entry.ssrc);
                    }
                }
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.reads.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let ChainPacket::Rtp(packet) = &msg.message.packet {
            if self.drops(packet) {
                return Ok(());
            }
            self.capture(packet);
        }
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.writes.pop_front()
    }
}

impl Interceptor for WireInterceptor {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as u64)
}

fn random_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}
