//! Starting, serving and stopping a node.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use axum_server::Handle;
use backoffice::mail::link_key::LinkKeyError;
use backoffice::mail::outbox::{Mailer, MailerError};
use backoffice::platform::accounts;
use backoffice::platform::accounts::OneTimePassword;
use backoffice::platform::files::FileStore;
use backoffice::platform::organisms;
use backoffice::platform::settings;
use backoffice::{Db, StoreError, UnixMillis};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder as HttpBuilder;
use sfu::{Sfu, SfuConfig};
use sha2::{Digest, Sha256};
use signaling::clock::{Clock, SystemClock};
use signaling::cluster::{Ownership, RedisOwnership};
use signaling::hub::{Hub, SignalingSettings};
use signaling::ice::IceServers;
use tokio::sync::watch;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::account::throttle::LoginThrottle;
use crate::config::{Config, ConfigError};
use crate::http::auth;
use crate::http::csrf;
use crate::http::csrf_key::CsrfKey;
use crate::http::error::AppError;
use crate::http::input;
use crate::http::limits::{self, ConnectionLimits, RequestDeadlines};
pub use crate::http::routes::Route;
use crate::http::routes::Routes;
use crate::state::AppState;
use crate::telemetry::{self, Metrics};
use crate::{account, admin, agenda, cases, mediators, openapi, outbox, people, rooms, tls};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot reach Redis: {0}")]
    Redis(String),
    #[error("outgoing mail: {0}")]
    Mail(#[from] MailerError),
    #[error(transparent)]
    LinkKey(#[from] LinkKeyError),
    #[error("cannot open the media ports ({ports}): {source}")]
    Media {
        ports: String,
        source: std::io::Error,
    },
}

/// What a first start prints once.
#[derive(Debug)]
pub struct FirstStart {
    pub admin_password: OneTimePassword,
}

/// A running node.
pub struct RunningServer {
    /// The address actually bound (useful with port 0).
    pub local_addr: SocketAddr,
    /// The UDP address of the media plane.
    pub media_addr: SocketAddr,
    /// Present when this start created the first administrator.
    pub first_start: Option<FirstStart>,
    /// The database, for whoever started the node (tests assert on it).
    pub db: Db,
    handle: Handle,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_rooms: watch::Sender<bool>,
    hub: Arc<Hub>,
    maintenance: tokio::task::JoinHandle<()>,
    /// Delivers the outbox; ends after its current round once the node stops.
    outbox_worker: tokio::task::JoinHandle<()>,
    grace: Duration,
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight requests finish within the grace period,
    /// then closes the database.
    pub async fn shutdown(self) -> std::io::Result<()> {
        (self.shutdown_trigger())();
        self.wait().await
    }

    /// Waits until the server stops (after [`RunningServer::trigger_shutdown`] or an error),
    /// then closes the database.
    pub async fn wait(self) -> std::io::Result<()> {
        let served = self
            .served
            .await
            .unwrap_or_else(|error| Err(std::io::Error::other(error)));
        self.maintenance.abort();
        // A mail cut off mid-send would wait for its lease to run out (and might go twice).
        let mut outbox_worker = self.outbox_worker;
        if tokio::time::timeout(self.grace, &mut outbox_worker)
            .await
            .is_err()
        {
            outbox_worker.abort();
        }
        // Rooms stop before the database closes; other nodes may take them at once.
        if tokio::time::timeout(self.grace, self.hub.release_all())
            .await
            .is_err()
        {
            tracing::warn!("rooms did not stop within the grace period; their claims expire");
        }
        self.db.close().await;
        tracing::info!("shut down");
        served
    }

    /// Stops dead, as a crash would: connections are cut, claims on rooms are neither renewed
    /// nor released (they expire), the database is left as it is. For failover tests.
    pub fn crash(self) {
        self.maintenance.abort();
        self.outbox_worker.abort();
        self.handle.shutdown();
        self.served.abort();
    }

    /// A handle that starts the graceful shutdown from elsewhere (a signal handler).
    pub fn shutdown_trigger(&self) -> impl FnOnce() + Send + 'static {
        let handle = self.handle.clone();
        let grace = self.grace;
        let stop_rooms = self.stop_rooms.clone();
        move || {
            // Open WebSockets say `bye` (server_shutdown) so that clients reconnect elsewhere.
            stop_rooms.send_replace(true);
            handle.graceful_shutdown(Some(grace));
        }
    }
}

