//! A validated connectome (the edges into each node) and the delay of an edge in steps.

use super::files::Matrix;

/// An edge `source -> target` of a [`Connectome`], stored with its target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// The node the edge comes from (0-based).
    pub source: u32,
    /// Its weight `W[target][source]` (nonzero, may be negative).
    pub weight: f64,
    /// Its tract length in mm (0 when the connectome has no lengths).
    pub length_mm: f64,
}

/// A validated connectome: N nodes, the edges `j -> i` with `W[i][j] != 0` (`i != j`),
/// grouped by target.
#[derive(Debug, Clone, PartialEq)]
pub struct Connectome {
    /// `edges[offsets[i]..offsets[i + 1]]` are the edges into node `i`.
    offsets: Vec<usize>,
    edges: Vec<Edge>,
    in_strength: Vec<f64>,
    max_length_mm: f64,
    has_lengths: bool,
}

/// What is wrong with a weights or tract lengths matrix; places are 0-based.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectomeError {
    /// The weights matrix is not square.
    #[error(
        "the weights matrix is {rows} x {cols}; it must be square (one row and one column per region)"
    )]
    NotSquare {
        /// Rows of the weights matrix.
        rows: usize,
        /// Columns of the weights matrix.
        cols: usize,
    },
    /// The weights matrix is 0 x 0.
    #[error("the weights matrix is empty (0 x 0); a network needs at least one region")]
    Empty,
    /// The tract lengths matrix does not have the shape of the weights matrix.
    #[error(
        "the tract lengths matrix is {} x {} but the weights matrix is {weights} x {weights}; they must have the same shape",
        lengths.0,
        lengths.1
    )]
    ShapeMismatch {
        /// Regions of the weights matrix.
        weights: usize,
        /// Rows and columns of the tract lengths matrix.
        lengths: (usize, usize),
    },
    /// An entry is NaN or infinite.
    #[error(
        "the {what} matrix has {value} at (row {i}, column {j}) (0-based); every entry must be a finite number"
    )]
    NotFinite {
        /// `"weights"` or `"tract lengths"`.
        what: &'static str,
        /// Row.
        i: usize,
        /// Column.
        j: usize,
        /// The entry.
        value: f64,
    },
    /// A tract length is negative.
    #[error(
        "the tract lengths matrix has {value} at (row {i}, column {j}) (0-based); tract lengths must be >= 0 mm"
    )]
    NegativeLength {
        /// Row.
        i: usize,
        /// Column.
        j: usize,
        /// The entry.
        value: f64,
    },
}

/// The first entry (row-major) of `m` for which `bad` holds.
fn find(m: &Matrix, bad: impl Fn(f64) -> bool) -> Option<(usize, usize, f64)> {
    let k = m.data.iter().position(|&v| bad(v))?;
    Some((k / m.cols, k % m.cols, m.data[k]))
}

fn check_finite(m: &Matrix, what: &'static str) -> Result<(), ConnectomeError> {
    match find(m, |v| !v.is_finite()) {
        Some((i, j, value)) => Err(ConnectomeError::NotFinite { what, i, j, value }),
        None => Ok(()),
    }
}

impl Connectome {
    /// Validates `weights` (N x N, `W[i][j]` the weight of the edge `j -> i`: a row is a
    /// target) and the optional `lengths_mm` (tract lengths in mm, same shape). Every
    /// entry must be finite and every length >= 0, though only those of edges are kept;
    /// the diagonal is not an edge, negative weights are.
    pub fn new(
        weights: &Matrix,
        lengths_mm: Option<&Matrix>,
    ) -> Result<Connectome, ConnectomeError> {
        let n = weights.rows;
        if weights.cols != n {
            return Err(ConnectomeError::NotSquare {
                rows: n,
                cols: weights.cols,
            });
        }
        if n == 0 {
            return Err(ConnectomeError::Empty);
        }
        check_finite(weights, "weights")?;
        if let Some(lengths) = lengths_mm {
            if (lengths.rows, lengths.cols) != (n, n) {
                return Err(ConnectomeError::ShapeMismatch {
                    weights: n,
                    lengths: (lengths.rows, lengths.cols),
                });
            }
            check_finite(lengths, "tract lengths")?;
            if let Some((i, j, value)) = find(lengths, |v| v < 0.0) {
                return Err(ConnectomeError::NegativeLength { i, j, value });
            }
        }
        let mut offsets = vec![0];
        let mut edges = Vec::new();
        let mut in_strength = Vec::with_capacity(n);
        let mut max_length_mm = 0.0f64;
        for i in 0..n {
            let mut strength = 0.0;
            for j in (0..n).filter(|&j| j != i) {
                let weight = weights.get(i, j);
                if weight != 0.0 {
                    let length_mm = lengths_mm.map_or(0.0, |lengths| lengths.get(i, j));
                    // N * N entries fit in memory, so N < 2^32.
                    edges.push(Edge {
                        source: j as u32,
                        weight,
                        length_mm,
                    });
                    strength += weight;
                    max_length_mm = max_length_mm.max(length_mm);
                }
            }
            offsets.push(edges.len());
            in_strength.push(strength);
        }
        Ok(Connectome {
            offsets,
            edges,
            in_strength,
            max_length_mm,
            has_lengths: lengths_mm.is_some(),
        })
    }

