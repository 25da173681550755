//! The `network` section: a connectome of coupled nodes, its files and its rules.
//!
//! Reading the section checks the keys and numbers only; [`Spec::load_files`] then reads
//! the matrices (paths relative to the spec file) and checks them against each other and
//! the sweep: square weights, tract lengths of the same shape, one value per node in the
//! vectors, delays that fit in memory. Errors name the key, its position and the file.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::builder::SpecBuilder;
use super::read::{at, entries, number, string};
use super::steps::whole_steps_of_every_dt;
use super::yaml::{self, Node, Value};
use super::{Mark, Slot, Spec, SpecError};
use crate::integrate::LANES;
use crate::integrate::network::{NET_LANES, NODES_PER_GROUP};
use crate::model::Coupling;
use crate::network::files::{DataFile, Matrix};
use crate::network::{Connectome, ConnectomeError, delay_steps};

/// A file named by a key of the `network` section.
#[derive(Debug, Clone, PartialEq)]
pub struct FileKey {
    /// The key path, e.g. `network.weights`.
    pub key: String,
    /// The path as the spec gives it (relative paths are relative to the spec file).
    pub path: String,
    /// Where the spec gives it.
    pub mark: Mark,
}

impl FileKey {
    fn error(&self, message: impl std::fmt::Display) -> SpecError {
        SpecError::new(&self.key, Some(self.mark), message.to_string())
    }
}

/// Each node's rate before t = 0, which delayed couplings read at the start of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum History {
    /// The node's initial rate (brainmass's `delay_init = r0`): the default.
    Initial,
    /// One constant rate in Hz for every node.
    RHz(f64),
}

/// The `network` section.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSpec {
    /// `weights`: the N x N connectivity, row = target, column = source.
    pub weights: FileKey,
    /// `tract_lengths_mm`: the N x N tract lengths in mm (delays = length / speed); none
    /// means no delays.
    pub tract_lengths_mm: Option<FileKey>,
    /// `node_names`: one name per node.
    pub node_names: Option<FileKey>,
    /// `fc_target`: an N x N empirical functional connectivity to compare with.
    pub fc_target: Option<FileKey>,
    /// `node_offsets`: per-node values added to a node parameter of every run.
    pub node_offsets: Vec<(Slot, FileKey)>,
    /// `coupling`: diffusive (default) or additive.
    pub coupling: Coupling,
    /// `history_r_hz`: `initial` (default) or a rate in Hz.
    pub history: History,
    /// `fc_sample_ms`: the interval at which rates are sampled for FC (default 1 ms).
    pub fc_sample_ms: f64,
    /// The files' contents, once [`Spec::load_files`] has read them.
    pub data: Option<Arc<NetworkData>>,
}

/// What the network's files hold, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkData {
    /// Nodes and edges.
    pub connectome: Connectome,
    /// One name per node, when given.
    pub names: Option<Vec<String>>,
    /// The target FC's upper triangle (`i < j`, row by row), when given.
    pub fc_target: Option<Vec<f64>>,
    /// Per-node offsets of node parameters.
    pub offsets: Vec<(Slot, Vec<f64>)>,
    /// SHA-256 of the files' bytes, in key order (the run metadata records it).
    pub sha256: String,
    /// The files as read, in the same order.
    pub files: Vec<SourceFile>,
}

/// One of the files a network spec names, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    /// The path as the spec gives it.
    pub path: String,
    /// The bytes the runs were computed from.
    pub bytes: Vec<u8>,
}

/// The node parameters that `node_offsets` may vary, by key.
const OFFSET_KEYS: [(&str, Slot); 4] = [
    ("tau_ms", Slot::TauMs),
    ("eta", Slot::Eta),
    ("J", Slot::J),
    ("delta", Slot::Delta),
];

/// The largest ring buffer of past rates a lane batch may hold.
pub const MAX_HISTORY_BYTES: u64 = 4 << 30;

