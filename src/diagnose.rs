//! The step-size check of a whole sweep, before anything runs: at how many points the
//! method's step cannot settle on a stable state (the runs' `dt_stable = false`), where
//! they are, the step that would fix them and the methods that are stable at this step.
//! `plan` prints it, `run` prints it to stderr before the first batch and stores the count
//! in the parts' metadata (`mpr_sweep.dt_unstable_points`).
//!
//! Only the parameters that move the fixed points or the step (tau, eta, J, delta, the
//! constant inputs, dt) matter, so the check runs over the grid of the dimensions that hold
//! them, each point standing for the points that differ only in other parameters (initial
//! state, noise strength) and for its replicates. Above [`MAX_CHECKED`] distinct points it
//! runs on an evenly spaced sub-grid of each axis (ends included), and says so.

use crate::model::Method;
use crate::model::stability;
use crate::output::Metadata;
use crate::plan::Plan;
use crate::simulate::node_params;
use crate::spec::{InputForm, NoiseKind, Slot};
use rayon::prelude::*;

/// Distinct points checked at most (about 0.25 s of CPU: ~0.5 us per point).
pub const MAX_CHECKED: u64 = 500_000;

/// Points per task of the thread pool.
const CHUNK_POINTS: u64 = 2048;

/// The parameters the check depends on.
const RELEVANT: [Slot; 7] = [
    Slot::TauMs,
    Slot::Eta,
    Slot::J,
    Slot::Delta,
    Slot::InputRHz,
    Slot::InputV,
    Slot::DtMs,
];

/// The sweep's step-size check (only for constant inputs, where fixed points exist).
#[derive(Debug, Clone, PartialEq)]
pub struct DtReport {
    /// The sweep's method.
    pub method: Method,
    /// Points of the sweep (the plan's).
    pub points: u64,
    /// Distinct points as far as the check is concerned.
    pub distinct: u64,
    /// Distinct points checked: all of them, or an evenly spaced sub-grid.
    pub checked: u64,
    /// Points with `dt_stable = false`: of the sweep (each distinct point counted as often
    /// as it occurs), or, when sampled, of the checked points.
    pub unstable_points: u64,
    /// Range of each swept parameter the check depends on, among the unstable points.
    pub unstable_ranges: Vec<(Slot, f64, f64)>,
    /// The smallest `dt_stable_max_ms` over the points checked.
    pub min_max_dt_ms: f64,
    /// The other methods whose step is stable at every point checked (at each point's dt).
    pub stable_methods: Vec<Method>,
}

