//! Standard normals by the ziggurat method (Marsaglia & Tsang 2000) with 2048 layers.
//!
//! The area under `f(x) = exp(-x^2/2)`, x >= 0, is covered by [`LAYERS`] layers of equal
//! area `v`: layer 0 is the base strip `[0, r] x [0, f(r)]` together with the tail beyond
//! `r`; layer `i >= 1` is the rectangle `[0, x_i] x [f(x_i), f(x_{i+1})]`, with
//! `x_1 = r > x_2 > ... > x_2047 > x_2048 = 0`. Layer 0's width `x_0 = v / f(r)` makes its
//! rectangle's area `v` too.
//!
//! One normal takes one 64-bit output `b` of the run's stream: layer `i = b & 2047`, sign
//! bit `b >> 11 & 1`, and `u = (b >> 12) 2^-52` in [0, 1); the candidate is `x = u x_i`.
//! When `x < x_{i+1}` the point lies under the curve and `x` (with its sign) is the
//! normal. Otherwise, rarely (0.23% of draws), it is decided exactly: in layer 0 by a draw
//! from the tail (Marsaglia 1964: `a = -ln(u1)/r`, `c = -ln(u2)`, accept `r + a` when
//! `2c > a^2`), else by drawing `y` uniform in `[f(x_i), f(x_{i+1})]` and accepting when
//! `y < f(x)`; a rejected candidate starts over with a fresh 64-bit output. Those extra
//! draws come from the same stream, right after `b`.
//!
//! The lane loop ([`fast`]) tests a cheap lower bound of `x_{i+1}/x_i` instead, so that it
//! needs a single table look-up per lane (a gather); whatever it does not accept goes
//! through the exact test above ([`resolve`]), which it never contradicts. The result
//! therefore does not depend on the bound, and all arithmetic is plain (no fused
//! multiply-add): every instruction-set path gives the same normals bit for bit.
//!
//! The tables are computed once, at first use, with the branch-free [`math::ln`] and
//! [`math::exp`] (IEEE arithmetic only, so the same on every platform): `r` by bisection
//! so that the top layer closes at `f = 1`.

use std::sync::LazyLock;

use super::math::{self, Unfused};
use super::stream::uniform_from_bits;

/// log2 of the number of layers.
const LAYER_BITS: u32 = 11;

/// Number of layers: 2048, so that 99.77% of draws are decided by the first look-up.
pub const LAYERS: usize = 1 << LAYER_BITS;

/// The layer edges of a ziggurat.
#[derive(Debug)]
pub struct Ziggurat {
    /// `x[0] = v/f(r)` (the base strip's width), `x[i]` the right edge of layer `i >= 1`,
    /// `x[LAYERS] = 0`.
    x: [f64; LAYERS + 1],
    /// `f(x[i])` for i >= 1 (`f[LAYERS] = 1`); `f[0]` is unused.
    f: [f64; LAYERS + 1],
    /// Where the tail begins: `x[1]` (about 4.216).
    pub(super) r: f64,
}

/// `exp(-x^2/2)`.
fn density(x: f64) -> f64 {
    math::exp::<Unfused>(-0.5 * x * x)
}

/// The `x >= 0` with `density(x) = y`, for `y` in (0, 1].
fn inverse_density(y: f64) -> f64 {
    (-2.0 * math::ln::<Unfused>(y)).sqrt()
}

/// `int_r^inf exp(-x^2/2) dx` for `r` >= 3, by Laplace's continued fraction
/// `f(r) / (r + 1/(r + 2/(r + 3/(r + ...))))`, whose 200th convergent is exact to rounding
/// there.
fn tail_area(r: f64) -> f64 {
    let mut denominator = r;
    for k in (1..=200).rev() {
        denominator = r + k as f64 / denominator;
    }
    density(r) / denominator
}

/// Edges `x` and densities `f` of `layers` layers for the tail start `r`, and how far the
/// top layer overshoots `f = 1` (`None` when the layers overshoot before the top).
fn layers_from(r: f64, layers: usize) -> Option<(Vec<f64>, Vec<f64>, f64)> {
    let v = r * density(r) + tail_area(r);
    let mut x = vec![0.0; layers + 1];
    let mut f = vec![0.0; layers + 1];
    x[0] = v / density(r);
    x[1] = r;
    f[1] = density(r);
    for i in 1..layers - 1 {
        // Layer i has area v: f(x[i+1]) = f(x[i]) + v / x[i].
        let y = f[i] + v / x[i];
        if y >= 1.0 {
            return None;
        }
        x[i + 1] = inverse_density(y);
        f[i + 1] = y;
    }
    let overshoot = f[layers - 1] + v / x[layers - 1] - 1.0;
    f[layers] = 1.0;
    Some((x, f, overshoot))
}

