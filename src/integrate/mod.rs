//! The integration kernel: one lane batch of runs, the time loop inside.
//!
//! A batch holds [`LANES`] runs in structure-of-arrays form. Every step is one loop over
//! the lanes (the scheme's step; white normals in another) with no branches that depend
//! on a lane's value, so LLVM compiles it to SIMD; every `CHUNK` (16) steps, one pass over the
//! stored states updates the statistics and divergence counts. The same body, generic over
//! the scheme and the [`Arith`] of the path, is compiled for the x86-64 baseline, for
//! AVX2+FMA and for AVX-512, and [`Isa::detect`] picks the best this CPU runs. The kernel
//! does no I/O and no allocation inside the time loop; every [`POLL_STEPS`] steps it reads
//! a [`StopToken`], so that a run of any length can be stopped.

mod adaptive;
mod drive;
pub mod math;
mod moments;
mod rng;
mod schemes;
pub mod stream;
mod ziggurat;

pub use crate::model::Method;
pub use adaptive::{
    AdaptivePair, AdaptiveResult, AdaptiveRun, AdaptiveSchedule, DT_FLOOR_MS, LaneEnd,
    MAX_TRIAL_STEPS, Tolerances, integrate_adaptive,
};
pub use drive::{Drive, Ou, Waveform};
pub use moments::Summary;
pub use rng::{LaneNormals, LaneRng};
pub use schemes::{Dopri5, Euler, ExpEuler, Heun, LaneStep, Rk4, Scheme};
pub use stream::Xoshiro;

use std::sync::atomic::{AtomicBool, Ordering};

use math::{Arith, Fused, Unfused};

use moments::Moments;

/// Runs per lane batch. Each step is a long dependent chain (phi1's polynomial), so many
/// independent lanes are needed to keep the vector units busy: 32 measured fastest of
/// 16/32/64 (docs/performance.md).
pub const LANES: usize = 32;

/// One value per lane.
pub type Lanes = [f64; LANES];

/// The instruction set a kernel was compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 baseline (SSE2), or whatever the target's baseline is.
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2Fma,
    /// x86-64 with AVX-512 F, DQ and VL (and AVX2, FMA): 8 lanes per vector, 32 vector
    /// registers, mask registers.
    Avx512,
}

impl Isa {
    /// Every path, from the most to the least widely available.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2Fma, Isa::Avx512];

    /// The best path this CPU supports.
    pub fn detect() -> Isa {
        *Isa::available()
            .last()
            .expect("the portable path runs anywhere")
    }

    /// The paths this CPU supports, portable first and the best last.
    pub fn available() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| isa.is_available())
            .collect()
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Isa::Portable => true,
                Isa::Avx2Fma => has!("avx2") && has!("fma"),
                Isa::Avx512 => {
                    Isa::Avx2Fma.is_available()
                        && has!("avx512f")
                        && has!("avx512dq")
                        && has!("avx512vl")
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Isa::Portable
        }
    }

    /// The name in `--isa`'s messages, metadata and `plan`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2+fma",
            Isa::Avx512 => "avx512",
        }
    }

    /// The CPU features the path needs, as messages name them.
    pub fn features(self) -> &'static str {
        match self {
            Isa::Portable => "nothing beyond the baseline",
            Isa::Avx2Fma => "AVX2+FMA",
            Isa::Avx512 => "AVX-512 F/DQ/VL with AVX2+FMA",
        }
    }
}

