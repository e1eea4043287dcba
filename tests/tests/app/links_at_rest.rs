//! Links at rest (#14): nothing the database keeps opens a room, even in a stolen copy of it.
//! After a meeting is scheduled, every column of every table (walked through the schema) is
//! searched for a live personal link: before the mail goes, after it went, after a permanent
//! failure and after a cancellation. The mail that reaches the SMTP server still carries a
//! working link, in its text and in its `.ics`, and so does a reminder sent later.

use std::collections::BTreeSet;

use accordo_tests::reqwest::StatusCode;
use accordo_tests::smtp_sink::{ReceivedMail, SmtpSink};
use accordo_tests::{both_backends, spawn_app_with, Backend, Browser, Fixture, TestApp, TestDb};
use backoffice::mail::link_key::LinkKey;
use backoffice::mail::outbox::{self, DeliveryReport, Mailer, FAILED_LINK_PLACEHOLDER};
use backoffice::platform::access::Role;
use backoffice::UnixMillis;
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use signaling::clock::Clock;

use super::scheduling::{post, prepared_case};

const HOUR: i64 = 3_600_000;
const SENDER: &str = "Organismo di mediazione <posta@organismo.invalid>";
/// Characters of a personal link's token.
const TOKEN_CHARS: usize = 43;
/// The lawyer whose mail server refuses every mail.
const REFUSED: &str = "gialli@example.invalid";

/// A server whose own outbox worker stays out of the way: the test delivers with its own
/// mailer (to an SMTP sink) and the server's link key, at the times it chooses.
struct QuietServer {
    app: TestApp,
    sink: SmtpSink,
    mailer: Mailer,
    link_key: LinkKey,
}

impl Fixture for QuietServer {
    async fn create(backend: Backend) -> Self {
        let app = spawn_app_with(backend, |config| config.outbox_poll_ms = 3_600_000).await;
        let sink = SmtpSink::start().await;
        sink.refuse(REFUSED);
        let mailer = Mailer::smtp(&sink.url(), SENDER).expect("mailer");
        // No `link_key` in the test configuration: the server made its key file at start.
        let link_key =
            LinkKey::load_or_create(&app.data_dir().join("link.key")).expect("the key file");
        QuietServer {
            app,
            sink,
            mailer,
            link_key,
        }
    }
}

impl QuietServer {
    fn now(&self) -> i64 {
        i64::try_from(self.app.clock.now().as_unix_millis()).expect("time")
    }

    async fn deliver(&self, at: i64) -> DeliveryReport {
        outbox::deliver_due(
            &self.app.db,
            &self.mailer,
            &self.link_key,
            UnixMillis(at),
            50,
        )
        .await
        .expect("deliver")
    }

    /// Every value of every column of every table, as text: what a copy of the database holds.
    async fn dump(&self) -> String {
        let db = self.app.db.pool();
        let columns: Vec<(String, String)> = match self.app.backend {
            Backend::Sqlite => sqlx::query_as(
                "SELECT m.name, c.name FROM sqlite_master m, pragma_table_info(m.name) c \
                 WHERE m.type = 'table' ORDER BY m.name, c.cid",
            ),
            Backend::Postgres => sqlx::query_as(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
            ),
        }
        .fetch_all(db)
        .await
        .expect("the schema");
        assert!(columns
            .iter()
            .any(|(table, column)| table == "outbox" && column == "ics"));
        let mut dump = String::new();
        for (table, column) in columns {
            let value = match self.app.backend {
                // A BLOB (the migrations' checksums) is not UTF-8: shown in hexadecimal.
                Backend::Sqlite => format!(
                    "CASE WHEN typeof(\"{column}\") = 'blob' THEN hex(\"{column}\") \
                     ELSE CAST(\"{column}\" AS TEXT) END"
                ),
                Backend::Postgres => format!("CAST(\"{column}\" AS TEXT)"),
            };
            let values: Vec<Option<String>> =
                sqlx::query_scalar(&format!("SELECT {value} FROM \"{table}\""))
                    .fetch_all(db)
                    .await
                    .unwrap_or_else(|error| panic!("{table}.{column}: {error}"));
            for value in values.into_iter().flatten() {
                dump.push_str(&value);
                dump.push('\n');
            }
        }
        dump
    }

