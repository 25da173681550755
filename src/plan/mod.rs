//! The lazy plan: run id → point id, replicate and parameter values; shards.
//!
//! Point ids enumerate the grid in row-major order over the swept parameters in the order
//! they appear in the spec (first axis slowest); a zip group is one dimension, placed where
//! its first member appears. `run_id = point_id * replicates + replicate`. Nothing is
//! materialised: a plan of 10^9 runs takes the same memory as one of 10.

pub mod estimate;

use std::fmt;

use crate::spec::{Slot, Spec, TraceRuns};

/// The largest sweep that is planned: run ids and counts stay exact in u64 and i64.
pub const MAX_RUNS: u64 = 1 << 63;

/// Trace rows a sweep may write without `run --force`: 1e9 rows are about 16 GB of
/// Parquet, more than anyone loads into a dataframe by mistake.
pub const MAX_TRACE_ROWS: f64 = 1e9;

/// Bytes per trace row on disk (four 8-byte columns, zstd about 2:1).
pub const TRACE_BYTES_PER_ROW: f64 = 16.0;

/// One dimension of the grid: a swept parameter, or a zip group advancing together.
#[derive(Debug, Clone, PartialEq)]
pub struct Dim {
    /// Indices into `Spec::params`.
    pub params: Vec<usize>,
    /// Number of values along this dimension (every zipped axis has this length), >= 1.
    pub len: u64,
    /// Number of points between successive values of this dimension.
    pub stride: u64,
}

/// Why a sweep cannot be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// Points times replicates exceeds 2^63 runs.
    #[error(
        "the sweep has more than 2^63 runs ({points} points x {replicates} replicates overflow)"
    )]
    TooLarge {
        /// The number of grid points, or `more than 2^64`.
        points: String,
        /// `sweep.replicates`.
        replicates: u32,
    },
    /// A `--shard` value that is not `I/N` with 0 <= I < N; holds the text given.
    #[error("--shard must be I/N with 0 <= I < N, got {0}")]
    BadShard(String),
    /// The traces asked for exceed 1e9 rows (and `--force` was not given).
    #[error(
        "output.traces: the traces would have {rows:.3e} rows (~{:.0} GB), more than the limit of 1e9 rows; trace fewer runs or use a larger every_ms, or pass --force",
        bytes / 1e9
    )]
    TracesTooLarge {
        /// Trace rows the sweep would write.
        rows: f64,
        /// Estimated size on disk in bytes.
        bytes: f64,
    },
    /// `output.traces.runs.ids` names a run id the sweep does not have.
    #[error(
        "output.traces.runs.ids: {id} is not a run id of this sweep, which has {runs} run{} (ids 0 to {})",
        if *runs == 1 { "" } else { "s" },
        runs - 1
    )]
    TraceIdNotARun {
        /// The largest id given that is not a run of the sweep.
        id: u64,
        /// Runs in the sweep.
        runs: u64,
    },
}

/// The grid of a validated spec.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The spec planned.
    pub spec: &'a Spec,
    /// The swept dimensions, outermost (largest stride) first; empty for a single point.
    pub dims: Vec<Dim>,
    /// Grid points: the product of the dimension lengths.
    pub points: u64,
    /// Runs: `points * replicates`, at most 2^63.
    pub runs: u64,
}

/// A run's parameter values, indexed by [`Slot`]; parameters the spec lacks are NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Values([f64; Slot::ALL.len()]);

impl Values {
    /// The value of `slot` in this run; NaN when the spec lacks the parameter.
    pub fn get(&self, slot: Slot) -> f64 {
        self.0[slot as usize]
    }
}

/// Where a run sits in the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunAddress {
    /// The run: `point_id * replicates + replicate`.
    pub run_id: u64,
    /// The grid point (parameter combination), from 0.
    pub point_id: u64,
    /// Which replicate of the point, `0..replicates`.
    pub replicate: u32,
}

