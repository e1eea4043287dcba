//! `accordo-switchbench`: the latencies a person notices, measured with real WebRTC peers
//! (webrtc-rs) against the real server (started in-process on a fresh SQLite database),
//! repeated and summarised:
//!
//! - **join**: from the moment a person's link is opened (the room WebSocket's `hello`) to the
//!   first decodable frame (a VP8 keyframe) from the others, first and last of the four;
//! - **caucus cut**: from the `start_caucus` command to the last packet of someone inside the
//!   caucus that reaches someone outside it (0 when none arrives after the command);
//! - **keyframe to a re-subscriber**: from `back_to_plenary` to the keyframe each person
//!   outside gets from each person inside, the slowest of them;
//! - **memory per idle room**: loaded rooms nobody is in (an upper bound, see
//!   `idle_room_bytes`).
//!
//! Publishers send a keyframe only every 10 s on their own, so the keyframes measured are
//! the ones the SFU asks for.
//!
//! ```text
//! accordo-switchbench --repetitions 10
//! ```

use std::time::{Duration, Instant};

use accordo_tests::media_peer::{PeerOptions, Source};
use accordo_tests::participant::{keep_negotiating, negotiate_until, Participant};
use accordo_tests::{spawn_app_with, Backend, TestApp, CAST};
use anyhow::Result;
use backoffice::platform::access::Role;
use clap::Parser;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "accordo-switchbench",
    about = "Join and switch latencies of rooms."
)]
struct Args {
    #[arg(long, default_value_t = 10)]
    repetitions: usize,
    /// Rooms loaded and left idle (someone joined, then left: the room stays in memory until
    /// it is unloaded) to measure the memory of an idle room.
    #[arg(long, default_value_t = 300)]
    idle_rooms: usize,
}

/// Resident bytes of this process now.
fn resident() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Loads `count` rooms, one after another (a member joins, then leaves: the room stays
/// loaded until it is unloaded, ten minutes later).
async fn load_idle_rooms(app: &TestApp, office: &accordo_tests::Browser, count: usize) {
    for _ in 0..count {
        let setup = app.open_room(office, &CAST[..1], true).await;
        let joined = accordo_tests::room_client::RoomClient::join(
            "mediator",
            &app.address,
            setup.link("mediator"),
        )
        .await;
        assert!(
            joined.is_ok(),
            "the mediator could not join: the room is not loaded"
        );
    }
}

/// The resident bytes `count` idle rooms add, per room. The server runs in this process, so
/// the figure is an upper bound: it also holds what the clients allocated and freed without
/// the allocator giving it back.
async fn idle_room_bytes(app: &TestApp, office: &accordo_tests::Browser, count: usize) -> u64 {
    // Warm-up: caches, pools and the allocator's first arenas.
    load_idle_rooms(app, office, 30).await;
    let before = resident();
    load_idle_rooms(app, office, count).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    resident().saturating_sub(before) / count.max(1) as u64
}

fn options() -> PeerOptions {
    PeerOptions {
        keyframe_interval: Duration::from_secs(10),
        ..PeerOptions::default()
    }
}

/// The participant called `name`.
fn named<'a>(participants: &'a [Participant], name: &str) -> &'a Participant {
    participants
        .iter()
        .find(|p| p.name == name)
        .unwrap_or(&participants[0])
}

