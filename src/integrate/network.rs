//! The network kernel: whole-brain networks of MPR nodes coupled through a connectome with
//! conduction delays, a batch of runs in SIMD lanes.
//!
//! Lanes are runs: the [`NET_LANES`] runs of a batch share the network's [`Wiring`] (its
//! edges, weights and delays in steps, which depend on the step and the conduction speed
//! only). The nodes are packed [`NODES_PER_GROUP`] to a lane group of the single-node
//! kernel: group `g` holds [`LANES`] slots, slot `q * NET_LANES + l` being node
//! `NODES_PER_GROUP * g + q` of run `l`. So a node's step, its statistics and its divergence
//! check are the single-node kernel's own code, and a network of one node with `k = 0`
//! gives the single-node results bit for bit.
//!
//! Per step n (state at t = n dt to t = (n + 1) dt):
//! 1. every node's coupling from the state at the step's start: diffusive
//!    `k sum_j W_ij (r_j(n - d_ij) - r_i(n))` or additive `k sum_j W_ij r_j(n - d_ij)`, one
//!    lane-vectorised sum over the node's incoming edges, the delayed rates read from a ring
//!    buffer of the last `max d + 1` steps' rates (before t = 0 each node's history value);
//! 2. every group's step with the coupling added to the rate input and held over the step
//!    (every stage of every method), as brainmass's `Network` does;
//! 3. the new rates go into the ring; the mean rate over the nodes and, every
//!    `fc_stride` steps, the sums for functional connectivity are updated.
//!
//! Noise: each node slot has its own stream (the caller seeds node `i` of run `r` with the
//! run's stream jumped `i` times), drawn in the single-node order (white r, white v, OU r,
//! OU v).

use super::math::{Arith, Fused, Unfused};
use super::moments::Moments;
use super::{
    Batch, BatchResult, CHUNK, Isa, LANES, LaneNormals, LaneState, Lanes, Method, POLL_STEPS,
    Schedule, Scheme, StopToken, Stopped, advance, record,
};
use super::{Dopri5, Euler, ExpEuler, Heun, Rk4};

/// Runs per network batch: one AVX-512 vector. Fewer lanes than the single-node kernel
/// because the node loop gives the independent work, and the ring buffer of past rates grows
/// with the lanes.
pub const NET_LANES: usize = 8;

/// Nodes per lane group of the single-node kernel.
pub const NODES_PER_GROUP: usize = LANES / NET_LANES;

/// One value per run of a network batch.
pub type NetLanes = [f64; NET_LANES];

pub use crate::model::Coupling;

/// The edges of a network at one step size and conduction speed: what the runs of a batch
/// share.
#[derive(Debug, Clone, PartialEq)]
pub struct Wiring {
    nodes: usize,
    /// The edges into node `i` are `offsets[i]..offsets[i + 1]`.
    offsets: Vec<usize>,
    sources: Vec<usize>,
    weights: Vec<f64>,
    delay_steps: Vec<usize>,
    coupling: Coupling,
    /// Ring slots: the longest delay in steps, plus one.
    history_len: usize,
    /// Sum of the weights into each node (the diffusive term of the blocked form).
    in_strength: Vec<f64>,
    /// Steps whose delayed sums are read together: [`BLOCK`], or 1 (step by step) when
    /// some delay is shorter.
    block: usize,
}

/// Steps whose delayed sums are read in one pass when every delay is at least this long:
/// the delayed rates of the next `BLOCK` steps are then all known, and each edge reads
/// `BLOCK` consecutive slots of its source's history at once (a sequential stream the
/// hardware prefetches, summed in registers) instead of one scattered line per step. The
/// ring keeps a copy of its first `BLOCK` slots after its end, so a block never wraps.
/// Measured on a 76-node network with 1,717 edges and delays of 2-30 ms (ring 14.6 MB):
/// 7x faster than step by step.
const BLOCK: usize = 16;

