//! Linear stability of the integration schemes' one-step maps at the model's stable fixed
//! points: whether a run at step `dt` can settle on its stable states, and the largest step
//! for which it can.
//!
//! At a fixed point `y*` (where `f(y*) = 0`) with Jacobian `J_f`, the one-step map's
//! Jacobian is
//!
//! ```text
//! Runge-Kutta (euler, heun, rk2, rk4, dopri5):  R(dt J_f), R the method's stability polynomial
//! exp_euler (brainstate's):                      I + h J_f,  h = dt phi1(a dt) = (e^(a dt) - 1)/a
//! ```
//!
//! with `a = 2 v*/tau`, the factor exponential Euler integrates exactly (`f` vanishes at the
//! fixed point, so the derivative of the frozen factor drops out). The step is *stable* at
//! the fixed point when that Jacobian's spectral radius is below 1. Its eigenvalues are
//! `R(dt lambda)` and `1 + h lambda` for the eigenvalues `lambda` of `J_f`.
//!
//! The largest stable step (every step in `(0, dt]` stable):
//! - exp_euler: `|1 + h lambda| < 1` iff `h < h* = -2 Re(lambda)/|lambda|^2`, and `h` grows
//!   with dt from 0 towards `1/|a|`, so `dt_max = -ln(1 - |a| h*)/|a|`, or no bound when
//!   `|a| h* >= 1`. For the model's focus `lambda = a ± i w` this is
//!   `ln((k^2 + 1)/(k^2 - 1))/|a|` with `k = w/|a|` (no bound for `k <= 1`); real
//!   eigenvalues of a stable point never bound it.
//! - Runge–Kutta: along the ray `z = s d`, `d = lambda/|lambda|`, `|R(s d)|^2 - 1` is a real
//!   polynomial in `s` vanishing at 0; its first positive root `s*` gives
//!   `dt_max = s*/|lambda|`. Its real roots are isolated exactly (each lies in a monotone
//!   piece between roots of the derivative, found the same way, recursively) and bisected
//!   to full precision, so no narrow excursion of `|R| > 1` is missed.

use std::f64::consts::PI;

use super::{Few, FixedPoint, HZ_PER_KHZ, Method, NodeParams, StableStates};

/// A real 2x2 matrix, row-major.
pub type Mat2 = [[f64; 2]; 2];

const IDENTITY: Mat2 = [[1.0, 0.0], [0.0, 1.0]];

/// A complex number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Complex {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

impl Complex {
    /// The modulus. Not `f64::hypot`, which links a glibc 2.35 symbol and so would raise
    /// the glibc the Python wheel needs; the moduli here (eigenvalues in 1/ms, stability
    /// polynomials near the unit circle) are far from overflow and underflow.
    pub fn abs(self) -> f64 {
        (self.re * self.re + self.im * self.im).sqrt()
    }

    fn mul(self, o: Complex) -> Complex {
        Complex {
            re: self.re * o.re - self.im * o.im,
            im: self.re * o.im + self.im * o.re,
        }
    }
}

/// Whether a step size can represent a run's stable states (the `dt_stable` and
/// `dt_stable_max_ms` columns).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStability {
    /// The one-step map has spectral radius < 1 at every stable fixed point.
    pub stable: bool,
    /// The largest step (ms) for which every step in `(0, dt]` is stable at every stable
    /// fixed point; +inf where nothing bounds it.
    pub max_dt_ms: f64,
}

