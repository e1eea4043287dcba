//! `accordo-floor`: the floor an SFU is measured against — a minimal UDP relay with no crypto,
//! no RTP parsing and no congestion control, that forwards each packet of a room member to the
//! other four members, one `recv_from` and four `send_to` on one thread; and its driver, which
//! sends the load generator's media shape through it and measures it the same way.
//!
//! ```text
//! accordo-floor relay --listen 127.0.0.1:41000 &
//! accordo-floor drive --relay 127.0.0.1:41000 --rooms 4 --seconds 15 --relay-pid $!
//! ```
//!
//! Each packet starts with a 17-byte header: room (u32), member (u8), sequence (u32), send time
//! in nanoseconds since the driver started (u64), all big-endian. A member's first packet, of
//! exactly the header's size, registers its address; the others are media: 50 audio packets
//! a second of 160 bytes and 100 video packets a second of 1,200 bytes per member, as in
//! `accordo-loadgen`.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

const HEADER: usize = 17;
const MEMBERS: u8 = 5;
const AUDIO_BYTES: usize = 160;
const VIDEO_BYTES: usize = 1200;

#[derive(Debug, Parser)]
#[command(
    name = "accordo-floor",
    about = "The raw-UDP floor an SFU is measured against."
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the relay until killed.
    Relay {
        #[arg(long, default_value = "127.0.0.1:41000")]
        listen: SocketAddr,
    },
    /// Sends N rooms × 5 members of media through a relay and reports what came back.
    Drive {
        #[arg(long, default_value = "127.0.0.1:41000")]
        relay: SocketAddr,
        #[arg(long, default_value_t = 1)]
        rooms: u32,
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// The relay's process id, to read its CPU time and peak memory.
        #[arg(long)]
        relay_pid: Option<u32>,
    },
}

fn header(room: u32, member: u8, sequence: u32, sent_nanos: u64) -> [u8; HEADER] {
    let mut bytes = [0_u8; HEADER];
    bytes[0..4].copy_from_slice(&room.to_be_bytes());
    bytes[4] = member;
    bytes[5..9].copy_from_slice(&sequence.to_be_bytes());
    bytes[9..17].copy_from_slice(&sent_nanos.to_be_bytes());
    bytes
}

fn read_header(bytes: &[u8]) -> Option<(u32, u8, u64)> {
    let room = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?);
    let member = *bytes.get(4)?;
    let sent = u64::from_be_bytes(bytes.get(9..17)?.try_into().ok()?);
    Some((room, member, sent))
}

/// Socket buffers of the relay (the kernel caps them at `net.core.rmem_max`/`wmem_max`): a
/// room's video arrives in bursts, and the default 208 KiB drops packets before anyone reads them.
const RELAY_BUFFER_BYTES: usize = 4 << 20;
/// Socket buffers of each driver socket.
const MEMBER_BUFFER_BYTES: usize = 1 << 20;

/// A UDP socket bound to `address` with `buffer` bytes of send and receive buffer.
fn bound(address: SocketAddr, buffer: usize) -> Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(address),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_recv_buffer_size(buffer)?;
    socket.set_send_buffer_size(buffer)?;
    socket
        .bind(&address.into())
        .with_context(|| format!("bind {address}"))?;
    Ok(socket.into())
}

/// The relay: learns each member's address from its first packet, then forwards.
fn relay(listen: SocketAddr) -> Result<()> {
    let socket = bound(listen, RELAY_BUFFER_BYTES)?;
    let mut rooms: HashMap<u32, Vec<(u8, SocketAddr)>> = HashMap::new();
    let mut buffer = [0_u8; 2048];
    loop {
        let (length, from) = socket.recv_from(&mut buffer)?;
        let Some((room, member, _)) = read_header(&buffer[..length]) else {
            continue;
        };
        let members = rooms.entry(room).or_default();
        if length == HEADER {
            // A member registering again (a new driver run) replaces its old address.
            members.retain(|(known, _)| *known != member);
            members.push((member, from));
            continue;
        }
        for (other, address) in members.iter() {
            if *other != member {
                // A full socket buffer drops the packet, as a real relay would.
                let _ = socket.send_to(&buffer[..length], address);
            }
        }
    }
}

/// What the receivers saw.
#[derive(Default)]
struct Received {
    packets: AtomicU64,
    latencies: Mutex<Vec<u32>>,
}