impl<'a> Plan<'a> {
    /// The grid of `spec`, or [`PlanError::TooLarge`] when it has more than 2^63 runs.
    pub fn new(spec: &'a Spec) -> Result<Plan<'a>, PlanError> {
        let mut dims: Vec<Dim> = Vec::new();
        let mut placed = vec![false; spec.params.len()];
        for (i, p) in spec.params.iter().enumerate() {
            if !p.axis.is_swept() || placed[i] {
                continue;
            }
            let params: Vec<usize> = match spec.zip.iter().find(|g| g.contains(&p.slot)) {
                Some(group) => (0..spec.params.len())
                    .filter(|&j| group.contains(&spec.params[j].slot))
                    .collect(),
                None => vec![i],
            };
            for &j in &params {
                placed[j] = true;
            }
            dims.push(Dim {
                params,
                len: p.axis.len(),
                stride: 0,
            });
        }
        let mut points: u64 = 1;
        let mut overflow = false;
        for d in dims.iter_mut().rev() {
            d.stride = points;
            match points.checked_mul(d.len) {
                Some(p) => points = p,
                None => overflow = true,
            }
        }
        let runs = points
            .checked_mul(spec.replicates as u64)
            .filter(|r| *r <= MAX_RUNS);
        let runs = match runs {
            Some(runs) if !overflow => runs,
            _ => {
                return Err(PlanError::TooLarge {
                    points: if overflow {
                        "more than 2^64".into()
                    } else {
                        points.to_string()
                    },
                    replicates: spec.replicates,
                });
            }
        };
        // Ids are sorted: the last is the largest.
        if let Some(TraceRuns::Ids(ids)) = spec.traces.as_ref().map(|t| &t.runs)
            && let Some(&id) = ids.last().filter(|&&id| id >= runs)
        {
            return Err(PlanError::TraceIdNotARun { id, runs });
        }
        Ok(Plan {
            spec,
            dims,
            points,
            runs,
        })
    }

    /// The point and replicate of run `run_id` (< `runs`).
    pub fn address(&self, run_id: u64) -> RunAddress {
        let r = self.spec.replicates as u64;
        RunAddress {
            run_id,
            point_id: run_id / r,
            replicate: (run_id % r) as u32,
        }
    }

    /// Parameter values at a point.
    pub fn values(&self, point_id: u64) -> Values {
        let mut v = [f64::NAN; Slot::ALL.len()];
        for p in &self.spec.params {
            if !p.axis.is_swept() {
                v[p.slot as usize] = p.axis.get(0);
            }
        }
        for d in &self.dims {
            let i = (point_id / d.stride) % d.len;
            for &j in &d.params {
                let p = &self.spec.params[j];
                v[p.slot as usize] = p.axis.get(i);
            }
        }
        Values(v)
    }

    /// Number of runs that record traces.
    pub fn traced_runs(&self) -> u64 {
        match self.spec.traces.as_ref().map(|t| &t.runs) {
            None | Some(TraceRuns::None) => 0,
            Some(TraceRuns::All) => self.runs,
            Some(TraceRuns::Every(k)) => self.runs.div_ceil(*k),
            // Plan::new refuses ids beyond the sweep.
            Some(TraceRuns::Ids(ids)) => ids.len() as u64,
        }
    }

    /// Trace rows the sweep writes (an estimate when dt is an axis: its values share the
    /// runs equally, as in a product grid); a network writes one per node.
    pub fn trace_rows(&self) -> f64 {
        let dts = self.spec.dt_values();
        let rows_per_run = dts
            .iter()
            .map(|&dt| {
                let t = self.spec.timing(dt);
                t.steps
                    .checked_div(t.trace_stride)
                    .map_or(0.0, |r| 1.0 + r as f64)
            })
            .sum::<f64>()
            / dts.len() as f64;
        let nodes = self.spec.network_data().map_or(1, |d| d.connectome.nodes());
        self.traced_runs() as f64 * rows_per_run * nodes as f64
    }

    /// Refuses a sweep whose traces exceed [`MAX_TRACE_ROWS`] unless `force`.
    pub fn check_trace_size(&self, force: bool) -> Result<(), PlanError> {
        let rows = self.trace_rows();
        if rows > MAX_TRACE_ROWS && !force {
            return Err(PlanError::TracesTooLarge {
                rows,
                bytes: rows * TRACE_BYTES_PER_ROW,
            });
        }
        Ok(())
    }

    /// Run ids `[start, end)` of shard `i` of `n`: `[floor(i*N/n), floor((i+1)*N/n))`.
    pub fn shard_range(&self, shard: Shard) -> std::ops::Range<u64> {
        let bound = |k: u64| ((k as u128 * self.runs as u128) / shard.count as u128) as u64;
        bound(shard.index)..bound(shard.index + 1)
    }
}

/// Shard `index` of `count` (`--shard I/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard's index, `0..count`.
    pub index: u64,
    /// Number of shards the runs are split into, >= 1.
    pub count: u64,
}