/// Per-lane coefficients of the right-hand side, in kernel units (r in kHz, t in ms).
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
pub struct Coefficients {
    /// `delta/(pi tau^2) + I_r` (kHz/ms), with the constant part of I_r.
    pub r_drive: Lanes,
    /// `eta + I_v`, with the constant part of I_v.
    pub v_drive: Lanes,
    /// `2/tau` (1/ms).
    pub two_inv_tau: Lanes,
    /// `2 dt/tau`: the exponential-Euler argument is this times v.
    pub two_dt_inv_tau: Lanes,
    /// The largest |v| whose exponential-Euler argument `2 dt v/tau`, as the step rounds
    /// it, surely lies within phi1's polynomial range: a bound of the range check without
    /// its multiplication.
    pub fast_v_max: Lanes,
    /// `1/tau` (1/ms).
    pub inv_tau: Lanes,
    /// `J tau` (ms).
    pub j_tau: Lanes,
    /// `(pi tau)^2` (ms^2).
    pub pi_tau_sq: Lanes,
    /// White-noise increment scale on r: `sigma_r sqrt(dt)` (kHz).
    pub noise_r: Lanes,
    /// White-noise increment scale on v: `sigma_v sqrt(dt)`.
    pub noise_v: Lanes,
}

impl Default for Coefficients {
    fn default() -> Coefficients {
        let z = [0.0; LANES];
        Coefficients {
            r_drive: z,
            v_drive: z,
            two_inv_tau: z,
            two_dt_inv_tau: z,
            // An argument of zero is in range whatever v is.
            fast_v_max: [f64::INFINITY; LANES],
            inv_tau: z,
            j_tau: z,
            pi_tau_sq: z,
            noise_r: z,
            noise_v: z,
        }
    }
}

impl Coefficients {
    /// Sets lane `l` from a node's parameters, its noise sigmas (kHz/sqrt(ms), 1/sqrt(ms))
    /// and the step.
    pub fn set_lane(
        &mut self,
        l: usize,
        p: &crate::model::NodeParams,
        sigma_r: f64,
        sigma_v: f64,
        dt: f64,
    ) {
        use std::f64::consts::PI;
        let tau = p.tau_ms;
        self.r_drive[l] = p.delta / (PI * tau * tau) + p.input_r;
        self.v_drive[l] = p.eta + p.input_v;
        self.two_inv_tau[l] = 2.0 / tau;
        self.two_dt_inv_tau[l] = 2.0 * dt / tau;
        // With c = 2 dt/tau and L = fl(fl(M/c) (1 - 4 eps)), |v| <= L gives
        // |c v| <= c L <= M (1 + eps)^2 (1 - 4 eps) < M, so the product the step rounds is at
        // most M (representable) too: every lane that passes the check takes the
        // polynomial, as phi1 would. (c = 0 gives infinity: always in range.)
        let c = self.two_dt_inv_tau[l];
        self.fast_v_max[l] = math::PHI1_POLY_MAX / c * (1.0 - 4.0 * f64::EPSILON);
        self.inv_tau[l] = 1.0 / tau;
        self.j_tau[l] = p.j * tau;
        self.pi_tau_sq[l] = (PI * tau) * (PI * tau);
        self.noise_r[l] = sigma_r * dt.sqrt();
        self.noise_v[l] = sigma_v * dt.sqrt();
    }
}

/// What all lanes of a batch share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Step, ms.
    pub dt: f64,
    /// Steps per run.
    pub steps: u64,
    /// First step whose post-step state enters the statistics (>= 1).
    pub first_stat_step: u64,
    /// Record the state every this many steps (and at t = 0); 0 records nothing.
    pub trace_stride: u64,
    /// White noise on r and on v.
    pub white: [bool; 2],
}

impl Schedule {
    /// Samples in the statistics of a run that did not diverge.
    pub fn stat_count(&self) -> u64 {
        self.steps + 1 - self.first_stat_step
    }

    /// Number of trace rows per run (the initial state included).
    pub fn trace_rows(&self) -> usize {
        self.steps
            .checked_div(self.trace_stride)
            .map_or(0, |rows| 1 + rows as usize)
    }
}

/// Everything that differs between the lanes of a batch.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
pub struct Batch {
    /// Each lane's model parameters and noise scales.
    pub coef: Coefficients,
    /// Initial rate (kHz).
    pub r0: Lanes,
    /// Initial v.
    pub v0: Lanes,
    /// Time-varying inputs and OU noise.
    pub drive: Drive,
    /// Each lane's stream, positioned after its initial-value draws.
    pub rng: LaneRng,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            coef: Coefficients::default(),
            r0: [0.0; LANES],
            v0: [0.0; LANES],
            drive: Drive::default(),
            rng: LaneRng::default(),
        }
    }
}

