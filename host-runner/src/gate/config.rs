//! The gate's thresholds: built-in defaults, overridden for every metric by
//! `[defaults]` and per metric by `[metric.<name>]` in a TOML file
//! (`ci/gate.toml`), then by the command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::correction::Correction;
use super::{metric_name, GateError};
use crate::results::Metric;

/// The two-sample test behind a group's p-values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TestKind {
    /// Welch's t-test: means, no equal-variance assumption.
    Welch,
    /// Student's t-test: means, pooled variance.
    Student,
    /// Mann–Whitney U (Wilcoxon rank-sum): no normality assumption; needs
    /// more repetitions (at 3 against 3 its smallest p is 0.05).
    MannWhitney,
}

impl TestKind {
    pub fn describe(self) -> &'static str {
        match self {
            TestKind::Welch => "Welch's t-test",
            TestKind::Student => "Student's t-test",
            TestKind::MannWhitney => "Mann–Whitney U test",
        }
    }
}

/// How one metric is judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Level of the metric's family of tests: family-wise error rate (Holm,
    /// Bonferroni, or per test with `none`) or false discovery rate (BH).
    pub alpha: f64,
    /// Smallest relative change of the centre that counts (0.05 = 5 %).
    pub min_effect: f64,
    /// Repetitions each side needs.
    pub min_reps: u32,
    /// Largest coefficient of variation (sd / mean) either side may have.
    pub max_cv: f64,
    pub test: TestKind,
    pub correction: Correction,
}

impl Default for Thresholds {
    /// Two metrics at 0.025 keep the whole gate's false-alarm rate <= 5 %.
    fn default() -> Self {
        Self {
            alpha: 0.025,
            min_effect: 0.05,
            min_reps: 3,
            max_cv: 0.15,
            test: TestKind::Welch,
            correction: Correction::Holm,
        }
    }
}

/// Thresholds as a file gives them: any subset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartialThresholds {
    alpha: Option<f64>,
    min_effect: Option<f64>,
    min_reps: Option<u32>,
    max_cv: Option<f64>,
    test: Option<TestKind>,
    correction: Option<Correction>,
}