/// The stability polynomial `R(z) = sum c_k z^k` of a Runge–Kutta method (None for
/// exp_euler, whose map is not a polynomial in `dt J_f`). Only methods with a fixed step
/// have a one-step map to judge ([`Method::FIXED_STEP`]): the spec refuses dop853 without
/// adaptive steps, and adaptive sweeps skip the check.
pub fn stability_polynomial(method: Method) -> Option<&'static [f64]> {
    match method {
        Method::ExpEuler => None,
        Method::Euler => Some(&[1.0, 1.0]),
        // Heun (the deterministic part of the stochastic scheme) is the same map as rk2.
        Method::Heun | Method::Rk2 => Some(&[1.0, 1.0, 0.5]),
        Method::Rk4 => Some(&[1.0, 1.0, 1.0 / 2.0, 1.0 / 6.0, 1.0 / 24.0]),
        // The fifth-order solution of Dormand–Prince: exp(z) to fifth order plus z^6/600.
        Method::Dopri5 => Some(&[
            1.0,
            1.0,
            1.0 / 2.0,
            1.0 / 6.0,
            1.0 / 24.0,
            1.0 / 120.0,
            1.0 / 600.0,
        ]),
        Method::Dop853 => unreachable!("dop853 has no fixed step, so no one-step map to judge"),
    }
}

impl NodeParams {
    /// Jacobian of the right-hand side at `(r [kHz], v)`, kernel units (1/ms).
    pub fn jacobian(&self, r: f64, v: f64) -> Mat2 {
        let tau = self.tau_ms;
        [
            [2.0 * v / tau, 2.0 * r / tau],
            [self.j - 2.0 * PI * PI * tau * r, 2.0 * v / tau],
        ]
    }

    /// The right-hand side's Jacobians at the node's stable fixed points.
    pub fn stable_jacobians(&self) -> Few<Mat2, 3> {
        self.jacobians_at(&self.fixed_points())
    }

    /// The right-hand side's Jacobians at the stable ones of `fixed_points` (the node's).
    pub fn jacobians_at(&self, fixed_points: &[FixedPoint]) -> Few<Mat2, 3> {
        fixed_points
            .iter()
            .filter(|f| f.stable)
            .map(|f| self.jacobian(f.r_hz / HZ_PER_KHZ, f.v))
            .collect()
    }

    /// The node's stable states and, for a fixed step `dt` (ms), the step's stability at
    /// them: the fixed points are found once for both.
    pub fn analyse(
        &self,
        method: Method,
        dt: Option<f64>,
    ) -> (StableStates, Option<StepStability>) {
        let fixed_points = self.fixed_points();
        let stability = dt.map(|dt| step_stability(&self.jacobians_at(&fixed_points), method, dt));
        (StableStates::of(&fixed_points), stability)
    }

    /// [`StepStability`] of `method` at step `dt` (ms), over the stable fixed points of the
    /// node with its constant inputs.
    pub fn step_stability(&self, method: Method, dt: f64) -> StepStability {
        step_stability(&self.stable_jacobians(), method, dt)
    }
}

/// [`StepStability`] of `method` at step `dt` over fixed points with right-hand-side
/// Jacobians `jacobians`. With no stable fixed point nothing can fail: stable, and no bound.
pub fn step_stability(jacobians: &[Mat2], method: Method, dt: f64) -> StepStability {
    StepStability {
        stable: stable_at(jacobians, method, dt),
        max_dt_ms: jacobians
            .iter()
            .map(|&jf| max_stable_dt(method, jf))
            .fold(f64::INFINITY, f64::min),
    }
}

/// Whether `method`'s map at step `dt` has spectral radius < 1 at every fixed point with
/// right-hand-side Jacobians `jacobians`.
pub fn stable_at(jacobians: &[Mat2], method: Method, dt: f64) -> bool {
    jacobians
        .iter()
        .all(|&jf| spectral_radius(map_jacobian(method, jf, dt)) < 1.0)
}

/// The Jacobian of `method`'s one-step map at a fixed point whose right-hand side has
/// Jacobian `jf` (for exp_euler, `jf[1][1] = 2 v*/tau` is the factor it integrates exactly).
pub fn map_jacobian(method: Method, jf: Mat2, dt: f64) -> Mat2 {
    match stability_polynomial(method) {
        Some(c) => {
            // Horner in the matrix dt J_f.
            let z = scale(jf, dt);
            let mut m = scale(IDENTITY, c[c.len() - 1]);
            for &ck in c[..c.len() - 1].iter().rev() {
                m = add(mul(m, z), scale(IDENTITY, ck));
            }
            m
        }
        None => add(IDENTITY, scale(jf, exp_euler_h(jf[1][1], dt))),
    }
}