async fn drive(relay: SocketAddr, rooms: u32, seconds: u64, relay_pid: Option<u32>) -> Result<()> {
    let start = Instant::now();
    let nanos = move || u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let received = Arc::new(Received::default());
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut sockets = Vec::new();
    for room in 0..rooms {
        for member in 0..MEMBERS {
            let std_socket = bound(SocketAddr::from(([127, 0, 0, 1], 0)), MEMBER_BUFFER_BYTES)?;
            std_socket.set_nonblocking(true)?;
            let socket = Arc::new(tokio::net::UdpSocket::from_std(std_socket)?);
            socket.send_to(&header(room, member, 0, 0), relay).await?;
            sockets.push((room, member, socket));
        }
    }
    // Receivers.
    for (_, _, socket) in &sockets {
        let (socket, received, measuring) = (socket.clone(), received.clone(), measuring.clone());
        tokio::spawn(async move {
            let mut buffer = [0_u8; 2048];
            let mut local = Vec::with_capacity(1 << 16);
            while let Ok(length) = socket.recv(&mut buffer).await {
                let arrived = nanos();
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                if let Some((_, _, sent)) = read_header(&buffer[..length]) {
                    received.packets.fetch_add(1, Ordering::Relaxed);
                    let micros = arrived.saturating_sub(sent) / 1000;
                    local.push(u32::try_from(micros).unwrap_or(u32::MAX));
                    if local.len() >= 4096 {
                        if let Ok(mut all) = received.latencies.lock() {
                            all.append(&mut local);
                        }
                    }
                }
            }
        });
    }
    // Senders: audio every 20 ms, video every 10 ms.
    for (room, member, socket) in &sockets {
        for (every, bytes) in [(20_u64, AUDIO_BYTES), (10, VIDEO_BYTES)] {
            let (socket, sent, measuring) = (socket.clone(), sent.clone(), measuring.clone());
            let (room, member) = (*room, *member);
            // Members are not in step: each starts at its own phase of the period.
            let phase = (u64::from(room) * 5 + u64::from(member)) * 7919 % (every * 1000);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_micros(phase)).await;
                let mut tick = tokio::time::interval(Duration::from_millis(every));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut packet = vec![0_u8; bytes];
                let mut sequence = 0_u32;
                loop {
                    tick.tick().await;
                    sequence = sequence.wrapping_add(1);
                    packet[..HEADER].copy_from_slice(&header(room, member, sequence, nanos()));
                    let counted = measuring.load(Ordering::Relaxed);
                    if socket.send_to(&packet, relay).await.is_ok() && counted {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    }
    // Let the flows settle, then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = relay_pid.map(accordo_tests::process_figures).transpose()?;
    measuring.store(true, Ordering::Relaxed);
    let measured = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = measured.elapsed().as_secs_f64();
    let after = relay_pid.map(accordo_tests::process_figures).transpose()?;
    // Packets in flight when measuring stopped: give them a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let packets = received.packets.load(Ordering::Relaxed);
    let expected = sent.load(Ordering::Relaxed) * u64::from(MEMBERS - 1);
    let mut latencies = received
        .latencies
        .lock()
        .map(|all| all.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((p / 100.0) * (latencies.len() - 1) as f64).round() as usize;
        f64::from(latencies[index.min(latencies.len() - 1)]) / 1000.0
    };
    let loss = 1.0 - packets as f64 / expected.max(1) as f64;
    println!("rooms                 {rooms}");
    println!("participants          {}", rooms * u32::from(MEMBERS));
    println!("seconds measured      {elapsed:.1}");
    println!("forwarded packets/s   {:.0}", packets as f64 / elapsed);
    println!("loss                  {:.3} %", loss.max(0.0) * 100.0);
    println!("latency p50           {:.2} ms", percentile(50.0));
    println!("latency p99           {:.2} ms", percentile(99.0));
    if let (Some((cpu_before, _)), Some((cpu_after, peak))) = (before, after) {
        let cpu = cpu_after - cpu_before;
        println!(
            "server CPU            {:.1} % of one core",
            cpu / elapsed * 100.0
        );
        println!(
            "server CPU/packet     {:.2} µs",
            cpu / packets.max(1) as f64 * 1e6
        );
        println!(
            "server peak RSS       {:.1} MiB",
            peak as f64 / 1024.0 / 1024.0
        );
    }
    if packets == 0 {
        bail!("nothing came back through the relay at {relay}");
    }
    Ok(())
}

fn main() -> Result<()> {
    match Args::parse().command {
        Command::Relay { listen } => relay(listen),
        Command::Drive {
            relay,
            rooms,
            seconds,
            relay_pid,
        } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(drive(relay, rooms, seconds, relay_pid)),
    }
}
