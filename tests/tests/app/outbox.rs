//! The mail outbox against a real SMTP server (`SmtpSink`): mail queued in a transaction goes
//! out once, with a stable Message-ID, its UTF-8 subject and its calendar invitation; refusals
//! fail at once, temporary trouble is tried again with backoff; two deliverers never send the
//! same mail; the segreteria sees the outbox and sends a failed mail again.

use std::collections::BTreeSet;
use std::time::Duration;

use accordo_tests::reqwest::StatusCode;
use accordo_tests::smtp_sink::{ReceivedMail, SmtpSink};
use accordo_tests::{both_backends, spawn_app_with, Backend, Fixture, TestApp, TestDb};
use std::sync::LazyLock;

use backoffice::mail::link_key::LinkKey;
use backoffice::mail::outbox::{
    self, DeliveryReport, DeliveryState, MailKind, Mailer, NewMail, OutboxEntry,
};
use backoffice::mediation::cases::CaseId;
use backoffice::platform::access::Role;
use backoffice::platform::audit;
use backoffice::{Db, UnixMillis};
use mail_parser::{Message, MessageParser, MimeHeaders};
use serde_json::Value;

/// 12 March 2027, 10:00 in Rome.
const NOW: i64 = 1_804_842_000_000;
const SECOND: i64 = 1_000;
const SENDER: &str = "Organismo di mediazione <posta@organismo.invalid>";
const SUBJECT: &str = "Convocazione all'incontro del 12/03/2027 – pratica «1/2027»";
const LINK: &str = "https://accordo.example/r/AbCdEfGh0123456789AbCdEfGh0123456789abcde";
const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Accordo//IT\r\nMETHOD:REQUEST\r\n\
BEGIN:VEVENT\r\nUID:meeting-m1@accordo.invalid\r\nDTSTAMP:20270301T090000Z\r\n\
DTSTART:20270312T090000Z\r\nDTEND:20270312T100000Z\r\nSUMMARY:Incontro di mediazione\r\n\
END:VEVENT\r\nEND:VCALENDAR\r\n";
const PATIENCE: Duration = Duration::from_secs(10);

/// A body with the personal link, and a line that starts with a dot (stuffed on the wire).
fn body_with_link() -> String {
    format!(
        "Gentile Niccolò Rossi,\n\nè convocato all'incontro di mediazione del 12 marzo 2027 \
         alle ore 10:00.\nPer partecipare online apra il suo link personale:\n{LINK}\n\n\
         .Questa riga comincia con un punto.\n\nCordiali saluti,\nla segreteria\n"
    )
}

/// The link key of these tests' outbox.
static LINK_KEY: LazyLock<LinkKey> = LazyLock::new(LinkKey::generate);

/// The case the test mails belong to.
static CASE_1: LazyLock<CaseId> = LazyLock::new(|| CaseId::new("case-1"));

/// An invitation to `to_email`, with the link as its secret when `body` holds it.
fn mail<'a>(key: &'a str, to_email: &'a str, body: &'a str) -> NewMail<'a> {
    NewMail {
        idempotency_key: key,
        organism_id: None,
        case_id: Some(&CASE_1),
        meeting_id: Some("meeting-m1"),
        kind: MailKind::Invitation,
        to_name: "Niccolò Rossi",
        to_email,
        subject: SUBJECT,
        body,
        secret: body.contains(LINK).then_some(LINK),
        ics: None,
        ics_method: None,
        not_before: UnixMillis(NOW),
    }
}

/// Queues `mail` in a transaction of its own, as a caller's change would.
async fn queue(db: &Db, mail: &NewMail<'_>) -> bool {
    queue_sealed_with(db, &LINK_KEY, mail).await
}

/// [`queue`], its link sealed under `link_key`.
async fn queue_sealed_with(db: &Db, link_key: &LinkKey, mail: &NewMail<'_>) -> bool {
    let mut tx = db.pool().begin().await.expect("transaction");
    let queued = outbox::enqueue(&mut tx, UnixMillis(NOW), link_key, mail)
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    queued
}

async fn deliver(db: &Db, mailer: &Mailer, at: i64) -> DeliveryReport {
    outbox::deliver_due(db, mailer, &LINK_KEY, UnixMillis(at), 50)
        .await
        .expect("deliver")
}

