//! The Montbrió–Pazó–Roxin node: right-hand sides and analytic fixed points.
//!
//! Kernel units: time in ms, r in kHz (1/ms), v dimensionless. With those,
//!
//! ```text
//! dr/dt = delta/(pi tau^2) + 2 r v / tau + I_r
//! dv/dt = (v^2 + eta + J tau r - (pi tau r)^2 + I_v) / tau
//! ```
//!
//! Users see r in Hz and I_r in Hz/ms; the conversions live in [`NodeParams::from_user`].

use std::f64::consts::PI;

mod few;
mod method;
pub mod stability;

pub use few::Few;
pub use method::Method;
pub use stability::StepStability;
/// Hz per kHz: users give and read rates in Hz, the kernel integrates r in kHz (1/ms) so
/// that time is in ms throughout.
pub const HZ_PER_KHZ: f64 = 1000.0;

/// How the delayed rates of a network node's sources drive it (the coupling enters dr/dt
/// as a rate input, Hz per ms, whatever tau).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coupling {
    /// `k sum_j W_ij (r_j(t - d_ij) - r_i(t))` (brainmass's default).
    Diffusive,
    /// `k sum_j W_ij r_j(t - d_ij)`.
    Additive,
}

impl Coupling {
    /// Both kinds, as the spec names them.
    pub const ALL: [Coupling; 2] = [Coupling::Diffusive, Coupling::Additive];

    /// The name in the spec and the metadata.
    pub fn name(self) -> &'static str {
        match self {
            Coupling::Diffusive => "diffusive",
            Coupling::Additive => "additive",
        }
    }
}

/// Parameters of one node, in kernel units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeParams {
    /// Membrane time constant tau, ms, > 0.
    pub tau_ms: f64,
    /// Mean excitability eta (dimensionless).
    pub eta: f64,
    /// Synaptic weight J (dimensionless).
    pub j: f64,
    /// Half-width delta of the excitability distribution, >= 0.
    pub delta: f64,
    /// Constant rate input I_r in kHz/ms.
    pub input_r: f64,
    /// Constant voltage input I_v (dimensionless).
    pub input_v: f64,
}

impl NodeParams {
    /// From the spec's units (I_r in Hz/ms).
    pub fn from_user(
        tau_ms: f64,
        eta: f64,
        j: f64,
        delta: f64,
        input_r_hz: f64,
        input_v: f64,
    ) -> NodeParams {
        NodeParams {
            tau_ms,
            eta,
            j,
            delta,
            input_r: input_r_hz / HZ_PER_KHZ,
            input_v,
        }
    }

    /// `(dr/dt, dv/dt)` at `(r [kHz], v)`.
    pub fn rhs(&self, r: f64, v: f64) -> (f64, f64) {
        let tau = self.tau_ms;
        let dr = self.delta / (PI * tau * tau) + 2.0 * r * v / tau + self.input_r;
        let dv =
            (v * v + self.eta + self.j * tau * r - (PI * tau * r).powi(2) + self.input_v) / tau;
        (dr, dv)
    }

    /// The fixed points, sorted by rate, with their linear stability.
    ///
    /// With x = tau*r and D = delta/pi + I_r tau^2, a fixed point has v = -D/(2x) and x a
    /// positive root of `pi^2 x^4 - J x^3 - (eta + I_v) x^2 - D^2/4 = 0` (for I_r = 0 this
    /// is the quartic of Montbrió et al. 2015 and does not depend on tau).
    pub fn fixed_points(&self) -> Few<FixedPoint, 3> {
        let tau = self.tau_ms;
        let d = self.delta / PI + self.input_r * tau * tau;
        let (a4, a3, a2, a0) = (PI * PI, -self.j, -(self.eta + self.input_v), -d * d / 4.0);
        positive_quartic_roots(a4, a3, a2, a0)
            .into_iter()
            .map(|x| {
                let r = x / tau;
                let v = -d / (2.0 * x);
                // Jacobian of the rhs at (r, v).
                let (a, b) = (2.0 * v / tau, 2.0 * r / tau);
                let (c, e) = (
                    (self.j * tau - 2.0 * PI * PI * tau * tau * r) / tau,
                    2.0 * v / tau,
                );
                let (trace, det) = (a + e, a * e - b * c);
                FixedPoint {
                    r_hz: HZ_PER_KHZ * r,
                    v,
                    stable: trace < 0.0 && det > 0.0,
                }
            })
            .collect()
    }

    /// The fixed points reduced to what the summary reports.
    pub fn stable_states(&self) -> StableStates {
        StableStates::of(&self.fixed_points())
    }
}

/// The stable states of a node with constant inputs: what the `fp_*` summary columns hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StableStates {
    /// Number of fixed points, stable or not.
    pub count: u8,
    /// The stable fixed point of lowest rate.
    pub low: Option<FixedPoint>,
    /// The stable fixed point of highest rate, when there are two.
    pub high: Option<FixedPoint>,
}

