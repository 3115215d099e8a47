//! `pvbench ministat`: a drop-in for Debian's `ministat` (20150715).
//!
//! Same input, options and output, byte for byte: legend, ASCII plot,
//! `N Min Max Median Avg Stddev` table and the Student's t verdict, at the
//! same 80/90/95/98/99/99.5 % levels. Where ministat versions disagree this
//! follows Debian's and offers the corrected variant as a long option:
//!
//! * median of an even count: Debian takes the upper middle value;
//!   `--median-mean` averages the two middle values (current FreeBSD).
//! * percent interval: Debian divides the difference's half-width by the
//!   reference mean; `--pct-fieller` gives Fieller's interval for the ratio.
//! * t values: Debian's 3-decimal table (its "99.5 %" column is really
//!   99.8 %, and df > 100 uses the normal); `--exact-t` uses exact quantiles.
//!
//! Beyond ministat: `--welch` (unequal variances), `--json`, `-q` (from
//! FreeBSD: no legend, no table header), and an exit status like diff(1)'s:
//! 0 = no difference proven (or nothing compared), 1 = a difference proven
//! for at least one set, 2 = usage or input error. ministat exits 2 for bad
//! input too, but 1 when a file cannot be opened; here that is 2 as well.
//! Unlike ministat, `inf`/`nan` in the input are rejected (ministat accepts
//! them and then crashes drawing the plot). Error messages are ministat's;
//! those it prefixes with "ministat: " carry "pvbench ministat: ".
//!
//! Extension output: `--welch` ends the verdict with `(Welch's t, df = 17.5)`
//! instead of the pooled s; `--pct-fieller` prints the percent line as
//! `-2.1% [-3.7%, -0.44%] (Fieller)`, or `[unbounded]` when the reference
//! mean is not distinguishable from zero.

// cfmt and text are also used by `pvbench report` for its ministat blocks.
pub(crate) mod cfmt;
mod input;
mod json;
mod plot;
mod term;
pub(crate) mod text;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::process::ExitCode;

use input::Columns;

use crate::stats::{
    compare, CompareOptions, Comparison, Confidence, MedianRule, PercentMethod, Sample, StatsError, TMethod,
    TSource,
};

/// ministat's limit: one plot symbol per set (x + * % # @ O).
pub const MAX_SETS: usize = 7;

/// Compare data sets like ministat(1): plot, summary table, and whether the
/// means differ at the chosen confidence (Student's t).
#[derive(Debug, Clone, Default, clap::Args)]
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

impl MinistatArgs {
    fn columns(&self) -> Columns {
        let default = Columns::default();
        Columns {
            column: self.column.unwrap_or(default.column),
            delimiters: self
                .delimiters
                .as_ref()
                .map_or(default.delimiters, |d| d.as_bytes().to_vec()),
        }
    }

    fn median_rule(&self) -> MedianRule {
        if self.median_mean {
            MedianRule::MeanOfMiddle
        } else {
            MedianRule::UpperMiddle
        }
    }

    fn compare_options(&self) -> CompareOptions {
        CompareOptions {
            confidence: self.confidence.unwrap_or_default(),
            t_method: if self.welch {
                TMethod::Welch
            } else {
                TMethod::Student
            },
            t_source: if self.exact_t {
                TSource::Exact
            } else {
                TSource::MinistatTable
            },
            percent: if self.pct_fieller {
                PercentMethod::Fieller
            } else {
                PercentMethod::Ministat
            },
        }
    }
}

/// What the exit status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No set differs from the reference at the chosen confidence, or no
    /// comparison was made (one set, `-n`).
    NoDifference = 0,
    /// At least one set differs from the reference.
    Difference = 1,
    /// Usage or input error (ministat's code for bad input).
    Failed = 2,
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(outcome as u8)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MinistatError {
    #[error("Cannot open {}: {}", .name.to_string_lossy(), os_message(.source))]
    Open { name: OsString, source: io::Error },
    #[error("Cannot read {}: {}", .name.to_string_lossy(), os_message(.source))]
    Read { name: OsString, source: io::Error },
    #[error("Invalid data on line {line} in {}", .name.to_string_lossy())]
    InvalidData { line: usize, name: OsString },
    #[error("Invalid data on line {line} in {}: not a finite number", .name.to_string_lossy())]
    NonFinite { line: usize, name: OsString },
    #[error("Dataset {} must contain at least 3 data points", .name.to_string_lossy())]
    TooFewPoints { name: OsString },
    #[error("Too many datasets.")]
    TooManySets,
    #[error("Cannot write the output: {}", os_message(.0))]
    Write(io::Error),
    #[error("Cannot serialize the JSON output: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Stats(#[from] StatsError),
}

