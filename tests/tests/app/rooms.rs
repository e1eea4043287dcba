//! Mediation rooms over real WebSockets, as stories with named actors: mediator, party_a and
//! lawyer_a (istante), party_b and lawyer_b (chiamata).

use std::time::Duration;

use accordo_tests::room_client::{RoomClient, StaffJoin};
use accordo_tests::{
    both_backends, spawn_app_custom, Backend, Fixture, RoomSetup, SignalingSettings, TestApp, CAST,
};
use backoffice::platform::access::Role;
use backoffice::platform::audit;
use serde_json::{json, Value};

/// The cast and a sixth person, for "the room is full".
const PEOPLE: &[(&str, &str, Option<&str>)] = &[
    CAST[0],
    CAST[1],
    CAST[2],
    CAST[3],
    CAST[4],
    ("party_c", "party", Some("chiamata")),
];

async fn open(app: &TestApp) -> RoomSetup {
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    app.open_room(&office, PEOPLE, false).await
}

async fn join(app: &TestApp, setup: &RoomSetup, name: &'static str) -> RoomClient {
    RoomClient::join(name, &app.address, setup.link(name))
        .await
        .unwrap_or_else(|refused| panic!("{name} refused: {refused:?}"))
}

fn place(view: &Value) -> &Value {
    &view["presence"]["place"]
}

