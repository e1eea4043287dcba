//! Pacing the keyframe requests (PLI) made to a publisher.
//!
//! A keyframe is asked for when someone starts (or resumes) receiving a video, when a
//! subscriber's connection comes up, when a subscriber lost its picture, and while a layer
//! switch waits for the new layer's keyframe: several at once, for the same track. Each layer
//! of a publisher track is asked at most once per [`KEYFRAME_REQUEST_INTERVAL`]. A request
//! refused for coming too soon is not dropped but *owed*: a subscriber whose m-line opened
//! just after a keyframe went by would otherwise wait for the publisher's next one on its own,
//! seconds away. The caller takes the owed requests ([`KeyframePacing::take_owed`]) every
//! [`OWED_RETRY_INTERVAL`] and asks again; those still too soon are owed again.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use str0m::media::Rid;

/// Keyframe requests to one layer of a publisher track are at most this frequent.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(250);
/// While a request is owed, it is tried again this often (a fifth of the interval, so it is
/// made soon after the interval allows).
pub(crate) const OWED_RETRY_INTERVAL: Duration =
    Duration::from_millis(KEYFRAME_REQUEST_INTERVAL.as_millis() as u64 / 5);

/// The keyframe requests made to one publisher track, per simulcast layer (`None`: the only
/// layer of a track without simulcast).
#[derive(Debug, Default)]
pub(crate) struct KeyframePacing {
    /// When a keyframe was last asked for, per layer.
    last_request: HashMap<Option<Rid>, Instant>,
    /// Layers whose request came too soon after the last one.
    owed: HashSet<Option<Rid>>,
}

impl KeyframePacing {
    /// Whether a keyframe of `layer` may be asked for at `now`. If not (the last request is
    /// less than [`KEYFRAME_REQUEST_INTERVAL`] old), the request is owed. A request made must
    /// be recorded with [`Self::requested`].
    pub(crate) fn may_request(&mut self, layer: Option<Rid>, now: Instant) -> bool {
        let too_soon = self
            .last_request
            .get(&layer)
            .is_some_and(|last| now.saturating_duration_since(*last) < KEYFRAME_REQUEST_INTERVAL);
        if too_soon {
            self.owed.insert(layer);
        }
        !too_soon
    }

    /// A keyframe of `layer` was asked for at `now`.
    pub(crate) fn requested(&mut self, layer: Option<Rid>, now: Instant) {
        self.last_request.insert(layer, now);
    }

    /// The owed requests, each once; they are no longer owed (until refused again).
    pub(crate) fn take_owed(&mut self) -> impl Iterator<Item = Option<Rid>> + '_ {
        self.owed.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asks for a keyframe of `layer` at `now` and, when allowed, makes the request.
    fn ask(pacing: &mut KeyframePacing, layer: Option<Rid>, now: Instant) -> bool {
        let allowed = pacing.may_request(layer, now);
        if allowed {
            pacing.requested(layer, now);
        }
        allowed
    }

    fn owed(pacing: &mut KeyframePacing) -> Vec<Option<Rid>> {
        let mut owed: Vec<Option<Rid>> = pacing.take_owed().collect();
        owed.sort_by_key(|layer| layer.map(|rid| rid.to_string()));
        owed
    }

    #[test]
    fn the_first_request_is_made_at_once() {
        let mut pacing = KeyframePacing::default();
        assert!(ask(&mut pacing, None, Instant::now()));
        assert_eq!(owed(&mut pacing), Vec::new());
    }

    #[test]
    fn a_second_request_within_250_ms_is_owed_not_dropped() {
        let start = Instant::now();
        let mut pacing = KeyframePacing::default();
        assert!(ask(&mut pacing, None, start));
        assert!(!ask(&mut pacing, None, start + Duration::from_millis(249)));
        assert_eq!(owed(&mut pacing), vec![None]);
        // Taken once: the caller now asks again.
        assert_eq!(owed(&mut pacing), Vec::new());
    }

    #[test]
    fn a_request_250_ms_after_the_last_is_made() {
        let start = Instant::now();
        let mut pacing = KeyframePacing::default();
        assert!(ask(&mut pacing, None, start));
        assert!(ask(&mut pacing, None, start + KEYFRAME_REQUEST_INTERVAL));
        assert_eq!(owed(&mut pacing), Vec::new());
    }

    #[test]
    fn an_owed_request_is_made_as_soon_as_the_interval_allows() {
        let start = Instant::now();
        let mut pacing = KeyframePacing::default();
        assert!(ask(&mut pacing, None, start));
        assert!(!ask(&mut pacing, None, start + Duration::from_millis(10)));
        // Retried before the interval is over: owed again.
        let early = start + Duration::from_millis(200);
        for layer in owed(&mut pacing) {
            assert!(!ask(&mut pacing, layer, early));
        }
        let due = start + KEYFRAME_REQUEST_INTERVAL;
        for layer in owed(&mut pacing) {
            assert!(ask(&mut pacing, layer, due));
        }
        assert_eq!(owed(&mut pacing), Vec::new());
    }

    #[test]
    fn requests_refused_several_times_are_owed_once() {
        let start = Instant::now();
        let mut pacing = KeyframePacing::default();
        assert!(ask(&mut pacing, None, start));
        assert!(!ask(&mut pacing, None, start + Duration::from_millis(1)));
        assert!(!ask(&mut pacing, None, start + Duration::from_millis(2)));
        assert_eq!(owed(&mut pacing), vec![None]);
    }

    #[test]
    fn each_simulcast_layer_is_paced_on_its_own() {
        let start = Instant::now();
        let (low, high) = (Some(Rid::from("l")), Some(Rid::from("h")));
        let mut pacing = KeyframePacing::default();
        assert!(ask(&mut pacing, low, start));
        assert!(ask(&mut pacing, high, start));
        let soon = start + Duration::from_millis(100);
        assert!(!ask(&mut pacing, low, soon));
        assert!(!ask(&mut pacing, high, soon));
        assert_eq!(owed(&mut pacing), vec![high, low]);
    }

    #[test]
    fn a_request_that_could_not_be_made_does_not_hold_back_the_next() {
        let start = Instant::now();
        let mut pacing = KeyframePacing::default();
        // Allowed, but the publisher's stream was not there yet: nothing recorded.
        assert!(pacing.may_request(None, start));
        assert!(ask(&mut pacing, None, start + Duration::from_millis(1)));
    }
}
