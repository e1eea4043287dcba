//! Configuration: one documented struct with defaults, read from a TOML file and from
//! `ACCORDO_*` environment variables (the variable's name is the key in capitals:
//! `room_capacity` ← `ACCORDO_ROOM_CAPACITY`). Environment variables win over the file.
//!
//! **Invariant:** a bad value is reported as a [`ConfigError`] naming the key, where it came
//! from, what is wrong and what is expected; the binary prints it and exits with code 2.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backoffice::mail::link_key::{LinkKey, LinkKeyError};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

/// The environment variable that names the configuration file.
pub const CONFIG_FILE_VARIABLE: &str = "ACCORDO_CONFIG";
const ENV_PREFIX: &str = "ACCORDO_";
/// The configuration file read from the working directory when none is named.
pub const DEFAULT_CONFIG_FILE: &str = "accordo.toml";

/// Everything an Accordo node can be told. Every key has a default, so an empty file (or none)
/// runs a self-contained demo on localhost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// The address people reach this server at; links in emails start with it.
    pub public_url: Url,
    /// Where the embedded defaults keep their files (SQLite database, files, outbox, TLS).
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`. Default: `sqlite://DATA_DIR/accordo.db`.
    pub database_url: Option<String>,
    /// `redis://HOST:PORT` to run several nodes; without it everything stays in-process.
    pub redis_url: Option<String>,
    /// With several nodes: the address at which clients reach this node directly (a room's
    /// clients are redirected to the node that serves it). Default: the address it listens on.
    pub node_url: Option<Url>,
    /// With several nodes: milliseconds a node's claim on a room lasts unless renewed (a third
    /// of it between renewals). A node's heartbeat lasts a fifth of it: a dead node's rooms are
    /// taken over by another node that long after its last heartbeat.
    #[serde(deserialize_with = "lenient::number")]
    pub room_claim_ttl_ms: u64,
    /// A local directory, or `s3://BUCKET` (endpoint and keys from the `AWS_*` variables).
    /// Default: `DATA_DIR/files`.
    pub file_store: Option<String>,
    /// `smtp://HOST:PORT`, `smtp://USER:PASSWORD@HOST:587?tls=required` (STARTTLS) or
    /// `smtps://USER:PASSWORD@HOST` (TLS from the start). Without it, outgoing mail is written as
    /// `.eml` files into `DATA_DIR/outbox`.
    pub smtp_url: Option<String>,
    /// The sender of outgoing mail: `Name <address>` or an address.
    pub mail_from: String,
    /// The key that seals personal links while their mail waits in the outbox: 64 hexadecimal
    /// digits (`openssl rand -hex 32`), kept out of the database so that a copy of it opens no
    /// room. Without it, the key is read from `DATA_DIR/link.key`, created (mode 0600) at
    /// first start. Several nodes must share it: set it on each, or share the data directory.
    pub link_key: Option<String>,
    /// Milliseconds between two looks at the outbox for mail due to be sent.
    #[serde(deserialize_with = "lenient::number")]
    pub outbox_poll_ms: u64,
    /// Hours before an online meeting at which its participants get a reminder (none: no
    /// reminders); a list, or comma-separated in the environment.
    #[serde(deserialize_with = "lenient::numbers")]
    pub reminder_lead_hours: Vec<u32>,
    /// The segreteria's address: it gets its own reminders of meetings and the news of a
    /// cancellation.
    pub office_email: Option<String>,
    /// `off` (plain HTTP, for localhost or behind a TLS proxy), `self-signed` (a development
    /// certificate generated into `DATA_DIR/tls`), or `files` (`tls_cert` and `tls_key`).
    pub tls: TlsMode,
    /// PEM certificate chain, with `tls = "files"`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key, with `tls = "files"`.
    pub tls_key: Option<PathBuf>,
    /// The UDP address of the media plane (one port for every peer).
    pub media_listen: SocketAddr,
    /// The TCP address of ICE-TCP, the media fallback for networks that block UDP (one port
    /// for every peer); `off` turns it off.
    #[serde(
        deserialize_with = "lenient::address_or_off",
        serialize_with = "lenient::show_address_or_off"
    )]
    pub media_tcp_listen: Option<SocketAddr>,
    /// The public IP announced to clients for media when the server is behind a 1:1 NAT (or
    /// listens on 0.0.0.0); the listen address otherwise.
    pub media_public_ip: Option<std::net::IpAddr>,
    /// Milliseconds without a packet (ICE check, RTCP or media) after which a member's media
    /// connection counts as dead and the member as gone.
    #[serde(deserialize_with = "lenient::number")]
    pub media_silence_timeout_ms: u64,
    /// STUN servers handed to clients (`stun:host:port`); a list, or comma-separated in the
    /// environment.
    #[serde(deserialize_with = "lenient::list")]
    pub stun_urls: Vec<String>,
    /// TURN servers handed to clients (`turn:host:port?transport=udp`, `turns:…`).
    #[serde(deserialize_with = "lenient::list")]
    pub turn_urls: Vec<String>,
    /// The shared secret of the TURN REST API scheme (coturn `static-auth-secret`).
    pub turn_secret: Option<String>,
    /// People connected to one room at once (mediator + 4 by default).
    #[serde(deserialize_with = "lenient::number")]
    pub room_capacity: u32,
    /// Days a room lives from its creation.
    #[serde(deserialize_with = "lenient::number")]
    pub room_lifetime_days: u32,
    /// `human` or `json` logs.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `info,sqlx=warn`.
    pub log_level: String,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[serde(deserialize_with = "lenient::number")]
    pub shutdown_grace_secs: u64,
    /// The bearer token a Prometheus scraper sends to `/metrics`; without it `/metrics`
    /// answers 404.
    pub metrics_token: Option<String>,
    /// Seconds a client has to send a request's headers, counted from the moment the
    /// connection waits for a request: a half-sent header and a kept-alive connection left
    /// idle are both closed after it.
    #[serde(deserialize_with = "lenient::number")]
    pub http_header_timeout_secs: u64,
    /// Seconds a request may take from its headers to the answer, body included.
    #[serde(deserialize_with = "lenient::number")]
    pub http_request_timeout_secs: u64,
    /// The same for a file upload (a `multipart/form-data` body).
    #[serde(deserialize_with = "lenient::number")]
    pub http_upload_timeout_secs: u64,
    /// Seconds a connection may go without a byte in either direction (a stalled body, a
    /// client that stops reading, a silent WebSocket) before it is closed.
    #[serde(deserialize_with = "lenient::number")]
    pub http_idle_timeout_secs: u64,
    /// Connections open at once, over all clients; more are closed as they arrive.
    #[serde(deserialize_with = "lenient::number")]
    pub http_max_connections: u32,
    /// Connections open at once from one client address. Behind a reverse proxy every
    /// connection comes from the proxy: set it to `http_max_connections` there.
    #[serde(deserialize_with = "lenient::number")]
    pub http_max_connections_per_address: u32,
    /// Minutes a staff session lasts without requests (it ends after 12 hours in any case).
    #[serde(deserialize_with = "lenient::number")]
    pub session_idle_timeout_mins: u64,
    /// The reverse proxies (addresses or CIDR blocks, e.g. `10.0.0.0/8`) whose
    /// `X-Forwarded-For` header is believed: the client is the rightmost address in it that is
    /// not one of them. Requests from anywhere else are taken at their connection's address.
    #[serde(deserialize_with = "lenient::list")]
    pub trusted_proxies: Vec<String>,
}

