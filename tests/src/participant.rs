//! A whole participant, as a browser tab is: the room WebSocket ([`RoomClient`]) and a WebRTC
//! peer connection to the SFU ([`MediaPeer`]), negotiated over that WebSocket as
//! `docs/protocol.md` says (the client offers first, then answers the server's offers).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::media_peer::{MediaPeer, PeerOptions, Source};
use crate::room_client::RoomClient;
use crate::RoomSetup;

/// One person with a camera and a microphone in a room.
pub struct Participant {
    pub name: &'static str,
    /// The member id (also the media stream id of the tracks this participant publishes).
    pub member: String,
    pub room: RoomClient,
    pub peer: MediaPeer,
}

/// The `mid` of the m-line whose `a=msid` names `track_id`, in an SDP.
fn mid_of_track(sdp: &str, track_id: &str) -> Option<String> {
    sdp.split("\nm=").find_map(|section| {
        let carries = section.lines().any(|line| {
            line.starts_with("a=msid:") && line.trim_end().ends_with(&format!(" {track_id}"))
        });
        carries.then(|| {
            section
                .lines()
                .find_map(|line| line.strip_prefix("a=mid:"))
                .map(|mid| mid.trim().to_owned())
        })?
    })
}

impl Participant {
    /// Joins the room with the personal link and starts the media: offer, answer.
    pub async fn join(
        address: &str,
        setup: &RoomSetup,
        name: &'static str,
        options: PeerOptions,
    ) -> Participant {
        let member = setup.member(name).to_owned();
        let mut room = RoomClient::join(name, address, setup.link(name))
            .await
            .unwrap_or_else(|refused| panic!("{name} refused: {refused:?}"));
        let options = PeerOptions {
            stream_id: member.clone(),
            ..options
        };
        let peer = MediaPeer::new(name, options).await.expect("media peer");
        let offer = peer.create_offer().await.expect("offer");
        let screen_mids: Vec<String> = mid_of_track(&offer, Source::Screen.track_id())
            .into_iter()
            .collect();
        room.send_raw(
            &json!({ "type": "sdp_offer", "sdp": offer, "screen_mids": screen_mids }).to_string(),
        )
        .await;
        let answer = room
            .wait_for(|m| m["type"] == "sdp_answer" || m["type"] == "error")
            .await;
        assert_eq!(answer["type"], "sdp_answer", "{name}: {answer}\n{offer}");
        peer.set_remote_answer(answer["sdp"].as_str().unwrap_or_default())
            .await
            .expect("answer accepted");
        Participant {
            name,
            member,
            room,
            peer,
        }
    }

    /// Answers the server offers that arrive within `window`.
    pub async fn negotiate(&mut self, window: Duration) {
        let offers = self
            .room
            .take_where(
                |m| m["type"] == "sdp_offer" || m["code"] == "media_refused",
                window,
            )
            .await;
        for offer in offers {
            assert_eq!(offer["type"], "sdp_offer", "{}: {offer}", self.name);
            let answer = self
                .peer
                .accept_offer(offer["sdp"].as_str().unwrap_or_default())
                .await
                .expect("server offer accepted");
            self.room
                .send_raw(&json!({ "type": "sdp_answer", "sdp": answer }).to_string())
                .await;
        }
    }

    /// RTP packets received so far from the tracks `member` publishes.
    pub fn packets_from(&self, member: &str) -> u64 {
        self.peer
            .stats()
            .iter()
            .filter(|track| track.stream_id == member)
            .map(|track| track.packets)
            .sum()
    }

    /// Tracks received from `member`.
    pub fn tracks_from(&self, member: &str) -> usize {
        self.peer
            .stats()
            .iter()
            .filter(|track| track.stream_id == member && track.packets > 0)
            .count()
    }
}

/// Answers server offers for everyone until `done` holds (checked between rounds), or panics
/// after `within`.
pub async fn negotiate_until(
    participants: &mut [Participant],
    within: Duration,
    done: impl Fn(&[Participant]) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        for participant in participants.iter_mut() {
            participant.negotiate(Duration::from_millis(20)).await;
        }
        if done(participants) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "media did not settle within {within:?}; packets received per track:\n{}",
            received_per_track(participants)
        );
    }
}

/// Answers server offers for everyone for `window` (media keeps flowing meanwhile).
pub async fn keep_negotiating(participants: &mut [Participant], window: Duration) {
    let until = Instant::now() + window;
    while Instant::now() < until {
        for participant in participants.iter_mut() {
            participant.negotiate(Duration::from_millis(20)).await;
        }
    }
}

/// One line per participant: the packets of each track it receives, by sender and kind.
fn received_per_track(participants: &[Participant]) -> String {
    participants
        .iter()
        .map(|participant| {
            let tracks: Vec<String> = participant
                .peer
                .stats()
                .iter()
                .map(|track| format!("{} {:?} {}", track.stream_id, track.kind, track.packets))
                .collect();
            format!("{}: {}", participant.name, tracks.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mid_of_a_track() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=msid:s audio\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=msid:s video\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=msid:s screen\r\n";
        assert_eq!(mid_of_track(sdp, "screen").as_deref(), Some("2"));
        assert_eq!(mid_of_track(sdp, "video").as_deref(), Some("1"));
        assert_eq!(mid_of_track(sdp, "camera"), None);
    }
}
