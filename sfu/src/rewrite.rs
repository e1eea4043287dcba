//! Renumbering forwarded RTP packets, so that each subscriber sees one continuous stream.
//!
//! The engine forwards RTP packets as they come (str0m's RTP mode) rather than re-packetising
//! frames. A subscriber's stream of one track is fed by different sources over its life: a
//! publisher's simulcast layers have their own SSRC, sequence numbers and timestamps, and
//! forwarding pauses while a caucus keeps the track from the subscriber. [`Renumbering`] maps
//! each source packet to the subscriber's sequence number and RTP timestamp: continuous across
//! a change of source or a pause (the next number follows the last one sent, the timestamp
//! advances by the time that passed), and a video stream only restarts on a keyframe.

use std::time::Instant;

use str0m::rtp::{SeqNo, Ssrc};

/// What to do with one source packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send it with this sequence number and RTP timestamp.
    Send { seq_no: SeqNo, time: u32 },
    /// Drop it: it belongs to what was forwarded before the last restart.
    Stale,
    /// Drop it: video restarts only on a keyframe, which should be asked for.
    NeedsKeyframe,
}

/// One source packet, as far as renumbering is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourcePacket {
    pub(crate) ssrc: Ssrc,
    /// Extended sequence number (no wrap-around).
    pub(crate) seq_no: SeqNo,
    pub(crate) time: u32,
    /// Whether the packet is the first of a keyframe (always true for audio).
    pub(crate) starts_keyframe: bool,
    /// The media clock, ticks per second.
    pub(crate) clock_rate: u32,
    pub(crate) arrival: Instant,
}

/// The renumbering state of one track towards one subscriber.
#[derive(Debug, Clone, Default)]
pub(crate) struct Renumbering {
    /// The source being forwarded; another source, or `None`, means a restart.
    source: Option<Ssrc>,
    /// Added (wrapping) to a source sequence number / timestamp.
    seq_offset: u64,
    time_offset: u32,
    /// The first source sequence number forwarded since the restart: earlier ones are stale.
    first: u64,
    /// The highest sequence number sent, its timestamp and when its source packet arrived.
    last: Option<(u64, u32, Instant)>,
}

impl Renumbering {
    /// Forwarding stopped (the plan no longer lets the subscriber receive the track): the
    /// next packet restarts the stream.
    pub(crate) fn pause(&mut self) {
        self.source = None;
    }

    /// Maps one packet of `packet.ssrc`; a packet of another source than the current one
    /// switches to it (the caller decides which source it wants to forward).
    pub(crate) fn map(&mut self, packet: SourcePacket) -> Verdict {
        let seq = *packet.seq_no;
        if self.source != Some(packet.ssrc) {
            if !packet.starts_keyframe {
                return Verdict::NeedsKeyframe;
            }
            self.restart(packet);
        } else if seq < self.first {
            return Verdict::Stale;
        }
        let out_seq = seq.wrapping_add(self.seq_offset);
        let out_time = packet.time.wrapping_add(self.time_offset);
        if self.last.is_none_or(|(last, _, _)| out_seq > last) {
            self.last = Some((out_seq, out_time, packet.arrival));
        }
        Verdict::Send {
            seq_no: out_seq.into(),
            time: out_time,
        }
    }