    /// Number of nodes N.
    pub fn nodes(&self) -> usize {
        self.in_strength.len()
    }

    /// Number of edges (nonzero off-diagonal weights).
    pub fn edges(&self) -> usize {
        self.edges.len()
    }

    /// The edges into node `i`, sources ascending; panics if `i >= nodes()`.
    pub fn incoming(&self, i: usize) -> &[Edge] {
        &self.edges[self.offsets[i]..self.offsets[i + 1]]
    }

    /// The sum of row `i` of the weights without the diagonal (what diffusive coupling
    /// subtracts), summed in ascending column order.
    pub fn in_strength(&self, i: usize) -> f64 {
        self.in_strength[i]
    }

    /// The longest tract of an edge in mm; 0 without lengths or without edges.
    pub fn max_length_mm(&self) -> f64 {
        self.max_length_mm
    }

    /// Whether tract lengths were given.
    pub fn has_lengths(&self) -> bool {
        self.has_lengths
    }
}

/// The delay of an edge in whole steps, `ceil(length_mm / speed_mm_per_ms / dt_ms)`,
/// computed in f64 in exactly that order, as brainmass does (so `0.07 / 0.01` is
/// `7.000000000000001` and gives 8 steps, and a network reproduces brainmass bit for
/// bit). `None` when the result is not finite, below 0, or above `u32::MAX` (a zero
/// speed or step, a negative length).
pub fn delay_steps(length_mm: f64, speed_mm_per_ms: f64, dt_ms: f64) -> Option<u32> {
    let steps = ((length_mm / speed_mm_per_ms) / dt_ms).ceil();
    (steps >= 0.0 && steps <= f64::from(u32::MAX)).then_some(steps as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(n: usize, data: &[f64]) -> Matrix {
        Matrix {
            rows: n,
            cols: data.len() / n,
            data: data.to_vec(),
        }
    }

    #[test]
    fn edges_are_the_nonzero_off_diagonal_weights_grouped_by_target() {
        #[rustfmt::skip]
        let w = matrix(3, &[
            5.0, 0.5, -0.25,
            0.0, 9.0, 0.0,
            2.0, -0.0, 0.0,
        ]);
        #[rustfmt::skip]
        let d = matrix(3, &[
            0.0, 10.0, 20.0,
            30.0, 0.0, 99.0,
            40.0, 50.0, 0.0,
        ]);
        let c = Connectome::new(&w, Some(&d)).unwrap();
        assert_eq!((c.nodes(), c.edges()), (3, 3));
        let edge = |source, weight, length_mm| Edge {
            source,
            weight,
            length_mm,
        };
        assert_eq!(c.incoming(0), [edge(1, 0.5, 10.0), edge(2, -0.25, 20.0)]);
        assert!(c.incoming(1).is_empty());
        assert_eq!(c.incoming(2), [edge(0, 2.0, 40.0)]);
        assert_eq!(
            [0, 1, 2].map(|i| c.in_strength(i)),
            [0.25, 0.0, 2.0],
            "exact: the sums of binary fractions are exact"
        );
        // 99 mm belongs to no edge.
        assert_eq!(c.max_length_mm(), 40.0);
        assert!(c.has_lengths());

        let c = Connectome::new(&w, None).unwrap();
        assert_eq!(c.incoming(0), [edge(1, 0.5, 0.0), edge(2, -0.25, 0.0)]);
        assert_eq!((c.max_length_mm(), c.has_lengths()), (0.0, false));
    }

    #[test]
    fn one_node_and_no_edges_are_fine() {
        let c = Connectome::new(&matrix(1, &[3.0]), Some(&matrix(1, &[0.0]))).unwrap();
        assert_eq!((c.nodes(), c.edges(), c.in_strength(0)), (1, 0, 0.0));
        let c = Connectome::new(&matrix(2, &[1.0, 0.0, 0.0, 1.0]), None).unwrap();
        assert_eq!((c.nodes(), c.edges(), c.max_length_mm()), (2, 0, 0.0));
        assert!(c.incoming(1).is_empty());
    }

    #[test]
    fn bad_matrices_are_refused_naming_the_matrix_and_the_place() {
        let w = matrix(2, &[0.0, 1.0, 1.0, 0.0]);
        let cases = [
            (
                Connectome::new(&matrix(2, &[0.0; 6]), None),
                "the weights matrix is 2 x 3; it must be square",
            ),
            (
                Connectome::new(
                    &Matrix {
                        rows: 0,
                        cols: 0,
                        data: vec![],
                    },
                    None,
                ),
                "the weights matrix is empty (0 x 0)",
            ),
            (
                Connectome::new(&w, Some(&matrix(2, &[0.0; 6]))),
                "the tract lengths matrix is 2 x 3 but the weights matrix is 2 x 2",
            ),
            (
                Connectome::new(&matrix(2, &[0.0, 1.0, f64::NAN, 0.0]), None),
                "the weights matrix has NaN at (row 1, column 0) (0-based); every entry must be a finite number",
            ),
            (
                // The diagonal is not an edge but must be finite too.
                Connectome::new(&matrix(2, &[0.0, 1.0, 1.0, f64::INFINITY]), None),
                "the weights matrix has inf at (row 1, column 1)",
            ),
            (
                Connectome::new(&w, Some(&matrix(2, &[0.0, f64::NEG_INFINITY, 1.0, 0.0]))),
                "the tract lengths matrix has -inf at (row 0, column 1) (0-based)",
            ),
            (
                Connectome::new(&w, Some(&matrix(2, &[0.0, 1.0, -2.5, 0.0]))),
                "the tract lengths matrix has -2.5 at (row 1, column 0) (0-based); tract lengths must be >= 0 mm",
            ),
        ];
        for (result, expected) in cases {
            let got = result.unwrap_err().to_string();
            assert!(
                got.starts_with(expected),
                "expected {expected:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn delay_steps_follow_brainmass() {
        assert_eq!(0.07_f64 / 0.01, 7.000000000000001);
        assert_eq!(delay_steps(0.07, 1.0, 0.01), Some(8));
        assert_eq!(delay_steps(3.885, 1.0, 0.01), Some(389));
        assert_eq!(delay_steps(0.0, 2.0, 0.01), Some(0));
        assert_eq!(delay_steps(0.0, 7.5, 0.1), Some(0));
        assert_eq!(delay_steps(5.0, 1.0, 0.5), Some(10));
        for (length_mm, speed, dt_ms) in [
            (1.0, 0.0, 0.01),
            (0.0, 0.0, 0.01),
            (f64::NAN, 1.0, 0.01),
            (-1.0, 1.0, 0.01),
            (4.3e7, 1.0, 0.01),
            (4294967295.5, 1.0, 1.0),
        ] {
            assert_eq!(delay_steps(length_mm, speed, dt_ms), None, "{length_mm}");
        }
        assert_eq!(delay_steps(4294967295.0, 1.0, 1.0), Some(u32::MAX));
    }

    /// brainmass 0.1.1 Network reference case b: `distance` (mm), `speed` and `dt` as
    /// given to brainmass, and the delay steps brainmass computed from them.
    #[test]
    fn delay_steps_reproduce_brainmass_reference_case_b() {
        const DISTANCE_MM: [[f64; 4]; 4] = [
            [0.0, 7.77, 3.1, 0.14],
            [4.69, 0.0, 9.9, 6.3],
            [11.0, 2.5, 0.0, 4.2],
            [8.2, 5.0, 10.2, 0.0],
        ];
        const SPEED_MM_PER_MS: f64 = 2.0;
        const DT_MS: f64 = 0.01;
        const BRAINMASS_STEPS: [[u32; 4]; 4] = [
            [0, 389, 155, 8],
            [235, 0, 495, 315],
            [550, 125, 0, 210],
            [410, 250, 510, 0],
        ];
        for i in 0..4 {
            for j in 0..4 {
                assert_eq!(
                    delay_steps(DISTANCE_MM[i][j], SPEED_MM_PER_MS, DT_MS),
                    Some(BRAINMASS_STEPS[i][j]),
                    "({i}, {j})"
                );
            }
        }
    }
}
