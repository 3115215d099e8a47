//! `pvbench report`'s command line, and the options it makes.

use std::path::PathBuf;

use clap::Args;

use crate::export::Target;
use crate::report::{RenderOptions, ReportOptions, StdoutFormat, PLOTS_DIR};
use crate::stats::Confidence;

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Results directory written by `pvbench run`.
    #[arg(value_name = "RESULTS_DIR")]
    pub dir: PathBuf,
    /// Also write the report as Markdown to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Print a machine-readable JSON summary instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Directory for the SVG plots [default: RESULTS_DIR/plots].
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Write no plots.
    #[arg(long, conflicts_with = "plots")]
    pub no_plots: bool,
    /// Confidence level of the verdicts: 80, 90, 95, 98, 99 or 99.5.
    #[arg(long, short = 'c', value_name = "PERCENT", default_value = "95", value_parser = parse_confidence)]
    pub confidence: Confidence,
    /// Warn when an arm's coefficient of variation (sd / mean) is above
    /// this many percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0)]
    pub max_cv: f64,
    /// Also write the arms for a dashboard: FORMAT=PATH, FORMAT one of
    /// customSmallerIsBetter (kernbench-like seconds) and customBiggerIsBetter
    /// (pgbench-like tps), github-action-benchmark's custom JSON, or bmf
    /// (Bencher Metric Format, every arm); repeatable.
    #[arg(long, value_name = "FORMAT=PATH")]
    pub export: Vec<Target>,
}

fn parse_confidence(s: &str) -> Result<Confidence, String> {
    s.parse::<f64>()
        .ok()
        .and_then(Confidence::from_percent)
        .ok_or_else(|| format!("{s:?} is not one of 80, 90, 95, 98, 99, 99.5"))
}

impl From<ReportArgs> for ReportOptions {
    fn from(args: ReportArgs) -> Self {
        let plots = if args.no_plots {
            None
        } else {
            Some(args.plots.unwrap_or_else(|| args.dir.join(PLOTS_DIR)))
        };
        ReportOptions {
            render: RenderOptions {
                confidence: args.confidence,
                max_cv_percent: args.max_cv,
                ..RenderOptions::default()
            },
            markdown: args.markdown,
            plots,
            format: if args.json {
                StdoutFormat::Json
            } else {
                StdoutFormat::Text
            },
            dir: args.dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ReportArgs,
    }

    fn options(argv: &[&str]) -> ReportOptions {
        let argv = std::iter::once("report").chain(argv.iter().copied());
        Cli::try_parse_from(argv).unwrap().args.into()
    }

    #[test]
    fn plots_go_beside_the_results_unless_told() {
        assert_eq!(options(&["r"]).plots, Some(PathBuf::from("r").join(PLOTS_DIR)));
        assert_eq!(options(&["r", "--plots", "p"]).plots, Some(PathBuf::from("p")));
        assert_eq!(options(&["r", "--no-plots"]).plots, None);
    }

    #[test]
    fn confidence_and_noise_reach_the_render_options() {
        let o = options(&["r", "-c", "99", "--max-cv", "5", "--json"]);
        assert_eq!(o.render.confidence, Confidence::P99);
        assert_eq!(o.render.max_cv_percent, 5.0);
        assert_eq!(o.render.min_runs, RenderOptions::default().min_runs);
        assert_eq!(o.format, StdoutFormat::Json);
        assert_eq!(options(&["r"]).render, RenderOptions::default());
    }

    #[test]
    fn exports_are_format_and_path_and_bad_ones_are_refused() {
        use crate::export::Format;
        let argv = [
            "report",
            "r",
            "--export",
            "bmf=a.json",
            "--export",
            "customBiggerIsBetter=b.json",
        ];
        let args = Cli::try_parse_from(argv).unwrap().args;
        let formats: Vec<Format> = args.export.iter().map(|t| t.format).collect();
        assert_eq!(formats, [Format::Bmf, Format::BiggerIsBetter]);
        assert_eq!(args.export[0].path, PathBuf::from("a.json"));
        for (bad, why) in [
            ("bmf", "expected FORMAT=PATH"),
            ("csv=x", "is not one of"),
            ("bmf=", "no PATH"),
        ] {
            let err = Cli::try_parse_from(["report", "r", "--export", bad])
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
