//! The adaptive kernel: Dormand–Prince 5(4) with a step size per lane, chosen by the
//! embedded error estimate (docs/adaptive.md).
//!
//! Every lane of a batch carries its own time, step size, state and first stage (FSAL).
//! Each iteration, every lane that has not finished takes one trial step; the scaled RMS
//! norm of the error estimate over (r, v) accepts or rejects it, and a PI controller
//! (Gustafsson) proposes the next step. Acceptance, the controller, the statistics and the
//! end of a run are all per-lane selects inside one loop over the lanes: no branch depends
//! on a lane's data, so a run's bits never depend on its neighbours. A lane that has
//! finished idles (its results frozen) until the batch's last lane finishes.
//!
//! Steps land exactly on `duration_ms` and on every edge of a `step` or `pulse` input;
//! continuous inputs (`sine`) are evaluated at each stage's own time. Statistics are time
//! averages of the continuous extension (dense output) by 5-point Gauss–Legendre
//! quadrature on each accepted step, clipped to [transient_ms, duration_ms]; traces are the
//! dense output at their times. The body is generic over the path's [`Arith`], compiled
//! for the baseline and for AVX2+FMA like the fixed-step kernel. No I/O, and no allocation
//! inside the step loop.

use super::math::{self, Arith, Fused, Unfused};
use super::schemes::{DOPRI5_A, DOPRI5_B, rhs};
use super::{Batch, Coefficients, DIVERGED, Drive, Isa, LANES, Lanes, StopToken, Stopped, Summary};

/// Stage times `c_i` of the seven stages (the seventh is the FSAL stage at the step's end).
const DOPRI5_C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];

/// Error coefficients: the fifth-order weights minus the embedded fourth-order ones
/// (`5179/57600, 0, 7571/16695, 393/640, -92097/339200, 187/2100, 1/40`).
pub(super) const DOPRI5_E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

/// Shampine's continuous extension as Hairer's `dopri5` writes it: with `d = y1 - y0`,
/// `y(theta) = y0 + theta (d + (1 - theta) (h k1 - d + theta (d - h k7 - (h k1 - d)
/// + (1 - theta) h sum_i D_i k_i)))`, of degree 4 in theta.
pub(super) const DOPRI5_D: [f64; 7] = [
    -12715105075.0 / 11282082432.0,
    0.0,
    87487479700.0 / 32700410799.0,
    -10690763975.0 / 1880347072.0,
    701980252875.0 / 199316789632.0,
    -1453857185.0 / 822651844.0,
    69997945.0 / 29380423.0,
];

/// 5-point Gauss–Legendre nodes on [0, 1] (exact for polynomials of degree 9: the dense
/// output squared is of degree 8).
const GL_NODES: [f64; 5] = [
    0.5 - 0.5 * 0.906_179_845_938_664,
    0.5 - 0.5 * 0.538_469_310_105_683_1,
    0.5,
    0.5 + 0.5 * 0.538_469_310_105_683_1,
    0.5 + 0.5 * 0.906_179_845_938_664,
];

/// The weights of [`GL_NODES`] (summing to 1).
const GL_WEIGHTS: [f64; 5] = [
    0.5 * 0.236_926_885_056_189_1,
    0.5 * 0.478_628_670_499_366_5,
    0.5 * 0.568_888_888_888_888_9,
    0.5 * 0.478_628_670_499_366_5,
    0.5 * 0.236_926_885_056_189_1,
];

/// Safety factor of the step-size controller.
const SAFETY: f64 = 0.9;
/// Controller exponents (Gustafsson's PI controller for a 5(4) pair):
/// `fac = SAFETY err^-ALPHA err_prev^BETA`.
const ALPHA: f64 = 0.7 / 5.0;
const BETA: f64 = 0.4 / 5.0;
/// Bounds of the factor by which one step changes the next.
const FAC_MIN: f64 = 0.2;
const FAC_MAX: f64 = 5.0;
/// ln(1e-4): the floor of the previous error in the controller.
const LN_1E_4: f64 = -9.210_340_371_976_182;
/// A step that comes within this factor of an edge or of `duration_ms` is stretched to land
/// on it (no sliver of a step after it).
const LAND_STRETCH: f64 = 1.01;

