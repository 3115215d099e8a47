//! The error type of a workload run.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::params::ConfigError;

/// Why a run failed. Every variant says what failed and with which input; the guest prints it and
/// exits non-zero.
#[derive(Debug, Error)]
pub enum WorkloadError {
    #[error("invalid parameters: {0}")]
    Config(#[from] ConfigError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not start a {what} thread: {source}")]
    Spawn {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("a {what} thread panicked")]
    ThreadPanicked { what: &'static str },
    #[error("compiling {path}: {msg}")]
    Compile { path: PathBuf, msg: String },
    #[error("linking {path}: {msg}")]
    Link { path: PathBuf, msg: String },
    #[error("kernbench checksum changed: rep {rep} gave {got:#018x}, rep 1 gave {expected:#018x}")]
    ChecksumMismatch { rep: u32, expected: u64, got: u64 },
    #[error(
        "pgbench invariant violated in rep {rep}: sum(abalance)={accounts} sum(tbalance)={tellers} \
         sum(bbalance)={branches} sum(history.delta)={history} (history rows {history_rows}, \
         transactions {transactions})"
    )]
    InvariantViolated {
        rep: u32,
        accounts: i64,
        tellers: i64,
        branches: i64,
        history: i64,
        history_rows: u64,
        transactions: u64,
    },
    #[error("pgbench statement `{statement}`: {msg}")]
    Sql { statement: String, msg: String },
    #[error("histogram: {0}")]
    Histogram(String),
}

impl WorkloadError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