impl DtReport {
    /// The check of `plan`'s sweep; `None` when its inputs are not constant (time-varying
    /// inputs or OU noise: the runs have no fixed points to settle on) or its steps are
    /// adaptive.
    pub fn compute(plan: &Plan) -> Option<DtReport> {
        let spec = plan.spec;
        // An adaptive step controls its error instead: there is no fixed step to check. A
        // network's nodes are coupled: the single node's fixed points are not its states.
        if spec.adaptive.is_some()
            || spec.network.is_some()
            || spec.input != [InputForm::Constant; 2]
            || spec.noise.contains(&NoiseKind::Ou)
        {
            return None;
        }
        let dims: Vec<_> = plan
            .dims
            .iter()
            .filter(|d| {
                d.params
                    .iter()
                    .any(|&j| RELEVANT.contains(&spec.params[j].slot))
            })
            .collect();
        let distinct: u64 = dims.iter().map(|d| d.len).product();
        // Values checked per dimension: all of them, or, above MAX_CHECKED points, an evenly
        // spaced subset of each (both ends included): a sub-grid that still spans every axis.
        let mut counts: Vec<u64> = dims.iter().map(|d| d.len).collect();
        while counts.iter().product::<u64>() > MAX_CHECKED {
            let largest = (0..counts.len())
                .max_by_key(|&i| counts[i])
                .expect("a dimension");
            counts[largest] = (counts[largest] * 9 / 10).max(1);
        }
        let checked: u64 = counts.iter().product();
        // Each checked point stands for this many sweep points when none is left out.
        let multiplicity = if checked == distinct {
            plan.points / distinct
        } else {
            1
        };
        let swept: Vec<Slot> = dims
            .iter()
            .flat_map(|d| d.params.iter().map(|&j| spec.params[j].slot))
            .filter(|s| RELEVANT.contains(s))
            .collect();
        let others: Vec<Method> = Method::FIXED_STEP
            .into_iter()
            .filter(|&m| m != spec.method)
            .collect();
        let point_id = |k: u64| {
            let mut rest = k;
            let mut point_id = 0;
            for (d, &m) in dims.iter().zip(&counts).rev() {
                let j = rest % m;
                rest /= m;
                let index = match m {
                    _ if m == d.len => j,
                    1 => 0,
                    _ => ((j as f64) * (d.len - 1) as f64 / (m - 1) as f64).round() as u64,
                };
                point_id += index * d.stride;
            }
            point_id
        };
        // The points are independent: checked in chunks on the thread pool (the caller's,
        // if it runs inside one), and merged by sums, minima, maxima and conjunctions, which
        // do not depend on the order.
        let tally_of = |points: std::ops::Range<u64>| {
            let mut tally = Tally::new(swept.len(), others.len());
            for k in points {
                let values = plan.values(point_id(k));
                let dt = values.get(Slot::DtMs);
                let jacobians = node_params(&values, spec.input).stable_jacobians();
                let s = stability::step_stability(&jacobians, spec.method, dt);
                tally.min_max_dt_ms = tally.min_max_dt_ms.min(s.max_dt_ms);
                if !s.stable {
                    tally.unstable += 1;
                    for (range, &slot) in tally.ranges.iter_mut().zip(&swept) {
                        let x = values.get(slot);
                        *range = (range.0.min(x), range.1.max(x));
                    }
                }
                for (ok, &m) in tally.others_stable.iter_mut().zip(&others) {
                    *ok = *ok && stability::stable_at(&jacobians, m, dt);
                }
            }
            tally
        };
        let chunks = checked.div_ceil(CHUNK_POINTS);
        let tally = (0..chunks)
            .into_par_iter()
            .map(|c| tally_of(c * CHUNK_POINTS..((c + 1) * CHUNK_POINTS).min(checked)))
            .reduce(|| Tally::new(swept.len(), others.len()), Tally::merge);
        let mut unstable_ranges: Vec<(Slot, f64, f64)> = swept
            .iter()
            .zip(&tally.ranges)
            .map(|(&slot, &(lo, hi))| (slot, lo, hi))
            .collect();
        unstable_ranges.retain(|(_, lo, hi)| lo <= hi);
        Some(DtReport {
            method: spec.method,
            points: plan.points,
            distinct,
            checked,
            unstable_points: tally.unstable * multiplicity,
            unstable_ranges,
            min_max_dt_ms: tally.min_max_dt_ms,
            stable_methods: others
                .into_iter()
                .zip(tally.others_stable)
                .filter(|&(_, ok)| ok)
                .map(|(m, _)| m)
                .collect(),
        })
    }

    /// Whether the check ran on a sample of the distinct points.
    pub fn sampled(&self) -> bool {
        self.checked < self.distinct
    }

    /// What the check covered, when it did not cover every point.
    fn sample_note(&self) -> String {
        format!(
            " (checked on {} of the {} points that differ in tau, eta, J, delta, inputs or \
             dt: an evenly spaced sub-grid of each axis, ends included)",
            self.checked, self.distinct
        )
    }