impl SpecBuilder {
    /// Reads the `network` section (after the simulation's steps are known).
    pub(super) fn network(&mut self, node: &Node) -> Result<(), SpecError> {
        const KEYS: [&str; 10] = [
            "weights",
            "tract_lengths_mm",
            "speed_mm_per_ms",
            "coupling",
            "k",
            "node_names",
            "fc_target",
            "fc_sample_ms",
            "history_r_hz",
            "node_offsets",
        ];
        let file = |value: &Node, key: &str| -> Result<FileKey, SpecError> {
            let path = string(value, key)?;
            if path.is_empty() {
                return Err(at(value, key, "expected a file path, got an empty string"));
            }
            Ok(FileKey {
                key: key.to_string(),
                path,
                mark: value.mark,
            })
        };
        let mut net = NetworkSpec {
            weights: FileKey {
                key: String::new(),
                path: String::new(),
                mark: node.mark,
            },
            tract_lengths_mm: None,
            node_names: None,
            fc_target: None,
            node_offsets: Vec::new(),
            coupling: Coupling::Diffusive,
            history: History::Initial,
            fc_sample_ms: 1.0,
            data: None,
        };
        let mut has_weights = false;
        let mut speed_mark = None;
        let mut k_given = false;
        let mut fc_sample_mark = None;
        for (key, value) in entries(node, "network", &KEYS)? {
            let path = yaml::join("network", key);
            match key.as_str() {
                "weights" => {
                    net.weights = file(value, &path)?;
                    has_weights = true;
                }
                "tract_lengths_mm" => net.tract_lengths_mm = Some(file(value, &path)?),
                "node_names" => net.node_names = Some(file(value, &path)?),
                "fc_target" => net.fc_target = Some(file(value, &path)?),
                "speed_mm_per_ms" => {
                    let (lo, _) = self.push(Slot::SpeedMmPerMs, value, &path)?.range();
                    if lo <= 0.0 {
                        return Err(at(
                            value,
                            &path,
                            format!("speed_mm_per_ms must be > 0, got {lo}"),
                        ));
                    }
                    speed_mark = Some(value.mark);
                }
                "k" => {
                    self.push(Slot::K, value, &path)?;
                    k_given = true;
                }
                "coupling" => {
                    let name = string(value, &path)?;
                    net.coupling = Coupling::ALL
                        .into_iter()
                        .find(|c| c.name() == name)
                        .ok_or_else(|| {
                            at(
                                value,
                                &path,
                                format!(
                                    "unknown coupling `{name}`; expected one of: diffusive, additive"
                                ),
                            )
                        })?;
                }
                "fc_sample_ms" => {
                    net.fc_sample_ms = number(value, &path)?;
                    fc_sample_mark = Some(value.mark);
                }
                "history_r_hz" => {
                    net.history = match &value.value {
                        Value::String(s) if s == "initial" => History::Initial,
                        Value::String(s) => {
                            return Err(at(
                                value,
                                &path,
                                format!(
                                    "expected `initial` (each node's initial rate) or a rate in Hz, got `{s}`"
                                ),
                            ));
                        }
                        _ => History::RHz(number(value, &path).map_err(|e| {
                            SpecError::new(
                                &e.path,
                                e.mark,
                                e.message
                                    .replace("expected a number", "expected `initial` or a number"),
                            )
                        })?),
                    };
                }
                "node_offsets" => {
                    let names = OFFSET_KEYS.map(|(k, _)| k);
                    for (param, file_node) in entries(value, &path, &names)? {
                        let slot = OFFSET_KEYS
                            .iter()
                            .find(|(k, _)| *k == param.as_str())
                            .expect("entries checked the key")
                            .1;
                        let key = yaml::join(&path, param);
                        net.node_offsets.push((slot, file(file_node, &key)?));
                    }
                }
                _ => unreachable!(),
            }
        }
        if !has_weights {
            return Err(at(
                node,
                "network",
                "a network needs `weights`: the N x N connectivity file (row = target, column = source)",
            ));
        }
        if !k_given {
            return Err(at(
                node,
                "network",
                "a network needs `k`: the global coupling (a number or an axis)",
            ));
        }
        match (&net.tract_lengths_mm, speed_mark) {
            (Some(lengths), None) => {
                return Err(SpecError::new(
                    &lengths.key,
                    Some(lengths.mark),
                    "tract lengths need `network.speed_mm_per_ms`, the conduction speed (delays are length / speed)",
                ));
            }
            (None, Some(mark)) => {
                return Err(SpecError::new(
                    "network.speed_mm_per_ms",
                    Some(mark),
                    "a conduction speed needs `network.tract_lengths_mm` (without lengths there are no delays)",
                ));
            }
            _ => {}
        }
        if self.spec.adaptive.is_some() {
            return Err(at(
                node,
                "network",
                "network runs take a fixed step: remove `simulation.adaptive`",
            ));
        }
        let dts = self.spec.dt_values();
        let fc_path = "network.fc_sample_ms";
        if net.fc_sample_ms <= 0.0 {
            return Err(SpecError::new(
                fc_path,
                fc_sample_mark,
                format!("fc_sample_ms must be > 0, got {}", net.fc_sample_ms),
            ));
        }
        let given = if fc_sample_mark.is_some() {
            ""
        } else {
            ", the default"
        };
        whole_steps_of_every_dt("fc_sample_ms", given, net.fc_sample_ms, 1, &dts)
            .map_err(|m| SpecError::new(fc_path, fc_sample_mark.or(Some(node.mark)), m))?;
        let window = self.spec.duration_ms - self.spec.transient_ms;
        if net.fc_sample_ms > window {
            return Err(SpecError::new(
                fc_path,
                fc_sample_mark.or(Some(node.mark)),
                format!(
                    "fc_sample_ms ({}) must not exceed duration_ms - transient_ms ({window}): FC needs at least two samples",
                    net.fc_sample_ms
                ),
            ));
        }
        self.spec.network = Some(net);
        Ok(())
    }
}