/// Which stable state a run ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The stable state of lowest rate.
    Low,
    /// The stable state of highest rate (when there are two).
    High,
    /// Within 0.1 % of neither.
    None,
}

impl Settled {
    /// The value of the `fp_settled` column: `low`, `high` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Settled::Low => "low",
            Settled::High => "high",
            Settled::None => "none",
        }
    }
}

impl StableStates {
    /// What the summary reports of `fixed_points` (sorted by rate).
    pub fn of(fixed_points: &[FixedPoint]) -> StableStates {
        let mut stable = fixed_points.iter().filter(|f| f.stable);
        let low = stable.next().copied();
        StableStates {
            count: fixed_points.len().min(u8::MAX as usize) as u8,
            low,
            high: stable.next_back().copied(),
        }
    }

    /// The stable state `(r_hz, v)` is within 0.1 % of (in both r and v), if any.
    pub fn settled(&self, r_hz: f64, v: f64) -> Settled {
        let near = |fp: &Option<FixedPoint>| {
            fp.is_some_and(|f| {
                (r_hz - f.r_hz).abs() <= 1e-3 * f.r_hz.abs() && (v - f.v).abs() <= 1e-3 * f.v.abs()
            })
        };
        if near(&self.low) {
            Settled::Low
        } else if near(&self.high) {
            Settled::High
        } else {
            Settled::None
        }
    }
}

/// A fixed point in user units.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FixedPoint {
    /// Rate, Hz (> 0).
    pub r_hz: f64,
    /// Mean membrane potential (dimensionless).
    pub v: f64,
    /// Whether it is linearly stable (both eigenvalues with negative real part).
    pub stable: bool,
}

/// Positive roots of `a4 x^4 + a3 x^3 + a2 x^2 + a0` (a4 > 0, a0 <= 0), ascending.
///
/// The derivative vanishes at 0 and at the roots of `4 a4 x^2 + 3 a3 x + 2 a2`, so the
/// positive axis splits into at most three monotone pieces; each holds at most one root,
/// found by [`monotone_root`] to full precision.
fn positive_quartic_roots(a4: f64, a3: f64, a2: f64, a0: f64) -> Few<f64, 3> {
    if a0 == 0.0 {
        // delta = 0 and no rate input: x^2 (a4 x^2 + a3 x + a2) = 0, and x = 0 is no rate.
        let disc = a3 * a3 - 4.0 * a4 * a2;
        if disc < 0.0 {
            return Few::new();
        }
        let s = disc.sqrt();
        let (lo, hi) = ((-a3 - s) / (2.0 * a4), (-a3 + s) / (2.0 * a4));
        return [lo, hi]
            .into_iter()
            .filter(|&x| x > 0.0)
            .take(if lo == hi { 1 } else { 2 })
            .collect();
    }
    let g = |x: f64| (((a4 * x + a3) * x + a2) * x) * x + a0;
    // g and its derivative, by Horner's scheme.
    let g_dg = |x: f64| {
        let (mut p, mut dp) = (a4, 0.0);
        for c in [a3, a2, 0.0, a0] {
            dp = dp * x + p;
            p = p * x + c;
        }
        (p, dp)
    };
    let mut cuts: Few<f64, 4> = Few::new();
    cuts.push(0.0);
    let (qa, qb, qc) = (4.0 * a4, 3.0 * a3, 2.0 * a2);
    let disc = qb * qb - 4.0 * qa * qc;
    if disc >= 0.0 {
        let s = disc.sqrt();
        let mut crit = [(-qb - s) / (2.0 * qa), (-qb + s) / (2.0 * qa)];
        crit.sort_by(f64::total_cmp);
        crit.into_iter()
            .filter(|&c| c > 0.0)
            .for_each(|c| cuts.push(c));
    }
    // Cauchy's bound on the roots' size.
    let bound = 1.0 + (a3.abs().max(a2.abs()).max(a0.abs())) / a4;
    cuts.push(bound);
    // Where the roots are when a0 is small (a small delta), by dominant balance: the low
    // one where a2 x^2 + a0 = 0, the others where a4 x^2 + a3 x + a2 = 0 (g / x^2 without
    // a0 / x^2). Newton starts from the one of these in a piece closest to a zero of g.
    let mut guesses: Few<f64, 3> = Few::new();
    if a2 > 0.0 {
        guesses.push((-a0 / a2).sqrt());
    }
    let disc2 = a3 * a3 - 4.0 * a4 * a2;
    if disc2 >= 0.0 {
        let s = disc2.sqrt();
        guesses.push((-a3 - s) / (2.0 * a4));
        guesses.push((-a3 + s) / (2.0 * a4));
    }
    let mut roots: Few<f64, 3> = Few::new();
    // Two roots this close are one (a double root split by rounding).
    let mut keep = |x: f64| {
        if roots
            .last()
            .is_none_or(|&b| (x - b).abs() > 1e-14 * b.abs())
        {
            roots.push(x);
        }
    };
    for w in cuts.windows(2) {
        let (lo, hi) = (w[0], w[1]);
        let (glo, ghi) = (g(lo), g(hi));
        if glo == 0.0 && lo > 0.0 {
            keep(lo);
            continue;
        }
        if glo.signum() == ghi.signum() || ghi == 0.0 {
            continue;
        }
        let start = guesses
            .iter()
            .copied()
            .filter(|&x| x > lo && x < hi)
            .map(|x| (x, g(x).abs()))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(x, _)| x);
        keep(monotone_root(g_dg, (lo, glo), (hi, ghi), start));
    }
    roots
}

