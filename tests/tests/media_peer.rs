//! `MediaPeer` against itself: two synthetic participants connected directly on loopback, without
//! our server, so the client the end-to-end tests rely on is known to work before the SFU is in
//! the path.

use std::time::{Duration, Instant};

use accordo_tests::media_peer::{DropPolicy, MediaKind, MediaPeer, PeerOptions, Source};

/// How long a step that should take milliseconds on loopback may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(5);

/// Alice publishes with an offer that Bob answers; then Bob publishes with a renegotiation offer
/// that Alice accepts, as the server's offers will be accepted.
async fn connect(alice: &MediaPeer, bob: &MediaPeer) {
    let offer = alice.create_offer().await.expect("alice creates her offer");
    let candidates: Vec<&str> = offer
        .lines()
        .filter(|line| line.starts_with("a=candidate:"))
        .collect();
    assert!(!candidates.is_empty(), "the offer has candidates:\n{offer}");
    assert!(
        candidates
            .iter()
            .all(|line| line.contains(" 127.0.0.1 ") && line.ends_with("typ host")),
        "the offer carries loopback host candidates only:\n{offer}"
    );
    let answer = bob.accept_offer(&offer).await.expect("bob answers");
    // The same candidate trickled as the signaling would carry it is accepted too.
    bob.add_remote_candidate(candidates[0], Some("0"))
        .await
        .expect("bob takes a trickled candidate");
    alice
        .set_remote_answer(&answer)
        .await
        .expect("alice applies bob's answer");
    assert!(
        alice.wait_connected(PATIENCE).await,
        "alice connects (state {:?})",
        alice.connection_state()
    );
    assert!(
        bob.wait_connected(PATIENCE).await,
        "bob connects (state {:?})",
        bob.connection_state()
    );

    let renegotiation = bob.create_offer().await.expect("bob offers his tracks");
    let answer = alice
        .accept_offer(&renegotiation)
        .await
        .expect("alice accepts bob's renegotiation");
    bob.set_remote_answer(&answer)
        .await
        .expect("bob applies alice's answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_exchange_microphone_camera_and_screen_on_loopback() {
    let keyframe_interval = Duration::from_secs(1);
    let alice = MediaPeer::new(
        "alice",
        PeerOptions {
            stream_id: "stream-alice".to_owned(),
            screen: true,
            keyframe_interval,
            ..PeerOptions::default()
        },
    )
    .await
    .expect("alice starts");
    let bob = MediaPeer::new("bob", PeerOptions::default())
        .await
        .expect("bob starts");
    let before = bob.mark();
    connect(&alice, &bob).await;
    let connected = bob.mark();

    // Bob hears and sees Alice: a second of her media, and keyframes on both video tracks.
    assert!(
        bob.wait_for_packets_from("alice", 150, PATIENCE).await,
        "bob receives alice's media: {:?}",
        bob.publisher_stats("alice")
    );
    let from_alice = bob.publisher_stats("alice");
    for source in [Source::Audio, Source::Video, Source::Screen] {
        assert!(
            from_alice.source(source).packets > 0,
            "bob receives alice's {source:?}: {from_alice:?}"
        );
    }
    for source in [Source::Video, Source::Screen] {
        before
            .wait_for_keyframe_from("alice", source, PATIENCE)
            .await
            .unwrap_or_else(|| panic!("alice's {source:?} sends a keyframe: {from_alice:?}"));
    }

    // Camera and screen are two tracks of Alice's stream, each with its own SSRC and only its
    // own packets.
    let tracks = bob.stats();
    assert_eq!(tracks.len(), 3, "alice's three tracks: {tracks:?}");
    let track = |track_id: &str| {
        tracks
            .iter()
            .find(|track| track.stream_id == "stream-alice" && track.track_id == track_id)
            .unwrap_or_else(|| panic!("bob has alice's {track_id} track: {tracks:?}"))
    };
    let (audio, camera, screen) = (track("audio"), track("video"), track("screen"));
    assert_eq!(audio.kind, MediaKind::Audio);
    assert_eq!(
        (camera.kind, screen.kind),
        (MediaKind::Video, MediaKind::Video)
    );
    assert_ne!(camera.ssrc, screen.ssrc, "camera and screen are distinct");
    assert_eq!(Some(camera.ssrc), alice.ssrc(Source::Video));
    assert_eq!(Some(screen.ssrc), alice.ssrc(Source::Screen));
    for track in [audio, camera, screen] {
        assert_eq!(
            track.packets_by_tag.keys().collect::<Vec<_>>(),
            ["alice"],
            "only alice's packets on {track:?}"
        );
        assert_eq!(track.packets_by_tag["alice"], track.packets);
    }
    assert!(
        camera.keyframes >= 1 && screen.keyframes >= 1,
        "keyframes are counted per track: {camera:?}, {screen:?}"
    );

    // A keyframe comes within every keyframe interval without being asked for.
    let mark = bob.mark();
    let periodic = mark
        .wait_for_keyframe_from("alice", Source::Video, keyframe_interval + PATIENCE)
        .await
        .expect("alice sends a periodic keyframe");
    assert!(
        periodic.duration_since(mark.at()) <= keyframe_interval + Duration::from_millis(200),
        "the periodic keyframe came {:?} after the mark, the interval is {keyframe_interval:?}",
        periodic.duration_since(mark.at())
    );

    // Right after a periodic keyframe the next one is a whole interval away: a keyframe soon
    // after Bob's PLI is the answer to it.
    let requests_before = alice.keyframe_requests_received(Source::Video);
    let mark = bob.mark();
    bob.request_keyframe("alice", Source::Video)
        .await
        .expect("bob sends a PLI");
    let requested = mark
        .wait_for_keyframe_from("alice", Source::Video, PATIENCE)
        .await
        .expect("alice answers the PLI with a keyframe");
    assert!(
        requested.duration_since(mark.at()) < Duration::from_millis(300),
        "the keyframe came {:?} after the PLI",
        requested.duration_since(mark.at())
    );
    assert_eq!(
        alice.keyframe_requests_received(Source::Video),
        requests_before + 1,
        "alice saw exactly the one PLI"
    );
    assert_eq!(alice.keyframe_requests_received(Source::Screen), 0);

    // Loopback delivers in well under 50 ms once connected.
    let latency = connected.latency_from("alice");
    let p95 = latency.percentile(95.0).expect("latency samples");
    assert!(
        p95 < Duration::from_millis(50),
        "p95 latency {p95:?} over {} samples (max {:?})",
        latency.len(),
        latency.max()
    );

    // Alice receives what Bob published through the renegotiation.
    assert!(
        alice.wait_for_packets_from("bob", 100, PATIENCE).await,
        "alice receives bob's media: {:?}",
        alice.publisher_stats("bob")
    );
    let from_bob = alice.publisher_stats("bob");
    assert!(from_bob.source(Source::Audio).packets > 0, "{from_bob:?}");
    assert!(from_bob.source(Source::Video).packets > 0, "{from_bob:?}");
    assert_eq!(from_bob.source(Source::Screen).packets, 0, "{from_bob:?}");
    assert_eq!(bob.packets_from("bob"), 0, "nobody hears themselves");

    alice.close().await.expect("alice closes");
    bob.close().await.expect("bob closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_packets_dropped_on_purpose_come_back_through_nack() {
    let alice = MediaPeer::new(
        "alice",
        PeerOptions {
            audio: false,
            drop_outgoing: Some(DropPolicy::EveryNthVideoPacket(20)),
            ..PeerOptions::default()
        },
    )
    .await
    .expect("alice starts");
    let bob = MediaPeer::new("bob", PeerOptions::receive_only())
        .await
        .expect("bob starts");
    connect(&alice, &bob).await;

    // Every 20th packet never reaches the wire the first time; Bob's NACKs bring each back, so
    // there are moments where nothing is missing although several packets were dropped.
    let deadline = Instant::now() + PATIENCE;
    let video = loop {
        let video = bob.publisher_stats("alice").source(Source::Video);
        if video.recovered >= 3 && video.missing == 0 {
            break video;
        }
        assert!(
            Instant::now() < deadline,
            "dropped packets are recovered: {video:?}, {} dropped",
            alice.dropped_packets()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        alice.dropped_packets() >= video.recovered,
        "{} dropped, {video:?}",
        alice.dropped_packets()
    );

    alice.close().await.expect("alice closes");
    bob.close().await.expect("bob closes");
}
