//! Values the unit tests of several modules build their fixtures from.

use crate::results::Provenance;

/// A provenance record with placeholder values.
pub fn provenance() -> Provenance {
    Provenance {
        host_cpu: "cpu".into(),
        host_cores: 2,
        host_kernel: "k".into(),
        qemu: "q".into(),
        accel: "tcg".into(),
        image_id: "image".into(),
        git_revision: "g".into(),
        matrix_hash: "m".into(),
        pvbench_version: "v".into(),
        started_unix: 0,
        hostname: None,
        guest_tsc_mhz: None,
    }
}