    /// "every point", or "every checked point" for a sampled check.
    fn every(&self) -> &'static str {
        if self.sampled() {
            "every checked point"
        } else {
            "every point"
        }
    }

    /// "`n` of `N` points", of the sweep or of the checked sub-grid.
    fn count_text(&self, n: u64) -> String {
        if self.sampled() {
            format!("{n} of {} checked points", self.checked)
        } else {
            format!("{n} of {} points", self.points)
        }
    }

    /// The warning for `plan` and `run`, when some point is unstable.
    pub fn warning(&self) -> Option<String> {
        if self.unstable_points == 0 {
            return None;
        }
        let method = self.method.name();
        let mut text = format!(
            "warning: the step is too large for {method} at {} (dt_stable = false): its \
             one-step map is unstable at a stable state of these points, so their runs cannot \
             settle there and ring or diverge instead{}\n",
            self.count_text(self.unstable_points),
            if self.sampled() {
                self.sample_note()
            } else {
                String::new()
            }
        );
        if !self.unstable_ranges.is_empty() {
            let ranges: Vec<String> = self
                .unstable_ranges
                .iter()
                .map(|(slot, lo, hi)| {
                    if lo == hi {
                        format!("{} {}", slot.column(), short(*lo))
                    } else {
                        format!("{} {} .. {}", slot.column(), short(*lo), short(*hi))
                    }
                })
                .collect();
            text += &format!("  unstable points: {}\n", ranges.join(", "));
        }
        text += &format!(
            "  {method} is stable at {} for dt_ms <= {} (the smallest dt_stable_max_ms)\n",
            self.every(),
            format_ms(self.min_max_dt_ms)
        );
        text += &if self.stable_methods.is_empty() {
            format!(
                "  no other method is stable at {} at this step\n",
                self.every()
            )
        } else {
            format!(
                "  stable at {} at this step: {}\n",
                self.every(),
                names(&self.stable_methods).join(", ")
            )
        };
        Some(text)
    }

    /// The line `plan` prints when every point is stable.
    pub fn all_stable_line(&self) -> String {
        format!(
            "dt check: {} is stable at every stable state of the {} (largest such dt_ms: {}){}",
            self.method.name(),
            if self.sampled() {
                format!("{} checked points", self.checked)
            } else {
                format!("{} points", self.points)
            },
            format_ms(self.min_max_dt_ms),
            if self.sampled() {
                self.sample_note()
            } else {
                String::new()
            }
        )
    }

    /// Adds `mpr_sweep.dt_unstable_points` (and, for a sampled check,
    /// `mpr_sweep.dt_check_sample`: "checked of distinct" points) to a part's metadata.
    pub fn add_metadata(&self, metadata: Metadata) -> Metadata {
        let metadata = metadata.with("dt_unstable_points", self.unstable_points.to_string());
        if self.sampled() {
            metadata.with(
                "dt_check_sample",
                format!("{} of {}", self.checked, self.distinct),
            )
        } else {
            metadata
        }
    }

    /// The report in `plan --json` (non-finite numbers as null).
    pub fn json(&self) -> serde_json::Value {
        let finite = |x: f64| x.is_finite().then_some(x);
        serde_json::json!({
            "method": self.method.name(),
            "points": self.points,
            "distinct_points": self.distinct,
            "checked_points": self.checked,
            "sampled": self.sampled(),
            "unstable_points": self.unstable_points,
            "unstable_ranges": self.unstable_ranges.iter().map(|(s, lo, hi)| {
                (s.column().to_string(), serde_json::json!([lo, hi]))
            }).collect::<serde_json::Map<_, _>>(),
            "dt_stable_max_ms_min": finite(self.min_max_dt_ms),
            "stable_methods": names(&self.stable_methods),
        })
    }
}

/// A step in ms to four significant digits, rounded down (so that the printed step is
/// itself below the bound), or "any" without a bound.
/// What the check has found over some of its points.
struct Tally {
    /// Unstable points among them.
    unstable: u64,
    /// Range of each swept relevant parameter among the unstable ones (empty: lo > hi).
    ranges: Vec<(f64, f64)>,
    /// The smallest `dt_stable_max_ms`.
    min_max_dt_ms: f64,
    /// Whether each other method is stable at all of them.
    others_stable: Vec<bool>,
}

impl Tally {
    fn new(swept: usize, others: usize) -> Tally {
        Tally {
            unstable: 0,
            ranges: vec![(f64::INFINITY, f64::NEG_INFINITY); swept],
            min_max_dt_ms: f64::INFINITY,
            others_stable: vec![true; others],
        }
    }

    fn merge(mut self, other: Tally) -> Tally {
        self.unstable += other.unstable;
        for (a, b) in self.ranges.iter_mut().zip(other.ranges) {
            *a = (a.0.min(b.0), a.1.max(b.1));
        }
        self.min_max_dt_ms = self.min_max_dt_ms.min(other.min_max_dt_ms);
        for (a, b) in self.others_stable.iter_mut().zip(other.others_stable) {
            *a = *a && b;
        }
        self
    }
}

fn format_ms(x: f64) -> String {
    if !x.is_finite() {
        return "any".into();
    }
    let digits = (3 - x.log10().floor() as i32).max(0);
    let scale = 10f64.powi(digits);
    format!("{:.*}", digits as usize, (x * scale).floor() / scale)
}

/// A parameter value to 6 significant digits, trailing zeros dropped (`12.0012`, `-10`).
fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (5 - x.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{x:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn names(methods: &[Method]) -> Vec<&'static str> {
    methods.iter().map(|m| m.name()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_on(threads: usize, plan: &Plan) -> DtReport {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a pool")
            .install(|| DtReport::compute(plan).expect("constant inputs are checked"))
    }

    #[test]
    fn the_report_does_not_depend_on_the_threads() {
        // 12,000 distinct points in several chunks, exp_euler unstable at part of them.
        let spec = crate::spec::parse(
            "model: {eta: {linspace: [-10, 0, 120]}, J: {linspace: [0, 30, 100]}}\n\
             simulation: {method: exp_euler, dt_ms: 0.01, duration_ms: 1}\n",
        )
        .expect("spec");
        let plan = Plan::new(&spec).expect("plan");
        let one = report_on(1, &plan);
        assert!(
            one.unstable_points > 0 && one.unstable_points < 12_000,
            "{one:?}"
        );
        assert_eq!(one, report_on(3, &plan));
    }
}
