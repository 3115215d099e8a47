//! `pvbench ministat`'s command line: ministat(1)'s options, parsed as
//! ministat parses them (getopt, `strtol`, `strtod`; its messages), and the
//! options they make.

use std::ffi::OsString;

use clap::Args;

use crate::ministat::{parse_c_double, AnalysisOptions, Columns, MinistatOptions, OutputFormat, TextOptions};
use crate::stats::{CompareOptions, Confidence, MedianRule, PercentMethod, TMethod, TSource};

/// Compare data sets like ministat(1): plot, summary table, and whether the
/// means differ at the chosen confidence (Student's t).
#[derive(Debug, Clone, Default, Args)]
#[command(after_help = "Exit status: 0 = no difference proven (or nothing compared), \
                        1 = a difference proven, 2 = usage or input error.")]
pub struct MinistatArgs {
    /// Just report the statistics and comparisons, suppress the ASCII-art plot
    #[arg(short = 'A')]
    pub no_plot: bool,

    // allow_hyphen_values: like getopt, a value option takes the next word even
    // if it starts with '-', so `-w -5` gets ministat's message.
    /// Column number to extract (starts and defaults to 1)
    #[arg(short = 'C', value_name = "column", value_parser = parse_column, allow_hyphen_values = true)]
    pub column: Option<usize>,

    /// Confidence level for Student's t: 80, 90, 95, 98, 99 or 99.5 (default 95)
    #[arg(short = 'c', value_name = "confidence", value_parser = parse_confidence, allow_hyphen_values = true)]
    pub confidence: Option<Confidence>,

    /// Column delimiter characters, default space and tab (any one separates)
    #[arg(short = 'd', value_name = "delimiters", value_parser = parse_delimiters, allow_hyphen_values = true)]
    pub delimiters: Option<String>,

    /// Just report the raw statistics, no plot and no comparisons
    #[arg(short = 'n')]
    pub summary_only: bool,

    /// Suppress the legend and the table header (FreeBSD's -q)
    #[arg(short = 'q')]
    pub quiet: bool,

    /// Print the avg/median/stddev bars of each set on separate lines
    #[arg(short = 's')]
    pub separate_bars: bool,

    /// Width of the plot (default: terminal width, or 74 if not a terminal)
    #[arg(short = 'w', value_name = "width", value_parser = parse_width, allow_hyphen_values = true)]
    pub width: Option<usize>,

    /// Median of an even count = mean of the two middle values (ministat: the upper one)
    #[arg(long)]
    pub median_mean: bool,

    /// Percent interval by Fieller's theorem (ministat: half-width / reference mean)
    #[arg(long)]
    pub pct_fieller: bool,

    /// Exact Student's t quantiles instead of ministat's rounded table
    #[arg(long)]
    pub exact_t: bool,

    /// Welch's t-test (unequal variances, Welch-Satterthwaite df)
    #[arg(long)]
    pub welch: bool,

    /// Print the statistics and comparisons as JSON instead of text
    #[arg(long)]
    pub json: bool,

    /// Data files, the first is the reference; `-` or none reads stdin (at most 7)
    #[arg(value_name = "FILE")]
    pub files: Vec<OsString>,
}

impl From<MinistatArgs> for MinistatOptions {
    fn from(args: MinistatArgs) -> Self {
        let default = Columns::default();
        let columns = Columns {
            column: args.column.unwrap_or(default.column),
            delimiters: args.delimiters.map_or(default.delimiters, |d| d.into_bytes()),
        };
        let compare = CompareOptions {
            confidence: args.confidence.unwrap_or_default(),
            t_method: if args.welch {
                TMethod::Welch
            } else {
                TMethod::Student
            },
            t_source: if args.exact_t {
                TSource::Exact
            } else {
                TSource::MinistatTable
            },
            percent: if args.pct_fieller {
                PercentMethod::Fieller
            } else {
                PercentMethod::Ministat
            },
        };
        let analysis = AnalysisOptions {
            median_rule: if args.median_mean {
                MedianRule::MeanOfMiddle
            } else {
                MedianRule::UpperMiddle
            },
            compare,
            summary_only: args.summary_only,
        };
        let output = if args.json {
            OutputFormat::Json
        } else {
            OutputFormat::Text(TextOptions {
                // -n prints no plot either.
                plot: !args.no_plot && !args.summary_only,
                legend: !args.quiet,
                separate_bars: args.separate_bars,
                width: args.width,
            })
        };
        MinistatOptions {
            files: args.files,
            columns,
            analysis,
            output,
        }
    }
}

/// C `strtol` base 10 as ministat uses it: the whole string must be taken;
/// an empty string is 0. None if anything is left over.
fn c_strtol(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if s.is_empty() {
        return Some(0);
    }
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Saturates like strtol on overflow.
    Some(
        t.parse()
            .unwrap_or(if t.starts_with('-') { i64::MIN } else { i64::MAX }),
    )
}

