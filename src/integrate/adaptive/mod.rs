//! The adaptive kernel: an embedded Runge–Kutta pair ([`Pair`]: Dormand–Prince 5(4) in
//! `dopri5.rs`, 8(5,3) in `dop853.rs`) with a step size per lane, chosen by the embedded
//! error estimate (docs/adaptive.md).
//!
//! The kernel takes a queue of runs and integrates [`LANES`] of them at a time. Every lane
//! carries its own time, step size, state and first stage (FSAL). Each iteration, every
//! lane that holds a run takes one trial step; the pair's scaled norm of its error
//! estimate over (r, v) accepts or rejects it, and a PI controller (Gustafsson) proposes
//! the next step. Acceptance, the controller, the statistics and the end of a run are all per-lane
//! selects inside one loop over the lanes: no branch depends on a lane's data, so the loop
//! compiles to SIMD and a run's bits never depend on its neighbours. When a lane's run
//! ends, the lane hands in the results and takes the queue's next run (refill), so lanes
//! idle only once the queue is empty; then the AVX kernels move the remaining runs into the
//! lowest lanes and compute only the groups of lanes that hold them (packing).
//!
//! Steps land exactly on `duration_ms` and on every edge of a `step` or `pulse` input;
//! continuous inputs (`sine`) are evaluated at each stage's own time, and steps land on
//! `transient_ms` too. Statistics are time integrals over [transient_ms, duration_ms] by the
//! method's own quadrature: each step integrates r, v and their squares with the stage
//! weights, as if they were further components of the system (of the pair's order, like
//! the state); traces are the pair's continuous extension (dense output) at their times.
//! The body is generic over the pair and the path's [`Arith`], compiled for the baseline,
//! for AVX2+FMA and for AVX-512 like the fixed-step kernel. No I/O, and no allocation
//! inside the step loop.

mod dop853;
mod dopri5;

use dop853::Dop853;
use dopri5::Dopri54;

use super::math::{self, Arith, Fused, Unfused};
use super::schemes::rhs;
use super::{
    Batch, Coefficients, DIVERGED, Drive, Isa, LANES, Lanes, StopToken, Stopped, Summary, Waveform,
};

/// The embedded pair an adaptive sweep steps with (`method: dopri5` or `dop853`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdaptivePair {
    /// Dormand–Prince 5(4) ([`Dopri54`]).
    Dopri5,
    /// Dormand–Prince 8(5,3) ([`Dop853`]).
    Dop853,
}

/// An embedded Runge–Kutta pair as the kernel uses it: one trial step of a lane with its
/// error estimate and averages, the error norm, the controller's exponents and the
/// continuous extension for traces.
pub trait Pair {
    /// The controller's exponents: `fac = 0.9 err^-ALPHA err_prev^BETA`.
    const ALPHA: f64;
    const BETA: f64;
    /// The continuous extension of one step.
    type Dense: Dense;

    /// One trial step of lane `l` from `y = (r, v)` at `t` over `h` (`th = (t, h)`), with
    /// its first stage `k1` given, and the step's averages of `x - shift` and
    /// `(x - shift)^2` for x = r, v by the pair's weights over its stage states (the step
    /// of an appended component `z' = g(r, v)`, as accurate as the state).
    fn step<A: Arith>(
        c: &Coefficients,
        drive: Option<&Drive>,
        l: usize,
        th: (f64, f64),
        y: (f64, f64),
        k1: (f64, f64),
        shift: (f64, f64),
    ) -> PairStep;

    /// The squared error norm of a step from its [`PairStep::err`] and the scales
    /// `atol + rtol max(|x0|, |x1|)` of r and v: the step is accepted where it is <= 1.
    fn err_sq<A: Arith>(err: &[f64; 4], sc_r: f64, sc_v: f64) -> f64;

    /// The continuous extension of the step [`Pair::step`] takes from the same arguments
    /// (the same bits: the step is recomputed).
    fn dense<A: Arith>(
        c: &Coefficients,
        drive: Option<&Drive>,
        l: usize,
        th: (f64, f64),
        y: (f64, f64),
        k1: (f64, f64),
    ) -> Self::Dense;
}

/// One lane's trial step (see [`Pair::step`]).
pub struct PairStep {
    /// The right-hand side at the step's end, `f(t + h, y1)`: the next step's first stage.
    pub k_last: (f64, f64),
    /// The solution at the step's end.
    pub r1: f64,
    pub v1: f64,
    /// The error estimates the pair's [`Pair::err_sq`] takes (r and v, then a second
    /// estimate of r and v where the pair has one).
    pub err: [f64; 4],
    /// The step's averages of `x - shift` and `(x - shift)^2`, for r and for v.
    pub avg_r: [f64; 2],
    pub avg_v: [f64; 2],
}

/// Lane `l`'s inputs at the stage time `t + c_i h` of a step from `t` over `h`: a continuous
/// input at the stage's own time, a step or a pulse at its value at the step's start (see
/// [`Waveform::lane_value`]); `None` without a drive.
#[inline(always)]
fn stage_input<A: Arith>(
    drive: Option<&Drive>,
    l: usize,
    (t, h): (f64, f64),
    c_i: f64,
) -> Option<[f64; 2]> {
    drive.map(|d| {
        let ts = A::mul_add(c_i, h, t);
        [
            d.waveform[0].lane_value(l, t, ts),
            d.waveform[1].lane_value(l, t, ts),
        ]
    })
}

/// Adds one stage's value `x` (less the chunk's shift) with the pair's weight `b` to a
/// step's averages of `x` and `x^2` (see [`PairStep::avg_r`]).
#[inline(always)]
fn add_to_averages<A: Arith>(avg: &mut [f64; 2], b: f64, x: f64) {
    let bx = b * x;
    avg[0] += bx;
    avg[1] = A::mul_add(bx, x, avg[1]);
}

/// The continuous extension of one step.
pub trait Dense {
    /// `(r, v)` at `t0 + theta h`, theta in [0, 1].
    fn at<A: Arith>(&self, theta: f64) -> (f64, f64);
}

/// log2 of the step-size controller's safety factor 0.9: the pair's factor
/// `0.9 err^-ALPHA err_prev^BETA` is evaluated as
/// `2^(LOG2_SAFETY - ALPHA log2 err + BETA log2 err_prev)`.
const LOG2_SAFETY: f64 = -0.152_003_093_445_049_95;
/// Bounds of the factor by which one step changes the next.
const FAC_MIN: f64 = 0.2;
const FAC_MAX: f64 = 5.0;
/// Mantissa bits kept of the step-size factor (see [`round_factor`]): a factor in
/// [2^k, 2^(k+1)) is a multiple of 2^(k-8), so factors are 0.2 to 0.4 % apart.
const FACTOR_BITS: u32 = 8;
/// log2(1e-4): the floor of the previous error in the controller.
const LOG2_1E_4: f64 = -13.287_712_379_549_449;
/// A step that comes within this factor of an edge or of `duration_ms` is stretched to land
/// on it (no sliver of a step after it).
const LAND_STRETCH: f64 = 1.01;

/// A run stops when its step-size proposal falls below this (ms): the solution cannot be
/// followed at the tolerances asked for.
pub const DT_FLOOR_MS: f64 = 1e-12;

/// A run stops after this many trial steps (accepted plus rejected).
pub const MAX_TRIAL_STEPS: u64 = 100_000_000;