/// The ziggurat of `layers` layers: `r` by bisection on [3, 6] until the interval cannot
/// shrink, taking the smallest `r` whose top layer does not overshoot `f = 1`.
fn build(layers: usize) -> (Vec<f64>, Vec<f64>, f64) {
    let (mut lo, mut hi) = (3.0f64, 6.0f64);
    loop {
        let mid = 0.5 * (lo + hi);
        if mid == lo || mid == hi {
            break;
        }
        match layers_from(mid, layers) {
            Some((_, _, overshoot)) if overshoot <= 0.0 => hi = mid,
            _ => lo = mid,
        }
    }
    let (x, f, _) = layers_from(hi, layers).expect("the upper end of the bisection fits");
    (x, f, hi)
}

static TABLES: LazyLock<Ziggurat> = LazyLock::new(|| {
    let (x, f, r) = build(LAYERS);
    Ziggurat {
        x: x.try_into().expect("LAYERS + 1 edges"),
        f: f.try_into().expect("LAYERS + 1 densities"),
        r,
    }
});

/// The ziggurat's tables (computed at the first call).
pub fn tables() -> &'static Ziggurat {
    &TABLES
}

/// The layer, `u` in [0, 1) and sign bit of a 64-bit draw.
#[inline(always)]
fn split(b: u64) -> (usize, f64, u64) {
    let layer = (b as usize) & (LAYERS - 1);
    // (b >> 12) 2^-52 exactly: 1 + u as a double, minus 1.
    let u = f64::from_bits(0x3ff0_0000_0000_0000 | (b >> 12)) - 1.0;
    let sign = (b << (63 - LAYER_BITS)) & (1 << 63);
    (layer, u, sign)
}

/// The lane loop's bound on the layer ratios: `x[i+1]/x[i] >= 1 - A/(N-1-i) - B/(i+C)` for
/// every layer (N = [`LAYERS`]; checked in the tests, with at least 0.8% to spare in
/// `1 - x[i+1]/x[i]`); 0 for the top layer, which is always decided exactly.
const BOUND_A: f64 = 0.4;
const BOUND_B: f64 = 0.17;
const BOUND_C: f64 = 3.0;

/// The candidate normal of draw `b` (the sign applied) and whether it is surely accepted:
/// `u` below the bound of the layer's ratio, which it tests as
/// `(1 - u)(N-1-i)(i+C) > A(i+C) + B(N-1-i)` (no division; `1 - u` is exact). Only a
/// multiply by the look-up `x[i]` depends on the table, so a loop over lanes vectorises
/// with one gather.
#[inline(always)]
pub fn fast(z: &Ziggurat, b: u64) -> (f64, bool) {
    const TWO52: f64 = 4_503_599_627_370_496.0;
    let (layer, u, sign) = split(b);
    let x = u * z.x[layer];
    // The layer index as a double, without an int → float instruction.
    let i = f64::from_bits(0x4330_0000_0000_0000 | (b & (LAYERS as u64 - 1))) - TWO52;
    let top = (LAYERS - 1) as f64;
    // (N-1-i)(i+C) and A(i+C) + B(N-1-i) as polynomials in i.
    let product = i * ((top - BOUND_C) - i) + top * BOUND_C;
    let weighted = i * (BOUND_A - BOUND_B) + (BOUND_A * BOUND_C + BOUND_B * top);
    let sure = (1.0 - u) * product > weighted;
    (f64::from_bits(x.to_bits() | sign), sure)
}

/// The normal of draw `b`, decided exactly, taking further draws from `next` when the
/// candidate is not under the curve's inner rectangle (see the module doc). Equals
/// [`fast`]'s candidate whenever that one is sure.
#[cold]
#[inline(never)]
pub fn resolve(z: &Ziggurat, mut b: u64, next: &mut dyn FnMut() -> u64) -> f64 {
    loop {
        let (i, u, sign) = split(b);
        let signed = |x: f64| f64::from_bits(x.to_bits() | sign);
        let x = u * z.x[i];
        if x < z.x[i + 1] {
            return signed(x);
        }
        if i == 0 {
            loop {
                let a = -math::ln::<Unfused>(uniform_from_bits(next())) / z.r;
                let c = -math::ln::<Unfused>(uniform_from_bits(next()));
                if c + c > a * a {
                    return signed(z.r + a);
                }
            }
        }
        let y = z.f[i] + uniform_from_bits(next()) * (z.f[i + 1] - z.f[i]);
        if y < density(x) {
            return signed(x);
        }
        b = next();
    }
}

