//! Coordinate hit-and-run on the integer points of a polytope.
//!
//! Each step picks a coordinate, computes the chord through the current point
//! from the slacks and moves to an integer of that chord chosen uniformly: a
//! random-scan Gibbs sampler whose stationary law is uniform on the lattice
//! points {z in Z^d : lo <= z <= hi, A z <= b} (when coordinate moves connect
//! them, which holds for the usual box-plus-few-rows systems).
use crate::error::{Error, Result};
use crate::hit_and_run::{axpy, chord_from_inv, RunOptions};
use crate::polytope::{dot, Polytope, FEAS_TOL};
use crate::rng::ChainRng;

/// Integer bounds must stay within +-2^52 so that differences are exact in f64.
pub const MAX_ABS_INT: i64 = 1 << 52;

/// Tolerance of row `j`: float round-off on `A z` must never reject a lattice
/// point on the boundary nor admit one that is really outside.
#[inline]
fn row_tol(b: f64) -> f64 {
    FEAS_TOL * b.abs().max(1.0)
}

/// Exact feasibility of an integer point: bounds compared as integers,
/// rows as `A z <= b + tol` computed from scratch.
pub fn int_point_feasible(
    p: &Polytope,
    lo: &[i64],
    hi: &[i64],
    z: &[i64],
    zf: &mut [f64],
) -> Option<String> {
    for i in 0..p.d {
        if z[i] < lo[i] || z[i] > hi[i] {
            return Some(format!(
                "entry {i} = {} is outside [{}, {}]",
                z[i], lo[i], hi[i]
            ));
        }
        zf[i] = z[i] as f64;
    }
    for j in 0..p.m {
        let s = p.b[j] - dot(p.row(j), zf);
        if s < -row_tol(p.b[j]) {
            return Some(format!("violates row {j} of A z <= b by {:e}", -s));
        }
    }
    None
}

/// The integer points of a polytope: integer bounds and float rows.
#[derive(Debug, Clone)]
pub struct IntPolytope {
    pub p: Polytope,
    pub lo: Vec<i64>,
    pub hi: Vec<i64>,
}

impl IntPolytope {
    /// Validates and builds the lattice polytope; `a` is row-major `m x d`.
    pub fn new(
        a: Vec<f64>,
        m: usize,
        d: usize,
        b: Vec<f64>,
        lo: Vec<i64>,
        hi: Vec<i64>,
    ) -> Result<Self> {
        for (arg, v) in [("lo", &lo), ("hi", &hi)] {
            if v.len() != d {
                return Err(Error::input(
                    arg,
                    format!("has length {}, expected a.shape[1] = {d}", v.len()),
                ));
            }
            if let Some(i) = v.iter().position(|x| x.abs() > MAX_ABS_INT) {
                return Err(Error::input(
                    arg,
                    format!("entry {i} exceeds 2**52 in absolute value"),
                ));
            }
        }
        let lof: Vec<f64> = lo.iter().map(|&v| v as f64).collect();
        let hif: Vec<f64> = hi.iter().map(|&v| v as f64).collect();
        let p = Polytope::new(a, m, d, b, lof, hif)?;
        Ok(IntPolytope { p, lo, hi })
    }
}