fn report(sent: u32, retried: u32, failed: u32) -> DeliveryReport {
    DeliveryReport {
        sent,
        retried,
        failed,
    }
}

async fn entry(db: &Db, to_email: &str) -> OutboxEntry {
    outbox::list(db, None, None, 100)
        .await
        .expect("list")
        .into_iter()
        .find(|entry| entry.to_email == to_email)
        .expect("the mail is listed")
}

/// The stored body and secret of the mail with `key`.
async fn stored(db: &Db, key: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT body, secret FROM outbox WHERE idempotency_key = $1")
        .bind(key)
        .fetch_one(db.pool())
        .await
        .expect("stored mail")
}

async fn audit_count(db: &Db, action: &str) -> usize {
    let records = audit::recent(db.pool(), None, 1_000).await.expect("audit");
    records
        .iter()
        .filter(|record| record.action == action && record.entity_type == "outbox")
        .count()
}

fn parse(raw: &[u8]) -> Message<'_> {
    MessageParser::default()
        .parse(raw)
        .expect("an RFC 5322 message")
}

fn find<'a>(received: &'a [ReceivedMail], message_id: &str) -> &'a ReceivedMail {
    received
        .iter()
        .find(|mail| parse(mail.data.as_bytes()).message_id() == Some(message_id))
        .unwrap_or_else(|| panic!("no message {message_id}"))
}

/// Checks the invitation as a mail client would read it.
fn check_invitation(message: &Message<'_>, method: &str) {
    assert_eq!(message.subject(), Some(SUBJECT));
    let from = message.from().and_then(|from| from.first()).expect("From");
    assert_eq!(from.name(), Some("Organismo di mediazione"));
    assert_eq!(from.address(), Some("posta@organismo.invalid"));
    let to = message.to().and_then(|to| to.first()).expect("To");
    assert_eq!(to.name(), Some("Niccolò Rossi"));
    let date = message.date().expect("Date");
    assert_eq!(date.to_timestamp(), NOW / 1_000);
    let text = message.body_text(0).expect("a text part");
    assert_eq!(text.replace("\r\n", "\n"), body_with_link());
    let attachments: Vec<_> = message.attachments().collect();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0].attachment_name(), Some("invito.ics"));
    let content_type = attachments[0].content_type().expect("Content-Type");
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("text", Some("calendar"))
    );
    assert_eq!(content_type.attribute("method"), Some(method));
    let ics = String::from_utf8_lossy(attachments[0].contents());
    assert!(ics.contains("BEGIN:VCALENDAR"), "{ics}");
    assert!(ics.contains("DTSTART:20270312T090000Z"), "{ics}");
}

/// A server whose own worker delivers to a sink, looking at the outbox every 50 ms.
struct ServerWithSink {
    app: TestApp,
    sink: SmtpSink,
}

impl Fixture for ServerWithSink {
    async fn create(backend: Backend) -> Self {
        let sink = SmtpSink::start().await;
        let url = sink.url();
        let app = spawn_app_with(backend, |config| {
            config.smtp_url = Some(url);
            config.mail_from = SENDER.to_owned();
            config.outbox_poll_ms = 50;
        })
        .await;
        ServerWithSink { app, sink }
    }
}

/// A server whose worker stays out of the way (it looks once an hour), for the API scenario.
struct QuietServer(TestApp);

impl Fixture for QuietServer {
    async fn create(backend: Backend) -> Self {
        QuietServer(spawn_app_with(backend, |config| config.outbox_poll_ms = 3_600_000).await)
    }
}

