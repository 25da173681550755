//! The four integration schemes over lane batches (DESIGN.md section 2).
//!
//! Every scheme advances all lanes by one step from the state `(r, v)` with inputs `(ir, iv)`
//! held at their value at the step's start (as brainmass does) and white-noise increments
//! `(dw_r, dw_v) = sigma sqrt(dt) xi` (zeros without noise).

use super::{Coefficients, LANES, Lanes, math};

/// One integration scheme.
pub trait Scheme {
    #[allow(clippy::too_many_arguments)]
    fn step(
        c: &Coefficients,
        dt: f64,
        r: &mut Lanes,
        v: &mut Lanes,
        ir: &Lanes,
        iv: &Lanes,
        dw_r: &Lanes,
        dw_v: &Lanes,
    );
}

/// `(dr/dt, dv/dt)` of lane `l` in kernel units (r in kHz, t in ms).
#[inline(always)]
fn rhs(c: &Coefficients, l: usize, r: f64, v: f64, ir: f64, iv: f64) -> (f64, f64) {
    let f_r = (c.r_drive[l] + ir) + c.two_inv_tau[l] * r * v;
    let f_v =
        (v * v + (c.v_drive[l] + iv) + c.j_tau[l] * r - c.pi_tau_sq[l] * r * r) * c.inv_tau[l];
    (f_r, f_v)
}

/// brainstate's exponential Euler: each equation linearised in its own variable with the
/// common factor `A = 2v/tau`, both updates from the old state.
pub struct ExpEuler;

impl Scheme for ExpEuler {
    #[inline(always)]
    fn step(
        c: &Coefficients,
        dt: f64,
        r: &mut Lanes,
        v: &mut Lanes,
        ir: &Lanes,
        iv: &Lanes,
        dw_r: &Lanes,
        dw_v: &Lanes,
    ) {
        for l in 0..LANES {
            let (rl, vl) = (r[l], v[l]);
            let (f_r, f_v) = rhs(c, l, rl, vl, ir[l], iv[l]);
            let h = dt * math::phi1(c.two_inv_tau[l] * vl * dt);
            r[l] = rl + h * f_r + dw_r[l];
            v[l] = vl + h * f_v + dw_v[l];
        }
    }
}

/// Forward Euler (Euler–Maruyama with noise).
pub struct Euler;

impl Scheme for Euler {
    #[inline(always)]
    fn step(
        c: &Coefficients,
        dt: f64,
        r: &mut Lanes,
        v: &mut Lanes,
        ir: &Lanes,
        iv: &Lanes,
        dw_r: &Lanes,
        dw_v: &Lanes,
    ) {
        for l in 0..LANES {
            let (rl, vl) = (r[l], v[l]);
            let (f_r, f_v) = rhs(c, l, rl, vl, ir[l], iv[l]);
            r[l] = rl + dt * f_r + dw_r[l];
            v[l] = vl + dt * f_v + dw_v[l];
        }
    }
}

/// Heun's predictor–corrector; with noise the stochastic Heun scheme for additive noise
/// (one increment per step, used in both stages).
pub struct Heun;

impl Scheme for Heun {
    #[inline(always)]
    fn step(
        c: &Coefficients,
        dt: f64,
        r: &mut Lanes,
        v: &mut Lanes,
        ir: &Lanes,
        iv: &Lanes,
        dw_r: &Lanes,
        dw_v: &Lanes,
    ) {
        for l in 0..LANES {
            let (rl, vl) = (r[l], v[l]);
            let (f_r, f_v) = rhs(c, l, rl, vl, ir[l], iv[l]);
            let (pr, pv) = (rl + dt * f_r + dw_r[l], vl + dt * f_v + dw_v[l]);
            let (g_r, g_v) = rhs(c, l, pr, pv, ir[l], iv[l]);
            r[l] = rl + 0.5 * dt * (f_r + g_r) + dw_r[l];
            v[l] = vl + 0.5 * dt * (f_v + g_v) + dw_v[l];
        }
    }
}

/// The classical four-stage Runge–Kutta scheme (deterministic; white noise is refused by
/// the spec, OU noise enters as an input held over the step).
pub struct Rk4;

impl Scheme for Rk4 {
    #[inline(always)]
    fn step(
        c: &Coefficients,
        dt: f64,
        r: &mut Lanes,
        v: &mut Lanes,
        ir: &Lanes,
        iv: &Lanes,
        _: &Lanes,
        _: &Lanes,
    ) {
        let half = 0.5 * dt;
        for l in 0..LANES {
            let (rl, vl, i_r, i_v) = (r[l], v[l], ir[l], iv[l]);
            let (k1r, k1v) = rhs(c, l, rl, vl, i_r, i_v);
            let (k2r, k2v) = rhs(c, l, rl + half * k1r, vl + half * k1v, i_r, i_v);
            let (k3r, k3v) = rhs(c, l, rl + half * k2r, vl + half * k2v, i_r, i_v);
            let (k4r, k4v) = rhs(c, l, rl + dt * k3r, vl + dt * k3v, i_r, i_v);
            r[l] = rl + dt / 6.0 * (k1r + 2.0 * k2r + 2.0 * k3r + k4r);
            v[l] = vl + dt / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v);
        }
    }
}
