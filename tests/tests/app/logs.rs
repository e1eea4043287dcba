//! The logging invariant of ARCHITECTURE.md: log lines carry the route template, never the
//! concrete URI, so tokens, case ids and query strings never reach a log.
//!
//! The test installs the process's global tracing subscriber (the server in a test does not
//! install one; the `accordo` binary does, see `web::telemetry::init_logging`) at debug level,
//! and records while it drives a realistic run. Other tests of this binary may log meanwhile:
//! their lines are recorded too, and harmless, since the secrets looked for are this run's own.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use accordo_tests::reqwest::StatusCode;
use accordo_tests::room_client::{token_of, RoomClient};
use accordo_tests::{spawn_app, Backend, TEST_PASSWORD};
use tracing_subscriber::filter::{dynamic_filter_fn, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The targets of the test's own clients (HTTP and cookies), whose lines are not the server's.
/// WebSocket lines (`tungstenite`) stay: the server speaks it too.
const CLIENT_TARGETS: [&str; 3] = ["reqwest", "cookie_store", "hyper_util::client"];

/// Whether log lines are being recorded, and those recorded.
static RECORDING: AtomicBool = AtomicBool::new(false);
static RECORDED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Where the subscriber writes: [`RECORDED`].
struct Recorder;

impl Write for Recorder {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        RECORDED
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the subscriber (once) and records the server's lines at debug level from now on.
fn start_recording() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| Recorder)
            .with_filter(dynamic_filter_fn(|metadata, _| {
                RECORDING.load(Ordering::Relaxed)
                    && LevelFilter::DEBUG >= *metadata.level()
                    && !CLIENT_TARGETS
                        .iter()
                        .any(|client| metadata.target().starts_with(client))
            }));
        tracing_subscriber::registry()
            .with(layer)
            .try_init()
            .expect("no other global subscriber in this test binary");
    });
    RECORDING.store(true, Ordering::Relaxed);
}

/// Stops recording and returns the lines recorded.
fn stop_recording() -> String {
    RECORDING.store(false, Ordering::Relaxed);
    let recorded = std::mem::take(&mut *RECORDED.lock().expect("recorded lines"));
    String::from_utf8_lossy(&recorded).into_owned()
}

/// A value no log line may hold, and what it is.
type Secret = (&'static str, String);

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_carry_route_templates_never_tokens_ids_or_queries() {
    start_recording();
    let app = spawn_app(Backend::Sqlite).await;
    let admin = app.admin().await;
    let reference = unique("MED-");
    let case = admin
        .post_json(
            "/api/v1/cases",
            &serde_json::json!({ "reference": reference, "title": "Locazione via Roma" }),
        )
        .await;
    assert_eq!(case.status(), StatusCode::CREATED);
    let case: serde_json::Value = case.json().await.expect("case JSON");
    let case = case["id"].as_str().expect("case id").to_owned();
    let setup = app
        .open_room(&admin, &[("party_a", "party", Some("istante"))], true)
        .await;
    let link = token_of(setup.link("party_a")).to_owned();

    let room_token = unique("room");
    let feed_token = unique("feed");
    let query = unique("secret");
    let socket_token = unique("socket");
    for path in [
        format!("/r/{room_token}"),
        format!("/calendar/{feed_token}"),
        format!("/api/v1/cases/{case}/history?x={query}"),
        format!("/pratiche/{case}?x={query}"),
        format!("/r/{link}"),
    ] {
        admin.get(&path).await;
    }
    let api_token = admin
        .post_json(
            "/api/v1/api-tokens",
            &serde_json::json!({ "name": "Gestionale", "scopes": ["view_cases"] }),
        )
        .await;
    assert_eq!(api_token.status(), StatusCode::CREATED);
    let api_token: serde_json::Value = api_token.json().await.expect("token JSON");
    let api_token = api_token["token"].as_str().expect("the secret").to_owned();
    for path in ["/api/v1/cases", "/api/v1/people/duplicates"] {
        let response = app
            .browser()
            .client
            .get(app.browser().url(path))
            .bearer_auth(&api_token)
            .send()
            .await
            .expect("a call with the API token");
        assert_ne!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let party = RoomClient::join("party_a", &app.address, setup.link("party_a"))
        .await
        .expect("the personal link lets the party in");
    party.leave().await;
    RoomClient::join("intruder", &app.address, &format!("/r/{socket_token}"))
        .await
        .err()
        .expect("a bad token is refused");
    let lines = stop_recording();

    let secrets: [Secret; 10] = [
        ("the admin's one-time password", app.admin_password.clone()),
        ("the test password", TEST_PASSWORD.to_owned()),
        ("the case id", case),
        ("the case reference", reference),
        ("a room token", room_token),
        ("a calendar token", feed_token),
        ("a query value", query),
        ("a personal link's token", link),
        ("a WebSocket token", socket_token),
        ("an API token", api_token),
    ];
    let leaks: Vec<String> = lines
        .lines()
        .flat_map(|line| {
            secrets
                .iter()
                .filter(|(_, value)| line.contains(value.as_str()))
                .map(move |(what, _)| format!("{what}: {line}"))
        })
        .collect();
    assert!(leaks.is_empty(), "log lines leak:\n{}", leaks.join("\n"));
    for template in [
        "/r/{token}",
        "/calendar/{token}",
        "/api/v1/cases/{case}/history",
        "/pratiche/{case}",
        "/ws/v1",
    ] {
        assert!(
            lines.contains(&format!("route={template}")),
            "no line carries the route {template}:\n{lines}"
        );
    }
}
