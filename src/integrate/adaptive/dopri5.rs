//! The Dormand–Prince 5(4) pair (Hairer's `dopri5`, FSAL) as an adaptive [`Pair`]: its
//! step with the stage-weight averages, its error norm and Shampine's continuous extension
//! for traces. The tableau's `a_ij` and `b_i` are the fixed-step `dopri5`'s.

use super::super::Coefficients;
use super::super::Drive;
use super::super::math::Arith;
use super::super::schemes::{DOPRI5_A, DOPRI5_B, rhs};
use super::{Dense, Pair, PairStep, add_to_averages, stage_input};

/// The Dormand–Prince 5(4) pair.
pub struct Dopri54;

impl Pair for Dopri54 {
    // Gustafsson's PI controller for a 5(4) pair: fac = 0.9 err^-0.14 err_prev^0.08.
    const ALPHA: f64 = 0.7 / 5.0;
    const BETA: f64 = 0.4 / 5.0;
    type Dense = DopriDense;

    #[inline(always)]
    fn step<A: Arith>(
        c: &Coefficients,
        drive: Option<&Drive>,
        l: usize,
        th: (f64, f64),
        y: (f64, f64),
        k1: (f64, f64),
        shift: (f64, f64),
    ) -> PairStep {
        let s = dopri_step::<A>(c, drive, l, th, y, k1, shift);
        PairStep {
            k_last: (s.kr[6], s.kv[6]),
            r1: s.r1,
            v1: s.v1,
            err: [s.er, s.ev, 0.0, 0.0],
            avg_r: s.avg_r,
            avg_v: s.avg_v,
        }
    }

    /// The scaled RMS norm over (r, v), squared: `0.5 ((er/sc_r)^2 + (ev/sc_v)^2)`, with one
    /// division.
    #[inline(always)]
    fn err_sq<A: Arith>(err: &[f64; 4], sc_r: f64, sc_v: f64) -> f64 {
        let (xr, xv) = (err[0] * sc_v, err[1] * sc_r);
        let sc = sc_r * sc_v;
        0.5 * A::mul_add(xr, xr, xv * xv) / (sc * sc)
    }

    fn dense<A: Arith>(
        c: &Coefficients,
        drive: Option<&Drive>,
        l: usize,
        (t, h): (f64, f64),
        y0: (f64, f64),
        k1: (f64, f64),
    ) -> DopriDense {
        // The same call as the kernel's: the same stages, bit for bit.
        let s = dopri_step::<A>(c, drive, l, (t, h), y0, k1, (0.0, 0.0));
        DopriDense {
            r: dense_coefficients::<A>(y0.0, s.r1, h, &s.kr),
            v: dense_coefficients::<A>(y0.1, s.v1, h, &s.kv),
        }
    }
}

/// The continuous extension of one step: [`dense`]'s coefficients of r and v.
pub struct DopriDense {
    r: [f64; 5],
    v: [f64; 5],
}

impl Dense for DopriDense {
    #[inline(always)]
    fn at<A: Arith>(&self, theta: f64) -> (f64, f64) {
        (dense::<A>(&self.r, theta), dense::<A>(&self.v, theta))
    }
}

/// Stage times `c_i` of the seven stages (the seventh is the FSAL stage at the step's end).
const DOPRI5_C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];

