//! Streaming statistics, accumulated per lane inside the kernel.
//!
//! Mean and variance use shifted sums: with `s` the first sample, `S1 = sum(x - s)` and
//! `S2 = sum((x - s)^2)`, so `mean = s + S1/n` and `var = S2/n - (S1/n)^2` (ddof = 0).
//! Shifting by a sample removes the cancellation of the naive formula, and unlike Welford's
//! update it needs no division per step, so the lane loop stays cheap and vectorised.

use crate::integrate::math::{Arith, Unfused};
use crate::integrate::{LANES, Lanes};

/// Running sums of one variable over the lanes of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Moments {
    shift: Lanes,
    sum: Lanes,
    sum_sq: Lanes,
    min: Lanes,
    max: Lanes,
}

/// Statistics of one variable of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub mean: f64,
    pub std: f64,
    pub min: f64,
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

impl Moments {
    /// Starts accumulating with `first` as the shift (it is not added yet).
    #[inline(always)]
    pub fn starting_at(first: &Lanes) -> Moments {
        Moments {
            shift: *first,
            sum: [0.0; LANES],
            sum_sq: [0.0; LANES],
            min: [f64::INFINITY; LANES],
            max: [f64::NEG_INFINITY; LANES],
        }
    }

    #[inline(always)]
    pub fn add(&mut self, x: &Lanes) {
        for (l, &x) in x.iter().enumerate() {
            self.add_lane::<Unfused>(l, x);
        }
    }

    /// Adds one sample to lane `l` (the kernel's fused lane loop calls this) with `A`'s
    /// arithmetic.
    #[inline(always)]
    pub fn add_lane<A: Arith>(&mut self, l: usize, x: f64) {
        let d = x - self.shift[l];
        self.sum[l] += d;
        self.sum_sq[l] = A::mul_add(d, d, self.sum_sq[l]);
        self.min[l] = A::min(self.min[l], x);
        self.max[l] = A::max(self.max[l], x);
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

    #[test]
    fn matches_two_pass_statistics() {
        let samples: Vec<f64> = (0..10_000).map(|i| 1e6 + (i as f64 * 0.37).sin()).collect();
        let lanes = |x: f64| [x; LANES];
        let mut m = Moments::starting_at(&lanes(samples[0]));
        for &x in &samples {
            m.add(&lanes(x));
        }
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
}