/// Makes what this process creates from now on private to its user (umask 077): the data
/// directory, the SQLite database and its journal, stored files, mail written as `.eml`, the
/// development TLS key. A node holds personal data that nobody else on the machine may read.
pub fn keep_created_files_private() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Connects to the database and applies pending migrations.
pub async fn open_database(config: &Config) -> Result<Db, StoreError> {
    let url = config.database_url();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if let Some(parent) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| StoreError::FileStoreLocation(error.to_string()))?;
        }
    }
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    Ok(db)
}

/// What a node takes besides its configuration: the clock and the signaling limits. Tests
/// change them; production uses [`Runtime::default`].
#[derive(Clone)]
pub struct Runtime {
    pub clock: Arc<dyn Clock>,
    pub signaling: SignalingSettings,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            signaling: SignalingSettings::default(),
        }
    }
}

/// Starts a node with the system clock: see [`start_with`].
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    start_with(config, Runtime::default()).await
}

/// Starts a node: migrations, the demo organism and first administrator on an empty
/// database, the file store, then the HTTP(S) listener.
pub async fn start_with(config: Config, runtime: Runtime) -> Result<RunningServer, StartError> {
    keep_created_files_private();
    let Runtime {
        clock,
        mut signaling,
    } = runtime;
    signaling.ice_servers = IceServers {
        stun: config.stun_urls.clone(),
        turn: config.turn_urls.clone(),
        turn_secret: config.turn_secret.clone(),
        credential_ttl: Duration::from_secs(12 * 60 * 60),
    };
    let tls = tls::server_config(&config)?;
    let db = open_database(&config).await?;
    let now = UnixMillis::now();
    let organism = organisms::ensure_demo(&db, now).await?;
    let admin_password = accounts::ensure_first_admin(&db, now, Some(organism.id)).await?;
    let files = FileStore::open(&config.file_store())?;
    files.mark_ready().await?;
    let outbox = config.outbox_dir();
    std::fs::create_dir_all(&outbox).map_err(|source| StartError::DataDir {
        path: outbox.display().to_string(),
        source,
    })?;
    let mailer = match &config.smtp_url {
        Some(smtp_url) => Mailer::smtp(smtp_url, &config.mail_from)?,
        None => Mailer::files(&outbox, &config.mail_from)?,
    };
    if config.files_mailer_outside_demo() {
        tracing::warn!(
            directory = %outbox.display(),
            "no smtp_url: outgoing mail, working personal room links included, is written as \
             .eml files instead of being sent; this is for demos and development only"
        );
    }
    let link_key = config.link_key()?;
    let csrf_secret = settings::secret(&db, "csrf", now).await?;
    let listener = listen(config.listen).map_err(|source| StartError::Listen {
        address: config.listen,
        source,
    })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
        address: config.listen,
        source,
    })?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let node_url = config
        .node_url
        .as_ref()
        .map(|url| url.as_str().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("{scheme}://{local_addr}"));
    let ownership = match &config.redis_url {
        None => Ownership::Local,
        Some(redis_url) => {
            let redis = RedisOwnership::connect(
                redis_url,
                &node_url,
                Duration::from_millis(config.room_claim_ttl_ms),
            )
            .await
            .map_err(|error| StartError::Redis(error.to_string()))?;
            Ownership::Redis(redis)
        }
    };
    let login_throttle = match &config.redis_url {
        None => LoginThrottle::in_memory(),
        Some(redis_url) => {
            let installation = settings::secret(&db, "login_throttle", now).await?;
            LoginThrottle::redis(redis_url, &hex::encode(installation))
                .await
                .map_err(|error| StartError::Redis(error.to_string()))?
        }
    };
    let media = Sfu::start(SfuConfig {
        udp: config.media_listen,
        tcp: config.media_tcp_listen,
        public_ip: config.media_public_ip,
        silence_timeout: Duration::from_millis(config.media_silence_timeout_ms),
    })
    .await
    .map_err(|source| StartError::Media {
        ports: match config.media_tcp_listen {
            Some(tcp) => format!("UDP {}, TCP {tcp}", config.media_listen),
            None => format!("UDP {}", config.media_listen),
        },
        source,
    })?;
    let media_addr = media.local_addr();
    let (stop_rooms, stopping) = watch::channel(false);
    let hub = Arc::new(Hub::new(
        db.clone(),
        clock.clone(),
        signaling,
        ownership,
        Some(media),
    ));
    let maintenance = hub.maintain();
    let state = AppState {
        db: db.clone(),
        config: Arc::new(config.clone()),
        files,
        csrf: Arc::new(CsrfKey::new(csrf_secret)),
        metrics: Metrics::new()?,
        login_throttle: Arc::new(login_throttle),
        trusted_proxies: config.trusted_proxy_networks().into(),
        hub: hub.clone(),
        socket_origins: rooms::socket::allowed_origins(&config.public_url, &node_url).into(),
        clock,
        upload_slots: Arc::default(),
        stopping,
        link_key: Arc::new(link_key),
    };
    let outbox_worker = outbox::spawn_worker(state.clone(), mailer);
    let app = router(state);
    let handle = Handle::new();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    let limits = ConnectionLimits::from_config(&config);
    let header_timeout = Duration::from_secs(config.http_header_timeout_secs);
    let served = match tls {
        Some(tls) => {
            let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(tls))
                .handshake_timeout(header_timeout)
                .acceptor(limits);
            let mut server = axum_server::from_tcp(listener)
                .acceptor(acceptor)
                .handle(handle.clone());
            bound_header_time(server.http_builder(), header_timeout);
            tokio::spawn(async move { server.serve(service).await })
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .acceptor(limits)
                .handle(handle.clone());
            bound_header_time(server.http_builder(), header_timeout);
            tokio::spawn(async move { server.serve(service).await })
        }
    };
    tracing::info!(%local_addr, %media_addr, "listening");
    Ok(RunningServer {
        local_addr,
        media_addr,
        first_start: admin_password.map(|admin_password| FirstStart { admin_password }),
        db,
        handle,
        served,
        stop_rooms,
        hub,
        maintenance,
        outbox_worker,
        grace: Duration::from_secs(config.shutdown_grace_secs),
    })
}

