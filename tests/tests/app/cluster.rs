//! Several nodes: one owns each live room (claims in the real Redis at 127.0.0.1:6379), a join
//! that reaches another node is redirected, and when the owner dies another node takes over.

use std::time::Duration;

use accordo_tests::room_client::RoomClient;
use accordo_tests::{spawn_app_custom, Backend, SignalingSettings, TestApp, CAST};
use backoffice::platform::access::Role;
use serde_json::json;

const REDIS: &str = "redis://127.0.0.1:6379";

async fn two_nodes() -> (TestApp, accordo_tests::Node) {
    let settings = SignalingSettings {
        ownership_ttl: Duration::from_millis(1500),
        ..SignalingSettings::default()
    };
    let app = spawn_app_custom(
        Backend::Postgres,
        |config| config.redis_url = Some(REDIS.to_owned()),
        settings,
    )
    .await;
    let node_b = app.start_node().await;
    (app, node_b)
}

const PEOPLE: &[(&str, &str, Option<&str>)] = &[CAST[0], CAST[1]];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_on_another_node_is_redirected_to_the_owner() {
    let (app, node_b) = two_nodes().await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, PEOPLE, true).await;

    // The mediator reaches node A first: A serves the room from now on.
    let mut mediator = RoomClient::join("mediator", &app.address, setup.link("mediator"))
        .await
        .expect("joins A");
    mediator.event("view").await;

    // party_a reaches node B, which redirects to A.
    let refused = RoomClient::join("party_a", &node_b.address, setup.link("party_a"))
        .await
        .err()
        .expect("redirect");
    assert_eq!(refused.bye["reason"], "redirect");
    let expected = format!("{}/ws/v1", app.address.replacen("http", "ws", 1));
    assert_eq!(refused.bye["url"], expected.as_str());

    let mut party_a = RoomClient::join_anywhere(
        "party_a",
        &node_b.address,
        setup.link("party_a"),
        Duration::from_secs(5),
    )
    .await
    .expect("party_a follows the redirect");
    party_a.event("view").await;
    party_a
        .command(json!({ "type": "chat", "text": "ci siamo tutti" }))
        .await;
    assert_eq!(mediator.event("chat").await["text"], "ci siamo tutti");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_owner_dies_another_node_takes_the_room_over_after_its_claim_expires() {
    let (mut app, node_b) = two_nodes().await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, PEOPLE, true).await;
    let mut mediator = RoomClient::join("mediator", &app.address, setup.link("mediator"))
        .await
        .expect("joins A");
    mediator.event("view").await;
    let mut party_a = RoomClient::join("party_a", &app.address, setup.link("party_a"))
        .await
        .expect("joins A");
    party_a.event("view").await;
    party_a
        .command(json!({ "type": "chat", "text": "prima del guasto" }))
        .await;
    mediator.event("chat").await;

    // Node A stops without giving up its claims, as a crashed node would.
    app.crash();
    mediator.closed().await;

    // Both reconnect through node B (their load balancer's other node) by themselves: first
    // redirected to the dead node, then, once its claim expires, served by B.
    let mut mediator = RoomClient::join_anywhere(
        "mediator",
        &node_b.address,
        setup.link("mediator"),
        Duration::from_secs(10),
    )
    .await
    .expect("the mediator is back, on node B");
    let view = mediator.event("view").await;
    assert!(
        view["history"].to_string().contains("prima del guasto"),
        "the chat survived: {view}"
    );
    let mut party_a = RoomClient::join_anywhere(
        "party_a",
        &node_b.address,
        setup.link("party_a"),
        Duration::from_secs(10),
    )
    .await
    .expect("party_a is back, on node B");
    let view = party_a
        .event_where("view", |v| v["presence"]["place"]["kind"] == "session")
        .await;
    assert_eq!(view["presence"]["place"]["session_kind"], "plenary");
    party_a
        .command(json!({ "type": "chat", "text": "dopo il guasto" }))
        .await;
    assert_eq!(mediator.event("chat").await["text"], "dopo il guasto");
}
