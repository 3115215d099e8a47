//! Deterministic synthetic results, in the schema `pvbench run` writes: for
//! the gate's tests and its recorded fixtures.
//!
//! The generator is splitmix64 with Box–Muller normals, written out rather
//! than taken from the `rand` crate: a few lines whose output is fixed by
//! their definition, so a seed gives the same fixtures on every machine and
//! with every future build (rand documents that `StdRng`'s algorithm may
//! change between releases), and tests need no extra dependency. Values are
//! rounded as real ones are (elapsed to the millisecond, TPS to 0.01), which
//! also hides any last-bit difference of a platform's `ln` and `cos`.

use std::path::Path;

use crate::results::short_hash;
use crate::results::MatrixSpec;
use crate::results::{
    self, ArmKey, CellResult, CellStatus, Provenance, Results, ResultsError, RunManifest, Workload,
};

/// splitmix64 (Steele, Lea and Flood, 2014): a 64-bit counter through a
/// mixing function; passes BigCrush, more than these tests ask for.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), from the top 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal by Box–Muller. The pair's second value is dropped:
    /// every draw then costs the same two uniforms, so changing one group's
    /// parameters leaves every other group's values as they were.
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: the logarithm stays finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// How one group's values are drawn: normal, with this mean and coefficient
/// of variation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    pub mean: f64,
    pub cv: f64,
}

impl Draw {
    /// The group's plausible value ([`Synth::nominal`]) with spread `cv`.
    pub fn nominal(group: ArmKey, cv: f64) -> Self {
        Self {
            mean: Synth::nominal(group),
            cv,
        }
    }

    /// The same, `factor` times the mean (1.25: 25 % more).
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            mean: self.mean * factor,
            ..self
        }
    }
}

/// A synthetic run of one matrix.
#[derive(Debug, Clone)]
pub struct Synth {
    spec: MatrixSpec,
    /// The matrix as its TOML reads, for the manifest.
    matrix: serde_json::Value,
    matrix_hash: String,
    pub accel: String,
    pub revision: String,
}

impl Synth {
    /// A run of the matrix in `matrix_toml` (as `pvbench run --matrix`
    /// reads it). The manifest records the TOML as written and a hash of its
    /// text, so fixtures do not change when `MatrixSpec` grows a field.
    pub fn new(matrix_toml: &str) -> Result<Self, String> {
        let spec: MatrixSpec = toml::from_str(matrix_toml).map_err(|e| e.to_string())?;
        spec.validate().map_err(|e| e.to_string())?;
        let table: toml::Value = toml::from_str(matrix_toml).map_err(|e| e.to_string())?;
        Ok(Self {
            spec,
            matrix: serde_json::to_value(table).map_err(|e| e.to_string())?,
            matrix_hash: short_hash(matrix_toml.as_bytes()),
            accel: "tcg".into(),
            revision: "synthetic".into(),
        })
    }

    /// The matrix's groups, in run order.
    pub fn groups(&self) -> Vec<ArmKey> {
        let mut groups = Vec::new();
        for key in self.spec.plan() {
            let group = key.arm();
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
        groups
    }

    /// A plausible centre for a group: kernbench slows with overcommit, less
    /// with the paravirtual locks and test-and-set (which cost a little at
    /// 1x); pgbench's TPS grow with clients and fall with overcommit, less
    /// with those locks.
    pub fn nominal(group: ArmKey) -> f64 {
        let f = f64::from(group.group.overcommit.factor());
        let pv = group.lock.is_paravirt() || group.lock == crate::results::LockMode::Tas;
        match group.group.workload {
            Workload::Kernbench if pv => 4.08 * f.powf(0.85),
            Workload::Kernbench => 4.0 * f,
            Workload::Pgbench => {
                let clients = f64::from(group.group.clients.unwrap_or(1)).powf(0.8);
                if pv {
                    294.0 * clients / f.powf(0.8)
                } else {
                    300.0 * clients / f
                }
            }
        }
    }

    /// Every planned cell, its value drawn by `draw(group)` from a stream
    /// seeded with `seed`, one draw per cell in run order. A kernbench value
    /// above the cap is censored at the cap, as `pvbench run` records it.
    pub fn results(&self, dir: &Path, seed: u64, draw: impl Fn(ArmKey) -> Draw) -> Results {
        let mut rng = SplitMix64::new(seed);
        let plan = self.spec.plan();
        let cells = plan
            .iter()
            .map(|key| {
                let d = draw(key.arm());
                let value = d.mean * (1.0 + d.cv * rng.normal());
                self.cell(*key, value)
            })
            .collect();
        Results {
            dir: dir.to_path_buf(),
            manifest: RunManifest {
                provenance: self.provenance(),
                matrix: self.matrix.clone(),
                cells: plan,
                target_mde_pct: None,
                sharding: None,
            },
            cells,
        }
    }

    fn cell(&self, key: crate::results::CellKey, value: f64) -> CellResult {
        let mut cell = CellResult::new(key, CellStatus::Completed);
        match key.workload {
            Workload::Kernbench => {
                let k = self
                    .spec
                    .kernbench
                    .as_ref()
                    .expect("kernbench cells need [kernbench]");
                let jobs = 8 * u64::from(k.scale);
                cell.cap_s = k.cap_s;
                cell.elapsed_s = (value.max(0.001) * 1000.0).round() / 1000.0;
                cell.ops = jobs;
                if cell.elapsed_s > k.cap_s {
                    cell.status = CellStatus::Censored;
                    cell.ops = (jobs as f64 * k.cap_s / cell.elapsed_s) as u64;
                    cell.elapsed_s = k.cap_s;
                }
            }
            Workload::Pgbench => {
                let p = self.spec.pgbench.as_ref().expect("pgbench cells need [pgbench]");
                let tps = (value.max(0.01) * 100.0).round() / 100.0;
                cell.cap_s = p.cap_s;
                cell.elapsed_s = p.duration_s;
                cell.tps = Some(tps);
                cell.ops = (tps * p.duration_s).round() as u64;
            }
        }
        cell
    }

    fn provenance(&self) -> Provenance {
        Provenance {
            host_cpu: "synthetic".into(),
            host_cores: self.spec.vcpus.unwrap_or(2),
            host_kernel: "synthetic".into(),
            qemu: "synthetic".into(),
            accel: self.accel.clone(),
            image_id: "synthetic".into(),
            git_revision: self.revision.clone(),
            matrix_hash: self.matrix_hash.clone(),
            pvbench_version: "synthetic".into(),
            started_unix: 1_700_000_000,
            hostname: None,
            guest_tsc_mhz: None,
        }
    }
}

/// Writes `results` as a results directory at `results.dir`, as `pvbench run`
/// lays it out.
pub fn write(results: &Results) -> Result<(), ResultsError> {
    results::write_json_atomic(&results.dir.join(results::MANIFEST_FILE), &results.manifest)?;
    for cell in &results.cells {
        results::write_json_atomic(&results::cell_path(&results.dir, &cell.key), cell)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_vector() {
        // The first outputs of the reference splitmix64.c for seed 1234567.
        let mut rng = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..5).map(|_| rng.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821
            ]
        );
    }

    #[test]
    fn normals_look_normal() {
        let mut rng = SplitMix64::new(42);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
        // Standard errors: 1/√n = 0.0022 for the mean, √(2/n) = 0.0032 for the variance.
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.015, "{var}");
        let beyond = xs.iter().filter(|x| x.abs() > 1.959_963_984_540_054).count() as f64 / n as f64;
        assert!((beyond - 0.05).abs() < 0.003, "{beyond}");
    }
}
