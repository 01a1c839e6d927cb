//! Errors of the sampler core.
use std::fmt;

/// What went wrong, in terms of the caller's arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Bad input: `arg` names the offending argument.
    Input { arg: &'static str, msg: String },
    /// A numerical failure the caller could not have prevented.
    Numerical(String),
}

impl Error {
    pub(crate) fn input(arg: &'static str, msg: impl Into<String>) -> Self {
        Error::Input {
            arg,
            msg: msg.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input { arg, msg } => write!(f, "{arg}: {msg}"),
            Error::Numerical(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
