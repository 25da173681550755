//! The Dormand–Prince 8(5,3) pair (`method: dop853`) as an adaptive [`Pair`]: its tableau,
//! one trial step of a lane with the stage-weight averages, its error norm and its dense
//! output for traces (docs/adaptive.md).
//!
//! The method is Dormand and Prince's explicit Runge–Kutta pair of order 8 as Hairer,
//! Nørsett and Wanner's code DOP853 uses it (Solving Ordinary Differential Equations I,
//! Sec. II; dop853.f): twelve stages give the eighth-order solution `y1`, the thirteenth
//! stage `f(t + h, y1)` is the next step's first (FSAL), two embedded combinations of the
//! stages, of fifth and of third order, give the error estimate, and three more stages give
//! a continuous extension of order 7. The coefficients are the ones scipy ships
//! (`scipy/integrate/_ivp/dop853_coefficients.py`, those of dop853.f), with scipy's decimal
//! digits, so that every constant here is the f64 scipy's `DOP853` uses; the step and the
//! dense output follow scipy's `rk_step`, `DOP853._dense_output_impl` and
//! `Dop853DenseOutput`.
//!
//! Like the 5(4) pair's step (`dopri5.rs`), a step is one lane's scalar code, generic over the
//! path's [`Arith`]: every sum is an [`Arith::mul_add`] chain in a fixed order, so a path's
//! results are the same bits on every call, and a zero entry of the tableau is a
//! compile-time constant whose term is dropped (`if X != 0.0` on the constant). Per step and
//! variable that leaves 50 multiply-adds for the stage values of `k_1 .. k_11`, 8 each for
//! the solution and the two estimates (which use the same stages as the solution: `k_1 ..
//! k_4` only feed later stages), and 8 stage values in the averages; a step evaluates 12
//! right-hand sides (`k_1 .. k_11` and the FSAL stage, which is the next step's `k_0`). The
//! dense output costs 3 more right-hand sides, only where a trace row needs it.
//!
//! The error estimates scale as `e5 = O(h^6)` and `e3 = O(h^4)` (the differences of the
//! eighth-order solution and the embedded fifth- and third-order ones). scipy's error norm is
//! `sum e5^2 / sqrt(n (sum e5^2 + 0.01 sum e3^2))` over the `n` scaled components, of
//! size `e5^2 / (0.1 e3) = O(h^8)` for small steps: a controller of order 8 (scipy's
//! `error_estimator_order` 7).

// The coefficients keep scipy's digits (beyond f64's), so that they can be compared with
// its source line by line.
#![allow(clippy::excessive_precision)]

use super::super::math::Arith;
use super::super::schemes::rhs;
use super::super::{Coefficients, Drive};
use super::{Dense, Pair, PairStep, add_to_averages, stage_input};

/// The Dormand–Prince 8(5,3) pair.
pub struct Dop853;

impl Pair for Dop853 {
    // Gustafsson's PI controller scaled to a norm of order 8: fac = 0.9 err^-0.0875
    // err_prev^0.05.
    const ALPHA: f64 = 0.7 / 8.0;
    const BETA: f64 = 0.4 / 8.0;
    type Dense = Dop853Dense;

    #[inline(always)]
    fn step<A: Arith>(
        c: &Coefficients,
        drive: Option<&Drive>,
        l: usize,
        th: (f64, f64),
        y: (f64, f64),
        k1: (f64, f64),
        shift: (f64, f64),
    ) -> PairStep {
        let s = dop853_step::<A>(c, drive, l, th, y, k1, shift);
        PairStep {
            k_last: (s.kr[12], s.kv[12]),
            r1: s.r1,
            v1: s.v1,
            err: [s.e5.0, s.e5.1, s.e3.0, s.e3.1],
            avg_r: s.avg_r,
            avg_v: s.avg_v,
        }
    }

    /// scipy's (and dop853.f's) norm, squared: with `E5 = sum (e5/sc)^2` and
    /// `E3 = sum (e3/sc)^2` over r and v, `err^2 = E5^2 / (2 (E5 + 0.01 E3))`, written
    /// over the common denominator `(sc_r sc_v)^2` so that it takes one division; 0 where
    /// both estimates are 0, NaN where either is (a rejection).
    #[inline(always)]
    fn err_sq<A: Arith>(err: &[f64; 4], sc_r: f64, sc_v: f64) -> f64 {
        let (r5, v5) = (err[0] * sc_v, err[1] * sc_r);
        let (r3, v3) = (err[2] * sc_v, err[3] * sc_r);
        let n5 = A::mul_add(r5, r5, v5 * v5);
        let n3 = A::mul_add(r3, r3, v3 * v3);
        let sc = sc_r * sc_v;
        let den = 2.0 * (sc * sc) * A::mul_add(0.01, n3, n5);
        if den == 0.0 { 0.0 } else { n5 * n5 / den }
    }

    fn dense<A: Arith>(
        c: &Coefficients,
        drive: Option<&Drive>,
        l: usize,
        th: (f64, f64),
        y: (f64, f64),
        k1: (f64, f64),
    ) -> Dop853Dense {
        // The same call as the kernel's: the same stages, bit for bit.
        let s = dop853_step::<A>(c, drive, l, th, y, k1, (0.0, 0.0));
        let (r, v) = dop853_dense_coefficients::<A>(c, drive, l, th, y, (s.r1, s.v1), &s.kr, &s.kv);
        Dop853Dense { r, v }
    }
}

/// The continuous extension of one step: [`dop853_dense`]'s coefficients of r and v.
pub struct Dop853Dense {
    r: [f64; 8],
    v: [f64; 8],
}

impl Dense for Dop853Dense {
    #[inline(always)]
    fn at<A: Arith>(&self, theta: f64) -> (f64, f64) {
        (
            dop853_dense::<A>(&self.r, theta),
            dop853_dense::<A>(&self.v, theta),
        )
    }
}

