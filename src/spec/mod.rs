//! The sweep spec: YAML text → validated [`Spec`].
//!
//! Owns everything between the user's file and a [`Spec`]: [`yaml`] reads the text into a
//! tree that keeps every key's line and column, `read` turns nodes into numbers and
//! [`axis`] forms, the builder validates section by section and fills defaults, and
//! [`SpecError`] names the key path and position of whatever is wrong. Nothing runs until
//! the whole spec is valid.

pub mod axis;
mod builder;
mod error;
mod network;
mod read;
mod steps;
mod suggest;
pub mod yaml;

pub use error::{Mark, SpecError};
pub use network::{FileKey, History, NetworkData, NetworkSpec, SourceFile};

use axis::Axis;
use builder::SpecBuilder;
use read::{entries, string};
use steps::{steps_to, whole_steps_of_every_dt};

/// Every numeric parameter a run can have. The column name is the spec key path with dots
/// as underscores, the leading `model.`/`simulation.` dropped and the form name (`white`,
/// `ou`, `step`, `pulse`, `sine`) left out: `input.v.pulse.amplitude` is `input_v_amplitude`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// `model.tau_ms`: membrane time constant in ms, > 0.
    TauMs,
    /// `model.eta`: mean excitability (dimensionless).
    Eta,
    /// `model.J`: synaptic weight (dimensionless).
    J,
    /// `model.delta`: half-width of the excitability distribution, >= 0.
    Delta,
    /// `input.r_hz` as a constant: I_r in Hz/ms.
    InputRHz,
    /// `input.r_hz.step.at_ms`: time of the step in ms.
    InputRHzAtMs,
    /// `input.r_hz.step.before`: I_r before the step, in Hz/ms.
    InputRHzBefore,
    /// `input.r_hz.step.after`: I_r from the step on, in Hz/ms.
    InputRHzAfter,
    /// `input.r_hz.pulse.start_ms`: pulse onset in ms (included).
    InputRHzStartMs,
    /// `input.r_hz.pulse.stop_ms`: pulse end in ms (excluded).
    InputRHzStopMs,
    /// `input.r_hz.pulse.amplitude` or `input.r_hz.sine.amplitude`, in Hz/ms.
    InputRHzAmplitude,
    /// `input.r_hz.sine.freq_hz`: sine frequency in Hz.
    InputRHzFreqHz,
    /// `input.r_hz.sine.phase`: sine phase in radians.
    InputRHzPhase,
    /// `input.r_hz.sine.offset`: value the sine oscillates around, in Hz/ms.
    InputRHzOffset,
    /// `input.v` as a constant: I_v (dimensionless).
    InputV,
    /// `input.v.step.at_ms`: time of the step in ms.
    InputVAtMs,
    /// `input.v.step.before`: I_v before the step.
    InputVBefore,
    /// `input.v.step.after`: I_v from the step on.
    InputVAfter,
    /// `input.v.pulse.start_ms`: pulse onset in ms (included).
    InputVStartMs,
    /// `input.v.pulse.stop_ms`: pulse end in ms (excluded).
    InputVStopMs,
    /// `input.v.pulse.amplitude` or `input.v.sine.amplitude`.
    InputVAmplitude,
    /// `input.v.sine.freq_hz`: sine frequency in Hz.
    InputVFreqHz,
    /// `input.v.sine.phase`: sine phase in radians.
    InputVPhase,
    /// `input.v.sine.offset`: value the sine oscillates around.
    InputVOffset,
    /// `noise.r_hz.<kind>.sigma`, >= 0: Hz per sqrt(ms) for white noise on r, the
    /// stationary std of I_r in Hz/ms for OU noise.
    NoiseRHzSigma,
    /// `noise.r_hz.ou.tau_ms`: correlation time of the OU input on r, in ms.
    NoiseRHzTauMs,
    /// `noise.v.<kind>.sigma`, >= 0: per sqrt(ms) for white noise on v, the
    /// stationary std of I_v for OU noise.
    NoiseVSigma,
    /// `noise.v.ou.tau_ms`: correlation time of the OU input on v, in ms.
    NoiseVTauMs,
    /// `init.r_hz` given as a number or axis: initial rate in Hz.
    InitRHz,
    /// `init.v` given as a number or axis: initial v.
    InitV,
    /// `simulation.dt_ms`: the fixed integration step in ms, > 0 (with
    /// `simulation.adaptive`, the first trial step).
    DtMs,
    /// `simulation.adaptive.rtol`: relative tolerance of the adaptive step, in (0, 1).
    Rtol,
    /// `simulation.adaptive.atol_r_hz`: absolute tolerance on r, in Hz, >= 0.
    AtolRHz,
    /// `simulation.adaptive.atol_v`: absolute tolerance on v, >= 0.
    AtolV,
    /// `network.k`: the global coupling of a network (dimensionless).
    K,
    /// `network.speed_mm_per_ms`: conduction speed along the tracts, mm/ms, > 0.
    SpeedMmPerMs,
}

