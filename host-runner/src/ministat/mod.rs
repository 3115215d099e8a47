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
pub(crate) use plot::SYMBOLS;
mod term;
pub(crate) mod text;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};

pub(crate) use input::parse_c_double;
pub use input::Columns;

use crate::exit::Exit;
use crate::stats::{compare, CompareOptions, Comparison, MedianRule, Sample, StatsError};

/// ministat's limit: one plot symbol per set (x + * % # @ O).
pub const MAX_SETS: usize = 7;

/// What `pvbench ministat` does: the options, parsed (`crate::cli` makes
/// them from the command line).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinistatOptions {
    /// Data files, the first is the reference; `-` or none reads stdin (at most 7).
    pub files: Vec<OsString>,
    /// Where each line's number is (`-C`, `-d`).
    pub columns: Columns,
    pub analysis: AnalysisOptions,
    pub output: OutputFormat,
}

/// What is computed from the sets.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AnalysisOptions {
    /// `--median-mean` takes the mean of the middle two.
    pub median_rule: MedianRule,
    /// `-c`, `--welch`, `--exact-t`, `--pct-fieller`.
    pub compare: CompareOptions,
    /// Only each set's statistics, no comparisons (`-n`).
    pub summary_only: bool,
}

/// What goes to stdout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutputFormat {
    /// ministat's layout.
    Text(TextOptions),
    /// `--json`.
    Json,
}

impl Default for OutputFormat {
    fn default() -> Self {
        OutputFormat::Text(TextOptions::default())
    }
}

/// ministat's text layout; by default everything, as ministat without options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextOptions {
    /// The ASCII plot (off with `-A` and with `-n`).
    pub plot: bool,
    /// The legend and the table header (off with `-q`).
    pub legend: bool,
    /// Each set's avg/median/stddev bars on a line of their own (`-s`).
    pub separate_bars: bool,
    /// Plot width (`-w`); None: the terminal's, else 74.
    pub width: Option<usize>,
}

impl Default for TextOptions {
    fn default() -> Self {
        Self {
            plot: true,
            legend: true,
            separate_bars: false,
            width: None,
        }
    }
}

/// What the exit status reports ([`Exit`] has the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No set differs from the reference at the chosen confidence, or no
    /// comparison was made (one set, `-n`).
    NoDifference,
    /// At least one set differs from the reference.
    Difference,
    /// Usage or input error; its message is printed.
    Failed,
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
pub fn run(options: &MinistatOptions) -> Exit {
    let stdin = io::stdin();
    let mut stdin = stdin.lock();
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr().lock();
    let mut streams = Streams {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    execute(options, &mut streams, term::default_width()).into()
}

/// Runs ministat on `streams`; `default_width` applies without `-w`.
pub fn execute(options: &MinistatOptions, streams: &mut Streams<'_>, default_width: usize) -> Outcome {
    let result = analyze(options, streams.stdin).and_then(|analysis| {
        let output = match &options.output {
            OutputFormat::Json => json::render(&analysis)?,
            OutputFormat::Text(layout) => {
                text::render(&analysis, layout, layout.width.unwrap_or(default_width))
            }
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
pub fn analyze(options: &MinistatOptions, stdin: &mut dyn BufRead) -> Result<Analysis, MinistatError> {
    if options.files.len() > MAX_SETS {
        return Err(MinistatError::TooManySets);
    }
    let columns = &options.columns;
    let paths: Vec<Option<&OsString>> = if options.files.is_empty() {
        vec![None]
    } else {
        options.files.iter().map(Some).collect()
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
                input::read_values(BufReader::new(file), &name, columns)?
            }
            _ => input::read_values(&mut *stdin, &name, columns)?,
        };
        sets.push(DataSet {
            name,
            sample: Sample::new(values)?,
        });
    }
    Ok(analyze_sets(sets, &options.analysis))
}

/// Compares in-memory sets (the first is the reference) as `analyze` does
/// files, for callers that render ministat blocks from their own data.
/// Every set needs at least one value; a comparison needs two in each.
pub fn analyze_sets(sets: Vec<DataSet>, options: &AnalysisOptions) -> Analysis {
    let comparisons = if options.summary_only {
        Vec::new()
    } else {
        sets[1..]
            .iter()
            .map(|set| compare(&set.sample, &sets[0].sample, &options.compare))
            .collect()
    };
    Analysis {
        sets,
        median_rule: options.median_rule,
        options: options.compare,
        comparisons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_message_drops_rust_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(os_message(&e), "No such file or directory");
    }
}
