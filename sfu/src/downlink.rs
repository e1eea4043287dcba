//! The downlink estimate of one subscriber, from the loss it reports.
//!
//! The loss-based half of Google Congestion Control: the subscriber's RTCP receiver reports
//! give the fraction of packets lost on each stream it receives. Above [`CONGESTED_LOSS`],
//! the video it gets is capped at three quarters of what was being sent; after
//! [`PROBE_AFTER`] below [`CLEAR_LOSS`], the cap grows by a quarter. Loss in between holds the
//! cap. There is no cap until the first congestion. The layer choice (`layers`) keeps within
//! the cap. str0m's delay-based estimator (TWCC) is not used: it brings str0m's pacer, which
//! would hold packets past a plan change.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use str0m::media::{Mid, Rid};

/// Loss reported by a subscriber above which its downlink is congested: what it receives is
/// capped below what is being sent (GCC decreases above 10 %).
const CONGESTED_LOSS: f32 = 0.10;
/// Loss below which the downlink is clear; after [`PROBE_AFTER`] of it the cap is raised (GCC
/// increases below 2 %).
const CLEAR_LOSS: f32 = 0.02;
/// How long the downlink must stay clear before the cap is raised.
const PROBE_AFTER: Duration = Duration::from_secs(8);

/// One outgoing stream of the subscriber (an m-line, and a layer of it) as of its latest
/// statistics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamReport {
    pub(crate) stream: (Mid, Option<Rid>),
    /// Packets sent on the stream so far (cumulative).
    pub(crate) packets: u64,
    /// The fraction lost, as the subscriber last reported it (0 to 1).
    pub(crate) loss: f32,
}

/// The downlink estimate of one subscriber.
#[derive(Debug, Default)]
pub(crate) struct DownlinkEstimate {
    /// At most this many bits per second of video; `None` until the first congestion.
    cap: Option<u64>,
    /// Since when the subscriber reports a clear downlink.
    clear_since: Option<Instant>,
    /// Packets sent on each stream at the last estimate: only streams still flowing count (a
    /// stream the plan stopped keeps its last loss figure).
    counted: HashMap<(Mid, Option<Rid>), u64>,
}

impl DownlinkEstimate {
    /// The most video the subscriber should get, bits per second; `None`: no limit known.
    pub(crate) fn cap(&self) -> Option<u64> {
        self.cap
    }