/// A run stops when its step-size proposal falls below this (ms): the solution cannot be
/// followed at the tolerances asked for.
pub const DT_FLOOR_MS: f64 = 1e-12;

/// A run stops after this many trial steps (accepted plus rejected).
pub const MAX_TRIAL_STEPS: u64 = 100_000_000;

/// How a lane's run ended.
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

/// What the lanes of an adaptive batch share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveSchedule {
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

/// Time statistics of one variable over the lanes: the weight (time covered), the time
/// average and the integral of the squared deviation from it (merged step by step as in
/// Chan et al.'s pairwise update), and the extremes.
#[derive(Debug, Clone, Copy)]
pub struct TimeMoments {
    weight: Lanes,
    mean: Lanes,
    m2: Lanes,
    min: Lanes,
    max: Lanes,
}

impl TimeMoments {
    fn new() -> TimeMoments {
        TimeMoments {
            weight: [0.0; LANES],
            mean: [0.0; LANES],
            m2: [0.0; LANES],
            min: [f64::INFINITY; LANES],
            max: [f64::NEG_INFINITY; LANES],
        }
    }

    /// Lane `l`'s time average, standard deviation (of the time distribution), min, max.
    pub fn summary(&self, l: usize) -> Summary {
        Summary {
            mean: self.mean[l],
            std: (self.m2[l] / self.weight[l]).max(0.0).sqrt(),
            min: self.min[l],
            max: self.max[l],
        }
    }
}

/// What an adaptive batch produces besides traces.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveResult {
    /// How each lane's run ended.
    pub end: [LaneEnd; LANES],
    /// Time of the end, ms: `duration_ms`, the end of the step whose state diverged, or the
    /// time reached when the run stopped.
    pub end_ms: Lanes,
    /// Accepted steps per lane.
    pub steps: [u64; LANES],
    /// Rejected trial steps per lane.
    pub rejected: [u64; LANES],
    /// Iterations of the batch (each a trial step of every lane still running): lane
    /// utilisation is the lanes' trial steps over `LANES * iterations`.
    pub iterations: u64,
    /// Statistics of r (kHz).
    pub r: TimeMoments,
    /// Statistics of v.
    pub v: TimeMoments,
    /// r (kHz) at the end.
    pub r_final: Lanes,
    /// v at the end.
    pub v_final: Lanes,
    /// Trace rows written per lane (rows `0 .. trace_len`).
    pub trace_len: [usize; LANES],
}

/// Iterations between the kernel's reads of its [`StopToken`]: 64 iterations of 32 trial
/// steps take about 0.1 ms.
const POLL_ITERATIONS: u64 = 64;

