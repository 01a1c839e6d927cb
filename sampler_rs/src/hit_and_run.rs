//! Continuous hit-and-run inside a polytope.
//!
//! Two proposal kinds: coordinate directions (slack updated incrementally from
//! one column of `A`, O(m) per step) and uniformly random directions (O(m d)).
use crate::error::{Error, Result};
use crate::polytope::{Polytope, FEAS_TOL};
use crate::rng::ChainRng;

/// Direction proposal of the hit-and-run chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Coordinate,
    Random,
}

impl Method {
    /// Parses `"coordinate"` or `"random"`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "coordinate" => Ok(Method::Coordinate),
            "random" => Ok(Method::Random),
            other => Err(Error::input(
                "method",
                format!("unknown method {other:?}; expected \"coordinate\" or \"random\""),
            )),
        }
    }
}

/// Chain lengths and seed, shared by the continuous and the lattice samplers.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    pub n_samples: usize,
    pub burn_in: usize,
    /// Steps between two recorded samples (1 records every step).
    pub thin: usize,
    pub n_chains: usize,
    pub seed: u64,
}

impl RunOptions {
    pub fn validate(&self) -> Result<()> {
        if self.n_chains == 0 {
            return Err(Error::input("n_chains", "must be at least 1"));
        }
        if self.thin == 0 {
            return Err(Error::input("thin", "must be at least 1"));
        }
        Ok(())
    }

    /// Number of samples of each chain: `n_samples` split as evenly as possible.
    pub fn per_chain(&self) -> Vec<usize> {
        let (q, r) = (
            self.n_samples / self.n_chains,
            self.n_samples % self.n_chains,
        );
        (0..self.n_chains).map(|c| q + usize::from(c < r)).collect()
    }
}

/// Largest `[t_lo, t_hi]` with `s - t * a >= 0`, given `inv = 1 / a` (0 where `a == 0`)
/// and `s >= 0`. Four independent lanes so the loop vectorises.
#[inline(always)]
pub(crate) fn chord_from_inv(s: &[f64], inv: &[f64]) -> (f64, f64) {
    let mut lo = [f64::NEG_INFINITY; 4];
    let mut hi = [f64::INFINITY; 4];
    let n = s.len().min(inv.len());
    let (s, inv) = (&s[..n], &inv[..n]);
    let cs = s.chunks_exact(4);
    let ci = inv.chunks_exact(4);
    let (rs, ri) = (cs.remainder(), ci.remainder());
    for (sv, iv) in cs.zip(ci) {
        for k in 0..4 {
            let r = sv[k] * iv[k];
            let h = if iv[k] > 0.0 { r } else { f64::INFINITY };
            let l = if iv[k] < 0.0 { r } else { f64::NEG_INFINITY };
            hi[k] = if h < hi[k] { h } else { hi[k] };
            lo[k] = if l > lo[k] { l } else { lo[k] };
        }
    }
    for (sv, iv) in rs.iter().zip(ri) {
        let r = sv * iv;
        if *iv > 0.0 && r < hi[0] {
            hi[0] = r;
        } else if *iv < 0.0 && r > lo[0] {
            lo[0] = r;
        }
    }
    (
        lo[0].max(lo[1]).max(lo[2].max(lo[3])),
        hi[0].min(hi[1]).min(hi[2].min(hi[3])),
    )
}

/// Largest `[t_lo, t_hi]` with `s - t * a >= 0` for `s >= 0` (branch-free,
/// four lanes: the signs of `a` are random, so branches would mispredict).
#[inline(always)]
pub(crate) fn chord_div(s: &[f64], a: &[f64]) -> (f64, f64) {
    let mut lo = [f64::NEG_INFINITY; 4];
    let mut hi = [f64::INFINITY; 4];
    let n = s.len().min(a.len());
    let (s, a) = (&s[..n], &a[..n]);
    let cs = s.chunks_exact(4);
    let ca = a.chunks_exact(4);
    let (rs, ra) = (cs.remainder(), ca.remainder());
    let mut lane = |k: usize, sv: f64, av: f64| {
        let r = sv / av;
        let h = if av > 0.0 { r } else { f64::INFINITY };
        let l = if av < 0.0 { r } else { f64::NEG_INFINITY };
        hi[k] = if h < hi[k] { h } else { hi[k] };
        lo[k] = if l > lo[k] { l } else { lo[k] };
    };
    for (sv, av) in cs.zip(ca) {
        for k in 0..4 {
            lane(k, sv[k], av[k]);
        }
    }
    for (sv, av) in rs.iter().zip(ra) {
        lane(0, *sv, *av);
    }
    (
        lo[0].max(lo[1]).max(lo[2].max(lo[3])),
        hi[0].min(hi[1]).min(hi[2].min(hi[3])),
    )
}