/// The root of a function `g` that is monotone on `[lo, hi]`, with `g(lo) = g_lo` and
/// `g(hi) = g_hi` of opposite signs, given `x -> (g(x), g'(x))`, to full precision.
///
/// Newton's method inside a shrinking bracket, started from `start` (if inside) or the
/// secant point: each evaluation moves one end of the bracket, and a Newton step that
/// would leave the bracket, or that is not at most half the step before last, becomes a
/// bisection step. It stops when a Newton step is a few ulp of `x` (the size of g's
/// rounding noise there), when `g` is exactly zero, or when no representable point is left
/// strictly inside the bracket: about four evaluations per root from a good start, ten
/// from the secant point, where bisection needs sixty.
fn monotone_root(
    g_dg: impl Fn(f64) -> (f64, f64),
    (mut lo, g_lo): (f64, f64),
    (mut hi, g_hi): (f64, f64),
    start: Option<f64>,
) -> f64 {
    let rising = g_hi > g_lo;
    let secant = lo - g_lo * (hi - lo) / (g_hi - g_lo);
    let mut x = match start {
        Some(x) if x > lo && x < hi => x,
        _ if secant > lo && secant < hi => secant,
        _ => 0.5 * (lo + hi),
    };
    let (mut step, mut step_before) = (hi - lo, hi - lo);
    // Each pass leaves x strictly inside a bracket that it shrinks, so the loop ends
    // within a few hundred passes even by bisection alone; the bound keeps that visible.
    for _ in 0..256 {
        let (gx, dg) = g_dg(x);
        if gx == 0.0 {
            return x;
        }
        if (gx < 0.0) == rising {
            lo = x;
        } else {
            hi = x;
        }
        let newton = gx / dg;
        let next = if dg.is_finite() && dg != 0.0 && 2.0 * newton.abs() <= step_before.abs() {
            let next = x - newton;
            // A step of a few ulp is g's rounding noise: x is the root to full precision.
            if newton.abs() <= 4.0 * f64::EPSILON * x.abs() {
                return if next > lo && next < hi { next } else { x };
            }
            (next > lo && next < hi).then_some(next)
        } else {
            None
        };
        step_before = step;
        let next = match next {
            Some(next) => {
                step = newton;
                next
            }
            None => {
                step = 0.5 * (hi - lo);
                lo + step
            }
        };
        if next <= lo || next >= hi {
            break;
        }
        x = next;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(eta: f64, j: f64, delta: f64) -> NodeParams {
        NodeParams::from_user(1.0, eta, j, delta, 0.0, 0.0)
    }

    #[test]
    fn fixed_points_are_zeros_of_the_rhs() {
        for (eta, j, delta) in [
            (-5.0, 15.0, 1.0),
            (-10.0, 5.0, 2.0),
            (-4.0, 15.0, 1.0),
            (2.0, 0.0, 0.5),
        ] {
            let n = node(eta, j, delta);
            let fps = n.fixed_points();
            assert!(!fps.is_empty());
            for fp in fps {
                let (dr, dv) = n.rhs(fp.r_hz / HZ_PER_KHZ, fp.v);
                assert!(
                    dr.abs() < 1e-10 && dv.abs() < 1e-10,
                    "{eta} {j} {delta}: {dr} {dv}"
                );
            }
        }
    }

    /// The positive roots by plain bisection of each sign change found on a fine grid:
    /// slow, simple, and independent of the critical-point split and of Newton's steps.
    fn roots_by_bisection(a4: f64, a3: f64, a2: f64, a0: f64) -> Vec<f64> {
        let g = |x: f64| a4 * x.powi(4) + a3 * x.powi(3) + a2 * x * x + a0;
        let bound = 1.0 + (a3.abs().max(a2.abs()).max(a0.abs())) / a4;
        let cells = 20_000;
        let mut roots = Vec::new();
        for k in 0..cells {
            let (mut lo, mut hi) = (
                bound * k as f64 / cells as f64,
                bound * (k + 1) as f64 / cells as f64,
            );
            if g(lo).signum() == g(hi).signum() {
                continue;
            }
            let rising = g(hi) > g(lo);
            loop {
                let mid = 0.5 * (lo + hi);
                if mid <= lo || mid >= hi {
                    break;
                }
                if (g(mid) < 0.0) == rising {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            roots.push(0.5 * (lo + hi));
        }
        roots
    }

    #[test]
    fn quartic_roots_agree_with_bisection_within_the_rounding_band() {
        // Monostable, bistable, near the fold (two roots close together) and large J.
        let mut checked = 0;
        for eta in [-20.0, -10.0, -6.0, -5.0, -4.0, -1.0, 0.0, 3.0] {
            for j in [0.0, 5.0, 10.0, 14.0, 15.0, 20.0, 30.0, 60.0] {
                for delta in [0.01, 0.5, 1.0, 2.0, 4.0] {
                    let d = delta / PI;
                    let (a4, a3, a2, a0) = (PI * PI, -j, -eta, -d * d / 4.0);
                    let fast = positive_quartic_roots(a4, a3, a2, a0);
                    let slow = roots_by_bisection(a4, a3, a2, a0);
                    assert_eq!(
                        fast.len(),
                        slow.len(),
                        "{eta} {j} {delta}: {fast:?} {slow:?}"
                    );
                    for (a, b) in fast.iter().zip(&slow) {
                        // Both are zeros of the same rounded polynomial: they may differ by
                        // the width of the band where its rounding error (a few ulp of the
                        // sum of its terms' sizes) exceeds |g|, i.e. that error over |g'|.
                        let x = *b;
                        let terms = a4 * x.powi(4) + a3.abs() * x.powi(3) + a2.abs() * x * x - a0;
                        let slope = (4.0 * a4 * x.powi(3) + 3.0 * a3 * x * x + 2.0 * a2 * x).abs();
                        let band = 8.0 * f64::EPSILON * (x + terms / slope);
                        assert!(
                            (a - b).abs() <= band,
                            "{eta} {j} {delta}: {a} vs {b} (band {band:e})"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 320, "{checked} roots checked");
    }

    #[test]
    fn quartic_roots_are_zeros_far_outside_the_usual_ranges() {
        // A fixed pseudo-random walk over eta, J, delta and rate inputs spanning many
        // orders of magnitude: every root returned is a zero of the rounded polynomial
        // (|g| within the rounding error of its terms), positive and ascending.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut roots_seen = 0;
        for _ in 0..20_000 {
            let eta = (uniform() - 0.5) * 10f64.powf(uniform() * 8.0 - 2.0);
            let j = (uniform() - 0.2) * 10f64.powf(uniform() * 6.0 - 2.0);
            let d = 10f64.powf(uniform() * 12.0 - 9.0);
            let (a4, a3, a2, a0) = (PI * PI, -j, -eta, -d * d / 4.0);
            let roots = positive_quartic_roots(a4, a3, a2, a0);
            for (k, &x) in roots.iter().enumerate() {
                assert!(
                    x > 0.0 && (k == 0 || x > roots[k - 1]),
                    "{eta} {j} {d}: {roots:?}"
                );
                let g = a4 * x.powi(4) + a3 * x.powi(3) + a2 * x * x + a0;
                let terms = a4 * x.powi(4) + a3.abs() * x.powi(3) + a2.abs() * x * x - a0;
                assert!(
                    g.abs() <= 16.0 * f64::EPSILON * terms,
                    "{eta} {j} {d}: g({x}) = {g:e}, terms {terms:e}"
                );
                roots_seen += 1;
            }
        }
        assert!(roots_seen > 20_000, "{roots_seen} roots");
    }

    #[test]
    fn the_papers_default_point_is_bistable() {
        // eta = -5, J = 15, delta = 1 lies inside the bistable wedge (Montbrió et al. Fig. 1).
        let fps = node(-5.0, 15.0, 1.0).fixed_points();
        assert_eq!(fps.len(), 3);
        assert_eq!(
            fps.iter().map(|f| f.stable).collect::<Vec<_>>(),
            [true, false, true]
        );
    }

    #[test]
    fn eigenvalue_formula_agrees_with_the_jacobian() {
        // tau = 1: lambda = -delta/(pi x) ± sqrt(2 x (J - 2 pi^2 x)).
        let (eta, j, delta) = (-5.0, 15.0, 1.0);
        for fp in node(eta, j, delta).fixed_points() {
            let x = fp.r_hz / HZ_PER_KHZ;
            let disc = 2.0 * x * (j - 2.0 * PI * PI * x);
            let stable = disc < (delta / (PI * x)).powi(2);
            assert_eq!(stable, fp.stable);
        }
    }
}