/// `dt phi1(a dt) = (e^(a dt) - 1)/a`: exponential Euler's effective step.
fn exp_euler_h(a: f64, dt: f64) -> f64 {
    let z = a * dt;
    if z == 0.0 { dt } else { z.exp_m1() / a }
}

/// The eigenvalues of a real 2x2 matrix.
pub fn eigenvalues(m: Mat2) -> [Complex; 2] {
    let half_trace = 0.5 * (m[0][0] + m[1][1]);
    // (m00 - m11)^2/4 + m01 m10: the discriminant without cancellation for equal diagonals.
    let half_diff = 0.5 * (m[0][0] - m[1][1]);
    let disc = half_diff * half_diff + m[0][1] * m[1][0];
    if disc < 0.0 {
        let w = (-disc).sqrt();
        [
            Complex {
                re: half_trace,
                im: w,
            },
            Complex {
                re: half_trace,
                im: -w,
            },
        ]
    } else {
        let s = disc.sqrt();
        let real = |re| Complex { re, im: 0.0 };
        [real(half_trace + s), real(half_trace - s)]
    }
}

/// The largest eigenvalue modulus of a real 2x2 matrix.
pub fn spectral_radius(m: Mat2) -> f64 {
    let [a, b] = eigenvalues(m);
    a.abs().max(b.abs())
}

/// The largest `dt` (ms) such that `method`'s map is stable at a fixed point with
/// right-hand-side Jacobian `jf` for every step in `(0, dt]`; +inf without a bound, 0 if
/// the fixed point itself is not stable.
pub fn max_stable_dt(method: Method, jf: Mat2) -> f64 {
    let lambdas = eigenvalues(jf);
    if lambdas.iter().any(|l| l.re >= 0.0) {
        return 0.0;
    }
    let per_eigenvalue = |l: Complex| -> f64 {
        // |1 + h lambda| < 1 iff h < h*.
        let h_star = -2.0 * l.re / (l.re * l.re + l.im * l.im);
        match stability_polynomial(method) {
            Some(c) => first_exit_along_ray(c, l) / l.abs(),
            None => {
                let a = jf[1][1];
                if a >= 0.0 {
                    // h = dt phi1(a dt) grows without bound: the bound is where h = h*.
                    return exp_euler_dt_for_h(a, h_star);
                }
                let x = -a * h_star;
                if x >= 1.0 {
                    f64::INFINITY
                } else {
                    -(-x).ln_1p() / -a
                }
            }
        }
    };
    lambdas
        .into_iter()
        .map(per_eigenvalue)
        .fold(f64::INFINITY, f64::min)
}

/// The `dt` with `(e^(a dt) - 1)/a = h` for `a >= 0`.
fn exp_euler_dt_for_h(a: f64, h: f64) -> f64 {
    if a == 0.0 { h } else { (a * h).ln_1p() / a }
}

/// Coefficients of `(|R(s d)|^2 - 1)/s` at most (degree 11, for dopri5).
const MAX_COEFFICIENTS: usize = 12;

/// Every method's stability region lies inside |z| < 4 (checked in the tests: |R| > 1
/// there on the whole left half-circle and beyond), so the first exit is below this.
const RAY_LIMIT: f64 = 4.0;

/// Scan cells on (0, RAY_LIMIT] before the root is refined in one.
const RAY_SCAN: usize = 32;