impl Spec {
    /// Reads the files the spec names (paths relative to `base_dir`, the spec file's
    /// folder) and checks them against each other and the sweep. Nothing to do for single
    /// nodes. Runs of a network need this first.
    pub fn load_files(&mut self, base_dir: &Path) -> Result<(), SpecError> {
        let Some(net) = &self.network else {
            return Ok(());
        };
        let resolve = |f: &FileKey| base_dir.join(&f.path);
        let mut sha = Sha256::new();
        let mut files = Vec::new();
        // Each file is read once: hashed (key, length, bytes) and parsed from those bytes.
        let mut read = |f: &FileKey| -> Result<DataFile, SpecError> {
            let file = DataFile::read(&resolve(f))
                .map_err(|e| f.error(format!("cannot read {}: {}", e.path.display(), e.problem)))?;
            sha.update(f.key.as_bytes());
            sha.update((file.bytes.len() as u64).to_le_bytes());
            sha.update(&file.bytes);
            files.push(SourceFile {
                path: f.path.clone(),
                bytes: file.bytes.clone(),
            });
            Ok(file)
        };
        let matrix = |f: &FileKey, file: &DataFile| -> Result<Matrix, SpecError> {
            file.matrix().map_err(|e| f.error(e))
        };
        let weights = matrix(&net.weights, &read(&net.weights)?)?;
        let lengths = match &net.tract_lengths_mm {
            Some(f) => Some(matrix(f, &read(f)?)?),
            None => None,
        };
        let connectome = Connectome::new(&weights, lengths.as_ref()).map_err(|e| {
            // Shape and value problems of the lengths are named at their key.
            let about_lengths = matches!(
                e,
                ConnectomeError::ShapeMismatch { .. }
                    | ConnectomeError::NegativeLength { .. }
                    | ConnectomeError::NotFinite {
                        what: "tract lengths",
                        ..
                    }
            );
            let culprit = match (&net.tract_lengths_mm, about_lengths) {
                (Some(f), true) => f,
                _ => &net.weights,
            };
            culprit.error(format!("{}: {e}", resolve(culprit).display()))
        })?;
        let n = connectome.nodes();
        let per_node = |f: &FileKey, file: &DataFile, what: &str| -> Result<Vec<f64>, SpecError> {
            let v = file.vector().map_err(|e| f.error(e))?;
            if v.len() != n {
                return Err(f.error(format!(
                    "{}: {} values, but the network has {n} nodes (one {what} per node)",
                    resolve(f).display(),
                    v.len()
                )));
            }
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(f.error(format!(
                    "{}: value {} of node {i} is not finite",
                    resolve(f).display(),
                    v[i]
                )));
            }
            Ok(v)
        };
        let names = match &net.node_names {
            Some(f) => {
                let names = read(f)?.names().map_err(|e| f.error(e))?;
                if names.len() != n {
                    return Err(f.error(format!(
                        "{}: {} names, but the network has {n} nodes",
                        resolve(f).display(),
                        names.len()
                    )));
                }
                Some(names)
            }
            None => None,
        };
        let fc_target = match &net.fc_target {
            Some(f) => {
                let m = matrix(f, &read(f)?)?;
                if (m.rows, m.cols) != (n, n) {
                    return Err(f.error(format!(
                        "{}: a {} x {} matrix, but the network has {n} nodes (expected {n} x {n})",
                        resolve(f).display(),
                        m.rows,
                        m.cols
                    )));
                }
                let mut upper = Vec::with_capacity(n * n.saturating_sub(1) / 2);
                for i in 0..n {
                    for j in i + 1..n {
                        let x = m.get(i, j);
                        if !x.is_finite() {
                            return Err(f.error(format!(
                                "{}: entry ({i}, {j}) is {x}, not a finite number",
                                resolve(f).display()
                            )));
                        }
                        upper.push(x);
                    }
                }
                if n < 3 {
                    return Err(f.error(
                        "comparing FC needs at least 3 nodes (a correlation over node pairs)",
                    ));
                }
                Some(upper)
            }
            None => None,
        };
        let mut offsets = Vec::new();
        for (slot, f) in &net.node_offsets {
            let v = per_node(f, &read(f)?, "offset")?;
            let (lo, _) = self
                .param(*slot)
                .expect("node parameters have defaults")
                .axis
                .range();
            let least = v.iter().cloned().fold(f64::INFINITY, f64::min);
            let bad = match slot {
                Slot::TauMs => (lo + least <= 0.0).then_some("tau_ms must be > 0"),
                Slot::Delta => (lo + least < 0.0).then_some("delta must be >= 0"),
                _ => None,
            };
            if let Some(rule) = bad {
                return Err(f.error(format!(
                    "{}: with offset {least} the smallest value is {}, but {rule} at every node",
                    resolve(f).display(),
                    lo + least
                )));
            }
            offsets.push((*slot, v));
        }
        self.check_history(&connectome)?;
        let sha256 = format!("{:x}", sha.finalize());
        let data = NetworkData {
            connectome,
            names,
            fc_target,
            offsets,
            sha256,
            files,
        };
        self.network.as_mut().expect("checked above").data = Some(Arc::new(data));
        Ok(())
    }

    /// Whether runs compute functional connectivity: a network with `output.fc` or an
    /// `fc_target`.
    pub fn computes_fc(&self) -> bool {
        self.network
            .as_ref()
            .is_some_and(|n| self.fc_output || n.fc_target.is_some())
    }

    /// The loaded network, for a spec with a `network` section after [`Spec::load_files`].
    pub fn network_data(&self) -> Option<&NetworkData> {
        self.network.as_ref().and_then(|n| n.data.as_deref())
    }

    /// Refuses delays whose ring buffer of past rates would not fit in memory.
    fn check_history(&self, connectome: &Connectome) -> Result<(), SpecError> {
        let Some(lengths) = &self
            .network
            .as_ref()
            .and_then(|n| n.tract_lengths_mm.clone())
        else {
            return Ok(());
        };
        let speed = self
            .param(Slot::SpeedMmPerMs)
            .expect("lengths come with a speed");
        let (slowest, _) = speed.axis.range();
        let dt = self.dt_values().into_iter().fold(f64::INFINITY, f64::min);
        let groups = connectome.nodes().div_ceil(NODES_PER_GROUP) as u64;
        let steps = delay_steps(connectome.max_length_mm(), slowest, dt);
        let bytes = steps.map(|d| (d as u64 + 1) * groups * LANES as u64 * 8);
        match bytes {
            Some(b) if b <= MAX_HISTORY_BYTES => Ok(()),
            _ => Err(SpecError::new(
                "network.speed_mm_per_ms",
                speed.mark,
                format!(
                    "the longest tract ({} mm) at speed {slowest} mm/ms and dt_ms {dt} is a delay of {} steps: the history of a batch of {NET_LANES} runs would take more than {} GiB; use a faster speed or a larger step ({} holds the longest tract length)",
                    connectome.max_length_mm(),
                    steps.map_or("too many".to_string(), |d| d.to_string()),
                    MAX_HISTORY_BYTES >> 30,
                    lengths.path
                ),
            )),
        }
    }
}
