//! Logs, request ids and Prometheus metrics.
//!
//! **Invariant:** request logs carry the route template (`/admin/audit`, later
//! `/r/{token}` as a template), never the concrete URI, so tokens and case data in paths or
//! query strings never reach a log line.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use sfu::MediaStats;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// The header that carries the request id in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    /// The id of the request the current task answers, set by [`observe`].
    static REQUEST_ID: String;
}

/// The id of the request being answered (what a 500 quotes to the client), if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Installs the global tracing subscriber (once per process; later calls do nothing).
pub fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
    // Tests start many servers in one process: the first subscriber stays.
    drop(installed);
}

/// The HTTP metrics exposed on `/metrics`.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    /// Rooms live in memory on this node.
    pub live_rooms: IntGauge,
    media: MediaMetrics,
}

/// The media plane's figures for the whole node: what its current peers add up to (the worst
/// room for loss, round-trip time and jitter) and totals since it started. No room is named:
/// a room id is case data, and one series per room would grow without bound.
#[derive(Clone)]
struct MediaMetrics {
    peers: IntGauge,
    tracks: IntGauge,
    packets: IntGaugeVec,
    bytes: IntGaugeVec,
    nacks: IntGauge,
    keyframe_requests: IntGauge,
    loss: Gauge,
    rtt: Gauge,
    jitter: IntGauge,
    node: IntCounterVec,
}

impl MediaMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        fn registered<M: prometheus::core::Collector + Clone + 'static>(
            registry: &Registry,
            metric: M,
        ) -> Result<M, prometheus::Error> {
            registry.register(Box::new(metric.clone()))?;
            Ok(metric)
        }
        let whole = |name: &str, help: &str| registered(registry, IntGauge::new(name, help)?);
        let by_direction = |name: &str, help: &str| {
            registered(
                registry,
                IntGaugeVec::new(Opts::new(name, help), &["direction"])?,
            )
        };
        let worst = |name: &str, help: &str| registered(registry, Gauge::new(name, help)?);
        Ok(Self {
            peers: whole("media_peers", "Peer connections on this node.")?,
            tracks: whole("media_tracks", "Tracks published on this node.")?,
            packets: by_direction(
                "media_packets",
                "RTP packets of the node's current peers, by direction.",
            )?,
            bytes: by_direction(
                "media_bytes",
                "RTP bytes of the node's current peers, by direction.",
            )?,
            nacks: whole("media_nacks", "NACKs from the node's current subscribers.")?,
            keyframe_requests: whole(
                "media_keyframe_requests",
                "PLI and FIR sent to the node's current publishers.",
            )?,
            loss: worst("media_loss_ratio", "Worst packet loss fraction of a room.")?,
            rtt: worst("media_rtt_seconds", "Longest round-trip time to a peer.")?,
            jitter: whole(
                "media_jitter",
                "Largest interarrival jitter of an incoming stream (RTP clock units).",
            )?,
            node: registered(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "media_node_total",
                        "Media totals of this node since it started, by kind.",
                    ),
                    &["kind"],
                )?,
            )?,
        })
    }

    fn update(&self, stats: &MediaStats) {
        let whole = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let rooms = stats.rooms.values();
        let sum = |figure: fn(&sfu::RoomMediaStats) -> u64| {
            whole(rooms.clone().map(figure).fold(0, u64::saturating_add))
        };
        self.peers.set(sum(|room| room.peers));
        self.tracks.set(sum(|room| room.tracks));
        self.packets
            .with_label_values(&["in"])
            .set(sum(|room| room.traffic.packets_in));
        self.packets
            .with_label_values(&["out"])
            .set(sum(|room| room.traffic.packets_out));
        self.bytes
            .with_label_values(&["in"])
            .set(sum(|room| room.traffic.bytes_in));
        self.bytes
            .with_label_values(&["out"])
            .set(sum(|room| room.traffic.bytes_out));
        self.nacks.set(sum(|room| room.traffic.nacks));
        self.keyframe_requests
            .set(sum(|room| room.traffic.keyframe_requests));
        self.jitter.set(whole(
            rooms.clone().map(|room| room.jitter).max().unwrap_or(0),
        ));
        self.loss
            .set(rooms.clone().map(|room| room.loss).fold(0.0, f64::max));
        self.rtt
            .set(rooms.map(|room| room.rtt_seconds).fold(0.0, f64::max));
        let totals = &stats.totals;
        for (kind, value) in [
            ("packets_in", totals.packets_in),
            ("bytes_in", totals.bytes_in),
            ("packets_out", totals.packets_out),
            ("bytes_out", totals.bytes_out),
            ("nacks", totals.nacks),
            ("nacks_sent", totals.nacks_sent),
            ("keyframe_requests", totals.keyframe_requests),
        ] {
            // Counters only go up: add what is new since the last scrape.
            let counter = self.node.with_label_values(&[kind]);
            counter.inc_by(value.saturating_sub(counter.get()));
        }
    }
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("accordo".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status.",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by method and route.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "route"],
        )?;
        let live_rooms = IntGauge::new("rooms_live", "Rooms live in memory on this node.")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(live_rooms.clone()))?;
        let media = MediaMetrics::new(&registry)?;
        Ok(Self {
            registry,
            requests,
            latency,
            live_rooms,
            media,
        })
    }

    /// Takes in the media plane's latest figures.
    pub fn update_media(&self, stats: &MediaStats) {
        self.media.update(stats);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// The `method` label: the methods the server answers, everything else `other`, so that a
/// client inventing methods cannot add series without bound.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 7] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// Middleware: gives every request an id (or keeps a well-formed incoming one), records its
/// metrics and logs one line per response in the request's span.
pub async fn observe(State(metrics): State<Metrics>, mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let span = tracing::info_span!("request", id = %request_id, method = %method, route = %route);
    let started = Instant::now();
    let answer = tracing::Instrument::instrument(next.run(request), span.clone());
    let mut response = REQUEST_ID.scope(request_id.clone(), answer).await;
    let elapsed = started.elapsed();
    let status = response.status();
    metrics
        .requests
        .with_label_values(&[method, route.as_str(), status.as_str()])
        .inc();
    metrics
        .latency
        .with_label_values(&[method, route.as_str()])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "response"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}
