//! A run's files: JSON summary, `.hgrm` percentile distribution, HdrHistogram
//! interval log and, for a run that measured kicks, the kick-to-wake latency's
//! `.kick-wake.hgrm`; each written atomically (temporary file, then rename).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use pvbench_wire::frames::{self, Done, Hello, LockStats};
use serde::Serialize;

use super::atomic::write_atomic;
use super::run::{LatencySummary, Received, Rejection, RunResult, RunStatus};
use super::server::CollectError;

/// The files of one run; the one place that knows their names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFiles {
    /// `<run>.json`: status, errors, totals, percentiles.
    pub summary: PathBuf,
    /// `<run>.hgrm`: percentile distribution in HdrHistogram's text layout.
    pub percentiles: PathBuf,
    /// `<run>.hlog`: the interval histograms, HdrHistogram interval log.
    pub interval_log: PathBuf,
    /// `<run>.kick-wake.hgrm`: the kick-to-wake latency's percentile
    /// distribution (nanoseconds), written only for a run that measured kicks.
    pub kick_wake: PathBuf,
}

impl RunFiles {
    /// The files of `run` in `dir`.
    pub fn in_dir(dir: &Path, run: &str) -> RunFiles {
        RunFiles {
            summary: dir.join(format!("{run}.json")),
            percentiles: dir.join(format!("{run}.hgrm")),
            interval_log: dir.join(format!("{run}.hlog")),
            kick_wake: dir.join(format!("{run}.kick-wake.hgrm")),
        }
    }
}

/// Latency values are in the guest's recording unit.
const UNIT: &str = "us";

#[derive(Serialize)]
struct Summary<'a> {
    run: &'a str,
    status: RunStatus,
    errors: Vec<String>,
    rejected_connections: &'a [Rejection],
    unit: &'static str,
    latency: LatencySummary,
    received: Received,
    guest_elapsed_s: Option<f64>,
    wire_bytes_per_s: Option<f64>,
    lock: LockStats,
    /// Percentiles of the kick-to-wake latency, nanoseconds.
    kick_wake_ns: Option<LatencySummary>,
    /// Connections the guest opened again after one broke (migrations).
    resumes: u32,
    hello: Option<&'a Hello>,
    done: Option<&'a Done>,
    guest_error: Option<&'a str>,
    files: SummaryFiles,
}

#[derive(Serialize)]
struct SummaryFiles {
    percentiles: String,
    interval_log: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kick_wake: Option<String>,
}

/// Writes the run's three files into `dir` (created if missing). The summary
/// goes last, so a summary on disk means its two companions are complete.
pub fn write_run_files(result: &RunResult, dir: &Path) -> Result<RunFiles, CollectError> {
    let files = RunFiles::in_dir(dir, &result.run);
    fs::create_dir_all(dir).map_err(write_error(dir))?;
    let log = interval_log(result)?;
    let write = |path: &Path, bytes: &[u8]| write_atomic(path, bytes).map_err(write_error(path));
    write(
        &files.percentiles,
        percentile_distribution(&result.histogram).as_bytes(),
    )?;
    write(&files.interval_log, &log)?;
    if let Some(h) = &result.kick_wake {
        write(&files.kick_wake, percentile_distribution(h).as_bytes())?;
    }
    let json = serde_json::to_vec_pretty(&summary(result, &files)).map_err(|e| CollectError::Write {
        path: files.summary.display().to_string(),
        source: e.into(),
    })?;
    write(&files.summary, &json)?;
    Ok(files)
}

fn summary<'a>(result: &'a RunResult, files: &RunFiles) -> Summary<'a> {
    let name = |p: &Path| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let elapsed = result
        .done
        .as_ref()
        .map(|d| d.elapsed_ns)
        .or_else(|| result.intervals.last().map(|i| i.end_ns))
        .filter(|&ns| ns > 0)
        .map(|ns| ns as f64 / 1e9);
    Summary {
        run: &result.run,
        status: result.status,
        errors: result.errors.iter().map(ToString::to_string).collect(),
        rejected_connections: &result.rejected,
        unit: UNIT,
        latency: result.latency,
        received: result.received,
        guest_elapsed_s: elapsed,
        wire_bytes_per_s: elapsed.map(|s| result.received.bytes as f64 / s),
        lock: result.lock,
        kick_wake_ns: result.kick_wake.as_ref().map(LatencySummary::of),
        resumes: result.resumes,
        hello: result.hello.as_ref(),
        done: result.done.as_ref(),
        guest_error: result.guest_error.as_deref(),
        files: SummaryFiles {
            percentiles: name(&files.percentiles),
            interval_log: name(&files.interval_log),
            kick_wake: result.kick_wake.as_ref().map(|_| name(&files.kick_wake)),
        },
    }
}

/// The percentile distribution in the layout of HdrHistogram's
/// `outputPercentileDistribution` (5 ticks per half distance, values unscaled),
/// which HdrHistogram's plotter and wrk2-style tooling read.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    let digits = usize::from(h.sigfig());
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !h.is_empty() {
        let mut total = 0u64;
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:>12.digits$} {q:>2.12} {total:>10} {:>14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:>12.digits$} {q:>2.12} {total:>10}");
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean(), h.stdev(), h.max() as f64)
    };
    let buckets = u64::from(h.buckets());
    let sub_buckets = 2 * h.distinct_values() as u64 / (buckets + 1);
    let _ = writeln!(
        out,
        "#[Mean    = {mean:>12.digits$}, StdDeviation   = {stdev:>12.digits$}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:>12.digits$}, Total count    = {:>12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {buckets:>12}, SubBuckets     = {sub_buckets:>12}]"
    );
    out
}

/// The run's intervals as an HdrHistogram interval log (format 1.3, histograms
/// V2-compressed as Java's `HistogramLogReader` expects). Timestamps are guest
/// time since the guest's sink started, against a base time of the host's
/// clock when the Hello arrived.
fn interval_log(result: &RunResult) -> Result<Vec<u8>, CollectError> {
    let log_error = |detail: String| CollectError::IntervalLog {
        run: result.run.clone(),
        detail,
    };
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut header = IntervalLogWriterBuilder::new();
    header.add_comment(&format!(
        "[pvbench run {} status {:?}; latency values in {UNIT}]",
        result.run, result.status
    ));
    header.add_comment("[Histogram log format version 1.3]");
    if let Some(at) = result.hello_at {
        header.with_start_time(at).with_base_time(at);
    }
    header
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| log_error(e.to_string()))?;
    out.extend_from_slice(
        b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
    );
    let mut writer = IntervalLogWriterBuilder::new()
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| log_error(e.to_string()))?;
    for record in &result.intervals {
        let h = frames::decode_histogram(&record.histogram)
            .map_err(|e| log_error(format!("interval {}: {e}", record.seq)))?;
        writer
            .write_histogram(
                &h,
                Duration::from_nanos(record.start_ns),
                Duration::from_nanos(record.end_ns - record.start_ns),
                None,
            )
            .map_err(|e| log_error(e.to_string()))?;
    }
    Ok(out)
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> CollectError + '_ {
    move |source| CollectError::Write {
        path: path.display().to_string(),
        source,
    }
}
