//! The results of a benchmark matrix: what the runner writes and `report`
//! and `gate` read. The one place that knows the cell keys, the file names and the
//! layout of a results directory:
//!
//! ```text
//! <dir>/run.json              RunManifest: provenance, the matrix, planned cells
//! <dir>/cells/<id>.json       CellResult, one per finished cell (written atomically)
//! <dir>/cells/<id>/           that cell's metrics files and serial logs
//! ```
//!
//! A cell whose run reached its time cap is *censored*: its metric is a bound
//! (elapsed >= cap, or throughput <= what it did by then), never a value.
//!
//! [`spec`] holds the matrix as written (TOML) and its plan of cells;
//! [`shard`] splits that plan across hosts by comparison group.

#![warn(missing_docs)]

mod model;
pub mod shard;
pub mod spec;

pub use model::*;
pub use shard::{Shard, ShardError, Sharding};
pub use spec::{KernbenchSpec, MatrixSpec, MigrationSpec, PgbenchSpec, Profile, SpecError};

use sha2::{Digest, Sha256};

/// SHA-256 of `bytes`, shortened to its first 8 bytes in hex: the id of a
/// matrix (and of a guest image) in provenance records.
pub fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
