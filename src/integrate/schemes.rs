//! The integration schemes, one lane at a time. `rk2` runs [`Heun`]: braintools'
//! `ode_rk2_step` is the same map.
//!
//! A scheme advances lane `l` by one step from the state `(r, v)` with inputs `(ir, iv)`
//! held at their value at the step's start (as brainmass does) and white-noise increments
//! `(dw_r, dw_v) = sigma sqrt(dt) xi` (zeros without noise). The kernel calls it inside its
//! loop over lanes, which LLVM vectorises; `A` says whether `a * b + c` is fused.

use super::Coefficients;
use super::math::{self, Arith};

/// One lane's state and what drives it over one step.
///
/// `None` means zero: batches without time-varying inputs or white noise pass `None`, and
/// the additions disappear from the compiled loop.
#[derive(Debug, Clone, Copy)]
pub struct LaneStep {
    /// Rate (kHz).
    pub r: f64,
    /// Mean membrane potential v (dimensionless).
    pub v: f64,
    /// Inputs on r (kHz/ms) and v (1/ms) beyond their constant part.
    pub input: Option<[f64; 2]>,
    /// White-noise increments on r and v.
    pub dw: Option<[f64; 2]>,
}

impl LaneStep {
    /// `r + dw_r` and `v + dw_v`.
    #[inline(always)]
    fn plus_noise(&self, r: f64, v: f64) -> (f64, f64) {
        match self.dw {
            Some([dw_r, dw_v]) => (r + dw_r, v + dw_v),
            None => (r, v),
        }
    }
}

/// One integration scheme.
pub trait Scheme {
    /// Whether [`Scheme::step`] has a cheaper form, taken when every lane of the batch is
    /// [`Scheme::in_fast_range`], that gives the same bits as the general form there.
    const HAS_FAST_FORM: bool = false;

    /// Whether lane `l` at potential `v` may take the fast form next step.
    #[inline(always)]
    fn in_fast_range(_c: &Coefficients, _l: usize, _v: f64) -> bool {
        true
    }

    /// The state of lane `l` after one step of `dt` (ms). `FAST`: every lane of the batch
    /// is in the fast range.
    fn step<A: Arith, const FAST: bool>(
        c: &Coefficients,
        l: usize,
        dt: f64,
        s: LaneStep,
    ) -> (f64, f64);
}

/// `(dr/dt, dv/dt)` of lane `l` in kernel units (r in kHz, t in ms).
#[inline(always)]
pub(super) fn rhs<A: Arith>(
    c: &Coefficients,
    l: usize,
    r: f64,
    v: f64,
    input: Option<[f64; 2]>,
) -> (f64, f64) {
    let (drive_r, drive_v) = match input {
        Some([ir, iv]) => (c.r_drive[l] + ir, c.v_drive[l] + iv),
        None => (c.r_drive[l], c.v_drive[l]),
    };
    let f_r = A::mul_add(c.two_inv_tau[l] * r, v, drive_r);
    let quadratic = A::mul_add(v, v, drive_v);
    let f_v = A::mul_add(c.j_tau[l] - c.pi_tau_sq[l] * r, r, quadratic) * c.inv_tau[l];
    (f_r, f_v)
}

/// brainstate's exponential Euler: each equation linearised in its own variable with the
/// common factor `A = 2v/tau`, both updates from the old state:
/// `x' = x + dt phi1(A dt) f_x + dW_x`.
pub struct ExpEuler;

impl Scheme for ExpEuler {
    /// `phi1` by its polynomial alone when `|A dt| <= 1/2` in every lane (W1's whole range at
    /// dt = 0.01 ms, where that means |v| <= 25): no range reduction and no division.
    const HAS_FAST_FORM: bool = true;

    #[inline(always)]
    fn in_fast_range(c: &Coefficients, l: usize, v: f64) -> bool {
        v.abs() <= c.fast_v_max[l]
    }

    #[inline(always)]
    fn step<A: Arith, const FAST: bool>(
        c: &Coefficients,
        l: usize,
        dt: f64,
        s: LaneStep,
    ) -> (f64, f64) {
        let (f_r, f_v) = rhs::<A>(c, l, s.r, s.v, s.input);
        let z = c.two_dt_inv_tau[l] * s.v;
        let phi = if FAST {
            math::phi1_poly::<A>(z)
        } else {
            math::phi1::<A>(z)
        };
        let h = dt * phi;
        s.plus_noise(A::mul_add(h, f_r, s.r), A::mul_add(h, f_v, s.v))
    }
}

/// Forward Euler (Euler–Maruyama with noise).
pub struct Euler;