/// Integrates one batch adaptively. `trace` receives `schedule.trace_rows()` rows, each the
/// r lanes then the v lanes (kernel units), NaN past a lane's `trace_len`. Returns
/// [`Stopped`] within [`POLL_ITERATIONS`] iterations of a request on `stop`.
pub fn integrate_adaptive(
    isa: Isa,
    schedule: &AdaptiveSchedule,
    tol: &Tolerances,
    batch: &Batch,
    trace: &mut Vec<f64>,
    stop: &StopToken,
) -> Result<AdaptiveResult, Stopped> {
    trace.clear();
    trace.resize(schedule.trace_rows() * 2 * LANES, f64::NAN);
    match isa {
        // The lane loop does not vectorise (docs/adaptive.md), so wider vectors would not
        // help: the AVX-512 path runs the AVX2+FMA build, with the same fused arithmetic and
        // therefore the same bits.
        Isa::Avx512 | Isa::Avx2Fma => avx2::run(schedule, tol, batch, trace, stop),
        Isa::Portable => kernel::<Unfused>(schedule, tol, batch, trace, stop),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;

    /// The adaptive kernel compiled with AVX2+FMA enabled.
    pub fn run(
        schedule: &AdaptiveSchedule,
        tol: &Tolerances,
        batch: &Batch,
        trace: &mut [f64],
        stop: &StopToken,
    ) -> Result<AdaptiveResult, Stopped> {
        assert!(
            Isa::Avx2Fma.is_available(),
            "AVX2+FMA kernel requested on a CPU without it"
        );
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        unsafe { run_avx2(schedule, tol, batch, trace, stop) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(
        schedule: &AdaptiveSchedule,
        tol: &Tolerances,
        batch: &Batch,
        trace: &mut [f64],
        stop: &StopToken,
    ) -> Result<AdaptiveResult, Stopped> {
        kernel::<Fused>(schedule, tol, batch, trace, stop)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::*;
    pub fn run(
        _: &AdaptiveSchedule,
        _: &Tolerances,
        _: &Batch,
        _: &mut [f64],
        _: &StopToken,
    ) -> Result<AdaptiveResult, Stopped> {
        unreachable!("Isa::detect never selects AVX2 off x86-64")
    }
}

/// The dense output of one variable at `theta` from its coefficients
/// `[y0, d, h k1 - d, d - h k7 - (h k1 - d), h sum D_i k_i]`.
#[inline(always)]
pub(super) fn dense<A: Arith>(q: &[f64; 5], theta: f64) -> f64 {
    let s = 1.0 - theta;
    let inner = A::mul_add(s, q[4], q[3]);
    let inner = A::mul_add(theta, inner, q[2]);
    let inner = A::mul_add(s, inner, q[1]);
    A::mul_add(theta, inner, q[0])
}

/// The dense-output coefficients of one variable (see [`dense`]).
#[inline(always)]
pub(super) fn dense_coefficients<A: Arith>(y0: f64, y1: f64, h: f64, k: &[f64; 7]) -> [f64; 5] {
    let d = y1 - y0;
    let b = A::mul_add(h, k[0], -d);
    let c = A::mul_add(-h, k[6], d) - b;
    let mut s = 0.0;
    for i in 0..7 {
        s = A::mul_add(DOPRI5_D[i], k[i], s);
    }
    [y0, d, b, c, h * s]
}

/// One Dormand–Prince 5(4) step of lane `l` from `(r, v)` at `t` over `h`, with `k1`
/// given: the stages, the fifth-order solution and the error estimate.
#[inline(always)]
pub(super) fn dopri_step<A: Arith>(
    c: &Coefficients,
    drive: Option<&Drive>,
    l: usize,
    t: f64,
    h: f64,
    (r, v): (f64, f64),
    k1: (f64, f64),
) -> ([f64; 7], [f64; 7], f64, f64, f64, f64) {
    let input = |c_i: f64| {
        drive.map(|d| {
            let ts = A::mul_add(c_i, h, t);
            [
                d.waveform[0].lane_value(l, t, ts),
                d.waveform[1].lane_value(l, t, ts),
            ]
        })
    };
    let mut kr = [0.0; 7];
    let mut kv = [0.0; 7];
    (kr[0], kv[0]) = k1;
    for i in 1..6 {
        let (mut sr, mut sv) = (0.0, 0.0);
        for j in 0..i {
            sr = A::mul_add(DOPRI5_A[i - 1][j], kr[j], sr);
            sv = A::mul_add(DOPRI5_A[i - 1][j], kv[j], sv);
        }
        (kr[i], kv[i]) = rhs::<A>(
            c,
            l,
            A::mul_add(h, sr, r),
            A::mul_add(h, sv, v),
            input(DOPRI5_C[i]),
        );
    }
    let (mut sr, mut sv) = (0.0, 0.0);
    for i in 0..6 {
        sr = A::mul_add(DOPRI5_B[i], kr[i], sr);
        sv = A::mul_add(DOPRI5_B[i], kv[i], sv);
    }
    let (r1, v1) = (A::mul_add(h, sr, r), A::mul_add(h, sv, v));
    (kr[6], kv[6]) = rhs::<A>(c, l, r1, v1, input(DOPRI5_C[6]));
    let (mut er, mut ev) = (0.0, 0.0);
    for i in 0..7 {
        er = A::mul_add(DOPRI5_E[i], kr[i], er);
        ev = A::mul_add(DOPRI5_E[i], kv[i], ev);
    }
    (kr, kv, r1, v1, h * er, h * ev)
}

/// Per-lane state of the adaptive kernel.
struct Lanes7 {
    t: Lanes,
    h: Lanes,
    r: Lanes,
    v: Lanes,
    k1r: Lanes,
    k1v: Lanes,
    /// ln of the last accepted step's error (at least 1e-4).
    ln_err_prev: Lanes,
    /// The lane's last trial step was rejected (no growth on the next).
    rejected_last: [bool; LANES],
    end: [LaneEnd; LANES],
    end_ms: Lanes,
    steps: [u64; LANES],
    rejected: [u64; LANES],
}

#[inline(always)]
fn kernel<A: Arith>(
    schedule: &AdaptiveSchedule,
    tol: &Tolerances,
    batch: &Batch,
    trace: &mut [f64],
    stop: &StopToken,
) -> Result<AdaptiveResult, Stopped> {
    let driven = batch
        .drive
        .waveform
        .iter()
        .any(|w| *w != super::Waveform::None);
    // Without time-varying inputs the lane loop compiles without any input code.
    if driven {
        steps::<A, true>(schedule, tol, batch, trace, stop)
    } else {
        steps::<A, false>(schedule, tol, batch, trace, stop)
    }
}

/// The iterations of a batch; `DRIVEN`: some input varies in time.
#[inline(always)]
fn steps<A: Arith, const DRIVEN: bool>(
    schedule: &AdaptiveSchedule,
    tol: &Tolerances,
    batch: &Batch,
    trace: &mut [f64],
    stop: &StopToken,
) -> Result<AdaptiveResult, Stopped> {
    let c = &batch.coef;
    let drive = DRIVEN.then_some(&batch.drive);
    // With inputs that change over time the first stage is evaluated afresh at each step
    // (an edge may have passed); otherwise the last stage of a step is the next one's first.
    let fsal = !DRIVEN;
    let (duration, transient) = (schedule.duration_ms, schedule.transient_ms);
    let h0 = schedule.dt_init_ms.min(schedule.dt_max_ms);
    let mut s = Lanes7 {
        t: [0.0; LANES],
        h: [h0; LANES],
        r: batch.r0,
        v: batch.v0,
        k1r: [0.0; LANES],
        k1v: [0.0; LANES],
        ln_err_prev: [LN_1E_4; LANES],
        rejected_last: [false; LANES],
        end: [LaneEnd::Running; LANES],
        end_ms: [duration; LANES],
        steps: [0; LANES],
        rejected: [0; LANES],
    };
    if fsal {
        for l in 0..LANES {
            (s.k1r[l], s.k1v[l]) = rhs::<A>(c, l, s.r[l], s.v[l], None);
        }
    }
    let mut mr = TimeMoments::new();
    let mut mv = TimeMoments::new();
    let rows = schedule.trace_rows();
    let mut trace_len = [0usize; LANES];
    if rows > 0 {
        trace[..LANES].copy_from_slice(&s.r);
        trace[LANES..2 * LANES].copy_from_slice(&s.v);
        trace_len = [1; LANES];
    }
    // The accepted step of each lane in this iteration, for the traces: its start, length
    // and dense-output coefficients.
    let mut accepted = [false; LANES];
    let mut step_t0 = [0.0; LANES];
    let mut step_h = [0.0; LANES];
    // Coefficient i of every lane side by side (stores the lane loop can vectorise).
    let mut qr = [[0.0; LANES]; 5];
    let mut qv = [[0.0; LANES]; 5];
    let mut iterations = 0u64;
    while s.end.contains(&LaneEnd::Running) {
        iterations += 1;
        if iterations.is_multiple_of(POLL_ITERATIONS) && stop.is_requested() {
            return Err(Stopped);
        }
        for l in 0..LANES {
            let running = s.end[l] == LaneEnd::Running;
            let t0 = s.t[l];
            let (r0, v0) = (s.r[l], s.v[l]);
            // The next point the step must not pass: duration_ms or an input edge.
            let stop = match drive {
                Some(d) => duration
                    .min(d.waveform[0].next_edge(l, t0))
                    .min(d.waveform[1].next_edge(l, t0)),
                None => duration,
            };
            let proposal = s.h[l];
            let land = proposal * LAND_STRETCH >= stop - t0;
            let h = if land { stop - t0 } else { proposal };
            let t1 = if land { stop } else { t0 + h };
            let k1 = if fsal {
                (s.k1r[l], s.k1v[l])
            } else {
                let input = drive.map(|d| {
                    [
                        d.waveform[0].lane_value(l, t0, t0),
                        d.waveform[1].lane_value(l, t0, t0),
                    ]
                });
                rhs::<A>(c, l, r0, v0, input)
            };
            let (kr, kv, r1, v1, er, ev) = dopri_step::<A>(c, drive, l, t0, h, (r0, v0), k1);
            let sc_r = A::mul_add(tol.rtol[l], r0.abs().max(r1.abs()), tol.atol_r[l]);
            let sc_v = A::mul_add(tol.rtol[l], v0.abs().max(v1.abs()), tol.atol_v[l]);
            let (xr, xv) = (er / sc_r, ev / sc_v);
            let err = (0.5 * A::mul_add(xr, xr, xv * xv)).sqrt();
            // NaN compares false: a non-finite trial step is rejected.
            let accept = running && err <= 1.0;
            // The controller, on an error clamped into ln's domain (NaN counts as huge); the
            // powers of the error go through the kernel's own ln and expm1 (no library call
            // in the lane loop).
            let e = if err >= 1e-10 { err.min(1e10) } else { 1e-10 };
            let e = if err.is_nan() { 1e10 } else { e };
            let ln_e = math::ln::<A>(e);
            let grow = SAFETY
                * (1.0 + math::expm1::<A>(A::mul_add(-ALPHA, ln_e, BETA * s.ln_err_prev[l])));
            let grow = grow.clamp(FAC_MIN, FAC_MAX);
            let grow = if s.rejected_last[l] {
                grow.min(1.0)
            } else {
                grow
            };
            let shrink = (SAFETY * (1.0 + math::expm1::<A>(-ALPHA * ln_e))).clamp(FAC_MIN, 1.0);
            let next_h = (h * if accept { grow } else { shrink }).min(schedule.dt_max_ms);

            // Statistics over the part of the step inside [transient, duration].
            let a = t0.max(transient);
            let w = if accept { (t1 - a).max(0.0) } else { 0.0 };
            let qr_l = dense_coefficients::<A>(r0, r1, h, &kr);
            let qv_l = dense_coefficients::<A>(v0, v1, h, &kv);
            let inv_h = 1.0 / h;
            let mut yr = [0.0; 5];
            let mut yv = [0.0; 5];
            let (mut mean_r, mut mean_v) = (0.0, 0.0);
            for j in 0..5 {
                let theta = (A::mul_add(w, GL_NODES[j], a) - t0) * inv_h;
                yr[j] = dense::<A>(&qr_l, theta);
                yv[j] = dense::<A>(&qv_l, theta);
                mean_r = A::mul_add(GL_WEIGHTS[j], yr[j], mean_r);
                mean_v = A::mul_add(GL_WEIGHTS[j], yv[j], mean_v);
            }
            let (mut m2_r, mut m2_v) = (0.0, 0.0);
            for j in 0..5 {
                let (dr, dv) = (yr[j] - mean_r, yv[j] - mean_v);
                m2_r = A::mul_add(GL_WEIGHTS[j] * dr, dr, m2_r);
                m2_v = A::mul_add(GL_WEIGHTS[j] * dv, dv, m2_v);
            }
            let in_window = w > 0.0;
            merge::<A>(&mut mr, l, in_window, w, mean_r, w * m2_r, &yr);
            merge::<A>(&mut mv, l, in_window, w, mean_v, w * m2_v, &yv);
            let end_in_window = accept && t1 >= transient;
            include_extremum::<A>(&mut mr, l, end_in_window, r1);
            include_extremum::<A>(&mut mv, l, end_in_window, v1);

            // The lane moves on, or stays for a retry.
            s.t[l] = if accept { t1 } else { t0 };
            s.r[l] = if accept { r1 } else { r0 };
            s.v[l] = if accept { v1 } else { v0 };
            s.k1r[l] = if accept { kr[6] } else { s.k1r[l] };
            s.k1v[l] = if accept { kv[6] } else { s.k1v[l] };
            // The last accepted step's error, at least 1e-4 (as in Hairer's dopri5).
            s.ln_err_prev[l] = if accept {
                ln_e.max(LN_1E_4)
            } else {
                s.ln_err_prev[l]
            };
            s.h[l] = if running { next_h } else { s.h[l] };
            s.rejected_last[l] = if running { !accept } else { s.rejected_last[l] };
            s.steps[l] += accept as u64;
            s.rejected[l] += (running && !accept) as u64;

            let blown = accept && !((r1.abs() < DIVERGED) & (v1.abs() < DIVERGED));
            let done = accept && land && stop == duration;
            let floor = running && next_h < DT_FLOOR_MS;
            let cap = running && s.steps[l] + s.rejected[l] >= schedule.max_trial_steps;
            let end = if blown {
                LaneEnd::Diverged
            } else if done {
                LaneEnd::Finished
            } else if floor {
                LaneEnd::DtFloor
            } else if cap {
                LaneEnd::StepCap
            } else {
                s.end[l]
            };
            s.end_ms[l] = if running && end != LaneEnd::Running {
                s.t[l]
            } else {
                s.end_ms[l]
            };
            s.end[l] = end;

            accepted[l] = accept && !blown;
            step_t0[l] = t0;
            step_h[l] = h;
            for i in 0..5 {
                qr[i][l] = qr_l[i];
                qv[i][l] = qv_l[i];
            }
        }
        if rows > 0 {
            record_traces::<A>(
                schedule,
                rows,
                (&accepted, &step_t0, &step_h),
                (&qr, &qv),
                (&s.r, &s.v, &s.end),
                &mut trace_len,
                trace,
            );
        }
    }
    Ok(AdaptiveResult {
        end: s.end,
        end_ms: s.end_ms,
        steps: s.steps,
        rejected: s.rejected,
        iterations,
        r: mr,
        v: mv,
        r_final: s.r,
        v_final: s.v,
        trace_len,
    })
}

/// Widens lane `l`'s min and max to `x` where `take` (a select, no branch).
#[inline(always)]
fn include_extremum<A: Arith>(m: &mut TimeMoments, l: usize, take: bool, x: f64) {
    m.min[l] = if take { A::min(m.min[l], x) } else { m.min[l] };
    m.max[l] = if take { A::max(m.max[l], x) } else { m.max[l] };
}

/// Merges one step's quadrature (`w` ms of time, its average and squared-deviation
/// integral) into lane `l`'s running time statistics, and the quadrature points into the
/// extremes, if `take`.
#[inline(always)]
fn merge<A: Arith>(
    m: &mut TimeMoments,
    l: usize,
    take: bool,
    w: f64,
    mean: f64,
    m2: f64,
    points: &[f64; 5],
) {
    let total = m.weight[l] + w;
    let share = if take { w / total } else { 0.0 };
    let delta = mean - m.mean[l];
    let merged_mean = A::mul_add(delta, share, m.mean[l]);
    let merged_m2 = A::mul_add(delta * delta * m.weight[l], share, m.m2[l] + m2);
    m.mean[l] = if take { merged_mean } else { m.mean[l] };
    m.m2[l] = if take { merged_m2 } else { m.m2[l] };
    m.weight[l] = if take { total } else { m.weight[l] };
    let (mut lo, mut hi) = (m.min[l], m.max[l]);
    for &y in points {
        lo = A::min(lo, y);
        hi = A::max(hi, y);
    }
    m.min[l] = if take { lo } else { m.min[l] };
    m.max[l] = if take { hi } else { m.max[l] };
}

/// Writes the trace rows that fall inside each lane's accepted step of this iteration,
/// from its dense output (the step's end state itself at theta = 1).
#[inline(always)]
fn record_traces<A: Arith>(
    schedule: &AdaptiveSchedule,
    rows: usize,
    (accepted, t0, h): (&[bool; LANES], &Lanes, &Lanes),
    (qr, qv): (&[Lanes; 5], &[Lanes; 5]),
    (r1, v1, end): (&Lanes, &Lanes, &[LaneEnd; LANES]),
    trace_len: &mut [usize; LANES],
    trace: &mut [f64],
) {
    for l in 0..LANES {
        if !accepted[l] {
            continue;
        }
        let t1 = t0[l] + h[l];
        let finished = end[l] == LaneEnd::Finished;
        while trace_len[l] < rows {
            let i = trace_len[l];
            let t = (i as f64 * schedule.trace_every_ms).min(schedule.duration_ms);
            // The last row belongs to the last step even if rounding puts it past t1.
            if t > t1 && !(finished && i + 1 == rows) {
                break;
            }
            let theta = ((t - t0[l]) / h[l]).min(1.0);
            let (r, v) = if theta == 1.0 || (finished && i + 1 == rows) {
                (r1[l], v1[l])
            } else {
                let q = |c: &[Lanes; 5]| std::array::from_fn(|i| c[i][l]);
                (dense::<A>(&q(qr), theta), dense::<A>(&q(qv), theta))
            };
            trace[i * 2 * LANES + l] = r;
            trace[i * 2 * LANES + LANES + l] = v;
            trace_len[l] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A linear ODE y' = lambda y solved by the scalar building blocks: the stage and
    /// dense-output coefficients, checked against exp(lambda t).
    fn step_linear(lambda: f64, y0: f64, h: f64) -> ([f64; 7], f64, f64) {
        // Stages of y' = lambda y with the same tableau as dopri_step.
        let mut k = [0.0; 7];
        k[0] = lambda * y0;
        for i in 1..6 {
            let s: f64 = (0..i).map(|j| DOPRI5_A[i - 1][j] * k[j]).sum();
            k[i] = lambda * (y0 + h * s);
        }
        let y1 = y0 + h * (0..6).map(|i| DOPRI5_B[i] * k[i]).sum::<f64>();
        k[6] = lambda * y1;
        let err = h * (0..7).map(|i| DOPRI5_E[i] * k[i]).sum::<f64>();
        (k, y1, err)
    }

    #[test]
    fn tableau_rows_sum_to_their_stage_times_and_weights_to_one() {
        for i in 1..6 {
            let row: f64 = DOPRI5_A[i - 1].iter().sum();
            assert!((row - DOPRI5_C[i]).abs() < 1e-15, "stage {i}: {row}");
        }
        assert!((DOPRI5_B.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        // The embedded weights also sum to one, so the error weights sum to zero.
        assert!(DOPRI5_E.iter().sum::<f64>().abs() < 1e-16);
        assert!((GL_WEIGHTS.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn dense_output_ends_on_the_step_and_interpolates_to_fourth_order() {
        let lambda = -1.3;
        let mut max_err = Vec::new();
        for h in [0.1, 0.05] {
            let (k, y1, _) = step_linear(lambda, 1.0, h);
            let q = dense_coefficients::<Unfused>(1.0, y1, h, &k);
            // theta = 1 is the step's solution, up to the rounding of y0 + (y1 - y0).
            assert!((dense::<Unfused>(&q, 1.0) - y1).abs() <= f64::EPSILON * y1.abs());
            assert_eq!(dense::<Unfused>(&q, 0.0), 1.0);
            let worst = (1..20)
                .map(|i| {
                    let theta = i as f64 / 20.0;
                    (dense::<Unfused>(&q, theta) - (lambda * theta * h).exp()).abs()
                })
                .fold(0.0, f64::max);
            max_err.push(worst);
        }
        // A fourth-order continuous extension: local error O(h^5), so halving h divides
        // the interpolation error by about 32 (a third-order one would give 16, a fifth 64).
        let ratio = max_err[0] / max_err[1];
        assert!(
            ratio > 26.0 && ratio < 40.0,
            "ratio {ratio}, errors {max_err:?}"
        );
    }

    #[test]
    fn the_error_estimate_is_of_fifth_order_in_h() {
        // The embedded estimate is the local error of the fourth-order solution: O(h^5).
        let lambda = -1.3;
        let e = |h: f64| step_linear(lambda, 1.0, h).2.abs();
        let ratio = e(0.2) / e(0.1);
        assert!(ratio > 28.0 && ratio < 36.0, "ratio {ratio}");
        // And the fifth-order solution's own error is O(h^6).
        let g = |h: f64| (step_linear(lambda, 1.0, h).1 - (lambda * h).exp()).abs();
        let ratio = g(0.2) / g(0.1);
        assert!(ratio > 56.0 && ratio < 72.0, "ratio {ratio}");
    }

    #[test]
    fn gauss_legendre_is_exact_for_degree_nine() {
        let exact = 1.0 / 10.0;
        let q: f64 = (0..5).map(|j| GL_WEIGHTS[j] * GL_NODES[j].powi(9)).sum();
        assert!((q - exact).abs() < 1e-16, "{q}");
    }

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
            duration_ms: 5.0,
            transient_ms: 0.0,
            dt_init_ms: 0.01,
            dt_max_ms: 5.0,
            trace_every_ms: 0.0,
            max_trial_steps,
        }
    }

    #[test]
    fn a_blow_up_stops_its_run_at_the_step_floor_and_spares_the_others() {
        let tol = Tolerances::default();
        let res = integrate_adaptive(
            Isa::Portable,
            &schedule(MAX_TRIAL_STEPS),
            &tol,
            &blowup_batch(),
            &mut Vec::new(),
            &StopToken::new(),
        )
        .unwrap();
        assert_eq!(res.end[1], LaneEnd::DtFloor);
        // v = tan(t) from v(0) = 0: the run stops at the blow-up, pi/2, up to the
        // integration error at rtol 1e-6 (measured 6e-7 ms late).
        let gap = std::f64::consts::FRAC_PI_2 - res.end_ms[1];
        assert!(gap.abs() < 1e-5, "stopped at {} ms", res.end_ms[1]);
        assert!(res.v_final[1] > 1e4, "v {} at the stop", res.v_final[1]);
        for l in (0..LANES).filter(|&l| l != 1) {
            assert_eq!(res.end[l], LaneEnd::Finished, "lane {l}");
            assert_eq!(res.end_ms[l], 5.0);
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
            &tol,
            &calm,
            &mut Vec::new(),
            &StopToken::new(),
        )
        .unwrap();
        assert_eq!(alone.r_final[0].to_bits(), res.r_final[0].to_bits());
        assert_eq!(alone.steps[0], res.steps[0]);
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
            &Tolerances::default(),
            &blowup_batch(),
            &mut Vec::new(),
            &StopToken::new(),
        )
        .unwrap();
        for l in 0..LANES {
            assert_eq!(res.end[l], LaneEnd::StepCap, "lane {l}");
            assert_eq!(res.steps[l] + res.rejected[l], 20);
            assert!(res.end_ms[l] < 5.0);
        }
    }

    #[test]
    fn a_stop_request_ends_the_batch() {
        let stop = StopToken::new();
        stop.request();
        let res = integrate_adaptive(
            Isa::Portable,
            &schedule(MAX_TRIAL_STEPS),
            &Tolerances::default(),
            &blowup_batch(),
            &mut Vec::new(),
            &stop,
        );
        assert!(res.is_err());
    }
}
