//! A `webrtc` runtime whose UDP sockets can fall silent at once, as when a phone loses its
//! network or a laptop lid closes: the peer connection keeps running, but nothing it sends
//! reaches the wire any more, and it says no goodbye (no DTLS close, no RTCP BYE).
//!
//! Everything else is the `webrtc` crate's own Tokio runtime.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, RecvMeta, Runtime,
    TokioRuntime, Transmit,
};

/// The runtime; [`VanishingRuntime::vanish`] silences every socket it made.
#[derive(Debug)]
pub struct VanishingRuntime {
    inner: TokioRuntime,
    silent: Arc<AtomicBool>,
}

impl VanishingRuntime {
    pub fn new() -> (Arc<Self>, Vanish) {
        let silent = Arc::new(AtomicBool::new(false));
        let runtime = Arc::new(Self {
            inner: TokioRuntime,
            silent: Arc::clone(&silent),
        });
        (runtime, Vanish(silent))
    }
}

/// The switch that silences the sockets of one [`VanishingRuntime`].
#[derive(Debug, Clone)]
pub struct Vanish(Arc<AtomicBool>);

impl Vanish {
    /// From now on, every datagram is dropped before it is sent.
    pub fn vanish(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Runtime for VanishingRuntime {
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
        Ok(Arc::new(VanishingSocket {
            inner: self.inner.wrap_udp_socket(socket)?,
            silent: Arc::clone(&self.silent),
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
struct VanishingSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    silent: Arc<AtomicBool>,
}

impl AsyncUdpSocket for VanishingSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, transmit: &Transmit<'_>) -> Poll<io::Result<usize>> {
        if self.silent.load(Ordering::SeqCst) {
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
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.inner.max_gro_segments()
    }
}
