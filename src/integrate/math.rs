//! Branch-free elementary functions for the lane loops.
//!
//! `std`'s `exp_m1` is a scalar library call that stops LLVM from vectorising a loop. These
//! versions use only +, *, comparisons and bit operations, so a loop over lanes compiles to
//! SIMD on any x86-64 level. Error bounds measured in the tests below, for both [`Arith`]
//! modes.
//!
//! Every `a * b + c` that a fused multiply-add can serve goes through [`Arith::mul_add`]:
//! the AVX2+FMA kernel rounds it once ([`Fused`]), the portable kernel twice ([`Unfused`]).
//! That is the only difference in results between the two paths (both take min/max as a
//! compare and select; for NaN its result is unspecified, and such runs' statistics are
//! discarded).

/// The arithmetic primitives whose best form differs between the instruction-set paths.
pub trait Arith: Copy + 'static {
    /// Whether [`Arith::mul_add`] rounds once.
    const FUSED: bool;
    /// `a * b + c`, rounded once or twice: the only difference in results between paths.
    fn mul_add(a: f64, b: f64, c: f64) -> f64;
    /// The smaller of `a` and `b`, for finite values (NaN handling is unspecified: the
    /// statistics of a run with a non-finite state are discarded).
    fn min(a: f64, b: f64) -> f64;
    /// The larger of `a` and `b`, for finite values.
    fn max(a: f64, b: f64) -> f64;
}

/// `a * b + c` rounded twice: the x86-64 baseline has no FMA instruction (and `f64::mul_add`
/// would be a slow library call there).
#[derive(Debug, Clone, Copy)]
pub struct Unfused;

impl Arith for Unfused {
    const FUSED: bool = false;

    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }

    /// A compare and select: one `minpd` on SSE2.
    #[inline(always)]
    fn min(a: f64, b: f64) -> f64 {
        if a < b { a } else { b }
    }

    #[inline(always)]
    fn max(a: f64, b: f64) -> f64 {
        if a > b { a } else { b }
    }
}

/// `a * b + c` rounded once, one FMA instruction where the caller enables the `fma` target
/// feature.
#[derive(Debug, Clone, Copy)]
pub struct Fused;

impl Arith for Fused {
    const FUSED: bool = true;

    #[inline(always)]
    fn mul_add(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }

    /// A compare and select: one `vminpd`. (`f64::min`'s NaN rule costs a compare and a
    /// blend more per lane: 4-17 % of a fixed-step kernel's time.) The statistics passes
    /// keep their accumulators in registers over a chunk, so LLVM has no accumulator in
    /// memory to turn the select into masked stores on.
    #[inline(always)]
    fn min(a: f64, b: f64) -> f64 {
        if a < b { a } else { b }
    }

    #[inline(always)]
    fn max(a: f64, b: f64) -> f64 {
        if a > b { a } else { b }
    }
}

/// `e^z - 1` with a relative error of at most a few ulp for every finite `z`.
///
/// Cody–Waite reduction `z = k ln2 + f`, |f| <= ln2/2, then `expm1(f) = f + f^2 P(f)` with
/// the Taylor polynomial to degree 13 (truncation < 1e-18 relative on the reduced range),
/// and `expm1(z) = 2^k expm1(f) + (2^k - 1)`.
#[inline(always)]
pub fn expm1<A: Arith>(z: f64) -> f64 {
    let (two_k, em1) = exp_reduced::<A>(z);
    let result = A::mul_add(two_k, em1, two_k - 1.0);
    let result = if z > 709.782_712_893_384 {
        f64::INFINITY
    } else {
        result
    };
    #[allow(clippy::eq_op)] // z != z is the NaN test that vectorises
    if z != z { z } else { result }
}

/// `e^z` for `z` in [-40, 709] within a few ulp (measured in the tests below):
/// `2^k expm1(f) + 2^k` from [`expm1`]'s reduction, without its cancellation for z < 0.
#[inline(always)]
pub fn exp<A: Arith>(z: f64) -> f64 {
    let (two_k, em1) = exp_reduced::<A>(z);
    A::mul_add(two_k, em1, two_k)
}