impl Shard {
    /// The whole sweep as one shard (`0/1`).
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = PlanError;
    fn from_str(s: &str) -> Result<Shard, PlanError> {
        let bad = || PlanError::BadShard(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec;

    fn spec(text: &str) -> Spec {
        spec::parse(text).unwrap()
    }

    #[test]
    fn points_are_row_major_in_spec_order() {
        let s = spec("model:\n  J: [10, 20, 30]\n  eta: [-1, -2]\nsweep: {replicates: 2}\n");
        let p = Plan::new(&s).unwrap();
        assert_eq!((p.points, p.runs), (6, 12));
        // J is first in the spec, so it varies slowest.
        let v = p.values(1);
        assert_eq!((v.get(Slot::J), v.get(Slot::Eta)), (10.0, -2.0));
        let v = p.values(4);
        assert_eq!((v.get(Slot::J), v.get(Slot::Eta)), (30.0, -1.0));
        assert_eq!(
            p.address(9),
            RunAddress {
                run_id: 9,
                point_id: 4,
                replicate: 1
            }
        );
        assert_eq!(v.get(Slot::Delta), 1.0);
        assert!(v.get(Slot::NoiseVSigma).is_nan());
    }

    #[test]
    fn zip_groups_advance_together() {
        let s = spec(
            "model:\n  eta: [1, 2, 3]\n  delta: [0.5, 1]\n  J: [10, 20, 30]\nsweep:\n  zip: [[eta, J]]\n",
        );
        let p = Plan::new(&s).unwrap();
        assert_eq!(p.points, 6);
        assert_eq!(p.dims.len(), 2);
        // Dimension order: (eta, J) zipped first, then delta.
        let v = p.values(3);
        assert_eq!(
            (v.get(Slot::Eta), v.get(Slot::J), v.get(Slot::Delta)),
            (2.0, 20.0, 1.0)
        );
    }

    #[test]
    fn shards_partition_the_runs() {
        let s = spec("model:\n  eta: {linspace: [0, 1, 10]}\nsweep: {replicates: 3}\n");
        let p = Plan::new(&s).unwrap();
        let mut next = 0;
        for i in 0..7 {
            let r = p.shard_range(Shard { index: i, count: 7 });
            assert_eq!(r.start, next);
            next = r.end;
        }
        assert_eq!(next, 30);
        assert!("3/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert_eq!(
            "2/5".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 5 }
        );
    }

    #[test]
    fn huge_sweeps_plan_lazily_and_overflow_is_refused() {
        let s =
            spec("model:\n  eta: {linspace: [0, 1, 1000000]}\n  J: {linspace: [0, 1, 1000000]}\n");
        let p = Plan::new(&s).unwrap();
        assert_eq!(p.runs, 1_000_000_000_000);
        assert_eq!(p.values(p.points - 1).get(Slot::J), 1.0);
        let s = spec(
            "model:\n  eta: {linspace: [0, 1, 4294967296]}\n  J: {linspace: [0, 1, 4294967296]}\n",
        );
        assert!(matches!(Plan::new(&s), Err(PlanError::TooLarge { .. })));
    }

    #[test]
    fn trace_ids_must_be_runs_of_the_sweep() {
        let traced = |ids: &str| {
            spec(&format!(
                "model: {{eta: [-5, -4]}}\nsweep: {{replicates: 3}}\noutput: {{traces: {{runs: {{ids: {ids}}}}}}}\n"
            ))
        };
        // 6 runs: ids 0..=5.
        let s = traced("[5, 0]");
        assert_eq!(Plan::new(&s).unwrap().traced_runs(), 2);
        let s = traced("[0, 6, 2]");
        let e = Plan::new(&s).unwrap_err();
        assert_eq!(e, PlanError::TraceIdNotARun { id: 6, runs: 6 });
        assert_eq!(
            e.to_string(),
            "output.traces.runs.ids: 6 is not a run id of this sweep, which has 6 runs (ids 0 to 5)"
        );
        let s = spec("output: {traces: {runs: {ids: [5]}}}\n");
        assert_eq!(
            Plan::new(&s).unwrap_err().to_string(),
            "output.traces.runs.ids: 5 is not a run id of this sweep, which has 1 run (ids 0 to 0)"
        );
    }
}