impl Wiring {
    /// A network of `incoming.len()` nodes; `incoming[i]` lists the edges into node `i` as
    /// `(source, weight, delay in steps)`.
    pub fn new(coupling: Coupling, incoming: &[Vec<(usize, f64, usize)>]) -> Wiring {
        let nodes = incoming.len();
        let mut w = Wiring {
            nodes,
            offsets: vec![0],
            sources: Vec::new(),
            weights: Vec::new(),
            delay_steps: Vec::new(),
            coupling,
            history_len: 1,
            in_strength: Vec::with_capacity(nodes),
            block: 1,
        };
        let mut shortest = usize::MAX;
        for edges in incoming {
            for &(source, weight, delay) in edges {
                assert!(source < nodes, "edge from node {source} of {nodes}");
                w.sources.push(source);
                w.weights.push(weight);
                w.delay_steps.push(delay);
                w.history_len = w.history_len.max(delay + 1);
                shortest = shortest.min(delay);
            }
            w.offsets.push(w.sources.len());
            w.in_strength.push(edges.iter().map(|e| e.1).sum());
        }
        w.block = if shortest >= BLOCK { BLOCK } else { 1 };
        w
    }

    /// Nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Edges.
    pub fn edges(&self) -> usize {
        self.sources.len()
    }

    /// Lane groups of [`NODES_PER_GROUP`] nodes (the last one padded).
    pub fn groups(&self) -> usize {
        self.nodes.div_ceil(NODES_PER_GROUP)
    }

    /// Steps of past rates the ring buffer holds: the longest delay plus one.
    pub fn history_len(&self) -> usize {
        self.history_len
    }

    /// Slots per node in the ring: the history and the copy of its first [`BLOCK`] slots.
    fn ring_stride(&self) -> usize {
        self.history_len + BLOCK
    }

    /// Bytes a batch's kernel holds while it runs (see [`Wiring::bytes_for`]).
    pub fn batch_bytes(&self, fc: bool) -> usize {
        Wiring::bytes_for(self.nodes, self.history_len, fc)
    }

    /// Bytes the kernel holds for a batch of a network of `nodes` nodes whose ring keeps
    /// `history_len` steps: the ring buffer of past rates, the node states and statistics,
    /// and the FC sums when `fc`; traces not included.
    pub fn bytes_for(nodes: usize, history_len: usize, fc: bool) -> usize {
        let groups = nodes.div_ceil(NODES_PER_GROUP);
        let ring = (history_len + BLOCK) * nodes * NET_LANES * 8;
        let state = groups
            * (std::mem::size_of::<LaneState>()
                + std::mem::size_of::<Batch>()
                + std::mem::size_of::<LaneNormals>()
                + 6 * std::mem::size_of::<Lanes>());
        let fc = if fc {
            (nodes * (nodes + 1) / 2 + 3 * nodes) * NET_LANES * 8
        } else {
            0
        };
        ring + state + fc
    }
}

/// What the runs of a network batch share besides the wiring.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetSchedule {
    /// Step, steps, statistics start, trace stride and white noise, as for single nodes.
    pub base: Schedule,
    /// Sample the rates for functional connectivity every this many steps, from
    /// `base.first_stat_step` on; 0 computes no FC.
    pub fc_stride: u64,
}

/// Everything that differs between the runs and nodes of a network batch.
#[derive(Debug, Clone)]
pub struct NetBatch {
    /// Group `g`: the coefficients, initial states, inputs and streams of its slots.
    pub groups: Vec<Batch>,
    /// Each run's global coupling `k`.
    pub k: NetLanes,
    /// Each node's rate before t = 0 (kHz), node-major: `history[i][l]`.
    pub history: Vec<NetLanes>,
}

impl NetBatch {
    /// A batch of `groups` lane groups with every slot zero; fill every slot (padding
    /// nodes included) with [`NetBatch::set_node`].
    pub fn new(groups: usize) -> NetBatch {
        NetBatch {
            groups: vec![Batch::default(); groups],
            k: [0.0; NET_LANES],
            history: Vec::new(),
        }
    }

    /// Sets node `i` of run `l`: its parameters and white-noise sigmas (kHz/sqrt(ms),
    /// 1/sqrt(ms)), initial state (kHz, v) and stream. Nodes past the network's last fill
    /// the last group; they are integrated but nothing couples to them and their results
    /// are not read: give them any node's values.
    pub fn set_node(&mut self, i: usize, l: usize, node: &NodeInit, dt: f64) {
        let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
        let slot = q * NET_LANES + l;
        let b = &mut self.groups[g];
        b.coef
            .set_lane(slot, &node.params, node.sigma[0], node.sigma[1], dt);
        b.r0[slot] = node.r0_khz;
        b.v0[slot] = node.v0;
        b.rng.set_lane(slot, &node.stream);
    }
}

