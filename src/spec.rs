//! The sweep spec: YAML text → validated [`Spec`].
//!
//! Validation walks the positioned YAML tree of [`crate::yaml`], so every error names the key
//! path and the line/column it refers to. Nothing runs until the whole spec is valid.

use std::fmt;

use crate::axis::Axis;
use crate::yaml::{self, Key, Node, Value};

/// A position in the spec text (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub line: usize,
    pub col: usize,
}

/// A spec that cannot be run: which key, where, and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct SpecError {
    /// Dotted key path, e.g. `model.eta` or `sweep.zip[0]`; empty for the document itself.
    pub path: String,
    pub mark: Option<Mark>,
    pub message: String,
}

impl SpecError {
    pub fn new(path: &str, mark: Option<Mark>, message: impl Into<String>) -> SpecError {
        SpecError {
            path: path.to_string(),
            mark,
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "spec"
        } else {
            &self.path
        };
        match self.mark {
            Some(m) => write!(
                f,
                "{path} (line {}, column {}): {}",
                m.line, m.col, self.message
            ),
            None => write!(f, "{path}: {}", self.message),
        }
    }
}

/// Every numeric parameter a run can have. The column name is the spec key path with dots
/// as underscores, the leading `model.`/`simulation.` dropped and the form name (`white`,
/// `ou`, `step`, `pulse`, `sine`) left out: `input.v.pulse.amplitude` is `input_v_amplitude`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    TauMs,
    Eta,
    J,
    Delta,
    InputRHz,
    InputRHzAtMs,
    InputRHzBefore,
    InputRHzAfter,
    InputRHzStartMs,
    InputRHzStopMs,
    InputRHzAmplitude,
    InputRHzFreqHz,
    InputRHzPhase,
    InputRHzOffset,
    InputV,
    InputVAtMs,
    InputVBefore,
    InputVAfter,
    InputVStartMs,
    InputVStopMs,
    InputVAmplitude,
    InputVFreqHz,
    InputVPhase,
    InputVOffset,
    NoiseRHzSigma,
    NoiseRHzTauMs,
    NoiseVSigma,
    NoiseVTauMs,
    InitRHz,
    InitV,
    DtMs,
}

impl Slot {
    /// All slots, in the order of the summary's parameter columns.
    pub const ALL: [Slot; 31] = [
        Slot::TauMs,
        Slot::Eta,
        Slot::J,
        Slot::Delta,
        Slot::InputRHz,
        Slot::InputRHzAtMs,
        Slot::InputRHzBefore,
        Slot::InputRHzAfter,
        Slot::InputRHzStartMs,
        Slot::InputRHzStopMs,
        Slot::InputRHzAmplitude,
        Slot::InputRHzFreqHz,
        Slot::InputRHzPhase,
        Slot::InputRHzOffset,
        Slot::InputV,
        Slot::InputVAtMs,
        Slot::InputVBefore,
        Slot::InputVAfter,
        Slot::InputVStartMs,
        Slot::InputVStopMs,
        Slot::InputVAmplitude,
        Slot::InputVFreqHz,
        Slot::InputVPhase,
        Slot::InputVOffset,
        Slot::NoiseRHzSigma,
        Slot::NoiseRHzTauMs,
        Slot::NoiseVSigma,
        Slot::NoiseVTauMs,
        Slot::InitRHz,
        Slot::InitV,
        Slot::DtMs,
    ];

    /// Column name in the output, also the name used in `sweep.zip`.
    pub fn column(self) -> &'static str {
        match self {
            Slot::TauMs => "tau_ms",
            Slot::Eta => "eta",
            Slot::J => "J",
            Slot::Delta => "delta",
            Slot::InputRHz => "input_r_hz",
            Slot::InputRHzAtMs => "input_r_hz_at_ms",
            Slot::InputRHzBefore => "input_r_hz_before",
            Slot::InputRHzAfter => "input_r_hz_after",
            Slot::InputRHzStartMs => "input_r_hz_start_ms",
            Slot::InputRHzStopMs => "input_r_hz_stop_ms",
            Slot::InputRHzAmplitude => "input_r_hz_amplitude",
            Slot::InputRHzFreqHz => "input_r_hz_freq_hz",
            Slot::InputRHzPhase => "input_r_hz_phase",
            Slot::InputRHzOffset => "input_r_hz_offset",
            Slot::InputV => "input_v",
            Slot::InputVAtMs => "input_v_at_ms",
            Slot::InputVBefore => "input_v_before",
            Slot::InputVAfter => "input_v_after",
            Slot::InputVStartMs => "input_v_start_ms",
            Slot::InputVStopMs => "input_v_stop_ms",
            Slot::InputVAmplitude => "input_v_amplitude",
            Slot::InputVFreqHz => "input_v_freq_hz",
            Slot::InputVPhase => "input_v_phase",
            Slot::InputVOffset => "input_v_offset",
            Slot::NoiseRHzSigma => "noise_r_hz_sigma",
            Slot::NoiseRHzTauMs => "noise_r_hz_tau_ms",
            Slot::NoiseVSigma => "noise_v_sigma",
            Slot::NoiseVTauMs => "noise_v_tau_ms",
            Slot::InitRHz => "init_r_hz",
            Slot::InitV => "init_v",
            Slot::DtMs => "dt_ms",
        }
    }

    fn from_column(name: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| s.column() == name)
    }

    /// The slot of an input form's parameter (`input.<var>.<form>.<key>`).
    pub fn input(var: Var, key: &str) -> Option<Slot> {
        let name = format!("input_{}_{key}", var.name());
        Slot::from_column(&name)
    }

    /// The slot of a noise parameter (`noise.<var>.<kind>.<key>`).
    pub fn noise(var: Var, key: &str) -> Option<Slot> {
        Slot::from_column(&format!("noise_{}_{key}", var.name()))
    }
}

