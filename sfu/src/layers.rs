//! Simulcast: which layer of each video a subscriber receives.
//!
//! A simulcast publisher sends each video as up to three layers (rids `l`, `m`, `h`, lowest
//! first). Each subscriber gets one layer per track ([`choose_layers`]): the lowest that fills
//! the tile the client shows it in, lowered (costliest first) until the sum fits the lower of
//! the bitrate the client declared and its downlink estimate (`downlink`). What a layer costs
//! is measured ([`Layers::measure`]), or assumed until measured. A subscriber switches to a
//! new layer only on a keyframe of it ([`LayerChoice::admit`]), so its decoder never sees a
//! frame that refers to one of another layer.

use std::collections::HashMap;
use std::time::Duration;

use rooms::TrackId;
use str0m::media::Rid;

/// Simulcast layer names, lowest first (the names the Accordo client gives its encodings).
const LAYER_NAMES: [&str; 3] = ["l", "m", "h"];
/// What a layer is assumed to cost until its bitrate has been measured, bits per second.
const NOMINAL_LAYER_BITRATE: [u64; 3] = [150_000, 500_000, 1_500_000];
/// The tallest tile each layer is good for (pixels); taller tiles get the top layer.
const LAYER_MAX_HEIGHT: [u32; 2] = [180, 360];

/// The simulcast layers of one published track, and what each costs.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    /// Lowest first; empty without simulcast.
    rids: Vec<Rid>,
    /// Bytes received per layer since the last measurement.
    bytes: HashMap<Rid, u64>,
    /// The bitrate of each layer at the last measurement it received something in.
    bitrates: HashMap<Rid, u64>,
}

impl Layers {
    /// The layers a publisher announced, put lowest first: the known names in their order,
    /// others after them as the client listed them.
    pub(crate) fn new(mut rids: Vec<Rid>) -> Self {
        rids.sort_by_key(|rid| {
            LAYER_NAMES
                .iter()
                .position(|name| *name == &**rid)
                .unwrap_or(LAYER_NAMES.len())
        });
        Self {
            rids,
            ..Self::default()
        }
    }

    /// The layers, lowest first; empty without simulcast.
    pub(crate) fn rids(&self) -> &[Rid] {
        &self.rids
    }

    /// A packet of `rid` carrying `bytes` of payload came in.
    pub(crate) fn received(&mut self, rid: Rid, bytes: u64) {
        *self.bytes.entry(rid).or_default() += bytes;
    }

    /// Measures the bitrate of the layers that received something over the `elapsed` since
    /// the last measurement; the others keep their last figure.
    pub(crate) fn measure(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64().max(0.001);
        for (rid, bytes) in self.bytes.drain() {
            let bitrate = (bytes as f64 * 8.0 / seconds) as u64;
            self.bitrates.insert(rid, bitrate);
        }
    }

    /// The measured bitrate of `rid`, if it has been measured.
    pub(crate) fn measured(&self, rid: Rid) -> Option<u64> {
        self.bitrates.get(&rid).copied()
    }

    /// What layer `index` costs: its measured bitrate, or the nominal one until it has been
    /// measured above zero.
    fn cost(&self, index: usize) -> u64 {
        self.rids
            .get(index)
            .and_then(|rid| self.measured(*rid))
            .filter(|bitrate| *bitrate > 0)
            .unwrap_or(NOMINAL_LAYER_BITRATE[index.min(NOMINAL_LAYER_BITRATE.len() - 1)])
    }
}

/// A simulcast track a subscriber may receive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted<'a> {
    pub(crate) track: TrackId,
    pub(crate) layers: &'a Layers,
    /// The height of the tile the client shows it in, if declared.
    pub(crate) tile_height: Option<u32>,
}

