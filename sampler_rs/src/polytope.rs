//! The polytope {x : lo <= x <= hi, A x <= b} and its checks.
use crate::error::{Error, Result};

/// Tolerance on `A x <= b` for returned points (absolute, in units of `b`).
pub const FEAS_TOL: f64 = 1e-9;

/// A polytope with `m` rows and `d` columns. Bounds may be infinite.
///
/// `A` is kept twice: row-major for from-scratch slack computations and
/// column-major (with reciprocals) so that a coordinate step reads one
/// contiguous column of length `m`.
#[derive(Debug, Clone)]
pub struct Polytope {
    pub m: usize,
    pub d: usize,
    /// `A`, row-major, `m * d`.
    pub a_rows: Vec<f64>,
    /// `A`, column-major, `d * m`.
    pub a_cols: Vec<f64>,
    /// `1 / A[j, i]`, column-major, `0.0` where `A[j, i] == 0`.
    pub a_cols_inv: Vec<f64>,
    pub b: Vec<f64>,
    pub lo: Vec<f64>,
    pub hi: Vec<f64>,
}

impl Polytope {
    /// Validates and builds a polytope. `a` is row-major `m x d`.
    pub fn new(
        a: Vec<f64>,
        m: usize,
        d: usize,
        b: Vec<f64>,
        lo: Vec<f64>,
        hi: Vec<f64>,
    ) -> Result<Self> {
        if d == 0 {
            return Err(Error::input("a", "needs at least one column (dimension)"));
        }
        if a.len() != m * d {
            return Err(Error::input(
                "a",
                format!("has {} entries, expected m * d = {}", a.len(), m * d),
            ));
        }
        if b.len() != m {
            return Err(Error::input(
                "b",
                format!("has length {}, expected a.shape[0] = {m}", b.len()),
            ));
        }
        if lo.len() != d {
            return Err(Error::input(
                "lo",
                format!("has length {}, expected a.shape[1] = {d}", lo.len()),
            ));
        }
        if hi.len() != d {
            return Err(Error::input(
                "hi",
                format!("has length {}, expected a.shape[1] = {d}", hi.len()),
            ));
        }
        if let Some(k) = a.iter().position(|v| !v.is_finite()) {
            return Err(Error::input(
                "a",
                format!("entry ({}, {}) is not finite", k / d, k % d),
            ));
        }
        if let Some(j) = b.iter().position(|v| v.is_nan() || *v == f64::NEG_INFINITY) {
            return Err(Error::input("b", format!("entry {j} is NaN or -inf")));
        }
        if let Some(i) = lo.iter().position(|v| v.is_nan() || *v == f64::INFINITY) {
            return Err(Error::input("lo", format!("entry {i} is NaN or +inf")));
        }
        if let Some(i) = hi
            .iter()
            .position(|v| v.is_nan() || *v == f64::NEG_INFINITY)
        {
            return Err(Error::input("hi", format!("entry {i} is NaN or -inf")));
        }
        if let Some(i) = (0..d).find(|&i| lo[i] > hi[i]) {
            return Err(Error::input(
                "lo",
                format!("lo[{i}] = {} exceeds hi[{i}] = {}", lo[i], hi[i]),
            ));
        }
        let mut a_cols = vec![0.0; d * m];
        let mut a_cols_inv = vec![0.0; d * m];
        for j in 0..m {
            for i in 0..d {
                let v = a[j * d + i];
                a_cols[i * m + j] = v;
                a_cols_inv[i * m + j] = if v != 0.0 { 1.0 / v } else { 0.0 };
            }
        }
        Ok(Polytope {
            m,
            d,
            a_rows: a,
            a_cols,
            a_cols_inv,
            b,
            lo,
            hi,
        })
    }

    /// Column `i` of `A` (length `m`).
    #[inline(always)]
    pub fn col(&self, i: usize) -> &[f64] {
        &self.a_cols[i * self.m..(i + 1) * self.m]
    }

    /// Reciprocals of column `i` of `A` (length `m`, zero where `A` is zero).
    #[inline(always)]
    pub fn col_inv(&self, i: usize) -> &[f64] {
        &self.a_cols_inv[i * self.m..(i + 1) * self.m]
    }

    /// Row `j` of `A` (length `d`).
    #[inline(always)]
    pub fn row(&self, j: usize) -> &[f64] {
        &self.a_rows[j * self.d..(j + 1) * self.d]
    }

