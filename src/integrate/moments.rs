//! Streaming statistics, accumulated per lane inside the kernel.
//!
//! Mean and variance use shifted sums: with `s` the first sample, `S1 = sum(x - s)` and
//! `S2 = sum((x - s)^2)`, so `mean = s + S1/n` and `var = S2/n - (S1/n)^2` (ddof = 0).
//! Shifting by a sample removes the cancellation of the naive formula, and unlike Welford's
//! update it needs no division per step, so the lane loop stays cheap and vectorised.

use super::LANES;
use super::math::Arith;

/// Running sums of one variable over the `W` lanes of a batch (the single-node kernel's
/// [`LANES`] by default; the network kernel's runs are fewer).
#[derive(Debug, Clone, Copy)]
pub struct Moments<const W: usize = LANES> {
    shift: [f64; W],
    sum: [f64; W],
    sum_sq: [f64; W],
    min: [f64; W],
    max: [f64; W],
}

/// The running sums of `G` lanes of a [`Moments`], taken out of it so that a loop over
/// samples keeps them in registers (a group of one vector or a few).
#[derive(Debug, Clone, Copy)]
pub struct GroupMoments<const G: usize> {
    shift: [f64; G],
    sum: [f64; G],
    sum_sq: [f64; G],
    min: [f64; G],
    max: [f64; G],
}

impl<const G: usize> GroupMoments<G> {
    /// Adds lanes `g .. g + G` of `xs` (one sample per lane) with `A`'s arithmetic.
    #[inline(always)]
    pub fn add<A: Arith, const W: usize>(&mut self, xs: &[f64; W], g: usize) {
        for w in 0..G {
            let x = xs[g + w];
            let d = x - self.shift[w];
            self.sum[w] += d;
            self.sum_sq[w] = A::mul_add(d, d, self.sum_sq[w]);
            self.min[w] = A::min(self.min[w], x);
            self.max[w] = A::max(self.max[w], x);
        }
    }
}

/// Statistics of one variable of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Mean over the post-transient steps.
    pub mean: f64,
    /// Population standard deviation (ddof = 0), >= 0.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Summary {
    /// The same statistics in another unit (`x -> scale * x`, scale > 0).
    pub fn scaled(self, scale: f64) -> Summary {
        Summary {
            mean: self.mean * scale,
            std: self.std * scale,
            min: self.min * scale,
            max: self.max * scale,
        }
    }
}

impl<const W: usize> Moments<W> {
    /// Starts accumulating with `first` as the shift (it is not added yet).
    #[inline(always)]
    pub fn starting_at(first: &[f64; W]) -> Moments<W> {
        Moments {
            shift: *first,
            sum: [0.0; W],
            sum_sq: [0.0; W],
            min: [f64::INFINITY; W],
            max: [f64::NEG_INFINITY; W],
        }
    }

    /// Adds the samples `xs[0]`, `xs[1]`, ... (each one value per lane) with `A`'s
    /// arithmetic: lanes in groups of `GROUP` (a few vectors), the group's sums held in
    /// registers over all samples and stored once.
    #[inline(always)]
    pub fn add_samples<A: Arith, const GROUP: usize>(&mut self, xs: &[[f64; W]]) {
        const { assert!(W.is_multiple_of(GROUP)) };
        for g in (0..W).step_by(GROUP) {
            let mut group = self.group::<GROUP>(g);
            for x in xs {
                group.add::<A, W>(x, g);
            }
            self.set_group(g, &group);
        }
    }

    /// The sums of lanes `g .. g + G`, to be held in registers while they are updated.
    #[inline(always)]
    pub fn group<const G: usize>(&self, g: usize) -> GroupMoments<G> {
        GroupMoments {
            shift: std::array::from_fn(|w| self.shift[g + w]),
            sum: std::array::from_fn(|w| self.sum[g + w]),
            sum_sq: std::array::from_fn(|w| self.sum_sq[g + w]),
            min: std::array::from_fn(|w| self.min[g + w]),
            max: std::array::from_fn(|w| self.max[g + w]),
        }
    }

    /// Stores the sums of lanes `g .. g + G`.
    #[inline(always)]
    pub fn set_group<const G: usize>(&mut self, g: usize, group: &GroupMoments<G>) {
        self.shift[g..g + G].copy_from_slice(&group.shift);
        self.sum[g..g + G].copy_from_slice(&group.sum);
        self.sum_sq[g..g + G].copy_from_slice(&group.sum_sq);
        self.min[g..g + G].copy_from_slice(&group.min);
        self.max[g..g + G].copy_from_slice(&group.max);
    }

    /// Statistics of lane `l` after `count` samples.
    pub fn summary(&self, l: usize, count: u64) -> Summary {
        let n = count as f64;
        let m = self.sum[l] / n;
        Summary {
            mean: self.shift[l] + m,
            std: (self.sum_sq[l] / n - m * m).max(0.0).sqrt(),
            min: self.min[l],
            max: self.max[l],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrate::Lanes;
    use crate::integrate::math::{Fused, Unfused};

    #[test]
    fn matches_two_pass_statistics() {
        let samples: Vec<f64> = (0..10_000).map(|i| 1e6 + (i as f64 * 0.37).sin()).collect();
        let lanes = |x: f64| [x; LANES];
        let mut m = Moments::starting_at(&lanes(samples[0]));
        let xs: Vec<Lanes> = samples.iter().map(|&x| lanes(x)).collect();
        m.add_samples::<Unfused, 4>(&xs);
        let n = samples.len() as f64;
        let mean = samples.iter().sum::<f64>() / n;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let s = m.summary(3, samples.len() as u64);
        assert!(
            (s.mean - mean).abs() <= 1e-15 * mean.abs() * 10.0,
            "{} vs {mean}",
            s.mean
        );
        assert!(
            (s.std - var.sqrt()).abs() <= 1e-9 * var.sqrt(),
            "{} vs {}",
            s.std,
            var.sqrt()
        );
        let lo = samples.iter().cloned().fold(f64::INFINITY, f64::min);
        assert_eq!(s.min, lo);
    }

    /// The group size (each path's own) changes the order of the loops, not a lane's sums.
    #[test]
    fn group_size_leaves_every_lanes_bits_alone() {
        let xs: Vec<Lanes> = (0..37)
            .map(|i| std::array::from_fn(|l| ((i * 7 + l * 13) as f64 * 0.61).sin() * 1e3))
            .collect();
        let run = |add: fn(&mut Moments, &[Lanes])| {
            let mut m = Moments::starting_at(&xs[0]);
            add(&mut m, &xs[..16]);
            add(&mut m, &xs[16..]);
            (0..LANES)
                .map(|l| {
                    let s = m.summary(l, xs.len() as u64);
                    [s.mean, s.std, s.min, s.max].map(f64::to_bits)
                })
                .collect::<Vec<_>>()
        };
        let four = run(|m, xs| m.add_samples::<Fused, 4>(xs));
        assert_eq!(four, run(|m, xs| m.add_samples::<Fused, 8>(xs)));
        assert_eq!(four, run(|m, xs| m.add_samples::<Fused, 16>(xs)));
        assert_ne!(
            four[0], four[1],
            "lanes must differ for the test to mean anything"
        );
    }
}