/// `(2^k, expm1(f))` with `z = k ln2 + f`, |f| <= ln2/2, for `z` clamped to [-40, 709].
#[inline(always)]
fn exp_reduced<A: Arith>(z: f64) -> (f64, f64) {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    // Round-to-nearest via the 1.5 * 2^52 trick: vectorises on SSE2 (no roundsd needed).
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    // Beyond these, expm1 is -1 or overflows; clamping keeps 2^k representable.
    // Written as independent selects, not an if/else-if chain: LLVM vectorises selects
    // but keeps a chain of branches scalar.
    let zc = if z < -40.0 { -40.0 } else { z };
    let zc = if zc > 709.0 { 709.0 } else { zc };
    let shifted = A::mul_add(zc, LOG2E, SHIFTER);
    let kf = shifted - SHIFTER;
    // k as an integer from the mantissa bits (no f64 → i64 instruction before AVX-512).
    let k = shifted.to_bits() as i64 - SHIFTER.to_bits() as i64;
    // kf * LN2_HI is exact (LN2_HI has 32 significant bits, |k| < 2^11).
    let f = A::mul_add(-kf, LN2_LO, zc - kf * LN2_HI);
    // P(f) = sum_{i=0}^{11} f^i / (i+2)! (Taylor to degree 13 overall), in Estrin's scheme:
    // dependency depth 5 instead of Horner's 11.
    let em1 = A::mul_add(f * f, poly::<A>(f, &INV_FACTORIAL[2..14]), f);
    // 2^k from the exponent bits; k is in [-58, 1023] after clamping.
    let two_k = f64::from_bits(((k + 1023) as u64) << 52);
    (two_k, em1)
}

/// `1/n!` for n = 0..=15: the Taylor coefficients of `expm1` (`f + f^2 sum_i f^i/(i+2)!`,
/// i <= 11) and of `phi1` (`sum_i z^i/(i+1)!`, i <= 14).
const INV_FACTORIAL: [f64; 16] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5_040.0,
    1.0 / 40_320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
    1.0 / 87_178_291_200.0,
    1.0 / 1_307_674_368_000.0,
];

/// `sum_i c[i] x^i` in Estrin's scheme (pairs, then pairs of pairs with x^2, x^4, ...):
/// a dependency depth of about log2(N) multiply-adds instead of Horner's N.
#[inline(always)]
fn poly<A: Arith>(x: f64, c: &[f64]) -> f64 {
    // Each level pairs neighbours with the next power of x (x, x^2, x^4, ...). `c` is a
    // constant table of at most 16 entries, so the loops unroll at compile time.
    let mut level = [0.0; 16];
    level[..c.len()].copy_from_slice(c);
    let (mut n, mut power) = (c.len(), x);
    while n > 1 {
        for i in 0..n.div_ceil(2) {
            level[i] = if 2 * i + 1 < n {
                A::mul_add(level[2 * i + 1], power, level[2 * i])
            } else {
                level[2 * i]
            };
        }
        n = n.div_ceil(2);
        power *= power;
    }
    level[0]
}

/// Largest `|z|` for which [`phi1`] evaluates its polynomial ([`phi1_poly`]) directly.
pub const PHI1_POLY_MAX: f64 = 0.5;

/// The polynomial of degree 11 closest to `phi1` on [-1/2, 1/2] in relative error, lowest
/// degree first: the minimax polynomial of a Remez exchange at 60 digits (max relative
/// error 1.9e-17 before its coefficients are rounded to f64), computed by
/// `phi1_minimax.py` beside this file. Its evaluation in f64 stays within 1 ulp with fused
/// multiply-adds and 2 ulp without (tested below); the Taylor series needs degree 14 for
/// the same accuracy, and the three multiply-adds it saves are 7 % of an exp_euler step on
/// the AVX-512 path, whose steps are bound by multiply-add throughput.
const PHI1_MINIMAX: [f64; 12] = [
    1.0,
    0.5000000000000001,
    0.16666666666667207,
    0.041666666666659885,
    0.008333333333079024,
    0.0013888888890317035,
    0.00019841270277482021,
    2.4801586138595463e-05,
    2.75569814671942e-06,
    2.755766867746546e-07,
    2.5172501617245607e-08,
    2.087672186397823e-09,
];