/// Largest `[t_lo, t_hi]` keeping `lo <= x + t u <= hi` (branch-free).
#[inline(always)]
pub(crate) fn chord_box(x: &[f64], u: &[f64], lo: &[f64], hi: &[f64]) -> (f64, f64) {
    let (mut tl, mut th) = (f64::NEG_INFINITY, f64::INFINITY);
    for (((&xi, &ui), &l), &h) in x.iter().zip(u).zip(lo).zip(hi) {
        if ui == 0.0 {
            continue; // never in practice (u is Gaussian); avoids 0 * inf
        }
        let r = 1.0 / ui;
        let a = (l - xi) * r;
        let b = (h - xi) * r;
        let (mn, mx) = if a < b { (a, b) } else { (b, a) };
        tl = if mn > tl { mn } else { tl };
        th = if mx < th { mx } else { th };
    }
    (tl, th)
}

/// `y += alpha * x`.
#[inline(always)]
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    let n = x.len().min(y.len());
    for (yv, xv) in y[..n].iter_mut().zip(&x[..n]) {
        *yv += alpha * xv;
    }
}

/// Steps between two from-scratch recomputations of the slack vector.
fn resync_interval(p: &Polytope, method: Method) -> usize {
    match method {
        // A resync costs m*d, a coordinate step m: every 32 d steps is ~3 %.
        Method::Coordinate => (32 * p.d).max(1024),
        // A random step already costs m*d.
        Method::Random => 64,
    }
}

struct Chain<'a> {
    p: &'a Polytope,
    x0: &'a [f64],
    s0: Vec<f64>,
    x: Vec<f64>,
    s: Vec<f64>,
    u: Vec<f64>,
    au: Vec<f64>,
    rng: ChainRng,
    method: Method,
    since_resync: usize,
    resync_every: usize,
    next_coord: usize,
}

impl<'a> Chain<'a> {
    fn new(p: &'a Polytope, x0: &'a [f64], method: Method, rng: ChainRng) -> Self {
        let mut s0 = vec![0.0; p.m];
        p.slack_into(x0, &mut s0);
        Chain {
            p,
            x0,
            s: s0.clone(),
            s0,
            x: x0.to_vec(),
            u: vec![0.0; p.d],
            au: vec![0.0; p.m],
            rng,
            method,
            since_resync: 0,
            resync_every: resync_interval(p, method),
            next_coord: 0,
        }
    }

    #[inline(always)]
    fn coordinate_step(&mut self) {
        let p = self.p;
        let i = self.next_coord;
        self.next_coord = if i + 1 == p.d { 0 } else { i + 1 };
        let xi = self.x[i];
        let (l, h) = chord_from_inv(&self.s, p.col_inv(i));
        let tlo = l.max(p.lo[i] - xi);
        let thi = h.min(p.hi[i] - xi);
        if tlo >= thi {
            return; // zero-length chord (only at a drifted boundary point)
        }
        let t = tlo + self.rng.uniform() * (thi - tlo);
        let new = (xi + t).max(p.lo[i]).min(p.hi[i]);
        self.x[i] = new;
        axpy(-(new - xi), p.col(i), &mut self.s);
    }

    #[inline(always)]
    fn random_step(&mut self) -> Result<()> {
        let p = self.p;
        for v in self.u.iter_mut() {
            *v = self.rng.normal();
        }
        self.au.fill(0.0);
        for (i, &ui) in self.u.iter().enumerate() {
            axpy(ui, p.col(i), &mut self.au);
        }
        let (bl, bh) = chord_box(&self.x, &self.u, &p.lo, &p.hi);
        let (rl, rh) = chord_div(&self.s, &self.au);
        let (tlo, thi) = (bl.max(rl), bh.min(rh));
        if !(tlo.is_finite() && thi.is_finite()) {
            return Err(Error::input(
                "a",
                "the polytope is unbounded along a sampled direction: give finite bounds or more constraint rows",
            ));
        }
        if tlo >= thi {
            return Ok(());
        }
        let t = tlo + self.rng.uniform() * (thi - tlo);
        for ((xi, &ui), (&lo, &hi)) in self.x.iter_mut().zip(&self.u).zip(p.lo.iter().zip(&p.hi)) {
            *xi = (*xi + t * ui).max(lo).min(hi);
        }
        axpy(-t, &self.au, &mut self.s);
        Ok(())
    }

    fn step(&mut self) -> Result<()> {
        match self.method {
            Method::Coordinate => self.coordinate_step(),
            Method::Random => self.random_step()?,
        }
        self.since_resync += 1;
        if self.since_resync >= self.resync_every {
            self.resync();
        }
        Ok(())
    }