/// The two state variables, as they are named in the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    RHz = 0,
    V = 1,
}

impl Var {
    pub const BOTH: [Var; 2] = [Var::RHz, Var::V];

    pub fn name(self) -> &'static str {
        match self {
            Var::RHz => "r_hz",
            Var::V => "v",
        }
    }

    fn parse(key: &str) -> Var {
        if key == "r_hz" { Var::RHz } else { Var::V }
    }

    /// The slot of the constant input on this variable.
    pub fn input_slot(self) -> Slot {
        match self {
            Var::RHz => Slot::InputRHz,
            Var::V => Slot::InputV,
        }
    }
}

/// The time course of an input (DESIGN.md section 2), evaluated at each step's start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputForm {
    /// `input.<var>: x` (default 0).
    Constant,
    /// `{step: {at_ms, before, after}}`: `before` for t < at_ms, then `after`.
    Step,
    /// `{pulse: {start_ms, stop_ms, amplitude}}`: `amplitude` for start_ms <= t < stop_ms.
    Pulse,
    /// `{sine: {amplitude, freq_hz, phase, offset}}`: `offset + amplitude sin(2 pi freq t + phase)`.
    Sine,
}

impl InputForm {
    /// The keys of the form, with defaults for the optional ones.
    fn keys(self) -> &'static [(&'static str, Option<f64>)] {
        match self {
            InputForm::Constant => &[],
            InputForm::Step => &[("at_ms", None), ("before", Some(0.0)), ("after", None)],
            InputForm::Pulse => &[("start_ms", None), ("stop_ms", None), ("amplitude", None)],
            InputForm::Sine => &[
                ("amplitude", None),
                ("freq_hz", None),
                ("phase", Some(0.0)),
                ("offset", Some(0.0)),
            ],
        }
    }
}

/// Noise on one variable (DESIGN.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseKind {
    None,
    /// Additive Wiener noise on the state, `sigma` per sqrt(ms).
    White,
    /// An Ornstein–Uhlenbeck input with stationary std `sigma` and correlation `tau_ms`.
    Ou,
}

/// One numeric parameter: its slot, its values and where the spec set it.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub slot: Slot,
    pub axis: Axis,
    /// `None` for a default the spec did not mention.
    pub mark: Option<Mark>,
}

/// How a run's initial value of a variable is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitDist {
    /// The value of the `init_r_hz`/`init_v` parameter (a number or an axis).
    Param,
    /// Drawn uniformly from `[lo, hi)`.
    Uniform { lo: f64, hi: f64 },
    /// Drawn from a normal distribution.
    Normal { mean: f64, std: f64 },
}

pub use crate::integrate::Method;

/// Which runs record traces.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceRuns {
    None,
    All,
    Every(u64),
    /// Sorted, without duplicates.
    Ids(Vec<u64>),
}

impl TraceRuns {
    pub fn contains(&self, run_id: u64) -> bool {
        match self {
            TraceRuns::None => false,
            TraceRuns::All => true,
            TraceRuns::Every(k) => run_id.is_multiple_of(*k),
            TraceRuns::Ids(ids) => ids.binary_search(&run_id).is_ok(),
        }
    }
}

/// Trace output: one row every `stride` steps for the selected runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Traces {
    pub every_ms: f64,
    pub runs: TraceRuns,
}

/// A validated sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The YAML text as given (copied to the output directory and metadata).
    pub text: String,
    pub name: Option<String>,
    /// Every parameter exactly once: first those the spec mentions, in document order,
    /// then defaults. Axis order for point ids is the order of the swept ones here.
    pub params: Vec<Param>,
    pub init_r_hz: InitDist,
    pub init_v: InitDist,
    /// Input form on r and v, indexed by [`Var`].
    pub input: [InputForm; 2],
    /// Noise on r and v, indexed by [`Var`].
    pub noise: [NoiseKind; 2],
    pub duration_ms: f64,
    pub transient_ms: f64,
    pub method: Method,
    pub seed: u64,
    pub replicates: u32,
    /// Groups of slots that advance together.
    pub zip: Vec<Vec<Slot>>,
    pub traces: Option<Traces>,
}

