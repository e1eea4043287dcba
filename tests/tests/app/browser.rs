//! The room in real Chromium (Playwright, fake camera and microphone): two people open their
//! personal links and see each other, through the SFU.
//!
//! Needs `/usr/bin/chromium` and `npm ci --prefix tests/browser` (`infra/test` does both).

use std::process::Command;

use accordo_tests::room_client::{token_of, RoomClient};
use accordo_tests::smtp_sink::SmtpSink;
use accordo_tests::{spawn_app, spawn_app_with, Backend, CAST, SAMPLE_PDF, TEST_PASSWORD};
use backoffice::platform::access::Role;
use backoffice::platform::rome_time;
use backoffice::UnixMillis;
use mail_parser::MimeHeaders;
use serde_json::json;
use signaling::clock::Clock;

/// One browser scenario at a time: several Chromium windows each decode video, and two cores
/// shared with the rest of the suite are not enough for two scenarios at once.
static BROWSERS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs a browser script of `tests/browser/` with `args`; returns its last line as JSON.
async fn run_browser_script(script: &str, args: Vec<String>) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("browser")
        .join(script);
    let output =
        tokio::task::spawn_blocking(move || Command::new("node").arg(path).args(args).output())
            .await
            .expect("the browser run finishes")
            .expect("node runs (infra/test installs it with the browser tests' packages)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no result from the browser:\n{stdout}\n{stderr}"))
}

/// A browser script the test talks to: it prints `ready`, waits for `go` on stdin (while the
/// test acts on the server), then prints its result as one JSON line.
struct Script {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Script {
    fn start(script: &str, args: Vec<String>) -> Script {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("browser")
            .join(script);
        let mut child = tokio::process::Command::new("node")
            .arg(path)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        Script {
            child,
            stdin,
            stdout: tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout)),
        }
    }

    async fn line(&mut self) -> String {
        self.stdout
            .next_line()
            .await
            .expect("a line")
            .unwrap_or_default()
    }

    async fn expect_ready(&mut self) {
        let first = self.line().await;
        assert_eq!(first, "ready", "{first}");
    }

    async fn go(&mut self) {
        tokio::io::AsyncWriteExt::write_all(&mut self.stdin, b"go\n")
            .await
            .expect("go");
    }

    async fn result(mut self) -> serde_json::Value {
        let last = self.line().await;
        let _ = self.child.wait().await;
        serde_json::from_str(&last).unwrap_or_else(|_| panic!("{last}"))
    }
}

fn artefacts() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&dir).expect("artefacts directory");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_and_an_expired_link_each_say_what_to_do() {
    let _one_at_a_time = BROWSERS.lock().await;
    let app = spawn_app(Backend::Sqlite).await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, &CAST[..2], true).await;

    let forged = format!("{}/r/{}", app.address, "B".repeat(43));
    let shot = artefacts().join("link-forged.png").display().to_string();
    let result = run_browser_script("notice.mjs", vec![forged, shot]).await;
    let notice = result["notice"].as_str().unwrap_or_default();
    assert!(notice.contains("Il collegamento non è valido"), "{result}");

    app.clock
        .advance(std::time::Duration::from_secs(91 * 24 * 60 * 60));
    let expired = format!("{}/r/{}", app.address, token_of(setup.link("party_a")));
    let shot = artefacts().join("link-expired.png").display().to_string();
    let result = run_browser_script("notice.mjs", vec![expired, shot]).await;
    let notice = result["notice"].as_str().unwrap_or_default();
    assert!(notice.contains("La stanza virtuale è chiusa"), "{result}");
    assert!(
        notice.contains("segreteria"),
        "it says whom to contact: {result}"
    );
}

