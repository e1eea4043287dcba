//! `accordo-loadgen`: N rooms × 5 synthetic webrtc-rs participants against a running Accordo,
//! for a fixed time; reports forwarded packets per second, loss, end-to-end latency and the
//! server's CPU and memory (read from /proc when given its pid).
//!
//! Each participant publishes Opus-sized audio (50 packets/s) and VP8 video at 66 frames/s of
//! one or two ~1000-byte packets (≈ 100 packets/s, ≈ 0.8 Mbit/s) with a keyframe every 2 s,
//! and receives the other four. Payloads carry their send time, so latency is measured end to
//! end (sender and receivers share this machine's clock).
//!
//! ```text
//! accordo-loadgen --server http://127.0.0.1:8080 --username admin --password '…' \
//!     --rooms 2 --seconds 20 --server-pid $(pidof accordo)
//! ```

use std::time::{Duration, Instant};

use accordo_tests::media_peer::{PeerOptions, Source};
use accordo_tests::participant::{keep_negotiating, negotiate_until, Participant};
use accordo_tests::{open_room, Browser, CAST};
use anyhow::{bail, Context, Result};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "accordo-loadgen",
    about = "Synthetic WebRTC load against an Accordo server."
)]
struct Args {
    /// The server's address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A segreteria or admin account that opens the rooms.
    #[arg(long)]
    username: String,
    #[arg(long)]
    password: String,
    /// Rooms of five participants.
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Seconds measured (after the media has settled).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// The server's process id, to read its CPU time and peak memory.
    #[arg(long)]
    server_pid: Option<u32>,
}

const PEOPLE: &[(&str, &str, Option<&str>)] = &CAST;

/// CPU seconds (user + system) and peak resident memory of a process.
fn process_figures(pid: u32) -> Result<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("stat format")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    // The kernel's USER_HZ is 100 on Linux.
    let cpu = ticks / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next())
        .context("VmHWM")?
        .parse()?;
    Ok((cpu, peak_kib * 1024))
}

fn received_total(participants: &[Participant]) -> u64 {
    participants
        .iter()
        .flat_map(|p| p.peer.stats())
        .map(|track| track.packets)
        .sum()
}

fn sent_total(participants: &[Participant]) -> u64 {
    participants
        .iter()
        .map(|p| p.peer.sent_packets(Source::Audio) + p.peer.sent_packets(Source::Video))
        .sum()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let office = Browser::new(&args.server);
    let login = office
        .post_form(
            "/login",
            &[("username", &args.username), ("password", &args.password)],
        )
        .await;
    match (login.status().as_u16(), accordo_tests::location(&login)) {
        (303, "/") => {}
        // A fresh account from `accordo admin create-user`: replace its one-time password.
        (303, "/password") => {
            let chosen = format!("carico di prova {}", uuid::Uuid::new_v4().simple());
            office.change_password(&args.password, &chosen).await;
        }
        (status, _) => bail!("login refused (status {status})"),
    }
    let mut participants = Vec::new();
    for _ in 0..args.rooms {
        let setup = open_room(&office, PEOPLE, true).await;
        for (name, _, _) in PEOPLE {
            let options = PeerOptions {
                video_fps: 66,
                keyframe_interval: Duration::from_secs(2),
                ..PeerOptions::default()
            };
            participants.push(Participant::join(&args.server, &setup, name, options).await);
        }
    }
    negotiate_until(&mut participants, Duration::from_secs(60), |all| {
        all.iter().all(|receiver| {
            receiver
                .peer
                .stats()
                .iter()
                .filter(|t| t.packets > 20)
                .count()
                >= 8
        })
    })
    .await;

    let marks: Vec<_> = participants.iter().map(|p| p.peer.mark()).collect();
    let received_before = received_total(&participants);
    let sent_before = sent_total(&participants);
    let server_before = args.server_pid.map(process_figures).transpose()?;
    let started = Instant::now();
    keep_negotiating(&mut participants, Duration::from_secs(args.seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let server_after = args.server_pid.map(process_figures).transpose()?;
    let received = received_total(&participants) - received_before;
    let sent = sent_total(&participants) - sent_before;

    let mut latencies: Vec<Duration> = Vec::new();
    for (receiver, mark) in participants.iter().zip(&marks) {
        for (name, _, _) in PEOPLE {
            if *name != receiver.name {
                latencies.extend_from_slice(mark.latency_from(name).as_slice());
            }
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
    println!("rooms                 {}", args.rooms);
    println!("participants          {}", participants.len());
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
    for participant in participants {
        let _ = participant.peer.close().await;
    }
    Ok(())
}