/// The most steps a run may have: step counts stay exact in f64.
pub const MAX_STEPS: u64 = 1 << 53;

impl Spec {
    /// dt before defaults are filled in (validation runs before `finish` adds them).
    fn dt_ms_or_default(&self) -> f64 {
        self.param(Slot::DtMs).map_or(0.01, |p| p.axis.range().0)
    }

    /// The parameter in `slot`, if the run has it (noise sigmas exist only when asked for).
    pub fn param(&self, slot: Slot) -> Option<&Param> {
        self.params.iter().find(|p| p.slot == slot)
    }

    /// The values `dt_ms` takes: one, or each value of its axis.
    pub fn dt_values(&self) -> Vec<f64> {
        let axis = &self.param(Slot::DtMs).expect("dt_ms has a default").axis;
        (0..axis.len()).map(|i| axis.get(i)).collect()
    }

    /// Step counts of a run with step `dt_ms`.
    pub fn timing(&self, dt_ms: f64) -> Timing {
        Timing {
            steps: steps_to(self.duration_ms, dt_ms),
            first_stat_step: steps_to(self.transient_ms, dt_ms).max(1),
            trace_stride: self
                .traces
                .as_ref()
                .map_or(0, |t| (t.every_ms / dt_ms).round() as u64),
        }
    }

    /// The most steps any run of the sweep takes (at the smallest dt).
    pub fn max_steps(&self) -> u64 {
        self.dt_values()
            .into_iter()
            .map(|dt| self.timing(dt).steps)
            .max()
            .unwrap_or(0)
    }
}

/// Step counts of a run, which depend on its dt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// The smallest k with k*dt >= duration (up to rounding).
    pub steps: u64,
    /// First step whose post-step state enters the statistics (t >= transient_ms), >= 1.
    pub first_stat_step: u64,
    /// Steps between trace rows; 0 without traces.
    pub trace_stride: u64,
}

/// The most values `dt_ms` may take as an axis: every value gets its own lane batches.
pub const MAX_DT_VALUES: u64 = 10_000;

/// Smallest k with k*dt >= t, tolerating rounding in t/dt (500/0.01 = 50000.000000000004).
fn steps_to(t: f64, dt: f64) -> u64 {
    let x = t / dt;
    let nearest = x.round();
    if (x - nearest).abs() <= 1e-9 * nearest.max(1.0) {
        nearest as u64
    } else {
        x.ceil() as u64
    }
}

fn is_multiple(a: f64, b: f64) -> bool {
    let x = a / b;
    x.round() >= 1.0 && (x - x.round()).abs() <= 1e-9 * x.round()
}

impl std::str::FromStr for Spec {
    type Err = SpecError;
    fn from_str(text: &str) -> Result<Spec, SpecError> {
        parse(text)
    }
}

/// Parses and validates a spec.
pub fn parse(text: &str) -> Result<Spec, SpecError> {
    // The YAML reader stops at a NUL byte; refuse it rather than ignore what follows.
    if let Some(i) = text.find('\0') {
        let before = &text[..i];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        return Err(SpecError::new(
            "",
            Some(Mark { line, col }),
            "a NUL byte is not allowed in a spec",
        ));
    }
    // A UTF-8 byte order mark (as some Windows editors write) is not part of the document.
    let root = yaml::parse(text.strip_prefix('\u{feff}').unwrap_or(text))?;
    let mut b = SpecBuilder::new(text);
    let top = entries(
        &root,
        "",
        &[
            "name",
            "model",
            "init",
            "input",
            "noise",
            "simulation",
            "sweep",
            "output",
        ],
    )?;
    for (key, node) in top {
        match key.as_str() {
            "name" => b.spec.name = Some(string(node, "name")?),
            "model" => b.model(node)?,
            "init" => b.init(node)?,
            "input" => b.input(node)?,
            "noise" => b.noise(node)?,
            "simulation" => b.simulation(node)?,
            "sweep" => b.sweep(node)?,
            "output" => b.output(node)?,
            _ => unreachable!(),
        }
    }
    b.finish()
}

struct SpecBuilder {
    spec: Spec,
    zip_node: Option<Node>,
    traces_node: Option<Node>,
    transient_mark: Option<Mark>,
    duration_mark: Option<Mark>,
    method_mark: Option<Mark>,
    noise_marks: [Option<Mark>; 2],
}

impl SpecBuilder {
    fn new(text: &str) -> SpecBuilder {
        SpecBuilder {
            spec: Spec {
                text: text.to_string(),
                name: None,
                params: Vec::new(),
                init_r_hz: InitDist::Uniform { lo: 0.0, hi: 0.05 },
                init_v: InitDist::Uniform { lo: 0.0, hi: 0.05 },
                input: [InputForm::Constant; 2],
                noise: [NoiseKind::None; 2],
                duration_ms: 100.0,
                transient_ms: 0.0,
                method: Method::ExpEuler,
                seed: 0,
                replicates: 1,
                zip: Vec::new(),
                traces: None,
            },
            zip_node: None,
            traces_node: None,
            transient_mark: None,
            duration_mark: None,
            method_mark: None,
            noise_marks: [None; 2],
        }
    }

