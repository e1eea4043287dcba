//! Online meetings scheduled from the case: the room, the personal links and the invitations
//! are made in one transaction (a refused meeting leaves nothing behind); moving or cancelling
//! the meeting tells the same people and withdraws the reminders that have not gone yet.

use std::time::Duration;

use accordo_tests::reqwest::StatusCode;
use accordo_tests::smtp_sink::{ReceivedMail, SmtpSink};
use accordo_tests::{both_backends, spawn_app_with, Backend, Browser, TestApp};
use backoffice::platform::access::Role;
use mail_parser::MimeHeaders;
use serde_json::{json, Value};
use signaling::clock::Clock;

use super::case_record::{case as new_case, participant, person};

const HOUR: i64 = 3_600_000;

pub(super) async fn post(browser: &Browser, path: &str, body: Value) -> (StatusCode, Value) {
    let response = browser.post_json(path, &body).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn outbox(office: &Browser, case: &str) -> Vec<Value> {
    let listed: Value = office
        .get(&format!("/api/v1/outbox?case={case}"))
        .await
        .json()
        .await
        .expect("outbox");
    listed["mails"].as_array().cloned().expect("mails")
}

fn count(mails: &[Value], kind: &str, state: &str) -> usize {
    mails
        .iter()
        .filter(|mail| mail["kind"] == kind && mail["state"] == state)
        .count()
}

/// A case with an appointed mediator (with an address and a login), two parties, a lawyer
/// for each, and a CTU without an address. Returns the case id.
pub(super) async fn prepared_case(app: &TestApp, office: &Browser) -> String {
    app.create_user("anna.neri", Role::Mediatore).await;
    let (status, mediator) = post(
        office,
        "/api/v1/mediators",
        json!({
            "display_name": "Avv. Anna Neri", "subjects": ["locazione"],
            "email": "anna@example.invalid", "username": "anna.neri",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{mediator}");
    let case = new_case(office, "Locazione via Roma").await;
    let mario = person(office, "Mario", "Rossi", Some("mario@example.invalid")).await;
    let lucia = person(office, "Lucia", "Bianchi", Some("lucia@example.invalid")).await;
    let verdi = person(office, "Carlo", "Verdi", Some("verdi@example.invalid")).await;
    let gialli = person(office, "Sara", "Gialli", Some("gialli@example.invalid")).await;
    let ctu = person(office, "Paola", "Neri", None).await;
    let applicant = participant(
        office,
        &case,
        json!({ "person": mario, "role": "party", "side": "istante" }),
    )
    .await;
    let called = participant(
        office,
        &case,
        json!({ "person": lucia, "role": "party", "side": "chiamata" }),
    )
    .await;
    participant(
        office,
        &case,
        json!({ "person": verdi, "role": "lawyer", "represents": applicant }),
    )
    .await;
    participant(
        office,
        &case,
        json!({ "person": gialli, "role": "lawyer", "represents": called }),
    )
    .await;
    participant(office, &case, json!({ "person": ctu, "role": "expert" })).await;
    let (status, appointed) = post(
        office,
        &format!("/api/v1/cases/{case}/appointment"),
        json!({ "subject": "locazione" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{appointed}");
    case
}

both_backends! {
    async fn scheduling_an_online_meeting_makes_the_room_and_queues_every_invitation(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let case = prepared_case(&app, &office).await;
        let now = i64::try_from(app.clock.now().as_unix_millis()).expect("time");
        let starts_at = now + 48 * HOUR;
        let path = format!("/api/v1/cases/{case}/online-meetings");

        // Before a mediator is appointed nothing can be scheduled (another case).
        let bare = new_case(&office, "Senza mediatore").await;
        let (status, refused) = post(&office, &format!("/api/v1/cases/{bare}/online-meetings"), json!({ "starts_at": starts_at, "duration_minutes": 60 })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        assert!(refused["message"].as_str().unwrap_or_default().contains("nominare il mediatore"));
        let (status, _) = post(&office, &path, json!({ "starts_at": now - HOUR, "duration_minutes": 60 })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "in the past");

        let (status, scheduled) = post(&office, &path, json!({ "starts_at": starts_at, "duration_minutes": 90 })).await;
        assert_eq!(status, StatusCode::CREATED, "{scheduled}");
        let invited = scheduled["invited"].as_array().expect("invited");
        assert_eq!(invited.len(), 6, "mediator, two parties, two lawyers, the CTU: {scheduled}");
        assert_eq!(invited[0]["part"], "mediatore");
        assert!(invited.iter().any(|i| i["part"] == "avvocato di Lucia Bianchi (parte chiamata)"), "{scheduled}");
        // The CTU has no address: the clerk gets her link, once.
        let ctu = invited.iter().find(|i| i["display_name"] == "Paola Neri").expect("CTU");
        assert!(ctu["email"].is_null());
        let link = ctu["link"].as_str().expect("link to hand over");
        assert!(invited.iter().filter(|i| i["email"].is_string()).all(|i| i["link"].is_null()), "links of mailed people are only in their mail");

        // The link opens the room's lobby for her.
        let token = link.rsplit('/').next().expect("token");
        let lobby = app.browser().get(&format!("/r/{token}")).await;
        assert_eq!(lobby.status(), StatusCode::OK);
        assert!(lobby.text().await.expect("page").contains("Paola Neri"));

        // Five invitations and five reminders (24 h before) wait in the outbox.
        let mails = outbox(&office, &case).await;
        assert_eq!(count(&mails, "invitation", "pending") + count(&mails, "invitation", "sent"), 5, "{mails:?}");
        assert_eq!(count(&mails, "reminder", "pending"), 5, "{mails:?}");

        // An overlapping meeting of the same mediator is refused and leaves nothing behind.
        let (status, refused) = post(&office, &path, json!({ "starts_at": starts_at + HOUR, "duration_minutes": 60 })).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert_eq!(refused["conflicts"][0]["kind"], "mediator");
        assert_eq!(outbox(&office, &case).await.len(), mails.len(), "no mail of the refused meeting");
        let record: Value = office.get(&format!("/api/v1/cases/{case}")).await.json().await.expect("case");
        assert_eq!(record["meetings"].as_array().map(Vec::len), Some(1), "{record}");
        // The old link still works (nothing was re-issued by the refused attempt).
        assert_eq!(app.browser().get(&format!("/r/{token}")).await.status(), StatusCode::OK);

        // Moved by a day: the reminders that had not gone are withdrawn, everyone gets the
        // new date with a new link, and the old link stops working.
        let meeting = scheduled["meeting"].as_str().expect("meeting");
        let (status, moved) = post(&office, &format!("/api/v1/meetings/{meeting}/reschedule"), json!({ "starts_at": starts_at + 24 * HOUR, "duration_minutes": 60 })).await;
        assert_eq!(status, StatusCode::OK, "{moved}");
        let new_link = moved["invited"].as_array().expect("invited").iter().find(|i| i["display_name"] == "Paola Neri").and_then(|i| i["link"].as_str()).expect("new link");
        assert_ne!(new_link, link);
        let replaced = app.browser().get(&format!("/r/{token}")).await.text().await.expect("page");
        assert!(!replaced.contains("Paola Neri"), "the replaced link opens no lobby");
        let mails = outbox(&office, &case).await;
        assert_eq!(count(&mails, "reminder", "cancelled"), 5, "{mails:?}");
        assert_eq!(count(&mails, "reminder", "pending"), 5, "{mails:?}");
        assert_eq!(count(&mails, "rescheduled", "pending") + count(&mails, "rescheduled", "sent"), 5, "{mails:?}");

        // Cancelled: the same five are told, the reminders withdrawn.
        let (status, refused) = post(&office, &format!("/api/v1/meetings/{meeting}/cancel"), json!({ "reason": "  " })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "a reason is needed: {refused}");
        let response = office.post_json(&format!("/api/v1/meetings/{meeting}/cancel"), &json!({ "reason": "Richiesta di rinvio della parte chiamata" })).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let mails = outbox(&office, &case).await;
        assert_eq!(count(&mails, "reminder", "pending"), 0, "{mails:?}");
        assert_eq!(count(&mails, "cancelled", "pending") + count(&mails, "cancelled", "sent"), 5, "{mails:?}");
        let (status, _) = post(&office, &format!("/api/v1/meetings/{meeting}/cancel"), json!({ "reason": "di nuovo" })).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "cancelled already");

        // A party added later is put in the existing room when the next meeting is scheduled.
        let late = person(&office, "Ugo", "Tardi", None).await;
        participant(&office, &case, json!({ "person": late, "role": "party", "side": "chiamata" })).await;
        let (status, again) = post(&office, &path, json!({ "starts_at": starts_at + 72 * HOUR, "duration_minutes": 60 })).await;
        assert_eq!(status, StatusCode::CREATED, "{again}");
        assert_eq!(again["room"], scheduled["room"], "one room per case");
        let ugo = again["invited"].as_array().expect("invited").iter().find(|i| i["display_name"] == "Ugo Tardi").and_then(|i| i["link"].as_str()).expect("Ugo's link");
        let token = ugo.rsplit('/').next().expect("token");
        let lobby = app.browser().get(&format!("/r/{token}")).await;
        assert!(lobby.text().await.expect("page").contains("Ugo Tardi"));

        // The mediator enters from her login too, and the history tells the story.
        let actions = app.audit_actions().await;
        for action in ["meeting.scheduled", "room.created", "invite.issued", "meeting.rescheduled", "meeting.cancelled", "room.member_linked"] {
            assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
        }
    }
}

/// What people receive, read back from a real SMTP server: the invitation with its link and
/// `.ics`, the new date with a new link, the cancellation that removes the event.
async fn the_mails_of_a_meeting_say_what_each_person_needs(backend: Backend) {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let app = spawn_app_with(backend, |config| {
        config.smtp_url = Some(smtp);
        config.outbox_poll_ms = 50;
        config.office_email = Some("segreteria@example.invalid".to_owned());
    })
    .await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let case = prepared_case(&app, &office).await;
    let now = i64::try_from(app.clock.now().as_unix_millis()).expect("time");
    let (status, scheduled) = post(
        &office,
        &format!("/api/v1/cases/{case}/online-meetings"),
        json!({ "starts_at": now + 48 * HOUR, "duration_minutes": 60 }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{scheduled}");
    let meeting = scheduled["meeting"].as_str().expect("meeting").to_owned();
    let invitations = sink.wait_for(5, Duration::from_secs(10)).await;
    let to = |mails: &[ReceivedMail], address: &str| -> Message {
        let mail = mails
            .iter()
            .rev()
            .find(|mail| mail.rcpt_to.iter().any(|to| to == address))
            .unwrap_or_else(|| panic!("a mail to {address}"));
        Message::read(&mail.data)
    };
    let lawyer = to(&invitations, "gialli@example.invalid");
    assert!(
        lawyer
            .subject
            .starts_with("Convocazione all'incontro di mediazione – pratica 1/"),
        "{}",
        lawyer.subject
    );
    for line in [
        "Gentile Sara Gialli",
        "avvocato di Lucia Bianchi (parte chiamata)",
        "mediatore: Avv. Anna Neri",
        "(ora italiana)",
        "non lo inoltri",
        "videocamera e un microfono",
    ] {
        assert!(lawyer.body.contains(line), "{line}: {}", lawyer.body);
    }
    assert!(
        lawyer.ics.contains("METHOD:REQUEST") && lawyer.ics.contains("SEQUENCE:0"),
        "{}",
        lawyer.ics
    );
    assert!(
        lawyer.ics.contains(&format!("UID:{meeting}@accordo")),
        "{}",
        lawyer.ics
    );
    let first_link = lawyer.link();
    assert!(
        lawyer.ics.contains(&format!("URL:{first_link}")),
        "the calendar event opens the room: {}",
        lawyer.ics
    );
    // Nobody else's link is in anyone's mail; the mediator's mail names her part.
    let mediator = to(&invitations, "anna@example.invalid");
    assert!(
        mediator.body.contains("in qualità di mediatore"),
        "{}",
        mediator.body
    );
    assert_ne!(mediator.link(), first_link);
    assert!(
        invitations.iter().all(|mail| mail.rcpt_to.len() == 1),
        "one recipient per mail"
    );
    // Once recorded as sent, the stored copy no longer holds the link.
    let mut sent = 0;
    for _ in 0..100 {
        sent = count(&outbox(&office, &case).await, "invitation", "sent");
        if sent == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent, 5);
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT body FROM outbox WHERE kind = 'invitation'")
            .fetch_all(app.db.pool())
            .await
            .expect("outbox");
    assert!(
        stored
            .iter()
            .all(|body| !body.contains("/r/") && body.contains("[link personale inviato]")),
        "{stored:?}"
    );

    let (status, _) = post(
        &office,
        &format!("/api/v1/meetings/{meeting}/reschedule"),
        json!({ "starts_at": now + 72 * HOUR, "duration_minutes": 60 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let moved = sink.wait_for(10, Duration::from_secs(10)).await;
    let lawyer = to(&moved, "gialli@example.invalid");
    assert!(
        lawyer.subject.starts_with("Nuova data dell'incontro"),
        "{}",
        lawyer.subject
    );
    assert!(
        lawyer.ics.contains("SEQUENCE:1") && lawyer.ics.contains("METHOD:REQUEST"),
        "{}",
        lawyer.ics
    );
    assert_ne!(lawyer.link(), first_link, "a new link");

    let response = office
        .post_json(
            &format!("/api/v1/meetings/{meeting}/cancel"),
            &json!({ "reason": "Impedimento del mediatore" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cancelled = sink.wait_for(16, Duration::from_secs(10)).await;
    let lawyer = to(&cancelled, "gialli@example.invalid");
    assert!(
        lawyer.subject.starts_with("Annullamento dell'incontro"),
        "{}",
        lawyer.subject
    );
    assert!(
        lawyer.body.contains("Impedimento del mediatore"),
        "{}",
        lawyer.body
    );
    assert!(!lawyer.body.contains("/r/"), "no link in a cancellation");
    assert!(
        lawyer.ics.contains("METHOD:CANCEL")
            && lawyer.ics.contains("STATUS:CANCELLED")
            && lawyer.ics.contains("SEQUENCE:2"),
        "{}",
        lawyer.ics
    );
    // The segreteria is told of the cancellation; no reminder was ever sent (none was due).
    let office_mail = to(&cancelled, "segreteria@example.invalid");
    assert!(
        office_mail.body.contains("è stato annullato"),
        "{}",
        office_mail.body
    );
    assert!(
        cancelled
            .iter()
            .all(|mail| !mail.data.contains("Subject: Promemoria")),
        "reminders withdrawn"
    );
}

/// A received mail, parsed.
struct Message {
    subject: String,
    body: String,
    ics: String,
}

impl Message {
    fn read(data: &str) -> Message {
        let parsed = mail_parser::MessageParser::default()
            .parse(data.as_bytes())
            .expect("a mail");
        let ics = parsed
            .attachments()
            .find(|part| part.attachment_name() == Some("invito.ics"))
            .map(|part| String::from_utf8_lossy(part.contents()).replace("\r\n ", ""))
            .unwrap_or_default();
        Message {
            subject: parsed.subject().unwrap_or_default().to_owned(),
            body: parsed.body_text(0).unwrap_or_default().into_owned(),
            ics,
        }
    }

    fn link(&self) -> String {
        self.body
            .split_whitespace()
            .find(|word| word.contains("/r/"))
            .expect("a personal link")
            .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mails_of_a_meeting_say_what_each_person_needs_sqlite() {
    the_mails_of_a_meeting_say_what_each_person_needs(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mails_of_a_meeting_say_what_each_person_needs_postgres() {
    the_mails_of_a_meeting_say_what_each_person_needs(Backend::Postgres).await;
}