/// The next standard normal of a stream whose 64-bit outputs `next` gives.
pub fn normal(z: &Ziggurat, mut next: impl FnMut() -> u64) -> f64 {
    let b = next();
    match fast(z, b) {
        (x, true) => x,
        _ => resolve(z, b, &mut next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 256-layer construction reproduces Marsaglia & Tsang's constants (J. Stat.
    /// Softw. 5(8), 2000): r = 3.6541528853610088 (here to the 16 digits an f64 holds),
    /// v = 0.00492867323399.
    #[test]
    fn the_construction_gives_marsaglia_and_tsangs_256_layer_constants() {
        let (x, _, r) = build(256);
        assert!((r - 3.654_152_885_361_009).abs() < 1e-12, "r = {r}");
        let v = x[0] * density(r);
        assert!((v - 0.004_928_673_233_99).abs() < 1e-13, "v = {v}");
    }

    /// Every layer has the same area v (the base strip's rectangle has it by construction)
    /// to 1e-12 relative, the top one included, which closes at f = 1; edges decrease and
    /// `f` is std's density there.
    #[test]
    fn layers_have_equal_areas() {
        let z = tables();
        let v = z.x[0] * density(z.r);
        assert_eq!(z.x[1], z.r);
        for i in 1..LAYERS {
            let area = z.x[i] * (z.f[i + 1] - z.f[i]);
            assert!((area / v - 1.0).abs() < 1e-12, "layer {i}: {area} vs {v}");
            assert!(z.x[i + 1] < z.x[i], "layer {i}");
            assert!(
                (z.f[i] / (-0.5 * z.x[i] * z.x[i]).exp() - 1.0).abs() < 1e-13,
                "layer {i}"
            );
        }
        assert_eq!((z.x[LAYERS], z.f[LAYERS]), (0.0, 1.0));
    }

    /// The tail area against the complementary error function's asymptotic series at
    /// r = 8, where twelve terms give 1e-10 relative, and against the composite Simpson
    /// rule on [r, r + 12] at r = 4.2.
    #[test]
    fn tail_area_is_the_integral_beyond_r() {
        let r: f64 = 8.0;
        let mut series = 0.0;
        let mut term = 1.0;
        for k in 0..12 {
            series += term;
            term *= -((2 * k + 1) as f64) / (r * r);
        }
        let asymptotic = density(r) / r * series;
        assert!((tail_area(r) / asymptotic - 1.0).abs() < 1e-10);
        let a = 4.2;
        let simpson =
            crate::integrate::math::simpson(|t| (-0.5 * t * t).exp(), a, a + 12.0, 200_000);
        assert!((tail_area(a) / simpson - 1.0).abs() < 1e-11);
    }

    /// A draw with layer `i` and mantissa `m` (u = m 2^-52), positive.
    fn draw(i: usize, m: u64) -> u64 {
        (m << 12) | i as u64
    }

    /// The lane loop's bound never accepts what the exact test rejects: at every layer, no
    /// u at or above the layer's ratio x[i+1]/x[i] (the first few mantissas from there) is
    /// sure, and the bound's 1 - ratio exceeds the true one by at least 0.8%.
    #[test]
    fn the_fast_bound_is_below_every_layer_ratio() {
        let z = tables();
        let top = (LAYERS - 1) as f64;
        for i in 0..LAYERS {
            let ratio = z.x[i + 1] / z.x[i];
            let m = (ratio * 2f64.powi(52)).floor() as u64;
            for m in m.saturating_sub(2)..m + 3 {
                let b = draw(i, m.min((1 << 52) - 1));
                let (x, sure) = fast(z, b);
                assert!(!sure || x < z.x[i + 1], "layer {i}, mantissa {m}");
            }
            if i < LAYERS - 1 {
                let fi = i as f64;
                let bound = BOUND_A / (top - fi) + BOUND_B / (fi + BOUND_C);
                assert!(bound >= 1.008 * (1.0 - ratio), "layer {i}");
            }
        }
    }

    /// Sure candidates agree with the exact test; 99.7% of random draws are sure (the lane
    /// loop's fallback stays rare).
    #[test]
    fn sure_candidates_are_exact_and_most_are_sure() {
        let z = tables();
        let mut x = crate::integrate::Xoshiro::from_run(5, 0);
        let n = 1_000_000;
        let mut sure_count = 0;
        for _ in 0..n {
            let b = x.next_u64();
            let (candidate, sure) = fast(z, b);
            if sure {
                sure_count += 1;
                let exact = resolve(z, b, &mut || unreachable!("a sure draw needs no more"));
                assert_eq!(candidate.to_bits(), exact.to_bits());
            }
        }
        let share = sure_count as f64 / n as f64;
        assert!(share > 0.997, "sure share {share}");
    }
}