    fn push(&mut self, slot: Slot, node: &Node, path: &str) -> Result<&Axis, SpecError> {
        let axis = axis(node, path)?;
        self.spec.params.push(Param {
            slot,
            axis,
            mark: Some(node.mark),
        });
        Ok(&self.spec.params.last().unwrap().axis)
    }

    fn model(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "model", &["tau_ms", "eta", "J", "delta"])? {
            let path = yaml::join("model", key);
            match key.as_str() {
                "tau_ms" => {
                    let (lo, _) = self.push(Slot::TauMs, value, &path)?.range();
                    if lo <= 0.0 {
                        return Err(at(value, &path, format!("tau_ms must be > 0, got {lo}")));
                    }
                }
                "eta" => drop(self.push(Slot::Eta, value, &path)?),
                "J" => drop(self.push(Slot::J, value, &path)?),
                "delta" => {
                    let (lo, _) = self.push(Slot::Delta, value, &path)?.range();
                    if lo < 0.0 {
                        return Err(at(value, &path, format!("delta must be >= 0, got {lo}")));
                    }
                }
                _ => unreachable!(),
            }
        }
        Ok(())
    }

    fn init(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "init", &["r_hz", "v"])? {
            let path = yaml::join("init", key);
            let (slot, dist) = match key.as_str() {
                "r_hz" => (Slot::InitRHz, &mut self.spec.init_r_hz),
                _ => (Slot::InitV, &mut self.spec.init_v),
            };
            if let Value::Map(m) = &value.value
                && let [(form, args)] = m.as_slice()
                && (form == "uniform" || form == "normal")
            {
                let form_path = yaml::join(&path, form);
                let [a, b] = pair(args, &form_path)?;
                *dist = if form == "uniform" {
                    if a > b {
                        return Err(at(
                            args,
                            &form_path,
                            format!("uniform [lo, hi] needs lo <= hi, got [{a}, {b}]"),
                        ));
                    }
                    if !(b - a).is_finite() {
                        return Err(at(args, &form_path, "the range hi - lo overflows f64"));
                    }
                    InitDist::Uniform { lo: a, hi: b }
                } else {
                    if b < 0.0 {
                        return Err(at(
                            args,
                            &form_path,
                            format!("normal [mean, std] needs std >= 0, got {b}"),
                        ));
                    }
                    // Box-Muller normals stay below 8.6 in magnitude (uniforms >= 2^-53).
                    if !(a.abs() + 9.0 * b).is_finite() {
                        return Err(at(args, &form_path, "mean + 9 std overflows f64"));
                    }
                    InitDist::Normal { mean: a, std: b }
                };
            } else {
                *dist = InitDist::Param;
                self.push(slot, value, &path)
                    .map_err(|e| hint(e, "or {uniform: [lo, hi]} or {normal: [mean, std]}"))?;
            }
        }
        Ok(())
    }

    fn input(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "input", &["r_hz", "v"])? {
            let var = Var::parse(key);
            let path = yaml::join("input", key);
            let Value::Map(forms) = &value.value else {
                self.push(var.input_slot(), value, &path)
                    .map_err(|e| hint(e, "or {step: {..}}, {pulse: {..}} or {sine: {..}}"))?;
                continue;
            };
            let form = match forms.as_slice() {
                [(f, _)] if f == "step" => InputForm::Step,
                [(f, _)] if f == "pulse" => InputForm::Pulse,
                [(f, _)] if f == "sine" => InputForm::Sine,
                // An axis form (linspace, ...) or an error message about one.
                _ => {
                    self.push(var.input_slot(), value, &path)
                        .map_err(|e| hint(e, "or {step: {..}}, {pulse: {..}} or {sine: {..}}"))?;
                    continue;
                }
            };
            let (form_key, args) = (&forms[0].0, &forms[0].1);
            let form_path = yaml::join(&path, form_key);
            let allowed: Vec<&str> = form.keys().iter().map(|(k, _)| *k).collect();
            let given = entries(args, &form_path, &allowed)?;
            for &(k, default) in form.keys() {
                let slot = Slot::input(var, k).expect("input keys have slots");
                match given.iter().find(|(g, _)| g == k) {
                    Some((_, v)) => {
                        let p = yaml::join(&form_path, k);
                        let (lo, _) = self.push(slot, v, &p)?.range();
                        if k == "freq_hz" && lo < 0.0 {
                            return Err(at(v, &p, format!("freq_hz must be >= 0, got {lo}")));
                        }
                    }
                    None => match default {
                        Some(d) => self.spec.params.push(Param {
                            slot,
                            axis: Axis::Fixed(d),
                            mark: None,
                        }),
                        None => {
                            return Err(at(args, &form_path, format!("{form_key} needs `{k}`")));
                        }
                    },
                }
            }
            self.spec.input[var as usize] = form;
        }
        Ok(())
    }

    fn noise(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "noise", &["r_hz", "v"])? {
            let var = Var::parse(key);
            let path = yaml::join("noise", key);
            let kinds = entries(value, &path, &["white", "ou"])?;
            let [(kind_key, args)] = kinds else {
                return Err(at(
                    value,
                    &path,
                    "give one of white: {sigma} or ou: {sigma, tau_ms}",
                ));
            };
            let kind_path = yaml::join(&path, kind_key);
            let (kind, keys): (NoiseKind, &[&str]) = if kind_key == "white" {
                (NoiseKind::White, &["sigma"])
            } else {
                (NoiseKind::Ou, &["sigma", "tau_ms"])
            };
            let given = entries(args, &kind_path, keys)?;
            for &k in keys {
                let Some((_, v)) = given.iter().find(|(g, _)| g == k) else {
                    return Err(at(
                        args,
                        &kind_path,
                        format!("{kind_key} noise needs `{k}`"),
                    ));
                };
                let p = yaml::join(&kind_path, k);
                let slot = Slot::noise(var, k).expect("noise keys have slots");
                let (lo, _) = self.push(slot, v, &p)?.range();
                if k == "sigma" && lo < 0.0 {
                    return Err(at(v, &p, format!("sigma must be >= 0, got {lo}")));
                }
                if k == "tau_ms" && lo <= 0.0 {
                    return Err(at(v, &p, format!("tau_ms must be > 0, got {lo}")));
                }
            }
            self.spec.noise[var as usize] = kind;
            self.noise_marks[var as usize] = Some(kind_key.mark);
        }
        Ok(())
    }

    fn simulation(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(
            node,
            "simulation",
            &["dt_ms", "duration_ms", "transient_ms", "method"],
        )? {
            let path = yaml::join("simulation", key);
            match key.as_str() {
                "dt_ms" => {
                    let axis = self.push(Slot::DtMs, value, &path)?;
                    let (lo, _) = axis.range();
                    if axis.len() > MAX_DT_VALUES {
                        return Err(at(
                            value,
                            &path,
                            format!("dt_ms takes at most {MAX_DT_VALUES} values"),
                        ));
                    }
                    if lo <= 0.0 {
                        return Err(at(value, &path, format!("dt_ms must be > 0, got {lo}")));
                    }
                }
                "duration_ms" => {
                    self.spec.duration_ms = number(value, &path)?;
                    self.duration_mark = Some(value.mark);
                    if self.spec.duration_ms <= 0.0 {
                        return Err(at(value, &path, "duration_ms must be > 0"));
                    }
                }
                "transient_ms" => {
                    self.spec.transient_ms = number(value, &path)?;
                    self.transient_mark = Some(value.mark);
                    if self.spec.transient_ms < 0.0 {
                        return Err(at(value, &path, "transient_ms must be >= 0"));
                    }
                }
                "method" => {
                    self.method_mark = Some(value.mark);
                    let name = string(value, &path)?;
                    self.spec.method = Method::from_name(&name).ok_or_else(|| {
                        at(
                            value,
                            &path,
                            format!(
                                "unknown method `{name}`; expected one of {}",
                                Method::ALL.map(Method::name).join(", ")
                            ),
                        )
                    })?;
                }
                _ => unreachable!(),
            }
        }
        Ok(())
    }

    fn sweep(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "sweep", &["seed", "replicates", "zip"])? {
            let path = yaml::join("sweep", key);
            match key.as_str() {
                "seed" => self.spec.seed = integer(value, &path, u64::MAX)?,
                "replicates" => {
                    self.spec.replicates = integer(value, &path, u32::MAX as u64)? as u32;
                    if self.spec.replicates == 0 {
                        return Err(at(value, &path, "replicates must be >= 1"));
                    }
                }
                "zip" => self.zip_node = Some(value.clone()),
                _ => unreachable!(),
            }
        }
        Ok(())
    }

    fn output(&mut self, node: &Node) -> Result<(), SpecError> {
        for (key, value) in entries(node, "output", &["traces"])? {
            if key == "traces" && value.value != Value::Null {
                self.traces_node = Some(value.clone());
            }
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Spec, SpecError> {
        // Named at duration_ms when the spec gives it, else at dt_ms.
        let (step_path, step_mark) = match self.duration_mark {
            Some(m) => ("simulation.duration_ms", Some(m)),
            None => (
                "simulation.dt_ms",
                self.spec.param(Slot::DtMs).and_then(|p| p.mark),
            ),
        };
        let dt_min = self.spec.dt_ms_or_default();
        let steps = self.spec.duration_ms / dt_min;
        if steps > MAX_STEPS as f64 {
            return Err(SpecError::new(
                step_path,
                step_mark,
                format!("duration_ms / dt_ms = {steps:.3e} steps; at most 2^53 are supported"),
            ));
        }
        let dt_max = self
            .spec
            .param(Slot::DtMs)
            .map_or(0.01, |p| p.axis.range().1);
        if steps_to(self.spec.duration_ms, dt_max) == 0 {
            return Err(SpecError::new(
                step_path,
                step_mark,
                format!(
                    "duration_ms ({}) is shorter than one step (dt_ms {dt_max})",
                    self.spec.duration_ms
                ),
            ));
        }
        let defaults = [
            (Slot::TauMs, 1.0),
            (Slot::Eta, -5.0),
            (Slot::J, 15.0),
            (Slot::Delta, 1.0),
            (Slot::DtMs, 0.01),
        ];
        let constant_inputs = Var::BOTH
            .into_iter()
            .filter(|v| self.spec.input[*v as usize] == InputForm::Constant)
            .map(|v| (v.input_slot(), 0.0));
        for (slot, default) in defaults
            .into_iter()
            .chain(constant_inputs)
            .collect::<Vec<_>>()
        {
            if self.spec.param(slot).is_none() {
                self.spec.params.push(Param {
                    slot,
                    axis: Axis::Fixed(default),
                    mark: None,
                });
            }
        }
        if matches!(self.spec.method, Method::Rk4 | Method::Dopri5) {
            for var in Var::BOTH {
                if self.spec.noise[var as usize] == NoiseKind::White {
                    return Err(SpecError::new(
                        &format!("noise.{}.white", var.name()),
                        self.noise_marks[var as usize],
                        format!(
                            "white noise cannot be used with method {} (no strong-order scheme here); use heun, rk2, euler or exp_euler, or ou noise",
                            self.spec.method.name()
                        ),
                    ));
                }
            }
        }
        if self.spec.transient_ms >= self.spec.duration_ms {
            return Err(SpecError::new(
                "simulation.transient_ms",
                self.transient_mark,
                format!(
                    "transient_ms ({}) must be smaller than duration_ms ({})",
                    self.spec.transient_ms, self.spec.duration_ms
                ),
            ));
        }
        if let Some(node) = self.zip_node.take() {
            self.spec.zip = self.zip(&node)?;
        }
        if let Some(node) = self.traces_node.take() {
            self.spec.traces = Some(self.traces(&node)?);
        }
        Ok(self.spec)
    }

    fn zip(&self, node: &Node) -> Result<Vec<Vec<Slot>>, SpecError> {
        let Value::Seq(groups) = &node.value else {
            return Err(at(
                node,
                "sweep.zip",
                format!(
                    "expected a list of lists of axis names, got {}",
                    node.value.kind()
                ),
            ));
        };
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let gpath = format!("sweep.zip[{g}]");
            let Value::Seq(names) = &group.value else {
                return Err(at(
                    group,
                    &gpath,
                    format!("expected a list of axis names, got {}", group.value.kind()),
                ));
            };
            if names.len() < 2 {
                return Err(at(group, &gpath, "a zip group needs at least two axes"));
            }
            let mut slots = Vec::new();
            let mut len = None;
            for (i, name_node) in names.iter().enumerate() {
                let npath = format!("{gpath}[{i}]");
                let name = string(name_node, &npath)?;
                let slot = Slot::from_column(&name).ok_or_else(|| {
                    at(name_node, &npath, format!("unknown parameter `{name}` (names are column names such as eta, J, delta, noise_v_sigma, init_r_hz)"))
                })?;
                let param = self
                    .spec
                    .param(slot)
                    .filter(|p| p.axis.is_swept())
                    .ok_or_else(|| {
                        at(
                            name_node,
                            &npath,
                            format!("`{name}` is not an axis in this spec"),
                        )
                    })?;
                if seen.contains(&slot) {
                    return Err(at(
                        name_node,
                        &npath,
                        format!("`{name}` appears in more than one zip position"),
                    ));
                }
                seen.push(slot);
                let n = param.axis.len();
                match len {
                    None => len = Some((n, name)),
                    Some((m, ref first)) if m != n => {
                        return Err(at(
                            name_node,
                            &npath,
                            format!(
                                "zipped axes need equal lengths: `{first}` has {m} values, `{name}` has {n}"
                            ),
                        ));
                    }
                    _ => {}
                }
                slots.push(slot);
            }
            out.push(slots);
        }
        Ok(out)
    }

    fn traces(&self, node: &Node) -> Result<Traces, SpecError> {
        let mut every_ms = None;
        let mut runs = TraceRuns::None;
        let dts = self.spec.dt_values();
        for (key, value) in entries(node, "output.traces", &["every_ms", "runs"])? {
            let path = yaml::join("output.traces", key);
            if key == "every_ms" {
                let e = number(value, &path)?;
                if let Some(dt) = dts.iter().find(|&&dt| e <= 0.0 || !is_multiple(e, dt)) {
                    return Err(at(
                        value,
                        &path,
                        format!("every_ms ({e}) must be a positive multiple of dt_ms ({dt})"),
                    ));
                }
                every_ms = Some(e);
            } else {
                runs = trace_runs(value, &path)?;
            }
        }
        let every_ms = match (every_ms, dts.as_slice()) {
            (Some(e), _) => e,
            (None, [dt]) => *dt,
            (None, _) => {
                return Err(at(
                    node,
                    "output.traces",
                    "with dt_ms as an axis, give every_ms (a multiple of every dt value)",
                ));
            }
        };
        Ok(Traces { every_ms, runs })
    }
}

