//! optserve's compiled sampler.
//!
//! The numerical core (`polytope`, `hit_and_run`, `lattice`, `rng`,
//! `acquisition`, `maximizer`, `penalty`) is plain Rust with no PyO3 in it; `python` only converts
//! arrays and errors.
pub mod acquisition;
pub mod error;
pub mod hit_and_run;
pub mod lattice;
pub mod maximizer;
pub mod penalty;
pub mod polytope;
pub mod rng;

mod python;

pub use error::{Error, Result};
pub use hit_and_run::{hit_and_run, Method, RunOptions};
pub use lattice::{hit_and_run_int, IntPolytope};
pub use polytope::Polytope;
