//! The end-to-end test harness: [`spawn_app`] starts the real server on port 0 with a fresh
//! database (SQLite in a temporary directory, or a new PostgreSQL database) and returns typed
//! helpers. [`both_backends!`] turns one scenario into a test per backend.
//!
//! PostgreSQL is reached at `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432`);
//! each test creates its own database and drops it when it ends, even on failure.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use backoffice::platform::access::Role;
use backoffice::platform::accounts::{self, NewUser, Username};
use backoffice::platform::audit::{self, Actor};
use backoffice::{Db, UnixMillis};
use reqwest::{redirect, Client, Response, StatusCode};
use sqlx::Connection;
use web::config::Config;
use web::server::{self, RunningServer, Runtime};

pub mod janus;
pub mod media_peer;
pub mod network;
pub mod participant;
pub mod room_client;
pub mod smtp_sink;

pub use reqwest;
pub use signaling::clock::ManualClock;
pub use signaling::hub::SignalingSettings;

/// The database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What a scenario of [`both_backends!`] starts from: a [`TestApp`] or a bare [`TestDb`].
pub trait Fixture: Sized {
    fn create(backend: Backend) -> impl std::future::Future<Output = Self>;
}

impl Fixture for TestApp {
    async fn create(backend: Backend) -> Self {
        spawn_app(backend).await
    }
}

impl Fixture for TestDb {
    async fn create(backend: Backend) -> Self {
        TestDb::fresh(backend).await
    }
}

/// One scenario as two tests, `NAME::sqlite` and `NAME::postgres`. The scenario's argument is
/// any [`Fixture`]: `app: TestApp` for the whole server, `db: TestDb` for the database alone.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident: $app_type:ty) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn scenario($app: $app_type) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let fixture = <$app_type as $crate::Fixture>::create($crate::Backend::Sqlite).await;
                scenario(fixture).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let fixture = <$app_type as $crate::Fixture>::create($crate::Backend::Postgres).await;
                scenario(fixture).await;
            }
        }
    )*};
}

/// A fresh, migrated database of one backend, removed when dropped (even on failure).
pub struct TestDb {
    pub db: Db,
    pub backend: Backend,
    /// The URL the database was opened with.
    pub url: String,
    /// Holds the SQLite file, and the server's data directory in a [`TestApp`].
    pub dir: tempfile::TempDir,
    postgres_database: Option<String>,
}

impl TestDb {
    /// Creates the database (a new SQLite file, or a new PostgreSQL database) and migrates it.
    pub async fn fresh(backend: Backend) -> Self {
        let (dir, url, postgres_database) = Self::create_empty(backend).await;
        let db = Db::connect(&url)
            .await
            .expect("connect to the test database");
        db.migrate().await.expect("migrate the test database");
        Self {
            db,
            backend,
            url,
            dir,
            postgres_database,
        }
    }

    async fn create_empty(backend: Backend) -> (tempfile::TempDir, String, Option<String>) {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("accordo.db").display());
                (dir, url, None)
            }
            Backend::Postgres => {
                let name = format!("accordo_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin =
                    sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base_url()))
                        .await
                        .expect(
                            "PostgreSQL at TEST_POSTGRES_URL (default 127.0.0.1:5432) is reachable",
                        );
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create the test database");
                (dir, format!("{}/{name}", postgres_base_url()), Some(name))
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres_database.take() else {
            return;
        };
        // Drop is synchronous: use a private runtime on another thread. FORCE ends the
        // connections a pool still holds.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut admin =
                    sqlx::PgConnection::connect(&format!("{}/postgres", postgres_base_url()))
                        .await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                Ok::<_, anyhow::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: the test database was not dropped");
        }
    }
}

/// A running server and everything a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    pub backend: Backend,
    /// The database, for assertions.
    pub db: Db,
    /// The first administrator's one-time password, as printed at first start.
    pub admin_password: String,
    /// The clock rooms see: it stands still until a test moves it.
    pub clock: Arc<ManualClock>,
    config: Config,
    runtime: Runtime,
    server: Option<RunningServer>,
    // Declared last: dropped after the server, it removes the database and the data directory.
    storage: TestDb,
}