impl Slot {
    /// All slots, in the order of the summary's parameter columns.
    pub const ALL: [Slot; 36] = [
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
        Slot::Rtol,
        Slot::AtolRHz,
        Slot::AtolV,
        Slot::K,
        Slot::SpeedMmPerMs,
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
            Slot::Rtol => "rtol",
            Slot::AtolRHz => "atol_r_hz",
            Slot::AtolV => "atol_v",
            Slot::K => "k",
            Slot::SpeedMmPerMs => "speed_mm_per_ms",
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
    /// The firing rate r (in Hz for users, kHz in the kernel); key `r_hz`.
    RHz = 0,
    /// The mean membrane potential v (dimensionless); key `v`.
    V = 1,
}

impl Var {
    /// Both variables, in index order (r, then v).
    pub const BOTH: [Var; 2] = [Var::RHz, Var::V];

    /// The spec key of the variable: `r_hz` or `v`.
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

/// The time course of an input, evaluated at each step's start time.
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

/// Noise on one variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseKind {
    /// No noise (the default).
    None,
    /// Additive Wiener noise on the state, `sigma` per sqrt(ms).
    White,
    /// An Ornstein–Uhlenbeck input with stationary std `sigma` and correlation `tau_ms`.
    Ou,
}

/// One numeric parameter: its slot, its values and where the spec set it.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Which parameter this is.
    pub slot: Slot,
    /// Its value, or the values it is swept over.
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
    Uniform {
        /// Lower bound (included), in the variable's units (Hz for r).
        lo: f64,
        /// Upper bound (excluded), > `lo`.
        hi: f64,
    },
    /// Drawn from a normal distribution.
    Normal {
        /// Mean, in the variable's units (Hz for r).
        mean: f64,
        /// Standard deviation, >= 0.
        std: f64,
    },
}

pub use crate::model::Method;

/// Which runs record traces.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceRuns {
    /// No run records traces.
    None,
    /// Every run records traces.
    All,
    /// Runs whose id is a multiple of k (k >= 1).
    Every(u64),
    /// Sorted, without duplicates.
    Ids(Vec<u64>),
}

impl TraceRuns {
    /// Whether run `run_id` records traces.
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
    /// Time between trace rows in ms: a multiple of every `dt_ms` value.
    pub every_ms: f64,
    /// Which runs record traces.
    pub runs: TraceRuns,
}

/// A validated sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The YAML text as given (copied to the output directory and metadata).
    pub text: String,
    /// The optional `name` key, copied to the output metadata.
    pub name: Option<String>,
    /// Every parameter exactly once: first those the spec mentions, in document order,
    /// then defaults. Axis order for point ids is the order of the swept ones here.
    pub params: Vec<Param>,
    /// How each run's initial rate (Hz) is chosen.
    pub init_r_hz: InitDist,
    /// How each run's initial v is chosen.
    pub init_v: InitDist,
    /// Input form on r and v, indexed by [`Var`].
    pub input: [InputForm; 2],
    /// Noise on r and v, indexed by [`Var`].
    pub noise: [NoiseKind; 2],
    /// Simulated time per run in ms, > 0.
    pub duration_ms: f64,
    /// Statistics ignore t < transient_ms; 0 <= transient_ms < duration_ms.
    pub transient_ms: f64,
    /// The integration scheme.
    pub method: Method,
    /// Error-controlled steps (`simulation.adaptive`, with method dopri5); `None` for a
    /// fixed step.
    pub adaptive: Option<Adaptive>,
    /// Seed of every run's random stream (with the run id); any u64.
    pub seed: u64,
    /// Runs per parameter point (independent init/noise draws), >= 1.
    pub replicates: u32,
    /// Groups of slots that advance together.
    pub zip: Vec<Vec<Slot>>,
    /// Trace output; `None` without an `output.traces` section.
    pub traces: Option<Traces>,
    /// The network of coupled nodes; `None` for single nodes.
    pub network: Option<NetworkSpec>,
    /// `output.fc`: write every run's functional connectivity (networks only).
    pub fc_output: bool,
}

/// Defaults of `simulation.adaptive` (docs/adaptive.md): absolute tolerances far below any
/// rate or potential of interest, so that `rtol` governs (v crosses zero while it rings,
/// where the absolute part keeps the scale positive).
pub const ADAPTIVE_DEFAULTS: [(Slot, f64); 3] = [
    (Slot::Rtol, 1e-6),
    (Slot::AtolRHz, 1e-9),
    (Slot::AtolV, 1e-12),
];