/// Error coefficients: the fifth-order weights minus the embedded fourth-order ones
/// (`5179/57600, 0, 7571/16695, 393/640, -92097/339200, 187/2100, 1/40`).
const DOPRI5_E: [f64; 7] = [
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
const DOPRI5_D: [f64; 7] = [
    -12715105075.0 / 11282082432.0,
    0.0,
    87487479700.0 / 32700410799.0,
    -10690763975.0 / 1880347072.0,
    701980252875.0 / 199316789632.0,
    -1453857185.0 / 822651844.0,
    69997945.0 / 29380423.0,
];

/// The dense output of one variable at `theta` from its coefficients
/// `[y0, d, h k1 - d, d - h k7 - (h k1 - d), h sum D_i k_i]`.
#[inline(always)]
fn dense<A: Arith>(q: &[f64; 5], theta: f64) -> f64 {
    let s = 1.0 - theta;
    let inner = A::mul_add(s, q[4], q[3]);
    let inner = A::mul_add(theta, inner, q[2]);
    let inner = A::mul_add(s, inner, q[1]);
    A::mul_add(theta, inner, q[0])
}

/// The dense-output coefficients of one variable (see [`dense`]).
#[inline(always)]
fn dense_coefficients<A: Arith>(y0: f64, y1: f64, h: f64, k: &[f64; 7]) -> [f64; 5] {
    let d = y1 - y0;
    let b = A::mul_add(h, k[0], -d);
    let c = A::mul_add(-h, k[6], d) - b;
    let mut s = 0.0;
    for i in 0..7 {
        // D_2 = 0 (a compile-time constant: the term is dropped, not multiplied by 0).
        if DOPRI5_D[i] != 0.0 {
            s = A::mul_add(DOPRI5_D[i], k[i], s);
        }
    }
    [y0, d, b, c, h * s]
}

/// One trial step of one lane (see [`dopri_step`]).
struct DopriStep {
    /// The seven stages of r and of v.
    kr: [f64; 7],
    kv: [f64; 7],
    /// The fifth-order solution.
    r1: f64,
    v1: f64,
    /// The error estimate (the step's fifth- minus fourth-order solution).
    er: f64,
    ev: f64,
    /// The step's averages of `x - shift` and `(x - shift)^2` for x = r, v: the stage
    /// values weighted by the fifth-order weights `b_i` (see [`dopri_step`]).
    avg_r: [f64; 2],
    avg_v: [f64; 2],
}

/// One Dormand–Prince 5(4) step of lane `l` from `(r, v)` at `t` over `h`, with `k1`
/// given: the stages, the fifth-order solution, the error estimate and the step's
/// averages. An integral `z' = g(r, v)` appended to the system would be advanced by
/// `h sum_i b_i g(R_i, V_i)` over the stage values `(R_i, V_i)`, to the method's fifth
/// order (`z` feeds back into nothing, so its own stages are never needed): that is the
/// average of `g` here, for `g = x - shift` and `(x - shift)^2`.
#[inline(always)]
fn dopri_step<A: Arith>(
    c: &Coefficients,
    drive: Option<&Drive>,
    l: usize,
    (t, h): (f64, f64),
    (r, v): (f64, f64),
    k1: (f64, f64),
    (shift_r, shift_v): (f64, f64),
) -> DopriStep {
    let input = |c_i: f64| stage_input::<A>(drive, l, (t, h), c_i);
    // Adds stage i's values to the averages (b_2 = 0: a compile-time constant, dropped).
    let mut avg_r = [0.0; 2];
    let mut avg_v = [0.0; 2];
    let mut average = |i: usize, ri: f64, vi: f64| {
        if DOPRI5_B[i] != 0.0 {
            add_to_averages::<A>(&mut avg_r, DOPRI5_B[i], ri - shift_r);
            add_to_averages::<A>(&mut avg_v, DOPRI5_B[i], vi - shift_v);
        }
    };
    let mut kr = [0.0; 7];
    let mut kv = [0.0; 7];
    (kr[0], kv[0]) = k1;
    average(0, r, v);
    for i in 1..6 {
        let (mut sr, mut sv) = (0.0, 0.0);
        for j in 0..i {
            sr = A::mul_add(DOPRI5_A[i - 1][j], kr[j], sr);
            sv = A::mul_add(DOPRI5_A[i - 1][j], kv[j], sv);
        }
        let (ri, vi) = (A::mul_add(h, sr, r), A::mul_add(h, sv, v));
        average(i, ri, vi);
        (kr[i], kv[i]) = rhs::<A>(c, l, ri, vi, input(DOPRI5_C[i]));
    }
    let (mut sr, mut sv) = (0.0, 0.0);
    // b_2 = 0 and e_2 = 0: those terms are dropped (compile-time constants).
    for i in 0..6 {
        if DOPRI5_B[i] != 0.0 {
            sr = A::mul_add(DOPRI5_B[i], kr[i], sr);
            sv = A::mul_add(DOPRI5_B[i], kv[i], sv);
        }
    }
    let (r1, v1) = (A::mul_add(h, sr, r), A::mul_add(h, sv, v));
    (kr[6], kv[6]) = rhs::<A>(c, l, r1, v1, input(DOPRI5_C[6]));
    let (mut er, mut ev) = (0.0, 0.0);
    for i in 0..7 {
        if DOPRI5_E[i] != 0.0 {
            er = A::mul_add(DOPRI5_E[i], kr[i], er);
            ev = A::mul_add(DOPRI5_E[i], kv[i], ev);
        }
    }
    DopriStep {
        kr,
        kv,
        r1,
        v1,
        er: h * er,
        ev: h * ev,
        avg_r,
        avg_v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrate::math::Unfused;

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

    /// One lane at eta = -5, J = 15, delta = 1 (tau = 1 ms).
    fn settling_lane() -> Coefficients {
        let mut c = Coefficients::default();
        let p = crate::model::NodeParams::from_user(1.0, -5.0, 15.0, 1.0, 0.0, 0.0);
        c.set_lane(0, &p, 0.0, 0.0, 0.01);
        c
    }

    /// The step's averages of `x - shift` and `(x - shift)^2` over `[0, h]` from r = 0.1 kHz,
    /// v = -2 (where both change fast), by one step or by `n` substeps merged.
    fn averages(c: &Coefficients, h: f64, n: usize, shift: (f64, f64)) -> [f64; 4] {
        let (mut y, mut sum) = ((0.1, -2.0), [0.0; 4]);
        let dt = h / n as f64;
        for _ in 0..n {
            let k1 = rhs::<Unfused>(c, 0, y.0, y.1, None);
            let step = dopri_step::<Unfused>(c, None, 0, (0.0, dt), y, k1, shift);
            let avg = [step.avg_r[0], step.avg_r[1], step.avg_v[0], step.avg_v[1]];
            for (s, a) in sum.iter_mut().zip(avg) {
                *s += a / n as f64;
            }
            y = (step.r1, step.v1);
        }
        sum
    }

    #[test]
    fn the_stage_weights_average_x_and_its_square_to_fifth_order() {
        let c = settling_lane();
        let mut errors = Vec::new();
        for h in [0.04, 0.02] {
            // 256 substeps: their error is 256^5 times smaller, far below the step's.
            let reference = averages(&c, h, 256, (0.0, 0.0));
            let one = averages(&c, h, 1, (0.0, 0.0));
            errors.push(
                (0..4)
                    .map(|i| (one[i] - reference[i]).abs())
                    .collect::<Vec<_>>(),
            );
        }
        for i in 0..4 {
            // The average is the integral over h: local error O(h^6) / h = O(h^5), so halving
            // h divides it by about 32 (a fourth-order rule would give 16).
            let ratio = errors[0][i] / errors[1][i];
            assert!(
                ratio > 26.0 && ratio < 40.0,
                "average {i}: ratio {ratio}, errors {errors:?}"
            );
        }
        // Around a shift: the same weights, so avg((x - s)^2) = avg(x^2) - 2 s avg(x) + s^2
        // (the weights sum to 1) up to rounding.
        let (sr, sv) = (0.09, -1.9);
        let plain = averages(&c, 0.04, 1, (0.0, 0.0));
        let shifted = averages(&c, 0.04, 1, (sr, sv));
        for (i, s) in [(0, sr), (2, sv)] {
            assert!(
                (shifted[i] - (plain[i] - s)).abs() < 1e-15,
                "{shifted:?} {plain:?}"
            );
            let want = plain[i + 1] - 2.0 * s * plain[i] + s * s;
            assert!(
                (shifted[i + 1] - want).abs() < 1e-14,
                "{shifted:?} {plain:?}"
            );
        }
    }
}
