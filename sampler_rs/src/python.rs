//! Python bindings: convert arrays and errors, release the GIL, call the core.
use numpy::ndarray::Array2;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::acquisition::{
    posterior as core_posterior, score_log_ei as core_score_log_ei, GpFactors, MatrixRef,
    PreparedGp,
};
use crate::error::Error;
use crate::hit_and_run::{hit_and_run as core_hit_and_run, Method, RunOptions};
use crate::lattice::{hit_and_run_int as core_hit_and_run_int, IntPolytope};
use crate::maximizer::{
    maximize_log_ei as core_maximize_log_ei, Column, DoubleBlock, IntBlock, Settings, Snap, Space,
};
use crate::penalty::LocalPenalty as CoreLocalPenalty;
use crate::polytope::Polytope;

fn to_py_err(e: Error) -> PyErr {
    match e {
        Error::Input { .. } => PyValueError::new_err(e.to_string()),
        Error::Numerical(_) => PyRuntimeError::new_err(e.to_string()),
    }
}

fn count(arg: &'static str, v: i64) -> PyResult<usize> {
    usize::try_from(v).map_err(|_| PyValueError::new_err(format!("{arg}: must be >= 0, got {v}")))
}

fn seed_u64(v: i128) -> PyResult<u64> {
    u64::try_from(v)
        .map_err(|_| PyValueError::new_err(format!("seed: must be in [0, 2**64), got {v}")))
}

fn opts(
    n_samples: i64,
    burn_in: i64,
    thin: i64,
    n_chains: i64,
    seed: i128,
) -> PyResult<RunOptions> {
    Ok(RunOptions {
        n_samples: count("n_samples", n_samples)?,
        burn_in: count("burn_in", burn_in)?,
        thin: count("thin", thin)?,
        n_chains: count("n_chains", n_chains)?,
        seed: seed_u64(seed)?,
    })
}

/// Copies a read-only 2-D view into a row-major vector.
fn matrix(a: &PyReadonlyArray2<'_, f64>) -> (Vec<f64>, usize, usize) {
    let v = a.as_array();
    let (m, d) = v.dim();
    (v.iter().copied().collect(), m, d)
}

fn vector<T: numpy::Element + Copy>(x: &PyReadonlyArray1<'_, T>) -> Vec<T> {
    x.as_array().iter().copied().collect()
}

fn to_array<'py, T: numpy::Element>(
    py: Python<'py>,
    v: Vec<T>,
    d: usize,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let n = v.len().checked_div(d).unwrap_or(0);
    let arr =
        Array2::from_shape_vec((n, d), v).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    Ok(PyArray2::from_owned_array(py, arr))
}

/// Uniform samples of {x : lo <= x <= hi, A x <= b} by hit-and-run from the
/// strictly interior point `x0`. Returns an `(n_samples, d)` float64 array.
#[pyfunction]
#[pyo3(signature = (a, b, lo, hi, x0, n_samples, *, burn_in, thin, n_chains = 1, method = "coordinate", seed = 0))]
#[allow(clippy::too_many_arguments)]
fn hit_and_run<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f64>,
    b: PyReadonlyArray1<'py, f64>,
    lo: PyReadonlyArray1<'py, f64>,
    hi: PyReadonlyArray1<'py, f64>,
    x0: PyReadonlyArray1<'py, f64>,
    n_samples: i64,
    burn_in: i64,
    thin: i64,
    n_chains: i64,
    method: &str,
    seed: i128,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let opts = opts(n_samples, burn_in, thin, n_chains, seed)?;
    let method = Method::parse(method).map_err(to_py_err)?;
    let (a, m, d) = matrix(&a);
    let (b, lo, hi, x0) = (vector(&b), vector(&lo), vector(&hi), vector(&x0));
    let out = py
        .detach(move || {
            let p = Polytope::new(a, m, d, b, lo, hi)?;
            core_hit_and_run(&p, &x0, method, &opts)
        })
        .map_err(to_py_err)?;
    to_array(py, out, d)
}

