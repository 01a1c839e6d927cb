//! The maximizer of log expected improvement over an experiment's feasible
//! set, in the encoded space `[0, 1]^D` of `optserve.domain.encoding`.
//!
//! The stages are those of the Python maximizer
//! (`optserve.optimizers.maximizer`):
//!
//! 1. candidates: uniform feasible draws (hit-and-run on the constrained
//!    doubles, the integer lattice of the constrained ints, uniform draws of
//!    the other columns) and feasible perturbations of the incumbents;
//! 2. scoring: log EI under the GP (`PreparedGp`; averaged over its
//!    posterior means where it has several, each over its own incumbent:
//!    noisy EI), observed points excluded;
//! 3. a local search with shrinking steps from the best few, feasible
//!    points only;
//! 4. a gradient polish of log EI over the continuous columns of the best
//!    two, under the bounds and the linear constraints: projected
//!    quasi-Newton ascent (Rosen's gradient projection with a BFGS metric)
//!    whose line search never leaves the polytope;
//! 5. the best point that passes the final feasibility check.
//!
//! Everything is deterministic for a given seed.
use std::collections::HashSet;

use crate::acquisition::{
    erfc, log_erfc_times_x_plus_x2, log_h, log_mean_ei, MatrixRef, PreparedGp, VAR_FLOOR,
};
use crate::error::{Error, Result};
use crate::hit_and_run::{hit_and_run, Method, RunOptions};
use crate::lattice::{hit_and_run_int, IntPolytope};
use crate::penalty::LocalPenalty;
use crate::polytope::{dot, Polytope, FEAS_TOL};
use crate::rng::ChainRng;

/// How one encoded column maps to a parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// A double without a grid: any value of `[0, 1]`.
    Continuous,
    /// An int or a double on a grid: the encoded value `e` stands for
    /// `v = t^-1(lo_t + e (hi_t - lo_t))` (`t = log` on a log scale), snapped
    /// to the grid, clipped to `[min, max]` and rounded for ints.
    Snapped(Snap),
    /// A member of a one-hot group (a categorical, a conditional).
    OneHot,
}

/// The value map of a snapped column (see [`Column::Snapped`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Snap {
    pub lo_t: f64,
    pub hi_t: f64,
    pub min: f64,
    pub max: f64,
    pub log: bool,
    pub int: bool,
    /// Sorted grid values (empty without a grid).
    pub grid: Vec<f64>,
}

impl Snap {
    /// The parameter value an encoded `e` stands for.
    pub fn value(&self, e: f64) -> f64 {
        let x = self.lo_t + e.clamp(0.0, 1.0) * (self.hi_t - self.lo_t);
        let mut v = if self.log { x.exp() } else { x };
        if !self.grid.is_empty() {
            let k = self.grid.partition_point(|&g| g < v);
            v = match (k.checked_sub(1), self.grid.get(k)) {
                (Some(i), Some(&above)) => {
                    let below = self.grid[i];
                    // numpy's argmin keeps the first (smaller) of two equally near
                    if v - below <= above - v {
                        below
                    } else {
                        above
                    }
                }
                (Some(i), None) => self.grid[i],
                (None, _) => self.grid[0],
            };
        }
        v = v.max(self.min).min(self.max);
        if self.int {
            v = v.round_ties_even();
        }
        v
    }

    /// The encoding of value `v`.
    pub fn encode(&self, v: f64) -> f64 {
        if self.hi_t == self.lo_t {
            return 0.5;
        }
        let x = if self.log { v.ln() } else { v };
        (x - self.lo_t) / (self.hi_t - self.lo_t)
    }
}

/// The constrained doubles: a polytope over the unit cube of their columns.
#[derive(Debug, Clone)]
pub struct DoubleBlock {
    /// Encoded column of each polytope coordinate.
    pub cols: Vec<usize>,
    /// `{u in [0, 1]^k : A u <= b}`.
    pub poly: Polytope,
    /// A strictly interior point (the Chebyshev centre).
    pub x0: Vec<f64>,
}

/// The constrained ints: the integer points of a polytope over their values.
#[derive(Debug, Clone)]
pub struct IntBlock {
    pub cols: Vec<usize>,
    pub poly: IntPolytope,
    /// A feasible integer point.
    pub z0: Vec<i64>,
}

/// The encoded search space.
#[derive(Debug, Clone)]
pub struct Space {
    pub columns: Vec<Column>,
    /// One-hot groups as (first column, width).
    pub groups: Vec<(usize, usize)>,
    pub doubles: Option<DoubleBlock>,
    pub ints: Option<IntBlock>,
    /// Columns a perturbation moves (every non-one-hot column).
    numeric: Vec<usize>,
    /// Columns the gradient polish moves (the continuous ones).
    free: Vec<usize>,
}

impl Space {
    /// Checks that the pieces agree: groups cover exactly the one-hot
    /// columns, blocks name distinct continuous (doubles) or snapped integer
    /// (ints) columns, and the start points are feasible.
    pub fn new(
        columns: Vec<Column>,
        groups: Vec<(usize, usize)>,
        doubles: Option<DoubleBlock>,
        ints: Option<IntBlock>,
    ) -> Result<Self> {
        let dim = columns.len();
        if dim == 0 {
            return Err(Error::input("columns", "must not be empty"));
        }
        let mut in_group = vec![false; dim];
        for &(start, width) in &groups {
            if width == 0 || start + width > dim {
                return Err(Error::input(
                    "groups",
                    format!("group ({start}, {width}) is empty or outside {dim} columns"),
                ));
            }
            for (c, seen) in in_group.iter_mut().enumerate().skip(start).take(width) {
                if *seen || columns[c] != Column::OneHot {
                    return Err(Error::input(
                        "groups",
                        format!("column {c} is not a one-hot column of exactly one group"),
                    ));
                }
                *seen = true;
            }
        }
        if let Some(c) = (0..dim).find(|&c| (columns[c] == Column::OneHot) != in_group[c]) {
            return Err(Error::input(
                "groups",
                format!("one-hot column {c} belongs to no group"),
            ));
        }
        let mut used = vec![false; dim];
        if let Some(block) = &doubles {
            if block.cols.len() != block.poly.d || block.x0.len() != block.poly.d {
                return Err(Error::input(
                    "double_cols",
                    "one column and one start coordinate per polytope coordinate",
                ));
            }
            for &c in &block.cols {
                if c >= dim || used[c] || columns[c] != Column::Continuous {
                    return Err(Error::input(
                        "double_cols",
                        format!("column {c} is not a distinct continuous column"),
                    ));
                }
                used[c] = true;
            }
            if block.poly.lo.iter().any(|&v| v != 0.0) || block.poly.hi.iter().any(|&v| v != 1.0) {
                return Err(Error::input(
                    "double_a",
                    "the polytope's bounds must be [0, 1]",
                ));
            }
            block.poly.check_strictly_interior(&block.x0, "double_x0")?;
        }
        if let Some(block) = &ints {
            if block.cols.len() != block.poly.p.d || block.z0.len() != block.poly.p.d {
                return Err(Error::input(
                    "int_cols",
                    "one column and one start coordinate per polytope coordinate",
                ));
            }
            for (k, &c) in block.cols.iter().enumerate() {
                let ok = c < dim
                    && !used[c]
                    && matches!(&columns[c], Column::Snapped(s)
                        if s.int && !s.log && s.grid.is_empty()
                            && s.min == block.poly.lo[k] as f64
                            && s.max == block.poly.hi[k] as f64);
                if !ok {
                    return Err(Error::input(
                        "int_cols",
                        format!("column {c} is not a distinct linear int column with the polytope's bounds"),
                    ));
                }
                used[c] = true;
            }
            let mut zf = vec![0.0; block.z0.len()];
            if let Some(why) = crate::lattice::int_point_feasible(
                &block.poly.p,
                &block.poly.lo,
                &block.poly.hi,
                &block.z0,
                &mut zf,
            ) {
                return Err(Error::input("int_z0", why));
            }
        }
        let numeric = (0..dim).filter(|&c| columns[c] != Column::OneHot).collect();
        let free = (0..dim)
            .filter(|&c| columns[c] == Column::Continuous)
            .collect();
        Ok(Space {
            columns,
            groups,
            doubles,
            ints,
            numeric,
            free,
        })
    }

    pub fn dim(&self) -> usize {
        self.columns.len()
    }