    /// Checks that no text of the database is the token of a current personal link (any run of
    /// 43 link characters whose SHA-256 is a stored invite hash), nor any of `known` tokens.
    async fn assert_nothing_opens_a_room(&self, known: &BTreeSet<String>, when: &str) {
        let dump = self.dump().await;
        for token in known {
            assert!(
                !dump.contains(token.as_str()),
                "{when}: a handed-over link is stored"
            );
        }
        let hashes: BTreeSet<String> =
            sqlx::query_scalar::<_, String>("SELECT token_hash FROM room_invites")
                .fetch_all(self.app.db.pool())
                .await
                .expect("invites")
                .into_iter()
                .collect();
        assert!(!hashes.is_empty());
        let is_link_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        for run in dump.split(|c: char| !is_link_char(c)) {
            for start in 0..=run.len().saturating_sub(TOKEN_CHARS) {
                let Some(window) = run.get(start..start + TOKEN_CHARS) else {
                    continue;
                };
                let hash = hex::encode(Sha256::digest(window.as_bytes()));
                assert!(!hashes.contains(&hash), "{when}: a live link is stored");
            }
        }
    }

    /// Opens the lobby of the link `/r/TOKEN`, as the person would.
    async fn assert_opens(&self, token: &str) {
        let lobby = self.app.browser().get(&format!("/r/{token}")).await;
        assert_eq!(lobby.status(), StatusCode::OK, "the link opens the lobby");
    }
}

/// The link token in a delivered mail's text, checked to be the one of its `.ics` too.
fn token_of(mail: &ReceivedMail) -> String {
    let message = MessageParser::default()
        .parse(mail.data.as_bytes())
        .expect("an RFC 5322 message");
    let text = message.body_text(0).expect("a text part").into_owned();
    let token = token_after_r(&text).expect("a personal link in the text");
    if let Some(ics) = message
        .attachments()
        .find(|part| part.attachment_name() == Some("invito.ics"))
    {
        let ics = String::from_utf8_lossy(ics.contents()).replace("\r\n ", "");
        let line = ics
            .lines()
            .find(|line| line.starts_with("URL:"))
            .expect("the event's link");
        assert_eq!(token_after_r(line).as_deref(), Some(token.as_str()));
        assert!(!ics.contains(outbox::LINK_PLACEHOLDER));
    }
    assert!(!text.contains(outbox::LINK_PLACEHOLDER));
    token
}

fn token_after_r(text: &str) -> Option<String> {
    let (_, after) = text.split_once("/r/")?;
    after.get(..TOKEN_CHARS).map(str::to_owned)
}

fn to<'a>(received: &'a [ReceivedMail], address: &str) -> Vec<&'a ReceivedMail> {
    received
        .iter()
        .filter(|mail| mail.rcpt_to.iter().any(|to| to == address))
        .collect()
}

/// The mediator, the two parties and the applicant's lawyer: the addresses that accept mail.
const DELIVERED_TO: [&str; 4] = [
    "anna@example.invalid",
    "mario@example.invalid",
    "lucia@example.invalid",
    "verdi@example.invalid",
];