/// How a lane's run ended.
// 64 bits wide like the lanes' numbers: with bytes, LLVM's cost model keeps the AVX2 lane
// loop scalar (packing masks to bytes and back).
#[repr(u64)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneEnd {
    /// Still integrating (only inside the kernel).
    Running,
    /// Reached `duration_ms`.
    Finished,
    /// An accepted state was non-finite or beyond [`DIVERGED`].
    Diverged,
    /// The proposed step fell below [`DT_FLOOR_MS`].
    DtFloor,
    /// The schedule's cap of trial steps ([`MAX_TRIAL_STEPS`] in sweeps) was reached.
    StepCap,
}

impl LaneEnd {
    /// The `stop_reason` of a run that stopped early on its own terms (`dt_floor`,
    /// `step_cap`); `None` for the others.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            LaneEnd::DtFloor => Some("dt_floor"),
            LaneEnd::StepCap => Some("step_cap"),
            _ => None,
        }
    }
}

/// What the runs of an adaptive queue share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveSchedule {
    /// The embedded pair.
    pub pair: AdaptivePair,
    /// End of every run, ms.
    pub duration_ms: f64,
    /// Statistics cover [transient_ms, duration_ms].
    pub transient_ms: f64,
    /// First trial step, ms (the spec's `dt_ms`).
    pub dt_init_ms: f64,
    /// Largest step, ms.
    pub dt_max_ms: f64,
    /// Trace rows are at `i * trace_every_ms`, i = 0, 1, ... up to `duration_ms`; 0 records
    /// nothing.
    pub trace_every_ms: f64,
    /// A run stops after this many trial steps (accepted plus rejected):
    /// [`MAX_TRIAL_STEPS`] in sweeps.
    pub max_trial_steps: u64,
}

impl AdaptiveSchedule {
    /// Number of trace rows per run (the initial state included).
    pub fn trace_rows(&self) -> usize {
        if self.trace_every_ms > 0.0 {
            let n = self.duration_ms / self.trace_every_ms;
            // 100 / 0.1 is 1000.0000000000001: a row at duration_ms counts.
            (n * (1.0 + 1e-12)).floor() as usize + 1
        } else {
            0
        }
    }
}

/// Per-lane tolerances, in kernel units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    /// Relative tolerance, on r and v alike.
    pub rtol: Lanes,
    /// Absolute tolerance on r, kHz (the spec's `atol_r_hz` / 1000).
    pub atol_r: Lanes,
    /// Absolute tolerance on v.
    pub atol_v: Lanes,
}

impl Default for Tolerances {
    fn default() -> Tolerances {
        Tolerances {
            rtol: [1e-6; LANES],
            atol_r: [1e-12; LANES],
            atol_v: [1e-12; LANES],
        }
    }
}

/// Accepted steps in the window whose integrals a lane sums around one shift before it
/// merges them into its run's statistics (see [`TimeMoments`]).
const CHUNK_STEPS: u64 = 256;

/// Time statistics of one variable over the lanes. The steps' integrals of `x - shift`
/// and `(x - shift)^2` are summed over a chunk of up to [`CHUNK_STEPS`] accepted steps in
/// the window, with `shift` the state at the chunk's start, so that the sums stay of the
/// size of the chunk's own variation (a small variance around a large mean keeps its
/// digits). A full chunk is merged into the run's time average and integral of the squared
/// deviation by Chan et al.'s pairwise update (one division per chunk, not per step), and
/// the next chunk starts around the state reached. The chunks of a run depend only on its
/// own steps. `min` and `max` cover the states at the window's start and at the ends of the
/// accepted steps in it, and each such step's interior extreme (see [`hermite_extreme`]).
#[derive(Debug, Clone, Copy)]
struct TimeMoments {
    /// Time merged, ms.
    weight: Lanes,
    mean: Lanes,
    /// The integral of the squared deviation from `mean` over the merged time.
    m2: Lanes,
    /// The current chunk: its shift, its time and its integrals of `x - shift` and
    /// `(x - shift)^2`.
    shift: Lanes,
    chunk_w: Lanes,
    chunk_1: Lanes,
    chunk_2: Lanes,
    min: Lanes,
    max: Lanes,
}

impl TimeMoments {
    fn new() -> TimeMoments {
        TimeMoments {
            weight: [0.0; LANES],
            mean: [0.0; LANES],
            m2: [0.0; LANES],
            shift: [0.0; LANES],
            chunk_w: [0.0; LANES],
            chunk_1: [0.0; LANES],
            chunk_2: [0.0; LANES],
            min: [f64::INFINITY; LANES],
            max: [f64::NEG_INFINITY; LANES],
        }
    }

    /// Empties lane `l` for a run that starts at `x0`; `in_window`: the window starts at
    /// the run's start (`transient_ms` = 0), so `x0` counts among the extremes.
    fn reset(&mut self, l: usize, x0: f64, in_window: bool) {
        self.weight[l] = 0.0;
        self.mean[l] = 0.0;
        self.m2[l] = 0.0;
        self.shift[l] = x0;
        self.chunk_w[l] = 0.0;
        self.chunk_1[l] = 0.0;
        self.chunk_2[l] = 0.0;
        (self.min[l], self.max[l]) = if in_window {
            (x0, x0)
        } else {
            (f64::INFINITY, f64::NEG_INFINITY)
        };
    }

    /// Lane `to` takes lane `from`'s statistics.
    fn move_lane(&mut self, from: usize, to: usize) {
        let TimeMoments {
            weight,
            mean,
            m2,
            shift,
            chunk_w,
            chunk_1,
            chunk_2,
            min,
            max,
        } = self;
        for x in [weight, mean, m2, shift, chunk_w, chunk_1, chunk_2, min, max] {
            x[to] = x[from];
        }
    }

    /// Lane `l`'s merged time, average and integral of the squared deviation, its current
    /// chunk included.
    #[inline(always)]
    fn merged<A: Arith>(&self, l: usize) -> (f64, f64, f64) {
        let (weight, mean, m2) = (self.weight[l], self.mean[l], self.m2[l]);
        let w = self.chunk_w[l];
        if w <= 0.0 {
            return (weight, mean, m2);
        }
        let (s1, s2) = (self.chunk_1[l], self.chunk_2[l]);
        // The chunk's average (relative to its shift) and squared deviation from it.
        let chunk_mean = s1 / w;
        let chunk_m2 = A::mul_add(-s1, chunk_mean, s2);
        let delta = (self.shift[l] + chunk_mean) - mean;
        let total = weight + w;
        let share = w / total;
        (
            total,
            A::mul_add(delta, share, mean),
            A::mul_add(delta * delta * weight, share, m2 + chunk_m2),
        )
    }

    /// Merges lane `l`'s chunk into its statistics and starts the next one around `x`.
    #[inline(always)]
    fn flush<A: Arith>(&mut self, l: usize, x: f64) {
        (self.weight[l], self.mean[l], self.m2[l]) = self.merged::<A>(l);
        self.shift[l] = x;
        self.chunk_w[l] = 0.0;
        self.chunk_1[l] = 0.0;
        self.chunk_2[l] = 0.0;
    }

    /// Lane `l`'s time average, standard deviation (of the time distribution), min, max.
    fn summary<A: Arith>(&self, l: usize) -> Summary {
        let (weight, mean, m2) = self.merged::<A>(l);
        Summary {
            mean,
            std: (m2 / weight).max(0.0).sqrt(),
            min: self.min[l],
            max: self.max[l],
        }
    }
}

