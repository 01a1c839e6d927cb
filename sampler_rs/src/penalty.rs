//! The local penalty of pending points (Gonzalez et al. 2016, "Batch Bayesian
//! optimization via local penalization"), a log term the maximizer adds to
//! log EI while suggestions are in flight: the compiled counterpart of
//! `optserve.optimizers.acquisition.LocalPenalty`.
//!
//! With `L` a Lipschitz constant of the objective, a pending point `x_j` whose
//! value turns out to be `f_j` cannot have the maximum `M` within
//! `(M - f_j) / L` of it; with `f_j ~ N(mu_j, s_j^2)` the probability that
//! `x` lies outside that ball is `Phi((L |x - x_j| - M + mu_j) / s_j)`, the
//! distance in length scales. The term is the sum of the logs of these.
use crate::error::{Error, Result};
use crate::maximizer::{log_inverse_mills, log_ndtr};

/// The pending points' penalty, validated once.
#[derive(Debug, Clone)]
pub struct LocalPenalty {
    d: usize,
    inv_l: Vec<f64>,
    /// (P, D) pending points divided by the length scales.
    points: Vec<f64>,
    /// Per pending point: `mu_j - M`, and `1 / s_j`.
    offsets: Vec<f64>,
    inv_stds: Vec<f64>,
    lipschitz: f64,
}