both_backends! {
    async fn queued_mail_reaches_the_server_once_with_its_headers_and_invitation(db: TestDb) {
        let sink = SmtpSink::start().await;
        let mailer = Mailer::smtp(&sink.url(), SENDER).expect("mailer");
        let body = body_with_link();
        let invitation = NewMail { ics: Some(ICS), ics_method: Some("REQUEST"), ..mail("meeting:m1:v1:invitation:party-a", "niccolo.rossi@example.invalid", &body) };
        let reminder = NewMail {
            kind: MailKind::Reminder,
            subject: "Promemoria: incontro di domani",
            ..mail("meeting:m1:v1:reminder:party-a", "anna.bianchi@example.invalid", "A domani, alle 10:00.")
        };
        let cancel_ics = ICS.replace("METHOD:REQUEST", "METHOD:CANCEL");
        let cancellation = NewMail {
            kind: MailKind::Cancelled,
            ics: Some(&cancel_ics),
            ics_method: Some("CANCEL"),
            ..mail("meeting:m1:v1:cancelled:party-a", "avv.verdi@example.invalid", &body)
        };
        for queued in [&invitation, &reminder, &cancellation] {
            assert!(queue(&db.db, queued).await);
        }

        assert_eq!(deliver(&db.db, &mailer, NOW).await, report(3, 0, 0));
        let received = sink.received();
        assert_eq!(received.len(), 3);
        let sent = find(&received, "meeting.m1.v1.invitation.party-a@accordo.invalid");
        assert_eq!(sent.mail_from, "posta@organismo.invalid");
        assert_eq!(sent.rcpt_to, ["niccolo.rossi@example.invalid"]);
        check_invitation(&parse(sent.data.as_bytes()), "REQUEST");
        let sent = find(&received, "meeting.m1.v1.cancelled.party-a@accordo.invalid");
        check_invitation(&parse(sent.data.as_bytes()), "CANCEL");
        let sent = find(&received, "meeting.m1.v1.reminder.party-a@accordo.invalid");
        let message = parse(sent.data.as_bytes());
        assert_eq!(message.subject(), Some("Promemoria: incontro di domani"));
        assert_eq!(message.attachments().count(), 0);

        // Delivered mail keeps no working link in the database; the rest stays as it was.
        for key in ["meeting:m1:v1:invitation:party-a", "meeting:m1:v1:cancelled:party-a"] {
            let (body, secret) = stored(&db.db, key).await;
            assert!(!body.contains(LINK), "{body}");
            assert!(body.contains("apra il suo link personale:\n[link personale inviato]\n"), "{body}");
            assert_eq!(secret, None);
        }
        assert_eq!(stored(&db.db, "meeting:m1:v1:reminder:party-a").await.0, "A domani, alle 10:00.");
        let entries = outbox::list(&db.db, None, Some(&*CASE_1), 100).await.expect("list");
        assert_eq!(entries.len(), 3);
        for entry in &entries {
            assert_eq!(entry.state, DeliveryState::Sent);
            assert_eq!((entry.attempts, entry.sent_at, entry.last_error.as_deref()), (1, Some(UnixMillis(NOW)), None));
        }
        assert!(outbox::list(&db.db, None, Some(&CaseId::new("case-2")), 100).await.expect("list").is_empty());
        assert!(outbox::list(&db.db, Some("another-organism"), None, 100).await.expect("list").is_empty());

        // Nothing is due any more; the audit log has the outcomes without addresses or texts.
        assert_eq!(deliver(&db.db, &mailer, NOW + 3_600 * SECOND).await, report(0, 0, 0));
        assert_eq!(sink.received().len(), 3);
        assert_eq!(audit_count(&db.db, "mail.sent").await, 3);
        let audit_text = format!("{:?}", audit::recent(db.db.pool(), None, 1_000).await.expect("audit"));
        for private in ["example.invalid", "Niccolò", "Convocazione", "accordo.example"] {
            assert!(!audit_text.contains(private), "{private} in {audit_text}");
        }
    }

    async fn the_same_idempotency_key_queues_one_mail(db: TestDb) {
        let sink = SmtpSink::start().await;
        let mailer = Mailer::smtp(&sink.url(), SENDER).expect("mailer");
        let body = body_with_link();
        let first = mail("meeting:m1:v1:invitation:party-a", "niccolo.rossi@example.invalid", &body);
        assert!(queue(&db.db, &first).await);
        // The same key again (a retried request, a second node): not queued.
        let again = NewMail { to_email: "altro@example.invalid", ..first };
        assert!(!queue(&db.db, &again).await);
        assert_eq!(deliver(&db.db, &mailer, NOW).await, report(1, 0, 0));
        let received = sink.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].rcpt_to, ["niccolo.rossi@example.invalid"]);

        // Malformed mail is refused before it is queued.
        let bad_address = mail("meeting:m1:v1:invitation:party-b", "non è un indirizzo", "Testo");
        let mut tx = db.db.pool().begin().await.expect("transaction");
        let refused = outbox::enqueue(&mut tx, UnixMillis(NOW), &LINK_KEY, &bad_address).await;
        assert!(matches!(refused, Err(backoffice::StoreError::Invalid(_))), "{refused:?}");
        let stray_secret = NewMail { secret: Some("https://altro"), ..mail("k2", "a@example.invalid", "Testo") };
        assert!(outbox::enqueue(&mut tx, UnixMillis(NOW), &LINK_KEY, &stray_secret).await.is_err());
        let half_ics = NewMail { ics: Some(ICS), ..mail("k3", "a@example.invalid", "Testo") };
        assert!(outbox::enqueue(&mut tx, UnixMillis(NOW), &LINK_KEY, &half_ics).await.is_err());
    }

    async fn reminders_of_a_cancelled_meeting_never_go(db: TestDb) {
        let sink = SmtpSink::start().await;
        let mailer = Mailer::smtp(&sink.url(), SENDER).expect("mailer");
        let body = body_with_link();
        let reminder = NewMail {
            kind: MailKind::Reminder,
            meeting_id: Some("meeting-m2"),
            not_before: UnixMillis(NOW + 3_600 * SECOND),
            ..mail("meeting:m2:v1:reminder:party-a", "niccolo.rossi@example.invalid", &body)
        };
        assert!(queue(&db.db, &reminder).await);
        assert!(queue(&db.db, &mail("meeting:m1:v1:invitation:party-a", "anna.bianchi@example.invalid", "Testo")).await);
        // Not due yet.
        assert_eq!(deliver(&db.db, &mailer, NOW).await, report(1, 0, 0));

        let mut tx = db.db.pool().begin().await.expect("transaction");
        assert_eq!(outbox::cancel_pending(&mut tx, "meeting-m2", UnixMillis(NOW)).await.expect("cancel"), 1);
        // The sent invitation of the other meeting is not touched, nor counted twice.
        assert_eq!(outbox::cancel_pending(&mut tx, "meeting-m2", UnixMillis(NOW)).await.expect("cancel"), 0);
        tx.commit().await.expect("commit");

        assert_eq!(deliver(&db.db, &mailer, NOW + 7_200 * SECOND).await, report(0, 0, 0));
        assert_eq!(sink.received().len(), 1);
        assert_eq!(entry(&db.db, "niccolo.rossi@example.invalid").await.state, DeliveryState::Cancelled);
        let (body, secret) = stored(&db.db, "meeting:m2:v1:reminder:party-a").await;
        assert!(!body.contains(LINK) && body.contains("[link personale annullato]"), "{body}");
        assert_eq!(secret, None);
    }

    async fn a_recipient_refused_for_good_fails_at_once_and_the_others_go(db: TestDb) {
        let sink = SmtpSink::start().await;
        sink.refuse("sconosciuto@example.invalid");
        let mailer = Mailer::smtp(&sink.url(), SENDER).expect("mailer");
        for (key, to) in [("k:a", "anna.bianchi@example.invalid"), ("k:b", "sconosciuto@example.invalid"), ("k:c", "carlo.verdi@example.invalid")] {
            assert!(queue(&db.db, &mail(key, to, "Testo della convocazione.")).await);
        }
        assert_eq!(deliver(&db.db, &mailer, NOW).await, report(2, 0, 1));

        let refused = entry(&db.db, "sconosciuto@example.invalid").await;
        assert_eq!((refused.state, refused.attempts), (DeliveryState::Failed, 1));
        let reply = refused.last_error.expect("the server's reply");
        assert!(reply.starts_with("550 5.1.1"), "{reply}");
        assert!(reply.contains("User unknown"), "{reply}");
        assert_eq!(refused.state.label_it(), "Non consegnato");
        for to in ["anna.bianchi@example.invalid", "carlo.verdi@example.invalid"] {
            assert_eq!(entry(&db.db, to).await.state, DeliveryState::Sent);
        }
        let recipients: BTreeSet<String> = sink.received().into_iter().flat_map(|mail| mail.rcpt_to).collect();
        assert_eq!(recipients, BTreeSet::from(["anna.bianchi@example.invalid".to_owned(), "carlo.verdi@example.invalid".to_owned()]));
        // A failed mail is not tried again by itself.
        assert_eq!(deliver(&db.db, &mailer, NOW + 7_200 * SECOND).await, report(0, 0, 0));
        assert_eq!(audit_count(&db.db, "mail.failed").await, 1);
    }

    async fn a_link_sealed_under_another_key_fails_its_mail_without_sending_it(db: TestDb) {
        let sink = SmtpSink::start().await;
        let mailer = Mailer::smtp(&sink.url(), SENDER).expect("mailer");
        let body = body_with_link();
        let invitation = NewMail { ics: Some(ICS), ics_method: Some("REQUEST"), ..mail("meeting:m1:v1:invitation:party-a", "niccolo.rossi@example.invalid", &body) };
        assert!(queue_sealed_with(&db.db, &LinkKey::generate(), &invitation).await);
        assert_eq!(deliver(&db.db, &mailer, NOW).await, report(0, 0, 1));
        assert!(sink.received().is_empty());
        let failed = entry(&db.db, "niccolo.rossi@example.invalid").await;
        assert_eq!(failed.state, DeliveryState::Failed);
        assert!(failed.last_error.is_some_and(|reason| reason.contains("link_key")));
        let (body, secret) = stored(&db.db, "meeting:m1:v1:invitation:party-a").await;
        assert!(body.contains(outbox::FAILED_LINK_PLACEHOLDER), "{body}");
        assert_eq!(secret, None);
    }

    async fn a_temporary_refusal_is_tried_again_with_growing_waits(db: TestDb) {
        let sink = SmtpSink::start().await;
        sink.defer("anna.bianchi@example.invalid", 2);
        let mailer = Mailer::smtp(&sink.url(), SENDER).expect("mailer");
        assert!(queue(&db.db, &mail("k:a", "anna.bianchi@example.invalid", "Testo.")).await);

        assert_eq!(deliver(&db.db, &mailer, NOW).await, report(0, 1, 0));
        let first = entry(&db.db, "anna.bianchi@example.invalid").await;
        assert_eq!((first.state, first.attempts, first.next_attempt_at), (DeliveryState::Pending, 1, UnixMillis(NOW + 30 * SECOND)));
        assert!(first.last_error.as_deref().is_some_and(|reply| reply.starts_with("451 4.3.0")), "{first:?}");

        // Not before its time.
        assert_eq!(deliver(&db.db, &mailer, NOW + 29 * SECOND).await, report(0, 0, 0));
        assert_eq!(deliver(&db.db, &mailer, NOW + 30 * SECOND).await, report(0, 1, 0));
        let second = entry(&db.db, "anna.bianchi@example.invalid").await;
        assert_eq!((second.attempts, second.next_attempt_at), (2, UnixMillis(NOW + 90 * SECOND)));

        assert_eq!(deliver(&db.db, &mailer, NOW + 90 * SECOND).await, report(1, 0, 0));
        let sent = entry(&db.db, "anna.bianchi@example.invalid").await;
        assert_eq!((sent.state, sent.attempts, sent.sent_at, sent.last_error), (DeliveryState::Sent, 3, Some(UnixMillis(NOW + 90 * SECOND)), None));
        assert_eq!(sink.received().len(), 1);
        assert_eq!(audit_count(&db.db, "mail.retry").await, 2);
        assert_eq!(audit_count(&db.db, "mail.sent").await, 1);
    }

    async fn a_server_that_is_down_leaves_the_mail_pending_with_backoff(db: TestDb) {
        let mailer = Mailer::smtp(&SmtpSink::closed_url().await, SENDER).expect("mailer");
        assert!(queue(&db.db, &mail("k:a", "anna.bianchi@example.invalid", "Testo.")).await);
        assert!(queue(&db.db, &mail("k:b", "carlo.verdi@example.invalid", "Testo.")).await);

        // The first attempt finds the server down; the other mail waits for the next round.
        assert_eq!(deliver(&db.db, &mailer, NOW).await, report(0, 1, 0));
        let entries = outbox::list(&db.db, None, None, 100).await.expect("list");
        assert!(entries.iter().all(|entry| entry.state == DeliveryState::Pending), "{entries:?}");
        let tried: Vec<&OutboxEntry> = entries.iter().filter(|entry| entry.attempts == 1).collect();
        assert_eq!(tried.len(), 1, "{entries:?}");
        assert_eq!(tried[0].next_attempt_at, UnixMillis(NOW + 30 * SECOND));
        let reason = tried[0].last_error.as_deref().unwrap_or_default();
        assert!(reason.starts_with("Server di posta non raggiungibile"), "{reason}");

        // Each hourly round tries the mail due first and stops there (a wait is never longer
        // than an hour, so the two take turns); at its eighth attempt each is given up.
        for round in 1..=15 {
            let expected = if round < 14 { report(0, 1, 0) } else { report(0, 0, 1) };
            assert_eq!(deliver(&db.db, &mailer, NOW + round * 3_600 * SECOND).await, expected, "round {round}");
        }
        for entry in outbox::list(&db.db, None, None, 100).await.expect("list") {
            assert_eq!((entry.state, entry.attempts), (DeliveryState::Failed, outbox::MAX_ATTEMPTS), "{entry:?}");
        }
    }

    async fn two_deliverers_racing_send_each_mail_once(db: TestDb) {
        let sink = SmtpSink::start().await;
        // Two nodes, each with its own connection to the server.
        let node_a = Mailer::smtp(&sink.url(), SENDER).expect("mailer");
        let node_b = Mailer::smtp(&sink.url(), SENDER).expect("mailer");
        let keys: Vec<String> = (0..5).map(|i| format!("meeting:m1:v1:invitation:party-{i}")).collect();
        for key in &keys {
            assert!(queue(&db.db, &mail(key, "anna.bianchi@example.invalid", "Testo.")).await);
        }
        let (a, b) = tokio::join!(deliver(&db.db, &node_a, NOW), deliver(&db.db, &node_b, NOW));
        assert_eq!(a.sent + b.sent, 5, "{a:?} {b:?}");
        assert_eq!(a.retried + b.retried + a.failed + b.failed, 0);
        let received = sink.received();
        let ids: BTreeSet<String> = received
            .iter()
            .map(|mail| parse(mail.data.as_bytes()).message_id().unwrap_or_default().to_owned())
            .collect();
        assert_eq!((received.len(), ids.len()), (5, 5), "each mail once");
        assert_eq!(audit_count(&db.db, "mail.sent").await, 5);
    }

    async fn without_a_server_mail_is_written_as_eml_files(db: TestDb) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mailer = Mailer::files(dir.path(), SENDER).expect("mailer");
        let body = body_with_link();
        let invitation = NewMail { ics: Some(ICS), ics_method: Some("REQUEST"), ..mail("meeting:m1:v1:invitation:party-a", "niccolo.rossi@example.invalid", &body) };
        assert!(queue(&db.db, &invitation).await);
        assert_eq!(deliver(&db.db, &mailer, NOW).await, report(1, 0, 0));

        let files: Vec<_> = std::fs::read_dir(dir.path()).expect("directory").map(|file| file.expect("entry").path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].extension().and_then(|extension| extension.to_str()), Some("eml"));
        let raw = std::fs::read(&files[0]).expect("the .eml file");
        let message = parse(&raw);
        assert_eq!(message.message_id(), Some("meeting.m1.v1.invitation.party-a@accordo.invalid"));
        check_invitation(&message, "REQUEST");
        assert_eq!(entry(&db.db, "niccolo.rossi@example.invalid").await.state, DeliveryState::Sent);
    }

    async fn the_segreteria_sees_the_outbox_and_sends_a_failed_mail_again(server: QuietServer) {
        let app = server.0;
        let sink = SmtpSink::start().await;
        sink.refuse("sconosciuto@example.invalid");
        let mailer = Mailer::smtp(&sink.url(), SENDER).expect("mailer");
        assert!(queue(&app.db, &mail("k:a", "sconosciuto@example.invalid", "Testo.")).await);
        assert!(queue(&app.db, &NewMail { case_id: Some(&CaseId::new("case-2")), ..mail("k:b", "anna.bianchi@example.invalid", "Testo.") }).await);
        assert_eq!(deliver(&app.db, &mailer, NOW).await, report(1, 0, 1));

        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let listed: Value = office.get("/api/v1/outbox").await.json().await.expect("JSON");
        let mails = listed["mails"].as_array().expect("mails");
        assert_eq!(mails.len(), 2, "{listed}");
        let failed = mails.iter().find(|mail| mail["state"] == "failed").expect("the failed mail");
        assert_eq!(failed["state_label"], "Non consegnato");
        assert_eq!(failed["kind"], "invitation");
        assert_eq!(failed["to_email"], "sconosciuto@example.invalid");
        assert!(failed["last_error"].as_str().unwrap_or_default().starts_with("550 5.1.1"), "{failed}");
        let id = failed["id"].as_str().expect("id").to_owned();
        let one_case: Value = office.get("/api/v1/outbox?case=case-2").await.json().await.expect("JSON");
        assert_eq!(one_case["mails"].as_array().map(Vec::len), Some(1), "{one_case}");
        assert_eq!(one_case["mails"][0]["state_label"], "Consegnato al server di posta");

        // The clerk fixed the address book: the mail goes back in the queue.
        let retried = office.post_json(&format!("/api/v1/outbox/{id}/retry"), &Value::Null).await;
        assert_eq!(retried.status(), StatusCode::OK);
        let retried: Value = retried.json().await.expect("JSON");
        assert_eq!((retried["state"].as_str(), retried["state_label"].as_str()), (Some("pending"), Some("In coda")));
        let again = office.post_json(&format!("/api/v1/outbox/{id}/retry"), &Value::Null).await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
        let unknown = office.post_json("/api/v1/outbox/nessuno/retry", &Value::Null).await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert!(app.audit_actions().await.contains(&"mail.requeued".to_owned()));

        // Still refused: the page shows it with its "Riprova" button, which works too.
        assert_eq!(deliver(&app.db, &mailer, NOW).await, report(0, 0, 1));
        let page = office.get("/posta").await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.expect("page");
        for shown in ["Posta in uscita", "Niccolò Rossi<div><small>sconosciuto@example.invalid</small>", "Non consegnato", "Consegnato al server di posta", "Convocazione", &format!("action=\"/posta/{id}/riprova\"")] {
            assert!(html.contains(shown), "{shown} not in {html}");
        }
        let dashboard = office.get("/").await.text().await.expect("page");
        assert!(dashboard.contains("href=\"/posta\""));
        let resubmitted = office.post_form(&format!("/posta/{id}/riprova"), &[]).await;
        assert_eq!(resubmitted.status(), StatusCode::SEE_OTHER);
        assert_eq!(accordo_tests::location(&resubmitted), "/posta");
        assert_eq!(entry(&app.db, "sconosciuto@example.invalid").await.state, DeliveryState::Pending);

        // A mediator may not see the office's mail.
        let mediator = app.logged_in("mediatore1", Role::Mediatore).await;
        assert_eq!(mediator.get("/api/v1/outbox").await.status(), StatusCode::FORBIDDEN);
        assert_eq!(mediator.post_json(&format!("/api/v1/outbox/{id}/retry"), &Value::Null).await.status(), StatusCode::FORBIDDEN);
        assert_eq!(mediator.get("/posta").await.status(), StatusCode::FORBIDDEN);
        let dashboard = mediator.get("/").await.text().await.expect("page");
        assert!(!dashboard.contains("href=\"/posta\""));
    }

    async fn the_server_worker_delivers_queued_mail_to_the_smtp_server(server: ServerWithSink) {
        let ServerWithSink { app, sink } = server;
        let body = body_with_link();
        let invitation = NewMail { not_before: UnixMillis(0), ..mail("meeting:m1:v1:invitation:party-a", "niccolo.rossi@example.invalid", &body) };
        // Sealed under the key the server made in its data directory at first start.
        let server_key = LinkKey::load_or_create(&app.data_dir().join("link.key")).expect("the server's key");
        assert!(queue_sealed_with(&app.db, &server_key, &invitation).await);
        let received = sink.wait_for(1, PATIENCE).await;
        let message = parse(received[0].data.as_bytes());
        assert_eq!(message.message_id(), Some("meeting.m1.v1.invitation.party-a@accordo.invalid"));
        assert_eq!(received[0].mail_from, "posta@organismo.invalid");
        // The outcome is recorded right after the server accepted the mail.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while entry(&app.db, "niccolo.rossi@example.invalid").await.state != DeliveryState::Sent {
            assert!(tokio::time::Instant::now() < deadline, "the mail is never recorded as sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(sink.received().len(), 1, "sent once");
    }
}