/// The results of one run.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveRun {
    /// How the run ended.
    pub end: LaneEnd,
    /// Time of the end, ms: `duration_ms`, the end of the step whose state diverged, or the
    /// time reached when the run stopped.
    pub end_ms: f64,
    /// Accepted steps.
    pub steps: u64,
    /// Rejected trial steps.
    pub rejected: u64,
    /// Time statistics of r (kHz).
    pub r: Summary,
    /// Time statistics of v.
    pub v: Summary,
    /// r (kHz) at the end.
    pub r_final: f64,
    /// v at the end.
    pub v_final: f64,
    /// Trace rows written (rows `0 .. trace_len`).
    pub trace_len: usize,
}

/// What the kernel produces for a queue of runs besides traces.
#[derive(Debug, Clone)]
pub struct AdaptiveResult {
    /// Each run's results, in queue order.
    pub runs: Vec<AdaptiveRun>,
    /// Iterations of the kernel (each a trial step of every lane that holds a run).
    pub iterations: u64,
    /// Lane-steps computed: each iteration computes the lanes below its width ([`LANES`],
    /// or fewer once the queue is empty and the remaining runs are packed into the lowest
    /// lanes). The lane utilisation is the runs' trial steps over this.
    pub lane_steps: u64,
}

/// Iterations between the kernel's reads of its [`StopToken`]: 64 iterations of 32 trial
/// steps take about 0.1 ms.
const POLL_ITERATIONS: u64 = 64;

/// Once a queue is empty, its running runs are packed into the lowest lanes and the
/// AVX2 and AVX-512 kernels compute only the groups of this many lanes that hold them
/// (the AVX-512 vector width, a multiple of AVX2's). The portable kernel computes all
/// [`LANES`]: over groups of 8 lanes, LLVM keeps its loops scalar (SSE2's two lanes per
/// instruction fall below its threshold for short loops).
const PACK_AVX: usize = 8;

/// Integrates the first `runs` runs of `queue` adaptively: run `q` is lane `q % LANES` of
/// `queue[q / LANES]` (its coefficients, initial state, inputs and tolerances). The kernel
/// integrates [`LANES`] runs at a time; when a lane's run ends, the lane takes the queue's
/// next run, so that the lanes stay busy until the queue is empty. A run's results do not
/// depend on the lane it had, its neighbours or the order of the queue.
///
/// `trace` receives `schedule.trace_rows()` rows per run, row `i` of run `q` at
/// `2 * (q * rows + i)` (r, then v; kernel units), NaN past the run's `trace_len`. Returns
/// [`Stopped`] within [`POLL_ITERATIONS`] iterations of a request on `stop`.
pub fn integrate_adaptive(
    isa: Isa,
    schedule: &AdaptiveSchedule,
    queue: &[(Batch, Tolerances)],
    runs: usize,
    trace: &mut Vec<f64>,
    stop: &StopToken,
) -> Result<AdaptiveResult, Stopped> {
    assert!(
        runs > 0 && runs <= queue.len() * LANES,
        "a queue of {} batches holds 1 to {} runs, not {runs}",
        queue.len(),
        queue.len() * LANES
    );
    trace.clear();
    trace.resize(schedule.trace_rows() * 2 * runs, f64::NAN);
    let queue = Queue {
        batches: queue,
        runs,
    };
    match isa {
        Isa::Avx512 => avx512::run(schedule, &queue, trace, stop),
        Isa::Avx2Fma => avx2::run(schedule, &queue, trace, stop),
        Isa::Portable => match schedule.pair {
            AdaptivePair::Dopri5 => {
                kernel::<Dopri54, Unfused, LANES>(schedule, &queue, trace, stop)
            }
            AdaptivePair::Dop853 => kernel::<Dop853, Unfused, LANES>(schedule, &queue, trace, stop),
        },
    }
}

/// The runs a kernel call integrates.
struct Queue<'a> {
    batches: &'a [(Batch, Tolerances)],
    runs: usize,
}

/// A module `$name` whose `run` is [`kernel`] with `Fused` arithmetic, compiled with the
/// target features `$features` and called only where [`Isa::is_available`] says the CPU
/// has them (the fixed-step kernel's entry points follow the same pattern).
macro_rules! isa_entry {
    ($name:ident, $isa:expr, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        mod $name {
            use super::*;

            #[doc = concat!("The adaptive kernel compiled with `", $features, "` enabled.")]
            pub(super) fn run(
                schedule: &AdaptiveSchedule,
                queue: &Queue,
                trace: &mut [f64],
                stop: &StopToken,
            ) -> Result<AdaptiveResult, Stopped> {
                assert!(
                    $isa.is_available(),
                    "the {} kernel was requested on a CPU without {}",
                    $isa.name(),
                    $isa.features()
                );
                // SAFETY: the CPU has the features this function is compiled for (checked
                // above).
                unsafe { run_with_features(schedule, queue, trace, stop) }
            }

            #[target_feature(enable = $features)]
            unsafe fn run_with_features(
                schedule: &AdaptiveSchedule,
                queue: &Queue,
                trace: &mut [f64],
                stop: &StopToken,
            ) -> Result<AdaptiveResult, Stopped> {
                match schedule.pair {
                    AdaptivePair::Dopri5 => {
                        kernel::<Dopri54, Fused, PACK_AVX>(schedule, queue, trace, stop)
                    }
                    AdaptivePair::Dop853 => {
                        kernel::<Dop853, Fused, PACK_AVX>(schedule, queue, trace, stop)
                    }
                }
            }
        }

        #[cfg(not(target_arch = "x86_64"))]
        mod $name {
            use super::*;
            pub(super) fn run(
                _: &AdaptiveSchedule,
                _: &Queue,
                _: &mut [f64],
                _: &StopToken,
            ) -> Result<AdaptiveResult, Stopped> {
                unreachable!("{} is never available off x86-64", $isa.name())
            }
        }
    };
}

isa_entry!(avx2, Isa::Avx2Fma, "avx2,fma");
isa_entry!(avx512, Isa::Avx512, "avx512f,avx512dq,avx512vl,avx2,fma");

/// Rounds a positive step-size factor to [`FACTOR_BITS`] mantissa bits (to nearest, ties
/// up), with integer operations on its bits. The error estimates of the two kernel
/// paths differ in their last bits (fused multiply-adds round once); rounded factors are
/// then equal except when a factor falls within that difference of a rounding boundary,
/// so that the two paths almost always take the same steps and agree to rounding.
#[inline(always)]
fn round_factor(fac: f64) -> f64 {
    const DROPPED: u32 = 52 - FACTOR_BITS;
    const HALF: u64 = 1 << (DROPPED - 1);
    const KEEP: u64 = !((1 << DROPPED) - 1);
    f64::from_bits((fac.to_bits() + HALF) & KEEP)
}

/// Per-lane state of the adaptive kernel.
struct LaneState {
    t: Lanes,
    h: Lanes,
    r: Lanes,
    v: Lanes,
    k1r: Lanes,
    k1v: Lanes,
    /// log2 of the last accepted step's error (at least 1e-4).
    log2_err_prev: Lanes,
    /// 1 where the lane's last trial step was rejected (no growth on the next), else 0.
    rejected_last: [u64; LANES],
    end: [LaneEnd; LANES],
    steps: [u64; LANES],
    rejected: [u64; LANES],
    /// Accepted steps in the statistics' current chunk.
    chunk_steps: [u64; LANES],
    mr: TimeMoments,
    mv: TimeMoments,
    /// The queue position of each lane's run; `None` once the queue is empty.
    run: [Option<usize>; LANES],
    /// Trace rows written for each lane's run.
    trace_len: [usize; LANES],
}

/// The lanes' coefficients, initial states, inputs and tolerances, lane by lane from the
/// queue.
struct LaneInputs {
    batch: Batch,
    tol: Tolerances,
}

