//! Back-office staff on the room WebSocket, as stories: the segreteria of body A opens a room
//! with its mediator; an administrator and a clerk of body B, a page elsewhere, and the
//! mediator's own second window try to get in.

use std::time::Duration;

use accordo_tests::room_client::{RoomClient, StaffJoin};
use accordo_tests::{both_backends, Browser, RoomSetup, TestApp, CAST};
use backoffice::platform::access::Role;
use serde_json::{json, Value};

/// Body A's room with the cast, everyone admitted on arrival, and the mediator's back-office
/// account (`mediatore1`) linked to a mediator member; returns the mediator's browser.
async fn room_with_mediator_login(app: &TestApp) -> (RoomSetup, Browser) {
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, &CAST, true).await;
    let mediator = app.logged_in("mediatore1", Role::Mediatore).await;
    let linked = office
        .post_json(
            &format!("/api/v1/rooms/{}/members", setup.room),
            &json!({ "role": "mediator", "display_name": "Avv. Conti", "username": "mediatore1" }),
        )
        .await;
    assert_eq!(linked.status(), 201);
    (setup, mediator)
}

/// Whether `client` is still connected: a chat is acknowledged and no `bye` came.
async fn still_connected(client: &mut RoomClient) {
    client
        .command(json!({ "type": "chat", "text": "ci sono ancora" }))
        .await;
    let messages = client.drain(Duration::from_millis(300)).await;
    assert!(
        messages.iter().all(|message| message["type"] != "bye"),
        "{}: {messages:?}",
        client.name
    );
}

fn error_of(refused: &accordo_tests::room_client::Refused) -> (&Value, &Value) {
    (&refused.error["code"], &refused.error["message"])
}

both_backends! {
    async fn another_bodys_staff_can_neither_observe_nor_take_a_seat(app: TestApp) {
        let (setup, _) = room_with_mediator_login(&app).await;
        let mut mediator = RoomClient::join("mediator", &app.address, setup.link("mediator")).await.unwrap();
        mediator.event("view").await;
        let body_b = app.other_organism().await;
        let admin_b = app.logged_in_at("amministratore.b", Role::Admin, Some(&body_b)).await;
        let clerk_b = app.logged_in_at("segreteria.b", Role::Segreteria, Some(&body_b)).await;
        let recorded = app.audit_actions().await;

        let unknown = RoomClient::join_as_staff("admin_b", &app.address, "4242424242", &admin_b.cookie_header())
            .await
            .err()
            .expect("an unknown room is refused");
        assert_eq!(unknown.code(), "room_not_found");
        for (name, browser) in [("admin_b", &admin_b), ("clerk_b", &clerk_b), ("admin_b", &admin_b)] {
            let refused = RoomClient::join_as_staff(name, &app.address, &setup.room, &browser.cookie_header())
                .await
                .err()
                .expect("another body's room is refused");
            // Exactly as an unknown room: the answer tells nothing about the room.
            assert_eq!(error_of(&refused), error_of(&unknown), "{name}");
            assert_eq!(refused.bye["reason"], "refused");
        }

        // Nobody was added to the room, nobody took a seat: the mediator saw nothing happen.
        let seen = mediator.drain(Duration::from_millis(300)).await;
        assert!(seen.is_empty(), "{seen:?}");
        assert_eq!(app.audit_actions().await, recorded);
    }

    async fn a_page_elsewhere_cannot_open_the_socket_with_the_mediators_login(app: TestApp) {
        let (setup, mediator_login) = room_with_mediator_login(&app).await;
        let cookie = mediator_login.cookie_header();
        let mut mediator = RoomClient::join_as_staff("mediator", &app.address, &setup.room, &cookie)
            .await
            .expect("the mediator joins from a page of the service");
        mediator.event("view").await;

        for origin in [Some("http://evil.localhost:8080"), Some("null"), None] {
            let join = StaffJoin { cookie: &cookie, origin, take_over: true };
            let refused = RoomClient::join_as_staff_with("intruder", &app.address, &setup.room, join)
                .await
                .err()
                .expect("refused at the upgrade");
            assert_eq!(refused.error["status"], 403, "{origin:?}");
            assert_eq!(refused.error["error"], "forbidden_origin");
            assert!(refused.error["message"].as_str().unwrap().contains("pagine di questo servizio"));
        }
        // A page elsewhere is refused even without a login.
        let join = StaffJoin { cookie: "", origin: Some("https://evil.example.org"), take_over: false };
        let refused = RoomClient::join_as_staff_with("stranger", &app.address, &setup.room, join).await.err().expect("refused");
        assert_eq!(refused.error["status"], 403);

        still_connected(&mut mediator).await;
    }

    async fn a_second_login_window_is_refused_unless_it_takes_over(app: TestApp) {
        let (setup, mediator_login) = room_with_mediator_login(&app).await;
        let cookie = mediator_login.cookie_header();
        let mut laptop = RoomClient::join_as_staff("laptop", &app.address, &setup.room, &cookie).await.unwrap();
        laptop.event("view").await;

        let refused = RoomClient::join_as_staff("second_window", &app.address, &setup.room, &cookie)
            .await
            .err()
            .expect("a second window is refused");
        assert_eq!(refused.code(), "already_connected");
        assert!(refused.error["message"].as_str().unwrap().contains("già collegato"));
        assert_eq!(refused.bye["reason"], "refused");
        still_connected(&mut laptop).await;

        let join = StaffJoin { cookie: &cookie, origin: Some(&app.address), take_over: true };
        let mut phone = RoomClient::join_as_staff_with("phone", &app.address, &setup.room, join)
            .await
            .expect("taking over is allowed when asked for");
        assert_eq!(phone.welcome["member"]["id"], laptop.welcome["member"]["id"]);
        assert_eq!(laptop.closed().await.map(|bye| bye["reason"].clone()), Some(json!("superseded")));
        phone.event("view").await;
        still_connected(&mut phone).await;
    }
}