    /// Snaps a row in place to the encoding of the nearest valid point.
    pub fn canonical(&self, row: &mut [f64]) {
        for (c, col) in self.columns.iter().enumerate() {
            match col {
                Column::Continuous => row[c] = row[c].clamp(0.0, 1.0),
                Column::Snapped(s) => row[c] = s.encode(s.value(row[c])),
                Column::OneHot => {}
            }
        }
        for &(start, width) in &self.groups {
            let g = &mut row[start..start + width];
            let mut best = 0;
            for k in 1..width {
                if g[k] > g[best] {
                    best = k;
                }
            }
            g.fill(0.0);
            g[best] = 1.0;
        }
    }

    /// Whether a canonical row meets every linear constraint (`tol` on the
    /// unit rows of the doubles; the ints as `int_point_feasible`).
    pub fn feasible(&self, row: &[f64], tol: f64) -> bool {
        if let Some(block) = &self.doubles {
            let p = &block.poly;
            let mut u = [0.0; 64];
            let mut heap;
            let u: &mut [f64] = if p.d <= 64 {
                &mut u[..p.d]
            } else {
                heap = vec![0.0; p.d];
                &mut heap
            };
            for (k, &c) in block.cols.iter().enumerate() {
                u[k] = row[c];
                if !(0.0..=1.0).contains(&u[k]) {
                    return false;
                }
            }
            for j in 0..p.m {
                if dot(p.row(j), u) > p.b[j] + tol {
                    return false;
                }
            }
        }
        if let Some(block) = &self.ints {
            let mut z = Vec::with_capacity(block.cols.len());
            for &c in &block.cols {
                let Column::Snapped(s) = &self.columns[c] else {
                    return false;
                };
                z.push(s.value(row[c]) as i64);
            }
            let mut zf = vec![0.0; z.len()];
            let p = &block.poly;
            if crate::lattice::int_point_feasible(&p.p, &p.lo, &p.hi, &z, &mut zf).is_some() {
                return false;
            }
        }
        true
    }

    /// `n` uniform feasible draws, canonical, row-major.
    pub fn draw(&self, n: usize, rng: &mut ChainRng) -> Result<Vec<f64>> {
        let dim = self.dim();
        let mut rows = vec![0.0; n * dim];
        if n == 0 {
            return Ok(rows);
        }
        for row in rows.chunks_exact_mut(dim) {
            for (c, col) in self.columns.iter().enumerate() {
                row[c] = match col {
                    Column::Snapped(s) if s.int && !s.log && s.grid.is_empty() => {
                        s.encode(rng.int_in(s.min as i64, s.max as i64) as f64)
                    }
                    Column::Snapped(s) if !s.grid.is_empty() => {
                        s.encode(s.grid[rng.index(s.grid.len())])
                    }
                    _ => rng.uniform(),
                };
            }
        }
        let chains = n.min(4);
        if let Some(block) = &self.doubles {
            let k = block.poly.d;
            let opts = RunOptions {
                n_samples: n,
                burn_in: 200 * k,
                thin: k,
                n_chains: chains,
                seed: rng_seed(rng),
            };
            let us = hit_and_run(&block.poly, &block.x0, Method::Coordinate, &opts)?;
            for (row, u) in rows.chunks_exact_mut(dim).zip(us.chunks_exact(k)) {
                for (&c, &v) in block.cols.iter().zip(u) {
                    row[c] = v.clamp(0.0, 1.0);
                }
            }
        }
        if let Some(block) = &self.ints {
            let k = block.poly.p.d;
            let opts = RunOptions {
                n_samples: n,
                burn_in: 200 * k,
                thin: k,
                n_chains: chains,
                seed: rng_seed(rng),
            };
            let zs = hit_and_run_int(&block.poly, &block.z0, &opts)?;
            for (row, z) in rows.chunks_exact_mut(dim).zip(zs.chunks_exact(k)) {
                for (&c, &v) in block.cols.iter().zip(z) {
                    if let Column::Snapped(s) = &self.columns[c] {
                        row[c] = s.encode(v as f64);
                    }
                }
            }
        }
        for row in rows.chunks_exact_mut(dim) {
            self.canonical(row);
        }
        Ok(rows)
    }

    /// Feasible perturbations of `rows`, `per_row` each: a few numeric
    /// columns moved by N(0, step^2) (each with probability ~ 2 / d, at
    /// least one), each one-hot group switched with probability 0.15.
    ///
    /// Returns the canonical feasible rows and the index of each one's origin.
    pub fn neighbours(
        &self,
        rows: &[f64],
        per_row: usize,
        step: f64,
        rng: &mut ChainRng,
    ) -> (Vec<f64>, Vec<usize>) {
        let dim = self.dim();
        let cols = &self.numeric;
        let p_move = if cols.is_empty() {
            0.0
        } else {
            (2.0 / cols.len() as f64).min(1.0)
        };
        let mut out = Vec::with_capacity(rows.len() * per_row);
        let mut origin = Vec::with_capacity(rows.len() / dim.max(1) * per_row);
        let mut x = vec![0.0; dim];
        for (i, row) in rows.chunks_exact(dim).enumerate() {
            for _ in 0..per_row {
                x.copy_from_slice(row);
                if !cols.is_empty() {
                    let forced = rng.index(cols.len());
                    for (k, &c) in cols.iter().enumerate() {
                        if k == forced || rng.uniform() < p_move {
                            x[c] += step * rng.normal();
                        }
                    }
                }
                for &(start, width) in &self.groups {
                    if rng.uniform() < 0.15 {
                        x[start..start + width].fill(0.0);
                        x[start + rng.index(width)] = 1.0;
                    }
                }
                self.canonical(&mut x);
                if self.feasible(&x, FEAS_TOL) {
                    out.extend_from_slice(&x);
                    origin.push(i);
                }
            }
        }
        (out, origin)
    }
}

fn rng_seed(rng: &mut ChainRng) -> u64 {
    (rng.uniform() * 9_007_199_254_740_992.0) as u64 ^ ((rng.index(1 << 16) as u64) << 48)
}

/// Counts of the maximizer's stages.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Uniform feasible draws.
    pub global: usize,
    /// Perturbations of each incumbent (step 0.1).
    pub local: usize,
    /// Steps of the local search, in order; skipped where every column is
    /// continuous (the gradient polish of every start does better there).
    pub refine_steps: Vec<f64>,
    /// Perturbations of each start per step.
    pub refine_candidates: usize,
    /// Starts of the local search (the best candidates).
    pub refine_starts: usize,
    /// Starts of the gradient polish (the best after the local search).
    pub polish_starts: usize,
    /// Iterations of each polish.
    pub polish_iterations: usize,
    /// Threads scoring large batches (0: the available cores, at most 4).
    pub threads: usize,
    pub seed: u64,
}

impl Default for Settings {
    /// The Python maximizer's counts, every start polished.
    fn default() -> Self {
        Settings {
            global: 768,
            local: 96,
            refine_steps: vec![0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001],
            refine_candidates: 48,
            refine_starts: 5,
            polish_starts: 5,
            polish_iterations: 40,
            threads: 0,
            seed: 0,
        }
    }
}

/// The maximizer's answer.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The canonical encoded point, feasible.
    pub point: Vec<f64>,
    /// Its log EI.
    pub value: f64,
    /// The best log EI among the scored candidates (before the local search).
    pub candidates_best: f64,
    /// Candidates scored in all (for the record).
    pub scored: usize,
}

/// Log EI of rows under a GP (one incumbent per posterior mean), plus the
/// pending points' local penalty where there is one; observed points
/// (`taken`) at -inf.
struct Objective<'a> {
    gp: &'a PreparedGp,
    incumbents: &'a [f64],
    penalty: Option<&'a LocalPenalty>,
    taken: HashSet<Vec<i64>>,
    scored: usize,
    threads: usize,
}

/// Multiply-adds (candidates x n^2 / 2) below which a batch is scored on
/// one thread: a thread costs tens of microseconds.
const PARALLEL_WORK: usize = 1 << 22;

/// The key of a row as `optserve.optimizers.acquisition.row_keys` makes it
/// (rounded to 9 decimals).
fn row_key(row: &[f64]) -> Vec<i64> {
    row.iter().map(|v| (v * 1e9).round() as i64).collect()
}