/// The mediator and party_a open their links in two browsers (`mode`: see two_browsers.mjs).
async fn two_browsers(mode: &str) -> serde_json::Value {
    let _one_at_a_time = BROWSERS.lock().await;
    let app = spawn_app(Backend::Sqlite).await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, &CAST[..2], true).await;
    let link = |name: &str| format!("{}/r/{}", app.address, token_of(setup.link(name)));
    let artefacts = artefacts().display().to_string();
    let result = run_browser_script(
        "two_browsers.mjs",
        vec![
            link("mediator"),
            link("party_a"),
            artefacts,
            mode.to_owned(),
        ],
    )
    .await;
    assert_eq!(result["ok"], true, "{result}");
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_that_cannot_use_udp_reach_the_sfu_over_ice_tcp() {
    let result = two_browsers("udp-blocked").await;
    assert_eq!(result["protocols"], json!(["tcp", "tcp"]), "{result}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_negotiate_with_the_sfu_and_see_each_other() {
    let result = two_browsers("udp").await;
    assert_eq!(result["names"][0], "Sig. mediator (Mediatore)");
    assert_eq!(result["captions"][0][0], "Sig. party_a (Parte)", "{result}");
    assert_eq!(
        result["captions"][1][0], "Sig. mediator (Mediatore)",
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_in_a_caucus_reaches_its_members_and_nobody_else() {
    let _one_at_a_time = BROWSERS.lock().await;
    let app = spawn_app(Backend::Sqlite).await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let people = [CAST[0], CAST[1], CAST[3]];
    let setup = app.open_room(&office, &people, true).await;
    let mut mediator = RoomClient::join("mediator", &app.address, setup.link("mediator"))
        .await
        .expect("the mediator joins");
    let link = |name: &str| format!("{}/r/{}", app.address, token_of(setup.link(name)));
    let mut browsers = Script::start(
        "chat_caucus.mjs",
        vec![
            link("party_a"),
            link("party_b"),
            artefacts().display().to_string(),
        ],
    );
    browsers.expect_ready().await;

    // The mediator takes party_a aside; party_b stays in the plenary.
    mediator
        .command(json!({ "type": "start_caucus", "members": [setup.member("party_a")] }))
        .await;
    browsers.go().await;
    let chat = mediator
        .event_where("chat", |e| e["text"] == "La nostra proposta riservata")
        .await;
    assert_eq!(chat["from"], setup.member("party_a"));
    let shared = mediator.event("file_shared").await;
    assert_eq!(shared["name"], "proposta.pdf");
    mediator
        .command(json!({ "type": "chat", "text": "Ricevuto, ne parliamo" }))
        .await;

    let result = browsers.result().await;
    let inside = result["a"].to_string();
    let outside = result["b"].to_string();
    assert!(
        inside.contains("LeiLa nostra proposta riservata"),
        "{result}"
    );
    assert!(inside.contains("Ricevuto, ne parliamo"), "{result}");
    assert!(inside.contains("Documento: proposta.pdf"), "{result}");
    assert_eq!(
        result["viewer"],
        json!({ "title": "proposta.pdf", "info": "PDF, 1 KB", "frame": true }),
        "{result}"
    );
    assert!(
        !outside.contains("proposta")
            && !outside.contains("Documento")
            && !outside.contains("Ricevuto"),
        "{result}"
    );
    assert!(
        result["notice_b"]
            .as_str()
            .unwrap_or_default()
            .contains("sessione separata"),
        "party_b learns only that a private session is going on: {result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mediator_and_three_people_meet_caucus_and_survive_a_network_drop_in_chromium() {
    let _one_at_a_time = BROWSERS.lock().await;
    let app = spawn_app(Backend::Sqlite).await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let people = [CAST[0], CAST[1], CAST[2], CAST[3]];
    let setup = app.open_room(&office, &people, false).await;
    let document = format!(
        "/api/v1/cases/{}/documents?name=perizia.pdf&shareable=true",
        setup.case
    );
    let added = office.post_bytes(&document, SAMPLE_PDF).await;
    assert_eq!(added.status(), accordo_tests::reqwest::StatusCode::CREATED);
    let cast: Vec<serde_json::Value> = people
        .iter()
        .map(|(name, _, _)| {
            json!({
                "name": name,
                "id": setup.member(name),
                "link": format!("{}/r/{}", app.address, token_of(setup.link(name))),
            })
        })
        .collect();
    let result = run_browser_script(
        "mediation.mjs",
        vec![
            serde_json::Value::from(cast).to_string(),
            artefacts().display().to_string(),
        ],
    )
    .await;
    assert_eq!(result["ok"], true, "{result}");

    // The lobby says who is entering, for which case, and what happens to their privacy.
    let joining = result["lobby"]["joining"].as_str().unwrap_or_default();
    assert!(joining.contains("Sig. mediator"), "{result}");
    assert!(joining.contains("MED-"), "the case reference: {result}");
    assert!(result["lobby"]["cameras"].as_u64() >= Some(1), "{result}");
    assert!(
        result["lobby"]["privacy"]
            .as_str()
            .unwrap_or_default()
            .contains("non vengono registrati"),
        "{result}"
    );
    assert!(
        result["waiting_notice"]
            .as_str()
            .unwrap_or_default()
            .contains("Il mediatore la farà entrare a breve"),
        "{result}"
    );

    // Everyone sees and names everyone.
    assert_eq!(result["everyone_sees_everyone"], true, "{result}");
    assert_eq!(
        result["captions"][0],
        json!([
            "Sig. lawyer_a (Avvocato)",
            "Sig. party_a (Parte)",
            "Sig. party_b (Parte)"
        ]),
        "{result}"
    );

    // In the caucus, nothing from inside reaches the two outside; they still see each other.
    assert_eq!(
        result["caucus"]["frames_from_inside_while_outside"],
        json!([[0, 0], [0, 0]]),
        "{result}"
    );
    assert!(
        result["caucus"]["frames_between_outsiders"].as_i64() > Some(0),
        "{result}"
    );
    for notice in result["caucus"]["notices"].as_array().into_iter().flatten() {
        assert!(
            notice
                .as_str()
                .unwrap_or_default()
                .contains("sessione separata"),
            "{result}"
        );
    }
    let timer = result["timer_inside"].as_str().unwrap_or_default();
    assert!(
        timer == "Tempo rimasto: 10:00" || timer.starts_with("Tempo rimasto: 09:"),
        "{result}"
    );
    assert_eq!(result["timer_outside_hidden"], true, "{result}");
    for notice in result["broadcast"].as_array().into_iter().flatten() {
        assert_eq!(
            notice, "Avviso del mediatore: Riprendiamo tutti insieme alle 11",
            "{result}"
        );
    }
    assert_eq!(result["plenary_restores_video"], true, "{result}");
    assert_eq!(
        result["case_document_seen"],
        json!([true, true, true, true]),
        "the mediator showed the case file's document to everyone: {result}"
    );

    // The window that lost its network came back by itself, with the whole chat.
    assert!(
        result["offline_notice"]
            .as_str()
            .unwrap_or_default()
            .contains("Connessione persa"),
        "{result}"
    );
    assert_eq!(result["rejoined_sees_video"], true, "{result}");
    let chat = result["chat_after_rejoin"].to_string();
    assert!(chat.contains("Prima del distacco"), "{result}");
    assert!(chat.contains("Mentre era scollegato"), "{result}");

    // The meeting ended for everyone: no window tries to come back.
    assert_eq!(
        result["after_end"],
        serde_json::Value::from(vec![
            json!({ "stage_hidden": true, "reconnecting": false });
            4
        ]),
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_browsers_come_back_by_themselves_with_the_chat() {
    let _one_at_a_time = BROWSERS.lock().await;
    let mut app = spawn_app(Backend::Sqlite).await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, &CAST[..2], true).await;
    let cast: Vec<serde_json::Value> = ["mediator", "party_a"]
        .iter()
        .map(|name| {
            json!({
                "id": setup.member(name),
                "link": format!("{}/r/{}", app.address, token_of(setup.link(name))),
            })
        })
        .collect();
    let mut browsers = Script::start(
        "restart.mjs",
        vec![
            serde_json::Value::from(cast).to_string(),
            artefacts().display().to_string(),
        ],
    );
    browsers.expect_ready().await;
    app.restart().await;
    browsers.go().await;
    let result = browsers.result().await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["before"], true, "{result}");
    assert_eq!(result["after"], true, "they see each other again: {result}");
    assert_eq!(result["reloaded"], false, "no page was reloaded: {result}");
    for chat in result["chat"].as_array().into_iter().flatten() {
        assert!(chat.to_string().contains("Prima del riavvio"), "{result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_screen_is_shown_large_in_its_session_only_and_goes_away_when_stopped() {
    let _one_at_a_time = BROWSERS.lock().await;
    let app = spawn_app(Backend::Sqlite).await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let people = [CAST[0], CAST[1], CAST[3]];
    let setup = app.open_room(&office, &people, true).await;
    let cast: Vec<serde_json::Value> = people
        .iter()
        .map(|(name, _, _)| {
            json!({
                "id": setup.member(name),
                "link": format!("{}/r/{}", app.address, token_of(setup.link(name))),
            })
        })
        .collect();
    let result = run_browser_script(
        "screen.mjs",
        vec![
            serde_json::Value::from(cast).to_string(),
            artefacts().display().to_string(),
        ],
    )
    .await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["connected"], true, "{result}");
    assert_eq!(
        result["sharing_button"], "Interrompi la condivisione",
        "{result}"
    );
    assert_eq!(result["shown"], true, "{result}");
    assert_eq!(
        result["caption"], "Schermo condiviso da Sig. party_a (Parte)",
        "{result}"
    );
    assert_eq!(result["hidden_in_caucus"], true, "{result}");
    assert_eq!(result["back_in_plenary"], true, "{result}");
    assert_eq!(result["stopped_everywhere"], true, "{result}");
}

/// The segreteria's day in Chromium: from registering a case to the invitations, which a real
/// SMTP server receives with working personal links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_registers_a_case_appoints_a_mediator_and_invites_everyone_in_chromium() {
    let _one_at_a_time = BROWSERS.lock().await;
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.smtp_url = Some(smtp);
        config.outbox_poll_ms = 100;
    })
    .await;
    app.logged_in("segreteria1", Role::Segreteria).await;
    let now = UnixMillis(i64::try_from(app.clock.now().as_unix_millis()).expect("time"));
    let meeting_date = rome_time::date(now.plus(std::time::Duration::from_secs(2 * 24 * 3600)));
    let result = run_browser_script(
        "clerk.mjs",
        vec![
            app.address.clone(),
            "segreteria1".to_owned(),
            TEST_PASSWORD.to_owned(),
            meeting_date.clone(),
            artefacts().display().to_string(),
        ],
    )
    .await;
    assert_eq!(result["ok"], true, "{result}");
    let year = rome_time::year(now);
    assert!(
        result["caseTitle"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("1/{year}")),
        "{result}"
    );
    assert_eq!(
        result["participants"],
        json!(["Mario Rossi", "Carlo Verdi", "Lucia Bianchi", "Sara Gialli"]),
        "each party followed by their lawyer: {result}"
    );
    assert!(
        result["duplicateWarning"]
            .as_str()
            .unwrap_or_default()
            .contains("stesso codice fiscale"),
        "{result}"
    );
    assert!(
        result["appointment"]
            .as_str()
            .unwrap_or_default()
            .contains("Rotazione"),
        "{result}"
    );
    assert!(
        result["notice"]
            .as_str()
            .unwrap_or_default()
            .contains("Inviti in coda per l'invio: 4 su 5"),
        "{result}"
    );
    assert_eq!(
        result["handedOver"].as_array().map(Vec::len),
        Some(1),
        "{result}"
    );
    assert!(
        result["lobby"]
            .as_str()
            .unwrap_or_default()
            .contains("Lucia Bianchi"),
        "{result}"
    );
    assert!(
        result["agenda"]
            .as_str()
            .unwrap_or_default()
            .contains("10:00–11:30"),
        "{result}"
    );
    let mails = result["mails"].as_array().expect("mails");
    assert_eq!(
        mails.iter().filter(|row| row[1] == "Convocazione").count(),
        4,
        "{result}"
    );

    // The four invitations reach the SMTP server, each with a personal link that opens the
    // lobby for its person, and the appointment to add to a calendar.
    let received = sink.wait_for(4, std::time::Duration::from_secs(10)).await;
    let invitations: Vec<_> = received
        .iter()
        .filter(|mail| mail.data.contains("Convocazione all"))
        .collect();
    assert_eq!(invitations.len(), 4, "{received:?}");
    let to_mario = invitations
        .iter()
        .find(|mail| {
            mail.rcpt_to
                .iter()
                .any(|to| to == "mario.rossi@example.invalid")
        })
        .expect("Mario's invitation");
    let parsed = mail_parser::MessageParser::default()
        .parse(to_mario.data.as_bytes())
        .expect("a mail");
    let body = parsed.body_text(0).expect("text body").into_owned();
    assert!(body.contains("Gentile Mario Rossi"), "{body}");
    assert!(body.contains("parte istante"), "{body}");
    assert!(body.contains("videocamera e un microfono"), "{body}");
    assert!(parsed
        .attachments()
        .any(|part| part.attachment_name() == Some("invito.ics")));
    let link = body
        .split_whitespace()
        .find(|word| word.contains("/r/"))
        .expect("a personal link");
    let lobby = app.browser().get(&format!("/r/{}", token_of(link))).await;
    assert!(lobby.text().await.expect("page").contains("Mario Rossi"));
}
