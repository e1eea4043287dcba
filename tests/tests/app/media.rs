//! Media through the SFU with real WebRTC peers (webrtc-rs), counted at the receivers:
//! mediator, party_a and lawyer_a (istante), party_b and lawyer_b (chiamata).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use accordo_tests::media_peer::{DropPolicy, Layer, PeerOptions, Source};
use accordo_tests::participant::{keep_negotiating, negotiate_until, Participant};
use accordo_tests::{spawn_app, Backend, TestApp, CAST};
use backoffice::platform::access::Role;
use serde_json::json;

const PEOPLE: &[(&str, &str, Option<&str>)] = &CAST;

/// The first `count` people of the cast join the room of a new case, each with
/// `options(name)`.
async fn join_all(
    app: &TestApp,
    count: usize,
    options: impl Fn(&str) -> PeerOptions,
) -> Vec<Participant> {
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    let setup = app.open_room(&office, &PEOPLE[..count], true).await;
    let mut participants = Vec::new();
    for (name, _, _) in &PEOPLE[..count] {
        participants.push(Participant::join(&app.address, &setup, name, options(name)).await);
    }
    participants
}

/// Answers server offers until every participant has received at least `packets` packets
/// from every other.
async fn until_everyone_receives_everyone(participants: &mut [Participant], packets: u64) {
    let members: Vec<String> = participants.iter().map(|p| p.member.clone()).collect();
    negotiate_until(participants, Duration::from_secs(15), |all| {
        all.iter().all(|receiver| {
            members
                .iter()
                .filter(|member| **member != receiver.member)
                .all(|member| receiver.packets_from(member) >= packets)
        })
    })
    .await;
}

/// Everyone in the plenary with camera and microphone; party_a also shares a screen.
async fn five_in_a_call(app: &TestApp) -> Vec<Participant> {
    let mut participants = join_all(app, 5, |name| PeerOptions {
        screen: name == "party_a",
        keyframe_interval: Duration::from_secs(10),
        ..PeerOptions::default()
    })
    .await;
    // Each receives the other four (the screen share too).
    until_everyone_receives_everyone(&mut participants, 30).await;
    participants
}

fn by_name<'a>(participants: &'a [Participant], name: &str) -> &'a Participant {
    participants
        .iter()
        .find(|p| p.name == name)
        .expect("participant")
}

/// packets[receiver][publisher] now.
/// Asserts that every track every participant receives kept one continuous RTP numbering.
fn assert_continuous(participants: &[Participant]) {
    for participant in participants {
        for track in participant.peer.stats() {
            assert_eq!(
                track.discontinuities, 0,
                "{} saw the numbering of track {} jump",
                participant.name, track.track_id
            );
        }
    }
}