/// Samples `opts.n_samples` integer points (row-major, `n_samples x d`),
/// starting every chain at the feasible integer point `z0`.
pub fn hit_and_run_int(ip: &IntPolytope, z0: &[i64], opts: &RunOptions) -> Result<Vec<i64>> {
    opts.validate()?;
    let (p, lo, hi) = (&ip.p, &ip.lo[..], &ip.hi[..]);
    let (m, d) = (p.m, p.d);
    if z0.len() != d {
        return Err(Error::input(
            "z0",
            format!("has length {}, expected a.shape[1] = {d}", z0.len()),
        ));
    }
    let mut zf = vec![0.0; d];
    if let Some(why) = int_point_feasible(p, lo, hi, z0, &mut zf) {
        return Err(Error::input("z0", format!("is not feasible: {why}")));
    }
    let tol: Vec<f64> = p.b.iter().map(|&bj| row_tol(bj)).collect();
    let total = opts
        .n_samples
        .checked_mul(d)
        .ok_or_else(|| Error::input("n_samples", "is too large"))?;
    let mut out = Vec::with_capacity(total);
    let resync_every = (32 * d).max(1024);

    // Slack with the tolerance folded in: every admitted point keeps it >= 0.
    let slack_tol = |z: &[i64], zf: &mut [f64], st: &mut [f64]| {
        for (zfi, &zi) in zf.iter_mut().zip(z) {
            *zfi = zi as f64;
        }
        p.slack_into(zf, st);
        for (sj, tj) in st.iter_mut().zip(&tol) {
            *sj += tj;
        }
    };

    let rngs = ChainRng::streams(opts.seed, opts.n_chains);
    for (mut rng, n_c) in rngs.into_iter().zip(opts.per_chain()) {
        if n_c == 0 {
            continue;
        }
        let mut z = z0.to_vec();
        let mut last_ok = z0.to_vec();
        let mut st = vec![0.0; m];
        slack_tol(&z, &mut zf, &mut st);
        let mut since = 0usize;
        let mut step =
            |z: &mut Vec<i64>, st: &mut Vec<f64>, zf: &mut Vec<f64>, rng: &mut ChainRng| {
                let i = rng.index(d);
                let (l, h) = chord_from_inv(st, p.col_inv(i));
                // Integers k with lo <= z_i + k <= hi and st - k a >= 0.
                let klo = l.ceil().max(p.lo[i] - z[i] as f64);
                let khi = h.floor().min(p.hi[i] - z[i] as f64);
                if klo < khi {
                    // Both are integers within +-2^53 here, so the casts are exact.
                    let k = rng.int_in(klo as i64, khi as i64);
                    if k != 0 {
                        z[i] += k;
                        axpy(-(k as f64), p.col(i), st);
                    }
                }
                since += 1;
                if since >= resync_every {
                    since = 0;
                    slack_tol(z, zf, st);
                }
            };
        for _ in 0..opts.burn_in {
            step(&mut z, &mut st, &mut zf, &mut rng);
        }
        let mut emitted = 0;
        while emitted < n_c {
            for _ in 0..opts.thin {
                step(&mut z, &mut st, &mut zf, &mut rng);
            }
            if int_point_feasible(p, lo, hi, &z, &mut zf).is_none() {
                last_ok.copy_from_slice(&z);
                out.extend_from_slice(&z);
                emitted += 1;
            } else {
                // Round-off let the chain step outside (never seen with
                // integer data): restart from the last verified point.
                z.copy_from_slice(&last_ok);
                slack_tol(&z, &mut zf, &mut st);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn visits_every_point_of_a_triangle() {
        // z1 + z2 <= 4, 0 <= z <= 4: 15 points.
        let opts = RunOptions {
            n_samples: 30_000,
            burn_in: 10,
            thin: 2,
            n_chains: 2,
            seed: 1,
        };
        let ip = IntPolytope::new(vec![1.0, 1.0], 1, 2, vec![4.0], vec![0, 0], vec![4, 4]).unwrap();
        let z = hit_and_run_int(&ip, &[0, 0], &opts).unwrap();
        let mut counts: HashMap<(i64, i64), usize> = HashMap::new();
        for p in z.chunks(2) {
            assert!(p[0] >= 0 && p[1] >= 0 && p[0] + p[1] <= 4);
            *counts.entry((p[0], p[1])).or_default() += 1;
        }
        assert_eq!(counts.len(), 15);
        for &c in counts.values() {
            assert!((c as f64 - 2000.0).abs() < 300.0, "{c}");
        }
    }

    #[test]
    fn rejects_infeasible_start() {
        let opts = RunOptions {
            n_samples: 1,
            burn_in: 0,
            thin: 1,
            n_chains: 1,
            seed: 1,
        };
        let ip = IntPolytope::new(vec![1.0, 1.0], 1, 2, vec![4.0], vec![0, 0], vec![4, 4]).unwrap();
        let e = hit_and_run_int(&ip, &[3, 3], &opts).unwrap_err();
        assert!(matches!(e, Error::Input { arg: "z0", .. }));
    }
}