fn member_names(place: &Value) -> Vec<String> {
    let mut names: Vec<String> = place["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|m| m["name"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The mediator and the four others in the plenary.
async fn everyone_in_plenary(app: &TestApp, setup: &RoomSetup) -> Vec<RoomClient> {
    let mut mediator = join(app, setup, "mediator").await;
    let view = mediator.event("view").await;
    assert_eq!(place(&view)["session_kind"], "plenary");
    let mut others = Vec::new();
    for name in ["party_a", "lawyer_a", "party_b", "lawyer_b"] {
        let mut client = join(app, setup, name).await;
        let view = client.event("view").await;
        assert_eq!(place(&view)["kind"], "waiting_room", "{name} waits");
        assert_eq!(place(&view)["notice"], "waiting_for_admission");
        mediator
            .command(json!({ "type": "admit", "member": setup.member(name) }))
            .await;
        let view = client.event("view").await;
        assert_eq!(place(&view)["session_kind"], "plenary", "{name} admitted");
        others.push(client);
    }
    let mut clients = vec![mediator];
    clients.extend(others);
    clients
}

both_backends! {
    async fn a_personal_link_opens_a_lobby_that_names_the_person_and_the_case(app: TestApp) {
        let setup = open(&app).await;
        let link = setup.link("lawyer_a");
        let path = &link[link.find("/r/").expect("a room link")..];
        let page = app.browser().get(path).await;
        assert_eq!(page.headers()["cache-control"], "no-store");
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        let html = page.text().await.expect("page");
        assert!(html.contains("id=\"lobby\""), "{html}");
        assert!(html.contains("Sig. lawyer_a</strong> (Avvocato)"), "{html}");
        assert!(html.contains("pratica <strong>MED-"), "{html}");

        // A forged link gets no lobby: the page asks the room, which explains the refusal.
        let forged = app.browser().get(&format!("/r/{}", "A".repeat(43))).await;
        let html = forged.text().await.expect("page");
        assert!(!html.contains("id=\"lobby\""), "{html}");
        assert!(html.contains("data-lobby=\"0\""), "{html}");

        // Nor does a revoked one.
        let office = app.logged_in("segreteria2", Role::Segreteria).await;
        let revoke = format!(
            "/api/v1/rooms/{}/members/{}/revoke",
            setup.room,
            setup.member("lawyer_a")
        );
        office.post_json(&revoke, &json!({})).await;
        let html = app.browser().get(path).await.text().await.expect("page");
        assert!(!html.contains("id=\"lobby\""), "{html}");
    }

    async fn a_caucus_with_side_a_leaks_nothing_to_side_b(app: TestApp) {
        let setup = open(&app).await;
        let mut clients = everyone_in_plenary(&app, &setup).await;
        let mut lawyer_b = clients.pop().unwrap();
        let mut party_b = clients.pop().unwrap();
        let mut lawyer_a = clients.pop().unwrap();
        let mut party_a = clients.pop().unwrap();
        let mut mediator = clients.pop().unwrap();

        // Everything side B was sent before the caucus is read; what follows is watched.
        party_b.drain(Duration::from_millis(200)).await;
        lawyer_b.drain(Duration::from_millis(50)).await;
        let seen_before_caucus = party_b.received.len();
        mediator
            .command(json!({ "type": "start_caucus", "members": [setup.member("party_a"), setup.member("lawyer_a")] }))
            .await;
        let in_caucus = party_a.event("view").await;
        assert_eq!(place(&in_caucus)["session_kind"], "caucus");
        assert_eq!(member_names(place(&in_caucus)), ["Sig. lawyer_a", "Sig. mediator", "Sig. party_a"]);

        // Side B stays in the plenary and learns only that a private session is in progress.
        let presence = party_b
            .event_where("presence", |e| e["place"]["private_session_elsewhere"] == true)
            .await;
        assert_eq!(member_names(&presence["place"]), ["Sig. lawyer_b", "Sig. party_b"]);

        party_a.command(json!({ "type": "chat", "text": "La nostra offerta massima è 12.000 euro" })).await;
        for insider in [&mut mediator, &mut lawyer_a] {
            let chat = insider.event("chat").await;
            assert_eq!(chat["text"], "La nostra offerta massima è 12.000 euro");
        }
        party_b.command(json!({ "type": "chat", "text": "Aspettiamo qui" })).await;
        assert_eq!(lawyer_b.event("chat").await["text"], "Aspettiamo qui");

        for outsider in [&mut party_b, &mut lawyer_b] {
            outsider.drain(Duration::from_millis(300)).await;
            assert!(!outsider.ever_saw("12.000"), "{} saw the caucus chat", outsider.name);
        }
        let after_caucus: Vec<String> = party_b.received[seen_before_caucus..].iter().map(Value::to_string).collect();
        for secret in [setup.member("party_a"), setup.member("lawyer_a"), "Sig. party_a"] {
            assert!(after_caucus.iter().all(|message| !message.contains(secret)), "side B learned {secret}");
        }
        mediator.drain(Duration::from_millis(100)).await;
        assert!(!mediator.ever_saw("Aspettiamo qui"), "the mediator is in the caucus, not the plenary");

        // Everyone back: side A sees side B again, and the caucus chat stays in the caucus.
        mediator.command(json!({ "type": "back_to_plenary" })).await;
        let back = party_b
            .event_where("presence", |e| e["place"]["private_session_elsewhere"] == false)
            .await;
        assert_eq!(member_names(&back["place"]).len(), 5);
        let view = party_a.event_where("view", |v| v["presence"]["place"]["session_kind"] == "plenary").await;
        assert_eq!(place(&view)["session_kind"], "plenary");
        assert!(!view.to_string().contains("Aspettiamo qui"), "side A does not read what side B said alone");
        party_b.drain(Duration::from_millis(100)).await;
        assert!(!party_b.ever_saw("12.000"));

        // The room holds five: a sixth person is refused with a clear message.
        let refused = RoomClient::join("party_c", &app.address, setup.link("party_c")).await.err().expect("refused");
        assert_eq!(refused.code(), "room_full");
        assert!(refused.error["message"].as_str().unwrap().contains("numero massimo di partecipanti"));
        assert_eq!(refused.bye["reason"], "refused");

        let actions = app.audit_actions().await;
        for action in ["room.created", "room.member_added", "room.member_admitted", "room.caucus_started", "room.chat_posted", "room.back_to_plenary"] {
            assert!(actions.iter().any(|a| a == action), "{action} missing from the audit log");
        }
        assert!(!app.audit_text().await.contains("12.000"), "the audit log holds no chat content");
    }

    async fn the_mediator_ends_the_meeting_and_the_next_one_starts_from_the_waiting_room(app: TestApp) {
        let setup = open(&app).await;
        let mut clients = everyone_in_plenary(&app, &setup).await;
        clients[0].command(json!({ "type": "start_caucus", "members": [setup.member("party_a")] })).await;
        let refused = clients[3].refused(json!({ "type": "end_meeting" })).await;
        assert_eq!(refused["code"], "not_allowed");

        clients[0].send(json!({ "type": "end_meeting" })).await;
        for mut client in clients {
            let bye = client.closed().await;
            assert_eq!(bye.map(|b| b["reason"].clone()), Some(json!("meeting_ended")), "{}", client.name);
        }
        assert!(app.audit_actions().await.iter().any(|action| action == "room.meeting_ended"));

        // The next meeting: the mediator is in the plenary (no caucus left), party_a waits to be let in.
        let mut mediator = join(&app, &setup, "mediator").await;
        let view = mediator.event("view").await;
        assert_eq!(place(&view)["session_kind"], "plenary");
        assert_eq!(view["presence"]["overview"]["sessions"].as_array().map(Vec::len), Some(1));
        let mut party_a = join(&app, &setup, "party_a").await;
        let view = party_a.event("view").await;
        assert_eq!(place(&view)["notice"], "waiting_for_admission");
    }

    async fn after_a_server_restart_everyone_resumes_with_the_chat_intact(app: TestApp) {
        let mut app = app;
        let setup = open(&app).await;
        let mut clients = everyone_in_plenary(&app, &setup).await;
        clients[1].command(json!({ "type": "chat", "text": "Buongiorno a tutti" })).await;
        for client in clients.iter_mut() {
            assert_eq!(client.event("chat").await["text"], "Buongiorno a tutti");
        }
        let streams: Vec<(String, u64)> = clients.iter().map(|c| (c.stream(), c.last_event_seq)).collect();
        app.restart().await;
        // The stop says goodbye, so that clients know to reconnect.
        for mut client in clients {
            assert_eq!(client.closed().await.map(|bye| bye["reason"].clone()), Some(json!("server_shutdown")));
        }

        // party_a is back first: with no mediator, the room holds them apart.
        let mut party_a = RoomClient::join_with("party_a", &app.address, setup.link("party_a"), Some(streams[1].clone()), 2)
            .await
            .expect("party_a rejoins");
        assert_eq!(party_a.welcome["resumed"], false, "a new server has a new stream");
        let view = party_a.event("view").await;
        assert_eq!(place(&view)["notice"], "mediator_not_connected");
        let mut mediator = RoomClient::join_with("mediator", &app.address, setup.link("mediator"), Some(streams[0].clone()), 2)
            .await
            .expect("the mediator rejoins");
        let mediator_view = mediator.event("view").await;
        assert!(mediator_view["history"].to_string().contains("Buongiorno a tutti"));
        // With the mediator back, party_a returns to the plenary by itself, history intact.
        let view = party_a.event("view").await;
        assert_eq!(place(&view)["session_kind"], "plenary");
        assert!(view["history"].to_string().contains("Buongiorno a tutti"), "{view}");
    }

    async fn a_command_applied_before_a_restart_is_replayed_after_it(app: TestApp) {
        let mut app = app;
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, PEOPLE, true).await;
        let mut mediator = join(&app, &setup, "mediator").await;
        mediator.event("view").await;
        let mut party_b = join(&app, &setup, "party_b").await;
        party_b.event("view").await;
        let chat = json!({ "type": "chat", "text": "una volta sola" });
        party_b.command(chat.clone()).await;
        mediator.event("chat").await;
        let resume = Some((party_b.stream(), party_b.last_event_seq));
        app.restart().await;
        party_b.closed().await;

        // party_b never saw its ack (say) and sends the chat again after reconnecting.
        let mut party_b = RoomClient::join_with("party_b", &app.address, setup.link("party_b"), resume, 1)
            .await
            .expect("party_b rejoins");
        assert_eq!(party_b.welcome["last_command_seq"], 1, "the server remembers the command");
        party_b.send_numbered(chat, 1).await;
        let error = party_b.wait_for(|m| m["type"] == "error").await;
        assert_eq!(error["code"], "replayed");
        assert_eq!(error["seq"], 1);

        let mut mediator = join(&app, &setup, "mediator").await;
        let view = mediator.event("view").await;
        assert_eq!(view["history"].to_string().matches("una volta sola").count(), 1, "{view}");
        party_b.send(json!({ "type": "chat", "text": "e poi basta" })).await;
        assert_eq!(mediator.event("chat").await["text"], "e poi basta", "the replay was not posted");
    }

    async fn a_link_is_refused_on_day_91(app: TestApp) {
        let setup = open(&app).await;
        let mut mediator = join(&app, &setup, "mediator").await;
        mediator.event("view").await;
        mediator.leave().await;
        app.clock.advance(Duration::from_secs(91 * 24 * 60 * 60));
        let refused = RoomClient::join("party_a", &app.address, setup.link("party_a")).await.err().expect("expired");
        assert_eq!(refused.code(), "room_expired");
        assert!(refused.error["message"].as_str().unwrap().contains("La stanza virtuale è chiusa"));
        assert_eq!(refused.bye["reason"], "room_expired");
    }

    async fn forged_revoked_and_replayed_are_refused(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, PEOPLE, true).await;

        let forged = format!("{}/r/{}", app.address, "A".repeat(43));
        let refused = RoomClient::join("forger", &app.address, &forged).await.err().expect("forged");
        assert_eq!(refused.code(), "invalid_token");
        let refused = RoomClient::join("forger", &app.address, "not-a-token").await.err().expect("garbage");
        assert_eq!(refused.code(), "invalid_token");

        let mut mediator = join(&app, &setup, "mediator").await;
        mediator.event("view").await;
        let mut party_b = join(&app, &setup, "party_b").await;
        assert_eq!(place(&party_b.event("view").await)["session_kind"], "plenary", "auto-admit");

        // Replayed command numbers are refused and change nothing.
        party_b.command(json!({ "type": "chat", "text": "primo" })).await;
        let replay = json!({ "type": "chat", "text": "primo" });
        party_b.send_numbered(replay.clone(), 1).await;
        let error = party_b.wait_for(|m| m["type"] == "error").await;
        assert_eq!(error["code"], "replayed");
        assert_eq!(error["seq"], 1);
        mediator.drain(Duration::from_millis(200)).await;
        let chats = mediator.received.iter().filter(|m| m["event"]["kind"] == "chat").count();
        assert_eq!(chats, 1, "the replayed chat was not posted twice");

        // Revoking the link disconnects at once and the link stops working.
        let revoke = office
            .post_json(&format!("/api/v1/rooms/{}/members/{}/revoke", setup.room, setup.member("party_b")), &json!({}))
            .await;
        assert_eq!(revoke.status(), 204);
        assert_eq!(party_b.closed().await.map(|bye| bye["reason"].clone()), Some(json!("invite_revoked")));
        let refused = RoomClient::join("party_b", &app.address, setup.link("party_b")).await.err().expect("revoked");
        assert_eq!(refused.code(), "invite_revoked");
    }

    async fn a_dropped_connection_resumes_without_losing_or_repeating_events(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, PEOPLE, true).await;
        let mut mediator = join(&app, &setup, "mediator").await;
        mediator.event("view").await;
        let mut party_a = join(&app, &setup, "party_a").await;
        party_a.event("view").await;
        mediator.command(json!({ "type": "chat", "text": "uno" })).await;
        assert_eq!(party_a.event("chat").await["text"], "uno");
        let (stream, last_seq) = (party_a.stream(), party_a.last_event_seq);
        let next_seq = party_a.next_command_seq();

        // The network goes quiet: "due" and "tre" are sent to party_a but never read, then the
        // connection is gone.
        mediator.command(json!({ "type": "chat", "text": "due" })).await;
        mediator.command(json!({ "type": "chat", "text": "tre" })).await;
        party_a.cut();
        // While party_a is away, the room goes on.
        mediator.command(json!({ "type": "chat", "text": "quattro" })).await;

        let mut party_a = RoomClient::join_with("party_a", &app.address, setup.link("party_a"), Some((stream, last_seq)), next_seq)
            .await
            .expect("resumes");
        assert_eq!(party_a.welcome["resumed"], true);
        // The client asserts that every event seq follows the previous one: nothing lost,
        // nothing twice. The events sent but not read come again, then the view of now.
        let replayed = party_a.event("chat").await;
        assert_eq!(replayed["text"], "due");
        assert_eq!(party_a.event("chat").await["text"], "tre");
        let view = party_a.event("view").await;
        let history = view["history"].to_string();
        for text in ["uno", "due", "tre", "quattro"] {
            assert!(history.contains(text), "{text} is in the history: {history}");
        }
        let chats_of_uno = party_a.received.iter().filter(|m| m["event"]["kind"] == "chat" && m["event"]["text"] == "uno").count();
        assert_eq!(chats_of_uno, 0, "an event received before the drop is not sent again");

        // A resume that claims events never sent is refused.
        let claimed = party_a.last_event_seq + 100;
        let stream = party_a.stream();
        let refused = RoomClient::join_with("party_a", &app.address, setup.link("party_a"), Some((stream, claimed)), 10)
            .await
            .err()
            .expect("invalid resume");
        assert_eq!(refused.code(), "invalid_resume");
    }

    async fn staff_join_from_their_login_the_segreteria_only_once_admitted(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, PEOPLE, false).await;
        let mut mediator = join(&app, &setup, "mediator").await;
        mediator.event("view").await;

        let mut observer = RoomClient::join_as_staff("segreteria", &app.address, &setup.room, &office.cookie_header())
            .await
            .expect("the logged-in clerk joins without a link");
        assert_eq!(observer.welcome["member"]["role"], "segreteria_observer");
        assert_eq!(observer.welcome["member"]["name"], "Utente segreteria1");
        let view = observer.event("view").await;
        assert_eq!(place(&view)["notice"], "waiting_for_admission");
        let member = observer.welcome["member"]["id"].as_str().unwrap().to_owned();
        mediator.command(json!({ "type": "admit", "member": member })).await;
        let view = observer.event("view").await;
        assert_eq!(place(&view)["session_kind"], "plenary");

        // Joining again (from another window, taking over) finds the same member.
        let cookie = office.cookie_header();
        let join = StaffJoin { cookie: &cookie, origin: Some(&app.address), take_over: true };
        let again = RoomClient::join_as_staff_with("segreteria", &app.address, &setup.room, join)
            .await
            .expect("joins again");
        assert_eq!(again.welcome["member"]["id"], member.as_str());

        // A mediator with a back-office account, linked to the room, joins from the login.
        let mediator_login = app.logged_in("mediatore1", Role::Mediatore).await;
        let added = office
            .post_json(
                &format!("/api/v1/rooms/{}/members", setup.room),
                &json!({ "role": "mediator", "display_name": "Avv. Conti", "username": "mediatore1" }),
            )
            .await;
        assert_eq!(added.status(), 201);
        let added: Value = added.json().await.unwrap();
        let co_mediator = RoomClient::join_as_staff("co_mediator", &app.address, &setup.room, &mediator_login.cookie_header())
            .await
            .expect("the linked mediator joins from the login");
        assert_eq!(co_mediator.welcome["member"]["id"], added["member"]);
        assert_eq!(co_mediator.welcome["member"]["role"], "mediator");
        assert!(app.audit_actions().await.contains(&"room.member_linked".to_owned()));

        // Without a login, or with a login neither linked to the room nor allowed to observe,
        // a room id is not enough.
        let refused = RoomClient::join_as_staff("stranger", &app.address, &setup.room, "").await.err().expect("refused");
        assert_eq!(refused.code(), "not_logged_in");
        let other_mediator = app.logged_in("mediatore2", Role::Mediatore).await;
        let refused = RoomClient::join_as_staff("mediatore2", &app.address, &setup.room, &other_mediator.cookie_header())
            .await
            .err()
            .expect("refused");
        assert_eq!(refused.code(), "not_logged_in");
        let unknown_user = office
            .post_json(
                &format!("/api/v1/rooms/{}/members", setup.room),
                &json!({ "role": "expert", "display_name": "Ing. Neri", "username": "nessuno" }),
            )
            .await;
        assert_eq!(unknown_user.status(), 400);
    }

    async fn a_second_device_takes_over_and_the_first_is_told_why(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, PEOPLE, true).await;
        let mut mediator = join(&app, &setup, "mediator").await;
        mediator.event("view").await;
        let mut phone = join(&app, &setup, "party_a").await;
        phone.event("view").await;
        let mut laptop = join(&app, &setup, "party_a").await;
        laptop.event("view").await;
        assert_eq!(phone.closed().await.map(|bye| bye["reason"].clone()), Some(json!("superseded")));
        mediator.command(json!({ "type": "chat", "text": "mi sente?" })).await;
        assert_eq!(laptop.event("chat").await["text"], "mi sente?");
    }

    async fn bad_messages_get_typed_errors_and_change_nothing(app: TestApp) {
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, PEOPLE, true).await;
        let mut mediator = join(&app, &setup, "mediator").await;
        mediator.event("view").await;
        let mut party_a = join(&app, &setup, "party_a").await;
        party_a.event("view").await;
        let mut party_b = join(&app, &setup, "party_b").await;
        party_b.event("view").await;
        let before = app.audit_actions().await.len();

        for (frame, code) in [
            ("{ not json", "malformed"),
            (r#"{"type":"teleport","seq":9}"#, "unknown_type"),
            (r#"{"type":"chat","text":"manca il numero"}"#, "malformed"),
            (r#"{"type":"hello","v":1,"token":"x"}"#, "malformed"),
        ] {
            party_a.send_raw(frame).await;
            let error = party_a.wait_for(|m| m["type"] == "error").await;
            assert_eq!(error["code"], code, "{frame}");
        }
        // Only a mediator may move people.
        let error = party_a.refused(json!({ "type": "send_to_waiting_room", "member": setup.member("party_b") })).await;
        assert_eq!(error["code"], "not_allowed");
        let error = party_a.refused(json!({ "type": "chat", "text": "   " })).await;
        assert_eq!(error["code"], "invalid_command");
        assert_eq!(app.audit_actions().await.len(), before, "refused messages change nothing");
        party_b.drain(Duration::from_millis(200)).await;
        assert!(party_b.received.iter().all(|m| m["event"]["kind"] != "view" || m["seq"] == 1), "party_b was not moved");

        // The first message must be hello, in time.
        let url = format!("{}/ws/v1", app.address.replacen("http", "ws", 1));
        let (mut raw, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        use futures_util::{SinkExt, StreamExt};
        raw.send(tokio_tungstenite::tungstenite::Message::Text(r#"{"type":"chat","seq":1,"text":"x"}"#.into())).await.unwrap();
        let reply = raw.next().await.unwrap().unwrap();
        assert!(reply.to_text().unwrap().contains("hello_required"), "{reply}");
    }
}

/// A server with short outboxes (room for the answers to a burst of 20 commands) and no rate
/// limit: a client that stops reading is found out within a few megabytes.
struct Impatient(TestApp);

impl Fixture for Impatient {
    async fn create(backend: Backend) -> Self {
        let settings = SignalingSettings {
            outbox_capacity: 32,
            messages_per_second: 10_000,
            message_burst: 10_000,
            heartbeat_interval: Duration::from_secs(60),
            heartbeat_timeout: Duration::from_secs(120),
            ..SignalingSettings::default()
        };
        Impatient(spawn_app_custom(backend, |_| {}, settings).await)
    }
}

/// `talker` posts chat messages of 12 KB (in UTF-8), 20 at a time, and `listener` reads them
/// all, until `listener` receives a message for which `stop` holds (`true`) or 500 were posted
/// (`false`): more than the socket buffers between the server and a client that stopped
/// reading hold (4 MB).
async fn flood(
    talker: &mut RoomClient,
    listener: &mut RoomClient,
    stop: impl Fn(&Value) -> bool,
) -> bool {
    let long = "€".repeat(3990);
    let is_chat = |m: &Value| m["event"]["kind"] == "chat" && m["event"]["text"] == long.as_str();
    for _ in 0..25 {
        for _ in 0..20 {
            talker.send(json!({ "type": "chat", "text": long })).await;
        }
        // The talker keeps up too: it reads its answers as they come.
        talker.drain(Duration::from_millis(20)).await;
        for _ in 0..20 {
            let message = listener.wait_for(|m| is_chat(m) || stop(m)).await;
            if stop(&message) {
                return true;
            }
        }
    }
    false
}

/// Whether a `presence` or `view` event shows `name` disconnected.
fn shows_disconnected(message: &Value, name: &str) -> bool {
    let members = if message["event"]["kind"] == "presence" {
        &message["event"]["place"]["members"]
    } else {
        &message["event"]["presence"]["place"]["members"]
    };
    members.as_array().is_some_and(|members| {
        members
            .iter()
            .any(|member| member["name"] == name && member["connected"] == false)
    })
}

/// Whether the audit log records that `member` was disconnected.
async fn disconnect_audited(app: &TestApp, member: &str) -> bool {
    audit::recent(app.db.pool(), None, 10_000)
        .await
        .expect("audit log")
        .iter()
        .any(|record| {
            record.action == "room.member_disconnected"
                && record.changes.iter().any(|change| {
                    change.field == "member" && change.after.as_deref() == Some(member)
                })
        })
}

/// Where the mediator's overview puts everybody, and the open sessions (who is connected
/// aside).
fn whereabouts(view: &Value) -> Value {
    let overview = &view["presence"]["overview"];
    let members: Vec<Value> = overview["members"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .map(|m| json!([m["name"], m["location"], m["session"]]))
                .collect()
        })
        .unwrap_or_default();
    let sessions: Vec<Value> = overview["sessions"]
        .as_array()
        .map(|sessions| sessions.iter().map(|s| s["session"].clone()).collect())
        .unwrap_or_default();
    json!({ "members": members, "sessions": sessions })
}

/// Makes the database refuse every change of a room (as a full disk or a lost primary does),
/// or accept them again.
async fn refuse_room_writes(app: &TestApp, refuse: bool) {
    let statements: &[&str] = match (app.backend, refuse) {
        (Backend::Sqlite, true) => &["CREATE TRIGGER refuse_room_writes BEFORE UPDATE ON rooms \
             BEGIN SELECT RAISE(ABORT, 'storage unavailable'); END"],
        (Backend::Sqlite, false) => &["DROP TRIGGER refuse_room_writes"],
        (Backend::Postgres, true) => &[
            "CREATE FUNCTION refuse_room_writes() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'storage unavailable'; END $$",
            "CREATE TRIGGER refuse_room_writes BEFORE UPDATE ON rooms \
             FOR EACH ROW EXECUTE FUNCTION refuse_room_writes()",
        ],
        (Backend::Postgres, false) => &[
            "DROP TRIGGER refuse_room_writes ON rooms",
            "DROP FUNCTION refuse_room_writes()",
        ],
    };
    for statement in statements {
        sqlx::query(statement)
            .execute(app.db.pool())
            .await
            .expect("the test changes the schema");
    }
}

both_backends! {
    async fn a_client_that_stops_reading_is_dropped_and_the_room_goes_on(app: Impatient) {
        let Impatient(app) = app;
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, PEOPLE, true).await;
        let mut mediator = join(&app, &setup, "mediator").await;
        mediator.event("view").await;
        let mut sleeper = RoomClient::join_with_small_buffer("party_b", &app.address, setup.link("party_b"))
            .await
            .expect("party_b joins");
        sleeper.event("view").await;
        let mut party_a = join(&app, &setup, "party_a").await;
        party_a.event("view").await;

        // party_b stops reading; the mediator keeps talking and party_a keeps listening, until
        // party_a sees party_b gone.
        let gone = flood(&mut mediator, &mut party_a, |m| shows_disconnected(m, "Sig. party_b")).await;
        assert!(gone, "party_a saw party_b disconnected");
        assert!(disconnect_audited(&app, setup.member("party_b")).await, "the disconnect is in the audit log");
        if !mediator.received.iter().any(|m| shows_disconnected(m, "Sig. party_b")) {
            mediator.wait_for(|m| shows_disconnected(m, "Sig. party_b")).await;
        }
        assert_eq!(sleeper.closed().await.map(|bye| bye["reason"].clone()), Some(json!("slow_consumer")));
    }

    async fn a_mediator_who_sends_but_never_reads_is_dropped_and_the_others_are_held(app: Impatient) {
        let Impatient(app) = app;
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, PEOPLE, true).await;
        let mut mediator = RoomClient::join_with_small_buffer("mediator", &app.address, setup.link("mediator"))
            .await
            .expect("the mediator joins");
        mediator.event("view").await;
        let mut party_a = join(&app, &setup, "party_a").await;
        party_a.event_where("view", |v| v["presence"]["place"]["session_kind"] == "plenary").await;
        let mut party_b = join(&app, &setup, "party_b").await;
        party_b.event_where("view", |v| v["presence"]["place"]["session_kind"] == "plenary").await;

        // The mediator sends, and reads nothing more: its commands are applied and answered,
        // the answers and everybody's messages pile up unread.
        mediator.send(json!({ "type": "broadcast", "text": "Iniziamo." })).await;
        mediator.send(json!({ "type": "chat", "text": "Buongiorno." })).await;
        let held = |m: &Value| {
            m["event"]["kind"] == "view"
                && m["event"]["presence"]["place"]["notice"] == "mediator_not_connected"
        };
        assert!(flood(&mut party_a, &mut party_b, held).await, "party_b was held for the mediator");
        if !party_a.received.iter().any(held) {
            party_a.wait_for(held).await;
        }
        assert!(disconnect_audited(&app, setup.member("mediator")).await, "the disconnect is in the audit log");
        let refused = party_a.refused(json!({ "type": "chat", "text": "C'è qualcuno?" })).await;
        assert_eq!(refused["code"], "invalid_command", "nobody talks while the mediator is away");
        // (Reading the megabytes queued for the mediator through its tiny window would take
        // minutes; the first scenario checks the `bye`.)
        mediator.cut();
    }

    async fn a_storage_failure_mid_meeting_refuses_the_command_and_changes_nothing(app: TestApp) {
        let setup = open(&app).await;
        let mut clients = everyone_in_plenary(&app, &setup).await;
        let lawyer_b = clients.pop().unwrap();
        let mut party_b = clients.pop().unwrap();
        let _lawyer_a = clients.pop().unwrap();
        let mut party_a = clients.pop().unwrap();
        let mediator = clients.pop().unwrap();
        let next_seq = mediator.next_command_seq();
        // A second device of the mediator takes over, for a fresh view of the room.
        let mut mediator = RoomClient::join_with("mediator", &app.address, setup.link("mediator"), None, next_seq)
            .await
            .expect("the mediator joins again");
        let before = whereabouts(&mediator.event("view").await);
        party_a.drain(Duration::from_millis(200)).await;
        let audited = app.audit_actions().await.len();

        refuse_room_writes(&app, true).await;
        let caucus = json!({ "type": "start_caucus", "members": [setup.member("party_a"), setup.member("lawyer_a")] });
        let refused = mediator.refused(caucus.clone()).await;
        assert_eq!(refused["code"], "unavailable");
        assert!(party_a.drain(Duration::from_millis(300)).await.iter().all(|m| m["event"]["kind"] != "view"), "party_a was not moved");
        // A connection that goes is gone, saved or not: the room does not count on it.
        lawyer_b.leave().await;
        party_b.event_where("presence", |e| {
            e["place"]["members"].as_array().is_some_and(|members| {
                members.iter().any(|m| m["name"] == "Sig. lawyer_b" && m["connected"] == false)
            })
        }).await;
        assert_eq!(app.audit_actions().await.len(), audited, "nothing was recorded");
        refuse_room_writes(&app, false).await;

        // A later view of the room is the one from before the failure.
        let next_seq = mediator.next_command_seq();
        let mut mediator = RoomClient::join_with("mediator", &app.address, setup.link("mediator"), None, next_seq)
            .await
            .expect("the mediator joins again");
        assert_eq!(whereabouts(&mediator.event("view").await), before);

        // Once the storage is back, the same command goes through; its ack names the caucus.
        let ack = mediator.command(caucus).await;
        let session = ack["session"].as_u64().expect("the ack names the new caucus");
        let view = party_a.event_where("view", |v| v["presence"]["place"]["session_kind"] == "caucus").await;
        assert_eq!(place(&view)["session"], session);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_disconnected_by_the_heartbeat() {
    let settings = SignalingSettings {
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_millis(400),
        hello_timeout: Duration::from_millis(300),
        ..SignalingSettings::default()
    };
    let app = spawn_app_custom(Backend::Sqlite, |_| {}, settings).await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, PEOPLE, true).await;
    let mut mediator = join(&app, &setup, "mediator").await;
    mediator.event("view").await;
    let mut party_a = join(&app, &setup, "party_a").await;
    party_a.event("view").await;
    // party_a stops reading, so it answers no ping; the mediator keeps reading (and answering).
    let gone = mediator
        .event_where("presence", |event| {
            event["place"]["members"].as_array().is_some_and(|members| {
                members
                    .iter()
                    .any(|m| m["name"] == "Sig. party_a" && m["connected"] == false)
            })
        })
        .await;
    assert_eq!(gone["place"]["session_kind"], "plenary");
    assert_eq!(
        party_a.closed().await,
        None,
        "the server closed the silent connection"
    );

    // A connection that never says hello is closed too.
    let url = format!("{}/ws/v1", app.address.replacen("http", "ws", 1));
    let (mut raw, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    use futures_util::StreamExt;
    let reply = raw.next().await.unwrap().unwrap();
    assert!(
        reply.to_text().unwrap().contains("hello_required"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_hands_out_ice_servers_with_time_limited_turn_credentials() {
    let app = accordo_tests::spawn_app_with(Backend::Sqlite, |config| {
        config.stun_urls = vec!["stun:stun.example.org:3478".to_owned()];
        config.turn_urls = vec!["turn:turn.example.org:3478?transport=udp".to_owned()];
        config.turn_secret = Some("segreto-condiviso".to_owned());
    })
    .await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, PEOPLE, true).await;
    let party_a = join(&app, &setup, "party_a").await;
    let servers = &party_a.welcome["ice_servers"];
    assert_eq!(servers[0]["urls"][0], "stun:stun.example.org:3478");
    assert!(servers[0].get("username").is_none());
    let username = servers[1]["username"].as_str().unwrap();
    let (expiry, member) = username.split_once(':').unwrap();
    assert_eq!(member, setup.member("party_a"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        expiry > now + 11 * 3600 && expiry <= now + 12 * 3600 + 60,
        "about 12 hours"
    );
    assert_eq!(
        servers[1]["credential"].as_str().unwrap().len(),
        28,
        "base64 of an HMAC-SHA1"
    );
    assert!(!app
        .audit_text()
        .await
        .contains(servers[1]["credential"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_room_leaves_memory_and_comes_back_intact() {
    let settings = SignalingSettings {
        idle_unload: Duration::from_millis(300),
        ..SignalingSettings::default()
    };
    let app = spawn_app_custom(Backend::Sqlite, |_| {}, settings).await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, PEOPLE, true).await;
    let live_rooms = || async {
        let metrics = app.metrics().await;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("accordo_rooms_live "))
            .map(|value| value.trim().to_owned())
            .unwrap_or_default()
    };
    let mut mediator = join(&app, &setup, "mediator").await;
    mediator.event("view").await;
    mediator
        .command(json!({ "type": "chat", "text": "prima della pausa" }))
        .await;
    assert_eq!(live_rooms().await, "1");
    // Connected rooms stay, however long.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(live_rooms().await, "1");
    mediator.leave().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while live_rooms().await != "0" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle room was not unloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut mediator = join(&app, &setup, "mediator").await;
    let view = mediator.event("view").await;
    assert!(view["history"].to_string().contains("prima della pausa"));
    assert_eq!(live_rooms().await, "1");
}

/// Writes `count` chat posts by `sender` into the plenary of `room`, read by `audience`, as if
/// they had been said; no node may be serving the room.
async fn seed_plenary_chat(app: &TestApp, room: i64, sender: i64, audience: &[i64], count: i64) {
    let numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) ";
    sqlx::query(&format!(
        "{numbers}INSERT INTO room_posts (room_id, seq, session_id, sender_id, kind, chat_text, posted_at) \
         SELECT $1, i, 0, $3, 'chat', 'messaggio ' || CAST(i AS TEXT), 1 FROM n"
    ))
    .bind(room)
    .bind(count)
    .bind(sender)
    .execute(app.db.pool())
    .await
    .expect("posts");
    for member in audience {
        sqlx::query(&format!(
            "{numbers}INSERT INTO room_post_audience (room_id, seq, member_id) SELECT $1, i, $3 FROM n"
        ))
        .bind(room)
        .bind(count)
        .bind(member)
        .execute(app.db.pool())
        .await
        .expect("audience");
    }
    sqlx::query("UPDATE rooms SET next_post = $1 WHERE id = $2")
        .bind(count + 1)
        .bind(room)
        .execute(app.db.pool())
        .await
        .expect("next post");
}

both_backends! {
    async fn a_view_carries_the_latest_posts_older_ones_are_paged_and_a_full_chat_refuses(app: TestApp) {
        let mut app = app;
        let office = app.logged_in("segreteria1", Role::Segreteria).await;
        let setup = app.open_room(&office, &PEOPLE[..2], true).await;
        let id = |name: &str| setup.member(name).parse::<i64>().expect("member id");
        let mut mediator = join(&app, &setup, "mediator").await;
        mediator.event("view").await;
        let mut party_a = join(&app, &setup, "party_a").await;
        party_a.event("view").await;
        mediator.leave().await;
        party_a.leave().await;
        let room = setup.room.parse::<i64>().expect("room id");
        // Written while no node serves the room: the next one loads it with its history.
        app.restart().await;
        seed_plenary_chat(&app, room, id("mediator"), &[id("mediator"), id("party_a")], 2000).await;

        let mut mediator = join(&app, &setup, "mediator").await;
        mediator.event("view").await;
        let mut party_a = join(&app, &setup, "party_a").await;
        let view = party_a.event("view").await;
        let history = view["history"].as_array().expect("history");
        assert_eq!(history.len(), 200, "a view carries the latest posts only");
        assert_eq!(history[199]["text"], "messaggio 2000");
        assert_eq!(history[0]["seq"], 1801);

        // Older posts, page by page, to this connection only.
        party_a.send_raw(&json!({ "type": "chat_history", "session": 0, "before_seq": 1801, "limit": 500 }).to_string()).await;
        let page = party_a.wait_for(|message| message["type"] == "chat_history").await;
        let posts = page["posts"].as_array().expect("posts");
        assert_eq!((posts.len(), page["more"].as_bool()), (200, Some(true)), "a page is at most 200 posts");
        assert_eq!((posts[0]["seq"].as_u64(), posts[199]["seq"].as_u64()), (Some(1601), Some(1800)));
        party_a.send_raw(&json!({ "type": "chat_history", "session": 0, "before_seq": 3, "limit": 10 }).to_string()).await;
        let page = party_a.wait_for(|message| message["type"] == "chat_history").await;
        assert_eq!((page["posts"].as_array().map(Vec::len), page["more"].as_bool()), (Some(2), Some(false)));
        mediator.drain(Duration::from_millis(200)).await;
        assert!(!mediator.stream().contains("chat_history"), "the page went to the asking connection only");
        // Not one's current session: refused.
        party_a.send_raw(&json!({ "type": "chat_history", "session": 7, "before_seq": 3, "limit": 10 }).to_string()).await;
        let refused = party_a.wait_for(|message| message["type"] == "error").await;
        assert_eq!(refused["code"], "invalid_command");

        // The session is full: one more post is refused, in Italian, and nothing is stored.
        let refused = party_a.refused(json!({ "type": "chat", "text": "ancora uno" })).await;
        assert_eq!(refused["code"], "chat_full");
        assert!(refused["message"].as_str().unwrap_or_default().contains("numero massimo"), "{refused}");
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM room_posts WHERE room_id = $1")
            .bind(room)
            .fetch_one(app.db.pool())
            .await
            .expect("count");
        assert_eq!(stored, 2000);
    }
}
