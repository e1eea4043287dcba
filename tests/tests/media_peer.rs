//! `MediaPeer` against itself: two synthetic participants connected directly on loopback, without
//! our server, so the client the end-to-end tests rely on is known to work before the SFU is in
//! the path.

#![allow(clippy::unwrap_used)] // a test fails loudly on anything unexpected

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use accordo_tests::media_peer::{
    DropPolicy, Layer, MediaKind, MediaPeer, PeerOptions, Source, LOW_LAYER_PACKET_BYTES,
    SILENT_AUDIO_LEVEL, SPEAKING_AUDIO_LEVEL, VIDEO_PACKET_BYTES,
};

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

/// The lines of the m-section of `sdp` whose `a=msid` names `track_id`.
fn media_section<'a>(sdp: &'a str, track_id: &str) -> Vec<&'a str> {
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in sdp.lines() {
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        if let Some(section) = sections.last_mut() {
            section.push(line);
        }
    }
    sections
        .into_iter()
        .find(|section| {
            section
                .iter()
                .any(|line| line.starts_with("a=msid:") && line.split(' ').nth(1) == Some(track_id))
        })
        .unwrap_or_else(|| panic!("no m-section for the track {track_id}:\n{sdp}"))
}

/// The id `section` maps the header extension `uri` to (`a=extmap:<id> <uri>`).
fn extmap_id(section: &[&str], uri: &str) -> u8 {
    section
        .iter()
        .find_map(|line| {
            let (id, rest) = line.strip_prefix("a=extmap:")?.split_once(' ')?;
            (rest.split(' ').next() == Some(uri)).then(|| id.split('/').next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no extmap for {uri}:\n{}", section.join("\n")))
}

/// An RTP packet as it goes on the wire (before SRTP, which leaves the header in the clear): the
/// SSRC and the RFC 8285 one-byte header extensions, parsed here by hand rather than by the
/// `rtp` crate that wrote them.
struct WirePacket {
    ssrc: u32,
    extensions: BTreeMap<u8, Vec<u8>>,
    /// The packet counter of the probe in the payload.
    probe_counter: Option<u64>,
}

fn parse_wire_packet(bytes: &[u8]) -> WirePacket {
    assert!(bytes.len() >= 12, "an RTP header: {bytes:02x?}");
    assert_eq!(bytes[0] >> 6, 2, "RTP version 2");
    let csrc_count = usize::from(bytes[0] & 0x0f);
    let ssrc = u32::from_be_bytes(bytes[8..12].try_into().unwrap());
    let mut extensions = BTreeMap::new();
    let mut at = 12 + 4 * csrc_count;
    if bytes[0] & 0x10 != 0 {
        let profile = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        assert_eq!(profile, 0xbede, "the one-byte header extension form");
        let words = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let block = &bytes[at + 4..at + 4 + 4 * words];
        let mut i = 0;
        while i < block.len() {
            let id = block[i] >> 4;
            if id == 0 {
                i += 1; // padding
                continue;
            }
            if id == 15 {
                break;
            }
            let length = usize::from(block[i] & 0x0f) + 1;
            extensions.insert(id, block[i + 1..i + 1 + length].to_vec());
            i += 1 + length;
        }
        at += 4 + 4 * words;
    }
    // The probe: "ACRD" | source | tag length | tag | counter (u64 BE) | …
    let payload = &bytes[at..];
    let probe_counter = payload
        .windows(4)
        .position(|window| window == b"ACRD")
        .and_then(|start| {
            let tag_length = usize::from(*payload.get(start + 5)?);
            let counter = payload.get(start + 6 + tag_length..start + 14 + tag_length)?;
            Some(u64::from_be_bytes(counter.try_into().ok()?))
        });
    WirePacket {
        ssrc,
        extensions,
        probe_counter,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulcast_camera_sends_three_layers_with_their_own_keyframes() {
    const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
    const RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
    const REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
    const CAPTURED: usize = 10_000;

    // No periodic keyframe during the test: every keyframe is the first of a layer or the answer
    // to a request.
    let alice = MediaPeer::new(
        "alice",
        PeerOptions {
            simulcast: true,
            keyframe_interval: Duration::from_secs(60),
            // Enough for everything the test sends.
            capture_outgoing_rtp: CAPTURED,
            ..PeerOptions::default()
        },
    )
    .await
    .expect("alice starts");
    let bob = MediaPeer::new("bob", PeerOptions::receive_only())
        .await
        .expect("bob starts");

    // The offer describes the camera as a browser describes simulcast.
    let offer = alice.create_offer().await.expect("alice creates her offer");
    let camera = media_section(&offer, "video");
    eprintln!("alice's camera m-section:\n{}", camera.join("\n"));
    let rid_lines: Vec<&str> = camera
        .iter()
        .copied()
        .filter(|line| line.starts_with("a=rid:") || line.starts_with("a=simulcast:"))
        .collect();
    assert_eq!(
        rid_lines,
        [
            "a=rid:l send",
            "a=rid:m send",
            "a=rid:h send",
            "a=simulcast:send l;m;h"
        ],
        "{}",
        camera.join("\n")
    );
    assert!(
        !camera.iter().any(|line| line.starts_with("a=ssrc")),
        "the layers' SSRCs are learnt from the packets, as from a browser:\n{}",
        camera.join("\n")
    );
    for uri in [MID, RID, REPAIRED_RID] {
        extmap_id(&camera, uri);
    }
    assert_eq!(alice.ssrc(Source::Video), None, "one SSRC per layer");
    let ssrcs: BTreeMap<u32, Layer> = Layer::ALL
        .into_iter()
        .map(|layer| (alice.layer_ssrc(layer).expect("a layer's SSRC"), layer))
        .collect();
    assert_eq!(ssrcs.len(), 3, "three distinct SSRCs");
    // Nothing simulcast about the microphone.
    let microphone = media_section(&offer, "audio");
    assert!(!microphone.iter().any(|line| line.starts_with("a=rid:")));

    let answer = bob.accept_offer(&offer).await.expect("bob answers");
    let answered = media_section_of_mid(&answer, mid_of(&camera));
    assert!(
        answered.contains(&"a=simulcast:recv l;m;h"),
        "bob receives the three layers:\n{}",
        answered.join("\n")
    );
    alice
        .set_remote_answer(&answer)
        .await
        .expect("alice applies bob's answer");
    assert!(alice.wait_connected(PATIENCE).await, "alice connects");
    assert!(bob.wait_connected(PATIENCE).await, "bob connects");

    // The three layers flow, each with the frame size and volume of its own.
    let deadline = Instant::now() + PATIENCE;
    while Layer::ALL
        .iter()
        .any(|layer| bob.packets_from_layer("alice", *layer) < 30)
    {
        assert!(
            Instant::now() < deadline,
            "bob receives the three layers: {:?}",
            bob.publisher_stats("alice")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let from_alice = bob.publisher_stats("alice");
    for (layer, size, packet_bytes) in [
        (Layer::Low, (320, 180), LOW_LAYER_PACKET_BYTES),
        (Layer::Medium, (640, 360), VIDEO_PACKET_BYTES),
        (Layer::High, (1280, 720), VIDEO_PACKET_BYTES),
    ] {
        let stats = from_alice.layer(layer);
        assert!(
            stats.keyframes >= 1,
            "{layer:?} sends a keyframe: {stats:?}"
        );
        assert_eq!(stats.keyframe_size, Some(size), "{layer:?}: {stats:?}");
        assert_eq!(
            stats.bytes,
            stats.packets * packet_bytes as u64,
            "{layer:?}: {stats:?}"
        );
        assert_eq!(stats.missing, 0, "{layer:?} loses nothing: {stats:?}");
    }
    let (medium, high) = (
        from_alice.layer(Layer::Medium),
        from_alice.layer(Layer::High),
    );
    assert!(
        2 * high.packets > 3 * medium.packets,
        "the high layer sends two to three packets a frame, the medium one: {from_alice:?}"
    );
    let camera_totals = from_alice.source(Source::Video);
    assert_eq!(
        camera_totals.packets,
        Layer::ALL
            .iter()
            .map(|layer| from_alice.layer(*layer).packets)
            .sum::<u64>(),
        "{from_alice:?}"
    );
    assert!(
        from_alice.source(Source::Audio).packets > 0,
        "{from_alice:?}"
    );
    assert!(from_alice.layers.keys().eq(Layer::ALL.iter()));
    assert!(bob.current_layer("alice").is_some());

    // `webrtc` gives Bob one remote track for the camera, carrying the three SSRCs.
    let tracks = bob.stats();
    let camera_tracks: Vec<_> = tracks.iter().filter(|t| t.track_id == "video").collect();
    assert_eq!(camera_tracks.len(), 1, "{tracks:?}");
    assert!(
        camera_tracks[0]
            .packets_by_layer
            .keys()
            .eq(Layer::ALL.iter()),
        "{tracks:?}"
    );

    // A PLI for the medium layer's SSRC: that layer, and only that one, sends a keyframe.
    let mark = bob.mark();
    bob.request_keyframe_for_layer("alice", Layer::Medium)
        .await
        .expect("bob sends a PLI");
    let requested = mark
        .wait_for_keyframe_from_layer("alice", Layer::Medium, PATIENCE)
        .await
        .expect("the medium layer answers the PLI with a keyframe");
    assert!(
        requested.duration_since(mark.at()) < Duration::from_millis(300),
        "the keyframe came {:?} after the PLI",
        requested.duration_since(mark.at())
    );
    // Two more frame intervals: a keyframe of another layer would have shown by now.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(mark.keyframes_from_layer("alice", Layer::Medium), 1);
    for layer in [Layer::Low, Layer::High] {
        assert_eq!(
            mark.keyframes_from_layer("alice", layer),
            0,
            "{layer:?} sends no keyframe"
        );
        assert!(
            mark.packets_from_layer("alice", layer) > 0,
            "{layer:?} goes on"
        );
        assert_eq!(alice.keyframe_requests_received_for_layer(layer), 0);
    }
    assert_eq!(alice.keyframe_requests_received_for_layer(Layer::Medium), 1);
    assert_eq!(alice.keyframe_requests_received(Source::Video), 1);

    // On the wire, every packet of a layer carries the mid and its rid, with the ids the answer
    // settled on: the first one too (its probe counter is 0; nothing was evicted from the
    // capture).
    let mid = mid_of(&camera);
    let (mid_id, rid_id) = (extmap_id(&answered, MID), extmap_id(&answered, RID));
    assert_eq!(
        (mid_id, rid_id),
        (extmap_id(&camera, MID), extmap_id(&camera, RID)),
        "the answer keeps the offered ids"
    );
    let captured = alice.captured_outgoing_rtp();
    assert!(captured.len() < CAPTURED, "the capture kept everything");
    let mut per_layer: BTreeMap<Layer, usize> = BTreeMap::new();
    let mut first_packets = Vec::new();
    for bytes in &captured {
        let packet = parse_wire_packet(bytes);
        let Some(layer) = ssrcs.get(&packet.ssrc) else {
            // The microphone, as before: no rid.
            assert!(!packet.extensions.contains_key(&rid_id));
            continue;
        };
        assert_eq!(
            packet.extensions.get(&mid_id).map(Vec::as_slice),
            Some(mid.as_bytes()),
            "the mid of a {layer:?} packet: {:?}",
            packet.extensions
        );
        assert_eq!(
            packet.extensions.get(&rid_id).map(Vec::as_slice),
            Some(layer.rid().as_bytes()),
            "the rid of a {layer:?} packet: {:?}",
            packet.extensions
        );
        *per_layer.entry(*layer).or_default() += 1;
        if packet.probe_counter == Some(0) {
            first_packets.push(*layer);
        }
    }
    first_packets.sort();
    assert_eq!(
        first_packets,
        Layer::ALL,
        "each layer's first packet was captured"
    );
    assert!(
        per_layer.keys().eq(Layer::ALL.iter()),
        "captured every layer: {per_layer:?} of {}",
        captured.len()
    );
    eprintln!(
        "extension ids: mid {mid_id}, rid {rid_id}, repaired rid {}; captured {per_layer:?}",
        extmap_id(&answered, REPAIRED_RID)
    );

    alice.close().await.expect("alice closes");
    bob.close().await.expect("bob closes");
}

/// The `a=mid` of an m-section.
fn mid_of<'a>(section: &[&'a str]) -> &'a str {
    section
        .iter()
        .find_map(|line| line.strip_prefix("a=mid:"))
        .expect("an a=mid line")
}

/// The lines of the m-section of `sdp` with the mid `mid`.
fn media_section_of_mid<'a>(sdp: &'a str, mid: &str) -> Vec<&'a str> {
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in sdp.lines() {
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        if let Some(section) = sections.last_mut() {
            section.push(line);
        }
    }
    sections
        .into_iter()
        .find(|section| {
            section
                .iter()
                .any(|line| line.strip_prefix("a=mid:") == Some(mid))
        })
        .unwrap_or_else(|| panic!("no m-section with the mid {mid}:\n{sdp}"))
}

/// The audio level extension's byte (RFC 6464) on every packet of the SSRC `audio` among
/// `captured`, by probe counter, oldest first; every packet must carry it under the id
/// `level_id`, and no packet of another SSRC may.
fn audio_levels(captured: &[bytes::Bytes], audio: u32, level_id: u8) -> Vec<(u64, u8)> {
    let mut levels = Vec::new();
    for bytes in captured {
        let packet = parse_wire_packet(bytes);
        if packet.ssrc != audio {
            assert!(
                !packet.extensions.contains_key(&level_id),
                "no audio level outside the microphone: {:?}",
                packet.extensions
            );
            continue;
        }
        let level = match packet.extensions.get(&level_id).map(Vec::as_slice) {
            Some(&[level]) => level,
            other => panic!(
                "an audio packet carries one byte of audio level under id {level_id}: {other:?} in {:?}",
                packet.extensions
            ),
        };
        levels.push((packet.probe_counter.expect("an audio probe"), level));
    }
    levels
}

/// Runs of equal values in `levels`: (first probe counter, value).
fn level_runs(levels: &[(u64, u8)]) -> Vec<(u64, u8)> {
    let mut runs: Vec<(u64, u8)> = Vec::new();
    for &(counter, level) in levels {
        if runs.last().is_none_or(|&(_, last)| last != level) {
            runs.push((counter, level));
        }
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_microphone_sends_its_audio_level_with_the_negotiated_id() {
    const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
    // RFC 6464, one byte: V (bit 7), then the level in -dBov. Silent: V=0, level 127; speaking:
    // V=1, level 20.
    const SILENT: u8 = 0x7f;
    const SPEAKING: u8 = 0x80 | 20;
    const CAPTURED: usize = 10_000;
    /// Time for the microphone to send about ten packets.
    const A_WHILE: Duration = Duration::from_millis(200);
    assert_eq!((SILENT_AUDIO_LEVEL, SPEAKING_AUDIO_LEVEL), (127, 20));

    // Alice starts silent (the default), Bob speaking.
    let alice = MediaPeer::new(
        "alice",
        PeerOptions {
            capture_outgoing_rtp: CAPTURED,
            ..PeerOptions::default()
        },
    )
    .await
    .expect("alice starts");
    let bob = MediaPeer::new(
        "bob",
        PeerOptions {
            video: false,
            speaking: true,
            capture_outgoing_rtp: CAPTURED,
            ..PeerOptions::default()
        },
    )
    .await
    .expect("bob starts");

    // The extension is offered on the audio m-line, and only there.
    let offer = alice.create_offer().await.expect("alice creates her offer");
    let microphone = media_section(&offer, "audio");
    let offered = extmap_id(&microphone, AUDIO_LEVEL);
    let camera = media_section(&offer, "video");
    assert!(
        !camera.iter().any(|line| line.contains(AUDIO_LEVEL)),
        "no audio level on the camera:\n{}",
        camera.join("\n")
    );
    let answer = bob.accept_offer(&offer).await.expect("bob answers");
    let level_id = extmap_id(
        &media_section_of_mid(&answer, mid_of(&microphone)),
        AUDIO_LEVEL,
    );
    assert_eq!(level_id, offered, "the answer keeps the offered id");
    alice
        .set_remote_answer(&answer)
        .await
        .expect("alice applies bob's answer");
    assert!(alice.wait_connected(PATIENCE).await, "alice connects");
    assert!(bob.wait_connected(PATIENCE).await, "bob connects");
    let audio = alice.ssrc(Source::Audio).expect("alice's microphone SSRC");

    // Silent at first: V=0, level 127, from the very first packet (probe counter 0; nothing was
    // evicted from the capture).
    let deadline = Instant::now() + PATIENCE;
    while bob.publisher_stats("alice").source(Source::Audio).packets < 10 {
        assert!(Instant::now() < deadline, "bob hears alice");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let silent = audio_levels(&alice.captured_outgoing_rtp(), audio, level_id);
    assert_eq!(silent.first().map(|(counter, _)| *counter), Some(0));
    assert!(
        silent.iter().all(|(_, level)| *level == SILENT),
        "silent: {silent:?}"
    );

    // Speaking from the next packet on: V=1, level 20; then silent again.
    alice.set_speaking(true);
    tokio::time::sleep(A_WHILE).await;
    let speaking = audio_levels(&alice.captured_outgoing_rtp(), audio, level_id);
    assert_eq!(
        speaking.last().map(|(_, level)| *level),
        Some(SPEAKING),
        "speaking within {A_WHILE:?}: {speaking:?}"
    );
    alice.set_speaking(false);
    tokio::time::sleep(A_WHILE).await;
    let captured = alice.captured_outgoing_rtp();
    assert!(captured.len() < CAPTURED, "the capture kept everything");
    let levels = audio_levels(&captured, audio, level_id);
    assert!(
        levels
            .iter()
            .zip(0..)
            .all(|((counter, _), expected)| *counter == expected),
        "every audio packet was captured, in order: {levels:?}"
    );
    let runs = level_runs(&levels);
    assert_eq!(
        runs.iter().map(|(_, level)| *level).collect::<Vec<_>>(),
        [SILENT, SPEAKING, SILENT],
        "silent, speaking, silent: {runs:?}"
    );
    let (last_silent, last_speaking) = (silent.last().unwrap().0, speaking.last().unwrap().0);
    assert!(
        runs[1].0 > last_silent && runs[2].0 > last_speaking,
        "each change came after the call: {runs:?}, the last packets before were {last_silent} \
         and {last_speaking}"
    );
    assert!(
        runs[2].0 - runs[1].0 >= 5,
        "speaking for about {A_WHILE:?}: {runs:?}"
    );

    // Bob, speaking from the start, publishes through a renegotiation: his packets carry the id
    // his offer settled on (the one of Alice's offer, which his engine negotiated first).
    let renegotiation = bob.create_offer().await.expect("bob offers his microphone");
    let bob_microphone = media_section(&renegotiation, "audio");
    let bob_level_id = extmap_id(&bob_microphone, AUDIO_LEVEL);
    assert_eq!(bob_level_id, level_id);
    let answer = alice
        .accept_offer(&renegotiation)
        .await
        .expect("alice accepts bob's renegotiation");
    assert_eq!(
        extmap_id(
            &media_section_of_mid(&answer, mid_of(&bob_microphone)),
            AUDIO_LEVEL
        ),
        bob_level_id
    );
    bob.set_remote_answer(&answer)
        .await
        .expect("bob applies alice's answer");
    assert!(
        alice.wait_for_packets_from("bob", 10, PATIENCE).await,
        "alice hears bob: {:?}",
        alice.publisher_stats("bob")
    );
    let bob_audio = bob.ssrc(Source::Audio).expect("bob's microphone SSRC");
    let from_bob = audio_levels(&bob.captured_outgoing_rtp(), bob_audio, bob_level_id);
    assert!(!from_bob.is_empty(), "bob's audio was captured");
    assert!(
        from_bob.iter().all(|(_, level)| *level == SPEAKING),
        "bob speaks: {from_bob:?}"
    );
    eprintln!(
        "audio level id {level_id}; alice's runs {runs:?}; {} packets from bob",
        from_bob.len()
    );

    alice.close().await.expect("alice closes");
    bob.close().await.expect("bob closes");
}