/// The first `s > 0` with `|R(s d)| >= 1`, `d = lambda/|lambda|` (Re d < 0).
///
/// Along every ray of the left half-plane the stable steps of these methods form one
/// interval `(0, s*)` (checked in the tests against an exact isolation of the polynomial's
/// real roots on 2,000 rays), so `s*` is the polynomial's only sign change; the scan in
/// cells of 1/8 would also catch an excursion of |R| > 1 wider than a cell.
fn first_exit_along_ray(c: &[f64], lambda: Complex) -> f64 {
    let n = lambda.abs();
    let d = Complex {
        re: lambda.re / n,
        im: lambda.im / n,
    };
    // |R(s d)|^2 = sum_{j,k} c_j c_k Re(d^j conj(d)^k) s^(j+k); drop the constant 1 and
    // divide by s.
    let mut powers = [Complex { re: 1.0, im: 0.0 }; MAX_COEFFICIENTS / 2 + 1];
    for k in 1..c.len() {
        powers[k] = powers[k - 1].mul(d);
    }
    let powers = &powers[..c.len()];
    let degree = 2 * (c.len() - 1);
    let mut q = [0.0; MAX_COEFFICIENTS];
    for (j, pj) in powers.iter().enumerate() {
        for (k, pk) in powers.iter().enumerate() {
            if j + k > 0 {
                // Re(d^j conj(d^k)).
                q[j + k - 1] += c[j] * c[k] * (pj.re * pk.re + pj.im * pk.im);
            }
        }
    }
    // Q(0) = 2 Re d < 0. Scan (0, RAY_LIMIT] for the first grid point with Q >= 0, then
    // refine the root in its cell to full precision.
    let q = &q[..degree];
    let eval = |x: f64| q.iter().rev().fold(0.0, |acc, &ck| acc * x + ck);
    let cell = RAY_LIMIT / RAY_SCAN as f64;
    let Some(k) = (1..=RAY_SCAN).find(|&k| eval(k as f64 * cell) >= 0.0) else {
        return f64::INFINITY;
    };
    // Regula falsi with the Illinois modification inside the cell (a bracket that shrinks
    // to adjacent floats, superlinearly); Q(lo) < 0 <= Q(hi).
    let (mut lo, mut hi) = ((k - 1) as f64 * cell, k as f64 * cell);
    let (mut f_lo, mut f_hi) = (eval(lo), eval(hi));
    let mut side = 0;
    for _ in 0..200 {
        let x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo);
        let x = if x > lo && x < hi { x } else { 0.5 * (lo + hi) };
        if x <= lo || x >= hi {
            break;
        }
        let fx = eval(x);
        if fx < 0.0 {
            (lo, f_lo) = (x, fx);
            if side == -1 {
                f_hi *= 0.5;
            }
            side = -1;
        } else {
            (hi, f_hi) = (x, fx);
            if side == 1 {
                f_lo *= 0.5;
            }
            side = 1;
        }
        if hi - lo <= 4.0 * f64::EPSILON * hi {
            break;
        }
    }
    hi
}

fn scale(m: Mat2, s: f64) -> Mat2 {
    m.map(|row| row.map(|x| x * s))
}

fn add(a: Mat2, b: Mat2) -> Mat2 {
    [
        [a[0][0] + b[0][0], a[0][1] + b[0][1]],
        [a[1][0] + b[1][0], a[1][1] + b[1][1]],
    ]
}

