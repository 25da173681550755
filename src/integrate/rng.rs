//! Per-run random streams held side by side in lanes.

use super::stream::Xoshiro;
use super::ziggurat::{self, Ziggurat};
use super::{LANES, Lanes};

/// xoshiro256++ states of all lanes, word-major so the update vectorises. Lane `l` produces
/// exactly the sequence of [`Xoshiro`] it was set from.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
pub struct LaneRng {
    s: [[u64; LANES]; 4],
}

impl Default for LaneRng {
    fn default() -> LaneRng {
        LaneRng { s: [[0; LANES]; 4] }
    }
}

impl LaneRng {
    /// Lane `l` continues stream `x` from its current state.
    pub fn set_lane(&mut self, l: usize, x: &Xoshiro) {
        for w in 0..4 {
            self.s[w][l] = x.s[w];
        }
    }

    /// The next output of lane `l`'s stream (called inside loops over the lanes, which
    /// LLVM vectorises: each vector of lanes is loaded, advanced and stored once).
    #[inline(always)]
    pub fn next_lane(&mut self, l: usize) -> u64 {
        let [s0, s1, s2, s3] = &mut self.s;
        let out = (s0[l].wrapping_add(s3[l]))
            .rotate_left(23)
            .wrapping_add(s0[l]);
        let t = s1[l] << 17;
        s2[l] ^= s0[l];
        s3[l] ^= s1[l];
        s1[l] ^= s2[l];
        s0[l] ^= s3[l];
        s2[l] ^= t;
        s3[l] = s3[l].rotate_left(45);
        out
    }
}

/// Standard normals for every lane, each lane's from its own stream by the ziggurat
/// method ([`ziggurat`]): lane `l` gives exactly [`Xoshiro::normal`]'s sequence of the
/// stream it was set from.
#[derive(Debug, Clone, Copy)]
pub struct LaneNormals {
    rng: LaneRng,
}

impl LaneNormals {
    /// Normals drawn from the lanes' streams `rng`, from their current states.
    pub fn new(rng: LaneRng) -> LaneNormals {
        LaneNormals { rng }
    }

    /// The next normal of every lane: one vectorised pass takes one draw per lane; the
    /// lanes whose candidate is not sure (0.27% each) are then decided one by one, drawing
    /// more from their own streams.
    #[inline(always)]
    pub fn fill(&mut self, out: &mut Lanes) {
        let mut draws = [0; LANES];
        let unsure = candidates(&mut self.rng, ziggurat::tables(), out, &mut draws);
        if unsure != 0 {
            self.resolve(out, &draws, unsure);
        }
    }

    /// Decides the lanes set in `unsure` (bit `l` for lane `l`) from their draws.
    #[cold]
    #[inline(never)]
    fn resolve(&mut self, out: &mut Lanes, draws: &[u64; LANES], mut unsure: u64) {
        let z = ziggurat::tables();
        while unsure != 0 {
            let l = unsure.trailing_zeros() as usize;
            unsure &= unsure - 1;
            let rng = &mut self.rng;
            out[l] = ziggurat::resolve(z, draws[l], &mut || rng.next_lane(l));
        }
    }
}

