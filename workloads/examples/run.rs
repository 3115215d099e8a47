//! Runs a workload on the host from `key=value` arguments, e.g.
//! `cargo run --release -p pvbench-workloads --example run -- workload=kernbench vcpus=2`.
//! Prints one line per interval to stderr, then the summary line (and its JSON with
//! `PVBENCH_JSON=1`).

use std::process::ExitCode;

use pvbench_workloads::{run_args, IntervalReport, Observer};

struct Progress;

impl Observer for Progress {
    fn interval(&mut self, r: IntervalReport) {
        let p99 = if r.histogram.is_empty() {
            0
        } else {
            r.histogram.value_at_quantile(0.99)
        };
        eprintln!(
            "{} rep={} seq={} t={:.2}s span_ms={} ops={} p99_us={}{}",
            r.workload,
            r.rep,
            r.seq,
            r.start.as_secs_f64(),
            r.span.as_millis(),
            r.ops,
            p99,
            if r.last { " (last)" } else { "" }
        );
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run_args(&args, &mut Progress) {
        Ok(summary) => {
            println!("{}", summary.line());
            if std::env::var_os("PVBENCH_JSON").is_some() {
                match serde_json::to_string_pretty(&summary) {
                    Ok(j) => println!("{j}"),
                    Err(e) => eprintln!("json: {e}"),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
