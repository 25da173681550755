//! Kernel throughput: one lane batch of the W1 workload (eta, J, delta spread over the
//! lanes; r0 = 100 Hz, v0 = -2; dt = 0.01 ms; 10,000 steps), per method and
//! instruction-set path, with and without white noise on v (sigma 0.5). Divan reports items/s; one item is one run-step, so
//! ns per run-step = 1e9 / (items/s).
//!
//! `normals`: the noise generator alone, 10,000 normals per lane of a batch, per path
//! (one item is one normal).
//!
//!     cargo bench --bench kernel

use divan::counter::ItemsCount;
use mpr_sweep::integrate::{self, Batch, Isa, LANES, Method, Schedule, StopToken};
use mpr_sweep::integrate::{LaneNormals, LaneRng, Lanes, Xoshiro};
use mpr_sweep::model::NodeParams;

const STEPS: u64 = 10_000;

fn batch(sigma_v: f64) -> Batch {
    let mut b = Batch::default();
    for l in 0..LANES {
        let f = l as f64 / (LANES - 1) as f64;
        let p = NodeParams::from_user(
            1.0,
            -10.0 + 10.0 * f,
            30.0 * (1.0 - f),
            [0.5, 1.0, 2.0, 4.0][l % 4],
            0.0,
            0.0,
        );
        b.coef.set_lane(l, &p, 0.0, sigma_v, 0.01);
        b.r0[l] = 0.1;
        b.v0[l] = -2.0;
        b.rng.set_lane(l, &Xoshiro::from_run(2026, l as u64));
    }
    b
}

/// One benchmark configuration, shown as `method/isa[/noise]`.
struct Case {
    method: Method,
    isa: Isa,
    noise: bool,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let noise = if self.noise { "/white-v" } else { "" };
        write!(f, "{}/{}{noise}", self.method.name(), self.isa.name())
    }
}

fn cases() -> Vec<Case> {
    let isas = Isa::available();
    let mut out = Vec::new();
    for method in [
        Method::ExpEuler,
        Method::Euler,
        Method::Heun,
        Method::Rk4,
        Method::Dopri5,
    ] {
        for &isa in &isas {
            for noise in [false, true] {
                // rk4 and dopri5 take no white noise.
                if !(noise && matches!(method, Method::Rk4 | Method::Dopri5)) {
                    out.push(Case { method, isa, noise });
                }
            }
        }
    }
    out
}

#[divan::bench(args = cases())]
fn kernel(bencher: divan::Bencher, case: &Case) {
    let schedule = Schedule {
        dt: 0.01,
        steps: STEPS,
        first_stat_step: 1,
        trace_stride: 0,
        white: [false, case.noise],
    };
    let b = batch(if case.noise { 0.5 } else { 0.0 });
    let mut trace = Vec::new();
    let stop = StopToken::new();
    bencher
        .counter(ItemsCount::new(LANES as u64 * STEPS))
        .bench_local(|| {
            integrate::integrate(
                case.isa,
                case.method,
                &schedule,
                divan::black_box(&b),
                &mut trace,
                &stop,
            )
        });
}

/// Sums `count` rounds of every lane's normals (the sum keeps the work alive). The lane
/// loop inlines into the caller, so each path compiles it with its own features.
#[inline(always)]
fn sum_normals(count: usize) -> Lanes {
    let mut rng = LaneRng::default();
    for l in 0..LANES {
        rng.set_lane(l, &Xoshiro::from_run(2026, l as u64));
    }
    let mut normals = LaneNormals::new(rng);
    let (mut out, mut sum) = ([0.0; LANES], [0.0; LANES]);
    for _ in 0..count {
        normals.fill(&mut out);
        for l in 0..LANES {
            sum[l] += out[l];
        }
    }
    sum
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sum_normals_avx2(count: usize) -> Lanes {
    sum_normals(count)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
unsafe fn sum_normals_avx512(count: usize) -> Lanes {
    sum_normals(count)
}

#[divan::bench(args = Isa::available())]
fn normals(bencher: divan::Bencher, isa: Isa) {
    const ROUNDS: usize = 10_000;
    bencher
        .counter(ItemsCount::new(LANES * ROUNDS))
        .bench_local(|| match isa {
            Isa::Portable => sum_normals(divan::black_box(ROUNDS)),
            // SAFETY: `Isa::available` lists only paths whose features this CPU has.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => unsafe { sum_normals_avx2(divan::black_box(ROUNDS)) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { sum_normals_avx512(divan::black_box(ROUNDS)) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the portable path runs off x86-64"),
        });
}

fn main() {
    divan::main();
}