fn parse_column(s: &str) -> Result<usize, String> {
    let column = c_strtol(s).ok_or("Invalid column number.")?;
    usize::try_from(column)
        .ok()
        .filter(|&c| c > 0)
        .ok_or_else(|| "Column number should be positive.".to_string())
}

fn parse_confidence(s: &str) -> Result<Confidence, String> {
    let percent = parse_c_double(s).ok_or("Not a floating point number")?;
    Confidence::from_percent(percent)
        .ok_or_else(|| "No support for confidence level (80, 90, 95, 98, 99 or 99.5)".to_string())
}

fn parse_delimiters(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("Can't use empty delimiter string".to_string());
    }
    Ok(s.to_string())
}

/// Wider plots than this are surely a typo, and would need width × height
/// bytes of memory.
const MAX_WIDTH: i64 = 100_000;

fn parse_width(s: &str) -> Result<usize, String> {
    let width = c_strtol(s).ok_or("Invalid width, not a number.")?;
    if width < 0 {
        return Err("Unable to move beyond left margin.".to_string());
    }
    if width > MAX_WIDTH {
        return Err(format!("Invalid width, more than {MAX_WIDTH}."));
    }
    Ok(width as usize)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: MinistatArgs,
    }

    fn options(argv: &[&str]) -> MinistatOptions {
        let argv = std::iter::once("ministat").chain(argv.iter().copied());
        Cli::try_parse_from(argv).unwrap().args.into()
    }

    fn text(options: &MinistatOptions) -> TextOptions {
        match options.output {
            OutputFormat::Text(text) => text,
            OutputFormat::Json => panic!("not text"),
        }
    }

    #[test]
    fn no_options_are_ministats_defaults() {
        let o = options(&["a", "b"]);
        assert_eq!(o.files, ["a", "b"]);
        assert_eq!(o.columns, Columns::default());
        assert_eq!(o.analysis, AnalysisOptions::default());
        assert_eq!(o.output, OutputFormat::default());
    }

    #[test]
    fn summary_only_also_drops_the_plot() {
        let o = options(&["-n"]);
        assert!(o.analysis.summary_only);
        assert!(!text(&o).plot && text(&o).legend);
        let o = options(&["-A", "-q", "-s", "-w", "60"]);
        assert!(!o.analysis.summary_only);
        assert_eq!(
            text(&o),
            TextOptions {
                plot: false,
                legend: false,
                separate_bars: true,
                width: Some(60),
            }
        );
    }

    #[test]
    fn extensions_reach_the_comparison() {
        let o = options(&[
            "-c",
            "99",
            "-C",
            "2",
            "-d",
            ",",
            "--median-mean",
            "--welch",
            "--exact-t",
            "--pct-fieller",
            "--json",
        ]);
        assert_eq!(
            o.columns,
            Columns {
                column: 2,
                delimiters: b",".to_vec()
            }
        );
        assert_eq!(o.analysis.median_rule, MedianRule::MeanOfMiddle);
        assert_eq!(
            o.analysis.compare,
            CompareOptions {
                confidence: Confidence::P99,
                t_method: TMethod::Welch,
                t_source: TSource::Exact,
                percent: PercentMethod::Fieller,
            }
        );
        assert_eq!(o.output, OutputFormat::Json);
    }

    #[test]
    fn strtol_like_ministat() {
        assert_eq!(c_strtol("60"), Some(60));
        assert_eq!(c_strtol(" +7"), Some(7));
        assert_eq!(c_strtol("-3"), Some(-3));
        assert_eq!(c_strtol(""), Some(0));
        assert_eq!(c_strtol("6x"), None);
        assert_eq!(c_strtol("x"), None);
        assert_eq!(c_strtol(" "), None);
        assert_eq!(c_strtol("99999999999999999999"), Some(i64::MAX));
    }

    #[test]
    fn option_messages_are_ministats() {
        assert_eq!(
            parse_column("0").unwrap_err(),
            "Column number should be positive."
        );
        assert_eq!(parse_column("a").unwrap_err(), "Invalid column number.");
        assert_eq!(parse_confidence("x").unwrap_err(), "Not a floating point number");
        assert!(parse_confidence("96")
            .unwrap_err()
            .starts_with("No support for confidence level"));
        assert_eq!(parse_confidence("9.95e1"), Ok(Confidence::P99_5));
        assert_eq!(
            parse_width("-1").unwrap_err(),
            "Unable to move beyond left margin."
        );
        assert_eq!(parse_width("1x").unwrap_err(), "Invalid width, not a number.");
        assert_eq!(
            parse_delimiters("").unwrap_err(),
            "Can't use empty delimiter string"
        );
    }
}
