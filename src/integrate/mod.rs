//! The integration kernel: one lane batch of runs, the time loop inside.
//!
//! A batch holds [`LANES`] runs in structure-of-arrays form. Every step is a handful of
//! loops over the lanes with no branches that depend on a lane's value, so LLVM compiles
//! them to SIMD. The same body is compiled twice, for the x86-64 baseline and for
//! AVX2+FMA, and [`Isa::detect`] picks one at run time. The kernel does no I/O and no
//! allocation inside the time loop.

mod drive;
pub mod math;
mod rng;
mod schemes;

pub use drive::{Drive, Ou, Waveform};
pub use rng::{LaneNormals, LaneRng};
pub use schemes::{Euler, ExpEuler, Heun, Rk4, Scheme};

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

/// Integration scheme (DESIGN.md section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ExpEuler,
    Euler,
    Heun,
    Rk4,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::ExpEuler => "exp_euler",
            Method::Euler => "euler",
            Method::Heun => "heun",
            Method::Rk4 => "rk4",
        }
    }
}

/// Per-lane coefficients of the right-hand side, in kernel units (r in kHz, t in ms).
#[derive(Debug, Clone, Copy)]
pub struct Coefficients {
    /// `delta/(pi tau^2) + I_r` (kHz/ms), with the constant part of I_r.
    pub r_drive: Lanes,
    /// `eta + I_v`, with the constant part of I_v.
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
pub struct Batch {
    pub coef: Coefficients,
    /// Initial rate (kHz).
    pub r0: Lanes,
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
    pub r: Moments,
    pub v: Moments,
    /// Post-step states before the first one beyond [`DIVERGED`] (or non-finite): a run
    /// diverged iff this is below `steps`, at step `finite_steps + 1`.
    pub finite_steps: [u64; LANES],
    pub r_final: Lanes,
    pub v_final: Lanes,
}

/// Integrates one batch with `method`. `trace` receives `schedule.trace_rows()` rows, each
/// the r lanes then the v lanes (kernel units); it is cleared first.
pub fn integrate(
    isa: Isa,
    method: Method,
    schedule: &Schedule,
    batch: &Batch,
    trace: &mut Vec<f64>,
) -> BatchResult {
    trace.clear();
    trace.reserve(schedule.trace_rows() * 2 * LANES);
    match method {
        Method::ExpEuler => dispatch::<ExpEuler>(isa, schedule, batch, trace),
        Method::Euler => dispatch::<Euler>(isa, schedule, batch, trace),
        Method::Heun => dispatch::<Heun>(isa, schedule, batch, trace),
        Method::Rk4 => dispatch::<Rk4>(isa, schedule, batch, trace),
    }
}

fn dispatch<S: Scheme>(
    isa: Isa,
    schedule: &Schedule,
    batch: &Batch,
    trace: &mut Vec<f64>,
) -> BatchResult {
    match isa {
        Isa::Avx2Fma => avx2::run::<S>(schedule, batch, trace),
        Isa::Portable => kernel::<S>(schedule, batch, trace),
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;

    /// The kernel compiled with AVX2+FMA enabled.
    pub fn run<S: Scheme>(schedule: &Schedule, batch: &Batch, trace: &mut Vec<f64>) -> BatchResult {
        assert!(
            Isa::detect() == Isa::Avx2Fma,
            "AVX2+FMA kernel requested on a CPU without it"
        );
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        unsafe { run_avx2::<S>(schedule, batch, trace) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2<S: Scheme>(
        schedule: &Schedule,
        batch: &Batch,
        trace: &mut Vec<f64>,
    ) -> BatchResult {
        kernel::<S>(schedule, batch, trace)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    use super::*;
    pub fn run<S: Scheme>(_: &Schedule, _: &Batch, _: &mut Vec<f64>) -> BatchResult {
        unreachable!("Isa::detect never selects AVX2 off x86-64")
    }
}

#[inline(always)]
fn record(trace: &mut Vec<f64>, r: &Lanes, v: &Lanes) {
    trace.extend_from_slice(r);
    trace.extend_from_slice(v);
}

/// The one kernel body, inlined into each ISA's entry point.
///
/// Per step k (from the state at t = (k-1) dt): inputs at t, white-noise increments, the
/// scheme's step, then the OU states advance. Normals are drawn in the order white r,
/// white v, OU r, OU v (each only when present).
#[inline(always)]
fn kernel<S: Scheme>(schedule: &Schedule, batch: &Batch, trace: &mut Vec<f64>) -> BatchResult {
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
    let (mut r, mut v) = (batch.r0, batch.v0);
    let mut normals = LaneNormals::new(batch.rng);
    let mut xi = [0.0; LANES];
    let mut dw = [[0.0; LANES]; 2];
    let mut inputs = [[0.0; LANES]; 2];
    let mut ou_state = [[0.0; LANES]; 2];
    let noise_scale = [&c.noise_r, &c.noise_v];
    let mut finite = [0u64; LANES];
    let mut alive = [true; LANES];
    let mut mr = Moments::starting_at(&r);
    let mut mv = Moments::starting_at(&v);
    if trace_stride > 0 {
        record(trace, &r, &v);
    }
    let mut until_trace = trace_stride;
    for k in 1..=steps {
        if driven {
            drive.eval((k - 1) as f64 * dt, &ou_state, &mut inputs);
        }
        for x in 0..2 {
            if white[x] {
                normals.fill(&mut xi);
                for l in 0..LANES {
                    dw[x][l] = noise_scale[x][l] * xi[l];
                }
            }
        }
        S::step(
            c, dt, &mut r, &mut v, &inputs[0], &inputs[1], &dw[0], &dw[1],
        );
        for x in 0..2 {
            if let Some(ou) = &drive.ou[x] {
                normals.fill(&mut xi);
                ou.advance(&mut ou_state[x], &xi);
            }
        }
        for l in 0..LANES {
            // A lane stays alive while both variables are below DIVERGED in magnitude (NaN
            // compares false); the count of alive steps locates the first divergence.
            alive[l] &= (r[l].abs() < DIVERGED) & (v[l].abs() < DIVERGED);
            finite[l] += alive[l] as u64;
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
        // Stop early once every lane has diverged: nothing left to compute.
        if k % 1024 == 0 && !alive.contains(&true) {
            break;
        }
    }
    BatchResult {
        r: mr,
        v: mv,
        finite_steps: finite,
        r_final: r,
        v_final: v,
    }
}