/// What [`NetBatch::set_node`] sets for one node of one run.
#[derive(Debug, Clone, Copy)]
pub struct NodeInit {
    /// The node's parameters.
    pub params: crate::model::NodeParams,
    /// White-noise sigmas on r (kHz/sqrt(ms)) and v (1/sqrt(ms)).
    pub sigma: [f64; 2],
    /// Initial rate, kHz.
    pub r0_khz: f64,
    /// Initial v.
    pub v0: f64,
    /// The node's stream, positioned after its initial-value draws.
    pub stream: super::Xoshiro,
}

/// Sums of the sampled rates for the Pearson correlation between every two nodes, per run,
/// shifted by the first sample (as the statistics are).
#[derive(Debug, Clone)]
pub struct FcSums {
    nodes: usize,
    /// Samples taken.
    pub count: u64,
    shift: Vec<NetLanes>,
    sum: Vec<NetLanes>,
    /// `sum (x_i - s_i)(x_j - s_j)` for `i <= j`, row by row of the upper triangle.
    cross: Vec<NetLanes>,
    /// The current sample minus the shift.
    dev: Vec<NetLanes>,
}

impl FcSums {
    fn new(nodes: usize) -> FcSums {
        FcSums {
            nodes,
            count: 0,
            shift: vec![[0.0; NET_LANES]; nodes],
            sum: vec![[0.0; NET_LANES]; nodes],
            cross: vec![[0.0; NET_LANES]; nodes * (nodes + 1) / 2],
            dev: vec![[0.0; NET_LANES]; nodes],
        }
    }

    /// Takes one sample: node `i`'s rates are `rates[i * NET_LANES..][..NET_LANES]`.
    #[inline(always)]
    fn add<A: Arith>(&mut self, rates: &[f64]) {
        let first = self.count == 0;
        self.count += 1;
        let d = &mut self.dev;
        for (i, di) in d.iter_mut().enumerate() {
            let x = &rates[i * NET_LANES..][..NET_LANES];
            if first {
                self.shift[i].copy_from_slice(x);
            }
            for l in 0..NET_LANES {
                di[l] = x[l] - self.shift[i][l];
                self.sum[i][l] += di[l];
            }
        }
        let mut p = 0;
        for i in 0..self.nodes {
            for j in i..self.nodes {
                let c = &mut self.cross[p];
                for l in 0..NET_LANES {
                    c[l] = A::mul_add(d[i][l], d[j][l], c[l]);
                }
                p += 1;
            }
        }
    }

    /// Run `l`'s functional connectivity: the Pearson correlation of the sampled rates of
    /// nodes `i < j`, row by row of the upper triangle (`(0,1), (0,2), ..., (1,2), ...`). NaN
    /// for a pair with a node whose sampled rate did not vary, or with fewer than 2 samples.
    pub fn correlations(&self, l: usize) -> Vec<f64> {
        let n = self.count as f64;
        // Index of (i, j), i <= j, in the upper triangle with the diagonal: rows of
        // nodes, nodes - 1, ... entries.
        let at = |i: usize, j: usize| i * self.nodes - i * i.saturating_sub(1) / 2 + (j - i);
        let mean = |i: usize| self.sum[i][l] / n;
        let cov = |i: usize, j: usize| self.cross[at(i, j)][l] / n - mean(i) * mean(j);
        let mut out = Vec::with_capacity(self.nodes * self.nodes.saturating_sub(1) / 2);
        for i in 0..self.nodes {
            for j in i + 1..self.nodes {
                let var = cov(i, i) * cov(j, j);
                out.push(if self.count < 2 || var <= 0.0 {
                    f64::NAN
                } else {
                    (cov(i, j) / var.sqrt()).clamp(-1.0, 1.0)
                });
            }
        }
        out
    }
}

/// What a network batch produces besides traces.
#[derive(Debug, Clone)]
pub struct NetResult {
    /// Per group: each node slot's statistics, final state and steps before divergence.
    pub groups: Vec<BatchResult>,
    /// Statistics of the mean rate over the nodes (kHz), from `first_stat_step` on.
    pub mean_rate: Moments<NET_LANES>,
    /// Statistics of the mean v over the nodes, from `first_stat_step` on.
    pub mean_v: Moments<NET_LANES>,
    /// The mean rate over the nodes (kHz) after the last step.
    pub final_mean_rate: NetLanes,
    /// The mean v over the nodes after the last step.
    pub final_mean_v: NetLanes,
    /// The FC sums, when the schedule asks for them.
    pub fc: Option<FcSums>,
}

