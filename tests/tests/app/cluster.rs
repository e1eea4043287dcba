//! Several nodes: one owns each live room (claims in the real Redis at 127.0.0.1:6379), a join
//! that reaches another node is redirected, when the owner dies another node takes over, and
//! a node that lost its claim without noticing cannot overwrite the new owner's state.

use std::time::{Duration, Instant};

use accordo_tests::room_client::RoomClient;
use accordo_tests::{spawn_app_custom, Backend, SignalingSettings, TestApp, CAST};
use backoffice::platform::access::Role;
use backoffice::rooms::room_store;
use rooms::RoomId;
use serde_json::json;

const REDIS: &str = "redis://127.0.0.1:6379";

/// Two nodes sharing rooms through Redis, with the default settings.
async fn two_nodes() -> (TestApp, accordo_tests::Node) {
    two_nodes_with(|_| {}).await
}

async fn two_nodes_with(
    adjust: impl FnOnce(&mut web::config::Config),
) -> (TestApp, accordo_tests::Node) {
    let app = spawn_app_custom(
        Backend::Postgres,
        |config| {
            config.redis_url = Some(REDIS.to_owned());
            adjust(config);
        },
        SignalingSettings::default(),
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
async fn when_the_owner_dies_another_node_takes_the_room_over_within_a_heartbeat() {
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
    let crashed = Instant::now();
    app.crash();
    mediator.closed().await;

    // Both reconnect through node B (their load balancer's other node) by themselves: first
    // redirected to the dead node, then, once its heartbeat is gone (well before its claim
    // expires), served by B.
    let mut mediator = RoomClient::join_anywhere(
        "mediator",
        &node_b.address,
        setup.link("mediator"),
        Duration::from_secs(10),
    )
    .await
    .expect("the mediator is back, on node B");
    let failover = crashed.elapsed();
    println!("failover: the mediator is back {failover:?} after the crash");
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_claim_cannot_overwrite_the_new_owner() {
    // Claims that last a minute: node A does not renew (and so does not notice the loss of) its
    // claim while the test runs, as a node paused or cut off from Redis would not.
    let (app, node_b) = two_nodes_with(|config| config.room_claim_ttl_ms = 60_000).await;
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, PEOPLE, true).await;
    let room = RoomId::new(setup.room.parse().expect("a room id"));
    let mut mediator = RoomClient::join("mediator", &app.address, setup.link("mediator"))
        .await
        .expect("joins A");
    mediator.event("view").await;

    // A's claim is gone, as if it had expired while A was cut off; node B takes the room over.
    let redis = redis::Client::open(REDIS).expect("Redis URL");
    let mut connection = redis
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let deleted: i64 = redis::cmd("DEL")
        .arg(format!("accordo:room:{}:owner", setup.room))
        .query_async(&mut connection)
        .await
        .expect("claim deleted");
    assert_eq!(deleted, 1, "A held the claim");
    let mut party_a = RoomClient::join("party_a", &node_b.address, setup.link("party_a"))
        .await
        .expect("B serves the room now");
    party_a.event("view").await;
    let stored_by_b = room_store::load(&app.db, room).await.expect("loads");

    // The mediator, still connected to A, chats: A's save is refused, A stops serving the
    // room and its clients reconnect.
    let refused = mediator
        .refused(json!({ "type": "chat", "text": "dal nodo isolato" }))
        .await;
    assert_eq!(refused["code"], "unavailable");
    let bye = mediator.closed().await;
    assert_eq!(
        bye.map(|bye| bye["reason"].clone()),
        Some(json!("server_shutdown"))
    );
    assert_eq!(
        room_store::load(&app.db, room).await.expect("loads"),
        stored_by_b,
        "B's state is intact"
    );

    // Through A, the mediator is redirected to B, where the room never heard the chat.
    let mut mediator = RoomClient::join_anywhere(
        "mediator",
        &app.address,
        setup.link("mediator"),
        Duration::from_secs(5),
    )
    .await
    .expect("the mediator is back, on node B");
    let view = mediator.event("view").await;
    assert!(
        !view["history"].to_string().contains("dal nodo isolato"),
        "{view}"
    );
    party_a
        .command(json!({ "type": "chat", "text": "ci sentiamo da B" }))
        .await;
    assert_eq!(mediator.event("chat").await["text"], "ci sentiamo da B");
}