/// The layer a subscriber should receive of each simulcast track in `wanted` (tracks without
/// simulcast are left out): the lowest whose [`LAYER_MAX_HEIGHT`] holds the tile (the top
/// layer without a declared tile), then, while the sum exceeds the lower of `max_bitrate`
/// (declared by the client) and `downlink_cap` (estimated), the costliest layer above the
/// lowest is lowered by one (on a tie, that of the highest track id).
pub(crate) fn choose_layers(
    wanted: &[Wanted<'_>],
    max_bitrate: Option<u64>,
    downlink_cap: Option<u64>,
) -> Vec<(TrackId, Rid)> {
    let mut chosen: Vec<(&Wanted<'_>, usize)> = wanted
        .iter()
        .filter_map(|candidate| {
            let top = candidate.layers.rids.len().checked_sub(1)?;
            let by_tile = match candidate.tile_height {
                Some(height) => LAYER_MAX_HEIGHT
                    .iter()
                    .position(|max| height <= *max)
                    .unwrap_or(LAYER_MAX_HEIGHT.len()),
                None => top,
            };
            Some((candidate, by_tile.min(top)))
        })
        .collect();
    chosen.sort_by_key(|(candidate, _)| candidate.track.get());
    if let Some(budget) = max_bitrate.into_iter().chain(downlink_cap).min() {
        let cost = |chosen: &[(&Wanted<'_>, usize)]| -> u64 {
            chosen
                .iter()
                .map(|(candidate, index)| candidate.layers.cost(*index))
                .sum()
        };
        while cost(&chosen) > budget {
            let Some(costliest) = chosen
                .iter_mut()
                .filter(|(_, index)| *index > 0)
                .max_by_key(|(candidate, index)| candidate.layers.cost(*index))
            else {
                break;
            };
            costliest.1 -= 1;
        }
    }
    chosen
        .into_iter()
        .filter_map(|(candidate, index)| {
            Some((candidate.track, *candidate.layers.rids.get(index)?))
        })
        .collect()
}

/// The simulcast layer a subscriber receives of one track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LayerChoice {
    /// The layer being forwarded.
    current: Option<Rid>,
    /// The layer wanted; forwarding switches to it on its next keyframe.
    target: Option<Rid>,
}

/// What to do with a packet of one simulcast layer, for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Forward it: it is of the layer being forwarded (or starts the switch to the wanted one).
    Forward,
    /// Drop it: it is of the wanted layer, which is switched to on its next keyframe (to be
    /// asked for).
    AwaitKeyframe,
    /// Drop it: it is of a layer neither forwarded nor wanted.
    Drop,
}

impl LayerChoice {
    /// The layer being forwarded.
    pub(crate) fn current(&self) -> Option<Rid> {
        self.current
    }

    /// Makes `rid` the wanted layer. Returns whether a keyframe of it should be asked for
    /// (it is newly wanted and not the one being forwarded).
    pub(crate) fn aim(&mut self, rid: Rid) -> bool {
        if self.target == Some(rid) {
            return false;
        }
        self.target = Some(rid);
        self.current != Some(rid)
    }

    /// Whether a packet of layer `rid` is forwarded. The forwarded layer changes only on the
    /// first packet of a keyframe of the wanted layer (of any layer while none is wanted yet).
    pub(crate) fn admit(&mut self, rid: Rid, starts_keyframe: bool) -> Admission {
        if self.current == Some(rid) {
            return Admission::Forward;
        }
        let wanted = self.target.is_none_or(|target| target == rid);
        match (wanted, starts_keyframe) {
            (true, true) => {
                self.current = Some(rid);
                self.target = Some(rid);
                Admission::Forward
            }
            (true, false) => Admission::AwaitKeyframe,
            (false, _) => Admission::Drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simulcast() -> Layers {
        Layers::new(["l", "m", "h"].map(Rid::from).to_vec())
    }

    /// The layer names chosen for `wanted`, in track order.
    fn choose(wanted: &[Wanted<'_>], max_bitrate: Option<u64>, cap: Option<u64>) -> Vec<String> {
        choose_layers(wanted, max_bitrate, cap)
            .into_iter()
            .map(|(_, rid)| rid.to_string())
            .collect()
    }

    fn tile(track: u64, layers: &Layers, height: Option<u32>) -> Wanted<'_> {
        Wanted {
            track: TrackId::new(track),
            layers,
            tile_height: height,
        }
    }

    #[test]
    fn a_180_px_tile_gets_the_low_layer() {
        let layers = simulcast();
        assert_eq!(choose(&[tile(1, &layers, Some(180))], None, None), ["l"]);
    }

    #[test]
    fn a_181_px_tile_gets_the_middle_layer() {
        let layers = simulcast();
        assert_eq!(choose(&[tile(1, &layers, Some(181))], None, None), ["m"]);
    }

    #[test]
    fn a_360_px_tile_gets_the_middle_layer() {
        let layers = simulcast();
        assert_eq!(choose(&[tile(1, &layers, Some(360))], None, None), ["m"]);
    }

    #[test]
    fn a_taller_tile_gets_the_high_layer() {
        let layers = simulcast();
        assert_eq!(choose(&[tile(1, &layers, Some(361))], None, None), ["h"]);
    }

    #[test]
    fn a_video_without_a_declared_tile_gets_the_top_layer() {
        let layers = simulcast();
        assert_eq!(choose(&[tile(1, &layers, None)], None, None), ["h"]);
    }

    #[test]
    fn a_tall_tile_gets_the_top_layer_published() {
        let layers = Layers::new(["l", "m"].map(Rid::from).to_vec());
        assert_eq!(choose(&[tile(1, &layers, Some(1080))], None, None), ["m"]);
    }

    #[test]
    fn a_video_without_simulcast_gets_no_layer() {
        let layers = Layers::new(Vec::new());
        assert_eq!(
            choose(&[tile(1, &layers, None)], None, None),
            Vec::<String>::new()
        );
    }

    #[test]
    fn over_the_declared_bitrate_the_costliest_layer_is_lowered_first() {
        let (big, small) = (simulcast(), simulcast());
        let wanted = [tile(2, &big, None), tile(1, &small, Some(300))];
        // 1.5 + 0.5 Mbit/s: the high layer goes down to the middle one.
        assert_eq!(choose(&wanted, Some(1_500_000), None), ["m", "m"]);
        // Then both middle layers: the highest track id first on a tie.
        assert_eq!(choose(&wanted, Some(700_000), None), ["m", "l"]);
        assert_eq!(choose(&wanted, Some(300_000), None), ["l", "l"]);
    }

    #[test]
    fn what_fits_the_budget_is_not_lowered() {
        let layers = simulcast();
        let wanted = [tile(1, &layers, None)];
        assert_eq!(choose(&wanted, Some(1_500_000), None), ["h"]);
        assert_eq!(choose(&wanted, Some(1_499_999), None), ["m"]);
    }

    #[test]
    fn the_downlink_estimate_caps_like_a_declared_bitrate() {
        let layers = simulcast();
        let wanted = [tile(1, &layers, None)];
        assert_eq!(choose(&wanted, None, Some(600_000)), ["m"]);
    }

    #[test]
    fn the_lower_of_declared_bitrate_and_downlink_estimate_wins() {
        let layers = simulcast();
        let wanted = [tile(1, &layers, None)];
        assert_eq!(choose(&wanted, Some(600_000), Some(200_000)), ["l"]);
        assert_eq!(choose(&wanted, Some(200_000), Some(600_000)), ["l"]);
    }

    #[test]
    fn a_budget_below_the_lowest_layers_leaves_each_video_on_its_lowest() {
        let (one, two) = (simulcast(), simulcast());
        let wanted = [tile(1, &one, None), tile(2, &two, None)];
        assert_eq!(choose(&wanted, Some(1_000), None), ["l", "l"]);
    }

    #[test]
    fn measured_bitrates_replace_the_nominal_ones() {
        let mut layers = simulcast();
        // 125 kB in one second: 1 Mbit/s, less than the nominal 1.5.
        layers.received(Rid::from("h"), 125_000);
        layers.measure(Duration::from_secs(1));
        assert_eq!(layers.measured(Rid::from("h")), Some(1_000_000));
        assert_eq!(
            choose(&[tile(1, &layers, None)], Some(1_000_000), None),
            ["h"]
        );
    }

    #[test]
    fn a_layer_measured_at_nothing_costs_its_nominal_bitrate() {
        let mut layers = simulcast();
        layers.received(Rid::from("h"), 0);
        layers.measure(Duration::from_secs(1));
        assert_eq!(layers.measured(Rid::from("h")), Some(0));
        assert_eq!(
            choose(&[tile(1, &layers, None)], Some(1_000_000), None),
            ["m"]
        );
    }

    #[test]
    fn a_layer_that_received_nothing_keeps_its_last_measurement() {
        let mut layers = simulcast();
        layers.received(Rid::from("m"), 50_000);
        layers.measure(Duration::from_millis(500));
        layers.measure(Duration::from_secs(1));
        assert_eq!(layers.measured(Rid::from("m")), Some(800_000));
        assert_eq!(layers.measured(Rid::from("l")), None);
    }

    #[test]
    fn layers_are_put_lowest_first_with_unknown_names_last() {
        let layers = Layers::new(["x", "h", "l", "m"].map(Rid::from).to_vec());
        let names: Vec<String> = layers.rids().iter().map(ToString::to_string).collect();
        assert_eq!(names, ["l", "m", "h", "x"]);
    }

    #[test]
    fn before_any_target_the_first_keyframe_of_any_layer_is_forwarded() {
        let (low, high) = (Rid::from("l"), Rid::from("h"));
        let mut choice = LayerChoice::default();
        assert_eq!(choice.admit(high, false), Admission::AwaitKeyframe);
        assert_eq!(choice.admit(high, true), Admission::Forward);
        assert_eq!(choice.current(), Some(high));
        assert_eq!(choice.admit(high, false), Admission::Forward);
        assert_eq!(choice.admit(low, true), Admission::Drop);
    }

    #[test]
    fn a_layer_switch_waits_for_a_keyframe_of_the_target() {
        let (low, middle, high) = (Rid::from("l"), Rid::from("m"), Rid::from("h"));
        let mut choice = LayerChoice::default();
        assert!(choice.aim(high));
        assert_eq!(choice.admit(high, true), Admission::Forward);
        // The tile shrank: the low layer is wanted, its keyframe asked for.
        assert!(choice.aim(low));
        assert!(!choice.aim(low));
        assert_eq!(choice.admit(low, false), Admission::AwaitKeyframe);
        assert_eq!(choice.admit(middle, true), Admission::Drop);
        assert_eq!(choice.admit(high, false), Admission::Forward);
        assert_eq!(choice.admit(low, true), Admission::Forward);
        assert_eq!(choice.current(), Some(low));
        assert_eq!(choice.admit(high, true), Admission::Drop);
    }

    #[test]
    fn wanting_the_layer_being_forwarded_asks_no_keyframe() {
        let high = Rid::from("h");
        let mut choice = LayerChoice::default();
        assert_eq!(choice.admit(high, true), Admission::Forward);
        assert!(!choice.aim(high));
    }
}