impl NetResult {
    /// Steps run `l` stayed finite in every node (see [`BatchResult::finite_steps`]).
    pub fn finite_steps(&self, nodes: usize, l: usize) -> u64 {
        (0..nodes)
            .map(|i| {
                let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
                self.groups[g].finite_steps[q * NET_LANES + l]
            })
            .min()
            .unwrap_or(u64::MAX)
    }
}

/// Integrates one network batch with `method`. `trace` receives `schedule.base.trace_rows()`
/// rows, each, group by group, the group's r slots then its v slots (kernel units); it is
/// cleared first. Returns [`Stopped`] within [`POLL_STEPS`] steps of a request on `stop`.
pub fn integrate_network(
    isa: Isa,
    method: Method,
    schedule: &NetSchedule,
    wiring: &Wiring,
    batch: &NetBatch,
    trace: &mut Vec<f64>,
    stop: &StopToken,
) -> Result<NetResult, Stopped> {
    assert_eq!(
        batch.groups.len(),
        wiring.groups(),
        "one batch group per lane group"
    );
    assert_eq!(batch.history.len(), wiring.nodes(), "one history per node");
    trace.clear();
    trace.reserve(schedule.base.trace_rows() * 2 * LANES * wiring.groups());
    let args = (schedule, wiring, batch, trace, stop);
    match method {
        Method::ExpEuler => dispatch::<ExpEuler>(isa, args),
        Method::Euler => dispatch::<Euler>(isa, args),
        Method::Heun | Method::Rk2 => dispatch::<Heun>(isa, args),
        Method::Rk4 => dispatch::<Rk4>(isa, args),
        Method::Dopri5 => dispatch::<Dopri5>(isa, args),
        Method::Dop853 => unreachable!("the spec refuses dop853 without adaptive steps"),
    }
}

type Args<'a> = (
    &'a NetSchedule,
    &'a Wiring,
    &'a NetBatch,
    &'a mut Vec<f64>,
    &'a StopToken,
);

fn dispatch<S: Scheme>(
    isa: Isa,
    (schedule, wiring, batch, trace, stop): Args,
) -> Result<NetResult, Stopped> {
    match isa {
        Isa::Avx512 => avx512::run::<S>(schedule, wiring, batch, trace, stop),
        Isa::Avx2Fma => avx2::run::<S>(schedule, wiring, batch, trace, stop),
        Isa::Portable => net_kernel::<S, Unfused, { super::PORTABLE_GROUP }>(
            schedule, wiring, batch, trace, stop,
        ),
    }
}

isa_entries!(net_kernel(
    schedule: &NetSchedule,
    wiring: &Wiring,
    batch: &NetBatch,
    trace: &mut Vec<f64>,
    stop: &StopToken
) -> Result<NetResult, Stopped>);

