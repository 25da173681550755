//! Per-run random streams held side by side in lanes.

use super::math::Arith;
use super::stream::{Xoshiro, box_muller, uniform_from_bits};
use super::{LANES, Lanes};

/// xoshiro256++ states of all lanes, word-major so the update vectorises. Lane `l` produces
/// exactly the sequence of [`Xoshiro`] it was set from.
#[derive(Debug, Clone, Copy)]
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

/// Standard normals for every lane, from each lane's stream in Box–Muller pairs (cosine
/// value first, then the sine value at the next request).
#[derive(Debug, Clone, Copy)]
pub struct LaneNormals {
    rng: LaneRng,
    spare: Lanes,
    has_spare: bool,
}

impl LaneNormals {
    /// Normals drawn from the lanes' streams `rng`, from their current states.
    pub fn new(rng: LaneRng) -> LaneNormals {
        LaneNormals {
            rng,
            spare: [0.0; LANES],
            has_spare: false,
        }
    }

    /// The next normal of every lane, computed with `A`'s arithmetic.
    #[inline(always)]
    pub fn fill<A: Arith>(&mut self, out: &mut Lanes) {
        if self.has_spare {
            *out = self.spare;
            self.has_spare = false;
            return;
        }
        for l in 0..LANES {
            let u1 = uniform_from_bits(self.rng.next_lane(l));
            let u2 = uniform_from_bits(self.rng.next_lane(l));
            (out[l], self.spare[l]) = box_muller::<A>(u1, u2);
        }
        self.has_spare = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrate::math::{Fused, Unfused};

    /// Lane `l` of the lane generator gives exactly run `l`'s scalar normal sequence, with
    /// either arithmetic.
    fn lanes_reproduce_scalar_sequences<A: Arith>() {
        let mut rng = LaneRng::default();
        let mut scalar: Vec<Xoshiro> = (0..LANES as u64)
            .map(|i| Xoshiro::from_run(11, 1000 + i))
            .collect();
        for (l, x) in scalar.iter().enumerate() {
            rng.set_lane(l, x);
        }
        let mut lanes = LaneNormals::new(rng);
        let mut out = [0.0; LANES];
        let mut pending: Vec<Option<f64>> = vec![None; LANES];
        for _ in 0..101 {
            lanes.fill::<A>(&mut out);
            for l in 0..LANES {
                let want = match pending[l].take() {
                    Some(z) => z,
                    None => {
                        let (a, b) = scalar[l].normal_pair::<A>();
                        pending[l] = Some(b);
                        a
                    }
                };
                assert_eq!(out[l].to_bits(), want.to_bits(), "lane {l}");
            }
        }
    }

    #[test]
    fn lanes_reproduce_each_runs_scalar_normal_sequence() {
        lanes_reproduce_scalar_sequences::<Unfused>();
        lanes_reproduce_scalar_sequences::<Fused>();
    }
}