/// Closes an HTTP/1 connection whose request headers are not complete `timeout` after it began
/// waiting for them: a header sent slowly, or a kept-alive connection left idle.
fn bound_header_time(builder: &mut HttpBuilder<TokioExecutor>, timeout: Duration) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout);
}

/// Every route of every area, and the node's own (health, metrics, static files, the OpenAPI
/// document). A new area adds its `routes()` here.
fn routes() -> Routes {
    Routes::new()
        .merge(account::routes())
        .merge(admin::routes())
        .merge(agenda::routes())
        .merge(cases::routes())
        .merge(mediators::routes())
        .merge(outbox::routes())
        .merge(people::routes())
        .merge(rooms::routes())
        .get("/api/v1/openapi.json", openapi::document)
        .get("/healthz", || async { "ok" })
        .get("/readyz", ready)
        .get("/metrics", metrics)
        .get("/static/{*name}", static_asset)
}

/// Every route the server answers: method and path template. The OpenAPI document is checked
/// against it, and the CSRF test walks it.
pub fn route_table() -> Vec<Route> {
    let (_, mut table) = routes().into_parts();
    table.sort();
    table
}

/// Every route, with the middleware that applies to all of them.
pub fn router(state: AppState) -> Router {
    let secure = state.config.secure_cookies();
    let (routes, _) = routes().into_parts();
    let mut app = routes
        .fallback(|| async { AppError::NotFound })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::accept_api_tokens,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::protect,
        ))
        .layer(axum::middleware::from_fn(input::refuse_nul))
        .layer(axum::middleware::from_fn_with_state(
            RequestDeadlines::from_config(&state.config),
            limits::deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            telemetry::observe,
        ));
    for (name, value) in [
        // Pages answer from the data of whoever asks; nothing but static assets (which set
        // their own caching) may be kept by a browser or a proxy.
        ("cache-control", "no-store"),
        // The room page allows camera, microphone and screen sharing for itself.
        ("permissions-policy", PERMISSIONS_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
             connect-src 'self'; frame-src blob:; frame-ancestors 'none'; form-action 'self'; \
             base-uri 'none'",
        ),
    ] {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            header::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    if secure {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    app.with_state(state)
}

/// The browser features no page may use: every page but the room's (which sets its own).
pub(crate) const PERMISSIONS_POLICY: &str = "camera=(), microphone=(), display-capture=(), \
     geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), midi=(), \
     publickey-credentials-get=(), accelerometer=(), gyroscope=(), magnetometer=()";

/// The room page's policy: camera, microphone and screen sharing for itself, nothing else.
pub(crate) const ROOM_PERMISSIONS_POLICY: &str = "camera=(self), microphone=(self), \
     display-capture=(self), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), \
     midi=(), publickey-credentials-get=(), accelerometer=(), gyroscope=(), magnetometer=()";

/// Binds the HTTP listener with `SO_REUSEADDR`, so that a restarted server gets its port back
/// at once (connections of the previous process may linger in TIME_WAIT).
fn listen(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)?.into_std()
}