impl Scheme for Euler {
    #[inline(always)]
    fn step<A: Arith, const FAST: bool>(
        c: &Coefficients,
        l: usize,
        dt: f64,
        s: LaneStep,
    ) -> (f64, f64) {
        let (f_r, f_v) = rhs::<A>(c, l, s.r, s.v, s.input);
        s.plus_noise(A::mul_add(dt, f_r, s.r), A::mul_add(dt, f_v, s.v))
    }
}

/// Heun's predictor–corrector (braintools' `ode_rk2_step`, method `rk2`); with noise the
/// stochastic Heun scheme for additive noise (one increment per step, used in both stages).
pub struct Heun;

impl Scheme for Heun {
    #[inline(always)]
    fn step<A: Arith, const FAST: bool>(
        c: &Coefficients,
        l: usize,
        dt: f64,
        s: LaneStep,
    ) -> (f64, f64) {
        let (f_r, f_v) = rhs::<A>(c, l, s.r, s.v, s.input);
        let (pr, pv) = s.plus_noise(A::mul_add(dt, f_r, s.r), A::mul_add(dt, f_v, s.v));
        let (g_r, g_v) = rhs::<A>(c, l, pr, pv, s.input);
        let half = 0.5 * dt;
        s.plus_noise(
            A::mul_add(half, f_r + g_r, s.r),
            A::mul_add(half, f_v + g_v, s.v),
        )
    }
}

/// The classical four-stage Runge–Kutta scheme (deterministic; white noise is refused by
/// the spec, OU noise enters as an input held over the step).
pub struct Rk4;

impl Scheme for Rk4 {
    #[inline(always)]
    fn step<A: Arith, const FAST: bool>(
        c: &Coefficients,
        l: usize,
        dt: f64,
        s: LaneStep,
    ) -> (f64, f64) {
        let half = 0.5 * dt;
        let (r, v, input) = (s.r, s.v, s.input);
        let (k1r, k1v) = rhs::<A>(c, l, r, v, input);
        let (k2r, k2v) = rhs::<A>(
            c,
            l,
            A::mul_add(half, k1r, r),
            A::mul_add(half, k1v, v),
            input,
        );
        let (k3r, k3v) = rhs::<A>(
            c,
            l,
            A::mul_add(half, k2r, r),
            A::mul_add(half, k2v, v),
            input,
        );
        let (k4r, k4v) = rhs::<A>(c, l, A::mul_add(dt, k3r, r), A::mul_add(dt, k3v, v), input);
        let sixth = dt / 6.0;
        (
            A::mul_add(sixth, k1r + 2.0 * (k2r + k3r) + k4r, r),
            A::mul_add(sixth, k1v + 2.0 * (k2v + k3v) + k4v, v),
        )
    }
}

/// Dormand–Prince 5(4) stage coefficients `a[i][j]` of stages 2..6 (row `i` is stage
/// `i + 2`; the seventh stage, whose row is [`DOPRI5_B`], only serves the embedded error
/// estimate and the dense output of the adaptive kernel).
pub(super) const DOPRI5_A: [[f64; 5]; 5] = [
    [1.0 / 5.0, 0.0, 0.0, 0.0, 0.0],
    [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0],
    [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0],
    [
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
        0.0,
    ],
    [
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
];

/// Weights of the fifth-order solution.
pub(super) const DOPRI5_B: [f64; 6] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
];

/// braintools' `ode_dopri5_step`: the fifth-order solution of the Dormand–Prince pair taken
/// as a fixed step, no error control (deterministic; white noise is refused by the spec,
/// OU noise enters as an input held over the step).
pub struct Dopri5;

impl Scheme for Dopri5 {
    #[inline(always)]
    fn step<A: Arith, const FAST: bool>(
        c: &Coefficients,
        l: usize,
        dt: f64,
        s: LaneStep,
    ) -> (f64, f64) {
        let (r, v, input) = (s.r, s.v, s.input);
        let mut kr = [0.0; 6];
        let mut kv = [0.0; 6];
        (kr[0], kv[0]) = rhs::<A>(c, l, r, v, input);
        for i in 1..6 {
            let (mut sr, mut sv) = (0.0, 0.0);
            for j in 0..i {
                sr = A::mul_add(DOPRI5_A[i - 1][j], kr[j], sr);
                sv = A::mul_add(DOPRI5_A[i - 1][j], kv[j], sv);
            }
            (kr[i], kv[i]) = rhs::<A>(c, l, A::mul_add(dt, sr, r), A::mul_add(dt, sv, v), input);
        }
        let (mut sr, mut sv) = (0.0, 0.0);
        for i in 0..6 {
            sr = A::mul_add(DOPRI5_B[i], kr[i], sr);
            sv = A::mul_add(DOPRI5_B[i], kv[i], sv);
        }
        (A::mul_add(dt, sr, r), A::mul_add(dt, sv, v))
    }
}
