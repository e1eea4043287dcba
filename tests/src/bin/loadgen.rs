//! `accordo-loadgen`: N rooms × 5 synthetic webrtc-rs participants against a running SFU, for a
//! fixed time; reports forwarded packets per second, loss, end-to-end latency and the server's
//! CPU and memory (read from /proc when given its pid). The SFU is Accordo (`--target accordo`,
//! the default) or, for comparison with the same rooms and media, Janus 1.1's VideoRoom plugin
//! (`--target janus`, started by `infra/bench/janus/start`).
//!
//! Each participant publishes Opus-sized audio (50 packets/s) and VP8 video at 66 frames/s of
//! one or two ~1000-byte packets (≈ 100 packets/s, ≈ 0.8 Mbit/s) with a keyframe every 2 s,
//! and receives the other four. Payloads carry their sender's name and send time, so latency is
//! measured end to end (sender and receivers share this machine's clock).
//!
//! What differs between the targets is only how a participant connects:
//!
//! - Accordo: one peer connection per participant, which publishes and receives, negotiated over
//!   the room's WebSocket with the personal link of a room the load generator opens through the
//!   API (hence `--username`/`--password`, a segreteria or admin account).
//! - Janus: two peer connections per participant, as Janus's VideoRoom works: one publishing
//!   (a publisher handle) and one receive-only that subscribes to the other four publishers of
//!   the room (one multistream subscriber handle), each participant in its own Janus session.
//!   The load generator creates the rooms through the plugin's API (VP8 and Opus, 2 Mbit/s cap,
//!   not recorded) and destroys them at the end. Start Janus with `infra/bench/janus/start`: Janus
//!   never gathers on the loopback interface, so its candidate is this machine's own address,
//!   which the script makes reachable from the peers' 127.0.0.1 (the traffic still goes over lo).
//!
//! The measurement is the same for both: packets sent by the publishers, packets received by the
//! receivers (only RTP media, and on Janus only media attributed by its payload to one of the
//! four others), loss = 1 − received / (4 × sent), latency from the payloads' send times.
//!
//! ```text
//! accordo-loadgen --server http://127.0.0.1:8080 --username admin --password '…' \
//!     --rooms 2 --seconds 20 --server-pid $(pidof accordo)
//! accordo-loadgen --target janus --janus-url http://127.0.0.1:8088/janus \
//!     --rooms 2 --seconds 20 --server-pid $(pgrep -x janus)
//! ```

use std::time::{Duration, Instant};

use accordo_tests::janus::{JanusClient, JanusSession, RoomSettings, VideoRoomHandle};
use accordo_tests::media_peer::{MediaPeer, PeerOptions, Source};
use accordo_tests::participant::{keep_negotiating, negotiate_until, Participant};
use accordo_tests::{open_room, Browser, CAST};
use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "accordo-loadgen",
    about = "Synthetic WebRTC load against an Accordo server (or Janus's VideoRoom)."
)]
struct Args {
    /// The SFU to load.
    #[arg(long, value_enum, default_value_t = Target::Accordo)]
    target: Target,
    /// Accordo's address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A segreteria or admin account that opens the rooms (Accordo only).
    #[arg(long)]
    username: Option<String>,
    /// Its password (Accordo only).
    #[arg(long)]
    password: Option<String>,
    /// Janus's HTTP API, base path included (Janus only).
    #[arg(long, default_value = "http://127.0.0.1:8088/janus")]
    janus_url: String,
    /// Rooms of five participants.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Seconds measured (after the media has settled).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// The server's process id (Accordo's, or Janus's), to read its CPU time and peak memory.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// The SFU under load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    Accordo,
    Janus,
}

const PEOPLE: &[(&str, &str, Option<&str>)] = &CAST;
/// How long the media may take to flow everywhere before the measurement starts.
const SETTLE_PATIENCE: Duration = Duration::from_secs(60);
/// Packets of each source from each other participant a receiver must have had to be settled.
const SETTLED_PACKETS: u64 = 20;
/// How long a Janus publisher's peer connection may take to come up.
const JANUS_CONNECT_PATIENCE: Duration = Duration::from_secs(15);
/// The bitrate cap of a Janus room (REMB to publishers): far above the 0.8 Mbit/s published.
const JANUS_ROOM_BITRATE: u64 = 2_000_000;

fn media_options() -> PeerOptions {
    PeerOptions {
        video_fps: 66,
        keyframe_interval: Duration::from_secs(2),
        ..PeerOptions::default()
    }
}