fn postgres_base_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// The configuration of a test server: port 0, everything under a temporary directory.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        media_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        media_tcp_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        // Short, so that a vanished peer is noticed within a test's patience.
        media_silence_timeout_ms: 4_000,
        data_dir: data_dir.to_path_buf(),
        log_level: "warn".to_owned(),
        shutdown_grace_secs: 5,
        metrics_token: Some(TEST_METRICS_TOKEN.to_owned()),
        ..Config::default()
    }
}

/// Starts the real server with a fresh database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the real server with a fresh database of `backend`, after `adjust` has changed the
/// test configuration.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_custom(backend, adjust, SignalingSettings::default()).await
}

/// The most general start: configuration adjusted by `adjust`, signaling limits `signaling`.
pub async fn spawn_app_custom(
    backend: Backend,
    adjust: impl FnOnce(&mut Config),
    signaling: SignalingSettings,
) -> TestApp {
    let (dir, url, postgres_database) = TestDb::create_empty(backend).await;
    let mut config = test_config(dir.path());
    config.database_url = Some(url.clone());
    adjust(&mut config);
    let clock = Arc::new(ManualClock::starting_now());
    let runtime = Runtime {
        clock: clock.clone(),
        signaling,
    };
    let scheme = if config.tls == web::config::TlsMode::Off {
        "http"
    } else {
        "https"
    };
    let server = server::start_with(config.clone(), runtime.clone())
        .await
        .expect("the server starts");
    let admin_password = server
        .first_start
        .as_ref()
        .map(|first| first.admin_password.reveal().to_owned())
        .expect("a fresh database creates the first administrator");
    let db = server.db.clone();
    TestApp {
        address: format!("{scheme}://{}", server.local_addr),
        backend,
        db: db.clone(),
        admin_password,
        clock,
        config,
        runtime,
        server: Some(server),
        storage: TestDb {
            db,
            backend,
            url,
            dir,
            postgres_database,
        },
    }
}