/// `GET /readyz`: 200 when the database answers with every migration applied and the file
/// store answers; 503 otherwise.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.db.is_ready().await;
    let files = state.files.is_ready().await;
    let status = if database && files {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        format!(
            "database: {}\nfiles: {}\n",
            verdict(database),
            verdict(files)
        ),
    )
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "unavailable"
    }
}

/// `GET /metrics`: Prometheus text format, for a scraper that presents `metrics_token` as a
/// bearer token (401 otherwise); 404 when no token is configured.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = state.config.metrics_token.as_deref() else {
        return AppError::NotFound.into_response();
    };
    // The digests are compared, so the time taken says nothing about how much of the token
    // was right.
    let presented = auth::bearer(&headers).map(|presented| Sha256::digest(presented.as_bytes()));
    if presented != Some(Sha256::digest(token.as_bytes())) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "Token mancante o non valido.\n",
        )
            .into_response();
    }
    let live = state.hub.live_rooms().await;
    if let Some(sfu) = state.hub.sfu() {
        state.metrics.update_media(&sfu.stats());
    }
    state
        .metrics
        .live_rooms
        .set(i64::try_from(live).unwrap_or(i64::MAX));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// The files under `/static/`: served from the binary, no build step, nothing from elsewhere.
const STATIC_ASSETS: &[(&str, &str, &str)] = &[
    ("accordo.css", CSS, include_str!("../static/accordo.css")),
    ("room.css", CSS, include_str!("../static/room.css")),
    ("room.js", JAVASCRIPT, include_str!("../static/room.js")),
    ("people.js", JAVASCRIPT, include_str!("../static/people.js")),
    (
        "room/connection.js",
        JAVASCRIPT,
        include_str!("../static/room/connection.js"),
    ),
    (
        "room/devices.js",
        JAVASCRIPT,
        include_str!("../static/room/devices.js"),
    ),
    (
        "room/media.js",
        JAVASCRIPT,
        include_str!("../static/room/media.js"),
    ),
    (
        "room/controls.js",
        JAVASCRIPT,
        include_str!("../static/room/controls.js"),
    ),
];
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// `GET /static/{name}`.
async fn static_asset(Path(name): Path<String>) -> Response {
    match STATIC_ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => AppError::NotFound.into_response(),
    }
}
