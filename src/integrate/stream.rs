//! Per-run random streams and normal sampling.
//!
//! Every run owns a `Xoshiro256PlusPlus` stream, so a run's result depends only on
//! `(sweep.seed, run_id)`, never on threads, chunking or shards:
//!
//! ```text
//! stream(seed, run_id) = Xoshiro256PlusPlus::seed_from_u64(mix64(mix64(seed) + run_id))
//! ```
//!
//! where `mix64` is the SplitMix64 finaliser (a bijection on u64, so distinct run ids give
//! distinct streams for a given seed) and `+` wraps. Draw order within a run:
//! 1. `init.r_hz`, then `init.v`, each only when drawn (`uniform` takes one u64, `normal`
//!    one Box–Muller pair and keeps its first value; computed without FMA on every path, so
//!    drawn initial values do not depend on the instruction set);
//! 2. then, every step, white noise on `r_hz` then on `v` and after the step the OU inputs,
//!    each taking the next value of the run's normal sequence: ziggurat normals
//!    ([`Xoshiro::normal`]; one u64 each, rarely more).
//!
//! Uniforms are `((u64 >> 12) + 1/2) * 2^-52`, strictly inside (0, 1).

use super::math::{self, Arith};
use super::ziggurat;

/// SplitMix64's output function (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256++ (Blackman & Vigna), bit-identical to `rand_xoshiro::Xoshiro256PlusPlus`.
/// Kept as plain words so that a lane batch can hold many streams side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xoshiro {
    /// The 256-bit state as four words (never all zero).
    pub s: [u64; 4],
}

impl Xoshiro {
    /// The stream of run `run_id`: the state of
    /// `Xoshiro256PlusPlus::seed_from_u64(mix64(mix64(seed) + run_id))`.
    pub fn from_run(seed: u64, run_id: u64) -> Xoshiro {
        // rand_xoshiro seeds from a u64 by filling the state with SplitMix64 output.
        let mut x = mix64(mix64(seed).wrapping_add(run_id));
        let mut s = [0u64; 4];
        for w in &mut s {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            *w = mix64(x);
        }
        Xoshiro { s }
    }

    /// The next 64 random bits; advances the state.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Advances the state by 2^128 values (the xoshiro256 jump polynomial, as
    /// `rand_xoshiro`'s `jump`): streams a jump apart never overlap in practice. Node `i` of
    /// a network run draws from its run's stream jumped `i` times.
    pub fn jump(&mut self) {
        const JUMP: [u64; 4] = [
            0x180e_c6d3_3cfd_0aba,
            0xd5a6_1266_f0c9_392c,
            0xa958_2618_e03f_c9aa,
            0x39ab_dc45_29b1_661c,
        ];
        let mut acc = [0u64; 4];
        for word in JUMP {
            for bit in 0..64 {
                if word & (1u64 << bit) != 0 {
                    for (a, s) in acc.iter_mut().zip(self.s) {
                        *a ^= s;
                    }
                }
                self.next_u64();
            }
        }
        self.s = acc;
    }

    /// A uniform in (0, 1).
    #[inline(always)]
    pub fn uniform(&mut self) -> f64 {
        uniform_from_bits(self.next_u64())
    }

    /// The next normal of the run's noise sequence, by the ziggurat method (see
    /// `ziggurat.rs`): one 64-bit output, and more for 0.23% of normals.
    pub fn normal(&mut self) -> f64 {
        ziggurat::normal(ziggurat::tables(), || self.next_u64())
    }

    /// One Box–Muller pair of independent standard normals, with `A`'s arithmetic (drawn
    /// initial values).
    #[inline(always)]
    pub fn normal_pair<A: Arith>(&mut self) -> (f64, f64) {
        let u1 = self.uniform();
        let u2 = self.uniform();
        box_muller::<A>(u1, u2)
    }
}

/// Maps 64 random bits to a uniform strictly inside (0, 1): `((x >> 12) + 1/2) * 2^-52`.
#[inline(always)]
pub fn uniform_from_bits(x: u64) -> f64 {
    // 2^52 + m as a double, minus 2^52: converts without the u64 → f64 instruction that
    // SSE2 and AVX2 lack, so the lane loop vectorises.
    const TWO52: f64 = 4_503_599_627_370_496.0;
    let m = f64::from_bits(0x4330_0000_0000_0000 | (x >> 12)) - TWO52;
    (m + 0.5) * (1.0 / TWO52)
}

/// Box–Muller transform: `(sqrt(-2 ln u1) cos(2 pi u2), sqrt(-2 ln u1) sin(2 pi u2))`.
#[inline(always)]
pub fn box_muller<A: Arith>(u1: f64, u2: f64) -> (f64, f64) {
    // Branch-free ln and sin/cos (crate::integrate::math), so the lane loop vectorises.
    let radius = (-2.0 * math::ln::<A>(u1)).sqrt();
    let (s, c) = math::sin_cos_turns::<A>(u2);
    (radius * c, radius * s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// The run's stream as the reproducibility contract states it, from rand_xoshiro.
    fn run_stream(seed: u64, run_id: u64) -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(mix64(mix64(seed).wrapping_add(run_id)))
    }

    #[test]
    fn jump_equals_rand_xoshiro_jump() {
        let mut reference = run_stream(7, 3);
        let mut ours = Xoshiro::from_run(7, 3);
        reference.jump();
        ours.jump();
        for _ in 0..100 {
            assert_eq!(ours.next_u64(), reference.next_u64());
        }
    }

    #[test]
    fn lane_generator_equals_rand_xoshiro_stream() {
        for (seed, run) in [(0, 0), (2026, 17), (u64::MAX, 123_456_789)] {
            let mut reference = run_stream(seed, run);
            let mut ours = Xoshiro::from_run(seed, run);
            for _ in 0..1000 {
                assert_eq!(ours.next_u64(), reference.next_u64());
            }
        }
    }

    #[test]
    fn uniforms_are_strictly_inside_the_unit_interval() {
        assert_eq!(uniform_from_bits(0), 2f64.powi(-53));
        assert_eq!(uniform_from_bits(u64::MAX), 1.0 - 2f64.powi(-53));
        assert!(uniform_from_bits(u64::MAX) < 1.0);
        assert_eq!(uniform_from_bits(1 << 63), 0.5 + 2f64.powi(-53));
    }

    #[test]
    fn normals_have_unit_moments() {
        let mut x = Xoshiro::from_run(7, 0);
        let n = 400_000;
        let (mut s1, mut s2, mut s4) = (0.0, 0.0, 0.0);
        for _ in 0..n / 2 {
            let (a, b) = x.normal_pair::<math::Unfused>();
            for z in [a, b] {
                s1 += z;
                s2 += z * z;
                s4 += z * z * z * z;
            }
        }
        let nf = n as f64;
        // Standard errors: mean 1/sqrt(n) ~ 0.0016, variance sqrt(2/n) ~ 0.0022, kurtosis ~ 0.02.
        assert!((s1 / nf).abs() < 0.008, "mean {}", s1 / nf);
        assert!((s2 / nf - 1.0).abs() < 0.011, "var {}", s2 / nf);
        assert!((s4 / nf - 3.0).abs() < 0.1, "4th moment {}", s4 / nf);
    }
}
