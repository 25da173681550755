//! The integration kernel: one lane batch of runs, the time loop inside.
//!
//! A batch holds [`LANES`] runs in structure-of-arrays form. Every step is a handful of
//! loops over the lanes with no branches that depend on a lane's value, so LLVM compiles
//! them to SIMD. The same body is compiled twice, for the x86-64 baseline and for
//! AVX2+FMA, and [`Isa::detect`] picks one at run time. The kernel does no I/O and no
//! allocation inside the time loop.

pub mod math;

use crate::noise::Xoshiro;
use crate::stats::Moments;

/// Runs per lane batch. Each step is a long dependent chain (expm1, a division), so many
/// independent lanes are needed to keep the vector units busy: 32 measured fastest of
/// 8/16/32/64 (README "Performance").
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
}

impl Isa {
    /// The best path this CPU supports.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Isa::Avx2Fma;
        }
        Isa::Portable
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2Fma => "avx2+fma",
        }
    }
}

/// Per-lane coefficients of the right-hand side, in kernel units (r in kHz, t in ms).
#[derive(Debug, Clone, Copy)]
pub struct Coefficients {
    /// `delta/(pi tau^2) + I_r` (kHz/ms).
    pub r_drive: Lanes,
    /// `eta + I_v`.
    pub v_drive: Lanes,
    /// `2/tau` (1/ms).
    pub two_inv_tau: Lanes,
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
    pub dt: f64,
    pub steps: u64,
    /// First step whose post-step state enters the statistics (>= 1).
    pub first_stat_step: u64,
    /// Record the state every this many steps (and at t = 0); 0 records nothing.
    pub trace_stride: u64,
    pub noise_r: bool,
    pub noise_v: bool,
}

impl Schedule {
    /// Number of trace rows per run (the initial state included).
    pub fn trace_rows(&self) -> usize {
        self.steps
            .checked_div(self.trace_stride)
            .map_or(0, |rows| 1 + rows as usize)
    }
}

/// xoshiro256++ states of all lanes, word-major so the update vectorises.
#[derive(Debug, Clone, Copy)]
pub struct LaneRng {
    s: [[u64; LANES]; 4],
}

impl Default for LaneRng {
    fn default() -> LaneRng {
        LaneRng { s: [[0; LANES]; 4] }
    }
}

impl LaneRng {
    pub fn set_lane(&mut self, l: usize, x: &Xoshiro) {
        for w in 0..4 {
            self.s[w][l] = x.s[w];
        }
    }

    /// The next output of every lane's stream.
    #[inline(always)]
    fn next_u64(&mut self, out: &mut [u64; LANES]) {
        let [s0, s1, s2, s3] = &mut self.s;
        for l in 0..LANES {
            out[l] = (s0[l].wrapping_add(s3[l]))
                .rotate_left(23)
                .wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
    }
}

/// Standard normals for every lane, from each lane's stream in Box–Muller pairs.
#[derive(Debug, Clone, Copy)]
struct LaneNormals {
    rng: LaneRng,
    spare: Lanes,
    has_spare: bool,
}

impl LaneNormals {
    #[inline(always)]
    fn fill(&mut self, out: &mut Lanes) {
        if self.has_spare {
            *out = self.spare;
            self.has_spare = false;
            return;
        }
        let (mut a, mut b) = ([0u64; LANES], [0u64; LANES]);
        self.rng.next_u64(&mut a);
        self.rng.next_u64(&mut b);
        for l in 0..LANES {
            let u1 = crate::noise::uniform_from_bits(a[l]);
            let u2 = crate::noise::uniform_from_bits(b[l]);
            (out[l], self.spare[l]) = crate::noise::box_muller(u1, u2);
        }
        self.has_spare = true;
    }
}

/// Everything that differs between the lanes of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    pub coef: Coefficients,
    /// Initial rate (kHz).
    pub r0: Lanes,
    pub v0: Lanes,
    /// Each lane's stream, positioned after its initial-value draws.
    pub rng: LaneRng,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            coef: Coefficients::default(),
            r0: [0.0; LANES],
            v0: [0.0; LANES],
            rng: LaneRng::default(),
        }
    }
}

/// What a batch produces besides traces.
#[derive(Debug, Clone, Copy)]
pub struct BatchResult {
    pub r: Moments,
    pub v: Moments,
    /// Samples in the statistics of a run that did not diverge.
    pub stat_count: u64,
    /// Post-step states that were finite; a run diverged iff this is below `steps`, and
    /// its first non-finite state is at step `finite_steps + 1` (non-finite is absorbing).
    pub finite_steps: [u64; LANES],
    pub r_final: Lanes,
    pub v_final: Lanes,
}

/// An integration scheme: advances every lane's deterministic dynamics by one step.
pub trait Scheme {
    fn step(c: &Coefficients, dt: f64, r: &mut Lanes, v: &mut Lanes);
}

/// brainstate's exponential Euler (DESIGN.md section 2): each equation linearised in its
/// own variable with the common factor `A = 2v/tau`, both updates from the old state.
pub struct ExpEuler;

impl Scheme for ExpEuler {
    #[inline(always)]
    fn step(c: &Coefficients, dt: f64, r: &mut Lanes, v: &mut Lanes) {
        for l in 0..LANES {
            let (rl, vl) = (r[l], v[l]);
            let f_r = c.r_drive[l] + c.two_inv_tau[l] * rl * vl;
            let f_v = (vl * vl + c.v_drive[l] + c.j_tau[l] * rl - c.pi_tau_sq[l] * rl * rl)
                * c.inv_tau[l];
            let h = dt * math::phi1(c.two_inv_tau[l] * vl * dt);
            r[l] = rl + h * f_r;
            v[l] = vl + h * f_v;
        }
    }
}