/// Schedules an online meeting of a prepared case 48 hours from now; returns the meeting and
/// the token of the link handed over to the CTU (who has no address).
async fn schedule(server: &QuietServer, office: &Browser) -> (String, String) {
    let case = prepared_case(&server.app, office).await;
    let starts_at = server.now() + 48 * HOUR;
    let (status, scheduled) = post(
        office,
        &format!("/api/v1/cases/{case}/online-meetings"),
        json!({ "starts_at": starts_at, "duration_minutes": 60 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{scheduled}");
    let ctu = scheduled["invited"]
        .as_array()
        .and_then(|invited| invited.iter().find(|i| i["email"].is_null()))
        .expect("the CTU");
    let token = ctu["link"]
        .as_str()
        .and_then(token_after_r)
        .expect("the CTU's link");
    let meeting = scheduled["meeting"]
        .as_str()
        .expect("the meeting id")
        .to_owned();
    (meeting, token)
}

/// The migration that withdraws the links mail kept in clear before links were sealed.
fn links_at_rest_migration(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            include_str!("../../../backoffice/migrations/sqlite/20261205000060_links_at_rest.sql")
        }
        Backend::Postgres => {
            include_str!("../../../backoffice/migrations/postgres/20261205000060_links_at_rest.sql")
        }
    }
}

/// A stored mail: key, state, body, secret, `.ics`, last error.
type StoredMail = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Stores a mail as it was stored before links were sealed.
async fn legacy_mail(
    db: &TestDb,
    key: &str,
    state: &str,
    body: &str,
    secret: Option<&str>,
    ics: Option<&str>,
) {
    sqlx::query(
        "INSERT INTO outbox (id, idempotency_key, kind, to_name, to_email, subject, body, secret, \
         ics, ics_method, state, attempts, next_attempt_at, created_at, sent_at) \
         VALUES ($1, $1, 'invitation', 'Mario Rossi', 'mario@example.invalid', 'Convocazione', \
         $2, $3, $4, $5, $6, 0, 0, 0, $7)",
    )
    .bind(key)
    .bind(body)
    .bind(secret)
    .bind(ics)
    .bind(ics.map(|_| "REQUEST"))
    .bind(state)
    .bind((state == "sent").then_some(0_i64))
    .execute(db.db.pool())
    .await
    .expect("legacy mail");
}

both_backends! {
    async fn links_kept_in_clear_before_the_upgrade_are_withdrawn(db: TestDb) {
        let token = "AbCdEfGh0123456789AbCdEfGh0123456789abcde";
        let link = format!("https://mediazione.organismo-di-esempio.example/r/{token}");
        // The .ics folds the long URL line: the token is split across two lines.
        let folded_ics = format!("BEGIN:VCALENDAR\r\nURL:{}\r\n {}\r\nEND:VCALENDAR\r\n", &link[..60], &link[60..]);
        let body = format!("Apra il link:\n{link}\n");
        legacy_mail(&db, "pending-with-link", "pending", &body, Some(&link), Some(&folded_ics)).await;
        legacy_mail(&db, "sent-with-link", "sent", "Apra il link:\n[link personale inviato]\n", None, Some(&folded_ics)).await;
        legacy_mail(&db, "pending-plain", "pending", "Testo.", None, Some("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")).await;

        sqlx::raw_sql(links_at_rest_migration(db.backend)).execute(db.db.pool()).await.expect("the migration");

        let rows: Vec<StoredMail> = sqlx::query_as(
            "SELECT idempotency_key, state, body, secret, ics, last_error FROM outbox ORDER BY idempotency_key",
        )
        .fetch_all(db.db.pool())
        .await
        .expect("outbox");
        for (key, _, body, secret, ics, _) in &rows {
            let stored = format!("{body}{secret:?}{ics:?}").replace("\r\n ", "");
            assert!(!stored.contains(token), "{key}: {stored}");
        }
        let [pending_plain, pending_with_link, sent_with_link] = &rows[..] else { panic!("{rows:?}") };
        assert_eq!((pending_plain.1.as_str(), pending_plain.4.is_some()), ("pending", true), "untouched");
        assert_eq!(pending_with_link.1, "failed");
        assert!(pending_with_link.2.contains(FAILED_LINK_PLACEHOLDER));
        assert!(pending_with_link.5.as_deref().is_some_and(|note| note.contains("fissare di nuovo")));
        assert_eq!((&pending_with_link.3, &pending_with_link.4), (&None, &None));
        assert_eq!((sent_with_link.1.as_str(), &sent_with_link.4), ("sent", &None));
    }

    async fn no_link_at_rest_before_and_after_sending_nor_after_a_failure_and_reminders_work(server: QuietServer) {
        let now = server.now();
        let office = server.app.logged_in("segreteria1", Role::Segreteria).await;
        let (_, ctu_token) = schedule(&server, &office).await;
        let mut known = BTreeSet::from([ctu_token.clone()]);
        server.assert_nothing_opens_a_room(&known, "before sending").await;
        let before_sending = server.dump().await;

        // Four invitations go; the refused lawyer's fails for good.
        assert_eq!(server.deliver(now).await, DeliveryReport { sent: 4, retried: 0, failed: 1 });
        let received = server.sink.received();
        for address in DELIVERED_TO {
            let mails = to(&received, address);
            assert_eq!(mails.len(), 1, "{address}");
            let token = token_of(mails[0]);
            server.assert_opens(&token).await;
            known.insert(token);
        }
        server.assert_opens(&ctu_token).await;
        for token in &known {
            assert!(!before_sending.contains(token.as_str()), "a queued link was stored in clear");
        }
        server.assert_nothing_opens_a_room(&known, "after sending and a failure").await;

        // The failed mail keeps a note instead of its link, and cannot be sent again as it is.
        let failed: (String, String, Option<String>) = sqlx::query_as(
            "SELECT id, body, secret FROM outbox WHERE to_email = $1 AND kind = 'invitation'",
        )
        .bind(REFUSED)
        .fetch_one(server.app.db.pool())
        .await
        .expect("the failed mail");
        assert!(failed.1.contains(FAILED_LINK_PLACEHOLDER), "{}", failed.1);
        assert_eq!(failed.2, None);
        let retried = office.post_json(&format!("/api/v1/outbox/{}/retry", failed.0), &Value::Null).await;
        assert_eq!(retried.status(), StatusCode::CONFLICT);

        // A day before the meeting the reminders go, with the same working links.
        let reminders_at = now + 24 * HOUR;
        assert_eq!(server.deliver(reminders_at).await, DeliveryReport { sent: 4, retried: 0, failed: 1 });
        let received = server.sink.received();
        for address in DELIVERED_TO {
            let mails = to(&received, address);
            assert_eq!(mails.len(), 2, "{address}");
            let (invitation, reminder) = (token_of(mails[0]), token_of(mails[1]));
            assert_eq!(reminder, invitation, "{address}: the reminder carries the same link");
            server.assert_opens(&reminder).await;
        }
        server.assert_nothing_opens_a_room(&known, "after the reminders").await;
    }

    async fn a_cancelled_meeting_leaves_no_link_behind(server: QuietServer) {
        let now = server.now();
        let office = server.app.logged_in("segreteria1", Role::Segreteria).await;
        let (meeting, ctu_token) = schedule(&server, &office).await;
        assert_eq!(server.deliver(now).await, DeliveryReport { sent: 4, retried: 0, failed: 1 });
        let mut known = BTreeSet::from([ctu_token]);
        known.extend(server.sink.received().iter().map(token_of));

        // The reminders still waiting are withdrawn with their links.
        let (status, cancelled) = post(
            &office,
            &format!("/api/v1/meetings/{meeting}/cancel"),
            json!({ "reason": "Richiesta di rinvio" }),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{cancelled}");
        let reminders: Vec<(String, String)> =
            sqlx::query_as("SELECT state, body FROM outbox WHERE kind = 'reminder'")
                .fetch_all(server.app.db.pool())
                .await
                .expect("reminders");
        assert_eq!(reminders.len(), 5);
        for (state, body) in &reminders {
            assert_eq!(state, "cancelled");
            assert!(body.contains(outbox::CANCELLED_LINK_PLACEHOLDER), "{body}");
        }
        server.assert_nothing_opens_a_room(&known, "after a cancellation").await;

        // The cancellations carry no link.
        assert_eq!(server.deliver(now + HOUR).await, DeliveryReport { sent: 4, retried: 0, failed: 1 });
        let received = server.sink.received();
        assert_eq!(received.len(), 8);
        assert!(received[4..].iter().all(|mail| !mail.data.contains("/r/")));
        server.assert_nothing_opens_a_room(&known, "after the cancellations went").await;
    }
}