/// Stage times `c_i`: the 12 stages, then the FSAL stage (`t + h`), then the 3 extra stages
/// of the dense output.
const DOP853_C: [f64; 16] = [
    0.0,
    0.526001519587677318785587544488e-01,
    0.789002279381515978178381316732e-01,
    0.118350341907227396726757197510,
    0.281649658092772603273242802490,
    0.333333333333333333333333333333,
    0.25,
    0.307692307692307692307692307692,
    0.651282051282051282051282051282,
    0.6,
    0.857142857142857142857142857142,
    1.0,
    1.0,
    0.1,
    0.2,
    0.777777777777777777777777777778,
];

/// The stages' coefficients, rows as scipy's `A`: stage `i` is evaluated at
/// `y + h sum_{j < i} A[i][j] k_j` (row 0 is empty; row 12, the FSAL stage's, is
/// [`DOP853_B`]; rows 13 to 15 are the dense output's extra stages, which use the FSAL stage
/// and each other).
const DOP853_A: [[f64; 15]; 16] = [
    [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ],
    [
        5.26001519587677318785587544488e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        1.97250569845378994544595329183e-2,
        5.91751709536136983633785987549e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        2.95875854768068491816892993775e-2,
        0.0,
        8.87627564304205475450678981324e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        2.41365134159266685502369798665e-1,
        0.0,
        -8.84549479328286085344864962717e-1,
        9.24834003261792003115737966543e-1,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        3.7037037037037037037037037037e-2,
        0.0,
        0.0,
        1.70828608729473871279604482173e-1,
        1.25467687566822425016691814123e-1,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        3.7109375e-2,
        0.0,
        0.0,
        1.70252211019544039314978060272e-1,
        6.02165389804559606850219397283e-2,
        -1.7578125e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        3.70920001185047927108779319836e-2,
        0.0,
        0.0,
        1.70383925712239993810214054705e-1,
        1.07262030446373284651809199168e-1,
        -1.53194377486244017527936158236e-2,
        8.27378916381402288758473766002e-3,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        6.24110958716075717114429577812e-1,
        0.0,
        0.0,
        -3.36089262944694129406857109825,
        -8.68219346841726006818189891453e-1,
        2.75920996994467083049415600797e1,
        2.01540675504778934086186788979e1,
        -4.34898841810699588477366255144e1,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        4.77662536438264365890433908527e-1,
        0.0,
        0.0,
        -2.48811461997166764192642586468,
        -5.90290826836842996371446475743e-1,
        2.12300514481811942347288949897e1,
        1.52792336328824235832596922938e1,
        -3.32882109689848629194453265587e1,
        -2.03312017085086261358222928593e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        -9.3714243008598732571704021658e-1,
        0.0,
        0.0,
        5.18637242884406370830023853209,
        1.09143734899672957818500254654,
        -8.14978701074692612513997267357,
        -1.85200656599969598641566180701e1,
        2.27394870993505042818970056734e1,
        2.49360555267965238987089396762,
        -3.0467644718982195003823669022,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        2.27331014751653820792359768449,
        0.0,
        0.0,
        -1.05344954667372501984066689879e1,
        -2.00087205822486249909675718444,
        -1.79589318631187989172765950534e1,
        2.79488845294199600508499808837e1,
        -2.85899827713502369474065508674,
        -8.87285693353062954433549289258,
        1.23605671757943030647266201528e1,
        6.43392746015763530355970484046e-1,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        DOP853_B[0],
        0.0,
        0.0,
        0.0,
        0.0,
        DOP853_B[5],
        DOP853_B[6],
        DOP853_B[7],
        DOP853_B[8],
        DOP853_B[9],
        DOP853_B[10],
        DOP853_B[11],
        0.0,
        0.0,
        0.0,
    ],
    [
        5.61675022830479523392909219681e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        2.53500210216624811088794765333e-1,
        -2.46239037470802489917441475441e-1,
        -1.24191423263816360469010140626e-1,
        1.5329179827876569731206322685e-1,
        8.20105229563468988491666602057e-3,
        7.56789766054569976138603589584e-3,
        -8.298e-3,
        0.0,
        0.0,
    ],
    [
        3.18346481635021405060768473261e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        2.83009096723667755288322961402e-2,
        5.35419883074385676223797384372e-2,
        -5.49237485713909884646569340306e-2,
        0.0,
        0.0,
        -1.08347328697249322858509316994e-4,
        3.82571090835658412954920192323e-4,
        -3.40465008687404560802977114492e-4,
        1.41312443674632500278074618366e-1,
        0.0,
    ],
    [
        -4.28896301583791923408573538692e-1,
        0.0,
        0.0,
        0.0,
        0.0,
        -4.69762141536116384314449447206,
        7.68342119606259904184240953878,
        4.06898981839711007970213554331,
        3.56727187455281109270669543021e-1,
        0.0,
        0.0,
        0.0,
        -1.39902416515901462129418009734e-3,
        2.9475147891527723389556272149,
        -9.15095847217987001081870187138,
    ],
];

/// The eighth-order weights of the stages `k_0 .. k_11`.
const DOP853_B: [f64; 12] = [
    5.42937341165687622380535766363e-2,
    0.0,
    0.0,
    0.0,
    0.0,
    4.45031289275240888144113950566,
    1.89151789931450038304281599044,
    -5.8012039600105847814672114227,
    3.1116436695781989440891606237e-1,
    -1.52160949662516078556178806805e-1,
    2.01365400804030348374776537501e-1,
    4.47106157277725905176885569043e-2,
];

/// The weights of the third-order error estimate over `k_0 .. k_12`: [`DOP853_B`] minus the
/// embedded third-order weights (`0.2440..`, `0.7338..` and `0.0220..` on `k_0`, `k_8`,
/// `k_11`), computed in f64 as scipy does. The FSAL stage `k_12` does not enter.
const DOP853_E3: [f64; 13] = [
    DOP853_B[0] - 0.244094488188976377952755905512,
    0.0,
    0.0,
    0.0,
    0.0,
    DOP853_B[5],
    DOP853_B[6],
    DOP853_B[7],
    DOP853_B[8] - 0.733846688281611857341361741547,
    DOP853_B[9],
    DOP853_B[10],
    DOP853_B[11] - 0.220588235294117647058823529412e-1,
    0.0,
];