fn counts(participants: &[Participant]) -> HashMap<(String, String), u64> {
    let mut counts = HashMap::new();
    for receiver in participants {
        for publisher in participants {
            if receiver.member != publisher.member {
                counts.insert(
                    (receiver.name.to_owned(), publisher.name.to_owned()),
                    receiver.packets_from(&publisher.member),
                );
            }
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caucus_cuts_media_at_once_and_the_plenary_brings_it_back_with_a_keyframe() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut participants = five_in_a_call(&app).await;
    let party_a = by_name(&participants, "party_a");
    assert_eq!(
        by_name(&participants, "lawyer_b").tracks_from(&party_a.member),
        3,
        "camera, microphone and screen share"
    );

    // The mediator takes side A aside.
    let inside = ["mediator", "party_a", "lawyer_a"];
    let outside = ["party_b", "lawyer_b"];
    let members: Vec<String> = ["party_a", "lawyer_a"]
        .iter()
        .map(|name| by_name(&participants, name).member.clone())
        .collect();
    participants[0]
        .room
        .command(json!({ "type": "start_caucus", "members": members }))
        .await;
    let acked = Instant::now();
    // Packets the SFU sent before the ack may still be inside the receiving peer's stack
    // (webrtc-rs tasks on a busy machine): arrivals are counted from a moment later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let at_ack = counts(&participants);
    keep_negotiating(&mut participants, Duration::from_secs(3)).await;
    let after = counts(&participants);
    let crossing = outside
        .iter()
        .flat_map(|receiver| inside.iter().map(move |publisher| (*receiver, *publisher)))
        .chain(
            inside
                .iter()
                .flat_map(|receiver| outside.iter().map(move |publisher| (*receiver, *publisher))),
        );
    for (receiver, publisher) in crossing {
        let key = (receiver.to_owned(), publisher.to_owned());
        assert_eq!(
            after[&key],
            at_ack[&key],
            "{receiver} received {} packets from {publisher} after the caucus began",
            after[&key] - at_ack[&key]
        );
        // The strict check: nothing the publisher sent after the ack ever arrives.
        let late = by_name(&participants, receiver)
            .peer
            .packets_from_sent_after(publisher, acked);
        assert_eq!(
            late, 0,
            "{receiver} received {late} packets {publisher} sent after the ack"
        );
    }
    // Inside the caucus, and among side B, media keeps flowing.
    for (receiver, publisher) in [
        ("mediator", "party_a"),
        ("party_a", "lawyer_a"),
        ("lawyer_a", "mediator"),
        ("party_b", "lawyer_b"),
    ] {
        let key = (receiver.to_owned(), publisher.to_owned());
        assert!(
            after[&key] - at_ack[&key] >= 50,
            "{receiver} keeps receiving {publisher}"
        );
    }

    // Back to plenary: flows resume, each re-subscriber gets a keyframe within 300 ms.
    let marks: Vec<_> = participants.iter().map(|p| p.peer.mark()).collect();
    participants[0]
        .room
        .command(json!({ "type": "back_to_plenary" }))
        .await;
    let acked = Instant::now();
    let mut slowest = Duration::ZERO;
    for (receiver, mark) in participants.iter().zip(&marks) {
        let crossing: Vec<&str> = if outside.contains(&receiver.name) {
            inside.to_vec()
        } else {
            outside.to_vec()
        };
        for publisher in crossing {
            let keyframe = mark
                .wait_for_keyframe_from(publisher, Source::Video, Duration::from_secs(2))
                .await
                .unwrap_or_else(|| panic!("{} got no keyframe from {publisher}", receiver.name));
            let delay = keyframe.saturating_duration_since(acked);
            slowest = slowest.max(delay);
            assert!(
                delay < Duration::from_millis(300),
                "{} waited {delay:?} for {publisher}'s keyframe",
                receiver.name
            );
        }
    }
    eprintln!("slowest keyframe to a re-subscriber after back_to_plenary: {slowest:?}");
    keep_negotiating(&mut participants, Duration::from_millis(500)).await;
    let resumed = counts(&participants);
    for receiver in outside {
        for publisher in inside {
            let key = (receiver.to_owned(), publisher.to_owned());
            assert!(
                resumed[&key] > after[&key],
                "{receiver} receives {publisher} again"
            );
        }
    }
    // Paused and resumed, each track went on with the next sequence number.
    assert_continuous(&participants);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_share_stays_in_its_session() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut participants = join_all(&app, 4, |name| PeerOptions {
        video: name != "party_a",
        screen: name == "party_a",
        ..PeerOptions::default()
    })
    .await;
    let sharer = participants[1].member.clone();
    // The caucus starts before anyone received the screen: it never reaches side B.
    let members = vec![sharer.clone(), participants[2].member.clone()];
    participants[0]
        .room
        .command(json!({ "type": "start_caucus", "members": members }))
        .await;
    negotiate_until(&mut participants, Duration::from_secs(15), |all| {
        all[0].packets_from(&sharer) >= 30 && all[2].packets_from(&sharer) >= 30
    })
    .await;
    keep_negotiating(&mut participants, Duration::from_secs(1)).await;
    let outsider = by_name(&participants, "party_b");
    assert_eq!(
        outsider.packets_from(&sharer),
        0,
        "side B never receives the caucus screen share"
    );
    assert_eq!(outsider.tracks_from(&sharer), 0);
    assert_eq!(
        by_name(&participants, "lawyer_a").tracks_from(&sharer),
        2,
        "screen and microphone"
    );
}

/// How a participant's media goes away.
enum Death {
    /// The peer connection is closed properly (DTLS close).
    Closed,
    /// The device vanishes: nothing more arrives, not even ICE consent checks.
    Vanished,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_whose_media_is_closed_is_removed_and_the_room_goes_on() {
    media_dies_and_the_room_goes_on(Death::Closed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_participant_whose_device_vanishes_silently_is_removed_and_the_room_goes_on() {
    media_dies_and_the_room_goes_on(Death::Vanished).await;
}

async fn media_dies_and_the_room_goes_on(death: Death) {
    let app = spawn_app(Backend::Sqlite).await;
    let mut participants = join_all(&app, 3, |_| PeerOptions::default()).await;
    until_everyone_receives_everyone(&mut participants, 20).await;
    let members: Vec<String> = participants.iter().map(|p| p.member.clone()).collect();

    // lawyer_a's peer connection dies; its WebSocket stays open but silent on media.
    let lawyer_a = participants.pop().expect("lawyer_a");
    let Participant { mut room, peer, .. } = lawyer_a;
    let started = Instant::now();
    match death {
        Death::Closed => peer.close().await.expect("close"),
        Death::Vanished => peer.vanish(),
    }
    let bye = room.closed().await;
    assert_eq!(
        bye.map(|b| b["reason"].clone()),
        Some(json!("media_failed"))
    );
    eprintln!("media failure noticed after {:?}", started.elapsed());

    // The others are told and keep talking.
    let gone = |m: &serde_json::Value| {
        m["event"]["kind"] == "presence"
            && m["event"]["place"]["members"]
                .as_array()
                .is_some_and(|members| {
                    members.iter().any(|member| {
                        member["name"] == "Sig. lawyer_a" && member["connected"] == false
                    })
                })
    };
    let mediator = &mut participants[0];
    if !mediator.room.received.iter().any(gone) {
        mediator.room.wait_for(gone).await;
    }
    let before = participants[0].packets_from(&members[1]);
    keep_negotiating(&mut participants, Duration::from_millis(500)).await;
    assert!(
        participants[0].packets_from(&members[1]) > before,
        "the mediator still receives party_a"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_lost_on_the_way_in_are_asked_again_and_recovered() {
    let app = spawn_app(Backend::Sqlite).await;
    // The mediator sends too: a webrtc-rs offer needs at least one m-line.
    let mut participants = join_all(&app, 2, |name| match name {
        "party_a" => PeerOptions {
            audio: false,
            keyframe_interval: Duration::from_secs(30),
            drop_outgoing: Some(DropPolicy::EveryNthVideoPacket(20)),
            ..PeerOptions::default()
        },
        _ => PeerOptions::default(),
    })
    .await;
    let sender = participants[1].member.clone();
    negotiate_until(&mut participants, Duration::from_secs(15), |all| {
        all[0].packets_from(&sender) >= 60
    })
    .await;
    let nacks_sent = || async {
        let metrics = app.metrics().await;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(r#"accordo_media_node_total{kind="nacks_sent"} "#))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let dropped_before = participants[1].peer.dropped_packets();
    let requests_before = participants[1]
        .peer
        .keyframe_requests_received(Source::Video);
    let received_before = participants[0].packets_from(&sender);
    keep_negotiating(&mut participants, Duration::from_secs(3)).await;

    let dropped = participants[1].peer.dropped_packets() - dropped_before;
    assert!(dropped >= 5, "the sender lost {dropped} packets on purpose");
    // Every gap was filled by a retransmission: the SFU never saw a broken frame, so it never
    // had to ask for a keyframe.
    assert_eq!(
        participants[1]
            .peer
            .keyframe_requests_received(Source::Video),
        requests_before,
        "no keyframe request: the lost packets came back"
    );
    // 30 frames/s of one or two packets for 3 s.
    assert!(participants[0].packets_from(&sender) - received_before >= 100);
    let deadline = Instant::now() + Duration::from_secs(3);
    while nacks_sent().await == 0 {
        assert!(Instant::now() < deadline, "the SFU sent no NACK");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The figures are the node's: no series names a room (a room id is case data).
    let metrics = app.metrics().await;
    let room = participants[0].room.welcome["room"].as_str().unwrap();
    assert!(
        !metrics.contains(room) && !metrics.contains("room="),
        "{metrics}"
    );
    let peers = metrics
        .lines()
        .find_map(|line| line.strip_prefix("accordo_media_peers "))
        .and_then(|value| value.trim().parse::<u64>().ok());
    assert!(peers.is_some_and(|peers| peers >= 2), "{metrics}");
}

/// The track id (as the SFU named it in `a=msid`) of `publisher`'s camera, at `receiver`.
fn camera_track(receiver: &Participant, publisher: &str) -> String {
    receiver
        .peer
        .stats()
        .into_iter()
        .find(|track| {
            track.stream_id == publisher
                && track.kind == accordo_tests::media_peer::MediaKind::Video
                && track.packets > 0
        })
        .map(|track| track.track_id)
        .expect("the camera arrives")
}

/// `count` people in a call where only party_a sends video, as a simulcast camera; returns
/// once everyone else receives it. party_a's member id is the second value.
async fn simulcast_call(app: &TestApp, count: usize) -> (Vec<Participant>, String) {
    let mut participants = join_all(app, count, |name| PeerOptions {
        simulcast: name == "party_a",
        video: name == "party_a",
        keyframe_interval: Duration::from_secs(30),
        ..PeerOptions::default()
    })
    .await;
    let sender = participants[1].member.clone();
    negotiate_until(&mut participants, Duration::from_secs(15), |all| {
        all.iter()
            .enumerate()
            .filter(|(i, _)| *i != 1)
            .all(|(_, receiver)| receiver.packets_from(&sender) >= 50)
    })
    .await;
    (participants, sender)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_receiver_gets_the_simulcast_layer_its_tile_and_bandwidth_allow() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mut participants, sender) = simulcast_call(&app, 4).await;

    // lawyer_a shows party_a in a small tile; party_b can take at most 300 kbit/s; the
    // mediator says nothing and gets the best layer.
    let small_tile = camera_track(&participants[2], &sender);
    let tiles = |height: u32| {
        let mut tiles = serde_json::Map::new();
        tiles.insert(small_tile.clone(), json!(height));
        tiles
    };
    let preferences = [
        (
            2,
            json!({ "type": "receive_preferences", "tiles": tiles(180) }),
        ),
        (
            3,
            json!({ "type": "receive_preferences", "max_bitrate": 300_000 }),
        ),
    ];
    for (index, message) in preferences {
        participants[index]
            .room
            .send_raw(&message.to_string())
            .await;
    }
    // Let the layer switches happen (on the next keyframe of each wanted layer).
    keep_negotiating(&mut participants, Duration::from_secs(2)).await;
    let marks: Vec<_> = participants.iter().map(|p| p.peer.mark()).collect();
    keep_negotiating(&mut participants, Duration::from_secs(2)).await;
    let received = |index: usize, layer: Layer| marks[index].packets_from_layer("party_a", layer);
    for (index, expected) in [(0, Layer::High), (2, Layer::Low), (3, Layer::Medium)] {
        for layer in Layer::ALL {
            let packets = received(index, layer);
            if layer == expected {
                assert!(
                    packets >= 20,
                    "{} receives the {layer:?} layer ({packets})",
                    participants[index].name
                );
            } else {
                assert_eq!(
                    packets, 0,
                    "{} receives nothing of the {layer:?} layer",
                    participants[index].name
                );
            }
        }
    }

    // lawyer_a enlarges the tile: the top layer follows, from a keyframe.
    let mark = participants[2].peer.mark();
    let enlarged = json!({ "type": "receive_preferences", "tiles": tiles(720) });
    participants[2].room.send_raw(&enlarged.to_string()).await;
    let asked = Instant::now();
    let keyframe = mark
        .wait_for_keyframe_from_layer("party_a", Layer::High, Duration::from_secs(2))
        .await
        .expect("a keyframe of the top layer");
    eprintln!(
        "layer switch after {:?}",
        keyframe.saturating_duration_since(asked)
    );
    assert!(keyframe.saturating_duration_since(asked) < Duration::from_millis(500));
    // Layers have their own numbering: each receiver still saw one continuous stream.
    keep_negotiating(&mut participants, Duration::from_millis(300)).await;
    assert_continuous(&participants);
}

/// Waits until `participant` is told that `speaker` speaks; panics after a while.
async fn told_speaking(participant: &mut Participant, speaker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let told = participant
            .room
            .take_where(|m| m["type"] == "active_speaker", Duration::from_millis(50))
            .await;
        if told.iter().any(|m| m["member"] == speaker) {
            return;
        }
        participant.negotiate(Duration::from_millis(10)).await;
        assert!(
            Instant::now() < deadline,
            "{} was not told that {speaker} speaks",
            participant.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_speaker_is_told_only_within_the_session() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut participants = join_all(&app, 4, |_| PeerOptions::default()).await;
    until_everyone_receives_everyone(&mut participants, 20).await;
    let members: Vec<String> = participants.iter().map(|p| p.member.clone()).collect();

    // party_a speaks: everyone else hears it.
    participants[1].peer.set_speaking(true);
    let party_a = members[1].clone();
    for index in [0, 2, 3] {
        told_speaking(&mut participants[index], &party_a).await;
    }

    // The mediator takes party_b aside; party_a falls silent and party_b speaks.
    let caucus = vec![members[3].clone()];
    participants[0]
        .room
        .command(json!({ "type": "start_caucus", "members": caucus }))
        .await;
    participants[1].peer.set_speaking(false);
    participants[3].peer.set_speaking(true);
    let party_b = members[3].clone();
    told_speaking(&mut participants[0], &party_b).await;
    keep_negotiating(&mut participants, Duration::from_secs(1)).await;
    for outsider in &participants[1..3] {
        let leaked = outsider.room.received.iter().any(|m| {
            m["type"] == "active_speaker" && (m["member"] == party_b || m["member"] == members[0])
        });
        assert!(
            !leaked,
            "{} learned who speaks in the caucus",
            outsider.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_on_a_slow_line_is_moved_to_a_lower_layer_by_the_loss_it_reports() {
    let app = spawn_app(Backend::Sqlite).await;
    let (mut participants, _) = simulcast_call(&app, 3).await;
    // lawyer_a's line carries 400 kbit/s: the top layer (about 600) does not fit. It declares
    // nothing: the server learns it from the losses lawyer_a reports.
    participants[2].peer.limit_downlink(400_000);
    keep_negotiating(&mut participants, Duration::from_secs(6)).await;
    let marks: Vec<_> = participants.iter().map(|p| p.peer.mark()).collect();
    keep_negotiating(&mut participants, Duration::from_secs(2)).await;
    let high = |index: usize| marks[index].packets_from_layer("party_a", Layer::High);
    let lower = |index: usize| {
        marks[index].packets_from_layer("party_a", Layer::Medium)
            + marks[index].packets_from_layer("party_a", Layer::Low)
    };
    assert_eq!(high(2), 0, "the slow line gets no top layer any more");
    assert!(lower(2) >= 20, "it gets a lower one: {}", lower(2));
    assert!(high(0) >= 20, "the mediator's line is fast: top layer");
    assert_eq!(lower(0), 0);
}