impl MinistatError {
    /// The line(s) for stderr, shaped like ministat's: err(3)-style messages
    /// carry the program name, its plain fprintf and usage ones do not.
    fn report(&self) -> String {
        match self {
            MinistatError::TooFewPoints { .. } => format!("{self}\n"),
            MinistatError::TooManySets => format!("{self}\n{USAGE}\n"),
            _ => format!("pvbench ministat: {self}\n"),
        }
    }
}

const USAGE: &str = "Usage: pvbench ministat [-C column] [-c confidence] [-d delimiter(s)] [-Anqs] [-w width] [--median-mean] [--pct-fieller] [--exact-t] [--welch] [--json] [file [file ...]]";

/// io::Error's text without Rust's " (os error N)" suffix, like strerror.
fn os_message(error: &io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}

/// The standard streams, injectable for tests.
pub struct Streams<'a> {
    pub stdin: &'a mut dyn BufRead,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
}

/// Entry point for `pvbench ministat`.
pub fn run(args: &MinistatArgs) -> ExitCode {
    let stdin = io::stdin();
    let mut stdin = stdin.lock();
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr().lock();
    let mut streams = Streams {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    execute(args, &mut streams, term::default_width()).into()
}

/// Runs ministat on `streams`; `default_width` applies without `-w`.
pub fn execute(args: &MinistatArgs, streams: &mut Streams<'_>, default_width: usize) -> Outcome {
    let result = analyze(args, streams.stdin).and_then(|analysis| {
        let output = if args.json {
            json::render(&analysis)?
        } else {
            text::render(&analysis, args, args.width.unwrap_or(default_width))
        };
        streams
            .stdout
            .write_all(&output)
            .and_then(|()| streams.stdout.flush())
            .map_err(MinistatError::Write)?;
        Ok(analysis.outcome())
    });
    match result {
        Ok(outcome) => outcome,
        // A reader that went away (`| head`) wants no more output and no
        // message; still not a success, as with a SIGPIPE death.
        Err(MinistatError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => Outcome::Failed,
        Err(e) => {
            // Nothing more can be done if stderr fails too.
            let _ = streams.stderr.write_all(e.report().as_bytes());
            Outcome::Failed
        }
    }
}

/// One input file's data.
pub struct DataSet {
    pub name: OsString,
    pub sample: Sample,
}

/// Everything the renderers print.
pub struct Analysis {
    pub sets: Vec<DataSet>,
    pub median_rule: MedianRule,
    pub options: CompareOptions,
    /// Set i+1 against set 0; empty with `-n`.
    pub comparisons: Vec<Comparison>,
}

impl Analysis {
    fn outcome(&self) -> Outcome {
        if self.comparisons.iter().any(|c| c.proven) {
            Outcome::Difference
        } else {
            Outcome::NoDifference
        }
    }
}

/// Reads every set (in order, stopping at the first error, as ministat) and
/// compares each with the first.
pub fn analyze(args: &MinistatArgs, stdin: &mut dyn BufRead) -> Result<Analysis, MinistatError> {
    if args.files.len() > MAX_SETS {
        return Err(MinistatError::TooManySets);
    }
    let columns = args.columns();
    let paths: Vec<Option<&OsString>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files.iter().map(Some).collect()
    };
    let mut sets = Vec::with_capacity(paths.len());
    for path in paths {
        let name = input::display_name(path.map(OsString::as_os_str));
        let values = match path {
            Some(p) if p != "-" => {
                let file = File::open(p).map_err(|source| MinistatError::Open {
                    name: name.clone(),
                    source,
                })?;
                input::read_values(BufReader::new(file), &name, &columns)?
            }
            _ => input::read_values(&mut *stdin, &name, &columns)?,
        };
        sets.push(DataSet {
            name,
            sample: Sample::new(values)?,
        });
    }
    Ok(analyze_sets(sets, args))
}

/// Compares in-memory sets (the first is the reference) as `analyze` does
/// files, for callers that render ministat blocks from their own data.
/// Every set needs at least one value; a comparison needs two in each.
pub fn analyze_sets(sets: Vec<DataSet>, args: &MinistatArgs) -> Analysis {
    let options = args.compare_options();
    let comparisons = if args.summary_only {
        Vec::new()
    } else {
        sets[1..]
            .iter()
            .map(|set| compare(&set.sample, &sets[0].sample, &options))
            .collect()
    };
    Analysis {
        sets,
        median_rule: args.median_rule(),
        options,
        comparisons,
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
    let percent = input::parse_c_double(s).ok_or("Not a floating point number")?;
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
    use super::*;

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

    #[test]
    fn os_message_drops_rust_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(os_message(&e), "No such file or directory");
    }
}