    /// Recomputes the slack from scratch; if rounding drift has pushed the
    /// point outside a row by more than the tolerance, pulls it back towards
    /// the (strictly interior) start point.
    fn resync(&mut self) {
        self.since_resync = 0;
        self.p.slack_into(&self.x, &mut self.s);
        let worst = self.s.iter().cloned().fold(f64::INFINITY, f64::min);
        if worst >= -0.1 * FEAS_TOL {
            return;
        }
        // s(x0 + lam (x - x0)) = (1 - lam) s0 + lam s >= 0
        let mut lam: f64 = 1.0;
        for (&sj, &s0j) in self.s.iter().zip(&self.s0) {
            if sj < 0.0 {
                lam = lam.min(s0j / (s0j - sj));
            }
        }
        lam *= 0.999;
        let p = self.p;
        for (i, (xi, &x0i)) in self.x.iter_mut().zip(self.x0).enumerate() {
            *xi = (x0i + lam * (*xi - x0i)).max(p.lo[i]).min(p.hi[i]);
        }
        self.p.slack_into(&self.x, &mut self.s);
    }

    /// Appends the current point, after making sure it is feasible.
    fn emit(&mut self, out: &mut Vec<f64>) {
        let worst = self.s.iter().cloned().fold(f64::INFINITY, f64::min);
        if worst < -0.1 * FEAS_TOL {
            self.resync();
        }
        out.extend_from_slice(&self.x);
    }
}

/// Samples `opts.n_samples` points (row-major, `n_samples x d`) from the
/// uniform distribution on the polytope, starting every chain at `x0`.
///
/// `x0` must be strictly interior. Every returned point satisfies the bounds
/// exactly and `A x <= b + 1e-9`.
pub fn hit_and_run(
    p: &Polytope,
    x0: &[f64],
    method: Method,
    opts: &RunOptions,
) -> Result<Vec<f64>> {
    opts.validate()?;
    p.check_strictly_interior(x0, "x0")?;
    p.check_coordinate_bounded()?;
    let total = opts
        .n_samples
        .checked_mul(p.d)
        .ok_or_else(|| Error::input("n_samples", "is too large"))?;
    let mut out = Vec::with_capacity(total);
    let rngs = ChainRng::streams(opts.seed, opts.n_chains);
    for (rng, n_c) in rngs.into_iter().zip(opts.per_chain()) {
        if n_c == 0 {
            continue;
        }
        let mut chain = Chain::new(p, x0, method, rng);
        for _ in 0..opts.burn_in {
            chain.step()?;
        }
        for _ in 0..n_c {
            for _ in 0..opts.thin {
                chain.step()?;
            }
            chain.emit(&mut out);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simplex(d: usize) -> Polytope {
        Polytope::new(
            vec![1.0; d],
            1,
            d,
            vec![1.0],
            vec![0.0; d],
            vec![f64::INFINITY; d],
        )
        .unwrap()
    }

    fn opts(n: usize) -> RunOptions {
        RunOptions {
            n_samples: n,
            burn_in: 100,
            thin: 5,
            n_chains: 3,
            seed: 42,
        }
    }

    #[test]
    fn chord_matches_scalar() {
        let s = [1.0, 2.0, 0.5, 3.0, 1.0, 4.0, 2.0];
        let a = [1.0, -2.0, 0.0, 0.5, -1.0, 2.0, 0.25];
        let inv: Vec<f64> = a
            .iter()
            .map(|&v| if v != 0.0 { 1.0 / v } else { 0.0 })
            .collect();
        let (lo, hi) = chord_from_inv(&s, &inv);
        assert_eq!(lo, -1.0);
        assert_eq!(hi, 1.0);
    }

    #[test]
    fn samples_feasible_and_reproducible() {
        let p = simplex(5);
        let x0 = vec![0.1; 5];
        for method in [Method::Coordinate, Method::Random] {
            let a = hit_and_run(&p, &x0, method, &opts(1000)).unwrap();
            let b = hit_and_run(&p, &x0, method, &opts(1000)).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.len(), 5000);
            for x in a.chunks(5) {
                assert!(x.iter().all(|&v| v >= 0.0));
                assert!(x.iter().sum::<f64>() <= 1.0 + FEAS_TOL);
            }
            // Mean of each coordinate of the uniform simplex is 1 / (d + 1).
            let mean0 = a.chunks(5).map(|x| x[0]).sum::<f64>() / 1000.0;
            assert!((mean0 - 1.0 / 6.0).abs() < 0.03, "{method:?} mean {mean0}");
        }
    }

    #[test]
    fn bad_inputs() {
        let p = simplex(2);
        let e = hit_and_run(&p, &[0.6, 0.6], Method::Coordinate, &opts(10)).unwrap_err();
        assert!(matches!(e, Error::Input { arg: "x0", .. }));
        let mut o = opts(10);
        o.n_chains = 0;
        let e = hit_and_run(&p, &[0.1, 0.1], Method::Coordinate, &o).unwrap_err();
        assert!(matches!(
            e,
            Error::Input {
                arg: "n_chains",
                ..
            }
        ));
        assert!(Method::parse("diagonal").is_err());
    }

    #[test]
    fn chains_split_samples() {
        let o = RunOptions {
            n_samples: 10,
            burn_in: 0,
            thin: 1,
            n_chains: 3,
            seed: 0,
        };
        assert_eq!(o.per_chain(), vec![4, 3, 3]);
    }
}