fn trace_runs(node: &Node, path: &str) -> Result<TraceRuns, SpecError> {
    let expected = "expected none, all, {every: k} or {ids: [..]}";
    match &node.value {
        Value::String(s) if s == "none" => Ok(TraceRuns::None),
        Value::String(s) if s == "all" => Ok(TraceRuns::All),
        Value::Null => Ok(TraceRuns::None),
        Value::Map(m) if m.len() == 1 && m[0].0 == "every" => {
            let p = yaml::join(path, "every");
            let k = integer(&m[0].1, &p, u64::MAX)?;
            if k == 0 {
                return Err(at(&m[0].1, &p, "every must be >= 1"));
            }
            Ok(TraceRuns::Every(k))
        }
        Value::Map(m) if m.len() == 1 && m[0].0 == "ids" => {
            let p = yaml::join(path, "ids");
            let Value::Seq(items) = &m[0].1.value else {
                return Err(at(&m[0].1, &p, "expected a list of run ids"));
            };
            let mut ids = items
                .iter()
                .enumerate()
                .map(|(i, n)| integer(n, &format!("{p}[{i}]"), u64::MAX))
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort_unstable();
            ids.dedup();
            Ok(TraceRuns::Ids(ids))
        }
        other => Err(at(node, path, format!("{expected}, got {}", other.kind()))),
    }
}