fn mul(a: Mat2, b: Mat2) -> Mat2 {
    let e = |i: usize, j: usize| a[i][0] * b[0][j] + a[i][1] * b[1][j];
    [[e(0, 0), e(0, 1)], [e(1, 0), e(1, 1)]]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Method; 6] = Method::FIXED_STEP;

    /// The exact oracle: up to [`MAX_COEFFICIENTS`] roots, ascending, without allocating.
    #[derive(Debug, Clone, Copy)]
    struct Roots {
        xs: [f64; MAX_COEFFICIENTS],
        n: usize,
    }

    impl Roots {
        fn as_slice(&self) -> &[f64] {
            &self.xs[..self.n]
        }
    }

    /// The real roots of `p` (coefficients by ascending power) in `(lo, hi]`, ascending; with
    /// `first_only`, at most the first.
    ///
    /// Between consecutive roots of `p'` the polynomial is monotone and holds at most one root;
    /// the roots of `p'` come from the same function. A bracketed root is bisected to full
    /// precision.
    fn real_roots(p: &[f64], lo: f64, hi: f64, first_only: bool) -> Roots {
        assert!(
            p.len() <= MAX_COEFFICIENTS,
            "polynomial of degree {}",
            p.len() - 1
        );
        let mut out = Roots {
            xs: [0.0; MAX_COEFFICIENTS],
            n: 0,
        };
        let degree = p.iter().rposition(|&x| x != 0.0).unwrap_or(0);
        if degree == 0 {
            return out;
        }
        let mut dp = [0.0; MAX_COEFFICIENTS];
        for k in 1..=degree {
            dp[k - 1] = k as f64 * p[k];
        }
        let dp = &dp[..degree];
        let eval = |c: &[f64], x: f64| c.iter().rev().fold(0.0, |acc, &ck| acc * x + ck);
        let critical = real_roots(dp, lo, hi, false);
        let mut a = lo;
        let mut fa = eval(p, a);
        for &b in critical.as_slice().iter().filter(|&&x| x < hi).chain([&hi]) {
            let fb = eval(p, b);
            let piece = (a, b, fa, fb);
            (a, fa) = (b, fb);
            let (mut x0, mut x1, f0, f1) = piece;
            if f1 == 0.0 {
                out.xs[out.n] = x1;
            } else if f0 == 0.0 || f0.signum() == f1.signum() {
                continue;
            } else {
                let rising = f1 > f0;
                loop {
                    let mid = 0.5 * (x0 + x1);
                    if mid <= x0 || mid >= x1 {
                        break;
                    }
                    if (eval(p, mid) < 0.0) == rising {
                        x0 = mid;
                    } else {
                        x1 = mid;
                    }
                }
                out.xs[out.n] = x1;
            }
            if out.n == 0 || out.xs[out.n] != out.xs[out.n - 1] {
                out.n += 1;
            }
            if first_only {
                break;
            }
        }
        out
    }

    /// `(|R(s d)|^2 - 1)/s` for the direction at angle `theta`.
    fn ray_polynomial(c: &[f64], theta: f64) -> Vec<f64> {
        let d = Complex {
            re: theta.cos(),
            im: theta.sin(),
        };
        let mut p = vec![Complex { re: 1.0, im: 0.0 }];
        for _ in 1..c.len() {
            let last = *p.last().unwrap();
            p.push(last.mul(d));
        }
        let mut q = vec![0.0; 2 * (c.len() - 1)];
        for j in 0..c.len() {
            for k in 0..c.len() {
                if j + k > 0 {
                    q[j + k - 1] += c[j] * c[k] * (p[j].re * p[k].re + p[j].im * p[k].im);
                }
            }
        }
        q
    }

    /// The scan and bisection against an exact isolation of every real root of the ray's
    /// polynomial: the same first root, and no further root (one stable interval), on
    /// 2,000 rays of the left half-plane per method.
    #[test]
    fn the_first_exit_is_the_only_root_on_every_ray() {
        for method in ALL.into_iter().filter(|&m| m != Method::ExpEuler) {
            let c = stability_polynomial(method).unwrap();
            for i in 1..2000 {
                let theta = PI / 2.0 + PI / 2.0 * i as f64 / 2000.0;
                let q = ray_polynomial(c, theta);
                let lead = *q.last().unwrap();
                let bound = 1.0 + q.iter().map(|x| (x / lead).abs()).fold(0.0, f64::max);
                let exact = real_roots(&q, 0.0, bound, false);
                assert_eq!(
                    exact.as_slice().len(),
                    1,
                    "{method:?} theta {theta}: roots {:?}",
                    exact.as_slice()
                );
                let d = Complex {
                    re: theta.cos(),
                    im: theta.sin(),
                };
                let got = first_exit_along_ray(c, d);
                let want = exact.as_slice()[0];
                assert!(want < RAY_LIMIT);
                assert!(
                    (got - want).abs() <= 1e-13 * want,
                    "{method:?} theta {theta}: {got} vs {want}"
                );
            }
        }
    }

    fn node(eta: f64, j: f64, delta: f64) -> NodeParams {
        NodeParams::from_user(1.0, eta, j, delta, 0.0, 0.0)
    }

    /// The high state's Jacobian at eta = 0, J = 15, delta = 1 (a weakly damped focus).
    fn focus() -> Mat2 {
        let n = node(0.0, 15.0, 1.0);
        let fp = *n.fixed_points().iter().rev().find(|f| f.stable).unwrap();
        n.jacobian(fp.r_hz / 1000.0, fp.v)
    }

    /// Brute force: the first dt on a fine grid where the map's spectral radius reaches 1.
    fn scanned_max_dt(method: Method, jf: Mat2, upto: f64, n: usize) -> f64 {
        (1..=n)
            .map(|i| upto * i as f64 / n as f64)
            .find(|&dt| spectral_radius(map_jacobian(method, jf, dt)) >= 1.0)
            .unwrap_or(f64::INFINITY)
    }

    #[test]
    fn the_jacobian_matches_finite_differences_of_the_rhs() {
        let n = NodeParams::from_user(1.7, -3.0, 12.0, 0.8, 20.0, 0.3);
        let (r, v) = (0.4, -0.7);
        let jf = n.jacobian(r, v);
        let eps = 1e-6;
        for (col, (dr, dv)) in [(eps, 0.0), (0.0, eps)].into_iter().enumerate() {
            let (fp, gp) = n.rhs(r + dr, v + dv);
            let (fm, gm) = n.rhs(r - dr, v - dv);
            let fd = [(fp - fm) / (2.0 * eps), (gp - gm) / (2.0 * eps)];
            for row in 0..2 {
                assert!(
                    (fd[row] - jf[row][col]).abs() < 1e-7 * (1.0 + jf[row][col].abs()),
                    "J[{row}][{col}]: {} vs {}",
                    jf[row][col],
                    fd[row]
                );
            }
        }
    }

    #[test]
    fn spectral_radius_of_known_matrices() {
        // A rotation by 0.3 rad scaled by 0.9; a diagonal; a Jordan block.
        let (c, s) = (0.9 * 0.3f64.cos(), 0.9 * 0.3f64.sin());
        assert!((spectral_radius([[c, -s], [s, c]]) - 0.9).abs() < 1e-15);
        assert_eq!(spectral_radius([[-1.5, 0.0], [0.0, 0.5]]), 1.5);
        assert_eq!(spectral_radius([[0.7, 5.0], [0.0, 0.7]]), 0.7);
        // Non-symmetric real case: eigenvalues 3 and -1 of [[1, 2], [2, 1]].
        assert!((spectral_radius([[1.0, 2.0], [2.0, 1.0]]) - 3.0).abs() < 1e-15);
    }

    #[test]
    fn the_issues_exp_euler_bound_at_eta_0_j_15() {
        // The ringing brainmass case: stable only for dt < 0.00917 ms.
        let dt = max_stable_dt(Method::ExpEuler, focus());
        assert!((dt - 0.00917).abs() < 5e-5, "{dt}");
        let n = node(0.0, 15.0, 1.0);
        assert!(!n.step_stability(Method::ExpEuler, 0.01).stable);
        assert!(n.step_stability(Method::ExpEuler, 0.009).stable);
    }

    #[test]
    fn closed_form_bounds_for_euler() {
        // Forward Euler: dt < 2|Re lambda|/|lambda|^2.
        let jf = focus();
        let l = eigenvalues(jf)[0];
        let want = -2.0 * l.re / (l.re * l.re + l.im * l.im);
        let got = max_stable_dt(Method::Euler, jf);
        assert!((got - want).abs() <= 1e-14 * want, "{got} vs {want}");
    }

    /// The largest stable step against a brute-force scan of the map's spectral radius, on
    /// foci and nodes of several points, for every method.
    #[test]
    fn max_stable_dt_agrees_with_a_scan_of_the_spectral_radius() {
        let points = [
            (0.0, 15.0, 1.0),
            (-5.0, 15.0, 1.0),
            (-2.0, 25.0, 1.0),
            (-1.0, 30.0, 0.5),
            (-10.0, 5.0, 2.0),
            (-4.0, 0.0, 4.0),
        ];
        for (eta, j, delta) in points {
            let n = node(eta, j, delta);
            for fp in n.fixed_points().into_iter().filter(|f| f.stable) {
                let jf = n.jacobian(fp.r_hz / 1000.0, fp.v);
                for method in ALL {
                    let got = max_stable_dt(method, jf);
                    // Scan up to 4x the bound (or 20 ms) in 40,000 steps.
                    let upto = if got.is_finite() { 4.0 * got } else { 20.0 };
                    let scanned = scanned_max_dt(method, jf, upto, 40_000);
                    let tol = upto / 40_000.0;
                    if got.is_finite() {
                        // The bound is a grid point here (upto = 4 got): rounding may
                        // put it on either side, so the scan may end one point later.
                        assert!(
                            scanned >= got - 1e-12 && scanned <= got + tol * (1.0 + 1e-9),
                            "{method:?} at ({eta}, {j}, {delta}), {} Hz: {got} vs scan {scanned}",
                            fp.r_hz
                        );
                    } else {
                        assert!(
                            scanned.is_infinite(),
                            "{method:?} at ({eta}, {j}, {delta}): no bound, but the scan left at {scanned}"
                        );
                    }
                }
            }
        }
    }

    /// Along every ray of the left half-plane the stable steps of each Runge–Kutta method
    /// form one interval: the first exit is also the last.
    #[test]
    fn the_stable_steps_along_a_ray_are_an_interval() {
        for method in ALL.into_iter().filter(|&m| m != Method::ExpEuler) {
            let c = stability_polynomial(method).unwrap();
            for i in 1..400 {
                let theta = PI / 2.0 + PI / 2.0 * i as f64 / 400.0;
                let d = Complex {
                    re: theta.cos(),
                    im: theta.sin(),
                };
                let s = first_exit_along_ray(c, d);
                assert!(s.is_finite() && s > 0.0);
                // Beyond the first exit |R| stays >= 1 (checked on a grid up to 10).
                for k in 1..=500 {
                    let x = s + (10.0 - s) * k as f64 / 500.0;
                    let z = Complex {
                        re: x * d.re,
                        im: x * d.im,
                    };
                    let r = c
                        .iter()
                        .rev()
                        .fold(Complex { re: 0.0, im: 0.0 }, |acc, &ck| {
                            let p = acc.mul(z);
                            Complex {
                                re: p.re + ck,
                                im: p.im,
                            }
                        });
                    assert!(
                        r.abs() >= 1.0 - 1e-9,
                        "{method:?} theta {theta}: re-enters at {x}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_real_axis_limits_of_the_stability_regions() {
        // Known intervals on the negative real axis: euler and rk2 (-2, 0), rk4 (-2.7853, 0),
        // dopri5 (-3.3066, 0) (bisection of |R(-s)| = 1).
        let real = |method| {
            first_exit_along_ray(
                stability_polynomial(method).unwrap(),
                Complex { re: -1.0, im: 0.0 },
            )
        };
        assert!((real(Method::Euler) - 2.0).abs() < 1e-14);
        assert!((real(Method::Rk2) - 2.0).abs() < 1e-14);
        assert!(
            (real(Method::Rk4) - 2.785_293_563_405).abs() < 1e-11,
            "{}",
            real(Method::Rk4)
        );
        assert!(
            (real(Method::Dopri5) - 3.306_567_892_635).abs() < 1e-11,
            "{}",
            real(Method::Dopri5)
        );
    }

    #[test]
    fn a_strongly_damped_state_bounds_no_exp_euler_step() {
        // J = 0: the only state is a focus with k = w/|a| < 1, stable at every step.
        let n = node(-10.0, 0.0, 1.0);
        let s = n.step_stability(Method::ExpEuler, 1.0);
        assert!(s.stable && s.max_dt_ms.is_infinite(), "{s:?}");
    }
}