impl LaneInputs {
    /// Lane `l` takes queue run `q`'s inputs (lane `j` of its batch).
    fn take(&mut self, l: usize, queue: &Queue, q: usize) {
        let (src, tol) = &queue.batches[q / LANES];
        self.copy_lane(l, src, tol, q % LANES);
    }

    /// Lane `to` takes lane `from`'s inputs (packing the lanes).
    fn move_lane(&mut self, from: usize, to: usize) {
        let (src, tol) = (self.batch, self.tol);
        self.copy_lane(to, &src, &tol, from);
    }

    /// Lane `l` takes lane `j` of `src` and `tol`.
    fn copy_lane(&mut self, l: usize, src: &Batch, tol: &Tolerances, j: usize) {
        let (c, s) = (&mut self.batch.coef, &src.coef);
        for (dst, src) in [
            (&mut c.r_drive, &s.r_drive),
            (&mut c.v_drive, &s.v_drive),
            (&mut c.two_inv_tau, &s.two_inv_tau),
            (&mut c.two_dt_inv_tau, &s.two_dt_inv_tau),
            (&mut c.fast_v_max, &s.fast_v_max),
            (&mut c.inv_tau, &s.inv_tau),
            (&mut c.j_tau, &s.j_tau),
            (&mut c.pi_tau_sq, &s.pi_tau_sq),
            (&mut c.noise_r, &s.noise_r),
            (&mut c.noise_v, &s.noise_v),
            (&mut self.batch.r0, &src.r0),
            (&mut self.batch.v0, &src.v0),
            (&mut self.tol.rtol, &tol.rtol),
            (&mut self.tol.atol_r, &tol.atol_r),
            (&mut self.tol.atol_v, &tol.atol_v),
        ] {
            dst[l] = src[j];
        }
        for x in 0..2 {
            take_waveform_lane(
                &mut self.batch.drive.waveform[x],
                l,
                &src.drive.waveform[x],
                j,
            );
        }
    }
}

/// Lane `l` of `dst` takes lane `j` of `src` (the same form: every run of a sweep has the
/// same input forms).
fn take_waveform_lane(dst: &mut Waveform, l: usize, src: &Waveform, j: usize) {
    let pairs: Vec<(&mut Lanes, &Lanes)> = match (dst, src) {
        (Waveform::None, Waveform::None) => Vec::new(),
        (
            Waveform::Step { at, before, after },
            Waveform::Step {
                at: a,
                before: b,
                after: c,
            },
        ) => vec![(at, a), (before, b), (after, c)],
        (
            Waveform::Pulse {
                start,
                stop,
                amplitude,
            },
            Waveform::Pulse {
                start: a,
                stop: b,
                amplitude: c,
            },
        ) => vec![(start, a), (stop, b), (amplitude, c)],
        (
            Waveform::Sine {
                amplitude,
                omega,
                phase,
                offset,
            },
            Waveform::Sine {
                amplitude: a,
                omega: b,
                phase: c,
                offset: d,
            },
        ) => vec![(amplitude, a), (omega, b), (phase, c), (offset, d)],
        (dst, src) => unreachable!("the runs of a queue share their input forms: {dst:?}, {src:?}"),
    };
    for (dst, src) in pairs {
        dst[l] = src[j];
    }
}

/// The kernel of one pair and path: `A`'s arithmetic, tail lanes packed in groups of
/// `PACK`.
#[inline(always)]
fn kernel<P: Pair, A: Arith, const PACK: usize>(
    schedule: &AdaptiveSchedule,
    queue: &Queue,
    trace: &mut [f64],
    stop: &StopToken,
) -> Result<AdaptiveResult, Stopped> {
    let driven = queue.batches[0]
        .0
        .drive
        .waveform
        .iter()
        .any(|w| *w != Waveform::None);
    // Without time-varying inputs the lane loop compiles without any input code.
    if driven {
        steps::<P, A, true, PACK>(schedule, queue, trace, stop)
    } else {
        steps::<P, A, false, PACK>(schedule, queue, trace, stop)
    }
}

impl LaneState {
    /// Lane `l` starts queue run `q` from its initial state (`inputs` already hold the
    /// run's), or idles when `q` is `None`. A run's start depends on nothing but the run.
    #[inline(always)]
    fn start<A: Arith>(
        &mut self,
        l: usize,
        q: Option<usize>,
        inputs: &LaneInputs,
        &RunStart {
            h0,
            fsal,
            rows,
            window_at_start,
        }: &RunStart,
        trace: &mut [f64],
    ) {
        let b = &inputs.batch;
        self.t[l] = 0.0;
        self.h[l] = h0;
        self.r[l] = b.r0[l];
        self.v[l] = b.v0[l];
        // With inputs that change over time the first stage is evaluated afresh at each
        // step (an edge may have passed); otherwise the last stage of a step is the next
        // one's first.
        (self.k1r[l], self.k1v[l]) = if fsal {
            rhs::<A>(&b.coef, l, b.r0[l], b.v0[l], None)
        } else {
            (0.0, 0.0)
        };
        self.log2_err_prev[l] = LOG2_1E_4;
        self.rejected_last[l] = 0;
        // An idle lane counts as ended: its state stays frozen.
        self.end[l] = if q.is_some() {
            LaneEnd::Running
        } else {
            LaneEnd::Finished
        };
        self.steps[l] = 0;
        self.rejected[l] = 0;
        self.chunk_steps[l] = 0;
        self.mr.reset(l, b.r0[l], window_at_start);
        self.mv.reset(l, b.v0[l], window_at_start);
        self.run[l] = q;
        self.trace_len[l] = 0;
        if let Some(q) = q
            && rows > 0
        {
            trace[2 * q * rows] = b.r0[l];
            trace[2 * q * rows + 1] = b.v0[l];
            self.trace_len[l] = 1;
        }
    }

    /// Lane `to` takes over lane `from`'s run where it stands (which gives the same bits:
    /// lanes compute alike), and lane `from` idles.
    fn move_lane(&mut self, from: usize, to: usize) {
        // Every field, named: a new one must be added here.
        let LaneState {
            t,
            h,
            r,
            v,
            k1r,
            k1v,
            log2_err_prev,
            rejected_last,
            end,
            steps,
            rejected,
            chunk_steps,
            mr,
            mv,
            run,
            trace_len,
        } = self;
        for x in [t, h, r, v, k1r, k1v, log2_err_prev] {
            x[to] = x[from];
        }
        for x in [rejected_last, steps, rejected, chunk_steps] {
            x[to] = x[from];
        }
        end[to] = end[from];
        end[from] = LaneEnd::Finished;
        run[to] = run[from].take();
        trace_len[to] = trace_len[from];
        mr.move_lane(from, to);
        mv.move_lane(from, to);
    }

    /// The results of lane `l`'s run.
    fn result<A: Arith>(&self, l: usize) -> AdaptiveRun {
        AdaptiveRun {
            end: self.end[l],
            end_ms: self.t[l],
            steps: self.steps[l],
            rejected: self.rejected[l],
            r: self.mr.summary::<A>(l),
            v: self.mv.summary::<A>(l),
            r_final: self.r[l],
            v_final: self.v[l],
            trace_len: self.trace_len[l],
        }
    }
}

/// How every run starts: its first trial step, whether the first stage comes from the
/// previous step (FSAL, without time-varying inputs), the trace rows and whether the
/// statistics' window starts with the run (`transient_ms` = 0).
struct RunStart {
    h0: f64,
    fsal: bool,
    rows: usize,
    window_at_start: bool,
}