/// How the server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Off,
    SelfSigned,
    Files,
}

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Human,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: Url::parse("http://localhost:8080").expect("constant URL is valid"),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            redis_url: None,
            node_url: None,
            room_claim_ttl_ms: 10_000,
            file_store: None,
            smtp_url: None,
            link_key: None,
            mail_from: "Accordo <noreply@accordo.invalid>".to_owned(),
            outbox_poll_ms: 5_000,
            reminder_lead_hours: vec![24],
            office_email: None,
            tls: TlsMode::Off,
            tls_cert: None,
            tls_key: None,
            media_listen: SocketAddr::from(([127, 0, 0, 1], 40000)),
            media_tcp_listen: Some(SocketAddr::from(([127, 0, 0, 1], 40000))),
            media_public_ip: None,
            media_silence_timeout_ms: 10_000,
            stun_urls: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: None,
            room_capacity: 5,
            room_lifetime_days: 90,
            log_format: LogFormat::Human,
            log_level: "info".to_owned(),
            shutdown_grace_secs: 20,
            metrics_token: None,
            http_header_timeout_secs: 10,
            http_request_timeout_secs: 30,
            http_upload_timeout_secs: 600,
            http_idle_timeout_secs: 60,
            http_max_connections: 4096,
            http_max_connections_per_address: 256,
            session_idle_timeout_mins: 30,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, e.g. `room_capacity`; empty for a whole-file problem.
    pub key: String,
    /// Where the value came from: a file, an environment variable, or the default.
    pub origin: String,
    /// What is wrong.
    pub problem: String,
    /// What would be accepted.
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(
                f,
                "configuration error in {}: {}",
                self.origin, self.problem
            )?;
        } else {
            write!(
                f,
                "configuration error: key `{}` (from {}): {}",
                self.key, self.origin, self.problem
            )?;
        }
        if !self.expected.is_empty() {
            write!(f, "; expected {}", self.expected)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Where each key's value came from, for error messages.
type Origins = BTreeMap<String, String>;

impl Config {
    /// The settings of a new room: lifetime and capacity from the configuration.
    pub fn room_settings(&self, auto_admit: bool) -> rooms::RoomSettings {
        rooms::RoomSettings {
            lifetime: std::time::Duration::from_secs(
                u64::from(self.room_lifetime_days) * 24 * 60 * 60,
            ),
            capacity: std::num::NonZeroU8::new(u8::try_from(self.room_capacity).unwrap_or(u8::MAX))
                .unwrap_or(std::num::NonZeroU8::MIN),
            auto_admit,
            hold_when_no_mediator: true,
        }
    }

    /// Reads the configuration: the file `file` (or `ACCORDO_CONFIG`, or `./accordo.toml` when
    /// it exists), then the `ACCORDO_*` variables among `env`, then checks every value.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        let named_file = file.map(Path::to_path_buf).or_else(|| {
            env.iter()
                .find(|(name, _)| name == CONFIG_FILE_VARIABLE)
                .map(|(_, value)| PathBuf::from(value))
        });
        let mut table = toml::Table::new();
        let mut origins = Origins::new();
        let file_to_read = match named_file {
            Some(path) => Some(path),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|path| path.exists()),
        };
        if let Some(path) = file_to_read {
            table = read_file(&path)?;
            for key in table.keys() {
                origins.insert(key.clone(), format!("file {}", path.display()));
            }
        }
        for (name, value) in env {
            if name == CONFIG_FILE_VARIABLE {
                continue;
            }
            let key = name[ENV_PREFIX.len()..].to_lowercase();
            origins.insert(key.clone(), format!("environment variable {name}"));
            table.insert(key, toml::Value::String(value));
        }
        let config = deserialize(table, &origins)?;
        config.validate(&origins)?;
        Ok(config)
    }

    /// The database URL in force (the SQLite default under `data_dir` when none is set).
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("accordo.db").display()))
    }

    /// The file store location in force.
    pub fn file_store(&self) -> String {
        self.file_store
            .clone()
            .unwrap_or_else(|| self.data_dir.join("files").display().to_string())
    }

    /// Where outgoing mail is written when no SMTP server is configured.
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// Where the link key is kept when `link_key` is not set.
    pub fn link_key_file(&self) -> PathBuf {
        self.data_dir.join("link.key")
    }

    /// The link key: `link_key`, or the key file of the data directory (created when missing).
    pub fn link_key(&self) -> Result<LinkKey, LinkKeyError> {
        match &self.link_key {
            Some(text) => LinkKey::parse(text),
            None => LinkKey::load_or_create(&self.link_key_file()),
        }
    }

    /// Whether outgoing mail is written as `.eml` files, personal links included, rather than
    /// sent: fit only for a demo or development on this machine (a loopback `public_url`).
    pub fn files_mailer_outside_demo(&self) -> bool {
        let loopback = match self.public_url.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(address)) => address.is_loopback(),
            Some(url::Host::Ipv6(address)) => address.is_loopback(),
            None => false,
        };
        self.smtp_url.is_none() && !loopback
    }

    /// Whether cookies must carry `Secure` (the server or its public address uses HTTPS).
    /// How long a staff session lasts without requests.
    pub fn session_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.session_idle_timeout_mins.saturating_mul(60))
    }

    /// [`Config::trusted_proxies`], parsed (a value that does not parse was refused by
    /// validation, so none is skipped here in a loaded configuration).
    pub fn trusted_proxy_networks(&self) -> Vec<IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|text| parse_network(text))
            .collect()
    }

    pub fn secure_cookies(&self) -> bool {
        self.tls != TlsMode::Off || self.public_url.scheme() == "https"
    }

    /// The effective configuration as TOML, with passwords and secrets masked: what
    /// `accordo config check` prints.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = Some(mask_url_password(&self.database_url()));
        shown.file_store = Some(self.file_store());
        shown.redis_url = self.redis_url.as_deref().map(mask_url_password);
        shown.smtp_url = self.smtp_url.as_deref().map(mask_url_password);
        shown.turn_secret = self.turn_secret.as_ref().map(|_| "***".to_owned());
        shown.metrics_token = self.metrics_token.as_ref().map(|_| "***".to_owned());
        shown.link_key = self.link_key.as_ref().map(|_| "***".to_owned());
        toml::to_string(&shown).unwrap_or_else(|error| format!("# cannot print: {error}\n"))
    }

    fn validate(&self, origins: &Origins) -> Result<(), ConfigError> {
        let fail = |key: &str, problem: String, expected: &str| ConfigError {
            key: key.to_owned(),
            origin: origins
                .get(key)
                .cloned()
                .unwrap_or_else(|| "the default".to_owned()),
            problem,
            expected: expected.to_owned(),
        };
        if let Some(node_url) = &self.node_url {
            if !matches!(node_url.scheme(), "http" | "https") {
                return Err(fail(
                    "node_url",
                    format!("unsupported scheme `{}`", node_url.scheme()),
                    "an http:// or https:// URL",
                ));
            }
        }
        if !matches!(self.public_url.scheme(), "http" | "https") {
            return Err(fail(
                "public_url",
                format!("unsupported scheme `{}`", self.public_url.scheme()),
                "an http:// or https:// URL",
            ));
        }
        let database_url = self.database_url();
        check_url_scheme(&database_url, &["sqlite", "postgres", "postgresql"]).map_err(
            |problem| {
                fail(
                    "database_url",
                    problem,
                    "sqlite://PATH or postgres://USER@HOST:PORT/DATABASE",
                )
            },
        )?;
        if let Some(redis_url) = &self.redis_url {
            check_url_scheme(redis_url, &["redis", "rediss"])
                .map_err(|problem| fail("redis_url", problem, "redis://HOST:PORT"))?;
        }
        if !(1_000..=600_000).contains(&self.room_claim_ttl_ms) {
            return Err(fail(
                "room_claim_ttl_ms",
                format!("{} is out of range", self.room_claim_ttl_ms),
                "a whole number of milliseconds from 1000 to 600000",
            ));
        }
        if let Some(smtp_url) = &self.smtp_url {
            check_url_scheme(smtp_url, &["smtp", "smtps"]).map_err(|problem| {
                fail(
                    "smtp_url",
                    problem,
                    "smtp://USER:PASSWORD@HOST:PORT or smtps://…",
                )
            })?;
            backoffice::mail::outbox::check_smtp_url(smtp_url).map_err(|error| {
                fail(
                    "smtp_url",
                    error.to_string(),
                    "smtp://HOST:PORT, smtp://USER:PASSWORD@HOST:587?tls=required or \
                     smtps://USER:PASSWORD@HOST",
                )
            })?;
        }
        backoffice::mail::outbox::check_sender(&self.mail_from).map_err(|_| {
            fail(
                "mail_from",
                format!("`{}` is not a mail address", self.mail_from),
                "an address such as `Accordo <noreply@example.org>`",
            )
        })?;
        if !(10..=3_600_000).contains(&self.outbox_poll_ms) {
            return Err(fail(
                "outbox_poll_ms",
                format!("{} is out of range", self.outbox_poll_ms),
                "a whole number of milliseconds from 10 to 3600000",
            ));
        }
        if let Some(hours) = self
            .reminder_lead_hours
            .iter()
            .find(|h| !(1..=24 * 30).contains(*h))
        {
            return Err(fail(
                "reminder_lead_hours",
                format!("{hours} is out of range"),
                "whole numbers of hours from 1 to 720, e.g. [24, 2]",
            ));
        }
        if let Some(office) = &self.office_email {
            backoffice::mail::outbox::check_sender(office).map_err(|_| {
                fail(
                    "office_email",
                    format!("`{office}` is not a mail address"),
                    "an address such as `segreteria@example.org`",
                )
            })?;
        }
        if let Some(store) = &self.file_store {
            if store.contains("://") && !store.starts_with("s3://") {
                return Err(fail(
                    "file_store",
                    format!("unsupported location `{store}`"),
                    "a local directory or s3://BUCKET",
                ));
            }
        }
        if self.tls == TlsMode::Files {
            for (key, path) in [("tls_cert", &self.tls_cert), ("tls_key", &self.tls_key)] {
                let Some(path) = path else {
                    return Err(fail(
                        key,
                        "missing while tls = \"files\"".to_owned(),
                        "the path of a PEM file",
                    ));
                };
                if !path.is_file() {
                    return Err(fail(
                        key,
                        format!("file {} does not exist", path.display()),
                        "the path of a readable PEM file",
                    ));
                }
            }
        }
        for (key, urls, schemes) in [
            ("stun_urls", &self.stun_urls, &["stun:", "stuns:"][..]),
            ("turn_urls", &self.turn_urls, &["turn:", "turns:"][..]),
        ] {
            if let Some(bad) = urls
                .iter()
                .find(|url| !schemes.iter().any(|s| url.starts_with(s)))
            {
                return Err(fail(
                    key,
                    format!("`{bad}` is not a {} URL", &key[..4]),
                    "URLs such as stun:host:3478 or turn:host:3478?transport=udp",
                ));
            }
        }
        if self.media_listen.ip().is_unspecified() && self.media_public_ip.is_none() {
            return Err(fail(
                "media_public_ip",
                format!("missing while media_listen is {}", self.media_listen),
                "the IP address clients reach the media port at",
            ));
        }
        if !self.turn_urls.is_empty() && self.turn_secret.as_deref().unwrap_or("").is_empty() {
            return Err(fail(
                "turn_secret",
                "missing while turn_urls is set".to_owned(),
                "the TURN server's static-auth-secret",
            ));
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|token| token.chars().count() < 16)
        {
            return Err(fail(
                "metrics_token",
                "too short to be a secret".to_owned(),
                "a random string of at least 16 characters, e.g. from `openssl rand -hex 32`",
            ));
        }
        if let Some(Err(error)) = self.link_key.as_deref().map(LinkKey::parse) {
            return Err(fail(
                "link_key",
                error.to_string(),
                "64 hexadecimal digits, e.g. from `openssl rand -hex 32`",
            ));
        }
        if !(2..=50).contains(&self.room_capacity) {
            return Err(fail(
                "room_capacity",
                format!("{} is out of range", self.room_capacity),
                "a whole number from 2 to 50",
            ));
        }
        if !(1..=3650).contains(&self.room_lifetime_days) {
            return Err(fail(
                "room_lifetime_days",
                format!("{} is out of range", self.room_lifetime_days),
                "a whole number of days from 1 to 3650",
            ));
        }
        for (key, value, range) in [
            (
                "http_header_timeout_secs",
                self.http_header_timeout_secs,
                1..=300,
            ),
            (
                "http_request_timeout_secs",
                self.http_request_timeout_secs,
                1..=3600,
            ),
            (
                "http_upload_timeout_secs",
                self.http_upload_timeout_secs,
                1..=86_400,
            ),
            (
                "http_idle_timeout_secs",
                self.http_idle_timeout_secs,
                1..=3600,
            ),
        ] {
            if !range.contains(&value) {
                return Err(fail(
                    key,
                    format!("{value} is out of range"),
                    &format!(
                        "a whole number of seconds from {} to {}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        if !(1..=720).contains(&self.session_idle_timeout_mins) {
            return Err(fail(
                "session_idle_timeout_mins",
                format!("{} is out of range", self.session_idle_timeout_mins),
                "a whole number of minutes from 1 to 720",
            ));
        }
        if let Some(bad) = self
            .trusted_proxies
            .iter()
            .find(|text| parse_network(text).is_none())
        {
            return Err(fail(
                "trusted_proxies",
                format!("`{bad}` is not an address or a CIDR block"),
                "addresses or CIDR blocks, e.g. [\"127.0.0.1\", \"10.0.0.0/8\"]",
            ));
        }
        if !(1..=1_000_000).contains(&self.http_max_connections) {
            return Err(fail(
                "http_max_connections",
                format!("{} is out of range", self.http_max_connections),
                "a whole number from 1 to 1000000",
            ));
        }
        if !(1..=self.http_max_connections).contains(&self.http_max_connections_per_address) {
            return Err(fail(
                "http_max_connections_per_address",
                format!("{} is out of range", self.http_max_connections_per_address),
                "a whole number from 1 to http_max_connections",
            ));
        }
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return Err(fail(
                "log_level",
                error.to_string(),
                "a level (error, warn, info, debug, trace) or a filter such as info,sqlx=warn",
            ));
        }
        Ok(())
    }
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let whole_file = |problem: String, expected: &str| ConfigError {
        key: String::new(),
        origin: format!("file {}", path.display()),
        problem,
        expected: expected.to_owned(),
    };
    let text = std::fs::read_to_string(path)
        .map_err(|error| whole_file(format!("cannot read it: {error}"), "a readable TOML file"))?;
    text.parse::<toml::Table>()
        .map_err(|error| whole_file(error.message().to_owned(), "valid TOML"))
}

fn deserialize(table: toml::Table, origins: &Origins) -> Result<Config, ConfigError> {
    let mut unknown = Vec::new();
    let value = toml::Value::Table(table);
    let mut note_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let ignoring = serde_ignored::Deserializer::new(value, &mut note_unknown);
    let config: Result<Config, _> = serde_path_to_error::deserialize(ignoring);
    if let Some(key) = unknown.first() {
        let top = key.split('.').next().unwrap_or(key);
        return Err(ConfigError {
            key: key.clone(),
            origin: origins
                .get(top)
                .cloned()
                .unwrap_or_else(|| "the configuration".to_owned()),
            problem: "unknown key".to_owned(),
            expected: "one of the keys documented in README.md (see `accordo config check`)"
                .to_owned(),
        });
    }
    config.map_err(|error| {
        let key = error.path().to_string();
        let top = key.split(['.', '[']).next().unwrap_or(&key).to_owned();
        ConfigError {
            origin: origins
                .get(&top)
                .cloned()
                .unwrap_or_else(|| "the configuration".to_owned()),
            key,
            problem: error.inner().to_string(),
            expected: String::new(),
        }
    })
}

fn check_url_scheme(url: &str, schemes: &[&str]) -> Result<(), String> {
    let parsed = Url::parse(url)
        .map_err(|error| format!("`{}` is not a URL ({error})", mask_url_password(url)))?;
    if schemes.contains(&parsed.scheme()) {
        Ok(())
    } else {
        Err(format!("unsupported scheme `{}`", parsed.scheme()))
    }
}

/// The URL with its secrets replaced by `***`: the password, and the value of any query
/// parameter whose name speaks of one (`?password=`, `sslpassword`, `token`, `secret`, `key`…).
/// Text that is not a URL may hold a secret anywhere: only its scheme is shown.
/// An address (`10.0.0.1`, a network of one) or a CIDR block (`10.0.0.0/8`).
fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

pub fn mask_url_password(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return match url.split_once("://") {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("{scheme}://***")
            }
            _ => "***".to_owned(),
        };
    };
    if parsed.password().is_some() {
        // Setting a password fails only for URLs that cannot have one, which this has.
        let _ = parsed.set_password(Some("***"));
    }
    let secret_parameter = |name: &str| {
        let name = name.to_ascii_lowercase();
        ["pass", "pwd", "secret", "token", "key", "auth"]
            .iter()
            .any(|word| name.contains(word))
    };
    if parsed
        .query_pairs()
        .any(|(name, _)| secret_parameter(&name))
    {
        let masked: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret_parameter(&name) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(masked);
    }
    parsed.to_string()
}