/// Uniform samples of the integer points {z : lo <= z <= hi, A z <= b} by
/// coordinate hit-and-run on the lattice from the feasible point `z0`.
/// Returns an `(n_samples, d)` int64 array.
#[pyfunction]
#[pyo3(signature = (a, b, lo, hi, z0, n_samples, *, burn_in, thin, n_chains = 1, seed = 0))]
#[allow(clippy::too_many_arguments)]
fn hit_and_run_int<'py>(
    py: Python<'py>,
    a: PyReadonlyArray2<'py, f64>,
    b: PyReadonlyArray1<'py, f64>,
    lo: PyReadonlyArray1<'py, i64>,
    hi: PyReadonlyArray1<'py, i64>,
    z0: PyReadonlyArray1<'py, i64>,
    n_samples: i64,
    burn_in: i64,
    thin: i64,
    n_chains: i64,
    seed: i128,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let opts = opts(n_samples, burn_in, thin, n_chains, seed)?;
    let (a, m, d) = matrix(&a);
    let (b, lo, hi, z0) = (vector(&b), vector(&lo), vector(&hi), vector(&z0));
    let out = py
        .detach(move || {
            let ip = IntPolytope::new(a, m, d, b, lo, hi)?;
            core_hit_and_run_int(&ip, &z0, &opts)
        })
        .map_err(to_py_err)?;
    to_array(py, out, d)
}

/// Row-major copy of a 2-D array (a memcpy when it is C-contiguous), with its shape.
fn matrix_c(a: &PyReadonlyArray2<'_, f64>) -> (Vec<f64>, usize, usize) {
    let (m, d) = (a.shape()[0], a.shape()[1]);
    match a.as_slice() {
        Ok(s) if a.is_c_contiguous() => (s.to_vec(), m, d),
        _ => matrix(a),
    }
}

/// Owned copies of a GP's factors, so that the GIL can be released.
struct OwnedFactors {
    x_train: (Vec<f64>, usize, usize),
    alpha: Vec<f64>,
    chol: (Vec<f64>, usize, usize),
    lengthscales: Vec<f64>,
    outputscale: f64,
    y_mean: f64,
    y_std: f64,
}

impl OwnedFactors {
    fn view(&self) -> crate::Result<GpFactors<'_>> {
        let (x, n, d) = &self.x_train;
        let (c, cn, cm) = &self.chol;
        Ok(GpFactors {
            x_train: MatrixRef::new("x_train", x, *n, *d)?,
            alpha: &self.alpha,
            chol: MatrixRef::new("chol", c, *cn, *cm)?,
            lengthscales: &self.lengthscales,
            outputscale: self.outputscale,
            y_mean: self.y_mean,
            y_std: self.y_std,
        })
    }
}

type MeanVar<'py> = (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<f64>>);

/// What log EI improves on: one incumbent, or one per posterior mean.
#[derive(FromPyObject)]
enum Incumbents {
    One(f64),
    Each(Vec<f64>),
}

impl Incumbents {
    fn to_vec(&self) -> Vec<f64> {
        match self {
            Incumbents::One(v) => vec![*v],
            Incumbents::Each(v) => v.clone(),
        }
    }
}

/// Posterior mean and variance of a fitted GP at `candidates`, in the
/// original units: `(mean, var)`, each `(k,)` float64.
#[pyfunction]
#[pyo3(signature = (candidates, x_train, alpha, chol, lengthscales, outputscale, y_mean, y_std))]
#[allow(clippy::too_many_arguments)]
fn gp_posterior<'py>(
    py: Python<'py>,
    candidates: PyReadonlyArray2<'py, f64>,
    x_train: PyReadonlyArray2<'py, f64>,
    alpha: PyReadonlyArray1<'py, f64>,
    chol: PyReadonlyArray2<'py, f64>,
    lengthscales: PyReadonlyArray1<'py, f64>,
    outputscale: f64,
    y_mean: f64,
    y_std: f64,
) -> PyResult<MeanVar<'py>> {
    let gp = OwnedFactors {
        x_train: matrix_c(&x_train),
        alpha: vector(&alpha),
        chol: matrix_c(&chol),
        lengthscales: vector(&lengthscales),
        outputscale,
        y_mean,
        y_std,
    };
    let (c, k, d) = matrix_c(&candidates);
    let (mean, var) = py
        .detach(move || core_posterior(&gp.view()?, &MatrixRef::new("candidates", &c, k, d)?))
        .map_err(to_py_err)?;
    Ok((PyArray1::from_vec(py, mean), PyArray1::from_vec(py, var)))
}

