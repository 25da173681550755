//! The model's closed forms (DESIGN.md section 9, tau = 1, x = tau r in kHz ms), computed
//! here independently of the library: fixed points as the positive roots of the quartic
//! with their eigenvalues, and the saddle-node curves and cusp of the bistable wedge.

use std::f64::consts::PI;

use super::linalg::Mat;

/// g(x) = pi^2 x^4 - J x^3 - eta x^2 - delta^2/(4 pi^2): fixed points are its positive roots.
pub fn quartic(eta: f64, j: f64, delta: f64, x: f64) -> f64 {
    ((PI * PI * x - j) * x - eta) * x * x - delta * delta / (4.0 * PI * PI)
}

/// Bisects a sign change of `f` on [lo, hi] to full precision.
pub fn bisect(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let flo = f(lo);
    assert!(
        (flo < 0.0) != (f(hi) < 0.0),
        "no sign change on [{lo}, {hi}]"
    );
    loop {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            return mid;
        }
        if (f(mid) < 0.0) == (flo < 0.0) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
}

/// The positive roots of the quartic in [1e-7, 10], ascending: sign changes on a grid of
/// spacing 1e-4 min(x, 1) (relative 1e-4 below x = 1, absolute 1e-4 above), each
/// bisected. Roots closer than the grid spacing (a saddle-node within that distance of
/// collision) would be missed; callers assert the number of roots they expect.
pub fn quartic_roots(eta: f64, j: f64, delta: f64) -> Vec<f64> {
    const X_MIN: f64 = 1e-7;
    const X_MAX: f64 = 10.0;
    let g = |x: f64| quartic(eta, j, delta, x);
    assert!(g(X_MAX) > 0.0, "roots beyond x = {X_MAX}");
    let mut roots = Vec::new();
    let (mut x, mut gx) = (X_MIN, g(X_MIN));
    while x < X_MAX {
        let next = (x + 1e-4 * x.min(1.0)).min(X_MAX);
        let g_next = g(next);
        if (gx < 0.0) != (g_next < 0.0) {
            roots.push(bisect(g, x, next));
        }
        (x, gx) = (next, g_next);
    }
    roots
}

/// A fixed point with its eigenvalues -delta/(pi x) ± sqrt(2 x (J - 2 pi^2 x)).
#[derive(Debug, Clone, Copy)]
pub struct FixedPoint {
    /// Rate in kHz (x = tau r, tau = 1).
    pub x: f64,
    pub r_hz: f64,
    /// v* = -delta/(2 pi x).
    pub v: f64,
    /// Real parts of the two eigenvalues (equal for a focus), ascending.
    pub re: [f64; 2],
    /// Whether the eigenvalues are real (a node or a saddle) rather than a complex pair.
    pub real: bool,
    pub stable: bool,
}

/// The fixed points at (eta, J, delta), ascending in rate.
pub fn fixed_points(eta: f64, j: f64, delta: f64) -> Vec<FixedPoint> {
    quartic_roots(eta, j, delta)
        .into_iter()
        .map(|x| {
            let a = -delta / (PI * x);
            let disc = 2.0 * x * (j - 2.0 * PI * PI * x);
            let (re, real) = if disc >= 0.0 {
                ([a - disc.sqrt(), a + disc.sqrt()], true)
            } else {
                ([a, a], false)
            };
            FixedPoint {
                x,
                r_hz: 1000.0 * x,
                v: -delta / (2.0 * PI * x),
                re,
                real,
                stable: re[1] < 0.0,
            }
        })
        .collect()
}

/// J on the saddle-node curves, parametric in x > 0.
pub fn saddle_node_j(x: f64, delta: f64) -> f64 {
    2.0 * PI * PI * x + delta * delta / (2.0 * PI * PI * x.powi(3))
}

/// eta on the saddle-node curves, parametric in x > 0.
pub fn saddle_node_eta(x: f64, delta: f64) -> f64 {
    -PI * PI * x * x - 3.0 * delta * delta / (4.0 * PI * PI * x * x)
}

/// The cusp (x_c, eta_c, J_c): eta = -sqrt(3) delta, J = 4 sqrt(2) pi sqrt(delta) / 3^(3/4),
/// where J(x) of the saddle-node curve has its minimum, x_c^4 = 3 delta^2 / (4 pi^4).
pub fn cusp(delta: f64) -> (f64, f64, f64) {
    let x_c = (0.75f64).powf(0.25) * delta.sqrt() / PI;
    let eta_c = -(3.0f64).sqrt() * delta;
    let j_c = 4.0 * 2f64.sqrt() * PI * delta.sqrt() / 3f64.powf(0.75);
    (x_c, eta_c, j_c)
}

/// The two x > 0 with J(x) = j, below and above the cusp's x_c (J(x) is convex with its
/// minimum there), or None when j is not above the cusp.
pub fn saddle_node_xs(j: f64, delta: f64) -> Option<(f64, f64)> {
    let (x_c, _, _) = cusp(delta);
    let f = |x: f64| saddle_node_j(x, delta) - j;
    if f(x_c) >= 0.0 {
        return None;
    }
    let mut lo = x_c;
    while f(lo) < 0.0 {
        lo *= 0.5;
    }
    let mut hi = x_c;
    while f(hi) < 0.0 {
        hi *= 2.0;
    }
    Some((bisect(f, lo, x_c), bisect(f, x_c, hi)))
}

/// The bistable eta interval at (J, delta): the eta values of the two saddle-node points.
pub fn bistable_interval(j: f64, delta: f64) -> (f64, f64) {
    let (x1, x2) = saddle_node_xs(j, delta).expect("J above the cusp");
    let (e1, e2) = (saddle_node_eta(x1, delta), saddle_node_eta(x2, delta));
    (e1.min(e2), e1.max(e2))
}

/// The Jacobian of the right-hand side at a fixed point, tau = 1, r in kHz: d/d(r, v) of
/// (delta/pi + 2 r v, v^2 + eta + J r - pi^2 r^2).
pub fn jacobian(fp: &FixedPoint, j: f64) -> Mat {
    vec![
        vec![2.0 * fp.v, 2.0 * fp.x],
        vec![j - 2.0 * PI * PI * fp.x, 2.0 * fp.v],
    ]
}