impl PartialThresholds {
    fn over(&self, base: Thresholds) -> Thresholds {
        Thresholds {
            alpha: self.alpha.unwrap_or(base.alpha),
            min_effect: self.min_effect.unwrap_or(base.min_effect),
            min_reps: self.min_reps.unwrap_or(base.min_reps),
            max_cv: self.max_cv.unwrap_or(base.max_cv),
            test: self.test.unwrap_or(base.test),
            correction: self.correction.unwrap_or(base.correction),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    defaults: PartialThresholds,
    /// Keyed by the metric's name in results files (`elapsed_s`, `tps`).
    #[serde(default)]
    metric: BTreeMap<String, PartialThresholds>,
}

/// The thresholds of every metric.
#[derive(Debug, Clone, Default)]
pub struct GateConfig {
    pub defaults: Thresholds,
    per_metric: Vec<(Metric, Thresholds)>,
    /// The file they came from, if any.
    pub source: Option<PathBuf>,
}

impl GateConfig {
    pub fn load(path: &Path) -> Result<Self, GateError> {
        let text = std::fs::read_to_string(path).map_err(|source| GateError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|reason| GateError::Config {
            path: path.to_path_buf(),
            reason,
        })?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let defaults = file.defaults.over(Thresholds::default());
        validate(&defaults).map_err(|e| format!("[defaults]: {e}"))?;
        let mut per_metric = Vec::new();
        for (name, partial) in &file.metric {
            let metric: Metric = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|e| format!("[metric.{name}]: {e}"))?;
            let thresholds = partial.over(defaults);
            validate(&thresholds).map_err(|e| format!("[metric.{name}]: {e}"))?;
            per_metric.push((metric, thresholds));
        }
        Ok(Self {
            defaults,
            per_metric,
            source: None,
        })
    }

    pub fn for_metric(&self, metric: Metric) -> Thresholds {
        self.per_metric
            .iter()
            .find(|(m, _)| *m == metric)
            .map_or(self.defaults, |(_, t)| *t)
    }

    /// Sets one metric's thresholds (tests and tools that build a config in code).
    pub fn set(&mut self, metric: Metric, thresholds: Thresholds) {
        self.per_metric.retain(|(m, _)| *m != metric);
        self.per_metric.push((metric, thresholds));
    }

    /// The command line's `--test` and `--correction`, for every metric.
    pub fn override_all(&mut self, test: Option<TestKind>, correction: Option<Correction>) {
        let apply = |t: &mut Thresholds| {
            if let Some(test) = test {
                t.test = test;
            }
            if let Some(correction) = correction {
                t.correction = correction;
            }
        };
        apply(&mut self.defaults);
        self.per_metric.iter_mut().for_each(|(_, t)| apply(t));
    }
}

fn validate(t: &Thresholds) -> Result<(), String> {
    if !(t.alpha > 0.0 && t.alpha < 1.0) {
        return Err(format!("alpha = {} is outside 0 < alpha < 1", t.alpha));
    }
    if !(t.min_effect >= 0.0 && t.min_effect < 1.0) {
        return Err(format!(
            "min_effect = {} is outside 0 <= min_effect < 1 (a fraction: 0.05 is 5 %)",
            t.min_effect
        ));
    }
    if t.min_reps < 2 {
        return Err(format!(
            "min_reps = {} is below 2: a test needs a spread on each side",
            t.min_reps
        ));
    }
    if !(t.max_cv > 0.0 && t.max_cv.is_finite()) {
        return Err(format!("max_cv = {} is not a positive fraction", t.max_cv));
    }
    Ok(())
}

impl Thresholds {
    /// One line for summaries.
    pub fn describe(&self, metric: Metric) -> String {
        format!(
            "{}: {}, {} at alpha {}, min effect {}%, min {} reps, max CV {}%",
            metric_name(metric),
            self.test.describe(),
            self.correction.describe(),
            self.alpha,
            self.min_effect * 100.0,
            self.min_reps,
            self.max_cv * 100.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_per_metric_overrides() {
        let config = GateConfig::parse(
            r#"
            [defaults]
            alpha = 0.01
            min_effect = 0.1
            [metric.tps]
            max_cv = 0.3
            test = "mann-whitney"
            correction = "bh"
            "#,
        )
        .unwrap();
        let elapsed = config.for_metric(Metric::ElapsedS);
        assert_eq!((elapsed.alpha, elapsed.min_effect), (0.01, 0.1));
        assert_eq!(elapsed.max_cv, Thresholds::default().max_cv);
        let tps = config.for_metric(Metric::Tps);
        assert_eq!((tps.alpha, tps.max_cv), (0.01, 0.3));
        assert_eq!(
            (tps.test, tps.correction),
            (TestKind::MannWhitney, Correction::Bh)
        );
    }

    #[test]
    fn empty_file_is_the_defaults() {
        let config = GateConfig::parse("").unwrap();
        assert_eq!(config.for_metric(Metric::Tps), Thresholds::default());
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        for (text, want) in [
            ("[defaults]\nalpha = 1.5", "[defaults]: alpha = 1.5"),
            ("[metric.tps]\nmin_reps = 1", "[metric.tps]: min_reps = 1"),
            (
                "[metric.latency]\nalpha = 0.1",
                "[metric.latency]: unknown variant `latency`",
            ),
            ("[defaults]\nalfa = 0.1", "unknown field `alfa`"),
            ("[defaults]\ntest = \"z\"", "unknown variant `z`"),
            ("[defaults]\nmin_effect = 5", "0.05 is 5 %"),
        ] {
            let err = GateConfig::parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn command_line_overrides_every_metric() {
        let mut config = GateConfig::parse("[metric.tps]\ntest = \"student\"").unwrap();
        config.override_all(Some(TestKind::MannWhitney), Some(Correction::Bonferroni));
        for metric in [Metric::ElapsedS, Metric::Tps] {
            assert_eq!(config.for_metric(metric).test, TestKind::MannWhitney);
            assert_eq!(config.for_metric(metric).correction, Correction::Bonferroni);
        }
    }

    #[test]
    fn shipped_file_parses() {
        let text = include_str!("../../../ci/gate.toml");
        let config = GateConfig::parse(text).unwrap();
        assert_eq!(config.for_metric(Metric::ElapsedS).test, TestKind::Welch);
        assert_eq!(config.for_metric(Metric::ElapsedS).correction, Correction::Holm);
    }
}