/// Log expected improvement over `incumbent` (maximization) of a fitted GP at
/// `candidates`: `(k,)` float64.
#[pyfunction]
#[pyo3(signature = (candidates, x_train, alpha, chol, lengthscales, outputscale, y_mean, y_std, incumbent))]
#[allow(clippy::too_many_arguments)]
fn score_log_ei<'py>(
    py: Python<'py>,
    candidates: PyReadonlyArray2<'py, f64>,
    x_train: PyReadonlyArray2<'py, f64>,
    alpha: PyReadonlyArray1<'py, f64>,
    chol: PyReadonlyArray2<'py, f64>,
    lengthscales: PyReadonlyArray1<'py, f64>,
    outputscale: f64,
    y_mean: f64,
    y_std: f64,
    incumbent: f64,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let gp = OwnedFactors {
        x_train: matrix_c(&x_train),
        alpha: vector(&alpha),
        chol: matrix_c(&chol),
        lengthscales: vector(&lengthscales),
        outputscale,
        y_mean,
        y_std,
    };
    let (c, k, d) = matrix_c(&candidates);
    let out = py
        .detach(move || {
            core_score_log_ei(
                &gp.view()?,
                &MatrixRef::new("candidates", &c, k, d)?,
                incumbent,
            )
        })
        .map_err(to_py_err)?;
    Ok(PyArray1::from_vec(py, out))
}

/// A fitted GP's factors, validated and copied once, scoring many batches
/// of candidates (the functions above re-validate and copy on every call).
#[pyclass(frozen, module = "optserve._sampler")]
struct GpScorer {
    gp: PreparedGp,
}

impl GpScorer {
    /// The means (count, S) as an array: (count,) for one mean, else (count, S).
    fn means_array<'py>(&self, py: Python<'py>, mean: Vec<f64>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.gp.means();
        if s == 1 {
            return Ok(PyArray1::from_vec(py, mean).into_any());
        }
        Ok(to_array(py, mean, s)?.into_any())
    }
}