/// Magnitude of r (kHz) or v at which a run counts as diverged: non-finite states and
/// states so large that converting r to Hz or one more step would overflow.
pub const DIVERGED: f64 = 1e300;

/// What a batch produces besides traces.
#[derive(Debug, Clone, Copy)]
pub struct BatchResult {
    /// Statistics of r (kHz) from `first_stat_step` on.
    pub r: Moments,
    /// Statistics of v from `first_stat_step` on.
    pub v: Moments,
    /// Post-step states before the first one beyond [`DIVERGED`] (or non-finite): a run
    /// diverged iff this is below `steps`, at step `finite_steps + 1`.
    pub finite_steps: [u64; LANES],
    /// r (kHz) after the last step.
    pub r_final: Lanes,
    /// v after the last step.
    pub v_final: Lanes,
}

/// A request to stop, shared between whoever may ask (the command line's signal handler)
/// and the kernels that poll it every [`POLL_STEPS`] steps.
#[derive(Debug, Default)]
pub struct StopToken(AtomicBool);

impl StopToken {
    /// A token nobody has asked to stop yet.
    pub const fn new() -> StopToken {
        StopToken(AtomicBool::new(false))
    }

    /// Asks every kernel polling this token to stop. One atomic store, so a signal handler
    /// may call it; what the caller wrote before (e.g. which signal came) is visible to a
    /// thread that sees the request.
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether someone has asked to stop.
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The kernel returned early because its [`StopToken`] was requested: the batch has no
/// result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Integrates one batch with `method`. `trace` receives `schedule.trace_rows()` rows, each
/// the r lanes then the v lanes (kernel units); it is cleared first. Returns [`Stopped`]
/// within [`POLL_STEPS`] steps of a request on `stop`.
pub fn integrate(
    isa: Isa,
    method: Method,
    schedule: &Schedule,
    batch: &Batch,
    trace: &mut Vec<f64>,
    stop: &StopToken,
) -> Result<BatchResult, Stopped> {
    trace.clear();
    trace.reserve(schedule.trace_rows() * 2 * LANES);
    match method {
        Method::ExpEuler => dispatch::<ExpEuler>(isa, schedule, batch, trace, stop),
        Method::Euler => dispatch::<Euler>(isa, schedule, batch, trace, stop),
        Method::Heun | Method::Rk2 => dispatch::<Heun>(isa, schedule, batch, trace, stop),
        Method::Rk4 => dispatch::<Rk4>(isa, schedule, batch, trace, stop),
        Method::Dopri5 => dispatch::<Dopri5>(isa, schedule, batch, trace, stop),
        Method::Dop853 => unreachable!("the spec refuses dop853 without adaptive steps"),
    }
}

fn dispatch<S: Scheme>(
    isa: Isa,
    schedule: &Schedule,
    batch: &Batch,
    trace: &mut Vec<f64>,
    stop: &StopToken,
) -> Result<BatchResult, Stopped> {
    match isa {
        Isa::Avx512 => avx512::run::<S>(schedule, batch, trace, stop),
        Isa::Avx2Fma => avx2::run::<S>(schedule, batch, trace, stop),
        Isa::Portable => kernel::<S, Unfused, PORTABLE_GROUP>(schedule, batch, trace, stop),
    }
}

/// A module `$name` whose `run` is the kernel `$kernel::<S, Fused, $group>` (statistics
/// groups of `$group` lanes), compiled with the target features `$features` and called only
/// where [`Isa::is_available`] says the CPU has them. The fixed-step kernel and the network
/// kernel share it: one body per kernel, one entry per path.
macro_rules! isa_entry {
    ($name:ident, $isa:expr, $features:literal, $group:literal,
     $kernel:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        #[cfg(target_arch = "x86_64")]
        mod $name {
            use super::*;

            #[doc = concat!("The kernel compiled with `", $features, "` enabled.")]
            pub fn run<S: Scheme>($($arg: $ty),*) -> $ret {
                assert!(
                    $isa.is_available(),
                    "the {} kernel was requested on a CPU without {}",
                    $isa.name(),
                    $isa.features()
                );
                // SAFETY: the CPU has the features this function is compiled for (checked
                // above).
                unsafe { run_with_features::<S>($($arg),*) }
            }

            #[target_feature(enable = $features)]
            unsafe fn run_with_features<S: Scheme>($($arg: $ty),*) -> $ret {
                $kernel::<S, Fused, $group>($($arg),*)
            }
        }

        #[cfg(not(target_arch = "x86_64"))]
        mod $name {
            use super::*;
            #[allow(unused_variables)]
            pub fn run<S: Scheme>($($arg: $ty),*) -> $ret {
                unreachable!("{} is never available off x86-64", $isa.name())
            }
        }
    };
}

/// The two vector paths of a kernel `$kernel` with the given signature: modules `avx2` and
/// `avx512`.
macro_rules! isa_entries {
    ($kernel:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        isa_entry!(avx2, Isa::Avx2Fma, "avx2,fma", 4, $kernel($($arg: $ty),*) -> $ret);
        isa_entry!(
            avx512,
            Isa::Avx512,
            "avx512f,avx512dq,avx512vl,avx2,fma",
            8,
            $kernel($($arg: $ty),*) -> $ret
        );
    };
}

isa_entries!(kernel(
    schedule: &Schedule,
    batch: &Batch,
    trace: &mut Vec<f64>,
    stop: &StopToken
) -> Result<BatchResult, Stopped>);

pub mod network;

#[inline(always)]
fn record(trace: &mut Vec<f64>, r: &Lanes, v: &Lanes) {
    trace.extend_from_slice(r);
    trace.extend_from_slice(v);
}

/// Steps integrated between passes of the divergence check and the statistics over the
/// stored states. The step loop then stores only the new states; the pass keeps its
/// sums in registers across a chunk. 8 and 16 measured alike; 32 is slower (euler 1.4
/// against 1.1 ns per run-step: the chunk's states no longer sit comfortably in L1).
const CHUNK: usize = 16;

/// Steps between the kernel's checks of whether to go on (a stop request; every lane
/// diverged), at the end of a chunk. Counted with callgrind, the stop check is 4
/// instructions per 1024 steps, which themselves take 0.6 to 2.2 million (euler on AVX2 to
/// rk4 portable) and 0.1 to 0.4 ms (release build): a stop comes well within a
/// millisecond at no measurable cost.
pub const POLL_STEPS: u64 = 1024;
const _: () = assert!(POLL_STEPS.is_multiple_of(CHUNK as u64));

/// Lanes per group in the pass over a chunk of states, whose accumulators (divergence
/// counts and both variables' sums: a dozen per vector) stay in registers over the chunk:
/// one vector on every path, 2 portable (SSE2), 4 avx2+fma, 8 avx512. Wider groups spill
/// where registers are few: on AVX2, 8 lanes (two vectors, two dozen accumulators for 16
/// registers) took euler from 0.75 to 0.99 and exp_euler from 1.75 to 1.99 ns per
/// run-step; portable, 2 lanes instead of 4 took euler from 1.92 to 1.66. A lane's
/// results do not depend on it.
const PORTABLE_GROUP: usize = 2;

/// The state of a batch's lanes and what the kernel accumulates about them. Aligned to
/// 64 bytes, like [`Batch`], [`Coefficients`] and `LaneRng`, so that every lane array
/// starts a cache line and vector loads and stores of them never split one; otherwise
/// their alignment depends on where the caller's stack happens to be (measured on the
/// AVX-512 path: euler 1.18 → 0.99, heun 1.38 → 1.22, exp_euler 1.76 → 1.70 ns per
/// run-step).
#[repr(align(64))]
struct LaneState {
    /// `r[0]`, `v[0]`: the state before the current chunk; step j of the chunk writes
    /// `r[j]`, `v[j]`.
    r: [Lanes; CHUNK + 1],
    v: [Lanes; CHUNK + 1],
    /// 1 for lanes whose post-step states so far are all below [`DIVERGED`], else 0.
    alive: [u64; LANES],
    /// Steps each lane stayed alive.
    finite: [u64; LANES],
    mr: Moments,
    mv: Moments,
}

impl LaneState {
    /// Takes the chunk's `n` states (steps `k0 .. k0 + n`) into the divergence counts and,
    /// from `first_stat_step` on, the statistics; then starts the next chunk from the last.
    ///
    /// One pass per group of `GROUP` lanes: each stored state is loaded once and goes into
    /// the divergence counts and both variables' sums, whose accumulators (a dozen vectors
    /// on the vector paths) stay in registers over the chunk. The two variables' sums are
    /// independent chains, so the pass is bound by throughput rather than by the latency
    /// of one multiply-add chain (separate passes per variable and for the divergence
    /// counts measured 5-13 % slower on AVX-512 and portable, the same on AVX2).
    #[inline(always)]
    fn close_chunk<A: Arith, const GROUP: usize>(
        &mut self,
        n: usize,
        k0: u64,
        first_stat_step: u64,
    ) {
        const { assert!(LANES.is_multiple_of(GROUP)) };
        let last = k0 + n as u64 - 1;
        // The first state of the chunk that enters the statistics, if any.
        let from = if last < first_stat_step {
            None
        } else if k0 > first_stat_step {
            Some(1)
        } else {
            // The sums restart at first_stat_step, whose state becomes their shift
            // (moments.rs) and first sample; what came before is not summed.
            let j = (first_stat_step - k0 + 1) as usize;
            self.mr = Moments::starting_at(&self.r[j]);
            self.mv = Moments::starting_at(&self.v[j]);
            Some(j)
        };
        for g in (0..LANES).step_by(GROUP) {
            let mut alive: [u64; GROUP] = std::array::from_fn(|w| self.alive[g + w]);
            let mut finite: [u64; GROUP] = std::array::from_fn(|w| self.finite[g + w]);
            let from = from.unwrap_or(n + 1);
            for j in 1..from {
                count_alive(&mut alive, &mut finite, &self.r[j], &self.v[j], g);
            }
            if from <= n {
                let mut mr = self.mr.group::<GROUP>(g);
                let mut mv = self.mv.group::<GROUP>(g);
                for j in from..=n {
                    count_alive(&mut alive, &mut finite, &self.r[j], &self.v[j], g);
                    mr.add::<A, LANES>(&self.r[j], g);
                    mv.add::<A, LANES>(&self.v[j], g);
                }
                self.mr.set_group(g, &mr);
                self.mv.set_group(g, &mv);
            }
            self.alive[g..g + GROUP].copy_from_slice(&alive);
            self.finite[g..g + GROUP].copy_from_slice(&finite);
        }
        self.r[0] = self.r[n];
        self.v[0] = self.v[n];
    }
}

/// Takes one post-step state of lanes `g .. g + G` into their divergence counts (`alive`
/// and `finite` hold those lanes' counts): a lane stays alive while both variables are
/// below [`DIVERGED`] in magnitude (NaN compares false), and the count of alive steps
/// locates the first divergence.
#[inline(always)]
fn count_alive<const G: usize>(
    alive: &mut [u64; G],
    finite: &mut [u64; G],
    r: &Lanes,
    v: &Lanes,
    g: usize,
) {
    for w in 0..G {
        alive[w] &= ((r[g + w].abs() < DIVERGED) & (v[g + w].abs() < DIVERGED)) as u64;
        finite[w] += alive[w];
    }
}

/// The one kernel body, inlined into each ISA's entry point with that path's arithmetic.
///
/// Per step k (from the state at t = (k-1) dt): inputs at t, white-noise increments, the
/// scheme's step, then the OU states advance. Normals are drawn in the order white r,
/// white v, OU r, OU v (each only when present).
#[inline(always)]
fn kernel<S: Scheme, A: Arith, const GROUP: usize>(
    schedule: &Schedule,
    batch: &Batch,
    trace: &mut Vec<f64>,
    stop: &StopToken,
) -> Result<BatchResult, Stopped> {
    let Schedule {
        dt,
        steps,
        first_stat_step,
        trace_stride,
        white,
    } = *schedule;
    let c = &batch.coef;
    let drive = &batch.drive;
    let driven = drive.is_active();
    // Neither time-varying inputs nor white noise: the lane loop skips adding zeros.
    let plain = !driven && white == [false; 2];
    let mut normals = LaneNormals::new(batch.rng);
    // This step's normals: white noise on r and v (zeros without), then the OU inputs'.
    let mut xi = [[0.0; LANES]; 4];
    // The slots of xi drawn every step, in the run's draw order: white r, white v, OU r,
    // OU v (each only when present). The step draws nothing, so drawing all before it keeps
    // that order; one call site keeps one copy of the generator in the kernel.
    let mut drawn = [0; 4];
    let mut draws = 0;
    for (slot, present) in [
        white[0],
        white[1],
        drive.ou[0].is_some(),
        drive.ou[1].is_some(),
    ]
    .into_iter()
    .enumerate()
    {
        if present {
            drawn[draws] = slot;
            draws += 1;
        }
    }
    let mut inputs = [[0.0; LANES]; 2];
    let mut ou_state = [[0.0; LANES]; 2];
    let mut st = LaneState {
        r: [batch.r0; CHUNK + 1],
        v: [batch.v0; CHUNK + 1],
        alive: [1; LANES],
        finite: [0; LANES],
        mr: Moments::starting_at(&batch.r0),
        mv: Moments::starting_at(&batch.v0),
    };
    if trace_stride > 0 {
        record(trace, &st.r[0], &st.v[0]);
    }
    let mut until_trace = trace_stride;
    let mut fast = (0..LANES).all(|l| S::in_fast_range(c, l, st.v[0][l]));
    // Steps taken in the current chunk.
    let mut j = 0;
    for k in 1..=steps {
        if driven {
            drive.eval((k - 1) as f64 * dt, &ou_state, &mut inputs);
        }
        for &slot in &drawn[..draws] {
            normals.fill(&mut xi[slot]);
        }
        let (white_xi, ou_xi) = xi.split_first_chunk::<2>().expect("four slots");
        let (done, next) = st.r.split_at_mut(j + 1);
        let (done_v, next_v) = st.v.split_at_mut(j + 1);
        let (from, to) = ((&done[j], &done_v[j]), (&mut next[0], &mut next_v[0]));
        fast = match (fast, plain) {
            (true, true) => advance::<S, A, true, true>(c, dt, &inputs, white_xi, from, to),
            (true, false) => advance::<S, A, true, false>(c, dt, &inputs, white_xi, from, to),
            (false, true) => advance::<S, A, false, true>(c, dt, &inputs, white_xi, from, to),
            (false, false) => advance::<S, A, false, false>(c, dt, &inputs, white_xi, from, to),
        };
        j += 1;
        for x in 0..2 {
            if let Some(ou) = &drive.ou[x] {
                ou.advance(&mut ou_state[x], &ou_xi[x]);
            }
        }
        if trace_stride > 0 {
            until_trace -= 1;
            if until_trace == 0 {
                record(trace, &st.r[j], &st.v[j]);
                until_trace = trace_stride;
            }
        }
        if j == CHUNK || k == steps {
            st.close_chunk::<A, GROUP>(j, k + 1 - j as u64, first_stat_step);
            j = 0;
            if k % POLL_STEPS == 0 {
                if stop.is_requested() {
                    return Err(Stopped);
                }
                // Stop early once every lane has diverged: nothing left to compute.
                if !st.alive.contains(&1) {
                    break;
                }
            }
        }
    }
    Ok(BatchResult {
        r: st.mr,
        v: st.mv,
        finite_steps: st.finite,
        r_final: st.r[0],
        v_final: st.v[0],
    })
}

/// One step of every lane from `from` into `to`. `FAST`: every lane is in the scheme's
/// fast range; `PLAIN`: no inputs or noise to add. Returns whether every lane is in the
/// fast range after the step.
#[inline(always)]
fn advance<S: Scheme, A: Arith, const FAST: bool, const PLAIN: bool>(
    c: &Coefficients,
    dt: f64,
    inputs: &[Lanes; 2],
    white_xi: &[Lanes; 2],
    (r0, v0): (&Lanes, &Lanes),
    (r1, v1): (&mut Lanes, &mut Lanes),
) -> bool {
    let mut all_fast = true;
    for l in 0..LANES {
        let lane = LaneStep {
            r: r0[l],
            v: v0[l],
            input: (!PLAIN).then_some([inputs[0][l], inputs[1][l]]),
            dw: (!PLAIN).then_some([c.noise_r[l] * white_xi[0][l], c.noise_v[l] * white_xi[1][l]]),
        };
        let (r, v) = S::step::<A, FAST>(c, l, dt, lane);
        r1[l] = r;
        v1[l] = v;
        all_fast &= S::in_fast_range(c, l, v);
    }
    all_fast
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NodeParams;

    const DT: f64 = 0.01;
    const STEPS: u64 = 3000;
    /// The lane that, in a wild batch, keeps exp_euler's argument |2 dt v/tau| above phi1's
    /// polynomial range: tau = 0.05 ms, so |v| > 1.25 suffices, and it settles near v = -2.
    const WILD: usize = 7;
    const WILD_TAU_MS: f64 = 0.05;

    fn params(l: usize, wild: bool) -> NodeParams {
        let f = l as f64 / (LANES - 1) as f64;
        let tau = if wild && l == WILD { WILD_TAU_MS } else { 1.0 };
        NodeParams::from_user(tau, -8.0 + 6.0 * f, 20.0 * f, 1.0, 0.0, 0.0)
    }

    /// 32 lanes starting at r = 100 Hz, v = -2. Tame: every lane stays within phi1's
    /// polynomial range, so the batch takes the polynomial form throughout. Wild: lane `WILD` does
    /// not, so the whole batch takes the general form (a per-lane select) at every step.
    fn batch(wild: bool) -> Batch {
        let mut b = Batch::default();
        for l in 0..LANES {
            b.coef.set_lane(l, &params(l, wild), 0.0, 0.0, DT);
            b.r0[l] = 0.1;
            b.v0[l] = -2.0;
        }
        b
    }

    fn run(wild: bool, isa: Isa) -> BatchResult {
        let schedule = Schedule {
            dt: DT,
            steps: STEPS,
            first_stat_step: 1,
            trace_stride: 0,
            white: [false; 2],
        };
        integrate(
            isa,
            Method::ExpEuler,
            &schedule,
            &batch(wild),
            &mut Vec::new(),
            &StopToken::new(),
        )
        .expect("nobody asked to stop")
    }

    /// A lane's bits do not depend on whether its batch took phi1's polynomial form or the
    /// general form (contract: results independent of batching).
    #[test]
    fn a_lane_outside_the_polynomial_range_leaves_its_neighbours_bits_alone() {
        for isa in Isa::available() {
            let (tame, wild) = (run(false, isa), run(true, isa));
            for l in (0..LANES).filter(|&l| l != WILD) {
                let bits = |x: &BatchResult| {
                    let (r, v) = (x.r.summary(l, STEPS), x.v.summary(l, STEPS));
                    [
                        x.r_final[l],
                        x.v_final[l],
                        r.mean,
                        r.std,
                        r.min,
                        r.max,
                        v.mean,
                        v.std,
                        v.min,
                        v.max,
                    ]
                    .map(f64::to_bits)
                };
                assert_eq!(bits(&tame), bits(&wild), "{isa:?}, lane {l}");
            }
        }
    }

    const METHODS: [Method; 4] = [Method::ExpEuler, Method::Euler, Method::Heun, Method::Rk4];

    /// `steps` steps, tracing every step when `traced`.
    fn schedule(steps: u64, traced: bool) -> Schedule {
        Schedule {
            dt: DT,
            steps,
            first_stat_step: 1,
            trace_stride: traced as u64,
            white: [false; 2],
        }
    }

    /// Each scheme's instance of the kernel polls the token: asked before it starts, it
    /// returns at the first poll, having recorded exactly the initial state and POLL_STEPS
    /// steps.
    #[test]
    fn a_stop_requested_beforehand_ends_every_method_at_the_first_poll() {
        let stop = StopToken::new();
        stop.request();
        for isa in Isa::available() {
            for method in METHODS {
                let mut trace = Vec::new();
                let schedule = schedule(4 * POLL_STEPS, true);
                let got = integrate(isa, method, &schedule, &batch(false), &mut trace, &stop);
                assert_eq!(got.err(), Some(Stopped), "{isa:?} {method:?}");
                let rows = trace.len() / (2 * LANES);
                assert_eq!(rows as u64, POLL_STEPS + 1, "{isa:?} {method:?}");
            }
        }
    }

    /// A request from another thread stops a kernel that would run for years (2^53 steps)
    /// well within a second.
    #[test]
    fn a_stop_requested_while_running_ends_every_method_promptly() {
        for isa in Isa::available() {
            for method in METHODS {
                let stop = StopToken::new();
                let schedule = schedule(1 << 53, false);
                let (got, latency) = std::thread::scope(|s| {
                    let kernel = s.spawn(|| {
                        let got = integrate(
                            isa,
                            method,
                            &schedule,
                            &batch(false),
                            &mut Vec::new(),
                            &stop,
                        );
                        (got, std::time::Instant::now())
                    });
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    let asked = std::time::Instant::now();
                    stop.request();
                    let (got, ended) = kernel.join().unwrap();
                    (got, ended.saturating_duration_since(asked))
                });
                assert_eq!(got.err(), Some(Stopped), "{isa:?} {method:?}");
                // 1024 steps of 32 lanes take well under 1 ms optimised, a few ms in the
                // test profile; the bound leaves room for a loaded machine.
                assert!(
                    latency < std::time::Duration::from_millis(500),
                    "{isa:?} {method:?}: stopped {latency:?} after the request"
                );
            }
        }
    }

    /// The wild lane, through the general form at every step, against exponential Euler
    /// with std's `exp_m1`.
    #[test]
    fn general_phi1_form_matches_a_scalar_exponential_euler() {
        let p = params(WILD, true);
        let (mut r, mut v) = (0.1f64, -2.0f64);
        let mut z_min = f64::INFINITY;
        for _ in 0..STEPS {
            let z = 2.0 * v * DT / p.tau_ms;
            z_min = z_min.min(z.abs());
            let h = DT * (z.exp_m1() / z);
            let pi_tau = std::f64::consts::PI * p.tau_ms;
            let f_r = p.delta / (pi_tau * p.tau_ms) + 2.0 * r * v / p.tau_ms;
            let f_v = (v * v + p.eta + p.j * p.tau_ms * r - (pi_tau * r).powi(2)) / p.tau_ms;
            (r, v) = (r + h * f_r, v + h * f_v);
        }
        assert!(
            z_min > math::PHI1_POLY_MAX,
            "the reference entered the polynomial range: |z| = {z_min}"
        );
        for isa in Isa::available() {
            let got = run(true, isa);
            let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
            let (gr, gv) = (got.r_final[WILD], got.v_final[WILD]);
            assert!(rel(gr, r) < 1e-12, "{isa:?}: r {gr} vs {r}");
            assert!(rel(gv, v) < 1e-12, "{isa:?}: v {gv} vs {v}");
        }
    }
}