/// Opens a case and its room through the API as `office` (a segreteria or admin browser),
/// inviting `people` as (name, role, side); returns the ids and personal links.
pub async fn open_room(
    office: &Browser,
    people: &[(&'static str, &str, Option<&str>)],
    auto_admit: bool,
) -> RoomSetup {
    let reference = format!("MED-{}", uuid::Uuid::new_v4().simple());
    let case = office
        .post_json(
            "/api/v1/cases",
            &serde_json::json!({ "reference": reference, "title": "Locazione via Roma" }),
        )
        .await;
    assert_eq!(case.status(), StatusCode::CREATED);
    let case: serde_json::Value = case.json().await.expect("case JSON");
    let room = office
        .post_json(
            &format!(
                "/api/v1/cases/{}/room",
                case["id"].as_str().unwrap_or_default()
            ),
            &serde_json::json!({ "auto_admit": auto_admit }),
        )
        .await;
    assert_eq!(room.status(), StatusCode::CREATED);
    let room: serde_json::Value = room.json().await.expect("room JSON");
    let room = room["room"].as_str().unwrap_or_default().to_owned();
    let mut setup = RoomSetup {
        case: case["id"].as_str().unwrap_or_default().to_owned(),
        room: room.clone(),
        members: HashMap::new(),
        links: HashMap::new(),
    };
    for (name, role, side) in people {
        let mut body = serde_json::json!({ "role": role, "display_name": format!("Sig. {name}"), "email": format!("{name}@example.invalid") });
        if let Some(side) = side {
            body["side"] = serde_json::json!(side);
        }
        let added = office
            .post_json(&format!("/api/v1/rooms/{room}/members"), &body)
            .await;
        assert_eq!(added.status(), StatusCode::CREATED, "{name} invited");
        let added: serde_json::Value = added.json().await.expect("member JSON");
        setup.members.insert(
            *name,
            added["member"].as_str().unwrap_or_default().to_owned(),
        );
        setup
            .links
            .insert(*name, added["link"].as_str().unwrap_or_default().to_owned());
    }
    setup
}

/// A browser: its own cookie jar, no automatic redirects (tests assert on them).
#[derive(Clone)]
pub struct Browser {
    pub client: Client,
    address: String,
    cookies: Arc<reqwest::cookie::Jar>,
}

impl TestApp {
    /// A new browser with an empty cookie jar.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.address)
    }

    /// The data directory of this server.
    pub fn data_dir(&self) -> &std::path::Path {
        self.storage.dir.path()
    }

    /// Creates a user with `role` directly in the database and returns its username and
    /// one-time password.
    pub async fn create_user(&self, username: &str, role: Role) -> (String, String) {
        self.create_user_in(username, role, None).await
    }

    /// [`TestApp::create_user`] in `organism`.
    pub async fn create_user_in(
        &self,
        username: &str,
        role: Role,
        organism: Option<&str>,
    ) -> (String, String) {
        let new = NewUser {
            username: Username::parse(username).expect("valid username"),
            display_name: format!("Utente {username}"),
            role,
            organism_id: organism.map(str::to_owned),
        };
        let (user, one_time) =
            accounts::create_user(&self.db, &Actor::command_line(), UnixMillis::now(), new)
                .await
                .expect("create user");
        (user.username, one_time.reveal().to_owned())
    }

    /// Registers a second organism (body) on the installation, for the isolation scenarios;
    /// returns its id.
    pub async fn other_organism(&self) -> String {
        let id = "00000000-0000-7000-8000-00000000000b";
        sqlx::query(
            "INSERT INTO organisms (id, name, kind, is_demo, created_at) \
             VALUES ($1, 'Organismo B', 'organismo_mediazione', 0, 0)",
        )
        .bind(id)
        .execute(self.db.pool())
        .await
        .expect("organism");
        id.to_owned()
    }

    /// A browser logged in as a new user with `role`, past the first password change.
    pub async fn logged_in(&self, username: &str, role: Role) -> Browser {
        self.logged_in_at(username, role, None).await
    }

    /// [`TestApp::logged_in`] for a user of `organism`.
    pub async fn logged_in_at(
        &self,
        username: &str,
        role: Role,
        organism: Option<&str>,
    ) -> Browser {
        let (username, one_time) = self.create_user_in(username, role, organism).await;
        let browser = self.browser();
        browser.login(&username, &one_time).await;
        browser.change_password(&one_time, TEST_PASSWORD).await;
        browser
    }

    /// A browser logged in as the first administrator, past the first password change.
    pub async fn admin(&self) -> Browser {
        let browser = self.browser();
        browser.login("admin", &self.admin_password).await;
        browser
            .change_password(&self.admin_password, TEST_PASSWORD)
            .await;
        browser
    }

    /// `/metrics` as Prometheus scrapes it, with the test configuration's token.
    pub async fn metrics(&self) -> String {
        let browser = self.browser();
        let response = browser
            .client
            .get(browser.url("/metrics"))
            .bearer_auth(TEST_METRICS_TOKEN)
            .send()
            .await
            .expect("metrics answer");
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.expect("metrics text")
    }

    /// The actions of the audit log, oldest first.
    pub async fn audit_actions(&self) -> Vec<String> {
        let mut records = audit::recent(self.db.pool(), None, 10_000)
            .await
            .expect("audit log");
        records.reverse();
        records.into_iter().map(|record| record.action).collect()
    }

    /// Stops the server and starts it again on the same database, data directory and port.
    pub async fn restart(&mut self) {
        // Same port: clients that were connected come back to the address they know.
        if let Some(server) = &self.server {
            self.config.listen = server.local_addr;
        }
        self.shutdown().await;
        let server = server::start_with(self.config.clone(), self.runtime.clone())
            .await
            .expect("the server starts again");
        let scheme = self
            .address
            .split("://")
            .next()
            .unwrap_or("http")
            .to_owned();
        self.address = format!("{scheme}://{}", server.local_addr);
        self.db = server.db.clone();
        self.server = Some(server);
    }

    /// Opens a case and its room through the API as `office` (a segreteria or admin browser),
    /// inviting `people` as (name, role, side); returns the ids and personal links.
    pub async fn open_room(
        &self,
        office: &Browser,
        people: &[(&'static str, &str, Option<&str>)],
        auto_admit: bool,
    ) -> RoomSetup {
        open_room(office, people, auto_admit).await
    }

    /// Starts another node of the same installation: same configuration and database, its own
    /// port. With `redis_url` set, the nodes share rooms through Redis.
    pub async fn start_node(&self) -> Node {
        let server = server::start_with(self.config.clone(), self.runtime.clone())
            .await
            .expect("the second node starts");
        Node {
            address: format!("http://{}", server.local_addr),
            server: Some(server),
        }
    }

    /// Stops this node dead, as a crash would (see `RunningServer::crash`).
    pub fn crash(&mut self) {
        if let Some(server) = self.server.take() {
            server.crash();
        }
    }

    /// The whole audit log as text (actions, actors and changes), for "never recorded" checks.
    pub async fn audit_text(&self) -> String {
        let records = audit::recent(self.db.pool(), None, 100_000)
            .await
            .expect("audit log");
        format!("{records:?}")
    }

    /// Stops the server gracefully and returns once it has stopped.
    pub async fn shutdown(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }

    /// Starts the graceful shutdown without waiting for it; returns the waiter.
    pub fn begin_shutdown(&mut self) -> RunningServer {
        let server = self.server.take().expect("server running");
        (server.shutdown_trigger())();
        server
    }
}

/// Another node of the installation of a [`TestApp`].
pub struct Node {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    server: Option<RunningServer>,
}

impl Node {
    /// Stops this node dead, as a crash would.
    pub fn crash(&mut self) {
        if let Some(server) = self.server.take() {
            server.crash();
        }
    }
}

/// The smallest document a PDF reader opens: enough for the type check by content.
pub const SAMPLE_PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n\
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]>>endobj\n\
trailer<</Root 1 0 R>>\n%%EOF\n";

/// The people of a mediation, as (name, role, side): the mediator, side A (istante) with a
/// lawyer, side B (chiamata) with a lawyer.
pub const CAST: [(&str, &str, Option<&str>); 5] = [
    ("mediator", "mediator", None),
    ("party_a", "party", Some("istante")),
    ("lawyer_a", "lawyer", Some("istante")),
    ("party_b", "party", Some("chiamata")),
    ("lawyer_b", "lawyer", Some("chiamata")),
];

/// A room opened by [`TestApp::open_room`].
pub struct RoomSetup {
    /// The case the room belongs to.
    pub case: String,
    pub room: String,
    /// Member ids by actor name.
    pub members: HashMap<&'static str, String>,
    /// Personal links by actor name.
    pub links: HashMap<&'static str, String>,
}

impl RoomSetup {
    pub fn link(&self, name: &str) -> &str {
        self.links.get(name).map(String::as_str).unwrap_or_default()
    }

    pub fn member(&self, name: &str) -> &str {
        self.members
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// The bearer token of `/metrics` in the test configuration.
pub const TEST_METRICS_TOKEN: &str = "token-di-prova-per-le-metriche";

/// The password tests choose at the first password change.
pub const TEST_PASSWORD: &str = "una frase lunga per le prove";

impl Browser {
    /// A browser with an empty cookie jar for the server at `address` (`http://host:port`).
    pub fn new(address: &str) -> Browser {
        let cookies = Arc::new(reqwest::cookie::Jar::default());
        let client = Client::builder()
            .cookie_provider(cookies.clone())
            .redirect(redirect::Policy::none())
            .danger_accept_invalid_certs(true)
            .build()
            .expect("HTTP client");
        Browser {
            client,
            address: address.to_owned(),
            cookies,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// The CSRF token the server puts in this browser's forms (read from a page, as a
    /// browser would).
    pub async fn csrf_token(&self) -> String {
        let mut page = self.get("/password").await;
        if page.status() != StatusCode::OK {
            page = self.get("/login").await;
        }
        let html = page.text().await.expect("page body");
        let marker = "name=\"csrf_token\" value=\"";
        let start = html
            .find(marker)
            .expect("the page has a form with a CSRF token")
            + marker.len();
        let end = html[start..].find('"').expect("closing quote") + start;
        html[start..end].to_owned()
    }

    /// Posts a form with this browser's CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf_token().await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        self.post_form_raw(path, &form).await
    }

    /// The `Cookie` header this browser sends to the server (to open a WebSocket with it).
    pub fn cookie_header(&self) -> String {
        let url = self.address.parse().expect("server address");
        reqwest::cookie::CookieStore::cookies(&*self.cookies, &url)
            .and_then(|value| value.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Posts a JSON body with this browser's CSRF token in the `X-CSRF-Token` header.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Response {
        self.post_with_csrf(path)
            .await
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// [`Browser::post_json`] on a connection of its own: a body the server refuses before
    /// reading it all (over the limit) leaves its connection closed, and a pooled one would fail
    /// the browser's next request.
    pub async fn post_json_alone(&self, path: &str, body: &serde_json::Value) -> Response {
        let token = self.csrf_token().await;
        Client::new()
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .header("x-csrf-token", token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// Posts a file as a page's upload form does (`multipart/form-data`, the CSRF token in the
    /// query string); `fields` are further form fields.
    pub async fn post_file(
        &self,
        path: &str,
        (name, bytes): (&str, &[u8]),
        fields: &[(&str, &str)],
    ) -> Response {
        let token = self.csrf_token().await;
        self.post_file_raw(&format!("{path}?csrf_token={token}"), (name, bytes), fields)
            .await
    }

    /// [`Browser::post_file`] without adding a CSRF token.
    pub async fn post_file_raw(
        &self,
        path: &str,
        (name, bytes): (&str, &[u8]),
        fields: &[(&str, &str)],
    ) -> Response {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned()),
        );
        for (field, value) in fields {
            form = form.text((*field).to_owned(), (*value).to_owned());
        }
        self.client
            .post(self.url(path))
            .multipart(form)
            .send()
            .await
            .expect("POST")
    }

    /// Puts a JSON body with this browser's CSRF token.
    pub async fn put_json(&self, path: &str, body: &serde_json::Value) -> Response {
        let token = self.csrf_token().await;
        self.client
            .put(self.url(path))
            .header("x-csrf-token", token)
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    /// Sends a DELETE with this browser's CSRF token.
    pub async fn delete(&self, path: &str) -> Response {
        let token = self.csrf_token().await;
        self.client
            .delete(self.url(path))
            .header("x-csrf-token", token)
            .send()
            .await
            .expect("DELETE")
    }

    /// Posts raw bytes (a file upload) with this browser's CSRF token.
    pub async fn post_bytes(&self, path: &str, bytes: &[u8]) -> Response {
        let request = self.post_with_csrf(path).await;
        request.body(bytes.to_vec()).send().await.expect("POST")
    }

    async fn post_with_csrf(&self, path: &str) -> reqwest::RequestBuilder {
        let token = self.csrf_token().await;
        self.client
            .post(self.url(path))
            .header("x-csrf-token", token)
    }

    /// Posts exactly `fields`, without adding a CSRF token.
    pub async fn post_form_raw(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    /// Submits the login form.
    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post_form("/login", &[("username", username), ("password", password)])
            .await
    }

    /// Submits the password form; asserts that it succeeds.
    pub async fn change_password(&self, current: &str, new: &str) {
        let response = self
            .post_form(
                "/password",
                &[
                    ("current_password", current),
                    ("new_password", new),
                    ("confirm_password", new),
                ],
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "password change accepted"
        );
    }
}

/// Where a redirect points.
pub fn location(response: &Response) -> &str {
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// CPU seconds (user + system) and peak resident bytes (`VmHWM`) of process `pid`, from
/// `/proc`: how the benchmark drivers measure the server under test.
pub fn process_figures(pid: u32) -> anyhow::Result<(f64, u64)> {
    use anyhow::Context;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("stat format")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()?
        + fields.get(12).context("stime")?.parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next())
        .context("VmHWM")?
        .parse()?;
    // The kernel's USER_HZ is 100 on Linux.
    Ok((ticks / 100.0, peak_kib * 1024))
}

/// A route template (`/api/v1/cases/{case}`) with every `{name}` segment replaced by a
/// plausible value, to send a request to every route of the route table.
pub fn concrete_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
