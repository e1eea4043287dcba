//! ICE-TCP: the fallback for networks that block UDP (RFC 6544, passive candidates only).
//!
//! Clients connect to one TCP port; each connection carries ICE, DTLS and SRTP as RFC 4571
//! frames (a 16-bit length, then the datagram). Connection tasks turn frames into
//! [`TcpEvent`]s for the media task, which treats them like UDP datagrams and answers through
//! the connection's [`Link`]. A connection that sends nothing for [`FIRST_FRAME_PATIENCE`],
//! and connections beyond [`MAX_CONNECTIONS`], are closed: an open port costs nothing to the
//! media task until a frame arrives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// Connections open at once, over every client.
const MAX_CONNECTIONS: usize = 1024;
/// How long a new connection may stay silent before its first frame.
const FIRST_FRAME_PATIENCE: Duration = Duration::from_secs(10);
/// Frames queued towards one client before further ones are dropped (as UDP would lose them).
const LINK_QUEUE: usize = 512;

/// The sending side of one client connection: frames written here go out RFC 4571-framed.
pub(crate) type Link = mpsc::Sender<Vec<u8>>;

/// What the connection tasks tell the media task.
pub(crate) enum TcpEvent {
    Opened { remote: SocketAddr, link: Link },
    Frame { remote: SocketAddr, frame: Vec<u8> },
    Closed { remote: SocketAddr },
}

/// Accepts client connections for as long as the listener works.
pub(crate) async fn accept(listener: TcpListener, events: mpsc::Sender<TcpEvent>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((stream, remote)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            // Too many connections: this one is refused by closing it.
            continue;
        };
        let _ = stream.set_nodelay(true);
        let events = events.clone();
        tokio::spawn(async move {
            serve(stream, remote, events).await;
            drop(permit);
        });
    }
}

/// Reads frames from one connection until it ends, and writes the frames queued on its link.
async fn serve(stream: TcpStream, remote: SocketAddr, events: mpsc::Sender<TcpEvent>) {
    let (mut reader, mut writer) = stream.into_split();
    let (link, mut outgoing) = mpsc::channel::<Vec<u8>>(LINK_QUEUE);
    if events
        .send(TcpEvent::Opened { remote, link })
        .await
        .is_err()
    {
        return;
    }
    let writing = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            let Ok(length) = u16::try_from(frame.len()) else {
                continue;
            };
            let mut framed = Vec::with_capacity(frame.len() + 2);
            framed.extend_from_slice(&length.to_be_bytes());
            framed.extend_from_slice(&frame);
            if writer.write_all(&framed).await.is_err() {
                return;
            }
        }
    });
    let mut first = true;
    loop {
        let mut length = [0_u8; 2];
        let read = reader.read_exact(&mut length);
        let read = if first {
            match tokio::time::timeout(FIRST_FRAME_PATIENCE, read).await {
                Ok(read) => read,
                Err(_) => break,
            }
        } else {
            read.await
        };
        if read.is_err() {
            break;
        }
        first = false;
        let mut frame = vec![0_u8; usize::from(u16::from_be_bytes(length))];
        if reader.read_exact(&mut frame).await.is_err() {
            break;
        }
        if events
            .send(TcpEvent::Frame { remote, frame })
            .await
            .is_err()
        {
            break;
        }
    }
    writing.abort();
    let _ = events.send(TcpEvent::Closed { remote }).await;
}