/// The weights of the fifth-order error estimate over `k_0 .. k_12` (scipy's `E5`): the
/// difference of the eighth- and the embedded fifth-order weights. The FSAL stage `k_12`
/// does not enter.
const DOP853_E5: [f64; 13] = [
    0.1312004499419488073250102996e-1,
    0.0,
    0.0,
    0.0,
    0.0,
    -0.1225156446376204440720569753e+1,
    -0.4957589496572501915214079952,
    0.1664377182454986536961530415e+1,
    -0.3503288487499736816886487290,
    0.3341791187130174790297318841,
    0.8192320648511571246570742613e-1,
    -0.2235530786388629525884427845e-1,
    0.0,
];

/// The dense output's coefficients `F_3 .. F_6` over `k_0 .. k_15` (scipy's `D`): `F_{3+m} =
/// h sum_i D[m][i] k_i`.
const DOP853_D: [[f64; 16]; 4] = [
    [
        -0.84289382761090128651353491142e+1,
        0.0,
        0.0,
        0.0,
        0.0,
        0.56671495351937776962531783590,
        -0.30689499459498916912797304727e+1,
        0.23846676565120698287728149680e+1,
        0.21170345824450282767155149946e+1,
        -0.87139158377797299206789907490,
        0.22404374302607882758541771650e+1,
        0.63157877876946881815570249290,
        -0.88990336451333310820698117400e-1,
        0.18148505520854727256656404962e+2,
        -0.91946323924783554000451984436e+1,
        -0.44360363875948939664310572000e+1,
    ],
    [
        0.10427508642579134603413151009e+2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.24228349177525818288430175319e+3,
        0.16520045171727028198505394887e+3,
        -0.37454675472269020279518312152e+3,
        -0.22113666853125306036270938578e+2,
        0.77334326684722638389603898808e+1,
        -0.30674084731089398182061213626e+2,
        -0.93321305264302278729567221706e+1,
        0.15697238121770843886131091075e+2,
        -0.31139403219565177677282850411e+2,
        -0.93529243588444783865713862664e+1,
        0.35816841486394083752465898540e+2,
    ],
    [
        0.19985053242002433820987653617e+2,
        0.0,
        0.0,
        0.0,
        0.0,
        -0.38703730874935176555105901742e+3,
        -0.18917813819516756882830838328e+3,
        0.52780815920542364900561016686e+3,
        -0.11573902539959630126141871134e+2,
        0.68812326946963000169666922661e+1,
        -0.10006050966910838403183860980e+1,
        0.77771377980534432092869265740,
        -0.27782057523535084065932004339e+1,
        -0.60196695231264120758267380846e+2,
        0.84320405506677161018159903784e+2,
        0.11992291136182789328035130030e+2,
    ],
    [
        -0.25693933462703749003312586129e+2,
        0.0,
        0.0,
        0.0,
        0.0,
        -0.15418974869023643374053993627e+3,
        -0.23152937917604549567536039109e+3,
        0.35763911791061412378285349910e+3,
        0.93405324183624310003907691704e+2,
        -0.37458323136451633156875139351e+2,
        0.10409964950896230045147246184e+3,
        0.29840293426660503123344363579e+2,
        -0.43533456590011143754432175058e+2,
        0.96324553959188282948394950600e+2,
        -0.39177261675615439165231486172e+2,
        -0.14972683625798562581422125276e+3,
    ],
];

/// One DOP853 trial step of one lane (see [`dop853_step`]).
struct Dop853Step {
    /// The stages of r: `k_0 .. k_11`, then the FSAL stage `k_12 = f_r(t + h, r1, v1)`.
    pub kr: [f64; 13],
    /// The stages of v, as [`Dop853Step::kr`].
    pub kv: [f64; 13],
    /// The eighth-order solution's r (kHz).
    pub r1: f64,
    /// The eighth-order solution's v.
    pub v1: f64,
    /// `h sum_i E5_i k_i` of r and of v: the difference of the eighth- and the fifth-order
    /// solutions (scipy's `err5` times `h`), `O(h^6)`.
    pub e5: (f64, f64),
    /// `h sum_i E3_i k_i` of r and of v: the eighth- minus the third-order solution, `O(h^4)`.
    pub e3: (f64, f64),
    /// The step's averages of `r - shift_r` and `(r - shift_r)^2`: the stage values weighted
    /// by the eighth-order weights `b_i` (see [`dop853_step`]).
    pub avg_r: [f64; 2],
    /// The step's averages of `v - shift_v` and `(v - shift_v)^2`.
    pub avg_v: [f64; 2],
}

/// `sum_j w_j k_j` in the order of `j`; zero weights (compile-time constants) are dropped,
/// not multiplied by 0.
#[inline(always)]
fn weighted_sum<A: Arith, const N: usize>(w: &[f64; N], k: &[f64]) -> f64 {
    let mut s = 0.0;
    for j in 0..N {
        if w[j] != 0.0 {
            s = A::mul_add(w[j], k[j], s);
        }
    }
    s
}

/// Stage `i`'s value of one variable, `y + h sum_{j < i} A[i][j] k_j` (see [`DOP853_A`]).
#[inline(always)]
fn stage_value<A: Arith>(i: usize, h: f64, y: f64, k: &[f64]) -> f64 {
    A::mul_add(h, weighted_sum::<A, 15>(&DOP853_A[i], k), y)
}