    /// `out = b - A x`, computed from scratch.
    pub fn slack_into(&self, x: &[f64], out: &mut [f64]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.b[j] - dot(self.row(j), x);
        }
    }

    /// Checks that `x` is finite and strictly inside the bounds and every row.
    pub fn check_strictly_interior(&self, x: &[f64], arg: &'static str) -> Result<()> {
        if x.len() != self.d {
            return Err(Error::input(
                arg,
                format!("has length {}, expected {}", x.len(), self.d),
            ));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::input(arg, format!("entry {i} is not finite")));
        }
        for (i, &xi) in x.iter().enumerate() {
            if xi <= self.lo[i] || xi >= self.hi[i] {
                return Err(Error::input(
                    arg,
                    format!(
                        "is not strictly inside the bounds: {arg}[{i}] = {} with lo = {}, hi = {}",
                        xi, self.lo[i], self.hi[i]
                    ),
                ));
            }
        }
        for j in 0..self.m {
            let s = self.b[j] - dot(self.row(j), x);
            if s.is_nan() || s <= 0.0 {
                return Err(Error::input(
                    arg,
                    format!("is not strictly interior: row {j} of A x <= b has slack {s:e}"),
                ));
            }
        }
        Ok(())
    }

    /// Checks that every coordinate direction is bounded both ways, so that
    /// every coordinate chord is finite.
    pub fn check_coordinate_bounded(&self) -> Result<()> {
        for i in 0..self.d {
            let col = self.col(i);
            let up = self.hi[i].is_finite() || col.iter().any(|&v| v > 0.0);
            let down = self.lo[i].is_finite() || col.iter().any(|&v| v < 0.0);
            if !up || !down {
                let sign = if up { '-' } else { '+' };
                return Err(Error::input(
                    "a",
                    format!(
                        "the polytope is unbounded in direction {sign}x[{i}]: give a finite bound or a constraint row"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Dot product with four accumulators (vectorises without fast-math).
#[inline(always)]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        acc[0] += x[0] * y[0];
        acc[1] += x[1] * y[1];
        acc[2] += x[2] * y[2];
        acc[3] += x[3] * y[3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triangle() -> Polytope {
        // x, y >= 0, x + y <= 1
        Polytope::new(
            vec![1.0, 1.0],
            1,
            2,
            vec![1.0],
            vec![0.0, 0.0],
            vec![f64::INFINITY; 2],
        )
        .unwrap()
    }

    #[test]
    fn column_major_copy() {
        let p = Polytope::new(
            vec![1.0, 2.0, 3.0, 4.0, 0.0, 6.0],
            2,
            3,
            vec![1.0, 1.0],
            vec![0.0; 3],
            vec![1.0; 3],
        )
        .unwrap();
        assert_eq!(p.col(1), &[2.0, 0.0]);
        assert_eq!(p.col_inv(1), &[0.5, 0.0]);
        assert_eq!(p.row(1), &[4.0, 0.0, 6.0]);
    }

    #[test]
    fn interior_checks() {
        let p = triangle();
        assert!(p.check_strictly_interior(&[0.2, 0.2], "x0").is_ok());
        assert!(p.check_strictly_interior(&[0.5, 0.5], "x0").is_err());
        assert!(p.check_strictly_interior(&[0.0, 0.5], "x0").is_err());
        assert!(p.check_strictly_interior(&[f64::NAN, 0.5], "x0").is_err());
        assert!(p.check_coordinate_bounded().is_ok());
    }

    #[test]
    fn unbounded_detected() {
        let p = Polytope::new(
            vec![1.0, 0.0],
            1,
            2,
            vec![1.0],
            vec![0.0, 0.0],
            vec![f64::INFINITY; 2],
        )
        .unwrap();
        assert!(p.check_coordinate_bounded().is_err());
    }

    #[test]
    fn shape_errors() {
        let e = Polytope::new(vec![1.0], 1, 2, vec![1.0], vec![0.0; 2], vec![1.0; 2]).unwrap_err();
        assert!(matches!(e, Error::Input { arg: "a", .. }));
        let e =
            Polytope::new(vec![1.0, 1.0], 1, 2, vec![], vec![0.0; 2], vec![1.0; 2]).unwrap_err();
        assert!(matches!(e, Error::Input { arg: "b", .. }));
    }
}