/// `phi1(z) = (e^z - 1)/z`, with `phi1(0) = 1`: the exponential-Euler factor.
///
/// For `|z| <= 1/2` a minimax polynomial of degree 11 ([`phi1_poly`]), otherwise
/// `expm1(z)/z`. Both are computed and one selected, so the result of a lane never depends
/// on its neighbours.
#[inline(always)]
pub fn phi1<A: Arith>(z: f64) -> f64 {
    let small = z.abs() <= PHI1_POLY_MAX;
    let clamped = z.clamp(-PHI1_POLY_MAX, PHI1_POLY_MAX);
    let poly = phi1_poly::<A>(clamped);
    let ratio = expm1::<A>(z) / z;
    if small { poly } else { ratio }
}

/// [`phi1`] for `|z| <= PHI1_POLY_MAX` only: equal to it bit for bit there, and about a
/// third of its cost (no range reduction, no division). Callers that know every lane is in
/// range use it directly. With fused multiply-adds, Horner's scheme: the fewest operations
/// (11 multiply-adds), which is what bounds the exp_euler step on the vector paths (the
/// lanes of a batch hide its dependency chain). Without (the portable path), Estrin's: a
/// chain of 4 instead of 11 multiplications and additions, which is what bounds it there
/// (exp_euler 3.2 against 4.6 ns per run-step with Horner's).
#[inline(always)]
pub fn phi1_poly<A: Arith>(z: f64) -> f64 {
    if A::FUSED {
        let (last, rest) = PHI1_MINIMAX.split_last().expect("twelve coefficients");
        rest.iter()
            .rev()
            .fold(*last, |acc, &c| A::mul_add(acc, z, c))
    } else {
        poly::<A>(z, &PHI1_MINIMAX)
    }
}

/// Natural logarithm of a positive normal `x` (the uniforms of the noise generator), within
/// 2 ulp of std's `ln` (measured in the tests below).
///
/// `x = m 2^e` with `m` in [sqrt(1/2), sqrt(2)), then `ln m = 2 atanh(s)`, `s = (m-1)/(m+1)`,
/// |s| < 0.172, by fdlibm's minimax polynomial, and `ln x = e ln2 + ln m`.
#[inline(always)]
pub fn ln<A: Arith>(x: f64) -> f64 {
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    /// fdlibm's e_log.c minimax coefficients (Sun Microsystems, 1993, freely
    /// redistributable): `2 atanh(s) = 2s + s z R(z)`, `z = s^2`, with
    /// `|R - sum Lg_i z^i| < 2^-58.45` for |s| <= 0.1716.
    const LG: [f64; 7] = [
        6.666_666_666_666_735e-1,
        3.999_999_999_940_942e-1,
        2.857_142_874_366_239e-1,
        2.222_219_843_214_978_4e-1,
        1.818_357_216_161_805e-1,
        1.531_383_769_920_937_3e-1,
        1.479_819_860_511_658_6e-1,
    ];
    let (m, e) = mantissa_exponent(x);
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    // 2s + s z R(z), with 2s exact.
    let ln_m = A::mul_add(s * z, poly::<A>(z, &LG), 2.0 * s);
    A::mul_add(e, LN2_HI, A::mul_add(e, LN2_LO, ln_m))
}

/// `x = m 2^e` for a positive normal `x`, with `m` in [sqrt(1/2), sqrt(2)) and the integer
/// `e` as a double: from the bits, without an int → float instruction (both exact).
#[inline(always)]
fn mantissa_exponent(x: f64) -> (f64, f64) {
    const TWO52: f64 = 4_503_599_627_370_496.0;
    let bits = x.to_bits();
    let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let biased = f64::from_bits(0x4330_0000_0000_0000 | (bits >> 52)) - TWO52;
    if m > std::f64::consts::SQRT_2 {
        (m * 0.5, biased - 1022.0)
    } else {
        (m, biased - 1023.0)
    }
}