impl Objective<'_> {
    fn score(&mut self, rows: &[f64]) -> Result<Vec<f64>> {
        let dim = self.gp.d;
        let k = rows.len() / dim;
        self.scored += k;
        let (gp, incumbents) = (self.gp, self.incumbents);
        let threads = if k * gp.n * gp.n / 2 < PARALLEL_WORK {
            1
        } else {
            self.threads.min(k)
        };
        let mut values = if threads <= 1 {
            gp.log_ei(&MatrixRef::new("candidates", rows, k, dim)?, incumbents)?
        } else {
            // each candidate's score is independent: equal results on any split
            let per = k.div_ceil(threads);
            let parts: Vec<Result<Vec<f64>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = rows
                    .chunks(per * dim)
                    .map(|part| {
                        scope.spawn(move || {
                            gp.log_ei(
                                &MatrixRef::new("candidates", part, part.len() / dim, dim)?,
                                incumbents,
                            )
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("scoring does not panic"))
                    .collect()
            });
            let mut all = Vec::with_capacity(k);
            for part in parts {
                all.extend(part?);
            }
            all
        };
        for (v, row) in values.iter_mut().zip(rows.chunks_exact(dim)) {
            if self.taken.contains(&row_key(row)) {
                *v = f64::NEG_INFINITY;
            } else if let Some(penalty) = self.penalty {
                *v += penalty.value(row);
            }
        }
        Ok(values)
    }
}

impl Objective<'_> {
    /// The `k` best rows by score, best first (ties: the earlier index), as
    /// `top(&self.score(rows)?, k)` with their scores, but scoring exactly only
    /// the rows whose upper bound reaches the k-th best: the posterior
    /// variance is at most that given the most correlated training point
    /// alone, `s - max_j k_j^2 / K_jj`, and log EI (each mean's, so their
    /// average too) grows with the variance.
    fn top_pruned(&mut self, rows: &[f64], k: usize) -> Result<(Vec<usize>, Vec<f64>)> {
        let gp = self.gp;
        let (n, dim) = (gp.n, gp.d);
        let count = rows.len() / dim;
        if n == 0 || count <= k {
            let values = self.score(rows)?;
            let best = top(&values, k);
            let chosen = best.iter().map(|&i| values[i]).collect();
            return Ok((best, chosen));
        }
        let k_diag: Vec<f64> = (0..n)
            .map(|j| {
                let row = &gp.chol[j * n..j * n + j + 1];
                dot(row, row)
            })
            .collect();
        let mut bound = Vec::with_capacity(count);
        let mut xs_x = vec![0.0; dim];
        let mut means = vec![0.0; gp.means];
        for row in rows.chunks_exact(dim) {
            for ((o, x), il) in xs_x.iter_mut().zip(row).zip(&gp.inv_l) {
                *o = x * il;
            }
            means.fill(0.0);
            let mut reduce = 0.0f64;
            for ((t, alpha), kd) in gp
                .xs
                .chunks_exact(dim)
                .zip(gp.alpha.chunks_exact(gp.means))
                .zip(&k_diag)
            {
                let r2: f64 = xs_x.iter().zip(t).map(|(a, b)| (a - b) * (a - b)).sum();
                let u = SQRT5 * r2.sqrt();
                let kv = gp.s * (1.0 + u + u * u / 3.0) * (-u).exp();
                for (m, a) in means.iter_mut().zip(alpha) {
                    *m += kv * a;
                }
                reduce = reduce.max(kv * kv / kd);
            }
            // a margin over the round-off of the exact variance and mean
            let var_s = (gp.s - reduce).max(VAR_FLOOR) + 1e-9 * gp.s;
            for m in means.iter_mut() {
                *m = gp.y_mean + gp.y_std * *m;
            }
            let value = log_mean_ei(&means, gp.y_std * var_s.sqrt(), self.incumbents);
            // the penalty is cheap and exact: the bound keeps it as it is
            let penalty = self.penalty.map_or(0.0, |p| p.value(row));
            bound.push(value + 1e-9 * (1.0 + value.abs()) + penalty);
        }
        let order = top(&bound, count);
        let mut best: Vec<(f64, usize)> = Vec::with_capacity(k + PRUNE_BLOCK);
        let mut pos = 0;
        let mut block = Vec::with_capacity(PRUNE_BLOCK * dim);
        while pos < count {
            if best.len() >= k && bound[order[pos]] < best[k - 1].0 {
                break;
            }
            let ids = &order[pos..(pos + PRUNE_BLOCK).min(count)];
            block.clear();
            for &i in ids {
                block.extend_from_slice(&rows[i * dim..(i + 1) * dim]);
            }
            let values = self.score(&block)?;
            best.extend(values.into_iter().zip(ids.iter().copied()));
            best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            best.truncate(k);
            pos += ids.len();
        }
        Ok(best.into_iter().map(|(v, i)| (i, v)).unzip())
    }
}

/// Rows scored exactly at a time by `Objective::top_pruned`.
const PRUNE_BLOCK: usize = 64;