/// One DOP853 step of lane `l` from `(r, v)` at `t` over `h` (ms), with the first stage
/// `k1 = f(t, r, v)` given (the previous step's FSAL stage): the stages, the eighth-order
/// solution, the two error estimates and the step's averages. An integral `z' = g(r, v)`
/// appended to the system would be advanced by `h sum_i b_i g(R_i, V_i)` over the stage
/// values `(R_i, V_i)`, to the method's eighth order (`z` feeds back into nothing, so its own
/// stages are never needed): that is the average of `g` here, for `g = x - shift` and
/// `(x - shift)^2`, with `(shift_r, shift_v)` the statistics chunk's shifts.
#[inline(always)]
fn dop853_step<A: Arith>(
    c: &Coefficients,
    drive: Option<&Drive>,
    l: usize,
    (t, h): (f64, f64),
    (r, v): (f64, f64),
    k1: (f64, f64),
    (shift_r, shift_v): (f64, f64),
) -> Dop853Step {
    // Adds stage i's values to the averages (b_1 .. b_4 = 0: compile-time constants, dropped).
    let mut avg_r = [0.0; 2];
    let mut avg_v = [0.0; 2];
    let mut average = |i: usize, ri: f64, vi: f64| {
        if DOP853_B[i] != 0.0 {
            add_to_averages::<A>(&mut avg_r, DOP853_B[i], ri - shift_r);
            add_to_averages::<A>(&mut avg_v, DOP853_B[i], vi - shift_v);
        }
    };
    let mut kr = [0.0; 13];
    let mut kv = [0.0; 13];
    (kr[0], kv[0]) = k1;
    average(0, r, v);
    // Stages 1 to 11, written out: with the stage a literal, every tableau entry is a
    // constant, zeros drop out and the lane loop around this step stays vector code (as a
    // loop, LLVM keeps the 11 stages rolled and the lane loop scalar).
    macro_rules! stages {
        ($($i:literal)*) => {$(
            let (ri, vi) = (stage_value::<A>($i, h, r, &kr), stage_value::<A>($i, h, v, &kv));
            average($i, ri, vi);
            let input = stage_input::<A>(drive, l, (t, h), DOP853_C[$i]);
            (kr[$i], kv[$i]) = rhs::<A>(c, l, ri, vi, input);
        )*};
    }
    stages!(1 2 3 4 5 6 7 8 9 10 11);
    let r1 = A::mul_add(h, weighted_sum::<A, 12>(&DOP853_B, &kr), r);
    let v1 = A::mul_add(h, weighted_sum::<A, 12>(&DOP853_B, &kv), v);
    let input = stage_input::<A>(drive, l, (t, h), DOP853_C[12]);
    (kr[12], kv[12]) = rhs::<A>(c, l, r1, v1, input);
    let e5 = (
        h * weighted_sum::<A, 13>(&DOP853_E5, &kr),
        h * weighted_sum::<A, 13>(&DOP853_E5, &kv),
    );
    let e3 = (
        h * weighted_sum::<A, 13>(&DOP853_E3, &kr),
        h * weighted_sum::<A, 13>(&DOP853_E3, &kv),
    );
    Dop853Step {
        kr,
        kv,
        r1,
        v1,
        e5,
        e3,
        avg_r,
        avg_v,
    }
}

/// The dense-output coefficients of r and of v on a step of lane `l` from `t` over `h`, from
/// `(r0, v0)` to `(r1, v1)` with the stages `kr`, `kv` of [`dop853_step`]: the three extra
/// stages are evaluated here (from `(r0, v0)`, at their own times), then, with `d = y1 - y0`,
/// `[y0, d, h k_0 - d, 2 d - h (k_0 + k_12), h sum_i D[0][i] k_i, .., h sum_i D[3][i] k_i]`:
/// `y0` then scipy's `F` (see [`dop853_dense`]).
// The stages of r and v come separately, as the kernel stores them (r and v apart).
#[allow(clippy::too_many_arguments)]
fn dop853_dense_coefficients<A: Arith>(
    c: &Coefficients,
    drive: Option<&Drive>,
    l: usize,
    (t, h): (f64, f64),
    (r0, v0): (f64, f64),
    (r1, v1): (f64, f64),
    kr: &[f64; 13],
    kv: &[f64; 13],
) -> ([f64; 8], [f64; 8]) {
    let mut kr_all = [0.0; 16];
    let mut kv_all = [0.0; 16];
    kr_all[..13].copy_from_slice(kr);
    kv_all[..13].copy_from_slice(kv);
    for i in 13..16 {
        let ri = stage_value::<A>(i, h, r0, &kr_all);
        let vi = stage_value::<A>(i, h, v0, &kv_all);
        let input = stage_input::<A>(drive, l, (t, h), DOP853_C[i]);
        (kr_all[i], kv_all[i]) = rhs::<A>(c, l, ri, vi, input);
    }
    let coefficients = |y0: f64, y1: f64, k: &[f64; 16]| {
        let d = y1 - y0;
        let mut q = [
            y0,
            d,
            A::mul_add(h, k[0], -d),
            A::mul_add(-h, k[0] + k[12], 2.0 * d),
            0.0,
            0.0,
            0.0,
            0.0,
        ];
        for (m, row) in DOP853_D.iter().enumerate() {
            q[4 + m] = h * weighted_sum::<A, 16>(row, k);
        }
        q
    };
    (coefficients(r0, r1, &kr_all), coefficients(v0, v1, &kv_all))
}

