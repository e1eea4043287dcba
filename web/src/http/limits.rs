//! Limits on connections and requests, so that slow or silent clients cannot hold the
//! server's connections: how many connections may be open (in all and per client address),
//! how long a connection may go without a byte, and how long a request may take.
//!
//! The header timeout itself is hyper's (`header_read_timeout`, set in `server.rs`): it runs
//! from the moment a connection waits for a request, so it also closes an idle kept-alive
//! connection. What hyper does not bound is handled here: a connection that never sends its
//! first byte (hyper's protocol detection waits for it without a clock), a connection where
//! nothing moves in either direction, and a request whose body or handler takes too long.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::config::Config;
use crate::http::error::AppError;

/// The acceptor that admits a connection only within the caps, and gives it the idle clock.
#[derive(Clone)]
pub struct ConnectionLimits {
    open: Arc<Mutex<OpenConnections>>,
    max_connections: usize,
    max_per_address: usize,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

impl ConnectionLimits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            open: Arc::default(),
            max_connections: usize::try_from(config.http_max_connections).unwrap_or(usize::MAX),
            max_per_address: usize::try_from(config.http_max_connections_per_address)
                .unwrap_or(usize::MAX),
            first_byte_timeout: Duration::from_secs(config.http_header_timeout_secs),
            idle_timeout: Duration::from_secs(config.http_idle_timeout_secs),
        }
    }

    /// A slot for a connection from `address`, or `None` when a cap is reached.
    fn admit(&self, address: IpAddr) -> Option<ConnectionSlot> {
        // Poisoning would mean a panic while counting, which cannot happen below.
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let from_address = open.per_address.get(&address).copied().unwrap_or(0);
        if open.total >= self.max_connections || from_address >= self.max_per_address {
            return None;
        }
        open.total += 1;
        open.per_address.insert(address, from_address + 1);
        Some(ConnectionSlot {
            open: self.open.clone(),
            address,
        })
    }
}

impl<S> Accept<TcpStream, S> for ConnectionLimits {
    type Stream = LimitedStream;
    type Service = S;
    type Future = std::future::Ready<io::Result<(LimitedStream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = stream.peer_addr().and_then(|peer| {
            let address = peer.ip().to_canonical();
            self.admit(address).ok_or_else(|| {
                tracing::warn!("connection refused: too many open connections");
                io::Error::new(io::ErrorKind::ConnectionRefused, "too many connections")
            })
        });
        // An error drops the stream: the connection is closed at once.
        std::future::ready(admitted.map(|slot| {
            (
                LimitedStream {
                    inner: stream,
                    _slot: slot,
                    idle_timeout: self.idle_timeout,
                    allowance: self.first_byte_timeout,
                    last_activity: Instant::now(),
                    clock: Box::pin(tokio::time::sleep(self.first_byte_timeout)),
                },
                service,
            )
        }))
    }
}

/// A connection's place in the count, given back when the connection is dropped.
struct ConnectionSlot {
    open: Arc<Mutex<OpenConnections>>,
    address: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.per_address.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.per_address.remove(&self.address);
            }
        }
    }
}

/// A TCP connection that fails with `TimedOut` once nothing has moved in either direction
/// for its allowance: the header timeout until the first byte, the idle timeout after it.
/// It lives as long as the connection, WebSocket included.
pub struct LimitedStream {
    inner: TcpStream,
    _slot: ConnectionSlot,
    idle_timeout: Duration,
    allowance: Duration,
    last_activity: Instant,
    /// Wakes the connection when its allowance may have run out; re-armed lazily, so that a
    /// busy connection does not reset a timer on every read.
    clock: Pin<Box<Sleep>>,
}

impl LimitedStream {
    fn moved(&mut self) {
        self.last_activity = Instant::now();
        if self.allowance != self.idle_timeout {
            // The first byte: the deadline may move earlier, which the lazy clock would miss.
            self.allowance = self.idle_timeout;
            self.clock
                .as_mut()
                .reset(self.last_activity + self.idle_timeout);
        }
    }

    /// Called when the socket is not ready: `Ready(error)` once the allowance ran out.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        while self.clock.as_mut().poll(cx).is_ready() {
            let deadline = self.last_activity + self.allowance;
            if deadline <= Instant::now() {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection was idle too long",
                ));
            }
            self.clock.as_mut().reset(deadline);
        }
        Poll::Pending
    }

    /// `poll` turned into an error when the socket is not ready and the allowance ran out.
    fn or_idle<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll {
            Poll::Pending => self.poll_idle(cx).map(Err),
            ready => ready,
        }
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.moved();
        }
        this.or_idle(cx, poll)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(written)) if written > 0) {
            this.moved();
        }
        this.or_idle(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(written)) if written > 0) {
            this.moved();
        }
        this.or_idle(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.or_idle(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// How long a request may take from its headers to its answer.
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadlines {
    request: Duration,
    upload: Duration,
}

impl RequestDeadlines {
    pub fn from_config(config: &Config) -> Self {
        Self {
            request: Duration::from_secs(config.http_request_timeout_secs),
            upload: Duration::from_secs(config.http_upload_timeout_secs),
        }
    }
}

/// Middleware: a request that has not been answered within its deadline (its body still
/// arriving, or its handler still busy) is answered 408 and dropped, which rolls back any
/// transaction it had open. A file upload gets the longer deadline; a form or JSON route
/// refuses a multipart body without reading it.
pub async fn deadline(
    State(deadlines): State<RequestDeadlines>,
    request: Request,
    next: Next,
) -> Response {
    let upload = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("multipart/form-data"));
    let limit = if upload {
        deadlines.upload
    } else {
        deadlines.request
    };
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::TimedOut.answer_for(&path),
    }
}