/// The iterations of a queue; `DRIVEN`: some input varies in time; once the queue is
/// empty, the running runs are packed into groups of `PACK` lanes (a divisor of
/// [`LANES`]).
#[inline(always)]
fn steps<P: Pair, A: Arith, const DRIVEN: bool, const PACK: usize>(
    schedule: &AdaptiveSchedule,
    queue: &Queue,
    trace: &mut [f64],
    stop: &StopToken,
) -> Result<AdaptiveResult, Stopped> {
    let h0 = schedule.dt_init_ms.min(schedule.dt_max_ms);
    let rows = schedule.trace_rows();
    let how = RunStart {
        h0,
        fsal: !DRIVEN,
        rows,
        window_at_start: schedule.transient_ms <= 0.0,
    };
    let mut inputs = LaneInputs {
        batch: queue.batches[0].0,
        tol: queue.batches[0].1,
    };
    let mut s = LaneState {
        t: [0.0; LANES],
        h: [h0; LANES],
        r: [0.0; LANES],
        v: [0.0; LANES],
        k1r: [0.0; LANES],
        k1v: [0.0; LANES],
        log2_err_prev: [LOG2_1E_4; LANES],
        rejected_last: [0; LANES],
        end: [LaneEnd::Running; LANES],
        steps: [0; LANES],
        rejected: [0; LANES],
        chunk_steps: [0; LANES],
        mr: TimeMoments::new(),
        mv: TimeMoments::new(),
        run: [None; LANES],
        trace_len: [0; LANES],
    };
    // Lanes beyond the queue's runs idle from the start (on the first batch's data).
    let mut next = 0;
    for l in 0..LANES {
        let q = (next < queue.runs).then_some(next);
        if let Some(q) = q {
            inputs.take(l, queue, q);
            next += 1;
        }
        s.start::<A>(l, q, &inputs, &how, trace);
    }
    let mut results: Vec<Option<AdaptiveRun>> = vec![None; queue.runs];
    let mut trial = Trial {
        t0: [0.0; LANES],
        r0: [0.0; LANES],
        v0: [0.0; LANES],
        h: [0.0; LANES],
        t1: [0.0; LANES],
        lands_on_end: [0; LANES],
        k1r: [0.0; LANES],
        k1v: [0.0; LANES],
        klr: [0.0; LANES],
        klv: [0.0; LANES],
        r1: [0.0; LANES],
        v1: [0.0; LANES],
        err: [[0.0; LANES]; 4],
        accept: [0; LANES],
        kept: [0; LANES],
        next_h: [0.0; LANES],
        inner_r: [0.0; LANES],
        inner_v: [0.0; LANES],
        avg_r: [[0.0; LANES]; 2],
        avg_v: [[0.0; LANES]; 2],
        flush: [0; LANES],
    };
    let (mut iterations, mut lane_steps) = (0u64, 0u64);
    // The lanes below `width` hold every running run; only they are computed.
    let mut width = LANES;
    while width > 0 {
        iterations += 1;
        lane_steps += width as u64;
        if iterations.is_multiple_of(POLL_ITERATIONS) && stop.is_requested() {
            return Err(Stopped);
        }
        trial_steps::<P, A, DRIVEN, PACK>(schedule, &inputs, &mut s, &mut trial, width);
        if rows > 0 {
            let drive = DRIVEN.then_some(&inputs.batch.drive);
            record_traces::<P, A>(
                schedule,
                &inputs.batch.coef,
                drive,
                rows,
                &trial,
                &mut s,
                trace,
            );
        }
        // Lanes whose run ended hand in its results and take the next run of the queue.
        for l in 0..width {
            if let Some(q) = s.run[l]
                && s.end[l] != LaneEnd::Running
            {
                results[q] = Some(s.result::<A>(l));
                let q = (next < queue.runs).then_some(next);
                if let Some(q) = q {
                    inputs.take(l, queue, q);
                    next += 1;
                }
                s.start::<A>(l, q, &inputs, &how, trace);
            }
        }
        // Once the queue is empty, the running runs move into the lowest lanes, so that
        // the tail of a queue (its longest runs) computes a group of `PACK` lanes or a few
        // instead of all of them.
        if next == queue.runs {
            let running = (0..width).filter(|&l| s.run[l].is_some()).count();
            let packed = running.div_ceil(PACK) * PACK;
            if packed < width {
                // There are as many free lanes below `packed` as running ones above it.
                let mut to = 0;
                for from in packed..width {
                    if s.run[from].is_some() {
                        while s.run[to].is_some() {
                            to += 1;
                        }
                        s.move_lane(from, to);
                        inputs.move_lane(from, to);
                    }
                }
                width = packed;
            }
        }
    }
    Ok(AdaptiveResult {
        runs: results
            .into_iter()
            .map(|r| r.expect("every run of the queue ends"))
            .collect(),
        iterations,
        lane_steps,
    })
}