/// The dense output of one variable at `theta` in [0, 1] (the time `t + theta h`) from its
/// coefficients `q = [y0, F_0, .., F_6]` of [`dop853_dense_coefficients`]: scipy's nested
/// form `y0 + theta (F_0 + (1 - theta) (F_1 + theta (F_2 + (1 - theta) (F_3 + theta (F_4 +
/// (1 - theta) (F_5 + theta F_6))))))`, a polynomial of degree 7. It is `y0` at 0 and
/// `y0 + (y1 - y0)`, which is `y1` up to rounding, at 1.
#[inline(always)]
fn dop853_dense<A: Arith>(q: &[f64; 8], theta: f64) -> f64 {
    let s = 1.0 - theta;
    let inner = A::mul_add(theta, q[7], q[6]);
    let inner = A::mul_add(s, inner, q[5]);
    let inner = A::mul_add(theta, inner, q[4]);
    let inner = A::mul_add(s, inner, q[3]);
    let inner = A::mul_add(theta, inner, q[2]);
    let inner = A::mul_add(s, inner, q[1]);
    A::mul_add(theta, inner, q[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrate::math::{Fused, Unfused};
    use crate::integrate::{LANES, Waveform};

    /// The rate of the linear test problem.
    const LAMBDA: f64 = -1.3;

    /// Asserts that `got` = (r, v) is within `tol` = (tol_r, tol_v) of `want`, absolutely.
    fn assert_within(what: &str, got: (f64, f64), want: (f64, f64), tol: (f64, f64)) {
        let (dr, dv) = ((got.0 - want.0).abs(), (got.1 - want.1).abs());
        assert!(dr < tol.0, "{what}: r of {got:?} vs {want:?}");
        assert!(dv < tol.1, "{what}: v of {got:?} vs {want:?}");
    }

    /// Lane 0 of coefficients whose right-hand side is `r' = r v`, `v' = 0` (2/tau = 1,
    /// 1/tau = 0, no drives): from `v = LAMBDA`, r follows `r' = LAMBDA r` exactly, and v
    /// stays put.
    fn linear_lane() -> Coefficients {
        let mut c = Coefficients::default();
        c.two_inv_tau[0] = 1.0;
        c
    }

    /// One step of `r' = LAMBDA r` from r = 1 at t = 0, the averages of r around `shift_r`.
    fn linear_step(h: f64, shift_r: f64) -> Dop853Step {
        let c = linear_lane();
        let k1 = rhs::<Unfused>(&c, 0, 1.0, LAMBDA, None);
        dop853_step::<Unfused>(&c, None, 0, (0.0, h), (1.0, LAMBDA), k1, (shift_r, 0.0))
    }

    /// Lane 0 at tau = 1 ms, eta = -5, J = 15, delta = 1 (the blow-up tests' settling lane).
    fn mpr_lane() -> Coefficients {
        let mut c = Coefficients::default();
        let p = crate::model::NodeParams::from_user(1.0, -5.0, 15.0, 1.0, 0.0, 0.0);
        c.set_lane(0, &p, 0.0, 0.0, 0.01);
        c
    }

    /// The MPR lane's initial state (r in kHz).
    const MPR_Y0: (f64, f64) = (0.1, -2.0);

    /// Sine inputs on both variables: 200 Hz around 0.1 on r (kHz/ms), 1.5 rad/ms on v.
    fn sine_drive() -> Drive {
        let sine = |amplitude: f64, omega: f64, phase: f64, offset: f64| Waveform::Sine {
            amplitude: [amplitude; LANES],
            omega: [omega; LANES],
            phase: [phase; LANES],
            offset: [offset; LANES],
        };
        Drive {
            waveform: [
                sine(0.5, 0.4 * std::f64::consts::PI, 0.3, 0.1),
                sine(2.0, 1.5, -1.0, 0.0),
            ],
            ou: [None, None],
        }
    }

    /// One step of lane 0 of `c` from `y0` at `t` over `h`, with `drive` and no shifts.
    fn step<A: Arith>(
        c: &Coefficients,
        drive: Option<&Drive>,
        (t, h): (f64, f64),
        y0: (f64, f64),
    ) -> Dop853Step {
        let k1 = rhs::<A>(c, 0, y0.0, y0.1, stage_input::<A>(drive, 0, (t, h), 0.0));
        dop853_step::<A>(c, drive, 0, (t, h), y0, k1, (0.0, 0.0))
    }

    /// The dense-output coefficients of that step.
    fn dense_coefficients<A: Arith>(
        c: &Coefficients,
        drive: Option<&Drive>,
        (t, h): (f64, f64),
        y0: (f64, f64),
        s: &Dop853Step,
    ) -> ([f64; 8], [f64; 8]) {
        dop853_dense_coefficients::<A>(c, drive, 0, (t, h), y0, (s.r1, s.v1), &s.kr, &s.kv)
    }

    /// The reference: `n` classical Runge–Kutta steps of lane 0 from `y0` at `t` over `h`,
    /// the inputs at each stage's own time.
    fn rk4(
        c: &Coefficients,
        drive: Option<&Drive>,
        (t, h): (f64, f64),
        (mut r, mut v): (f64, f64),
        n: usize,
    ) -> (f64, f64) {
        let f = |ts: f64, r: f64, v: f64| {
            let input = drive.map(|d| {
                [
                    d.waveform[0].lane_value(0, ts, ts),
                    d.waveform[1].lane_value(0, ts, ts),
                ]
            });
            rhs::<Unfused>(c, 0, r, v, input)
        };
        let dt = h / n as f64;
        for i in 0..n {
            let ti = t + i as f64 * dt;
            let k1 = f(ti, r, v);
            let k2 = f(ti + dt / 2.0, r + dt / 2.0 * k1.0, v + dt / 2.0 * k1.1);
            let k3 = f(ti + dt / 2.0, r + dt / 2.0 * k2.0, v + dt / 2.0 * k2.1);
            let k4 = f(ti + dt, r + dt * k3.0, v + dt * k3.1);
            r += dt / 6.0 * (k1.0 + 2.0 * k2.0 + 2.0 * k3.0 + k4.0);
            v += dt / 6.0 * (k1.1 + 2.0 * k2.1 + 2.0 * k3.1 + k4.1);
        }
        (r, v)
    }

    /// The distance of `a` from `b` in units of `b`'s last place.
    fn ulps(a: f64, b: f64) -> f64 {
        (a - b).abs() / (f64::EPSILON * b.abs())
    }

    /// How far two roundings of an error estimate `h sum_i w_i k_i` may lie apart: the
    /// estimate is a small difference of terms of size `h |w_i k_i|`, so it is known to
    /// their rounding, not to its own last place.
    fn estimate_tolerance(h: f64, w: &[f64; 13], k: &[f64; 13]) -> f64 {
        8.0 * f64::EPSILON * (0..13).map(|i| (h * w[i] * k[i]).abs()).sum::<f64>()
    }

    #[test]
    fn the_tableau_is_consistent_and_as_sparse_as_scipys() {
        for i in 0..16 {
            let row: f64 = DOP853_A[i].iter().sum();
            assert!((row - DOP853_C[i]).abs() < 1e-14, "stage {i}: {row}");
            // Explicit: stage i uses only the stages before it.
            assert!(
                DOP853_A[i][i.min(15)..].iter().all(|&a| a == 0.0),
                "row {i}"
            );
        }
        assert_eq!(DOP853_C[11], 1.0);
        assert_eq!(DOP853_C[12], 1.0);
        // The FSAL stage is evaluated at the solution.
        assert_eq!(DOP853_A[12][..12], DOP853_B);
        assert!((DOP853_B.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        // Both embedded solutions are consistent (weights summing to one), so the error
        // weights sum to zero (measured 3.5e-16 and -1.0e-16), and neither needs the FSAL
        // stage.
        assert!(DOP853_E3.iter().sum::<f64>().abs() < 1e-15);
        assert!(DOP853_E5.iter().sum::<f64>().abs() < 1e-15);
        assert_eq!((DOP853_E3[12], DOP853_E5[12]), (0.0, 0.0));
        // The dense output is exact for a constant derivative: F_3 .. F_6 vanish then.
        for (m, row) in DOP853_D.iter().enumerate() {
            let scale: f64 = row.iter().map(|d| d.abs()).sum();
            let sum: f64 = row.iter().sum();
            assert!(sum.abs() < 1e-15 * scale, "D row {m}: {sum} of {scale}");
        }
        // The products a step costs per variable: 50 for the stage values of k_1 .. k_11, 8
        // each for the solution and the two estimates (which use the same stages: k_1 ..
        // k_4 only feed later stages); 8 per extra stage and 12 per dense coefficient.
        let nonzero = |w: &[f64]| w.iter().filter(|&&x| x != 0.0).count();
        let stages: usize = (1..12).map(|i| nonzero(&DOP853_A[i])).sum();
        assert_eq!(stages, 50);
        assert_eq!(nonzero(&DOP853_B), 8);
        for w in [&DOP853_E5[..], &DOP853_E3[..]] {
            assert_eq!(nonzero(w), 8);
            assert!((0..12).all(|i| (w[i] != 0.0) == (DOP853_B[i] != 0.0)));
        }
        for i in 13..16 {
            assert_eq!(nonzero(&DOP853_A[i]), 8, "extra stage {i}");
        }
        for row in &DOP853_D {
            assert_eq!(nonzero(row), 12);
        }
    }

    #[test]
    fn the_solution_has_local_error_of_order_nine() {
        let err = |h: f64| {
            let s = linear_step(h, 0.0);
            // v' = 0: every stage of v is 0 and v stays exactly put.
            assert!(s.kv.iter().all(|&k| k == 0.0));
            assert_eq!(s.v1, LAMBDA);
            (s.r1 - (LAMBDA * h).exp()).abs()
        };
        let (e1, e2) = (err(0.4), err(0.2));
        // Eighth order: local error O(h^9), so halving h divides it by 512 in the limit;
        // at z = lambda h = -0.52 and -0.26 the z^10 term still shows (measured 427: 1.25e-10
        // and 2.93e-13, far above rounding). Orders 7 and 9 would give about 256 and 1024.
        let ratio = e1 / e2;
        assert!(
            ratio > 380.0 && ratio < 620.0,
            "ratio {ratio}: {e1:e}, {e2:e}"
        );
    }

    #[test]
    fn the_error_estimates_are_of_orders_six_and_four_and_scipys_norm_of_order_eight() {
        let estimates = |h: f64| {
            let s = linear_step(h, 0.0);
            assert_eq!((s.e5.1, s.e3.1), (0.0, 0.0));
            (s.e5.0.abs(), s.e3.0.abs())
        };
        let ((e5_1, e3_1), (e5_2, e3_2)) = (estimates(0.2), estimates(0.1));
        // e5: the difference of the eighth- and fifth-order solutions, O(h^6): measured
        // 63.95 (and 61 to 64 on the MPR model).
        let ratio5 = e5_1 / e5_2;
        assert!(ratio5 > 60.0 && ratio5 < 68.0, "e5 ratio {ratio5}");
        // e3: the eighth- minus the third-order solution, O(h^4): measured 15.08 (12 to 15
        // on the MPR model).
        let ratio3 = e3_1 / e3_2;
        assert!(ratio3 > 14.0 && ratio3 < 16.5, "e3 ratio {ratio3}");
        // scipy's norm e5^2 / sqrt(e5^2 + 0.01 e3^2) (one component) is O(h^8): 64^2 / 16
        // = 256 (measured 271: e3's ratio is still below 16).
        let norm = |e5: f64, e3: f64| e5 * e5 / (e5 * e5 + 0.01 * e3 * e3).sqrt();
        let ratio = norm(e5_1, e3_1) / norm(e5_2, e3_2);
        assert!(ratio > 240.0 && ratio < 300.0, "norm ratio {ratio}");
    }

    #[test]
    fn the_dense_output_ends_on_the_step_and_interpolates_to_order_seven() {
        let c = linear_lane();
        let mut worst = Vec::new();
        for h in [0.4, 0.2] {
            let s = linear_step(h, 0.0);
            let (qr, qv) = dense_coefficients::<Unfused>(&c, None, (0.0, h), (1.0, LAMBDA), &s);
            assert_eq!(dop853_dense::<Unfused>(&qr, 0.0), 1.0);
            assert!(ulps(dop853_dense::<Unfused>(&qr, 1.0), s.r1) <= 1.0);
            // v is constant: so is its dense output.
            assert!((0..=10).all(|i| dop853_dense::<Unfused>(&qv, i as f64 / 10.0) == LAMBDA));
            let err = (1..20)
                .map(|i| {
                    let theta = i as f64 / 20.0;
                    (dop853_dense::<Unfused>(&qr, theta) - (LAMBDA * theta * h).exp()).abs()
                })
                .fold(0.0, f64::max);
            worst.push(err);
        }
        // A continuous extension of order 7: local error O(h^8), so halving h divides the
        // interpolation error by about 256 (measured 236: 5.5e-9 and 2.3e-11; orders 6 and 8
        // would give 128 and 512).
        let ratio = worst[0] / worst[1];
        assert!(ratio > 200.0 && ratio < 320.0, "ratio {ratio}: {worst:?}");
    }

    #[test]
    fn the_step_averages_integrate_x_and_its_square_to_order_eight() {
        for shift in [0.0, 0.7] {
            let mut errors = Vec::new();
            for h in [0.4, 0.2] {
                let s = linear_step(h, shift);
                // The integrals of e^(lambda s) - shift and of its square over [0, h].
                let e1 = (LAMBDA * h).exp_m1() / LAMBDA;
                let e2 = (2.0 * LAMBDA * h).exp_m1() / (2.0 * LAMBDA);
                let exact = [e1 - shift * h, e2 - 2.0 * shift * e1 + shift * shift * h];
                errors.push([
                    (h * s.avg_r[0] - exact[0]).abs(),
                    (h * s.avg_r[1] - exact[1]).abs(),
                ]);
                // v is constant at lambda, its average too (the weights sum to one).
                assert!(ulps(s.avg_v[0], LAMBDA) < 4.0, "{:?}", s.avg_v);
                assert!(ulps(s.avg_v[1], LAMBDA * LAMBDA) < 4.0, "{:?}", s.avg_v);
            }
            // The quadrature of an eighth-order method: local error O(h^9), ratio 512 in the
            // limit (measured 427 and 480 around 0, 427 and 447 around 0.7, the errors
            // 2e-13 to 5e-13 at h = 0.2).
            for m in 0..2 {
                let ratio = errors[0][m] / errors[1][m];
                assert!(
                    ratio > 380.0 && ratio < 620.0,
                    "shift {shift}, moment {m}: ratio {ratio}, errors {errors:?}"
                );
            }
        }
    }

    #[test]
    fn one_mpr_step_matches_a_converged_reference_to_order_nine() {
        let c = mpr_lane();
        let h = 0.01;
        let s = step::<Unfused>(&c, None, (0.0, h), MPR_Y0);
        // 100 and 200 Runge–Kutta substeps agree to rounding: the reference has converged.
        let reference = rk4(&c, None, (0.0, h), MPR_Y0, 200);
        let coarser = rk4(&c, None, (0.0, h), MPR_Y0, 100);
        assert!((reference.0 - coarser.0).abs() < 1e-15);
        assert!((reference.1 - coarser.1).abs() < 1e-15);
        // Measured 1.4e-17 and 2.2e-16: the step is exact to rounding.
        assert_within("mpr step", (s.r1, s.v1), reference, (1e-15, 1e-14));
        // The FSAL stage is the right-hand side at the solution.
        assert_eq!(
            (s.kr[12], s.kv[12]),
            rhs::<Unfused>(&c, 0, s.r1, s.v1, None)
        );
        // And the dense output in the middle of the step.
        let (qr, qv) = dense_coefficients::<Unfused>(&c, None, (0.0, h), MPR_Y0, &s);
        let mid = rk4(&c, None, (0.0, h / 2.0), MPR_Y0, 100);
        assert!((dop853_dense::<Unfused>(&qr, 0.5) - mid.0).abs() < 1e-15);
        assert!((dop853_dense::<Unfused>(&qv, 0.5) - mid.1).abs() < 1e-14);
        // On this nonlinear system too the local error is of order nine: steps of 0.1 and
        // 0.05 ms (errors 4.4e-11 and 1.1e-13 in v, the reference good to 2e-15) give a
        // ratio of 389 on the way to 512 (orders 7 and 9 would give about half and twice).
        let errors = [0.1, 0.05].map(|h| {
            let s = step::<Unfused>(&c, None, (0.0, h), MPR_Y0);
            let reference = rk4(&c, None, (0.0, h), MPR_Y0, (h * 2e4) as usize);
            ((s.r1 - reference.0).abs(), (s.v1 - reference.1).abs())
        });
        for (x, ratio) in [
            ("r", errors[0].0 / errors[1].0),
            ("v", errors[0].1 / errors[1].1),
        ] {
            assert!(
                ratio > 300.0 && ratio < 520.0,
                "{x}: ratio {ratio}, {errors:?}"
            );
        }
    }

    /// scipy 1.17's `DOP853` on the same problem (written `f(t, y) = [1/pi + 2 r v, v^2 - 5 +
    /// 15 r - (pi r)^2]`), one step of `h` from `MPR_Y0` with `first_step = max_step = h`
    /// and tolerances that accept it: `y1`, `h K^T E5`, `h K^T E3` and the dense output at
    /// theta 0.3 and 0.5, each as `(r, v)`.
    const SCIPY: [(f64, [(f64, f64); 5]); 2] = [
        (
            0.2,
            [
                (0.08949869348966932, -1.9567682691236983),
                (-4.559036194333455e-07, 3.3249830533167367e-06),
                (5.251592923922084e-05, -0.00037346669476329353),
                (0.09575596721139792, -1.9801939676390639),
                (0.09353720537718958, -1.9708853748940842),
            ],
        ),
        (
            0.01,
            [
                (0.09920307377714177, -1.996117772116089),
                (-8.380874119695569e-15, 5.577940886958288e-14),
                (5.970018462919668e-10, -4.037053988326101e-09),
                (0.0997567509846793, -1.998808027631678),
                (0.09959658980386472, -1.9980265123875673),
            ],
        ),
    ];

    #[test]
    fn one_mpr_step_matches_scipys_dop853() {
        let c = mpr_lane();
        for (h, [y1, e5, e3, dense_03, dense_05]) in SCIPY {
            let s = step::<Unfused>(&c, None, (0.0, h), MPR_Y0);
            // The same coefficients and formulas, summed in another order (and scipy's
            // right-hand side rounds differently): agreement to a few ulps of the state.
            assert!(ulps(s.r1, y1.0) < 4.0, "h {h}: r {} vs {}", s.r1, y1.0);
            assert!(ulps(s.v1, y1.1) < 4.0, "h {h}: v {} vs {}", s.v1, y1.1);
            for (mine, scipy, w) in [(s.e5, e5, &DOP853_E5), (s.e3, e3, &DOP853_E3)] {
                let (tol_r, tol_v) = (
                    estimate_tolerance(h, w, &s.kr),
                    estimate_tolerance(h, w, &s.kv),
                );
                assert!(
                    (mine.0 - scipy.0).abs() < tol_r,
                    "h {h}: r {mine:?} vs {scipy:?}"
                );
                assert!(
                    (mine.1 - scipy.1).abs() < tol_v,
                    "h {h}: v {mine:?} vs {scipy:?}"
                );
            }
            let (qr, qv) = dense_coefficients::<Unfused>(&c, None, (0.0, h), MPR_Y0, &s);
            for (theta, (r, v)) in [(0.3, dense_03), (0.5, dense_05)] {
                let (dr, dv) = (
                    dop853_dense::<Unfused>(&qr, theta),
                    dop853_dense::<Unfused>(&qv, theta),
                );
                assert!(ulps(dr, r) < 4.0, "h {h}, theta {theta}: r {dr} vs {r}");
                assert!(ulps(dv, v) < 4.0, "h {h}, theta {theta}: v {dv} vs {v}");
            }
        }
    }

    #[test]
    fn fused_and_unfused_arithmetic_agree_to_rounding() {
        let c = mpr_lane();
        let drive = sine_drive();
        // The weighted sums of the averages cancel: |b_i| sums to 12.9, not 1.
        let b_abs: f64 = DOP853_B.iter().map(|b| b.abs()).sum();
        for (drive, t) in [(None, 0.0), (Some(&drive), 0.7)] {
            for h in [0.2, 0.01] {
                let u = step::<Unfused>(&c, drive, (t, h), MPR_Y0);
                let f = step::<Fused>(&c, drive, (t, h), MPR_Y0);
                let case = format!("drive {}, h {h}", drive.is_some());
                // Measured at most 4.3 ulps (r at h = 0.2 with the drive).
                assert!(ulps(f.r1, u.r1) <= 8.0, "{case}: r {} vs {}", f.r1, u.r1);
                assert!(ulps(f.v1, u.v1) <= 8.0, "{case}: v {} vs {}", f.v1, u.v1);
                // Measured at most 7.8 ulps.
                for m in 0..2 {
                    assert!(ulps(f.avg_r[m], u.avg_r[m]) <= 2.0 * b_abs, "{case}: avg_r");
                    assert!(ulps(f.avg_v[m], u.avg_v[m]) <= 2.0 * b_abs, "{case}: avg_v");
                }
                // The estimates differ by the rounding of their terms and of the stages,
                // whose values carry the rounding of sums with coefficients up to 44:
                // measured at most 33 times the terms' rounding (e3 of v at h = 0.2).
                for (a, b, w) in [(f.e5, u.e5, &DOP853_E5), (f.e3, u.e3, &DOP853_E3)] {
                    let tol_r = 8.0 * estimate_tolerance(h, w, &u.kr);
                    let tol_v = 8.0 * estimate_tolerance(h, w, &u.kv);
                    assert!((a.0 - b.0).abs() < tol_r, "{case}: r {a:?} vs {b:?}");
                    assert!((a.1 - b.1).abs() < tol_v, "{case}: v {a:?} vs {b:?}");
                }
                // Measured at most 5.5 ulps.
                let (qr_u, qv_u) = dense_coefficients::<Unfused>(&c, drive, (t, h), MPR_Y0, &u);
                let (qr_f, qv_f) = dense_coefficients::<Fused>(&c, drive, (t, h), MPR_Y0, &f);
                for theta in [0.25, 0.5, 0.75] {
                    let r = (
                        dop853_dense::<Fused>(&qr_f, theta),
                        dop853_dense::<Unfused>(&qr_u, theta),
                    );
                    let v = (
                        dop853_dense::<Fused>(&qv_f, theta),
                        dop853_dense::<Unfused>(&qv_u, theta),
                    );
                    assert!(ulps(r.0, r.1) <= 8.0, "{case}, theta {theta}: r {r:?}");
                    assert!(ulps(v.0, v.1) <= 8.0, "{case}, theta {theta}: v {v:?}");
                }
            }
        }
    }

    #[test]
    fn a_sine_input_is_evaluated_at_each_stages_own_time() {
        let c = mpr_lane();
        let drive = sine_drive();
        // A step short enough for its truncation error to stay below rounding (at 0.05 ms
        // it is 3e-13 in v).
        let (t, h) = (0.7, 0.025);
        let s = step::<Unfused>(&c, Some(&drive), (t, h), MPR_Y0);
        let reference = rk4(&c, Some(&drive), (t, h), MPR_Y0, 250);
        // Measured 4e-17 and 2e-16.
        assert_within("sine step", (s.r1, s.v1), reference, (2e-15, 1e-14));
        // The extra stages of the dense output see their own times too: the continuous
        // extension's error O(h^8) is measured 5e-15 in r and 2.1e-14 in v.
        let (qr, qv) = dense_coefficients::<Unfused>(&c, Some(&drive), (t, h), MPR_Y0, &s);
        let mid = rk4(&c, Some(&drive), (t, h / 2.0), MPR_Y0, 125);
        let dense = (
            dop853_dense::<Unfused>(&qr, 0.5),
            dop853_dense::<Unfused>(&qv, 0.5),
        );
        assert!((dense.0 - mid.0).abs() < 1e-13, "r {dense:?} vs {mid:?}");
        assert!((dense.1 - mid.1).abs() < 1e-13, "v {dense:?} vs {mid:?}");
        // The test can tell: with the inputs held at their value at the step's start (a
        // `step` input that never steps), the step lands far off.
        let held = Drive {
            waveform: drive.waveform.map(|w| Waveform::Step {
                at: [f64::INFINITY; LANES],
                before: [w.lane_value(0, t, t); LANES],
                after: [0.0; LANES],
            }),
            ou: [None, None],
        };
        let frozen = step::<Unfused>(&c, Some(&held), (t, h), MPR_Y0);
        assert!(
            (frozen.r1 - reference.0).abs() > 1e-5,
            "{} vs {}",
            frozen.r1,
            reference.0
        );
        assert!(
            (frozen.v1 - reference.1).abs() > 1e-5,
            "{} vs {}",
            frozen.v1,
            reference.1
        );
    }
}