/// A zeroed buffer of `n` values for the ring of past rates. Each step reads one cache
/// line per edge from all over it: with 4 KiB pages a ring of more than a few MB misses the
/// TLB on most reads (measured: a 14.6 MB ring ran 2.4x slower than a 4.9 MB one), so on
/// Linux the buffer asks for transparent huge pages (a hint the kernel may ignore).
fn history_buffer(n: usize) -> Vec<f64> {
    let ring = vec![0.0; n];
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = ring.as_ptr() as usize;
        let end = start + n * std::mem::size_of::<f64>();
        // The whole pages inside the buffer, not yet touched (calloc's fresh mapping).
        let (lo, hi) = (start.div_ceil(PAGE) * PAGE, end / PAGE * PAGE);
        if hi > lo {
            // SAFETY: [lo, hi) lies inside the buffer's allocation; MADV_HUGEPAGE changes
            // how pages are backed, never their contents.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
    ring
}

/// Partial sums over a node's edges: independent chains, so that the FMA latency does not
/// serialise a node's edges (one chain took ~4 cycles per edge).
const EDGE_CHAINS: usize = 4;

/// Writes every node's coupling into `coupling` (group-packed slots): the rates at the
/// step's start are `current` (node-major, [`NET_LANES`] per node), the delayed ones are
/// read from `ring` (node-major: node `j`'s rate at slot `s` is
/// `ring[(j * stride + s) * NET_LANES..]`, so an edge reads consecutive memory from step to
/// step), `now` being the slot of the step's start.
#[inline(always)]
fn couple<A: Arith, const DIFFUSIVE: bool>(
    wiring: &Wiring,
    k: &NetLanes,
    ring: &[f64],
    current: &[f64],
    now: usize,
    coupling: &mut [Lanes],
) {
    let len = wiring.history_len;
    for i in 0..wiring.nodes {
        let r_i: &NetLanes = current[i * NET_LANES..][..NET_LANES]
            .try_into()
            .expect("a node's lanes");
        let mut acc = [[0.0; NET_LANES]; EDGE_CHAINS];
        let edges = wiring.offsets[i]..wiring.offsets[i + 1];
        for (n, e) in edges.enumerate() {
            let d = wiring.delay_steps[e];
            let slot = if now >= d { now - d } else { now + len - d };
            let base = wiring.sources[e] * wiring.ring_stride();
            let x = &ring[(base + slot) * NET_LANES..][..NET_LANES];
            let w = wiring.weights[e];
            let acc = &mut acc[n % EDGE_CHAINS];
            for l in 0..NET_LANES {
                // brainmass's form, W (x - r_i) per edge: identical nodes in step give an
                // exact zero.
                let x = if DIFFUSIVE { x[l] - r_i[l] } else { x[l] };
                acc[l] = A::mul_add(w, x, acc[l]);
            }
        }
        let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
        for l in 0..NET_LANES {
            let sum = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
            coupling[g][q * NET_LANES + l] = k[l] * sum;
        }
    }
}

/// Writes the delayed sums `sum_j W_ij r_j(n + s - d_ij)` of every node for the steps
/// `n + s`, `s < BLOCK`, into `delayed[i * BLOCK + s]`; every delay is at least `BLOCK`
/// steps, so all of them are in the ring at step `n` (`now` = its slot).
#[inline(always)]
fn delayed_sums<A: Arith>(wiring: &Wiring, ring: &[f64], now: usize, delayed: &mut [NetLanes]) {
    let len = wiring.history_len;
    let stride = wiring.ring_stride();
    for i in 0..wiring.nodes {
        let mut sums = [[0.0; NET_LANES]; BLOCK];
        for e in wiring.offsets[i]..wiring.offsets[i + 1] {
            let d = wiring.delay_steps[e];
            let first = if now >= d { now - d } else { now + len - d };
            // first + BLOCK <= len + BLOCK: the copied slots past the end cover the wrap.
            let x = &ring[(wiring.sources[e] * stride + first) * NET_LANES..][..BLOCK * NET_LANES];
            let w = wiring.weights[e];
            for (s, sum) in sums.iter_mut().enumerate() {
                for l in 0..NET_LANES {
                    sum[l] = A::mul_add(w, x[s * NET_LANES + l], sum[l]);
                }
            }
        }
        delayed[i * BLOCK..][..BLOCK].copy_from_slice(&sums);
    }
}

/// The coupling of every node at step `n + s` from its delayed sum (see [`delayed_sums`]):
/// `k (sum_j W_ij x_j - r_i sum_j W_ij)` (diffusive) or `k sum_j W_ij x_j`.
#[inline(always)]
fn couple_blocked<const DIFFUSIVE: bool>(
    wiring: &Wiring,
    k: &NetLanes,
    delayed: &[NetLanes],
    s: usize,
    current: &[f64],
    coupling: &mut [Lanes],
) {
    for i in 0..wiring.nodes {
        let sum = &delayed[i * wiring.block + s];
        let r_i = &current[i * NET_LANES..][..NET_LANES];
        let strength = wiring.in_strength[i];
        let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
        for l in 0..NET_LANES {
            let x = if DIFFUSIVE {
                sum[l] - strength * r_i[l]
            } else {
                sum[l]
            };
            coupling[g][q * NET_LANES + l] = k[l] * x;
        }
    }
}

/// The mean over the nodes of r and of v at chunk position `j`, per run.
#[inline(always)]
fn node_means(
    states: &[LaneState],
    j: usize,
    nodes: usize,
    inv_nodes: f64,
) -> (NetLanes, NetLanes) {
    let mut sums = ([0.0; NET_LANES], [0.0; NET_LANES]);
    for i in 0..nodes {
        let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
        for l in 0..NET_LANES {
            sums.0[l] += states[g].r[j][q * NET_LANES + l];
            sums.1[l] += states[g].v[j][q * NET_LANES + l];
        }
    }
    (sums.0.map(|x| x * inv_nodes), sums.1.map(|x| x * inv_nodes))
}

/// Pearson correlation of two equally long samples (NaN if either is constant or any
/// value is NaN): how well a simulated FC's upper triangle matches a target's.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "samples of one length");
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa > 0.0 && sbb > 0.0 {
        (sab / (saa * sbb).sqrt()).clamp(-1.0, 1.0)
    } else {
        f64::NAN
    }
}