/// One round: join, caucus, plenary. Returns (first frame, all frames, cut, keyframe).
async fn round(app: &TestApp, office: &accordo_tests::Browser) -> [Duration; 4] {
    let setup = app.open_room(office, &CAST, true).await;
    let mut participants = Vec::new();
    for (name, _, _) in &CAST[..4] {
        participants.push(Participant::join(&app.address, &setup, name, options()).await);
    }
    let members: Vec<String> = participants.iter().map(|p| p.member.clone()).collect();
    negotiate_until(&mut participants, Duration::from_secs(30), |all| {
        all.iter().all(|receiver| {
            members
                .iter()
                .filter(|m| **m != receiver.member)
                .all(|m| receiver.packets_from(m) >= 20)
        })
    })
    .await;

    // Join: lawyer_b opens the link.
    let opened = Instant::now();
    participants.push(Participant::join(&app.address, &setup, "lawyer_b", options()).await);
    let mark = participants[4].peer.mark();
    let others: Vec<&str> = CAST[..4].iter().map(|(name, _, _)| *name).collect();
    negotiate_until(&mut participants, Duration::from_secs(30), |all| {
        others
            .iter()
            .all(|name| all[4].peer.keyframes_from(name) > 0)
    })
    .await;
    let arrivals: Vec<Instant> = others
        .iter()
        .filter_map(|name| mark.first_keyframe_from(name, Source::Video))
        .collect();
    let first = arrivals
        .iter()
        .min()
        .map_or(Duration::MAX, |at| at.saturating_duration_since(opened));
    let all = arrivals
        .iter()
        .max()
        .map_or(Duration::MAX, |at| at.saturating_duration_since(opened));

    // Caucus: side A with the mediator; side B outside.
    let inside = ["mediator", "party_a", "lawyer_a"];
    let outside = ["party_b", "lawyer_b"];
    let caucus: Vec<String> = ["party_a", "lawyer_a"]
        .iter()
        .map(|name| named(&participants, name).member.clone())
        .collect();
    let commanded = Instant::now();
    participants[0]
        .room
        .command(json!({ "type": "start_caucus", "members": caucus }))
        .await;
    keep_negotiating(&mut participants, Duration::from_secs(1)).await;
    let mut cut = Duration::ZERO;
    for receiver in outside {
        for publisher in inside {
            let stats = named(&participants, receiver)
                .peer
                .publisher_stats(publisher);
            for source in [Source::Audio, Source::Video] {
                if let Some(last) = stats.source(source).last_packet_at {
                    cut = cut.max(last.saturating_duration_since(commanded));
                }
            }
        }
    }

    // Back to plenary: the slowest keyframe to a re-subscriber.
    let marks: Vec<_> = participants.iter().map(|p| p.peer.mark()).collect();
    let commanded = Instant::now();
    participants[0]
        .room
        .command(json!({ "type": "back_to_plenary" }))
        .await;
    negotiate_until(&mut participants, Duration::from_secs(10), |all| {
        all.iter().zip(&marks).all(|(receiver, mark)| {
            let crossing = if outside.contains(&receiver.name) {
                &inside[..]
            } else {
                &outside[..]
            };
            crossing
                .iter()
                .all(|publisher| mark.first_keyframe_from(publisher, Source::Video).is_some())
        })
    })
    .await;
    let mut keyframe = Duration::ZERO;
    for (receiver, mark) in participants.iter().zip(&marks) {
        let crossing = if outside.contains(&receiver.name) {
            &inside[..]
        } else {
            &outside[..]
        };
        for publisher in crossing {
            if let Some(at) = mark.first_keyframe_from(publisher, Source::Video) {
                keyframe = keyframe.max(at.saturating_duration_since(commanded));
            }
        }
    }
    for participant in participants {
        let _ = participant.peer.close().await;
    }
    [first, all, cut, keyframe]
}

fn summary(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{label:<38} p50 {:>7.1} ms   max {:>7.1} ms   ({} runs)",
        ms(at(0.5)),
        ms(at(1.0)),
        samples.len()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    // Errors of the in-process server are printed (a failed request says why).
    web::telemetry::init_logging(&web::config::Config {
        log_level: "error".to_owned(),
        ..web::config::Config::default()
    });
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.log_level = "error".to_owned()
    })
    .await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let idle = idle_room_bytes(&app, &office, args.idle_rooms).await;
    let mut figures: [Vec<Duration>; 4] = Default::default();
    for _ in 0..args.repetitions.max(1) {
        for (all, one) in figures.iter_mut().zip(round(&app, &office).await) {
            all.push(one);
        }
    }
    let [first, all, cut, keyframe] = &mut figures;
    summary("join: link opened → first remote frame", first);
    summary("join: link opened → frames from all four", all);
    summary("caucus command → last packet outside", cut);
    summary("back to plenary → keyframe (slowest)", keyframe);
    println!(
        "memory per idle room (upper bound)     {:.1} KiB   ({} rooms)",
        idle as f64 / 1024.0,
        args.idle_rooms
    );
    // Stopped before its data directory goes: rooms save their last state on the way out.
    app.shutdown().await;
    Ok(())
}