/// One draw per lane into `draws`, its ziggurat candidate into `out`; returns the lanes
/// whose candidate is not sure, as bits. The loop vectorises, with a gather for the
/// look-up, because it advances a local copy of the states: updated in place, LLVM cannot
/// tell them from the table it reads and keeps the loop scalar.
#[inline(always)]
fn candidates(rng: &mut LaneRng, z: &Ziggurat, out: &mut Lanes, draws: &mut [u64; LANES]) -> u64 {
    const { assert!(LANES <= 64) };
    let mut states = *rng;
    let mut unsure = 0;
    for l in 0..LANES {
        let b = states.next_lane(l);
        let (c, sure) = ziggurat::fast(z, b);
        out[l] = c;
        draws[l] = b;
        unsure |= ((!sure) as u64) << l;
    }
    *rng = states;
    unsure
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrate::Isa;

    /// `rounds` rounds of the lane generator from `rng`, compiled for the path `isa`. The
    /// loops vectorise only when optimised: `cargo test --release --lib rng::` checks the
    /// AVX-512 path's gathers (checked with this change), `cargo test` (opt-level 1) the
    /// same code unvectorised.
    fn lane_rounds(isa: Isa, rng: LaneRng, rounds: usize) -> Vec<Lanes> {
        // A plain loop: `fill` inlines into the caller and takes its target features (it
        // would not inside an iterator adapter's closure).
        #[inline(always)]
        fn generic(rng: LaneRng, rounds: usize) -> Vec<Lanes> {
            let mut lanes = LaneNormals::new(rng);
            let mut all = Vec::with_capacity(rounds);
            let mut out = [0.0; LANES];
            for _ in 0..rounds {
                lanes.fill(&mut out);
                all.push(out);
            }
            all
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn avx2(rng: LaneRng, rounds: usize) -> Vec<Lanes> {
            generic(rng, rounds)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
        fn avx512(rng: LaneRng, rounds: usize) -> Vec<Lanes> {
            generic(rng, rounds)
        }
        assert!(isa.is_available());
        match isa {
            Isa::Portable => generic(rng, rounds),
            // SAFETY: the CPU has the path's features (checked above).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => unsafe { avx2(rng, rounds) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { avx512(rng, rounds) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the portable path runs off x86-64"),
        }
    }

    /// Lane `l` of the lane generator gives exactly run `l`'s scalar normal sequence, on
    /// every path this CPU has, over enough draws that the exact decision, the wedge
    /// rejections and the tail all occur (counted through the draws the scalar sequence
    /// takes).
    #[test]
    fn lanes_reproduce_each_runs_scalar_normal_sequence() {
        const ROUNDS: usize = 20_000;
        let mut rng = LaneRng::default();
        let mut scalar: Vec<Xoshiro> = (0..LANES as u64)
            .map(|i| Xoshiro::from_run(11, 1000 + i))
            .collect();
        for (l, x) in scalar.iter().enumerate() {
            rng.set_lane(l, x);
        }
        let z = ziggurat::tables();
        // Normals that took 1 draw, 2 (a wedge accepted), 3 (the tail) and more.
        let mut took = [0usize; 4];
        let want: Vec<Lanes> = (0..ROUNDS)
            .map(|_| {
                std::array::from_fn(|l| {
                    let mut draws = 0;
                    let z = ziggurat::normal(z, || {
                        draws += 1;
                        scalar[l].next_u64()
                    });
                    took[draws.min(4) - 1] += 1;
                    z
                })
            })
            .collect();
        for isa in Isa::available() {
            let got = lane_rounds(isa, rng, ROUNDS);
            for (k, (g, w)) in got.iter().zip(&want).enumerate() {
                for l in 0..LANES {
                    assert_eq!(
                        g[l].to_bits(),
                        w[l].to_bits(),
                        "{isa:?}: round {k}, lane {l}"
                    );
                }
            }
        }
        // Of 640,000 normals, about 0.23% need more than one draw, and 1 in 40,000 is
        // from the tail (3 draws or more).
        assert!(took[1] > 500, "{took:?}");
        assert!(took[2] + took[3] > 5, "{took:?}");
    }

    /// The standard normal CDF minus 1/2 from 0 to `x`, `x` in [0, 6]: Simpson's rule with
    /// 2^14 intervals per unit (error below 1e-15).
    fn half_cdf(x: f64) -> f64 {
        let n = 2 * ((x * 8192.0).ceil() as usize).max(1);
        let density = |t: f64| (-0.5 * t * t).exp();
        crate::integrate::math::simpson(density, 0.0, x, n) / (2.0 * std::f64::consts::PI).sqrt()
    }

    fn cdf(x: f64) -> f64 {
        0.5 + x.signum() * half_cdf(x.abs())
    }

    /// 10^7 normals of the lane generator (32 runs' streams) against the standard normal:
    /// moments, tail counts, a chi-square test on 182 bins (width 0.05 on [-4.5, 4.5] and
    /// the two tails) and a Kolmogorov–Smirnov bound at the bin edges, each at significance
    /// 0.1% or stricter: a correct generator fails one of them for at most 1 in 250 seeds.
    #[test]
    fn lane_normals_are_standard_normal() {
        const N: usize = 10_000_000;
        const WIDTH: f64 = 0.05;
        const EDGE: f64 = 4.5;
        let inner = (2.0 * EDGE / WIDTH).round() as usize;
        let mut rng = LaneRng::default();
        for l in 0..LANES {
            rng.set_lane(l, &Xoshiro::from_run(2026, l as u64));
        }
        let mut lanes = LaneNormals::new(rng);
        let mut out = [0.0; LANES];
        // Bin 0: below -EDGE; bins 1..=inner: [-EDGE + (k-1) WIDTH, -EDGE + k WIDTH);
        // bin inner + 1: EDGE and above.
        let mut counts = vec![0u64; inner + 2];
        let (mut s1, mut s2, mut s4) = (0.0, 0.0, 0.0);
        let tails = [3.0, ziggurat::tables().r, 5.0];
        let mut beyond = [0u64; 3];
        let mut largest: f64 = 0.0;
        for _ in 0..N / LANES {
            lanes.fill(&mut out);
            for &z in &out {
                s1 += z;
                s2 += z * z;
                s4 += z * z * z * z;
                let bin = ((z + EDGE) / WIDTH).floor() + 1.0;
                counts[bin.clamp(0.0, (inner + 1) as f64) as usize] += 1;
                for (t, c) in tails.iter().zip(&mut beyond) {
                    *c += (z.abs() > *t) as u64;
                }
                largest = largest.max(z.abs());
            }
        }
        let n = N as f64;
        // Standard errors: mean 1/sqrt(n) = 3.2e-4, second moment sqrt(2/n) = 4.5e-4,
        // fourth moment sqrt(96/n) = 3.1e-3; 5 of them each.
        assert!((s1 / n).abs() < 1.6e-3, "mean {}", s1 / n);
        assert!((s2 / n - 1.0).abs() < 2.3e-3, "variance {}", s2 / n);
        assert!((s4 / n - 3.0).abs() < 1.6e-2, "fourth moment {}", s4 / n);
        // Two-sided tail counts, binomial, within 5 standard deviations (the middle one
        // is where the tail algorithm takes over).
        for (t, c) in tails.iter().zip(beyond) {
            let p = 2.0 * (0.5 - half_cdf(*t));
            let (mean, sd) = (n * p, (n * p * (1.0 - p)).sqrt());
            assert!(
                (c as f64 - mean).abs() < 5.0 * sd + 1.0,
                "|z| > {t}: {c} draws, expected {mean:.1} +- {sd:.1}"
            );
        }
        // P(|z| > 6.5) = 8e-11: none expected in 10^7.
        assert!(largest < 6.5, "largest |z| {largest}");
        let edges: Vec<f64> = (0..=inner).map(|k| -EDGE + k as f64 * WIDTH).collect();
        let below: Vec<f64> = edges.iter().map(|&e| cdf(e)).collect();
        let mut chi2 = 0.0;
        let (mut seen, mut ks) = (0u64, 0.0f64);
        for (k, &c) in counts.iter().enumerate() {
            let p = match k {
                0 => below[0],
                k if k == inner + 1 => 1.0 - below[inner],
                k => below[k] - below[k - 1],
            };
            chi2 += (c as f64 - n * p).powi(2) / (n * p);
            seen += c;
            if k <= inner {
                ks = ks.max((seen as f64 / n - below[k]).abs());
            }
        }
        // Chi-square with inner + 1 = 181 degrees of freedom: its 99.9% quantile by the
        // Wilson–Hilferty approximation (245.6).
        let dof = (inner + 1) as f64;
        let a = 2.0 / (9.0 * dof);
        let critical = dof * (1.0 - a + 3.090_232 * a.sqrt()).powi(3);
        println!("chi-square {chi2:.1} (critical {critical:.1}), KS distance {ks:.2e}");
        assert!(chi2 < critical, "chi-square {chi2:.1} >= {critical:.1}");
        // Dvoretzky–Kiefer–Wolfowitz: P(sup |F_n - F| > e) <= 2 exp(-2 n e^2) = 0.001.
        let e = ((2.0f64 / 0.001).ln() / (2.0 * n)).sqrt();
        assert!(ks < e, "KS distance {ks:.2e} >= {e:.2e}");
    }
}
