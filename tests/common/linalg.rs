//! Small dense linear algebra for the linear-noise predictions: Gaussian elimination and
//! the continuous (Lyapunov) and discrete (Stein) equations of a stationary covariance,
//! each solved on the unique entries of the symmetric unknown and checked by its residual.

/// A dense matrix, row by row.
pub type Mat = Vec<Vec<f64>>;

/// Solves `m x = b` by Gaussian elimination with partial pivoting.
pub fn solve(mut m: Mat, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for i in 0..n {
        let p = (i..n)
            .max_by(|&a, &c| m[a][i].abs().total_cmp(&m[c][i].abs()))
            .unwrap();
        m.swap(i, p);
        b.swap(i, p);
        assert!(m[i][i].abs() > 1e-300, "singular system");
        let pivot = m[i].clone();
        for k in i + 1..n {
            let f = m[k][i] / pivot[i];
            for (x, p) in m[k].iter_mut().zip(&pivot).skip(i) {
                *x -= f * p;
            }
            b[k] -= f * b[i];
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|c| m[i][c] * x[c]).sum();
        x[i] = (b[i] - s) / m[i][i];
    }
    x
}

/// The product `a b`.
pub fn matmul(a: &Mat, b: &Mat) -> Mat {
    let (n, k, m) = (a.len(), b.len(), b[0].len());
    (0..n)
        .map(|i| {
            (0..m)
                .map(|j| (0..k).map(|l| a[i][l] * b[l][j]).sum())
                .collect()
        })
        .collect()
}

/// `a^T`.
pub fn transpose(a: &Mat) -> Mat {
    (0..a[0].len())
        .map(|j| (0..a.len()).map(|i| a[i][j]).collect())
        .collect()
}

/// The n x n identity.
pub fn identity(n: usize) -> Mat {
    (0..n)
        .map(|i| (0..n).map(|j| (i == j) as u8 as f64).collect())
        .collect()
}

/// `a + s b`.
pub fn add(a: &Mat, b: &Mat, s: f64) -> Mat {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.iter().zip(y).map(|(p, q)| p + s * q).collect())
        .collect()
}

/// `a^-1`, column by column.
pub fn inverse(a: &Mat) -> Mat {
    let n = a.len();
    let cols: Vec<Vec<f64>> = (0..n)
        .map(|j| solve(a.clone(), identity(n)[j].clone()))
        .collect();
    transpose(&cols)
}

/// The unknowns of a symmetric n x n matrix: entries (i, j) with i <= j.
fn sym_index(n: usize, i: usize, j: usize) -> usize {
    let (i, j) = (i.min(j), i.max(j));
    i * n - i * (i + 1) / 2 + j
}

/// The symmetric matrix of the unique entries `p` (indexed by [`sym_index`]).
fn sym_matrix(n: usize, p: &[f64]) -> Mat {
    (0..n)
        .map(|i| (0..n).map(|j| p[sym_index(n, i, j)]).collect())
        .collect()
}

/// Solves a linear equation for a symmetric n x n matrix P on its n(n+1)/2 unique
/// entries: for each (i, j) with i <= j, the sum over (k, l) of `coef(i, j, k, l) P[k][l]`
/// equals `rhs(i, j)`.
fn solve_symmetric(
    n: usize,
    coef: impl Fn(usize, usize, usize, usize) -> f64,
    rhs: impl Fn(usize, usize) -> f64,
) -> Mat {
    let size = n * (n + 1) / 2;
    let mut sys = vec![vec![0.0; size]; size];
    let mut b = vec![0.0; size];
    for i in 0..n {
        for j in i..n {
            let row = sym_index(n, i, j);
            for k in 0..n {
                for l in 0..n {
                    sys[row][sym_index(n, k, l)] += coef(i, j, k, l);
                }
            }
            b[row] = rhs(i, j);
        }
    }
    sym_matrix(n, &solve(sys, b))
}

/// Asserts that every entry of the residual `res` is within `tol` times Q's largest entry.
#[track_caller]
fn assert_residual(res: &Mat, q: &Mat, tol: f64, what: &str) {
    let scale = q.iter().flatten().map(|x| x.abs()).fold(0.0, f64::max);
    assert!(
        res.iter().flatten().all(|x| x.abs() <= tol * scale),
        "{what} residual {res:?}"
    );
}

/// Continuous Lyapunov equation `M P + P M^T + Q = 0`, solved on the unique entries of P
/// and checked by its residual.
pub fn lyapunov(m: &Mat, q: &Mat) -> Mat {
    let delta = |a: usize, b: usize| f64::from(u8::from(a == b));
    // (M P + P M^T)_ij = sum_k M_ik P_kj + sum_l P_il M_jl.
    let p = solve_symmetric(
        m.len(),
        |i, j, k, l| m[i][k] * delta(l, j) + delta(k, i) * m[j][l],
        |i, j| -q[i][j],
    );
    let mp = matmul(m, &p);
    let res = add(&add(&mp, &transpose(&mp), 1.0), q, 1.0);
    assert_residual(&res, q, 1e-10, "Lyapunov");
    p
}

/// Discrete Lyapunov (Stein) equation `P = F P F^T + Q`, solved on the unique entries of P
/// and checked by its residual.
pub fn stein(f: &Mat, q: &Mat) -> Mat {
    let delta = |a: usize, b: usize| f64::from(u8::from(a == b));
    // (P - F P F^T)_ij = P_ij - sum_kl F_ik P_kl F_jl.
    let p = solve_symmetric(
        f.len(),
        |i, j, k, l| delta(k, i) * delta(l, j) - f[i][k] * f[j][l],
        |i, j| q[i][j],
    );
    let res = add(
        &add(&p, &matmul(&matmul(f, &p), &transpose(f)), -1.0),
        q,
        -1.0,
    );
    assert_residual(&res, q, 1e-9, "Stein");
    p
}