/// One trial step of every lane, with per-lane selects only (no branch on a lane's data):
/// acceptance, the controller, the statistics and the end of a run. Three passes over the
/// lanes: the stages (with the step's averages); the controller; the sums of the
/// statistics, the next state, the counts and the run's end. One fused loop stays scalar
/// on AVX2 (LLVM's cost model declines it); split like this, LLVM vectorises every pass.
/// The passes write each lane's fields in place (no copies of the lane state per
/// iteration). A last, scalar pass merges the statistics' chunks that are full (see
/// [`TimeMoments`]): on average one lane in [`CHUNK_STEPS`] per iteration.
#[inline(always)]
fn trial_steps<P: Pair, A: Arith, const DRIVEN: bool, const PACK: usize>(
    schedule: &AdaptiveSchedule,
    inputs: &LaneInputs,
    s: &mut LaneState,
    x: &mut Trial,
    width: usize,
) {
    let c = &inputs.batch.coef;
    let tol = &inputs.tol;
    let drive = DRIVEN.then_some(&inputs.batch.drive);
    let fsal = !DRIVEN;
    let (duration, transient) = (schedule.duration_ms, schedule.transient_ms);
    let max_trials = schedule.max_trial_steps.min(i64::MAX as u64) as i64;
    // The stages, the fifth-order solution, the error estimate and the step's averages.
    for g in 0..LANES / PACK {
        if g * PACK >= width {
            break;
        }
        for l in g * PACK..(g + 1) * PACK {
            let t0 = s.t[l];
            let (r0, v0) = (s.r[l], s.v[l]);
            // The next point the step must not pass: duration_ms, transient_ms (so that
            // a step lies either before the statistics' window or in it) or an input edge.
            let stop = if t0 < transient { transient } else { duration };
            let stop = match drive {
                Some(d) => stop
                    .min(d.waveform[0].next_edge(l, t0))
                    .min(d.waveform[1].next_edge(l, t0)),
                None => stop,
            };
            let proposal = s.h[l];
            let land = proposal * LAND_STRETCH >= stop - t0;
            let h = if land { stop - t0 } else { proposal };
            x.t1[l] = if land { stop } else { t0 + h };
            x.lands_on_end[l] = (land && stop == duration) as u64;
            x.h[l] = h;
            let k1 = if fsal {
                (s.k1r[l], s.k1v[l])
            } else {
                rhs::<A>(c, l, r0, v0, stage_input::<A>(drive, l, (t0, h), 0.0))
            };
            let shift = (s.mr.shift[l], s.mv.shift[l]);
            let step = P::step::<A>(c, drive, l, (t0, h), (r0, v0), k1, shift);
            (x.t0[l], x.r0[l], x.v0[l]) = (t0, r0, v0);
            (x.k1r[l], x.k1v[l]) = k1;
            (x.klr[l], x.klv[l]) = step.k_last;
            (x.r1[l], x.v1[l]) = (step.r1, step.v1);
            for j in 0..4 {
                x.err[j][l] = step.err[j];
            }
            for j in 0..2 {
                x.avg_r[j][l] = step.avg_r[j];
                x.avg_v[j][l] = step.avg_v[j];
            }
        }
    }
    // The error norm, acceptance and the controller.
    for g in 0..LANES / PACK {
        if g * PACK >= width {
            break;
        }
        for l in g * PACK..(g + 1) * PACK {
            let running = s.end[l] == LaneEnd::Running;
            let (r0, v0, r1, v1) = (s.r[l], s.v[l], x.r1[l], x.v1[l]);
            // A NaN in r1 or v1 makes the scale and so the error NaN: rejected.
            let sc_r = A::mul_add(tol.rtol[l], greater(r0.abs(), r1.abs()), tol.atol_r[l]);
            let sc_v = A::mul_add(tol.rtol[l], greater(v0.abs(), v1.abs()), tol.atol_v[l]);
            // The squared norm: err <= 1 exactly where err^2 <= 1 + 2^-52 (the largest
            // square whose correctly rounded root is 1), so no square root is needed.
            let err = std::array::from_fn(|j| x.err[j][l]);
            let err_sq = P::err_sq::<A>(&err, sc_r, sc_v);
            // NaN compares false: a non-finite trial step is rejected.
            let accept = running && err_sq <= 1.0 + f64::EPSILON;
            // The controller, on an error clamped into [1e-10, 1e10] (NaN counts as huge). One
            // power per lane: the grow factor's exponent where the step is accepted, the
            // shrink factor's where it is rejected, through coarse log2 and exp2 polynomials
            // (the factor is rounded to 8 bits; no library call in the lane loop).
            let e_sq = if err_sq >= 1e-20 {
                err_sq.min(1e20)
            } else {
                1e-20
            };
            let e_sq = if err_sq.is_nan() { 1e20 } else { e_sq };
            let log2_e = 0.5 * math::log2_coarse::<A>(e_sq);
            let z = if accept {
                A::mul_add(-P::ALPHA, log2_e, P::BETA * s.log2_err_prev[l])
            } else {
                -P::ALPHA * log2_e
            };
            let fac = math::exp2_coarse::<A>(z + LOG2_SAFETY);
            // No growth on a rejection nor on the step after one.
            let upper = if accept && s.rejected_last[l] == 0 {
                FAC_MAX
            } else {
                1.0
            };
            let factor = round_factor(lesser(greater(fac, FAC_MIN), upper));
            // An idle lane keeps its step (no decay into subnormal numbers).
            let factor = if running { factor } else { 1.0 };
            let h = x.h[l];
            x.next_h[l] = lesser(h * factor, schedule.dt_max_ms);
            // The interpolants' interior extremes, here where the divisions are (in the merge
            // pass, AVX2's cost model keeps that pass scalar).
            x.inner_r[l] = hermite_extreme::<A>(r0, r1, h * x.k1r[l], h * x.klr[l]);
            x.inner_v[l] = hermite_extreme::<A>(v0, v1, h * x.k1v[l], h * x.klv[l]);
            x.accept[l] = accept as u64;
            // The last accepted step's error, at least 1e-4 (as in Hairer's dopri5).
            s.log2_err_prev[l] = if accept {
                greater(log2_e, LOG2_1E_4)
            } else {
                s.log2_err_prev[l]
            };
        }
    }
    // The sums of the statistics, the next state (the step's end or, for a retry, its
    // start) and first stage, the step counts and the run's end. Every field is read once
    // and written once per lane, and no stored value is a select between a new value and
    // the field's own old one (LLVM turns that into masked stores): the old state comes
    // from the trial's copy of it, and the sums add 0 where nothing is taken. A lane that
    // is not running idles (a run that ends is handed in and its lane refilled or idled
    // before the next iteration), so what is written to its fields is never read.
    for g in 0..LANES / PACK {
        if g * PACK >= width {
            break;
        }
        for l in g * PACK..(g + 1) * PACK {
            let running = s.end[l] == LaneEnd::Running;
            let accept = x.accept[l] != 0;
            let (t0, t1) = (x.t0[l], x.t1[l]);
            let (r1, v1) = (x.r1[l], x.v1[l]);
            // Steps land on transient_ms: an accepted step is in the window or before it.
            let in_window = accept && t0 >= transient;
            let w = if in_window { t1 - t0 } else { 0.0 };
            // A rejected trial may hold NaN: selected away, not multiplied by 0.
            let taken = |avg: &[Lanes; 2], j: usize| if in_window { avg[j][l] } else { 0.0 };
            let (r_1, r_2) = (taken(&x.avg_r, 0), taken(&x.avg_r, 1));
            let (v_1, v_2) = (taken(&x.avg_v, 0), taken(&x.avg_v, 1));
            let chunk_steps = s.chunk_steps[l] + in_window as u64;
            s.chunk_steps[l] = chunk_steps;
            // A full chunk, or the window's start: the scalar pass below merges the chunk
            // and starts the next around the state reached.
            // (A signed comparison: see `cap`.)
            x.flush[l] =
                ((chunk_steps as i64 >= CHUNK_STEPS as i64) | (accept & (t1 == transient))) as u64;
            // The extremes: the step's end state (the one at transient_ms included) and,
            // for a step in the window, its interpolant's interior extreme.
            let take_end = accept && t1 >= transient;
            let (inner_r, inner_v) = (x.inner_r[l], x.inner_v[l]);
            let (lo_r, hi_r) = if in_window {
                (lesser(r1, inner_r), greater(r1, inner_r))
            } else {
                (r1, r1)
            };
            let (lo_v, hi_v) = if in_window {
                (lesser(v1, inner_v), greater(v1, inner_v))
            } else {
                (v1, v1)
            };
            sum::<A>(&mut s.mr, l, w, [r_1, r_2], take_end, [lo_r, hi_r]);
            sum::<A>(&mut s.mv, l, w, [v_1, v_2], take_end, [lo_v, hi_v]);
            // The next step's first stage: the last one (FSAL), or the same on a retry.
            s.k1r[l] = blend(accept, x.klr[l], x.k1r[l]);
            s.k1v[l] = blend(accept, x.klv[l], x.k1v[l]);
            let t = if accept { t1 } else { t0 };
            s.t[l] = t;
            s.r[l] = if accept { r1 } else { x.r0[l] };
            s.v[l] = if accept { v1 } else { x.v0[l] };
            let next_h = x.next_h[l];
            s.h[l] = next_h;
            s.rejected_last[l] = !accept as u64;
            let steps = s.steps[l] + accept as u64;
            let rejected = s.rejected[l] + (running && !accept) as u64;
            s.steps[l] = steps;
            s.rejected[l] = rejected;
            let blown = accept && !((r1.abs() < DIVERGED) & (v1.abs() < DIVERGED));
            let done = accept && x.lands_on_end[l] != 0;
            let floor = running && next_h < DT_FLOOR_MS;
            // A signed comparison: AVX2 compares 64-bit integers only as signed.
            let cap = running && (steps + rejected) as i64 >= max_trials;
            // Independent selects, lowest priority first (an if/else-if chain becomes a table
            // lookup that keeps the loop scalar). The run ends at the time reached, `t`.
            let end = if running {
                LaneEnd::Running
            } else {
                LaneEnd::Finished
            };
            let end = if cap { LaneEnd::StepCap } else { end };
            let end = if floor { LaneEnd::DtFloor } else { end };
            let end = if done { LaneEnd::Finished } else { end };
            let end = if blown { LaneEnd::Diverged } else { end };
            s.end[l] = end;
            x.kept[l] = (accept && !blown) as u64;
        }
    }
    // The full chunks, lane by lane: a lane's chunk is full once in CHUNK_STEPS of its
    // steps, so most iterations have none (the flags are OR-ed without a branch first).
    if x.flush[..width].iter().fold(0, |any, &f| any | f) != 0 {
        for l in 0..width {
            if x.flush[l] != 0 {
                s.mr.flush::<A>(l, s.r[l]);
                s.mv.flush::<A>(l, s.v[l]);
                s.chunk_steps[l] = 0;
            }
        }
    }
}