/// `log2(x)` for a positive normal `x`, within 1e-7 absolute (measured in the tests below):
/// for the step-size controller, whose factors are rounded to 8 bits, where [`ln`]'s
/// division and long polynomial cost more than they give.
///
/// `x = m 2^e` with `m` in [sqrt(1/2), sqrt(2)), then `log2 m = u P(u)`, `u = m - 1`, with
/// `P` the degree-7 Chebyshev fit of `log2(1 + u)/u` on that range.
#[inline(always)]
pub fn log2_coarse<A: Arith>(x: f64) -> f64 {
    const P: [f64; 8] = [
        1.442_694_994_893_046_5,
        -0.721_352_931_362_974_2,
        0.480_916_708_000_22,
        -0.360_225_182_460_989_45,
        0.287_288_882_373_974_6,
        -0.249_271_822_074_913_66,
        0.232_652_578_821_136_24,
        -0.142_759_734_359_919_8,
    ];
    let (m, e) = mantissa_exponent(x);
    let u = m - 1.0;
    A::mul_add(u, poly::<A>(u, &P), e)
}

/// `2^z` for `|z| <= 1000`, within 3e-9 relative (measured in the tests below): the
/// counterpart of [`log2_coarse`].
///
/// `z = k + f` with `k` the nearest integer, `2^f` by the degree-6 Chebyshev fit on
/// [-1/2, 1/2], and `k` added to the exponent bits.
#[inline(always)]
pub fn exp2_coarse<A: Arith>(z: f64) -> f64 {
    // Round-to-nearest via the 1.5 * 2^52 trick (see expm1).
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    const P: [f64; 7] = [
        1.0,
        0.693_147_206_702_832_6,
        0.240_226_509_222_887_57,
        0.055_503_272_266_703_02,
        0.009_618_056_678_524_637,
        0.001_340_042_817_761_583_8,
        0.000_154_614_446_985_691_3,
    ];
    let shifted = z + SHIFTER;
    // z - k is exact: both are within 2^11 and k is z rounded to an integer.
    let f = z - (shifted - SHIFTER);
    let k = shifted.to_bits().wrapping_sub(SHIFTER.to_bits());
    // 2^f is in [2^-1/2, 2^1/2]: adding k to its exponent field stays normal.
    f64::from_bits(poly::<A>(f, &P).to_bits().wrapping_add(k << 52))
}

/// `(sin 2 pi u, cos 2 pi u)` for `u` in [0, 1] (the angle of a Box–Muller pair), within
/// 1e-15 absolute of std's `(TAU * u).sin_cos()` (measured in the tests below; most of
/// that is the rounding of `TAU * u` in the reference).
///
/// `4u = k + f` with k the nearest integer, `theta = f pi/2` in [-pi/4, pi/4], minimax
/// polynomials for sin and cos of theta, then a rotation by k quarter turns.
#[inline(always)]
pub fn sin_cos_turns<A: Arith>(u: f64) -> (f64, f64) {
    const SHIFTER: f64 = 6_755_399_441_055_744.0;
    // fdlibm's k_sin.c and k_cos.c minimax coefficients (Sun Microsystems, 1993, freely
    // redistributable), for |t| <= pi/4: `sin t = t + t^3 S(t^2)` with
    // `|sin(t)/t - S-form| < 2^-58`, `cos t = 1 - t^2/2 + t^4 C(t^2)` with error < 2^-58.
    const SIN: [f64; 6] = [
        -1.666_666_666_666_663_2e-1,
        8.333_333_333_322_49e-3,
        -1.984_126_982_985_795e-4,
        2.755_731_370_707_006_8e-6,
        -2.505_076_025_340_686_3e-8,
        1.589_690_995_211_55e-10,
    ];
    const COS: [f64; 7] = [
        -0.5,
        4.166_666_666_666_66e-2,
        -1.388_888_888_887_411e-3,
        2.480_158_728_947_673e-5,
        -2.755_731_435_139_066_3e-7,
        2.087_572_321_298_175e-9,
        -1.135_964_755_778_819_5e-11,
    ];
    let q = u * 4.0;
    let shifted = q + SHIFTER;
    let k = shifted.to_bits().wrapping_sub(SHIFTER.to_bits());
    let t = (q - (shifted - SHIFTER)) * std::f64::consts::FRAC_PI_2;
    let t2 = t * t;
    let sin_t = A::mul_add(t * t2, poly::<A>(t2, &SIN), t);
    let cos_t = A::mul_add(t2, poly::<A>(t2, &COS), 1.0);
    // Rotate by k quarter turns: sin(k pi/2 + t), cos(k pi/2 + t).
    let odd = k & 1 == 1;
    let (s, c) = (
        if odd { cos_t } else { sin_t },
        if odd { sin_t } else { cos_t },
    );
    let s = if k & 2 == 2 { -s } else { s };
    let c = if (k + 1) & 2 == 2 { -c } else { c };
    (s, c)
}