impl LocalPenalty {
    /// `points` (row-major, `lengthscales.len()` columns): the pending rows;
    /// `means`, `stds`: the model's posterior at each; `lipschitz`: `L` in
    /// length scales; `incumbent`: `M`.
    pub fn new(
        points: &[f64],
        lengthscales: &[f64],
        means: &[f64],
        stds: &[f64],
        lipschitz: f64,
        incumbent: f64,
    ) -> Result<Self> {
        let d = lengthscales.len();
        if d == 0 || lengthscales.iter().any(|l| !(l.is_finite() && *l > 0.0)) {
            return Err(Error::input(
                "lengthscales",
                "must be finite and > 0, at least one",
            ));
        }
        if !points.len().is_multiple_of(d) || points.iter().any(|v| !v.is_finite()) {
            return Err(Error::input(
                "points",
                format!("must be finite rows of {d} columns"),
            ));
        }
        let p = points.len() / d;
        if means.len() != p || means.iter().any(|m| !m.is_finite()) {
            return Err(Error::input(
                "means",
                format!("must be {p} finite values, one per point"),
            ));
        }
        if stds.len() != p || stds.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(Error::input(
                "stds",
                format!("must be {p} finite values > 0, one per point"),
            ));
        }
        if !(lipschitz.is_finite() && lipschitz > 0.0) {
            return Err(Error::input("lipschitz", "must be finite and > 0"));
        }
        if !incumbent.is_finite() {
            return Err(Error::input("incumbent", "must be finite"));
        }
        let inv_l: Vec<f64> = lengthscales.iter().map(|l| 1.0 / l).collect();
        let scaled = points
            .chunks_exact(d)
            .flat_map(|row| row.iter().zip(&inv_l).map(|(x, il)| x * il))
            .collect();
        Ok(LocalPenalty {
            d,
            inv_l,
            points: scaled,
            offsets: means.iter().map(|m| m - incumbent).collect(),
            inv_stds: stds.iter().map(|s| 1.0 / s).collect(),
            lipschitz,
        })
    }

    /// The encoded dimension `D`.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// The penalty at `x` (D,).
    pub fn value(&self, x: &[f64]) -> f64 {
        self.eval(x, None)
    }

    /// The penalty at `x` (D,), its gradient added to `grad`.
    pub fn value_adding_grad(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        self.eval(x, Some(grad))
    }

    fn eval(&self, x: &[f64], mut grad: Option<&mut [f64]>) -> f64 {
        let d = self.d;
        let mut total = 0.0;
        for ((point, offset), inv_std) in self
            .points
            .chunks_exact(d)
            .zip(&self.offsets)
            .zip(&self.inv_stds)
        {
            let mut r2 = 0.0;
            for ((xk, pk), il) in x.iter().zip(point).zip(&self.inv_l) {
                let t = xk * il - pk;
                r2 += t * t;
            }
            let r = r2.sqrt();
            let z = (self.lipschitz * r + offset) * inv_std;
            let log_cdf = log_ndtr(z);
            total += log_cdf;
            // d/dx log Phi(z) = phi(z) / Phi(z) * L / s * (x - x_j) / (l^2 r); a cone
            // at the point itself (r = 0), where no direction is preferred
            if let Some(g) = grad.as_deref_mut() {
                if r > 0.0 {
                    let ratio = log_inverse_mills(z).exp();
                    let c = ratio * self.lipschitz * inv_std / r;
                    for (((gk, xk), pk), il) in g.iter_mut().zip(x).zip(point).zip(&self.inv_l) {
                        *gk += c * (xk * il - pk) * il;
                    }
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn penalty() -> LocalPenalty {
        let points = [0.2, 0.3, 0.9, 0.7, 0.5, 0.1, 0.4, 0.4, 0.45];
        LocalPenalty::new(
            &points,
            &[0.3, 0.5, 0.2],
            &[0.8, -0.2, 1.1],
            &[0.3, 0.05, 0.6],
            2.5,
            1.2,
        )
        .unwrap()
    }

    #[test]
    fn value_is_the_sum_of_log_probabilities_outside_each_ball() {
        let p = penalty();
        let x = [0.6, 0.2, 0.3];
        let (ls, means, stds): ([f64; 3], [f64; 3], [f64; 3]) =
            ([0.3, 0.5, 0.2], [0.8, -0.2, 1.1], [0.3, 0.05, 0.6]);
        let rows: [[f64; 3]; 3] = [[0.2, 0.3, 0.9], [0.7, 0.5, 0.1], [0.4, 0.4, 0.45]];
        let mut expected = 0.0;
        for ((row, m), s) in rows.iter().zip(means).zip(stds) {
            let r: f64 = row
                .iter()
                .zip(&x)
                .zip(&ls)
                .map(|((a, b), l)| ((a - b) / l).powi(2))
                .sum::<f64>()
                .sqrt();
            expected += log_ndtr((2.5 * r - 1.2 + m) / s);
        }
        assert!((p.value(&x) - expected).abs() < 1e-12 * (1.0 + expected.abs()));
        assert!(p.value(&x) < 0.0);
    }

    #[test]
    fn gradient_matches_central_differences() {
        let p = penalty();
        for x in [[0.6, 0.2, 0.3], [0.21, 0.31, 0.88], [0.0, 1.0, 0.5]] {
            let mut g = vec![0.0; 3];
            let v = p.value_adding_grad(&x, &mut g);
            assert!((v - p.value(&x)).abs() == 0.0);
            for k in 0..3 {
                let h = 1e-6;
                let (mut a, mut b) = (x, x);
                a[k] += h;
                b[k] -= h;
                let fd = (p.value(&a) - p.value(&b)) / (2.0 * h);
                assert!(
                    (g[k] - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                    "{k}: {} vs {fd}",
                    g[k]
                );
            }
        }
    }

    #[test]
    fn gradient_adds_and_is_zero_at_a_pending_point_alone() {
        let one = LocalPenalty::new(&[0.5, 0.5], &[1.0, 1.0], &[0.0], &[1.0], 1.0, 0.0).unwrap();
        let mut g = vec![3.0, -1.0];
        one.value_adding_grad(&[0.5, 0.5], &mut g);
        assert_eq!(g, vec![3.0, -1.0]);
    }

    #[test]
    fn far_from_every_point_the_penalty_vanishes_and_deep_inside_stays_finite() {
        let one = LocalPenalty::new(&[0.5], &[0.01], &[0.0], &[0.1], 10.0, 0.0).unwrap();
        assert!(one.value(&[0.0]).abs() < 1e-12);
        let deep = LocalPenalty::new(&[0.5], &[1.0], &[-1e6], &[1e-3], 1.0, 0.0).unwrap();
        let mut g = vec![0.0];
        let v = deep.value_adding_grad(&[0.6], &mut g);
        assert!(v.is_finite() && v < -1e10 && g[0].is_finite() && g[0] > 0.0);
    }

    #[test]
    fn bad_arguments_are_named() {
        let new = LocalPenalty::new;
        let nan = f64::NAN;
        let cases = [
            (
                new(&[0.5], &[0.0], &[0.0], &[1.0], 1.0, 0.0),
                "lengthscales",
            ),
            (
                new(&[0.5, 0.1], &[1.0; 3], &[0.0], &[1.0], 1.0, 0.0),
                "points",
            ),
            (new(&[nan], &[1.0], &[0.0], &[1.0], 1.0, 0.0), "points"),
            (new(&[0.5], &[1.0], &[0.0, 1.0], &[1.0], 1.0, 0.0), "means"),
            (new(&[0.5], &[1.0], &[0.0], &[0.0], 1.0, 0.0), "stds"),
            (
                new(&[0.5], &[1.0], &[0.0], &[1.0], f64::INFINITY, 0.0),
                "lipschitz",
            ),
            (new(&[0.5], &[1.0], &[0.0], &[1.0], 1.0, nan), "incumbent"),
        ];
        for (result, want) in cases {
            match result {
                Err(Error::Input { arg, .. }) => assert_eq!(arg, want),
                other => panic!("expected an input error on {want}, got {other:?}"),
            }
        }
    }
}