/// One participant as the measurement sees it, whatever the target.
struct Member<'a> {
    room: usize,
    name: &'static str,
    /// The peer that publishes this participant's audio and video.
    publisher: &'a MediaPeer,
    /// The peer that receives the other four (the same peer on Accordo).
    receiver: &'a MediaPeer,
}

impl Member<'_> {
    /// The names of the other participants of the room (the publishers this one receives).
    fn others(&self) -> impl Iterator<Item = &'static str> + '_ {
        PEOPLE
            .iter()
            .map(|(name, _, _)| *name)
            .filter(move |name| *name != self.name)
    }
}

/// The participants of every room, connected to the target.
enum Load {
    Accordo(Vec<Participant>),
    Janus(JanusLoad),
}

impl Load {
    fn members(&self) -> Vec<Member<'_>> {
        match self {
            Load::Accordo(participants) => participants
                .iter()
                .enumerate()
                .map(|(index, participant)| Member {
                    room: index / PEOPLE.len(),
                    name: participant.name,
                    publisher: &participant.peer,
                    receiver: &participant.peer,
                })
                .collect(),
            Load::Janus(load) => load
                .participants
                .iter()
                .map(|participant| Member {
                    room: participant.room,
                    name: participant.name,
                    publisher: &participant.publisher,
                    receiver: &participant.receiver,
                })
                .collect(),
        }
    }

    /// Peer connections the target serves.
    fn peer_connections(&self) -> usize {
        match self {
            Load::Accordo(participants) => participants.len(),
            Load::Janus(load) => load.participants.len() * 2,
        }
    }

    /// Waits until every receiver gets media from the other four.
    async fn settle(&mut self) -> Result<()> {
        match self {
            Load::Accordo(participants) => {
                negotiate_until(participants, SETTLE_PATIENCE, |all| {
                    all.iter().all(|receiver| {
                        receiver
                            .peer
                            .stats()
                            .iter()
                            .filter(|t| t.packets > SETTLED_PACKETS)
                            .count()
                            >= 8
                    })
                })
                .await;
                Ok(())
            }
            Load::Janus(_) => {
                let deadline = Instant::now() + SETTLE_PATIENCE;
                loop {
                    let unsettled: Vec<String> = self
                        .members()
                        .iter()
                        .flat_map(|member| {
                            member.others().filter_map(move |other| {
                                let from = member.receiver.publisher_stats(other);
                                let settled = [Source::Audio, Source::Video]
                                    .into_iter()
                                    .all(|source| from.source(source).packets > SETTLED_PACKETS);
                                (!settled).then(|| {
                                    format!("room {} {} ← {other}", member.room, member.name)
                                })
                            })
                        })
                        .collect();
                    if unsettled.is_empty() {
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        bail!(
                            "media did not settle within {SETTLE_PATIENCE:?}; missing: {}",
                            unsettled.join(", ")
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Lets the media flow for `window` (answering Accordo's renegotiations meanwhile).
    async fn run_for(&mut self, window: Duration) {
        match self {
            Load::Accordo(participants) => keep_negotiating(participants, window).await,
            Load::Janus(_) => tokio::time::sleep(window).await,
        }
    }

    /// RTP media packets received so far by every receiver. On Accordo, every packet of the
    /// tracks it forwards (only the others' media reaches them); on Janus, only the packets
    /// whose payload names one of the four others (nothing Janus might add counts).
    fn received(&self) -> u64 {
        match self {
            Load::Accordo(participants) => participants
                .iter()
                .flat_map(|p| p.peer.stats())
                .map(|track| track.packets)
                .sum(),
            Load::Janus(_) => self
                .members()
                .iter()
                .flat_map(|member| {
                    member
                        .others()
                        .map(|other| member.receiver.packets_from(other))
                })
                .sum(),
        }
    }

    /// RTP packets received on the receivers' tracks that [`Load::received`] does not count.
    fn unattributed(&self) -> u64 {
        let all: u64 = self
            .members()
            .iter()
            .flat_map(|member| member.receiver.stats())
            .map(|track| track.packets)
            .sum();
        all.saturating_sub(self.received())
    }

    /// Packets sent so far by every publisher.
    fn sent(&self) -> u64 {
        self.members()
            .iter()
            .map(|m| {
                m.publisher.sent_packets(Source::Audio) + m.publisher.sent_packets(Source::Video)
            })
            .sum()
    }

    async fn close(self) {
        match self {
            Load::Accordo(participants) => {
                for participant in participants {
                    let _ = participant.peer.close().await;
                }
            }
            Load::Janus(load) => load.close().await,
        }
    }
}

/// Opens the rooms through Accordo's API and joins everyone with their personal links.
async fn accordo_load(args: &Args) -> Result<Load> {
    let (Some(username), Some(password)) = (&args.username, &args.password) else {
        bail!("--username and --password are needed with --target accordo");
    };
    let office = Browser::new(&args.server);
    let login = office
        .post_form("/login", &[("username", username), ("password", password)])
        .await;
    match (login.status().as_u16(), accordo_tests::location(&login)) {
        (303, "/") => {}
        // A fresh account from `accordo admin create-user`: replace its one-time password.
        (303, "/password") => {
            let chosen = format!("carico di prova {}", uuid::Uuid::new_v4().simple());
            office.change_password(password, &chosen).await;
        }
        (status, _) => bail!("login refused (status {status})"),
    }
    let mut participants = Vec::new();
    for _ in 0..args.rooms {
        let setup = open_room(&office, PEOPLE, true).await;
        for (name, _, _) in PEOPLE {
            participants.push(Participant::join(&args.server, &setup, name, media_options()).await);
        }
    }
    Ok(Load::Accordo(participants))
}

/// Everyone connected to Janus, and what keeps their sessions and rooms alive.
struct JanusLoad {
    participants: Vec<JanusParticipant>,
    /// The session and handle that created the rooms, and the rooms.
    control: (JanusSession, VideoRoomHandle),
    rooms: Vec<u64>,
}

/// A participant on Janus: a publishing and a receiving peer connection in one session.
struct JanusParticipant {
    room: usize,
    name: &'static str,
    publisher: MediaPeer,
    receiver: MediaPeer,
    publisher_handle: VideoRoomHandle,
    subscriber_handle: Option<VideoRoomHandle>,
    session: JanusSession,
}

impl JanusLoad {
    async fn close(self) {
        for participant in self.participants {
            let _ = participant.publisher.close().await;
            let _ = participant.receiver.close().await;
            drop(participant.publisher_handle);
            drop(participant.subscriber_handle);
            if let Err(error) = participant.session.destroy().await {
                eprintln!(
                    "janus: session of {} not destroyed: {error:#}",
                    participant.name
                );
            }
        }
        let (session, handle) = self.control;
        for room in self.rooms {
            if let Err(error) = handle
                .message(
                    serde_json::json!({ "request": "destroy", "room": room }),
                    None,
                )
                .await
            {
                eprintln!("janus: room {room} not destroyed: {error:#}");
            }
        }
        drop(handle);
        let _ = session.destroy().await;
    }
}

/// Creates the rooms on Janus, publishes everyone, then subscribes everyone to the other four.
async fn janus_load(args: &Args) -> Result<Load> {
    let client = JanusClient::new(&args.janus_url)?;
    let info = client
        .info()
        .await
        .with_context(|| format!("Janus does not answer at {}", args.janus_url))?;
    if info["plugins"]
        .get(accordo_tests::janus::VIDEOROOM)
        .is_none()
    {
        bail!("Janus at {} has no VideoRoom plugin", args.janus_url);
    }
    let control_session = client.create_session().await?;
    let control = control_session.attach_videoroom().await?;
    let mut rooms = Vec::new();
    let mut participants: Vec<JanusParticipant> = Vec::new();
    // Publisher ids and private ids, in the order of `participants`.
    let mut joined = Vec::new();
    for room_index in 0..args.rooms {
        let room = control
            .create_room(&RoomSettings {
                description: format!("accordo-loadgen {room_index}"),
                publishers: PEOPLE.len() as u32 + 1,
                bitrate: JANUS_ROOM_BITRATE,
            })
            .await
            .context("create a room")?;
        rooms.push(room);
        for (name, _, _) in PEOPLE {
            let session = client.create_session().await?;
            let publisher_handle = session.attach_videoroom().await?;
            let ids = publisher_handle
                .join_as_publisher(room, name)
                .await
                .with_context(|| format!("{name} joins room {room}"))?;
            let publisher = MediaPeer::new(name, media_options()).await?;
            let offer = publisher.create_offer().await?;
            let answer = publisher_handle
                .publish(&offer)
                .await
                .with_context(|| format!("{name} publishes in room {room}"))?;
            publisher
                .set_remote_answer(&answer)
                .await
                .with_context(|| format!("{name}: Janus's answer"))?;
            joined.push((room, ids));
            // The receiver connects below, once every publisher of the room is up.
            participants.push(JanusParticipant {
                room: room_index,
                name,
                publisher,
                receiver: MediaPeer::new(&format!("{name} receiver"), PeerOptions::receive_only())
                    .await?,
                publisher_handle,
                subscriber_handle: None,
                session,
            });
        }
    }
    // A feed can be subscribed to once its publisher's connection is up.
    for participant in &participants {
        participant
            .publisher_handle
            .wait_for_webrtc_up(JANUS_CONNECT_PATIENCE)
            .await
            .with_context(|| format!("{}'s publisher connection", participant.name))?;
    }
    for index in 0..participants.len() {
        let (room, own) = joined[index];
        let feeds: Vec<u64> = joined
            .iter()
            .filter(|(other_room, other)| *other_room == room && other.id != own.id)
            .map(|(_, other)| other.id)
            .collect();
        let participant = &mut participants[index];
        let handle = participant.session.attach_videoroom().await?;
        let offer = handle
            .join_as_subscriber(room, &feeds, own.private_id)
            .await
            .with_context(|| format!("{} subscribes in room {room}", participant.name))?;
        let answer = participant
            .receiver
            .accept_offer(&offer)
            .await
            .with_context(|| format!("{}: Janus's subscription offer", participant.name))?;
        handle
            .start(&answer)
            .await
            .with_context(|| format!("{} starts receiving", participant.name))?;
        participant.subscriber_handle = Some(handle);
    }
    Ok(Load::Janus(JanusLoad {
        participants,
        control: (control_session, control),
        rooms,
    }))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut load = match args.target {
        Target::Accordo => accordo_load(&args).await?,
        Target::Janus => janus_load(&args).await?,
    };
    load.settle().await?;

    let marks: Vec<_> = load
        .members()
        .iter()
        .map(|member| member.receiver.mark())
        .collect();
    let received_before = load.received();
    let sent_before = load.sent();
    let server_before = args
        .server_pid
        .map(accordo_tests::process_figures)
        .transpose()?;
    let started = Instant::now();
    load.run_for(Duration::from_secs(args.seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let server_after = args
        .server_pid
        .map(accordo_tests::process_figures)
        .transpose()?;
    let received = load.received() - received_before;
    let sent = load.sent() - sent_before;

    let mut latencies: Vec<Duration> = Vec::new();
    for (member, mark) in load.members().iter().zip(&marks) {
        for other in member.others() {
            latencies.extend_from_slice(mark.latency_from(other).as_slice());
        }
    }
    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((p / 100.0) * (latencies.len() - 1) as f64).round() as usize;
        latencies[index.min(latencies.len() - 1)].as_secs_f64() * 1000.0
    };
    // Each packet a participant sends should reach the other four of its room.
    let expected = sent * 4;
    let loss = 1.0 - received as f64 / expected.max(1) as f64;
    let forwarded_per_second = received as f64 / elapsed;
    let participants = load.members().len();
    println!(
        "target                {}",
        match args.target {
            Target::Accordo => "accordo (one peer connection per participant)",
            Target::Janus => "janus (two peer connections per participant: publisher, subscriber)",
        }
    );
    println!("rooms                 {}", args.rooms);
    println!("participants          {participants}");
    println!("peer connections      {}", load.peer_connections());
    println!("seconds measured      {elapsed:.1}");
    println!("forwarded packets/s   {forwarded_per_second:.0}");
    println!("loss                  {:.3} %", loss.max(0.0) * 100.0);
    println!("latency p50           {:.2} ms", percentile(50.0));
    println!("latency p99           {:.2} ms", percentile(99.0));
    if let (Some((cpu_before, _)), Some((cpu_after, peak))) = (server_before, server_after) {
        let cpu = cpu_after - cpu_before;
        println!(
            "server CPU            {:.1} % of one core",
            cpu / elapsed * 100.0
        );
        println!(
            "server CPU/packet     {:.1} µs",
            cpu / received.max(1) as f64 * 1e6
        );
        println!(
            "server peak RSS       {:.1} MiB",
            peak as f64 / 1024.0 / 1024.0
        );
    }
    if args.target == Target::Janus {
        let unattributed = load.unattributed();
        if unattributed > 0 {
            eprintln!("note: {unattributed} RTP packets received carried no media of the others (not counted)");
        }
    }
    load.close().await;
    Ok(())
}
