//! A `webrtc` runtime whose network the test controls ([`Network`]):
//!
//! - it can fall silent at once, as when a phone loses its network or a laptop lid closes: the
//!   peer connection keeps running, but nothing it sends reaches the wire any more, and it says
//!   no goodbye (no DTLS close, no RTCP BYE);
//! - its downlink can be limited to a bitrate, as a slow line: datagrams beyond it are lost
//!   (a token bucket of a quarter of a second).
//!
//! Everything else is the `webrtc` crate's own Tokio runtime.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

/// The runtime; its [`Network`] controls every socket it made.
#[derive(Debug)]
pub struct ControlledRuntime {
    inner: TokioRuntime,
    network: Network,
}

impl ControlledRuntime {
    pub fn new() -> (Arc<Self>, Network) {
        let network = Network::default();
        let runtime = Arc::new(Self {
            inner: TokioRuntime,
            network: network.clone(),
        });
        (runtime, network)
    }
}

/// The controls of one [`ControlledRuntime`]'s network.
#[derive(Debug, Clone, Default)]
pub struct Network {
    silent: Arc<AtomicBool>,
    downlink: Arc<Mutex<Option<TokenBucket>>>,
}

impl Network {
    /// From now on, every datagram is dropped before it is sent.
    pub fn vanish(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// From now on, datagrams arriving faster than `bits_per_second` are lost.
    pub fn limit_downlink(&self, bits_per_second: u64) {
        let rate = bits_per_second as f64 / 8.0;
        *lock(&self.downlink) = Some(TokenBucket {
            bytes_per_second: rate,
            capacity: rate / 4.0,
            tokens: rate / 4.0,
            refilled: Instant::now(),
        });
    }

    /// Whether `bytes` more may arrive now.
    fn admits(&self, bytes: usize) -> bool {
        match lock(&self.downlink).as_mut() {
            Some(bucket) => bucket.take(bytes),
            None => true,
        }
    }
}

#[derive(Debug)]
struct TokenBucket {
    bytes_per_second: f64,
    capacity: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    fn take(&mut self, bytes: usize) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * self.bytes_per_second).min(self.capacity);
        let wanted = bytes as f64;
        if self.tokens < wanted {
            return false;
        }
        self.tokens -= wanted;
        true
    }
}

/// Locks `mutex`, going on after a panic elsewhere: the state stays readable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Runtime for ControlledRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(ControlledSocket {
            inner: self.inner.wrap_udp_socket(socket)?,
            network: self.network.clone(),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future)
    }
}

#[derive(Debug)]
struct ControlledSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    network: Network,
}

impl AsyncUdpSocket for ControlledSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        if self.network.silent.load(Ordering::SeqCst) {
            return Poll::Ready(Ok(transmit.contents.len()));
        }
        self.inner.poll_send(cx, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let received = self.inner.poll_recv(cx, bufs, meta);
            let Poll::Ready(Ok(count)) = received else {
                return received;
            };
            let bytes = meta.iter().take(count).map(|entry| entry.len).sum();
            if self.network.admits(bytes) {
                return Poll::Ready(Ok(count));
            }
            // Lost on the slow line; read the next ones.
        }
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}