    /// Updates the estimate at `now` from the subscriber's streams and `sent`, the bitrate of
    /// the video layers it is being sent. Only the streams that carried packets since the last
    /// estimate count; without any, the estimate stays as it is.
    pub(crate) fn estimate(
        &mut self,
        now: Instant,
        streams: impl IntoIterator<Item = StreamReport>,
        sent: u64,
    ) {
        let mut loss: Option<f32> = None;
        for report in streams {
            let counted = self.counted.insert(report.stream, report.packets);
            if counted.is_some_and(|before| report.packets > before) {
                loss = Some(loss.unwrap_or(0.0).max(report.loss));
            }
        }
        let Some(loss) = loss else {
            return;
        };
        if loss > CONGESTED_LOSS && sent > 0 {
            let base = self.cap.map_or(sent, |cap| cap.min(sent));
            self.cap = Some(base * 3 / 4);
            self.clear_since = None;
        } else if loss < CLEAR_LOSS {
            let since = *self.clear_since.get_or_insert(now);
            if let Some(cap) = self.cap {
                if now.saturating_duration_since(since) >= PROBE_AFTER {
                    self.cap = Some(cap + cap / 4);
                    self.clear_since = Some(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subscriber receiving one stream, fed a report per estimate.
    struct Subscriber {
        estimate: DownlinkEstimate,
        packets: u64,
    }

    impl Subscriber {
        /// A subscriber whose stream has been seen once (the first figures only set the count).
        fn new(start: Instant) -> Self {
            let mut subscriber = Subscriber {
                estimate: DownlinkEstimate::default(),
                packets: 0,
            };
            subscriber.report(start, 0.0, 1_000_000);
            subscriber
        }

        /// One estimate at `now`: 100 more packets sent, `loss` reported.
        fn report(&mut self, now: Instant, loss: f32, sent: u64) -> Option<u64> {
            self.packets += 100;
            let report = StreamReport {
                stream: (Mid::from("0"), None),
                packets: self.packets,
                loss,
            };
            self.estimate.estimate(now, [report], sent);
            self.estimate.cap()
        }
    }

    fn seconds(start: Instant, count: u64) -> Instant {
        start + Duration::from_secs(count)
    }

    #[test]
    fn loss_above_10_percent_cuts_to_three_quarters_of_what_was_sent() {
        let start = Instant::now();
        let mut subscriber = Subscriber::new(start);
        assert_eq!(
            subscriber.report(seconds(start, 1), 0.2, 800_000),
            Some(600_000)
        );
    }

    #[test]
    fn loss_of_exactly_10_percent_does_not_cut() {
        let start = Instant::now();
        let mut subscriber = Subscriber::new(start);
        assert_eq!(subscriber.report(seconds(start, 1), 0.10, 800_000), None);
    }

    #[test]
    fn repeated_congestion_cuts_from_the_lower_of_cap_and_what_was_sent() {
        let start = Instant::now();
        let mut subscriber = Subscriber::new(start);
        assert_eq!(
            subscriber.report(seconds(start, 1), 0.2, 800_000),
            Some(600_000)
        );
        // Still sending more than the cap (the layers switch on the next keyframe).
        assert_eq!(
            subscriber.report(seconds(start, 2), 0.2, 800_000),
            Some(450_000)
        );
        // Sending less than the cap.
        assert_eq!(
            subscriber.report(seconds(start, 3), 0.2, 200_000),
            Some(150_000)
        );
    }

    #[test]
    fn congestion_with_nothing_sent_sets_no_cap() {
        let start = Instant::now();
        let mut subscriber = Subscriber::new(start);
        assert_eq!(subscriber.report(seconds(start, 1), 0.5, 0), None);
    }

    #[test]
    fn after_8_s_below_2_percent_the_cap_grows_by_a_quarter() {
        let start = Instant::now();
        let mut subscriber = Subscriber::new(start);
        assert_eq!(
            subscriber.report(seconds(start, 1), 0.2, 800_000),
            Some(600_000)
        );
        // Clear from second 2 on.
        for second in 2..10 {
            assert_eq!(
                subscriber.report(seconds(start, second), 0.01, 600_000),
                Some(600_000)
            );
        }
        assert_eq!(
            subscriber.report(seconds(start, 10), 0.01, 600_000),
            Some(750_000)
        );
        // The next raise takes another 8 s.
        assert_eq!(
            subscriber.report(seconds(start, 17), 0.0, 750_000),
            Some(750_000)
        );
        assert_eq!(
            subscriber.report(seconds(start, 18), 0.0, 750_000),
            Some(937_500)
        );
    }

    #[test]
    fn loss_of_exactly_2_percent_is_not_clear() {
        let start = Instant::now();
        let mut subscriber = Subscriber::new(start);
        assert_eq!(
            subscriber.report(seconds(start, 1), 0.2, 800_000),
            Some(600_000)
        );
        assert_eq!(
            subscriber.report(seconds(start, 2), 0.02, 600_000),
            Some(600_000)
        );
        assert_eq!(
            subscriber.report(seconds(start, 20), 0.02, 600_000),
            Some(600_000)
        );
    }

    #[test]
    fn loss_between_2_and_10_percent_holds_the_cap() {
        let start = Instant::now();
        let mut subscriber = Subscriber::new(start);
        assert_eq!(
            subscriber.report(seconds(start, 1), 0.2, 800_000),
            Some(600_000)
        );
        for second in 2..30 {
            assert_eq!(
                subscriber.report(seconds(start, second), 0.05, 600_000),
                Some(600_000)
            );
        }
    }

    #[test]
    fn congestion_restarts_the_clear_period() {
        let start = Instant::now();
        let mut subscriber = Subscriber::new(start);
        assert_eq!(
            subscriber.report(seconds(start, 1), 0.2, 800_000),
            Some(600_000)
        );
        subscriber.report(seconds(start, 2), 0.0, 600_000);
        assert_eq!(
            subscriber.report(seconds(start, 9), 0.2, 600_000),
            Some(450_000)
        );
        assert_eq!(
            subscriber.report(seconds(start, 10), 0.0, 450_000),
            Some(450_000)
        );
        assert_eq!(
            subscriber.report(seconds(start, 17), 0.0, 450_000),
            Some(450_000)
        );
        assert_eq!(
            subscriber.report(seconds(start, 18), 0.0, 450_000),
            Some(562_500)
        );
    }

    #[test]
    fn a_clear_downlink_without_a_cap_stays_uncapped() {
        let start = Instant::now();
        let mut subscriber = Subscriber::new(start);
        assert_eq!(subscriber.report(seconds(start, 30), 0.0, 800_000), None);
    }

    #[test]
    fn a_stream_that_carried_nothing_since_the_last_estimate_does_not_count() {
        let start = Instant::now();
        let stream = (Mid::from("0"), None);
        let mut estimate = DownlinkEstimate::default();
        let stopped = StreamReport {
            stream,
            packets: 500,
            loss: 0.5,
        };
        // The first figures of a stream only set its count.
        estimate.estimate(start, [stopped], 800_000);
        assert_eq!(estimate.cap(), None);
        // Its last (stale) loss figure, with no more packets sent, is not congestion.
        estimate.estimate(seconds(start, 1), [stopped], 800_000);
        assert_eq!(estimate.cap(), None);
    }

    #[test]
    fn the_worst_loss_over_the_flowing_streams_counts() {
        let start = Instant::now();
        let report = |mid: &str, packets: u64, loss: f32| StreamReport {
            stream: (Mid::from(mid), None),
            packets,
            loss,
        };
        let mut estimate = DownlinkEstimate::default();
        estimate.estimate(
            start,
            [report("0", 100, 0.0), report("1", 100, 0.0)],
            800_000,
        );
        estimate.estimate(
            seconds(start, 1),
            [report("0", 200, 0.01), report("1", 200, 0.3)],
            800_000,
        );
        assert_eq!(estimate.cap(), Some(600_000));
    }
}