/// One iteration's trial steps of every lane, between the passes of [`trial_steps`].
struct Trial {
    /// Each lane's time and state at the trial's start.
    t0: Lanes,
    r0: Lanes,
    v0: Lanes,
    h: Lanes,
    t1: Lanes,
    /// 1 where the step ends at `duration_ms`, else 0.
    lands_on_end: [u64; LANES],
    /// The first stage each lane's step took, and its last (see [`PairStep::k_last`]).
    k1r: Lanes,
    k1v: Lanes,
    klr: Lanes,
    klv: Lanes,
    r1: Lanes,
    v1: Lanes,
    /// Error estimates (see [`PairStep::err`]).
    err: [Lanes; 4],
    /// The step's averages of `x - shift` and `(x - shift)^2` (see [`PairStep`]).
    avg_r: [Lanes; 2],
    avg_v: [Lanes; 2],
    /// 1 where the step is accepted, else 0.
    accept: [u64; LANES],
    /// 1 where the step is accepted and its state finite (the traces take it), else 0.
    kept: [u64; LANES],
    /// 1 where the lane's chunk of statistics is to be merged, else 0.
    flush: [u64; LANES],
    /// The controller's next step.
    next_h: Lanes,
    /// The interior extremes of r and v on each lane's step (see [`hermite_extreme`]).
    inner_r: Lanes,
    inner_v: Lanes,
}

/// `a` if `take`, else `b`, by their bits: a plain `if` between two loads becomes one
/// load from a selected address, which LLVM can only vectorise as a gather.
#[inline(always)]
fn blend(take: bool, a: f64, b: f64) -> f64 {
    let mask = (take as u64).wrapping_neg();
    f64::from_bits((a.to_bits() & mask) | (b.to_bits() & !mask))
}

/// The smaller of `a` and `b` as a compare and select (`b` if either is NaN; the
/// statistics of a run with a non-finite state are discarded): one `minpd`. LLVM prices
/// `f64::min`'s NaN handling high enough to keep the AVX2 statistics pass scalar.
#[inline(always)]
fn lesser(a: f64, b: f64) -> f64 {
    if a < b { a } else { b }
}

/// The larger of `a` and `b`, as [`lesser`].
#[inline(always)]
fn greater(a: f64, b: f64) -> f64 {
    if a > b { a } else { b }
}

/// The interior extreme of one variable on a step, from the cubic Hermite interpolant of
/// its end values `y0`, `y1` and slopes times the step, `hf0 = h f(t0)`, `hf1 = h f(t1)`:
/// `p(theta) = y0 + theta (hf0 + theta (a2 + theta a3))`. Where the slopes have opposite
/// signs, `p'` has one root in (0, 1), which the zero of the slopes' linear interpolation,
/// `theta = hf0 / (hf0 - hf1)`, approximates (exact for a symmetric extreme; `p` is
/// stationary there, so an error in theta costs only its square); elsewhere `y0`, which
/// the extremes hold already.
#[inline(always)]
fn hermite_extreme<A: Arith>(y0: f64, y1: f64, hf0: f64, hf1: f64) -> f64 {
    let d = y1 - y0;
    let a2 = 3.0 * d - 2.0 * hf0 - hf1;
    let a3 = hf0 + hf1 - 2.0 * d;
    let theta = hf0 / (hf0 - hf1);
    // One Newton step on p'.
    let slope = A::mul_add(theta, A::mul_add(3.0 * a3, theta, 2.0 * a2), hf0);
    let curvature = A::mul_add(6.0 * a3, theta, 2.0 * a2);
    let theta = theta - slope / curvature;
    // NaN (equal slopes) compares false.
    let theta = if theta > 0.0 && theta < 1.0 {
        theta
    } else {
        0.0
    };
    A::mul_add(theta, A::mul_add(theta, A::mul_add(theta, a3, a2), hf0), y0)
}

/// Adds one step to lane `l`'s chunk of statistics: `w` ms of time (0 if the step is not
/// taken) with the step's averages `avg[0]` of `x - shift` and `avg[1]` of
/// `(x - shift)^2`, and widens the extremes to `[lo, hi]` if `take`. Each field is read
/// once and written once as an arithmetic update that leaves it unchanged where nothing is
/// taken: written as selects between new and old values, LLVM turns the updates into
/// masked stores, gathers and scatters.
#[inline(always)]
fn sum<A: Arith>(
    m: &mut TimeMoments,
    l: usize,
    w: f64,
    avg: [f64; 2],
    take: bool,
    [lo, hi]: [f64; 2],
) {
    m.chunk_w[l] += w;
    m.chunk_1[l] = A::mul_add(w, avg[0], m.chunk_1[l]);
    m.chunk_2[l] = A::mul_add(w, avg[1], m.chunk_2[l]);
    // `A::min` and `A::max` stay min and max instructions where a compare-and-select that
    // updates memory would become masked stores or scatters.
    let (lo, hi) = if take {
        (lo, hi)
    } else {
        (f64::INFINITY, f64::NEG_INFINITY)
    };
    m.min[l] = A::min(m.min[l], lo);
    m.max[l] = A::max(m.max[l], hi);
}

