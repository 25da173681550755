//! Network kernel throughput: one lane batch (8 runs) of a 76-node network with conduction
//! delays at dt = 0.01 ms, exp_euler, 2,000 steps, per instruction-set path, deterministic
//! and with white noise on v (sigma 0.1). One item is one node-step of one run, so
//! ns per node-step = 1e9 / (items/s).
//!
//!     cargo bench --bench network
//!
//! The connectome: `sweeps/network/data/weights.txt` and `tract_lengths.txt` when
//! `python3 sweeps/network/fetch_connectome.py` has fetched them (a real human
//! connectome), else a synthetic one of 76 nodes with 30 % of the edges present and tract
//! lengths uniform in 10-150 mm (said on stderr). Speed 3 mm/ms. The `no-edges` cases run
//! the same nodes without any edge: the difference is the cost of the coupling.

use divan::counter::ItemsCount;
use mpr_sweep::integrate::network::{
    Coupling, NET_LANES, NODES_PER_GROUP, NetBatch, NetSchedule, NodeInit, Wiring,
    integrate_network,
};
use mpr_sweep::integrate::{Isa, Method, Schedule, StopToken, Xoshiro};
use mpr_sweep::model::NodeParams;
use mpr_sweep::network::files::read_matrix;
use mpr_sweep::network::{Connectome, delay_steps};

const STEPS: u64 = 2_000;
const DT_MS: f64 = 0.01;
const SPEED_MM_PER_MS: f64 = 3.0;

/// The fetched connectome, or the synthetic one.
fn connectome() -> Connectome {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sweeps/network/data");
    let w = read_matrix(format!("{dir}/weights.txt").as_ref());
    let l = read_matrix(format!("{dir}/tract_lengths.txt").as_ref());
    if let (Ok(w), Ok(l)) = (w, l) {
        eprintln!("network bench: the connectome in {dir}");
        return Connectome::new(&w, Some(&l)).expect("a valid connectome");
    }
    eprintln!("network bench: a synthetic 76-node connectome (fetch the real one first)");
    let n = 76;
    let mut rng = Xoshiro::from_run(76, 0);
    let mut w = vec![0.0; n * n];
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..i {
            let length = 10.0 + 140.0 * rng.uniform();
            l[i * n + j] = length;
            l[j * n + i] = length;
        }
        for j in 0..n {
            if i != j && rng.uniform() < 0.3 {
                w[i * n + j] = rng.uniform();
            }
        }
    }
    let matrix = |data| mpr_sweep::network::files::Matrix {
        rows: n,
        cols: n,
        data,
    };
    Connectome::new(&matrix(w), Some(&matrix(l))).expect("a valid connectome")
}

/// One benchmark configuration, shown as `isa[/white-v][/no-edges]`.
struct Case {
    isa: Isa,
    noise: bool,
    edges: bool,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let noise = if self.noise { "/white-v" } else { "" };
        let edges = if self.edges { "" } else { "/no-edges" };
        write!(f, "{}{noise}{edges}", self.isa.name())
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for isa in Isa::available() {
        for noise in [false, true] {
            for edges in [true, false] {
                out.push(Case { isa, noise, edges });
            }
        }
    }
    out
}

#[divan::bench(args = cases())]
fn network(bencher: divan::Bencher, case: &Case) {
    let c = connectome();
    let n = c.nodes();
    let incoming: Vec<Vec<(usize, f64, usize)>> = (0..n)
        .map(|i| {
            if !case.edges {
                return Vec::new();
            }
            c.incoming(i)
                .iter()
                .map(|e| {
                    let d = delay_steps(e.length_mm, SPEED_MM_PER_MS, DT_MS).expect("a delay");
                    (e.source as usize, e.weight, d as usize)
                })
                .collect()
        })
        .collect();
    let wiring = Wiring::new(Coupling::Diffusive, &incoming);
    let mut batch = NetBatch::new(wiring.groups());
    for l in 0..NET_LANES {
        let mut stream = Xoshiro::from_run(2026, l as u64);
        for i in 0..wiring.groups() * NODES_PER_GROUP {
            if i > 0 && i < n {
                stream.jump();
            }
            let node = NodeInit {
                params: NodeParams::from_user(1.0, -5.0 + 0.1 * l as f64, 15.0, 1.0, 0.0, 0.0),
                sigma: [0.0, if case.noise { 0.1 } else { 0.0 }],
                r0_khz: 0.1,
                v0: -2.0,
                stream,
            };
            batch.set_node(i, l, &node, DT_MS);
        }
    }
    batch.k = [0.05; NET_LANES];
    batch.history = vec![[0.1; NET_LANES]; n];
    let schedule = NetSchedule {
        base: Schedule {
            dt: DT_MS,
            steps: STEPS,
            first_stat_step: STEPS / 2,
            trace_stride: 0,
            white: [false, case.noise],
        },
        fc_stride: 100,
    };
    let stop = StopToken::new();
    bencher
        .counter(ItemsCount::new(STEPS as usize * n * NET_LANES))
        .with_inputs(Vec::new)
        .bench_local_refs(|trace| {
            integrate_network(
                case.isa,
                Method::ExpEuler,
                &schedule,
                &wiring,
                &batch,
                trace,
                &stop,
            )
            .expect("not stopped")
        });
}

fn main() {
    divan::main();
}