/// The one network kernel body, inlined into each ISA's entry point.
#[inline(always)]
fn net_kernel<S: Scheme, A: Arith, const GROUP: usize>(
    schedule: &NetSchedule,
    wiring: &Wiring,
    batch: &NetBatch,
    trace: &mut Vec<f64>,
    stop: &StopToken,
) -> Result<NetResult, Stopped> {
    let Schedule {
        dt,
        steps,
        first_stat_step,
        trace_stride,
        white,
    } = schedule.base;
    let groups = wiring.groups();
    let nodes = wiring.nodes;
    let len = wiring.history_len;
    let width = groups * LANES;
    // The rates of every node slot at the current step, group-packed (= node-major).
    let mut current = vec![0.0; width];
    for (g, b) in batch.groups.iter().enumerate() {
        current[g * LANES..][..LANES].copy_from_slice(&b.r0);
    }
    // Node j's slot s holds its rate at the steps n with n mod len = s; before t = 0, its
    // history; at slot 0, its initial rate.
    let stride = wiring.ring_stride();
    let mut ring = history_buffer(nodes * stride * NET_LANES);
    for (i, node) in ring.chunks_exact_mut(stride * NET_LANES).enumerate() {
        for slot in node.chunks_exact_mut(NET_LANES) {
            slot.copy_from_slice(&batch.history[i]);
        }
        let r0 = &current[i * NET_LANES..][..NET_LANES];
        node[..NET_LANES].copy_from_slice(r0);
        node[len * NET_LANES..][..NET_LANES].copy_from_slice(r0);
    }
    let mut states: Vec<LaneState> = batch
        .groups
        .iter()
        .map(|b| LaneState {
            r: [b.r0; CHUNK + 1],
            v: [b.v0; CHUNK + 1],
            alive: [1; LANES],
            finite: [0; LANES],
            mr: Moments::starting_at(&b.r0),
            mv: Moments::starting_at(&b.v0),
        })
        .collect();
    let mut normals: Vec<LaneNormals> = batch
        .groups
        .iter()
        .map(|b| LaneNormals::new(b.rng))
        .collect();
    let driven = batch.groups.iter().any(|b| b.drive.is_active());
    let mut ou_state = vec![[[0.0; LANES]; 2]; groups];
    let mut coupling = vec![[0.0; LANES]; groups];
    let mut delayed = vec![[0.0; NET_LANES]; nodes * wiring.block];
    debug_assert!(wiring.block == 1 || wiring.block == BLOCK);
    let mut fast: Vec<bool> = (0..groups)
        .map(|g| {
            let b = &batch.groups[g];
            (0..LANES).all(|l| S::in_fast_range(&b.coef, l, b.v0[l]))
        })
        .collect();
    let mut mean_rate = Moments::starting_at(&[0.0; NET_LANES]);
    let mut mean_v = Moments::starting_at(&[0.0; NET_LANES]);
    let mut fc = (schedule.fc_stride > 0).then(|| FcSums::new(nodes));
    let inv_nodes = 1.0 / nodes as f64;
    let record_all = |trace: &mut Vec<f64>, states: &[LaneState], j: usize| {
        for st in states {
            record(trace, &st.r[j], &st.v[j]);
        }
    };
    if trace_stride > 0 {
        record_all(trace, &states, 0);
    }
    let mut until_trace = trace_stride;
    let mut white_xi = [[0.0; LANES]; 2];
    let mut ou_xi = [0.0; LANES];
    let mut j = 0;
    for k in 1..=steps {
        let now = ((k - 1) % len as u64) as usize;
        let next = (k % len as u64) as usize;
        let diffusive = wiring.coupling == Coupling::Diffusive;
        if wiring.block > 1 {
            let s = ((k - 1) % wiring.block as u64) as usize;
            if s == 0 {
                delayed_sums::<A>(wiring, &ring, now, &mut delayed);
            }
            if diffusive {
                couple_blocked::<true>(wiring, &batch.k, &delayed, s, &current, &mut coupling);
            } else {
                couple_blocked::<false>(wiring, &batch.k, &delayed, s, &current, &mut coupling);
            }
        } else if diffusive {
            couple::<A, true>(wiring, &batch.k, &ring, &current, now, &mut coupling)
        } else {
            couple::<A, false>(wiring, &batch.k, &ring, &current, now, &mut coupling)
        }
        for g in 0..groups {
            let b = &batch.groups[g];
            let mut inputs = [coupling[g], [0.0; LANES]];
            if driven {
                let mut drive = [[0.0; LANES]; 2];
                b.drive.eval((k - 1) as f64 * dt, &ou_state[g], &mut drive);
                for l in 0..LANES {
                    inputs[0][l] += drive[0][l];
                }
                inputs[1] = drive[1];
            }
            for x in 0..2 {
                if white[x] {
                    normals[g].fill(&mut white_xi[x]);
                }
            }
            let st = &mut states[g];
            let (done, after) = st.r.split_at_mut(j + 1);
            let (done_v, after_v) = st.v.split_at_mut(j + 1);
            let (from, to) = ((&done[j], &done_v[j]), (&mut after[0], &mut after_v[0]));
            fast[g] = if fast[g] {
                advance::<S, A, true, false>(&b.coef, dt, &inputs, &white_xi, from, to)
            } else {
                advance::<S, A, false, false>(&b.coef, dt, &inputs, &white_xi, from, to)
            };
            current[g * LANES..][..LANES].copy_from_slice(&st.r[j + 1]);
            for x in 0..2 {
                if let Some(ou) = &b.drive.ou[x] {
                    normals[g].fill(&mut ou_xi);
                    ou.advance(&mut ou_state[g][x], &ou_xi);
                }
            }
        }
        for (i, r) in current.chunks_exact(NET_LANES).take(nodes).enumerate() {
            ring[(i * stride + next) * NET_LANES..][..NET_LANES].copy_from_slice(r);
            if next < BLOCK {
                ring[(i * stride + next + len) * NET_LANES..][..NET_LANES].copy_from_slice(r);
            }
        }
        j += 1;
        if k >= first_stat_step {
            let rates = &current[..nodes * NET_LANES];
            let (mean_r, mean_v_now) = node_means(&states, j, nodes, inv_nodes);
            if k == first_stat_step {
                // Shifted by the first sample, as the single-node statistics are.
                mean_rate = Moments::starting_at(&mean_r);
                mean_v = Moments::starting_at(&mean_v_now);
            }
            mean_rate.add_samples::<A, NET_LANES>(std::slice::from_ref(&mean_r));
            mean_v.add_samples::<A, NET_LANES>(std::slice::from_ref(&mean_v_now));
            if let Some(fc) = &mut fc
                && (k - first_stat_step).is_multiple_of(schedule.fc_stride)
            {
                fc.add::<A>(rates);
            }
        }
        if trace_stride > 0 {
            until_trace -= 1;
            if until_trace == 0 {
                record_all(trace, &states, j);
                until_trace = trace_stride;
            }
        }
        if j == CHUNK || k == steps {
            for st in &mut states {
                st.close_chunk::<A, GROUP>(j, k + 1 - j as u64, first_stat_step);
            }
            j = 0;
            if k % POLL_STEPS == 0 {
                if stop.is_requested() {
                    return Err(Stopped);
                }
                // Stop early once every run has a diverged node: nothing left to compute.
                let run_alive = |l: usize| {
                    (0..nodes).all(|i| {
                        let (g, q) = (i / NODES_PER_GROUP, i % NODES_PER_GROUP);
                        states[g].alive[q * NET_LANES + l] == 1
                    })
                };
                if !(0..NET_LANES).any(run_alive) {
                    break;
                }
            }
        }
    }
    let (final_mean_rate, final_mean_v) = node_means(&states, 0, nodes, inv_nodes);
    Ok(NetResult {
        mean_v,
        final_mean_rate,
        final_mean_v,
        groups: states
            .iter()
            .map(|st| BatchResult {
                r: st.mr,
                v: st.mv,
                finite_steps: st.finite,
                r_final: st.r[0],
                v_final: st.v[0],
            })
            .collect(),
        mean_rate,
        fc,
    })
}