    /// Makes `packet` the first of a new run: its number follows the last one sent, its
    /// timestamp is the last one plus the time that passed since (at least one tick).
    fn restart(&mut self, packet: SourcePacket) {
        let seq = *packet.seq_no;
        match self.last {
            // The very first packet keeps its numbers (low 16 bits: no rollover yet).
            None => {
                self.seq_offset = (seq & 0xffff).wrapping_sub(seq);
                self.time_offset = 0;
            }
            Some((last_seq, last_time, last_arrival)) => {
                let elapsed = packet.arrival.saturating_duration_since(last_arrival);
                let ticks = (elapsed.as_secs_f64() * f64::from(packet.clock_rate)) as u64;
                let advance = u32::try_from(ticks.max(1)).unwrap_or(u32::MAX);
                self.seq_offset = (last_seq + 1).wrapping_sub(seq);
                self.time_offset = last_time.wrapping_add(advance).wrapping_sub(packet.time);
            }
        }
        self.source = Some(packet.ssrc);
        self.first = seq;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn packet(ssrc: u32, seq: u64, time: u32, keyframe: bool, arrival: Instant) -> SourcePacket {
        SourcePacket {
            ssrc: ssrc.into(),
            seq_no: seq.into(),
            time,
            starts_keyframe: keyframe,
            clock_rate: 90_000,
            arrival,
        }
    }

    fn sent(verdict: Verdict) -> (u64, u32) {
        match verdict {
            Verdict::Send { seq_no, time } => (*seq_no, time),
            other => panic!("expected a packet to send, got {other:?}"),
        }
    }

    #[test]
    fn video_starts_on_a_keyframe_and_keeps_the_source_numbers() {
        let start = Instant::now();
        let mut renumbering = Renumbering::default();
        assert_eq!(
            renumbering.map(packet(1, 70_000, 5_000, false, start)),
            Verdict::NeedsKeyframe
        );
        // 70,000 has rolled over once: the subscriber's stream starts with roll-over count 0.
        assert_eq!(
            sent(renumbering.map(packet(1, 70_001, 6_000, true, start))),
            (70_001 - 65_536, 6_000)
        );
        assert_eq!(
            sent(renumbering.map(packet(1, 70_002, 6_000, false, start))),
            (70_002 - 65_536, 6_000)
        );
        // Reordered packets keep their place; older than the start is stale.
        assert_eq!(
            sent(renumbering.map(packet(1, 70_004, 9_000, false, start))),
            (70_004 - 65_536, 9_000)
        );
        assert_eq!(
            sent(renumbering.map(packet(1, 70_003, 9_000, false, start))),
            (70_003 - 65_536, 9_000)
        );
        assert_eq!(
            renumbering.map(packet(1, 70_000, 5_000, false, start)),
            Verdict::Stale
        );
    }

    #[test]
    fn a_layer_switch_continues_the_numbers_and_the_clock() {
        let start = Instant::now();
        let mut renumbering = Renumbering::default();
        sent(renumbering.map(packet(1, 100, 1_000, true, start)));
        sent(renumbering.map(packet(1, 101, 4_000, false, start)));
        // Layer 2 has its own numbers; its packets wait for its keyframe.
        let later = start + Duration::from_millis(40);
        assert_eq!(
            renumbering.map(packet(2, 9_000, 777_000, false, later)),
            Verdict::NeedsKeyframe
        );
        // 40 ms at 90 kHz is 3,600 ticks after the last timestamp sent.
        assert_eq!(
            sent(renumbering.map(packet(2, 9_001, 780_000, true, later))),
            (102, 4_000 + 3_600)
        );
        assert_eq!(
            sent(renumbering.map(packet(2, 9_002, 783_000, false, later))),
            (103, 4_000 + 3_600 + 3_000)
        );
    }

    #[test]
    fn a_pause_restarts_audio_at_once_and_video_on_a_keyframe() {
        let start = Instant::now();
        let mut audio = Renumbering::default();
        let mut first = packet(7, 10, 48_000, true, start);
        first.clock_rate = 48_000;
        sent(audio.map(first));
        audio.pause();
        let mut resumed = packet(
            7,
            500,
            48_000 + 490 * 960,
            true,
            start + Duration::from_secs(1),
        );
        resumed.clock_rate = 48_000;
        // Numbers go on from the last one sent; one second later is 48,000 ticks later.
        assert_eq!(sent(audio.map(resumed)), (11, 96_000));

        let mut video = Renumbering::default();
        sent(video.map(packet(3, 1, 0, true, start)));
        video.pause();
        assert_eq!(
            video.map(packet(3, 50, 90_000, false, start)),
            Verdict::NeedsKeyframe
        );
        assert_eq!(sent(video.map(packet(3, 51, 90_000, true, start))), (2, 1));
    }
}