/// Integrates one batch. `trace` receives `schedule.trace_rows()` rows, each the r lanes
/// then the v lanes (kernel units); it is cleared first.
pub fn integrate(
    isa: Isa,
    schedule: &Schedule,
    batch: &Batch,
    trace: &mut Vec<f64>,
) -> BatchResult {
    trace.clear();
    trace.reserve(schedule.trace_rows() * 2 * LANES);
    match (isa, schedule.noise_r, schedule.noise_v) {
        (Isa::Avx2Fma, false, false) => avx2::run::<ExpEuler, false, false>(schedule, batch, trace),
        (Isa::Avx2Fma, true, false) => avx2::run::<ExpEuler, true, false>(schedule, batch, trace),
        (Isa::Avx2Fma, false, true) => avx2::run::<ExpEuler, false, true>(schedule, batch, trace),
        (Isa::Avx2Fma, true, true) => avx2::run::<ExpEuler, true, true>(schedule, batch, trace),
        (Isa::Portable, false, false) => kernel::<ExpEuler, false, false>(schedule, batch, trace),
        (Isa::Portable, true, false) => kernel::<ExpEuler, true, false>(schedule, batch, trace),
        (Isa::Portable, false, true) => kernel::<ExpEuler, false, true>(schedule, batch, trace),
        (Isa::Portable, true, true) => kernel::<ExpEuler, true, true>(schedule, batch, trace),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;

    /// The kernel compiled with AVX2+FMA enabled.
    pub fn run<S: Scheme, const NR: bool, const NV: bool>(
        schedule: &Schedule,
        batch: &Batch,
        trace: &mut Vec<f64>,
    ) -> BatchResult {
        assert!(
            Isa::detect() == Isa::Avx2Fma,
            "AVX2+FMA kernel requested on a CPU without it"
        );
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        unsafe { run_avx2::<S, NR, NV>(schedule, batch, trace) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2<S: Scheme, const NR: bool, const NV: bool>(
        schedule: &Schedule,
        batch: &Batch,
        trace: &mut Vec<f64>,
    ) -> BatchResult {
        kernel::<S, NR, NV>(schedule, batch, trace)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::*;
    pub fn run<S: Scheme, const NR: bool, const NV: bool>(
        _: &Schedule,
        _: &Batch,
        _: &mut Vec<f64>,
    ) -> BatchResult {
        unreachable!("Isa::detect never selects AVX2 off x86-64")
    }
}

#[inline(always)]
fn record(trace: &mut Vec<f64>, r: &Lanes, v: &Lanes) {
    trace.extend_from_slice(r);
    trace.extend_from_slice(v);
}

/// The one kernel body, inlined into each ISA's entry point.
#[inline(always)]
fn kernel<S: Scheme, const NR: bool, const NV: bool>(
    schedule: &Schedule,
    batch: &Batch,
    trace: &mut Vec<f64>,
) -> BatchResult {
    let Schedule {
        dt,
        steps,
        first_stat_step,
        trace_stride,
        ..
    } = *schedule;
    let c = &batch.coef;
    let (mut r, mut v) = (batch.r0, batch.v0);
    let mut normals = LaneNormals {
        rng: batch.rng,
        spare: [0.0; LANES],
        has_spare: false,
    };
    let (mut xi_r, mut xi_v) = ([0.0; LANES], [0.0; LANES]);
    let mut finite = [0u64; LANES];
    let mut mr = Moments::starting_at(&r);
    let mut mv = Moments::starting_at(&v);
    if trace_stride > 0 {
        record(trace, &r, &v);
    }
    let mut until_trace = trace_stride;
    let mut executed = 0;
    for k in 1..=steps {
        if NR {
            normals.fill(&mut xi_r);
        }
        if NV {
            normals.fill(&mut xi_v);
        }
        S::step(c, dt, &mut r, &mut v);
        if NR {
            for l in 0..LANES {
                r[l] += c.noise_r[l] * xi_r[l];
            }
        }
        if NV {
            for l in 0..LANES {
                v[l] += c.noise_v[l] * xi_v[l];
            }
        }
        for l in 0..LANES {
            // x * 0 is 0 for finite x and NaN for inf/NaN.
            finite[l] += ((r[l] * 0.0 == 0.0) & (v[l] * 0.0 == 0.0)) as u64;
        }
        if k >= first_stat_step {
            if k == first_stat_step {
                mr = Moments::starting_at(&r);
                mv = Moments::starting_at(&v);
            }
            mr.add(&r);
            mv.add(&v);
        }
        if trace_stride > 0 {
            until_trace -= 1;
            if until_trace == 0 {
                record(trace, &r, &v);
                until_trace = trace_stride;
            }
        }
        executed = k;
        // Stop early once every lane has diverged: nothing left to compute.
        if k % 1024 == 0 && finite.iter().all(|&f| f < k) {
            break;
        }
    }
    BatchResult {
        r: mr,
        v: mv,
        stat_count: executed + 1 - first_stat_step.min(executed + 1),
        finite_steps: finite,
        r_final: r,
        v_final: v,
    }
}