/// The adaptive step's settings that are not axes (the tolerances are the slots
/// [`Slot::Rtol`], [`Slot::AtolRHz`], [`Slot::AtolV`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    /// Largest step, ms (default: `duration_ms`).
    pub dt_max_ms: f64,
}

/// Largest spec file read: anything bigger is not a sweep description.
pub const MAX_SPEC_BYTES: u64 = 64 << 20;

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
    /// duration / dt, a whole number (checked when the spec is read).
    pub steps: u64,
    /// First step whose post-step state enters the statistics (t >= transient_ms), >= 1.
    pub first_stat_step: u64,
    /// Steps between trace rows; 0 without traces.
    pub trace_stride: u64,
}

/// The most values `dt_ms` may take as an axis: every value gets its own lane batches.
pub const MAX_DT_VALUES: u64 = 10_000;

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
            "network",
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
            "network" => b.network_node = Some(node.clone()),
            "output" => b.output(node)?,
            _ => unreachable!(),
        }
    }
    b.finish()
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
    fn zipped_pulse_windows_are_checked_pairwise() {
        let zipped = "input:\n  v: {pulse: {start_ms: [1, 20], stop_ms: [10, 30], amplitude: 1}}\nsimulation: {duration_ms: 50}\nsweep:\n  zip: [[input_v_start_ms, input_v_stop_ms]]\n";
        assert!(parse(zipped).is_ok());
        let crossed = zipped.replace("sweep:\n  zip: [[input_v_start_ms, input_v_stop_ms]]\n", "");
        let e = err(&crossed);
        assert_eq!(e.path, "input.v.pulse.stop_ms");
        assert!(e.message.contains("start_ms 20 and stop_ms 10"), "{e}");
    }

    #[test]
    fn steps_tolerate_rounding_of_duration_over_dt() {
        let s = parse("simulation: {dt_ms: 0.01, duration_ms: 500, transient_ms: 100}\n").unwrap();
        let t = s.timing(0.01);
        assert_eq!((t.steps, t.first_stat_step), (50_000, 10_000));
        let s = parse("simulation: {dt_ms: [0.01, 0.02, 0.05], duration_ms: 1.3}\n").unwrap();
        assert_eq!(s.max_steps(), 130);
    }

    /// A run ends at duration_ms and its statistics start at transient_ms exactly: times
    /// that are not whole numbers of steps are refused, naming the nearest that are.
    #[test]
    fn times_must_be_whole_numbers_of_steps_of_every_dt() {
        let e = err("simulation: {dt_ms: 0.3, duration_ms: 1}\n");
        assert_eq!(e.path, "simulation.duration_ms");
        assert_eq!(
            e.message,
            "duration_ms (1) must be a whole number of steps of dt_ms, and is 3.3333 steps of dt_ms 0.3; the nearest that are: 0.9 and 1.2"
        );
        // The default duration (100 ms) is named at dt_ms, which the spec gives.
        let e = err("simulation: {dt_ms: 0.3}\n");
        assert_eq!(e.path, "simulation.dt_ms");
        assert!(
            e.message.starts_with("duration_ms (100, the default)"),
            "{e}"
        );
        assert!(e.message.ends_with("99.9 and 100.2"), "{e}");
        // Less than one step: only the next multiple will do.
        let e = err("simulation: {dt_ms: 0.01, duration_ms: 0.004}\n");
        assert!(e.message.ends_with("the nearest that is: 0.01"), "{e}");
        let e = err("simulation: {dt_ms: 0.1, duration_ms: 10, transient_ms: 0.05}\n");
        assert_eq!(e.path, "simulation.transient_ms");
        assert!(
            e.message.ends_with("the nearest that are: 0 and 0.1"),
            "{e}"
        );
        // With dt as an axis the suggestions suit every value: 0.06 is the least common
        // multiple of 0.02 and 0.03.
        let e = err("simulation: {dt_ms: [0.02, 0.03], duration_ms: 1, transient_ms: 0.5}\n");
        assert_eq!(e.path, "simulation.duration_ms");
        assert!(
            e.message
                .contains("every dt_ms value, and is 33.3333 steps of dt_ms 0.03")
                && e.message.ends_with("the nearest that are: 0.96 and 1.02"),
            "{e}"
        );
        let e = err("simulation: {dt_ms: [0.02, 0.03], duration_ms: 1.02, transient_ms: 0.5}\n");
        assert_eq!(e.path, "simulation.transient_ms");
        assert!(e.message.ends_with("0.48 and 0.54"), "{e}");
        // Values with no common multiple nearby.
        let e = err("simulation: {dt_ms: [0.01, 0.0099991], duration_ms: 1}\n");
        assert!(
            e.message
                .contains("choose dt_ms values with a common multiple"),
            "{e}"
        );
    }
}