/// Deserializers that accept the string form an environment variable gives, as well as the
/// typed TOML form.
mod lenient {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrText<T> {
        Number(T),
        Text(String),
    }

    pub fn number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + std::str::FromStr,
    {
        match NumberOrText::<T>::deserialize(deserializer)? {
            NumberOrText::Number(number) => Ok(number),
            NumberOrText::Text(text) => text.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!("`{text}` is not a whole number in range"))
            }),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumbersOrText {
        List(Vec<u32>),
        Text(String),
    }

    /// Whole numbers: a list, or comma-separated text (as an environment variable gives).
    pub fn numbers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u32>, D::Error> {
        match NumbersOrText::deserialize(deserializer)? {
            NumbersOrText::List(list) => Ok(list),
            NumbersOrText::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| item.parse().map_err(serde::de::Error::custom))
                .collect(),
        }
    }

    pub fn address_or_off<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.trim() {
            "off" => Ok(None),
            address => address.parse().map(Some).map_err(|_| {
                serde::de::Error::custom(format!("`{text}` is neither HOST:PORT nor `off`"))
            }),
        }
    }

    pub fn show_address_or_off<S: serde::Serializer>(
        address: &Option<SocketAddr>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match address {
            Some(address) => serializer.collect_str(address),
            None => serializer.serialize_str("off"),
        }
    }

    pub fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
        Ok(match ListOrText::deserialize(deserializer)? {
            ListOrText::List(list) => list,
            ListOrText::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.toml");
        std::fs::write(&empty, "").expect("write");
        Config::load(Some(&empty), env(pairs))
    }

    #[test]
    fn defaults_are_the_embedded_demo() {
        let config = load_env(&[]).expect("defaults load");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url(), "sqlite://./data/accordo.db");
        assert_eq!(config.room_capacity, 5);
        assert_eq!(config.room_lifetime_days, 90);
        assert!(!config.secure_cookies());
    }

    #[test]
    fn environment_variables_follow_the_keys_and_win_over_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("accordo.toml");
        std::fs::write(&file, "room_capacity = 4\nlisten = \"0.0.0.0:9000\"\n").expect("write");
        let config = Config::load(
            Some(&file),
            env(&[
                ("ACCORDO_ROOM_CAPACITY", "6"),
                ("ACCORDO_STUN_URLS", "stun:a:3478, stun:b:3478"),
                (
                    "ACCORDO_DATABASE_URL",
                    "postgres://accordo:s3cret@db:5432/accordo",
                ),
                ("ACCORDO_METRICS_TOKEN", "un-segreto-per-prometheus"),
                ("HOME", "/root"),
            ]),
        )
        .expect("loads");
        assert_eq!(config.room_capacity, 6);
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.stun_urls, vec!["stun:a:3478", "stun:b:3478"]);
        let masked = config.to_masked_toml();
        assert!(
            masked.contains("postgres://accordo:***@db:5432/accordo"),
            "{masked}"
        );
        assert!(!masked.contains("s3cret"));
        assert!(masked.contains("metrics_token = \"***\""), "{masked}");
        assert!(!masked.contains("un-segreto-per-prometheus"));
    }

    #[test]
    fn a_bad_value_names_the_key_its_origin_and_what_is_expected() {
        let error = load_env(&[("ACCORDO_ROOM_CAPACITY", "many")]).expect_err("refused");
        assert_eq!(error.key, "room_capacity");
        assert_eq!(error.origin, "environment variable ACCORDO_ROOM_CAPACITY");
        assert!(error.problem.contains("`many`"), "{error}");

        let error =
            load_env(&[("ACCORDO_DATABASE_URL", "mysql://localhost/x")]).expect_err("refused");
        assert_eq!(error.key, "database_url");
        assert_eq!(
            error.to_string(),
            "configuration error: key `database_url` (from environment variable \
             ACCORDO_DATABASE_URL): unsupported scheme `mysql`; expected sqlite://PATH or \
             postgres://USER@HOST:PORT/DATABASE"
        );

        let error = load_env(&[("ACCORDO_ROOM_CAPACITY", "1")]).expect_err("refused");
        assert_eq!(error.expected, "a whole number from 2 to 50");
    }

    #[test]
    fn unknown_keys_are_refused_from_the_file_and_the_environment() {
        let error = load_env(&[("ACCORDO_ROOM_CAPACTIY", "5")]).expect_err("refused");
        assert_eq!(error.key, "room_capactiy");
        assert_eq!(error.problem, "unknown key");
        assert_eq!(error.origin, "environment variable ACCORDO_ROOM_CAPACTIY");

        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("accordo.toml");
        std::fs::write(&file, "[tls]\nmode = 1\n").expect("write");
        let error = Config::load(Some(&file), env(&[])).expect_err("refused");
        assert!(error.origin.starts_with("file "), "{error}");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_cidr_blocks() {
        let config =
            load_env(&[("ACCORDO_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8, ::1")]).expect("loads");
        let networks: Vec<String> = config
            .trusted_proxy_networks()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(networks, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        assert_eq!(config.session_idle_timeout(), Duration::from_secs(30 * 60));

        let error = load_env(&[("ACCORDO_TRUSTED_PROXIES", "10.0.0.0/33")]).expect_err("refused");
        assert_eq!(error.key, "trusted_proxies");
        let error = load_env(&[("ACCORDO_SESSION_IDLE_TIMEOUT_MINS", "0")]).expect_err("refused");
        assert_eq!(error.key, "session_idle_timeout_mins");
    }

    #[test]
    fn tls_files_must_exist() {
        let error = load_env(&[
            ("ACCORDO_TLS", "files"),
            ("ACCORDO_TLS_CERT", "/nonexistent/cert.pem"),
            ("ACCORDO_TLS_KEY", "/nonexistent/key.pem"),
        ])
        .expect_err("refused");
        assert_eq!(error.key, "tls_cert");
        assert!(error.problem.contains("does not exist"), "{error}");
    }

    #[test]
    fn media_on_every_interface_needs_the_public_address() {
        let error = load_env(&[("ACCORDO_MEDIA_LISTEN", "0.0.0.0:40000")]).expect_err("refused");
        assert_eq!(error.key, "media_public_ip");
        let config = load_env(&[
            ("ACCORDO_MEDIA_LISTEN", "0.0.0.0:40000"),
            ("ACCORDO_MEDIA_PUBLIC_IP", "203.0.113.7"),
        ])
        .expect("loads");
        assert_eq!(
            config.media_public_ip.map(|ip| ip.to_string()).as_deref(),
            Some("203.0.113.7")
        );
    }

    #[test]
    fn mail_settings_are_checked() {
        let config = load_env(&[]).expect("defaults load");
        assert_eq!(config.mail_from, "Accordo <noreply@accordo.invalid>");
        assert_eq!(config.outbox_poll_ms, 5_000);
        let error = load_env(&[("ACCORDO_MAIL_FROM", "Accordo")]).expect_err("refused");
        assert_eq!(error.key, "mail_from");
        let error = load_env(&[("ACCORDO_SMTP_URL", "smtp://mail.example:587?tls=sometimes")])
            .expect_err("refused");
        assert_eq!(error.key, "smtp_url");
        let error = load_env(&[("ACCORDO_OUTBOX_POLL_MS", "0")]).expect_err("refused");
        assert_eq!(error.key, "outbox_poll_ms");
        load_env(&[(
            "ACCORDO_SMTP_URL",
            "smtp://posta:segreto@mail.example:587?tls=required",
        )])
        .expect("a STARTTLS URL loads");
    }

    #[test]
    fn the_link_key_is_checked_and_masked_and_the_file_mailer_is_for_demos() {
        let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let config = load_env(&[("ACCORDO_LINK_KEY", key)]).expect("loads");
        assert!(config.link_key().is_ok());
        let masked = config.to_masked_toml();
        assert!(masked.contains("link_key = \"***\""), "{masked}");
        assert!(!masked.contains(key), "{masked}");
        let error = load_env(&[("ACCORDO_LINK_KEY", "segreto")]).expect_err("refused");
        assert_eq!(error.key, "link_key");
        assert!(!error.to_string().contains("segreto"), "{error}");

        assert!(!config.files_mailer_outside_demo(), "the localhost demo");
        let public =
            load_env(&[("ACCORDO_PUBLIC_URL", "https://mediazione.example.org")]).expect("loads");
        assert!(public.files_mailer_outside_demo());
        let with_smtp = load_env(&[
            ("ACCORDO_PUBLIC_URL", "https://mediazione.example.org"),
            ("ACCORDO_SMTP_URL", "smtp://mail.example:25"),
        ])
        .expect("loads");
        assert!(!with_smtp.files_mailer_outside_demo());
    }

    #[test]
    fn the_room_claim_lasts_from_one_second_to_ten_minutes() {
        let config = load_env(&[]).expect("defaults load");
        assert_eq!(config.room_claim_ttl_ms, 10_000);
        let config = load_env(&[("ACCORDO_ROOM_CLAIM_TTL_MS", "1000")]).expect("loads");
        assert_eq!(config.room_claim_ttl_ms, 1_000);
        for refused in ["999", "600001", "soon"] {
            let error = load_env(&[("ACCORDO_ROOM_CLAIM_TTL_MS", refused)]).expect_err("refused");
            assert_eq!(error.key, "room_claim_ttl_ms");
        }
    }

    #[test]
    fn a_turn_server_needs_its_secret() {
        let error =
            load_env(&[("ACCORDO_TURN_URLS", "turn:turn.example:3478")]).expect_err("refused");
        assert_eq!(error.key, "turn_secret");
    }

    #[test]
    fn a_metrics_token_must_be_a_secret() {
        let error = load_env(&[("ACCORDO_METRICS_TOKEN", "corto")]).expect_err("refused");
        assert_eq!(error.key, "metrics_token");
    }

    #[test]
    fn broken_toml_is_reported_with_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("accordo.toml");
        std::fs::write(&file, "listen = \n").expect("write");
        let error = Config::load(Some(&file), env(&[])).expect_err("refused");
        assert_eq!(error.key, "");
        assert!(
            error
                .to_string()
                .starts_with("configuration error in file "),
            "{error}"
        );
    }
}