/// Writes the trace rows that fall inside each lane's accepted step of this iteration,
/// from its dense output (the step's end state itself at theta = 1), into its run's rows.
/// The continuous extension is computed here, lane by lane, by taking the step again from
/// its start (the same bits), so that sweeps without traces neither compute nor store it.
#[inline(always)]
fn record_traces<P: Pair, A: Arith>(
    schedule: &AdaptiveSchedule,
    coef: &Coefficients,
    drive: Option<&Drive>,
    rows: usize,
    x: &Trial,
    s: &mut LaneState,
    trace: &mut [f64],
) {
    for l in 0..LANES {
        let Some(q) = s.run[l] else { continue };
        if x.kept[l] == 0 {
            continue;
        }
        let (t0, h) = (x.t0[l], x.h[l]);
        let t1 = t0 + h;
        let finished = s.end[l] == LaneEnd::Finished;
        let mut dense = None;
        let len = &mut s.trace_len[l];
        while *len < rows {
            let i = *len;
            let t = (i as f64 * schedule.trace_every_ms).min(schedule.duration_ms);
            // The last row belongs to the last step even if rounding puts it past t1.
            if t > t1 && !(finished && i + 1 == rows) {
                break;
            }
            let theta = ((t - t0) / h).min(1.0);
            let (r, v) = if theta == 1.0 || (finished && i + 1 == rows) {
                (s.r[l], s.v[l])
            } else {
                let step = dense.get_or_insert_with(|| {
                    P::dense::<A>(
                        coef,
                        drive,
                        l,
                        (t0, h),
                        (x.r0[l], x.v0[l]),
                        (x.k1r[l], x.k1v[l]),
                    )
                });
                step.at::<A>(theta)
            };
            trace[2 * (q * rows + i)] = r;
            trace[2 * (q * rows + i) + 1] = v;
            *len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lane 0 at eta = -5 (settles), lane 1 with delta = 0, r = 0 and eta = 1, where v' =
    /// v^2 + 1 blows up at t = pi/2 ms; the others repeat lane 0.
    fn blowup_batch() -> Batch {
        let mut b = Batch::default();
        for l in 0..LANES {
            let (eta, delta, r0) = if l == 1 {
                (1.0, 0.0, 0.0)
            } else {
                (-5.0, 1.0, 0.1)
            };
            let p = crate::model::NodeParams::from_user(1.0, eta, 15.0, delta, 0.0, 0.0);
            b.coef.set_lane(l, &p, 0.0, 0.0, 0.01);
            b.r0[l] = r0;
            b.v0[l] = if l == 1 { 0.0 } else { -2.0 };
        }
        b
    }

    fn schedule(max_trial_steps: u64) -> AdaptiveSchedule {
        AdaptiveSchedule {
            pair: AdaptivePair::Dopri5,
            duration_ms: 5.0,
            transient_ms: 0.0,
            dt_init_ms: 0.01,
            dt_max_ms: 5.0,
            trace_every_ms: 0.0,
            max_trial_steps,
        }
    }

    /// The blow-up batch as a queue of its 32 runs.
    fn blowup_queue(batch: Batch) -> [(Batch, Tolerances); 1] {
        [(batch, Tolerances::default())]
    }

    #[test]
    fn a_blow_up_stops_its_run_at_the_step_floor_and_spares_the_others() {
        let res = integrate_adaptive(
            Isa::Portable,
            &schedule(MAX_TRIAL_STEPS),
            &blowup_queue(blowup_batch()),
            LANES,
            &mut Vec::new(),
            &StopToken::new(),
        )
        .unwrap();
        let lane1 = res.runs[1];
        assert_eq!(lane1.end, LaneEnd::DtFloor);
        // v = tan(t) from v(0) = 0: the run stops at the blow-up, pi/2, up to the
        // integration error at rtol 1e-6 (measured 6e-7 ms late).
        let gap = std::f64::consts::FRAC_PI_2 - lane1.end_ms;
        assert!(gap.abs() < 1e-5, "stopped at {} ms", lane1.end_ms);
        assert!(lane1.v_final > 1e4, "v {} at the stop", lane1.v_final);
        for l in (0..LANES).filter(|&l| l != 1) {
            assert_eq!(res.runs[l].end, LaneEnd::Finished, "lane {l}");
            assert_eq!(res.runs[l].end_ms, 5.0);
        }
        // The same lanes alone: lane 0's results do not depend on lane 1's stop.
        let mut calm = blowup_batch();
        calm.coef.set_lane(
            1,
            &crate::model::NodeParams::from_user(1.0, -5.0, 15.0, 1.0, 0.0, 0.0),
            0.0,
            0.0,
            0.01,
        );
        calm.r0[1] = 0.1;
        calm.v0[1] = -2.0;
        let alone = integrate_adaptive(
            Isa::Portable,
            &schedule(MAX_TRIAL_STEPS),
            &blowup_queue(calm),
            LANES,
            &mut Vec::new(),
            &StopToken::new(),
        )
        .unwrap();
        assert_eq!(
            alone.runs[0].r_final.to_bits(),
            res.runs[0].r_final.to_bits()
        );
        assert_eq!(alone.runs[0].steps, res.runs[0].steps);
        assert!(
            alone.iterations < res.iterations,
            "lane 1 kept the batch going"
        );
    }

    #[test]
    fn the_trial_step_cap_stops_a_run() {
        let res = integrate_adaptive(
            Isa::Portable,
            &schedule(20),
            &blowup_queue(blowup_batch()),
            LANES,
            &mut Vec::new(),
            &StopToken::new(),
        )
        .unwrap();
        for (l, run) in res.runs.iter().enumerate() {
            assert_eq!(run.end, LaneEnd::StepCap, "lane {l}");
            assert_eq!(run.steps + run.rejected, 20);
            assert!(run.end_ms < 5.0);
        }
    }

    #[test]
    fn a_stop_request_ends_the_batch() {
        let stop = StopToken::new();
        stop.request();
        let res = integrate_adaptive(
            Isa::Portable,
            &schedule(MAX_TRIAL_STEPS),
            &blowup_queue(blowup_batch()),
            LANES,
            &mut Vec::new(),
            &stop,
        );
        assert!(res.is_err());
    }

    #[test]
    fn the_interpolant_finds_the_extreme_between_the_step_ends() {
        // y = sin t over steps around its maximum at pi/2, off-centre: the cubic Hermite
        // interpolant's extreme approaches 1 at fourth order (measured 9.2e-4 at h = 0.8 and
        // 5.8e-5 at 0.4: a ratio of 15.8).
        let top = |h: f64| {
            let (t0, t1) = (
                std::f64::consts::FRAC_PI_2 - 0.375 * h,
                std::f64::consts::FRAC_PI_2 + 0.625 * h,
            );
            hermite_extreme::<Unfused>(t0.sin(), t1.sin(), h * t0.cos(), h * t1.cos())
        };
        let errors = [0.8, 0.4].map(|h| (top(h) - 1.0).abs());
        // Both ends miss the maximum by far more: sin(pi/2 + 0.625 h) = 0.88 at h = 0.8.
        assert!(errors[0] < 1e-3, "{errors:?}");
        let ratio = errors[0] / errors[1];
        assert!(ratio > 14.0, "ratio {ratio}, errors {errors:?}");
        // Slopes of one sign (no extreme inside) and equal slopes: the start value, which the
        // extremes hold already.
        assert_eq!(hermite_extreme::<Unfused>(0.0, 1.0, 0.5, 1.5), 0.0);
        assert_eq!(hermite_extreme::<Fused>(0.0, 1.0, 0.5, 1.5), 0.0);
        assert_eq!(hermite_extreme::<Unfused>(2.0, 2.0, 0.0, 0.0), 2.0);
        // A minimum as well: y = cos t around pi.
        let (t0, t1) = (std::f64::consts::PI - 0.2, std::f64::consts::PI + 0.3);
        let bottom =
            hermite_extreme::<Unfused>(t0.cos(), t1.cos(), -0.5 * t0.sin(), -0.5 * t1.sin());
        // Within the cubic's interpolation error, about h^4 |y''''| / 384 = 1.6e-4 here.
        assert!((bottom + 1.0).abs() < 3e-4, "{bottom}");
        assert!(bottom < t0.cos().min(t1.cos()));
    }

    #[test]
    fn factors_round_to_eight_mantissa_bits() {
        // In [1, 2) the factors are multiples of 2^-8: 1 + 2^-9 is a tie and rounds up,
        // just below it down.
        assert_eq!(round_factor(1.0), 1.0);
        assert_eq!(round_factor(1.0 + 1.0 / 512.0), 1.0 + 1.0 / 256.0);
        assert_eq!(round_factor(1.0 + 1.0 / 512.0 - 1e-12), 1.0);
        assert_eq!(round_factor(5.0), 5.0);
        for i in 0..10_000 {
            let fac = 0.2 + 4.8 * i as f64 / 10_000.0;
            let q = round_factor(fac);
            assert!((q - fac).abs() <= fac / 512.0, "{fac} -> {q}");
            // 8 mantissa bits: q 2^(8 - k) is an integer for q in [2^k, 2^(k+1)).
            let scaled = q * 2f64.powi(8 - q.log2().floor() as i32);
            assert_eq!(scaled, scaled.round(), "{fac} -> {q}");
        }
    }
}