fn at(node: &Node, path: &str, message: impl Into<String>) -> SpecError {
    SpecError::new(path, Some(node.mark), message)
}

/// Adds the other accepted forms to an "expected a number, ..." message, before its
/// ", got ..." part.
fn hint(mut e: SpecError, extra: &str) -> SpecError {
    if e.message.starts_with("expected a number")
        && let Some(i) = e.message.find(", got ")
    {
        e.message.insert_str(i, &format!(", {extra}"));
    }
    e
}

/// The entries of a mapping (null counts as empty), refusing keys not in `allowed`.
fn entries<'a>(
    node: &'a Node,
    path: &str,
    allowed: &[&str],
) -> Result<&'a [(Key, Node)], SpecError> {
    match &node.value {
        Value::Null => Ok(&[]),
        Value::Map(entries) => {
            for (key, _) in entries {
                if !allowed.contains(&key.as_str()) {
                    return Err(SpecError::new(
                        &yaml::join(path, key),
                        Some(key.mark),
                        format!(
                            "unknown key `{key}`; expected one of: {}",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            Ok(entries)
        }
        other => Err(at(
            node,
            path,
            format!(
                "expected a mapping with keys {}, got {}",
                allowed.join(", "),
                other.kind()
            ),
        )),
    }
}

fn number(node: &Node, path: &str) -> Result<f64, SpecError> {
    match &node.value {
        Value::Number { value, .. } if value.is_nan() => Err(at(node, path, "NaN is not allowed")),
        Value::Number { value, .. } if value.is_infinite() => {
            Err(at(node, path, "infinite values are not allowed"))
        }
        Value::Number { value, .. } => Ok(*value),
        other => Err(at(
            node,
            path,
            format!("expected a number, got {}", other.kind()),
        )),
    }
}

fn integer(node: &Node, path: &str, max: u64) -> Result<u64, SpecError> {
    let bad = || {
        at(
            node,
            path,
            format!("expected a whole number from 0 to {max}"),
        )
    };
    match &node.value {
        Value::Number { text, value } => {
            let parsed = text.parse::<u64>().ok().or_else(|| {
                (value.fract() == 0.0 && *value >= 0.0 && *value < 2f64.powi(53))
                    .then_some(*value as u64)
            });
            parsed.filter(|v| *v <= max).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

fn string(node: &Node, path: &str) -> Result<String, SpecError> {
    match &node.value {
        Value::String(s) => Ok(s.clone()),
        other => Err(at(
            node,
            path,
            format!("expected a string, got {}", other.kind()),
        )),
    }
}

fn pair(node: &Node, path: &str) -> Result<[f64; 2], SpecError> {
    match &node.value {
        Value::Seq(items) if items.len() == 2 => Ok([
            number(&items[0], &format!("{path}[0]"))?,
            number(&items[1], &format!("{path}[1]"))?,
        ]),
        _ => Err(at(node, path, "expected a list of two numbers")),
    }
}

/// Reads a number or an axis form.
fn axis(node: &Node, path: &str) -> Result<Axis, SpecError> {
    let axis = axis_form(node, path)?;
    // The forms are monotone, so the ends and their neighbours show any overflow (a
    // linspace from -1e308 to 1e308 has an infinite step).
    let n = axis.len();
    if [0, 1, n.saturating_sub(2), n - 1]
        .into_iter()
        .any(|i| i < n && !axis.get(i).is_finite())
    {
        return Err(at(
            node,
            path,
            "the axis has values beyond the range of f64",
        ));
    }
    Ok(axis)
}

fn axis_form(node: &Node, path: &str) -> Result<Axis, SpecError> {
    match &node.value {
        Value::Number { .. } => Ok(Axis::Fixed(number(node, path)?)),
        Value::Seq(items) => {
            if items.is_empty() {
                return Err(at(node, path, "an axis needs at least one value"));
            }
            let values = items
                .iter()
                .enumerate()
                .map(|(i, n)| number(n, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Axis::List(values))
        }
        Value::Map(m)
            if m.len() == 1 && matches!(m[0].0.as_str(), "linspace" | "geomspace" | "arange") =>
        {
            let (form, args) = (&m[0].0, &m[0].1);
            let fpath = yaml::join(path, form);
            let Value::Seq(items) = &args.value else {
                return Err(at(
                    args,
                    &fpath,
                    format!(
                        "expected [start, stop, {}]",
                        if form == "arange" { "step" } else { "num" }
                    ),
                ));
            };
            if items.len() != 3 {
                return Err(at(
                    args,
                    &fpath,
                    format!("expected three numbers, got {}", items.len()),
                ));
            }
            let start = number(&items[0], &format!("{fpath}[0]"))?;
            let stop = number(&items[1], &format!("{fpath}[1]"))?;
            if form == "arange" {
                let step = number(&items[2], &format!("{fpath}[2]"))?;
                return Axis::arange(start, stop, step).map_err(|m| at(args, &fpath, m));
            }
            let num = integer(&items[2], &format!("{fpath}[2]"), 1 << 53)?;
            if num == 0 {
                return Err(at(
                    &items[2],
                    &format!("{fpath}[2]"),
                    "an axis needs at least one value (num >= 1)",
                ));
            }
            if form == "linspace" {
                Ok(Axis::Linspace { start, stop, num })
            } else {
                if start == 0.0 || stop == 0.0 || (start < 0.0) != (stop < 0.0) {
                    return Err(at(
                        args,
                        &fpath,
                        "geomspace needs start and stop non-zero and of the same sign",
                    ));
                }
                Ok(Axis::Geomspace { start, stop, num })
            }
        }
        other => Err(at(
            node,
            path,
            format!(
                "expected a number, a list, or {{linspace|geomspace|arange: [..]}}, got {}",
                other.kind()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> SpecError {
        parse(text).unwrap_err()
    }

    #[test]
    fn defaults_make_an_empty_spec_one_run() {
        let s = parse("").unwrap();
        assert_eq!(
            (
                s.timing(0.01).steps,
                s.timing(0.01).first_stat_step,
                s.replicates
            ),
            (10_000, 1, 1)
        );
        assert_eq!(s.param(Slot::Eta).unwrap().axis, Axis::Fixed(-5.0));
        assert_eq!(s.init_r_hz, InitDist::Uniform { lo: 0.0, hi: 0.05 });
        assert!(s.param(Slot::InitRHz).is_none() && s.param(Slot::NoiseVSigma).is_none());
    }

    #[test]
    fn overflowing_axes_and_step_counts_are_refused() {
        let e = err("model:\n  eta: {linspace: [-1e308, 1e308, 3]}\n");
        assert_eq!(
            (e.path.as_str(), e.mark),
            ("model.eta", Some(Mark { line: 2, col: 8 }))
        );
        let e = err("simulation:\n  duration_ms: 1e300\n");
        assert_eq!(e.path, "simulation.duration_ms");
        assert!(e.message.contains("2^53"), "{e}");
    }

    #[test]
    fn a_byte_order_mark_is_ignored_and_keys_are_located() {
        assert!(parse("\u{feff}model: {eta: -4}\n").is_ok());
        let e = err("model:\n  eta: 1\n  foo: 2\n");
        assert_eq!(
            (e.path.as_str(), e.mark),
            ("model.foo", Some(Mark { line: 3, col: 3 }))
        );
    }

    #[test]
    fn steps_tolerate_rounding_of_duration_over_dt() {
        let s = parse("simulation: {dt_ms: 0.01, duration_ms: 500, transient_ms: 100}\n").unwrap();
        let t = s.timing(0.01);
        assert_eq!((t.steps, t.first_stat_step), (50_000, 10_000));
        let s = parse("simulation: {dt_ms: 0.01, duration_ms: 1.234}\n").unwrap();
        assert_eq!(s.max_steps(), 124);
    }
}