/// Indices of the `k` largest values, best first (ties: the earlier index).
fn top(values: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// The best feasible point of log EI under `gp`, over `incumbents` (one per
/// posterior mean of `gp`, log EI averaged over them), plus `penalty` (the
/// points in flight) where given.
///
/// `best_rows` (row-major, `D` columns) are the best observations, whose
/// perturbations join the uniform draws. Returns None when no scored point
/// has a finite value (every one is an observed point).
pub fn maximize_log_ei(
    gp: &PreparedGp,
    incumbents: &[f64],
    space: &Space,
    best_rows: &[f64],
    penalty: Option<&LocalPenalty>,
    settings: &Settings,
) -> Result<Option<Outcome>> {
    let dim = space.dim();
    if gp.is_mixture() {
        return Err(Error::input(
            "gp",
            "has a mixture kernel, whose candidates need their inputs mapped and scaled",
        ));
    }
    if gp.d != dim {
        return Err(Error::input(
            "space",
            format!("has {dim} columns, the GP has D = {}", gp.d),
        ));
    }
    if !best_rows.len().is_multiple_of(dim) || best_rows.iter().any(|v| !v.is_finite()) {
        return Err(Error::input(
            "best_rows",
            format!("must be finite rows of {dim} columns"),
        ));
    }
    if let Some(p) = penalty.filter(|p| p.dim() != dim) {
        return Err(Error::input(
            "penalty",
            format!("has {} columns, the space has {dim}", p.dim()),
        ));
    }
    gp.check_incumbents(incumbents)?;
    let mut rng = ChainRng::streams(settings.seed, 1).remove(0);
    let mut objective = Objective {
        gp,
        incumbents,
        penalty,
        taken: gp.xs_rows().map(|row| row_key(&row)).collect(),
        scored: 0,
        threads: match settings.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            t => t,
        },
    };
    // 1. candidates
    let mut rows = space.draw(settings.global, &mut rng)?;
    let mut bases = best_rows.to_vec();
    for row in bases.chunks_exact_mut(dim) {
        space.canonical(row);
    }
    let (near, _) = space.neighbours(&bases, settings.local, 0.1, &mut rng);
    rows.extend_from_slice(&near);
    // 2. scoring (exactly where it can matter)
    let (best, mut start_values) = objective.top_pruned(&rows, settings.refine_starts.max(1))?;
    let candidates_best = start_values.first().copied().unwrap_or(f64::NEG_INFINITY);
    // 3. local search
    let best = &best[..best.len().min(settings.refine_starts)];
    start_values.truncate(best.len());
    let mut starts: Vec<f64> = best
        .iter()
        .flat_map(|&i| rows[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let steps: &[f64] = if space.free.len() == dim {
        &[]
    } else {
        &settings.refine_steps
    };
    for &step in steps {
        let (near, origin) = space.neighbours(&starts, settings.refine_candidates, step, &mut rng);
        if origin.is_empty() {
            continue;
        }
        let near_values = objective.score(&near)?;
        for i in 0..start_values.len() {
            let mut pick = None;
            for (k, &o) in origin.iter().enumerate() {
                if o == i
                    && near_values[k] > pick.map_or(start_values[i], |p: usize| near_values[p])
                {
                    pick = Some(k);
                }
            }
            if let Some(k) = pick {
                starts[i * dim..(i + 1) * dim].copy_from_slice(&near[k * dim..(k + 1) * dim]);
                start_values[i] = near_values[k];
            }
        }
    }
    // 4. gradient polish
    if !space.free.is_empty() {
        for i in top(&start_values, settings.polish_starts) {
            if !start_values[i].is_finite() {
                continue;
            }
            let row = &starts[i * dim..(i + 1) * dim];
            if let Some(polished) = polish(
                gp,
                incumbents,
                penalty,
                space,
                row,
                settings.polish_iterations,
            ) {
                let value = objective.score(&polished)?[0];
                if value > start_values[i] {
                    starts[i * dim..(i + 1) * dim].copy_from_slice(&polished);
                    start_values[i] = value;
                }
            }
        }
    }
    // 5. the best feasible point
    for i in top(&start_values, start_values.len()) {
        if !start_values[i].is_finite() {
            break;
        }
        let row = &starts[i * dim..(i + 1) * dim];
        if space.feasible(row, FEAS_TOL) {
            return Ok(Some(Outcome {
                point: row.to_vec(),
                value: start_values[i],
                candidates_best,
                scored: objective.scored,
            }));
        }
    }
    Ok(None)
}

impl PreparedGp {
    /// The training inputs, row by row (undoing the length-scale division).
    fn xs_rows(&self) -> impl Iterator<Item = Vec<f64>> + '_ {
        self.xs
            .chunks_exact(self.d.max(1))
            .map(|row| row.iter().zip(&self.inv_l).map(|(x, il)| x / il).collect())
    }
}

const SQRT5: f64 = 2.236_067_977_499_79;
const LN_2: f64 = std::f64::consts::LN_2;
const HALF_LOG_PI: f64 = 0.572_364_942_924_700_1;
const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_8; // log(2 pi) / 2

/// `log Phi(z)`, the log of the standard normal CDF, finite for finite `z`.
pub fn log_ndtr(z: f64) -> f64 {
    if z > 0.0 {
        return (-0.5 * erfc(z * std::f64::consts::FRAC_1_SQRT_2)).ln_1p();
    }
    let x = -z * std::f64::consts::FRAC_1_SQRT_2;
    if x < 1.25 {
        (0.5 * erfc(x)).ln()
    } else if x < 28.0 {
        // erfc(x) = exp(-x^2 - 0.5625 + R/S) / x
        -LN_2 + log_erfc_times_x_plus_x2(x) - x * x - x.ln()
    } else {
        // erfc(x) ~ exp(-x^2) / (x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4) - 15/(8x^6))
        let w = 1.0 / (x * x);
        let series = w * (-0.5 + w * (0.75 + w * -1.875));
        -LN_2 - x * x - x.ln() - HALF_LOG_PI + series.ln_1p()
    }
}

/// `log(phi(z) / Phi(z))`, the log of the inverse Mills ratio (the slope of
/// `log Phi`), finite for finite `z`: below `z = -1.25 sqrt 2` the `z^2 / 2`
/// of both logs cancels analytically, as `log_ndtr`'s branches allow.
pub fn log_inverse_mills(z: f64) -> f64 {
    let x = -z * std::f64::consts::FRAC_1_SQRT_2;
    if x < 1.25 {
        -0.5 * z * z - HALF_LOG_2PI - log_ndtr(z)
    } else if x < 28.0 {
        LN_2 - HALF_LOG_2PI - log_erfc_times_x_plus_x2(x) + x.ln()
    } else {
        let w = 1.0 / (x * x);
        let series = w * (-0.5 + w * (0.75 + w * -1.875));
        0.5 * LN_2 + x.ln() - series.ln_1p()
    }
}

/// Scratch space of [`log_ei_and_grad`].
struct GradWork {
    k: Vec<f64>,
    c: Vec<f64>,
    v: Vec<f64>,
    /// (S,) means and (S, D) their gradients, standardized units.
    mean: Vec<f64>,
    dmean: Vec<f64>,
    dvar: Vec<f64>,
    /// (S,) each mean's log EI, and (S, D) its gradient.
    per: Vec<f64>,
    per_grad: Vec<f64>,
    /// (D,) a training point's scaled difference, and the stddev's gradient.
    diff: Vec<f64>,
    dstd: Vec<f64>,
}

impl GradWork {
    fn new(n: usize, d: usize, means: usize) -> Self {
        GradWork {
            k: vec![0.0; n],
            c: vec![0.0; n],
            v: vec![0.0; n],
            mean: vec![0.0; means],
            dmean: vec![0.0; means * d],
            dvar: vec![0.0; d],
            per: vec![0.0; means],
            per_grad: vec![0.0; means * d],
            diff: vec![0.0; d],
            dstd: vec![0.0; d],
        }
    }
}

/// Log EI at one point `x` (D,) and its gradient in `grad`, as the Python
/// `optserve.optimizers.gp.gradient.log_ei_and_grad` (one posterior mean) and
/// `Fantasies.log_ei_and_grad` (several).
fn log_ei_and_grad(
    gp: &PreparedGp,
    incumbents: &[f64],
    x: &[f64],
    grad: &mut [f64],
    w: &mut GradWork,
) -> f64 {
    let (n, d, s, means) = (gp.n, gp.d, gp.s, gp.means);
    let xs_x: Vec<f64> = x.iter().zip(&gp.inv_l).map(|(a, b)| a * b).collect();
    w.mean.fill(0.0);
    for i in 0..n {
        let row = &gp.xs[i * d..(i + 1) * d];
        let mut r2 = 0.0;
        for j in 0..d {
            let t = xs_x[j] - row[j];
            r2 += t * t;
        }
        let u = SQRT5 * r2.sqrt();
        let e = (-u).exp();
        w.k[i] = s * (1.0 + u + u * u / 3.0) * e;
        // dk/dx_j = c_i (x_j - x_ij) / l_j^2: the r of dr/dx cancels the r of dk/dr
        w.c[i] = -s * 5.0 / 3.0 * (1.0 + u) * e;
        for (m, a) in w.mean.iter_mut().zip(&gp.alpha[i * means..(i + 1) * means]) {
            *m += w.k[i] * a;
        }
    }
    // v = L^-1 k, then v <- L^-T v = K^-1 k
    let l = &gp.chol;
    for i in 0..n {
        let acc = w.k[i] - dot(&l[i * n..i * n + i], &w.v[..i]);
        w.v[i] = acc * gp.inv_diag[i];
    }
    let var_s_raw = s - dot(&w.v, &w.v);
    // L^T w = v, by rows of L (contiguous): w_i is final once rows below are done
    for i in (0..n).rev() {
        let wi = w.v[i] * gp.inv_diag[i];
        w.v[i] = wi;
        crate::hit_and_run::axpy(-wi, &l[i * n..i * n + i], &mut w.v[..i]);
    }
    w.dmean.fill(0.0);
    w.dvar.fill(0.0);
    for i in 0..n {
        let row = &gp.xs[i * d..(i + 1) * d];
        for (((tj, x), r), il) in w.diff.iter_mut().zip(&xs_x).zip(row).zip(&gp.inv_l) {
            *tj = (x - r) * il;
        }
        let av = w.v[i] * w.c[i];
        for (dv, tj) in w.dvar.iter_mut().zip(&w.diff) {
            *dv += av * tj;
        }
        let alpha = &gp.alpha[i * means..(i + 1) * means];
        for (dm, a) in w.dmean.chunks_exact_mut(d).zip(alpha) {
            let am = a * w.c[i];
            for (g, tj) in dm.iter_mut().zip(&w.diff) {
                *g += am * tj;
            }
        }
    }
    let floored = var_s_raw <= VAR_FLOOR;
    let var_s = var_s_raw.max(VAR_FLOOR);
    let y_std = gp.y_std;
    let std = y_std * var_s.sqrt();
    for (ds, dvar) in w.dstd.iter_mut().zip(&w.dvar) {
        *ds = if floored {
            0.0
        } else {
            y_std * y_std * (-2.0 * dvar) / (2.0 * std)
        };
    }
    for ((((per, pg), &mean_s), dmean), &incumbent) in w
        .per
        .iter_mut()
        .zip(w.per_grad.chunks_exact_mut(d))
        .zip(&w.mean)
        .zip(w.dmean.chunks_exact(d))
        .zip(incumbents)
    {
        let mean = gp.y_mean + y_std * mean_s;
        let z = (mean - incumbent) / std;
        let lh = log_h(z);
        let dlogh = (log_ndtr(z) - lh).exp();
        for ((gj, dm), ds) in pg.iter_mut().zip(dmean).zip(&w.dstd) {
            *gj = dlogh * (y_std * dm - z * ds) / std + ds / std;
        }
        *per = lh + std.ln();
    }
    if means == 1 {
        grad.copy_from_slice(&w.per_grad);
        return w.per[0];
    }
    // the average of the means' EI: its log, and the gradient as a softmax of theirs
    let top = w.per.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = w.per.iter().map(|p| (p - top).exp()).sum();
    grad.fill(0.0);
    for (p, pg) in w.per.iter().zip(w.per_grad.chunks_exact(d)) {
        let weight = (p - top).exp() / sum;
        for (g, v) in grad.iter_mut().zip(pg) {
            *g += weight * v;
        }
    }
    top + sum.ln() - (means as f64).ln()
}

/// The linear constraints the polish keeps, over the free columns:
/// `normal . u <= rhs`, bounds included.
struct Constraints {
    normals: Vec<Vec<f64>>,
    rhs: Vec<f64>,
}

impl Constraints {
    fn of(space: &Space, row: &[f64]) -> Constraints {
        let nf = space.free.len();
        let mut normals = Vec::new();
        let mut rhs = Vec::new();
        for k in 0..nf {
            let mut e = vec![0.0; nf];
            e[k] = 1.0;
            normals.push(e.clone());
            rhs.push(1.0);
            e[k] = -1.0;
            normals.push(e);
            rhs.push(0.0);
        }
        if let Some(block) = &space.doubles {
            let p = &block.poly;
            for j in 0..p.m {
                let mut g = vec![0.0; nf];
                let mut h = p.b[j];
                for (k, &c) in block.cols.iter().enumerate() {
                    let a = p.row(j)[k];
                    match space.free.iter().position(|&f| f == c) {
                        Some(q) => g[q] += a,
                        None => h -= a * row[c],
                    }
                }
                if g.iter().any(|&v| v != 0.0) {
                    normals.push(g);
                    rhs.push(h);
                }
            }
        }
        Constraints { normals, rhs }
    }

    fn slack(&self, j: usize, u: &[f64]) -> f64 {
        self.rhs[j] - dot(&self.normals[j], u)
    }
}

/// Projection onto the null space of the active normals `n_a`:
/// `P v = v - N^T (N N^T)^-1 N v`, and the multipliers `(N N^T)^-1 N v`.
struct Projector {
    rows: Vec<Vec<f64>>,
    /// Lower Cholesky factor of `N N^T`, row-major.
    chol: Vec<f64>,
}

impl Projector {
    /// Builds it, or None when the normals are (numerically) dependent.
    fn new(rows: Vec<Vec<f64>>) -> Option<Projector> {
        let m = rows.len();
        let mut g = vec![0.0; m * m];
        for i in 0..m {
            for j in 0..=i {
                g[i * m + j] = dot(&rows[i], &rows[j]);
            }
        }
        for j in 0..m {
            let mut s = g[j * m + j];
            for t in 0..j {
                s -= g[j * m + t] * g[j * m + t];
            }
            if s <= 1e-10 * dot(&rows[j], &rows[j]) {
                return None;
            }
            let djj = s.sqrt();
            g[j * m + j] = djj;
            for i in j + 1..m {
                let mut s = g[i * m + j];
                for t in 0..j {
                    s -= g[i * m + t] * g[j * m + t];
                }
                g[i * m + j] = s / djj;
            }
        }
        Some(Projector { rows, chol: g })
    }

    fn multipliers(&self, v: &[f64]) -> Vec<f64> {
        let m = self.rows.len();
        let mut y: Vec<f64> = self.rows.iter().map(|r| dot(r, v)).collect();
        let l = &self.chol;
        for i in 0..m {
            let s = y[i] - dot(&l[i * m..i * m + i], &y[..i]);
            y[i] = s / l[i * m + i];
        }
        for i in (0..m).rev() {
            let mut s = y[i];
            for t in i + 1..m {
                s -= l[t * m + i] * y[t];
            }
            y[i] = s / l[i * m + i];
        }
        y
    }

    fn project(&self, v: &mut [f64]) {
        if self.rows.is_empty() {
            return;
        }
        let lam = self.multipliers(v);
        for (r, l) in self.rows.iter().zip(lam) {
            for (vi, ri) in v.iter_mut().zip(r) {
                *vi -= l * ri;
            }
        }
    }
}

/// Slack below which a constraint counts as active.
const ACTIVE_TOL: f64 = 1e-10;

/// Gradient polish of log EI (plus `penalty`) from `row` over the free
/// (continuous) columns, the others held fixed: projected BFGS ascent,
/// every iterate feasible.
///
/// Returns the polished canonical row when it moved and is feasible.
fn polish(
    gp: &PreparedGp,
    incumbents: &[f64],
    penalty: Option<&LocalPenalty>,
    space: &Space,
    row: &[f64],
    iterations: usize,
) -> Option<Vec<f64>> {
    let free = &space.free;
    let nf = free.len();
    let d = space.dim();
    let cons = Constraints::of(space, row);
    let mut x = row.to_vec();
    let mut u: Vec<f64> = free.iter().map(|&c| row[c]).collect();
    if (0..cons.rhs.len()).any(|j| cons.slack(j, &u) < -FEAS_TOL) {
        return None;
    }
    let mut work = GradWork::new(gp.n, d, gp.means);
    let mut full_grad = vec![0.0; d];
    let eval = |u: &[f64], x: &mut [f64], g: &mut [f64], fg: &mut [f64], w: &mut GradWork| {
        for (&c, &v) in free.iter().zip(u) {
            x[c] = v;
        }
        let mut f = log_ei_and_grad(gp, incumbents, x, fg, w);
        if let Some(p) = penalty {
            f += p.value_adding_grad(x, fg);
        }
        for (gi, &c) in g.iter_mut().zip(free) {
            *gi = fg[c];
        }
        f
    };
    let mut g = vec![0.0; nf];
    let mut f = eval(&u, &mut x, &mut g, &mut full_grad, &mut work);
    if !f.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return None;
    }
    // inverse Hessian of -f, started at the length scales squared
    let mut h = vec![0.0; nf * nf];
    let reset = |h: &mut [f64]| {
        h.fill(0.0);
        for (k, &c) in free.iter().enumerate() {
            let l = 1.0 / gp.inv_l[c];
            h[k * nf + k] = l * l;
        }
    };
    reset(&mut h);
    let mut active: Vec<usize> = Vec::new();
    let mut proj = Projector::new(vec![])?;
    for j in 0..cons.rhs.len() {
        if cons.slack(j, &u) <= ACTIVE_TOL {
            let mut rows = proj.rows.clone();
            rows.push(cons.normals[j].clone());
            if let Some(p) = Projector::new(rows) {
                proj = p;
                active.push(j);
            }
        }
    }
    let start_f = f;
    let mut pg = vec![0.0; nf];
    let mut dir = vec![0.0; nf];
    let mut trial = vec![0.0; nf];
    let mut g_new = vec![0.0; nf];
    let mut moved = false;
    let mut stalled = false;
    for _ in 0..iterations {
        // Drop the active constraint with the most negative multiplier (the
        // gradient pulls the point off it), one per iteration.
        let gnorm = dot(&g, &g).sqrt();
        let mut dropped = false;
        if !active.is_empty() {
            let lam = proj.multipliers(&g);
            let (worst, &lw) = lam
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .expect("active is not empty");
            if lw < -1e-12 * gnorm {
                active.remove(worst);
                let rows = active.iter().map(|&j| cons.normals[j].clone()).collect();
                proj = Projector::new(rows)?;
                reset(&mut h);
                dropped = true;
            }
        }
        if stalled && !dropped {
            break;
        }
        // direction: P H P g
        pg.copy_from_slice(&g);
        proj.project(&mut pg);
        if dot(&pg, &pg).sqrt() <= 1e-12 * gnorm {
            break; // a KKT point
        }
        for (k, dk) in dir.iter_mut().enumerate() {
            *dk = dot(&h[k * nf..(k + 1) * nf], &pg);
        }
        proj.project(&mut dir);
        let slope = dot(&g, &dir);
        if slope.is_nan() || slope <= 0.0 {
            break;
        }
        // largest feasible step
        let mut t_max = f64::INFINITY;
        let mut blocking = None;
        for j in 0..cons.rhs.len() {
            if active.contains(&j) {
                continue;
            }
            let nd = dot(&cons.normals[j], &dir);
            if nd > 0.0 {
                let t = cons.slack(j, &u).max(0.0) / nd;
                if t < t_max {
                    t_max = t;
                    blocking = Some(j);
                }
            }
        }
        let mut t = t_max.min(1.0);
        let mut accepted = None;
        for _ in 0..30 {
            for k in 0..nf {
                trial[k] = u[k] + t * dir[k];
            }
            // exactly on a blocking bound rather than an ulp past it
            for v in trial.iter_mut() {
                *v = v.clamp(0.0, 1.0);
            }
            let f_new = eval(&trial, &mut x, &mut g_new, &mut full_grad, &mut work);
            if f_new.is_finite() && f_new >= f + 1e-4 * t * slope {
                accepted = Some(f_new);
                break;
            }
            t *= 0.5;
        }
        let Some(f_new) = accepted else {
            break;
        };
        if (0..cons.rhs.len()).any(|j| cons.slack(j, &trial) < -ACTIVE_TOL) {
            break;
        }
        // BFGS update of the inverse Hessian of -f: s = step, y = g - g_new
        let s: Vec<f64> = trial.iter().zip(&u).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g.iter().zip(&g_new).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() && sy > 0.0 {
            let hy: Vec<f64> = (0..nf).map(|k| dot(&h[k * nf..(k + 1) * nf], &y)).collect();
            let yhy = dot(&y, &hy);
            let rho = 1.0 / sy;
            for a in 0..nf {
                for b in 0..nf {
                    h[a * nf + b] +=
                        (1.0 + yhy * rho) * rho * s[a] * s[b] - rho * (hy[a] * s[b] + s[a] * hy[b]);
                }
            }
        }
        let gain = f_new - f;
        u.copy_from_slice(&trial);
        g.copy_from_slice(&g_new);
        f = f_new;
        moved = true;
        if t == t_max {
            if let Some(j) = blocking {
                let mut rows = proj.rows.clone();
                rows.push(cons.normals[j].clone());
                if let Some(p) = Projector::new(rows) {
                    proj = p;
                    active.push(j);
                }
            }
        }
        stalled = gain <= 1e-10 * (1.0 + f.abs());
    }
    if !moved || f.is_nan() || f <= start_f {
        return None;
    }
    for (&c, &v) in free.iter().zip(&u) {
        x[c] = v;
    }
    space.canonical(&mut x);
    space.feasible(&x, FEAS_TOL).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquisition::GpFactors;

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn matern(a: &[f64], b: &[f64], ls: &[f64], s: f64) -> f64 {
        let r2: f64 = a
            .iter()
            .zip(b)
            .zip(ls)
            .map(|((x, y), l)| ((x - y) / l).powi(2))
            .sum();
        let u = (5.0 * r2).sqrt();
        s * (1.0 + u + u * u / 3.0) * (-u).exp()
    }

    /// A GP fitted (fixed hyperparameters) to `f` at `n` random points.
    fn fitted(n: usize, ls: &[f64], f: impl Fn(&[f64]) -> f64, seed: u64) -> PreparedGp {
        let d = ls.len();
        let mut rng = Lcg(seed);
        let x: Vec<f64> = (0..n * d).map(|_| rng.next()).collect();
        let y: Vec<f64> = x.chunks_exact(d).map(&f).collect();
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let y_std = (y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n as f64)
            .sqrt()
            .max(1e-9);
        let ys: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_std).collect();
        let s = 1.0;
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                k[i * n + j] = matern(&x[i * d..(i + 1) * d], &x[j * d..(j + 1) * d], ls, s)
                    + if i == j { 1e-6 } else { 0.0 };
            }
        }
        let mut l = vec![0.0; n * n];
        for j in 0..n {
            let mut acc = k[j * n + j];
            for t in 0..j {
                acc -= l[j * n + t] * l[j * n + t];
            }
            l[j * n + j] = acc.sqrt();
            for i in j + 1..n {
                let mut acc = k[i * n + j];
                for t in 0..j {
                    acc -= l[i * n + t] * l[j * n + t];
                }
                l[i * n + j] = acc / l[j * n + j];
            }
        }
        let mut alpha = ys.clone();
        for i in 0..n {
            for t in 0..i {
                alpha[i] -= l[i * n + t] * alpha[t];
            }
            alpha[i] /= l[i * n + i];
        }
        for i in (0..n).rev() {
            for t in i + 1..n {
                alpha[i] -= l[t * n + i] * alpha[t];
            }
            alpha[i] /= l[i * n + i];
        }
        PreparedGp::new(&GpFactors {
            x_train: MatrixRef::new("x", &x, n, d).unwrap(),
            alpha: &alpha,
            chol: MatrixRef::new("chol", &l, n, n).unwrap(),
            lengthscales: ls,
            outputscale: s,
            y_mean,
            y_std,
        })
        .unwrap()
    }

    fn branin_like(x: &[f64]) -> f64 {
        -x.iter()
            .enumerate()
            .map(|(j, v)| (v - 0.3 - 0.05 * j as f64).powi(2))
            .sum::<f64>()
            + 0.1 * (7.0 * x[0]).sin()
    }

    fn best_y(gp: &PreparedGp) -> f64 {
        let rows: Vec<f64> = gp.xs_rows().flatten().collect();
        let (m, _) = gp
            .posterior(&MatrixRef::new("c", &rows, gp.n, gp.d).unwrap())
            .unwrap();
        m.into_iter().fold(f64::NEG_INFINITY, f64::max)
    }

    fn continuous(d: usize) -> Space {
        Space::new(vec![Column::Continuous; d], vec![], None, None).unwrap()
    }

    /// `x_0 + x_1 <= 0.5` over the first two of `d` columns.
    fn simplex(d: usize) -> Space {
        let poly = Polytope::new(
            vec![std::f64::consts::FRAC_1_SQRT_2; 2],
            1,
            2,
            vec![0.5 * std::f64::consts::FRAC_1_SQRT_2],
            vec![0.0; 2],
            vec![1.0; 2],
        )
        .unwrap();
        let block = DoubleBlock {
            cols: vec![0, 1],
            poly,
            x0: vec![0.15, 0.15],
        };
        Space::new(vec![Column::Continuous; d], vec![], Some(block), None).unwrap()
    }

    #[test]
    fn log_ndtr_matches_known_values() {
        // scipy.special.log_ndtr
        for (z, want) in [
            (0.0, -std::f64::consts::LN_2),
            (1.0, -0.172_753_779_023_449_9),
            (-1.0, -1.841_021_645_009_263_4),
            (-3.0, -6.607_726_221_510_35),
            (-10.0, -53.231_285_150_512_48),
            (-50.0, -1_254.831_361_139_419_9),
            (5.0, -2.866_516_129_637_636e-7),
        ] {
            let got = log_ndtr(z);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-6),
                "{z}: {got} {want}"
            );
        }
        let mut z = -60.0;
        let mut last = f64::NEG_INFINITY;
        while z < 8.0 {
            let v = log_ndtr(z);
            assert!(v > last && v.is_finite(), "{z}");
            last = v;
            z += 0.01;
        }
    }

    #[test]
    fn log_inverse_mills_is_the_slope_of_log_ndtr() {
        // against the plain formula where it is accurate, and continuous at the branches
        let mut z = -35.0;
        let mut last = f64::INFINITY;
        while z < 8.0 {
            let got = log_inverse_mills(z);
            let plain = -0.5 * z * z - HALF_LOG_2PI - log_ndtr(z);
            assert!(
                (got - plain).abs() <= 1e-9 * (1.0 + z * z),
                "{z}: {got} {plain}"
            );
            assert!(got < last, "{z}: decreasing");
            last = got;
            let h = 1e-5;
            let slope = (log_ndtr(z + h) - log_ndtr(z - h)) / (2.0 * h);
            assert!((got.exp() - slope).abs() <= 1e-6 * (1.0 + slope), "{z}");
            z += 0.013;
        }
        // phi(z) / Phi(z) tends to -z far in the tail
        for z in [-40.0, -1e3, -1e9, -1e150] {
            let ratio = log_inverse_mills(z).exp() / -z;
            assert!((ratio - 1.0).abs() < 1e-3, "{z}: {ratio}");
        }
    }

    /// At 20 random points, `log_ei_and_grad` gives the scored value and a
    /// gradient that matches central differences.
    fn assert_gradient_matches(gp: &PreparedGp, incumbents: &[f64], rng: &mut Lcg) {
        let mut w = GradWork::new(gp.n, gp.d, gp.means);
        for _ in 0..20 {
            let x: Vec<f64> = (0..3).map(|_| rng.next()).collect();
            let mut g = vec![0.0; 3];
            let f = log_ei_and_grad(gp, incumbents, &x, &mut g, &mut w);
            let scored = gp
                .log_ei(&MatrixRef::new("c", &x, 1, 3).unwrap(), incumbents)
                .unwrap()[0];
            assert!((f - scored).abs() <= 1e-9 * (1.0 + f.abs()), "{f} {scored}");
            for j in 0..3 {
                let h = 1e-6;
                let (mut xp, mut xm) = (x.clone(), x.clone());
                xp[j] += h;
                xm[j] -= h;
                let mut scratch = vec![0.0; 3];
                let fd = (log_ei_and_grad(gp, incumbents, &xp, &mut scratch, &mut w)
                    - log_ei_and_grad(gp, incumbents, &xm, &mut scratch, &mut w))
                    / (2.0 * h);
                assert!(
                    (fd - g[j]).abs() <= 1e-5 * (1.0 + g[j].abs()),
                    "{j}: {fd} vs {}",
                    g[j]
                );
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let ls = [0.3, 0.5, 0.8];
        let gp = fitted(30, &ls, branin_like, 3);
        let mut rng = Lcg(5);
        for incumbent in [best_y(&gp), best_y(&gp) + 3.0, best_y(&gp) - 1.0] {
            assert_gradient_matches(&gp, &[incumbent], &mut rng);
        }
    }

    /// `gp` with `s` posterior means: its `alpha` plus random weights.
    fn with_random_means(gp: &PreparedGp, s: usize, seed: u64) -> PreparedGp {
        let mut rng = Lcg(seed);
        let weights: Vec<f64> = gp
            .alpha
            .iter()
            .flat_map(|&a| {
                (0..s)
                    .map(|_| a + 0.3 * (rng.next() - 0.5))
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>();
        gp.clone()
            .with_means(&MatrixRef::new("w", &weights, gp.n, s).unwrap())
            .unwrap()
    }

    /// The GP whose only mean is mean `j` of `gp`.
    fn one_mean(gp: &PreparedGp, j: usize) -> PreparedGp {
        let column: Vec<f64> = gp.alpha.chunks_exact(gp.means).map(|w| w[j]).collect();
        gp.clone()
            .with_means(&MatrixRef::new("w", &column, gp.n, 1).unwrap())
            .unwrap()
    }

    #[test]
    fn several_means_score_as_the_average_of_their_ei() {
        let ls = [0.3, 0.5, 0.8];
        let gp = with_random_means(&fitted(30, &ls, branin_like, 3), 5, 9);
        let incumbents: Vec<f64> = (0..5).map(|j| best_y(&gp) + 0.2 * j as f64).collect();
        let mut rng = Lcg(4);
        let rows: Vec<f64> = (0..3 * 40).map(|_| rng.next()).collect();
        let cand = MatrixRef::new("c", &rows, 40, 3).unwrap();
        let (means, var) = gp.posterior(&cand).unwrap();
        let scores = gp.log_ei(&cand, &incumbents).unwrap();
        let mut per = vec![vec![0.0; 40]; 5];
        for (j, inc) in incumbents.iter().enumerate() {
            let single = one_mean(&gp, j);
            let (m, v) = single.posterior(&cand).unwrap();
            assert_eq!(v, var);
            for t in 0..40 {
                assert_eq!(m[t], means[t * 5 + j]);
            }
            per[j] = single.log_ei(&cand, &[*inc]).unwrap();
        }
        for t in 0..40 {
            let ei: f64 = (0..5).map(|j| per[j][t].exp()).sum::<f64>() / 5.0;
            assert!(
                (scores[t] - ei.ln()).abs() <= 1e-9 * (1.0 + scores[t].abs()),
                "{t}: {} vs {}",
                scores[t],
                ei.ln()
            );
        }
        // one incumbent per mean, finite
        assert!(gp.log_ei(&cand, &incumbents[..4]).is_err());
        assert!(gp.log_ei(&cand, &[0.0, 0.0, f64::NAN, 0.0, 0.0]).is_err());
        let bad = vec![0.0; 29 * 2];
        assert!(gp
            .clone()
            .with_means(&MatrixRef::new("w", &bad, 29, 2).unwrap())
            .is_err());
        let nan = vec![f64::NAN; 30];
        assert!(gp
            .clone()
            .with_means(&MatrixRef::new("w", &nan, 30, 1).unwrap())
            .is_err());
    }

    #[test]
    fn the_gradient_of_several_means_matches_finite_differences() {
        let ls = [0.3, 0.5, 0.8];
        let gp = with_random_means(&fitted(30, &ls, branin_like, 3), 4, 2);
        let incumbents: Vec<f64> = (0..4).map(|j| best_y(&gp) + 0.5 * j as f64).collect();
        assert_gradient_matches(&gp, &incumbents, &mut Lcg(8));
    }

    #[test]
    fn snapped_columns_round_as_the_encoder_does() {
        let int = Snap {
            lo_t: 0.0,
            hi_t: 10.0,
            min: 0.0,
            max: 10.0,
            log: false,
            int: true,
            grid: vec![],
        };
        assert_eq!(int.value(0.26), 3.0);
        assert_eq!(int.encode(int.value(0.26)), 0.3);
        assert_eq!(int.value(-1.0), 0.0);
        let grid = Snap {
            lo_t: 1.0f64.ln(),
            hi_t: 100.0f64.ln(),
            min: f64::NEG_INFINITY,
            max: f64::INFINITY,
            log: true,
            int: false,
            grid: vec![1.0, 10.0, 100.0],
        };
        assert_eq!(grid.value(0.2), 1.0); // 10^0.4 = 2.5, nearer 1 than 10
        assert_eq!(grid.value(0.4), 10.0);
        assert!((grid.encode(10.0) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn draws_and_neighbours_are_feasible_and_canonical() {
        let int = |lo: f64, hi: f64| {
            Column::Snapped(Snap {
                lo_t: lo,
                hi_t: hi,
                min: lo,
                max: hi,
                log: false,
                int: true,
                grid: vec![],
            })
        };
        // x0 + x1 <= 0.5 on doubles, 3 g - 5 t >= 0 on ints, one categorical of 3
        let ip =
            IntPolytope::new(vec![-3.0, 5.0], 1, 2, vec![0.0], vec![0, 0], vec![10, 10]).unwrap();
        let mut columns = vec![Column::Continuous, Column::Continuous, int(0.0, 10.0)];
        columns.push(int(0.0, 10.0));
        columns.extend([Column::OneHot, Column::OneHot, Column::OneHot]);
        let doubles = simplex(2).doubles;
        let space = Space::new(
            columns,
            vec![(4, 3)],
            doubles,
            Some(IntBlock {
                cols: vec![2, 3],
                poly: ip,
                z0: vec![5, 2],
            }),
        )
        .unwrap();
        let mut rng = ChainRng::streams(1, 1).remove(0);
        let rows = space.draw(300, &mut rng).unwrap();
        let (near, origin) = space.neighbours(&rows[..7 * 10], 20, 0.2, &mut rng);
        assert!(!origin.is_empty() && origin.len() < 200);
        for row in rows.chunks_exact(7).chain(near.chunks_exact(7)) {
            assert!(row[0] + row[1] <= 0.5 + 1e-9, "{row:?}");
            let (g, t) = (row[2] * 10.0, row[3] * 10.0);
            assert!((g - g.round()).abs() < 1e-9 && 3.0 * g.round() - 5.0 * t.round() >= 0.0);
            assert_eq!(row[4..].iter().sum::<f64>(), 1.0);
            let mut copy = row.to_vec();
            space.canonical(&mut copy);
            assert_eq!(copy, row);
        }
        // the constrained ints reach beyond their start point
        assert!(rows.chunks_exact(7).any(|r| r[2] != 0.5 || r[3] != 0.2));
    }

    #[test]
    fn polish_improves_and_stays_feasible() {
        let ls = [0.25, 0.4, 0.6, 0.5];
        // the optimum (0.3, 0.35, ...) lies outside x0 + x1 <= 0.5: the polish meets the row
        let gp = fitted(40, &ls, branin_like, 9);
        let inc = best_y(&gp);
        let space = simplex(4);
        let mut rng = Lcg(17);
        let mut improved = 0;
        for _ in 0..30 {
            let mut row: Vec<f64> = (0..4).map(|_| rng.next()).collect();
            row[0] *= 0.25;
            row[1] *= 0.25;
            let before = gp
                .log_ei(&MatrixRef::new("c", &row, 1, 4).unwrap(), &[inc])
                .unwrap()[0];
            if let Some(p) = polish(&gp, &[inc], None, &space, &row, 40) {
                assert!(
                    space.feasible(&p, 0.0) || p[0] + p[1] <= 0.5 + 1e-12,
                    "{p:?}"
                );
                assert!(p[0] + p[1] <= 0.5 + 1e-12);
                let after = gp
                    .log_ei(&MatrixRef::new("c", &p, 1, 4).unwrap(), &[inc])
                    .unwrap()[0];
                assert!(after > before);
                improved += 1;
            }
        }
        assert!(improved >= 25, "{improved}");
    }

    #[test]
    fn polish_reaches_a_stationary_point_in_the_box() {
        let ls = [0.3, 0.3];
        let gp = fitted(25, &ls, branin_like, 4);
        let inc = best_y(&gp);
        let space = continuous(2);
        let mut rng = Lcg(2);
        let mut w = GradWork::new(gp.n, 2, 1);
        for _ in 0..10 {
            let row: Vec<f64> = (0..2).map(|_| rng.next()).collect();
            let Some(p) = polish(&gp, &[inc], None, &space, &row, 200) else {
                continue;
            };
            let mut g = vec![0.0; 2];
            log_ei_and_grad(&gp, &[inc], &p, &mut g, &mut w);
            let scale = 1.0 + g[0].abs().max(g[1].abs());
            for j in 0..2 {
                // KKT in the box: zero gradient inside, pointing outwards on a bound
                let ok = (p[j] > 1e-9 && p[j] < 1.0 - 1e-9 && g[j].abs() < 1e-2 * scale)
                    || (p[j] <= 1e-9 && g[j] <= 1e-6)
                    || (p[j] >= 1.0 - 1e-9 && g[j] >= -1e-6);
                assert!(ok, "{p:?} {g:?}");
            }
        }
    }

    #[test]
    fn maximize_beats_its_candidates_and_is_deterministic() {
        for (d, space) in [(4, continuous(4)), (4, simplex(4))] {
            let ls = vec![0.3; d];
            let gp = fitted(60, &ls, branin_like, 21);
            let inc = best_y(&gp);
            let incumbents: Vec<f64> = gp.xs_rows().take(4).flatten().collect();
            let settings = Settings {
                seed: 5,
                ..Settings::default()
            };
            let a = maximize_log_ei(&gp, &[inc], &space, &incumbents, None, &settings)
                .unwrap()
                .unwrap();
            let b = maximize_log_ei(&gp, &[inc], &space, &incumbents, None, &settings)
                .unwrap()
                .unwrap();
            assert_eq!(a.point, b.point);
            // the scoring threads do not change the answer
            let run = |threads| {
                let s = Settings {
                    threads,
                    global: 3000,
                    ..settings.clone()
                };
                maximize_log_ei(&gp, &[inc], &space, &incumbents, None, &s)
                    .unwrap()
                    .unwrap()
                    .point
            };
            assert_eq!(run(1), run(2));
            assert_eq!(run(1), run(3));
            assert!(
                a.value > a.candidates_best,
                "{} {}",
                a.value,
                a.candidates_best
            );
            assert!(space.feasible(&a.point, FEAS_TOL));
            let scored = gp
                .log_ei(&MatrixRef::new("c", &a.point, 1, d).unwrap(), &[inc])
                .unwrap()[0];
            assert_eq!(scored, a.value);
            let other = maximize_log_ei(
                &gp,
                &[inc],
                &space,
                &incumbents,
                None,
                &Settings {
                    seed: 6,
                    ..Settings::default()
                },
            )
            .unwrap()
            .unwrap();
            assert_ne!(other.point, a.point);
        }
    }

    /// A penalty of three pending points spread over the cube, for `gp`.
    fn spread_penalty(gp: &PreparedGp, d: usize) -> LocalPenalty {
        let points: Vec<f64> = (0..3 * d)
            .map(|i| ((i * 7 + 3) % 10) as f64 / 10.0)
            .collect();
        let ls: Vec<f64> = gp.inv_l.iter().map(|il| 1.0 / il).collect();
        LocalPenalty::new(
            &points,
            &ls,
            &[0.1, -0.5, 0.3],
            &[0.2, 0.4, 0.1],
            1.5,
            best_y(gp),
        )
        .unwrap()
    }

    #[test]
    fn pruned_scoring_keeps_the_exact_best() {
        for (n, ls, means, penalized) in [
            (60, 0.3, 1, false),
            (200, 0.6, 1, false),
            (120, 2.0, 1, false),
            (80, 0.4, 8, false),
            (60, 0.3, 1, true),
            (80, 0.4, 8, true),
        ] {
            let lsv = vec![ls; 6];
            let gp = fitted(n, &lsv, branin_like, n as u64);
            let gp = if means > 1 {
                with_random_means(&gp, means, 5)
            } else {
                gp
            };
            let incumbents: Vec<f64> = (0..means).map(|j| best_y(&gp) + 0.1 * j as f64).collect();
            let space = continuous(6);
            let mut rng = ChainRng::streams(3, 1).remove(0);
            let rows = space.draw(1500, &mut rng).unwrap();
            let penalty = spread_penalty(&gp, 6);
            let mut objective = Objective {
                gp: &gp,
                incumbents: &incumbents,
                penalty: penalized.then_some(&penalty),
                taken: HashSet::new(),
                scored: 0,
                threads: 1,
            };
            let all = objective.score(&rows).unwrap();
            let want = top(&all, 5);
            objective.scored = 0;
            let (got, values) = objective.top_pruned(&rows, 5).unwrap();
            assert_eq!(got, want);
            assert_eq!(values, want.iter().map(|&i| all[i]).collect::<Vec<_>>());
            assert!(objective.scored < 1500, "{n}: {}", objective.scored);
        }
    }

    #[test]
    fn a_penalty_moves_the_maximum_away_from_a_pending_point() {
        let ls = vec![0.3; 2];
        let gp = fitted(40, &ls, branin_like, 11);
        let inc = best_y(&gp);
        let space = continuous(2);
        let settings = Settings {
            seed: 4,
            ..Settings::default()
        };
        let free = maximize_log_ei(&gp, &[inc], &space, &[], None, &settings)
            .unwrap()
            .unwrap();
        // a pending point at that maximum, expected 1 below the incumbent: with
        // L = 5 it rules out a ball of 0.2 length scales around it
        let penalty = LocalPenalty::new(&free.point, &ls, &[inc - 1.0], &[0.05], 5.0, inc).unwrap();
        let out = maximize_log_ei(&gp, &[inc], &space, &[], Some(&penalty), &settings)
            .unwrap()
            .unwrap();
        let r = out
            .point
            .iter()
            .zip(&free.point)
            .map(|(a, b)| ((a - b) / 0.3).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(r > 0.15, "{r}");
        // its value is log EI plus the penalty there, above the penalized free maximum
        let at = |x: &[f64]| {
            gp.log_ei(&MatrixRef::new("c", x, 1, 2).unwrap(), &[inc])
                .unwrap()[0]
                + penalty.value(x)
        };
        assert!((out.value - at(&out.point)).abs() <= 1e-12 * (1.0 + out.value.abs()));
        assert!(out.value > at(&free.point));
        // the same seed, the same point
        let again = maximize_log_ei(&gp, &[inc], &space, &[], Some(&penalty), &settings)
            .unwrap()
            .unwrap();
        assert_eq!(again.point, out.point);
    }

    #[test]
    fn a_penalty_of_another_dimension_is_an_error() {
        let gp = fitted(20, &[0.3, 0.3], branin_like, 2);
        let penalty = LocalPenalty::new(&[0.5; 3], &[0.3; 3], &[0.0], &[1.0], 1.0, 0.0).unwrap();
        let err = maximize_log_ei(
            &gp,
            &[0.0],
            &continuous(2),
            &[],
            Some(&penalty),
            &Settings::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Input { arg: "penalty", .. }));
    }

    #[test]
    fn observed_points_are_never_returned() {
        // one int column of three values, all observed: nothing is left
        let col = Column::Snapped(Snap {
            lo_t: 0.0,
            hi_t: 2.0,
            min: 0.0,
            max: 2.0,
            log: false,
            int: true,
            grid: vec![],
        });
        let space = Space::new(vec![col], vec![], None, None).unwrap();
        let x = [0.0, 0.5, 1.0];
        let gp = PreparedGp::new(&GpFactors {
            x_train: MatrixRef::new("x", &x, 3, 1).unwrap(),
            alpha: &[0.1, 0.2, 0.3],
            chol: MatrixRef::new("chol", &[1.0, 0.0, 0.0, 0.1, 1.0, 0.0, 0.1, 0.1, 1.0], 3, 3)
                .unwrap(),
            lengthscales: &[0.5],
            outputscale: 1.0,
            y_mean: 0.0,
            y_std: 1.0,
        })
        .unwrap();
        let out = maximize_log_ei(&gp, &[0.0], &space, &[0.5], None, &Settings::default()).unwrap();
        assert!(out.is_none());
    }

    #[test]
    fn bad_spaces_are_errors() {
        assert!(Space::new(vec![], vec![], None, None).is_err());
        assert!(Space::new(vec![Column::OneHot], vec![], None, None).is_err());
        assert!(Space::new(vec![Column::Continuous], vec![(0, 1)], None, None).is_err());
        let mut block = simplex(2).doubles.unwrap();
        block.x0 = vec![0.4, 0.4]; // on the row, not interior
        assert!(Space::new(vec![Column::Continuous; 2], vec![], Some(block), None).is_err());
    }
}