/// The composite Simpson rule for `f` on [a, b] with `n` (even) intervals: the tests'
/// reference integrals.
#[cfg(test)]
pub(crate) fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
    assert!(
        n.is_multiple_of(2),
        "Simpson's rule takes an even number of intervals"
    );
    let h = (b - a) / n as f64;
    let sum: f64 = (0..=n)
        .map(|k| {
            let w = if k == 0 || k == n {
                1.0
            } else {
                [2.0, 4.0][k % 2]
            };
            w * f(a + k as f64 * h)
        })
        .sum();
    sum * h / 3.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        if a == b {
            return 0.0;
        }
        let spacing = f64::from_bits(b.abs().to_bits() + 1) - b.abs();
        (a - b).abs() / spacing
    }

    /// Worst `(ulps, at)` of `f` against `reference` over `points`.
    fn worst_ulps(
        points: impl Iterator<Item = f64>,
        f: impl Fn(f64) -> f64,
        reference: impl Fn(f64) -> f64,
    ) -> (f64, f64) {
        points.fold((0.0, 0.0), |worst, x| {
            let e = ulps(f(x), reference(x));
            if e > worst.0 { (e, x) } else { worst }
        })
    }

    /// A dense sweep of [lo, hi] plus tiny and moderate magnitudes of both signs, where
    /// cancellation would show.
    fn sweep(lo: f64, hi: f64) -> impl Iterator<Item = f64> {
        let n = 2_000_000;
        let dense = (0..=n).map(move |i| lo + (hi - lo) * i as f64 / n as f64);
        let scales = (-300..3).flat_map(|e| {
            [1.0, 1.234_567, 3.3, 7.77].into_iter().flat_map(move |m| {
                let z = m * 10f64.powi(e);
                [z, -z]
            })
        });
        dense.chain(scales.filter(move |z| (lo..=hi).contains(z)))
    }

    fn expm1_error<A: Arith>() -> (f64, f64) {
        worst_ulps(sweep(-50.0, 709.0), expm1::<A>, f64::exp_m1)
    }

    /// Worst error against std's expm1 over a dense sweep of [-50, 709].
    #[test]
    fn expm1_is_within_two_ulp_of_std() {
        for (mode, (worst, at)) in [
            ("unfused", expm1_error::<Unfused>()),
            ("fused", expm1_error::<Fused>()),
        ] {
            assert!(worst <= 2.0, "{mode}: max error {worst} ulp at z = {at}");
        }
    }

    /// exp within 2 ulp of std's over [-40, 709] (the ziggurat's densities use [-40, 0]).
    #[test]
    fn exp_is_within_two_ulp_of_std() {
        for (mode, (worst, at)) in [
            (
                "unfused",
                worst_ulps(sweep(-40.0, 709.0), exp::<Unfused>, f64::exp),
            ),
            (
                "fused",
                worst_ulps(sweep(-40.0, 709.0), exp::<Fused>, f64::exp),
            ),
        ] {
            assert!(worst <= 2.0, "{mode}: max error {worst} ulp at z = {at}");
        }
    }

    #[test]
    fn expm1_limits() {
        let f = expm1::<Unfused>;
        assert_eq!(f(0.0), 0.0);
        assert_eq!(f(-1000.0), -1.0);
        assert_eq!(f(f64::NEG_INFINITY), -1.0);
        assert_eq!(f(710.0), f64::INFINITY);
        assert_eq!(f(f64::INFINITY), f64::INFINITY);
        assert!(f(f64::NAN).is_nan());
    }

    /// `phi1(z)` for `|z| <= 1` to about 1e-30: its Taylor series in double-double arithmetic.
    fn phi1_double_double(z: f64) -> f64 {
        let two_sum = |a: f64, b: f64| {
            let s = a + b;
            let bb = s - a;
            (s, (a - (s - bb)) + (b - bb))
        };
        let (mut sum, mut term) = ((1.0, 0.0), (1.0, 0.0));
        for n in 1..=40 {
            // term *= z / (n + 1), each step exact to about 2^-104.
            let p = term.0 * z;
            let (hi, lo) = two_sum(p, term.0.mul_add(z, -p) + term.1 * z);
            let d = (n + 1) as f64;
            let q = hi / d;
            let rest = (-q).mul_add(d, hi) + lo;
            term = two_sum(q, rest / d);
            let (s, e) = two_sum(sum.0, term.0);
            sum = two_sum(s, e + sum.1 + term.1);
        }
        sum.0 + sum.1
    }

    /// phi1 within 2 ulp of the exact value: against the double-double series for
    /// |z| <= 1/2 (the polynomial branch), against std's `expm1(z)/z` (itself within about
    /// 1.5 ulp) beyond.
    #[test]
    fn phi1_is_within_two_ulp() {
        let std_quotient = |z: f64| z.exp_m1() / z;
        let near_switch = (-2000..=2000).flat_map(|i| {
            let z = PHI1_POLY_MAX + i as f64 * f64::EPSILON;
            [z, -z]
        });
        for (mode, f) in [
            ("unfused", phi1::<Unfused> as fn(f64) -> f64),
            ("fused", phi1::<Fused>),
        ] {
            let inside = sweep(-PHI1_POLY_MAX, PHI1_POLY_MAX)
                .chain(near_switch.clone().filter(|z| z.abs() <= PHI1_POLY_MAX));
            let (worst, at) = worst_ulps(inside, f, phi1_double_double);
            println!("{mode}, |z| <= 1/2: max error {worst} ulp at z = {at}");
            assert!(
                worst <= 2.0,
                "{mode}, |z| <= 1/2: max error {worst} ulp at z = {at}"
            );
            let outside = sweep(-50.0, 50.0)
                .chain(near_switch.clone())
                .filter(|z| z.abs() > PHI1_POLY_MAX);
            let (worst, at) = worst_ulps(outside, f, std_quotient);
            println!("{mode}, |z| > 1/2: max error {worst} ulp at z = {at}");
            assert!(
                worst <= 2.0,
                "{mode}, |z| > 1/2: max error {worst} ulp at z = {at}"
            );
        }
    }

    #[test]
    fn phi1_poly_equals_phi1_in_its_range() {
        for i in -100_000..=100_000 {
            let z = PHI1_POLY_MAX * i as f64 / 100_000.0;
            assert_eq!(
                phi1_poly::<Unfused>(z).to_bits(),
                phi1::<Unfused>(z).to_bits()
            );
            assert_eq!(phi1_poly::<Fused>(z).to_bits(), phi1::<Fused>(z).to_bits());
        }
    }

    #[test]
    fn phi1_limits() {
        assert_eq!(phi1::<Unfused>(0.0), 1.0);
        assert_eq!(phi1::<Fused>(0.0), 1.0);
        assert_eq!(phi1::<Unfused>(-1e6), 1e-6);
        assert!(phi1::<Unfused>(f64::NAN).is_nan());
        for z in [1e-300, -1e-300, 1e-12, -1e-12, 1e-6, -1e-6] {
            let exact = 1.0 + z / 2.0 + z * z / 6.0;
            assert!(
                (phi1::<Unfused>(z) - exact).abs() <= 2.0 * f64::EPSILON,
                "{z}"
            );
        }
    }

    #[test]
    fn ln_is_within_two_ulp_of_std_on_the_unit_interval_and_beyond() {
        let unit = (1..=2_000_000u64).map(|i| i as f64 / 2_000_000.0);
        let sqrt2 = std::f64::consts::SQRT_2;
        let wide = (-1020..1020).flat_map(move |e| {
            [1.0, 1.1, sqrt2, f64::from_bits(sqrt2.to_bits() + 1), 1.9999].map(|m| m * 2f64.powi(e))
        });
        let edges = [2f64.powi(-53), 1.0 - 2f64.powi(-53)];
        let points = || unit.clone().chain(wide.clone()).chain(edges);
        for (mode, (worst, at)) in [
            ("unfused", worst_ulps(points(), ln::<Unfused>, f64::ln)),
            ("fused", worst_ulps(points(), ln::<Fused>, f64::ln)),
        ] {
            assert!(worst <= 2.0, "{mode}: max error {worst} ulp at x = {at}");
        }
    }

    #[test]
    fn coarse_log2_and_exp2_are_within_their_stated_errors() {
        // log2 over every binade the controller can see (1e-20 to 1e20) and more, densely
        // across the mantissa and at the range reduction's edge.
        let sqrt2 = std::f64::consts::SQRT_2;
        let mantissas = (0..=20_000).map(|i| 1.0 + i as f64 / 20_000.0);
        let points = (-80..80).flat_map(|e| {
            mantissas
                .clone()
                .chain([sqrt2, f64::from_bits(sqrt2.to_bits() + 1)])
                .map(move |m| m * 2f64.powi(e))
        });
        let mut worst_log2: [f64; 2] = [0.0; 2];
        for x in points {
            let want = x.log2();
            worst_log2[0] = worst_log2[0].max((log2_coarse::<Unfused>(x) - want).abs());
            worst_log2[1] = worst_log2[1].max((log2_coarse::<Fused>(x) - want).abs());
        }
        // exp2 over [-40, 40] (the controller's exponents lie within [-6, 6]).
        let mut worst_exp2: [f64; 2] = [0.0; 2];
        for i in 0..=800_000 {
            let z = -40.0 + 80.0 * i as f64 / 800_000.0;
            let want = z.exp2();
            let rel = |got: f64| ((got - want) / want).abs();
            worst_exp2[0] = worst_exp2[0].max(rel(exp2_coarse::<Unfused>(z)));
            worst_exp2[1] = worst_exp2[1].max(rel(exp2_coarse::<Fused>(z)));
        }
        // Measured: 9.7e-8 and 2.6e-9 for both modes.
        assert!(worst_log2.iter().all(|&e| e < 1e-7), "log2: {worst_log2:?}");
        assert!(worst_exp2.iter().all(|&e| e < 3e-9), "exp2: {worst_exp2:?}");
        assert_eq!(exp2_coarse::<Fused>(0.0), 1.0);
        assert_eq!(exp2_coarse::<Unfused>(-3.0), 0.125);
    }

    fn sin_cos_error<A: Arith>() -> f64 {
        let mut worst: f64 = 0.0;
        for i in 0..=1_000_000u64 {
            let u = i as f64 / 1_000_000.0;
            let (s, c) = sin_cos_turns::<A>(u);
            let (ws, wc) = (std::f64::consts::TAU * u).sin_cos();
            worst = worst.max((s - ws).abs()).max((c - wc).abs());
        }
        worst
    }

    #[test]
    fn sin_cos_turns_matches_std() {
        // The reference rounds TAU * u first (up to 4.4e-16 near u = 1); ours reduces 4u
        // exactly, so the difference is dominated by the reference.
        for (mode, worst) in [
            ("unfused", sin_cos_error::<Unfused>()),
            ("fused", sin_cos_error::<Fused>()),
        ] {
            assert!(worst <= 1e-15, "{mode}: max abs error {worst}");
        }
        assert_eq!(sin_cos_turns::<Unfused>(0.0), (0.0, 1.0));
        assert_eq!(sin_cos_turns::<Unfused>(0.25), (1.0, 0.0));
        assert_eq!(sin_cos_turns::<Fused>(0.25), (1.0, 0.0));
    }
}