#[pymethods]
impl GpScorer {
    #[new]
    #[pyo3(signature = (x_train, alpha, chol, lengthscales, outputscale, y_mean, y_std, groups=None, train_scales=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        x_train: PyReadonlyArray2<'_, f64>,
        alpha: PyReadonlyArray1<'_, f64>,
        chol: PyReadonlyArray2<'_, f64>,
        lengthscales: PyReadonlyArray1<'_, f64>,
        outputscale: f64,
        y_mean: f64,
        y_std: f64,
        groups: Option<Vec<Vec<usize>>>,
        train_scales: Option<PyReadonlyArray2<'_, f64>>,
    ) -> PyResult<Self> {
        let owned = OwnedFactors {
            x_train: matrix_c(&x_train),
            alpha: vector(&alpha),
            chol: matrix_c(&chol),
            lengthscales: vector(&lengthscales),
            outputscale,
            y_mean,
            y_std,
        };
        let gp = owned
            .view()
            .and_then(|view| PreparedGp::new(&view))
            .map_err(to_py_err)?;
        let gp = match (groups, train_scales) {
            (None, None) => gp,
            (Some(groups), Some(scales)) => {
                let (data, rows, cols) = matrix_c(&scales);
                MatrixRef::new("train_scales", &data, rows, cols)
                    .and_then(|scales| gp.with_mixture(groups, &scales))
                    .map_err(to_py_err)?
            }
            _ => {
                return Err(PyValueError::new_err(
                    "groups and train_scales: give both (a mixture kernel) or neither",
                ))
            }
        };
        Ok(GpScorer { gp })
    }

    /// The input dimension `D`.
    #[getter]
    fn dim(&self) -> usize {
        self.gp.dim()
    }

    /// How many posterior means share the variance.
    #[getter]
    fn means(&self) -> usize {
        self.gp.means()
    }

    /// This GP with S posterior means sharing its variance: `weights` (n, S)
    /// in place of `alpha`.
    fn with_means(&self, weights: PyReadonlyArray2<'_, f64>) -> PyResult<GpScorer> {
        let (data, rows, cols) = matrix_c(&weights);
        let gp = MatrixRef::new("weights", &data, rows, cols)
            .and_then(|w| self.gp.clone().with_means(&w))
            .map_err(to_py_err)?;
        Ok(GpScorer { gp })
    }

    /// Posterior mean and variance at `candidates`, as `gp_posterior`
    /// (`scales`: the candidates' scales under a mixture kernel).
    #[pyo3(signature = (candidates, scales=None))]
    fn posterior<'py>(
        &self,
        py: Python<'py>,
        candidates: PyReadonlyArray2<'py, f64>,
        scales: Option<PyReadonlyArray2<'py, f64>>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyArray1<f64>>)> {
        let (c, k, d) = matrix_c(&candidates);
        let sc = scales.as_ref().map(matrix_c);
        let gp = &self.gp;
        let (mean, var) = py
            .detach(move || {
                let scales = sc
                    .as_ref()
                    .map(|(data, rows, cols)| MatrixRef::new("scales", data, *rows, *cols))
                    .transpose()?;
                gp.posterior_scaled(&MatrixRef::new("candidates", &c, k, d)?, scales.as_ref())
            })
            .map_err(to_py_err)?;
        Ok((self.means_array(py, mean)?, PyArray1::from_vec(py, var)))
    }

    /// Log expected improvement over `incumbent` at `candidates`, as
    /// `score_log_ei` (`scales`: the candidates' scales under a mixture kernel).
    #[pyo3(signature = (candidates, incumbent, scales=None))]
    fn log_ei<'py>(
        &self,
        py: Python<'py>,
        candidates: PyReadonlyArray2<'py, f64>,
        incumbent: Incumbents,
        scales: Option<PyReadonlyArray2<'py, f64>>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (c, k, d) = matrix_c(&candidates);
        let sc = scales.as_ref().map(matrix_c);
        let gp = &self.gp;
        let incumbents = incumbent.to_vec();
        let out = py
            .detach(move || {
                let scales = sc
                    .as_ref()
                    .map(|(data, rows, cols)| MatrixRef::new("scales", data, *rows, *cols))
                    .transpose()?;
                gp.log_ei_scaled(
                    &MatrixRef::new("candidates", &c, k, d)?,
                    scales.as_ref(),
                    &incumbents,
                )
            })
            .map_err(to_py_err)?;
        Ok(PyArray1::from_vec(py, out))
    }
}

/// A snapped column as Python gives it: (lo_t, hi_t, min, max, log, int, grid).
type SnapArgs = (f64, f64, f64, f64, bool, bool, Vec<f64>);

/// An experiment's encoded search space, validated once, for
/// `maximize_log_ei`.
#[pyclass(frozen, module = "optserve._sampler")]
struct SearchSpace {
    space: Space,
}

#[pymethods]
impl SearchSpace {
    #[new]
    #[pyo3(signature = (columns, groups, *, double_cols = None, double_a = None, double_b = None, double_x0 = None, int_cols = None, int_a = None, int_b = None, int_lo = None, int_hi = None, int_z0 = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        columns: Vec<Option<SnapArgs>>,
        groups: Vec<(usize, usize)>,
        double_cols: Option<Vec<usize>>,
        double_a: Option<PyReadonlyArray2<'_, f64>>,
        double_b: Option<PyReadonlyArray1<'_, f64>>,
        double_x0: Option<PyReadonlyArray1<'_, f64>>,
        int_cols: Option<Vec<usize>>,
        int_a: Option<PyReadonlyArray2<'_, f64>>,
        int_b: Option<PyReadonlyArray1<'_, f64>>,
        int_lo: Option<PyReadonlyArray1<'_, i64>>,
        int_hi: Option<PyReadonlyArray1<'_, i64>>,
        int_z0: Option<PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<Self> {
        let mut in_group = vec![false; columns.len()];
        for &(start, width) in &groups {
            for seen in in_group.iter_mut().skip(start).take(width) {
                *seen = true;
            }
        }
        let columns = columns
            .into_iter()
            .zip(in_group)
            .map(|(snap, grouped)| match snap {
                Some((lo_t, hi_t, min, max, log, int, mut grid)) => {
                    grid.sort_by(f64::total_cmp);
                    Column::Snapped(Snap {
                        lo_t,
                        hi_t,
                        min,
                        max,
                        log,
                        int,
                        grid,
                    })
                }
                None if grouped => Column::OneHot,
                None => Column::Continuous,
            })
            .collect();
        let doubles = match (double_cols, double_a, double_b, double_x0) {
            (None, None, None, None) => None,
            (Some(cols), Some(a), Some(b), Some(x0)) => {
                let (a, m, k) = matrix(&a);
                let poly = Polytope::new(a, m, k, vector(&b), vec![0.0; k], vec![1.0; k])
                    .map_err(to_py_err)?;
                Some(DoubleBlock {
                    cols,
                    poly,
                    x0: vector(&x0),
                })
            }
            _ => {
                return Err(PyValueError::new_err(
                    "double_cols: give double_cols, double_a, double_b and double_x0 together",
                ))
            }
        };
        let ints = match (int_cols, int_a, int_b, int_lo, int_hi, int_z0) {
            (None, None, None, None, None, None) => None,
            (Some(cols), Some(a), Some(b), Some(lo), Some(hi), Some(z0)) => {
                let (a, m, k) = matrix(&a);
                let poly = IntPolytope::new(a, m, k, vector(&b), vector(&lo), vector(&hi))
                    .map_err(to_py_err)?;
                Some(IntBlock {
                    cols,
                    poly,
                    z0: vector(&z0),
                })
            }
            _ => {
                return Err(PyValueError::new_err(
                    "int_cols: give int_cols, int_a, int_b, int_lo, int_hi and int_z0 together",
                ))
            }
        };
        let space = Space::new(columns, groups, doubles, ints).map_err(to_py_err)?;
        Ok(SearchSpace { space })
    }

    /// The encoded dimension `D`.
    #[getter]
    fn dim(&self) -> usize {
        self.space.dim()
    }

    /// Whether each canonical row meets every linear constraint.
    fn feasible<'py>(
        &self,
        py: Python<'py>,
        rows: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let (r, _, d) = matrix_c(&rows);
        if d != self.space.dim() {
            return Err(PyValueError::new_err(format!(
                "rows: have {d} columns, the space has {}",
                self.space.dim()
            )));
        }
        let out: Vec<bool> = r
            .chunks_exact(d.max(1))
            .map(|row| self.space.feasible(row, crate::polytope::FEAS_TOL))
            .collect();
        Ok(PyArray1::from_vec(py, out))
    }
}

/// The local penalty of pending points (Gonzalez et al. 2016), validated
/// once, for `maximize_log_ei`.
#[pyclass(frozen, module = "optserve._sampler")]
struct LocalPenalty {
    penalty: CoreLocalPenalty,
}

#[pymethods]
impl LocalPenalty {
    #[new]
    fn new(
        points: PyReadonlyArray2<'_, f64>,
        lengthscales: PyReadonlyArray1<'_, f64>,
        means: PyReadonlyArray1<'_, f64>,
        stds: PyReadonlyArray1<'_, f64>,
        lipschitz: f64,
        incumbent: f64,
    ) -> PyResult<Self> {
        let (p, _, d) = matrix_c(&points);
        let lengthscales = vector(&lengthscales);
        if d != lengthscales.len() {
            return Err(PyValueError::new_err(format!(
                "points: have {d} columns, lengthscales has {}",
                lengthscales.len()
            )));
        }
        let penalty = CoreLocalPenalty::new(
            &p,
            &lengthscales,
            &vector(&means),
            &vector(&stds),
            lipschitz,
            incumbent,
        )
        .map_err(to_py_err)?;
        Ok(LocalPenalty { penalty })
    }

    /// The encoded dimension `D`.
    #[getter]
    fn dim(&self) -> usize {
        self.penalty.dim()
    }

    /// The penalty of each row of `rows` (n, D).
    fn values<'py>(
        &self,
        py: Python<'py>,
        rows: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let (r, _, d) = matrix_c(&rows);
        if d != self.penalty.dim() {
            return Err(PyValueError::new_err(format!(
                "rows: have {d} columns, the penalty has {}",
                self.penalty.dim()
            )));
        }
        let out: Vec<f64> = r
            .chunks_exact(d.max(1))
            .map(|row| self.penalty.value(row))
            .collect();
        Ok(PyArray1::from_vec(py, out))
    }
}

type Maximum<'py> = Option<(Bound<'py, PyArray1<f64>>, f64, f64)>;

/// The best feasible point of log EI over `incumbent` under `scorer`'s GP
/// (plus `penalty` where given), in `space`: `(point, value, best candidate
/// value)`, or None when every scored point is an observed one.
#[pyfunction]
#[pyo3(signature = (scorer, incumbent, space, best_rows, *, seed, penalty = None, global_candidates = 768, local_candidates = 96, refine_steps = vec![0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001], refine_candidates = 48, refine_starts = 5, polish_starts = 5, polish_iterations = 40, threads = 0))]
#[allow(clippy::too_many_arguments)]
fn maximize_log_ei<'py>(
    py: Python<'py>,
    scorer: &GpScorer,
    incumbent: Incumbents,
    space: &SearchSpace,
    best_rows: PyReadonlyArray2<'py, f64>,
    seed: i128,
    penalty: Option<&LocalPenalty>,
    global_candidates: i64,
    local_candidates: i64,
    refine_steps: Vec<f64>,
    refine_candidates: i64,
    refine_starts: i64,
    polish_starts: i64,
    polish_iterations: i64,
    threads: i64,
) -> PyResult<Maximum<'py>> {
    let settings = Settings {
        global: count("global_candidates", global_candidates)?,
        local: count("local_candidates", local_candidates)?,
        refine_steps,
        refine_candidates: count("refine_candidates", refine_candidates)?,
        refine_starts: count("refine_starts", refine_starts)?,
        polish_starts: count("polish_starts", polish_starts)?,
        polish_iterations: count("polish_iterations", polish_iterations)?,
        threads: count("threads", threads)?,
        seed: seed_u64(seed)?,
    };
    let (rows, k, d) = matrix_c(&best_rows);
    if k > 0 && d != space.space.dim() {
        return Err(PyValueError::new_err(format!(
            "best_rows: have {d} columns, the space has {}",
            space.space.dim()
        )));
    }
    let (gp, sp) = (&scorer.gp, &space.space);
    let penalty = penalty.map(|p| &p.penalty);
    let out = py
        .detach(move || {
            core_maximize_log_ei(gp, &incumbent.to_vec(), sp, &rows, penalty, &settings)
        })
        .map_err(to_py_err)?;
    Ok(out.map(|o| (PyArray1::from_vec(py, o.point), o.value, o.candidates_best)))
}

/// Version of the compiled extension.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _sampler(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(hit_and_run, m)?)?;
    m.add_function(wrap_pyfunction!(hit_and_run_int, m)?)?;
    m.add_function(wrap_pyfunction!(gp_posterior, m)?)?;
    m.add_function(wrap_pyfunction!(score_log_ei, m)?)?;
    m.add_class::<GpScorer>()?;
    m.add_class::<SearchSpace>()?;
    m.add_class::<LocalPenalty>()?;
    m.add_function(wrap_pyfunction!(maximize_log_ei, m)?)?;
    Ok(())
}
