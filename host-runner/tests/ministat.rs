//! `pvbench ministat` against Debian's ministat. The golden outputs in
//! fixtures/ministat/golden were recorded from /usr/bin/ministat
//! (20150715-1+b1) by fixtures/ministat/regen.sh, so these tests run without
//! ministat installed. The extensions (--welch, --pct-fieller, --exact-t,
//! --median-mean, --json) are checked against values computed independently
//! (mpmath 1.3, 30 digits, textbook formulas) or against the golden text.

// pvbench is a binary crate, so the modules are compiled in here directly;
// not every item they export is exercised by these tests.
#![allow(dead_code)]

use std::fs;

use clap::Parser;

use pvbench::cli::MinistatArgs;
use pvbench::exit::Exit;
use pvbench::ministat::{self, Outcome, Streams};
use pvbench::stats::student::ministat_t;
use pvbench::stats::Confidence;

/// Cargo runs integration tests in the package root (host-runner/).
const FIXTURES: &str = "tests/fixtures/ministat";
const DATA: &str = "tests/fixtures/ministat/data/";

#[derive(Parser)]
#[command(name = "ministat")]
struct Cli {
    #[command(flatten)]
    args: MinistatArgs,
}

struct Output {
    stdout: Vec<u8>,
    stderr: String,
    status: u8,
}

impl Output {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs `pvbench ministat ARGS` as main.rs will: clap parses, the arguments
/// become options, then execute.
fn ministat(args: &[&str], stdin: &[u8]) -> Output {
    let argv = std::iter::once("ministat").chain(args.iter().copied());
    match Cli::try_parse_from(argv) {
        Err(e) => Output {
            stdout: Vec::new(),
            stderr: e.to_string(),
            status: e.exit_code() as u8,
        },
        Ok(cli) => {
            let mut input = stdin;
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            let outcome = ministat::execute(
                &cli.args.into(),
                &mut Streams {
                    stdin: &mut input,
                    stdout: &mut stdout,
                    stderr: &mut stderr,
                },
                // What ministat uses when stdout is not a terminal.
                74,
            );
            Output {
                stdout,
                stderr: String::from_utf8_lossy(&stderr).into_owned(),
                status: Exit::from(outcome).code(),
            }
        }
    }
}

fn data(name: &str) -> String {
    format!("{DATA}{name}")
}

fn golden(name: &str) -> String {
    fs::read_to_string(format!("{FIXTURES}/golden/{name}.out"))
        .unwrap_or_else(|e| panic!("golden {name}: {e}"))
}

/// One line of cases.txt, decoded as regen.sh decodes it.
struct Case {
    name: String,
    args: Vec<String>,
    stdin: Option<String>,
}

fn cases() -> Vec<Case> {
    let manifest = fs::read_to_string(format!("{FIXTURES}/cases.txt")).expect("cases.txt");
    manifest
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut tokens = line.split_whitespace();
            let name = tokens.next().expect("case name").to_string();
            let mut case = Case {
                name,
                args: Vec::new(),
                stdin: None,
            };
            for token in tokens {
                let token = token.replace("@/", DATA).replace("\\s", " ");
                let token = if token == "\\e" { String::new() } else { token };
                match token.strip_prefix('<') {
                    Some(path) => case.stdin = Some(path.to_string()),
                    None => case.args.push(token),
                }
            }
            case
        })
        .collect()
}

/// The first line where two texts differ, for readable failures.
fn first_difference(want: &str, got: &str) -> String {
    let (mut w, mut g) = (want.lines(), got.lines());
    for number in 1.. {
        match (w.next(), g.next()) {
            (None, None) => return "identical lines, different bytes".into(),
            (a, b) if a != b => {
                return format!("line {number}:\n  want {a:?}\n  got  {b:?}");
            }
            _ => {}
        }
    }
    unreachable!()
}

#[test]
fn golden_outputs_match_debian_ministat_byte_for_byte() {
    let cases = cases();
    assert!(cases.len() >= 60, "cases.txt lost cases: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let stdin = case
            .stdin
            .as_ref()
            .map(|p| fs::read(p).expect("stdin fixture"))
            .unwrap_or_default();
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let got = ministat(&args, &stdin);
        let base = format!("{FIXTURES}/golden/{}", case.name);
        let want_out = fs::read(format!("{base}.out")).expect("golden .out");
        let debian_status: i32 = fs::read_to_string(format!("{base}.rc"))
            .expect("golden .rc")
            .trim()
            .parse()
            .expect("status");
        if debian_status == 0 {
            // ministat always exits 0; ours says whether it printed a difference.
            let text = String::from_utf8_lossy(&want_out);
            let want_status = u8::from(text.lines().any(|l| l.starts_with("Difference at")));
            if got.stdout != want_out {
                let diff = first_difference(&text, &got.text());
                failures.push(format!("{}: output differs at {diff}", case.name));
            }
            if got.status != want_status || !got.stderr.is_empty() {
                failures.push(format!(
                    "{}: status {} (want {want_status}), stderr {:?}",
                    case.name, got.status, got.stderr
                ));
            }
        } else {
            // Errors: nothing on stdout, ministat's message, status 2 (also
            // where ministat uses 1: that means "difference" here).
            let want_err = fs::read_to_string(format!("{base}.err")).expect("golden .err");
            let first = want_err.lines().next().expect("error message");
            let want = match first.strip_prefix("ministat: ") {
                Some(rest) => format!("pvbench ministat: {rest}"),
                None => first.to_string(),
            };
            if !got.stdout.is_empty() || got.status != 2 || !got.stderr.contains(&want) {
                failures.push(format!(
                    "{}: status {}, stdout {:?}, stderr {:?}, want message {want:?}",
                    case.name,
                    got.status,
                    got.text(),
                    got.stderr
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn t_table_matches_debian_ministat_at_every_level() {
    let table = fs::read_to_string(format!("{FIXTURES}/t_table_debian.txt")).expect("t table");
    let mut rows = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let mut fields = line.split_whitespace();
        let df: u64 = fields.next().expect("df").parse().expect("df");
        for (confidence, want) in Confidence::ALL.into_iter().zip(fields) {
            let want: f64 = want.parse().expect("t");
            assert_eq!(
                ministat_t(confidence, df),
                want,
                "df {df} at {}%",
                confidence.percent()
            );
        }
        rows += 1;
    }
    // Every df ministat can see (4 upwards), past the table's end at 100.
    assert_eq!(rows, 99);
}

/// Splits "\t<a> +/- <b>" into numbers.
fn plus_minus(line: &str) -> (f64, f64) {
    let (a, b) = line.trim().split_once(" +/- ").expect("+/- line");
    (
        a.trim_end_matches('%').parse().expect("number"),
        b.trim_end_matches('%').parse().expect("number"),
    )
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs()
}

#[test]
fn exact_t_changes_only_the_interval() {
    let args = [
        "-A",
        "--exact-t",
        &data("pgbench_base.txt"),
        &data("pgbench_pv.txt"),
    ];
    let got = ministat(&args, b"").text();
    let want = golden("pgbench_A");
    let (got_lines, want_lines): (Vec<_>, Vec<_>) = (got.lines().collect(), want.lines().collect());
    assert_eq!(got_lines.len(), want_lines.len());
    for (g, w) in got_lines.iter().zip(&want_lines) {
        if w.contains("+/-") {
            let ((gd, ge), (wd, _)) = (plus_minus(g), plus_minus(w));
            assert_eq!(gd, wd);
            // mpmath: t(0.975, 18) = 2.10092204..., half-width 126.700886...
            // and in percent of 7594.963: 1.668232...
            let want_e = if g.ends_with('%') { 1.668_232 } else { 126.700_887 };
            assert!(close(ge, want_e, 1e-5), "{g} vs {want_e}");
        } else {
            assert_eq!(g, w);
        }
    }
}

#[test]
fn median_mean_averages_the_middle_pair() {
    let args = ["-A", "--median-mean", &data("even_a.txt"), &data("even_b.txt")];
    let got = ministat(&args, b"").text();
    // even_a = 1 2 3 10 -> (2 + 3) / 2; even_b = 10..15 -> (12 + 13) / 2.
    let want = golden("even_median_A")
        .replace(
            "x   4             1            10             3",
            "x   4             1            10           2.5",
        )
        .replace(
            "+   6            10            15            13",
            "+   6            10            15          12.5",
        );
    assert_ne!(want, golden("even_median_A"), "fixture changed");
    assert_eq!(got, want);
}

#[test]
fn pct_fieller_gives_the_ratio_interval() {
    let args = [
        "-A",
        "--pct-fieller",
        &data("pgbench_base.txt"),
        &data("pgbench_pv.txt"),
    ];
    let got = ministat(&args, b"").text();
    let want = golden("pgbench_A");
    // Only the percent line changes.
    let percent_line = got
        .lines()
        .find(|l| l.ends_with("(Fieller)"))
        .expect("percent line");
    let without = |s: &str| {
        s.lines()
            .filter(|l| !l.ends_with('%') && !l.ends_with("(Fieller)"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without(&got), without(&want));
    let rest = percent_line
        .trim()
        .strip_prefix("-2.10698% [")
        .expect(percent_line);
    let bounds = rest.strip_suffix("%] (Fieller)").expect(percent_line);
    let (low, high) = bounds.split_once("%, ").expect(percent_line);
    // mpmath, Fieller with ministat's t = 2.101 and the pooled variance.
    assert!(close(low.parse().unwrap(), -3.744_330_9, 1e-5), "{percent_line}");
    assert!(close(high.parse().unwrap(), -0.442_383_1, 1e-5), "{percent_line}");
}

#[test]
fn welch_uses_satterthwaite_df_and_exact_t() {
    let args = [
        "-A",
        "--welch",
        &data("pgbench_base.txt"),
        &data("pgbench_pv.txt"),
    ];
    let out = ministat(&args, b"");
    assert_eq!(out.status, 1);
    let text = out.text();
    let lines: Vec<&str> = text.lines().skip(5).collect();
    assert_eq!(lines[0], "Difference at 95.0% confidence");
    // mpmath: df = 17.53152262..., t = 2.10495342..., half-width 126.944008...
    let (d, e) = plus_minus(lines[1]);
    assert_eq!(d, -160.024);
    assert!(close(e, 126.944_008, 1e-5), "{}", lines[1]);
    let (_, pe) = plus_minus(lines[2]);
    assert!(close(pe, 1.671_423_66, 1e-5), "{}", lines[2]);
    let df: f64 = lines[3]
        .trim()
        .strip_prefix("(Welch's t, df = ")
        .and_then(|s| s.strip_suffix(')'))
        .expect(lines[3])
        .parse()
        .unwrap();
    assert!(close(df, 17.531_522_6, 1e-5));
}

#[test]
fn welch_with_no_variance_at_all() {
    let args = ["-A", "--welch", &data("const_5.txt"), &data("const_6.txt")];
    let out = ministat(&args, b"");
    assert_eq!(out.status, 1, "{}", out.text());
    assert!(out.text().contains("\t1 +/- 0\n"), "{}", out.text());
    let same = ["-A", "--welch", &data("const_5.txt"), &data("const_5b.txt")];
    assert_eq!(ministat(&same, b"").status, 0);
}

/// Numbers in a golden table row: N Min Max Median Avg Stddev.
fn table_row(text: &str, symbol: char) -> Vec<f64> {
    let row = text
        .lines()
        .find(|l| l.starts_with(symbol) && l.split_whitespace().count() == 7)
        .expect("table row");
    row.split_whitespace()
        .skip(1)
        .map(|f| f.parse().expect("number"))
        .collect()
}

fn json_number(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// %g-printed `want` (6 or 8 digits) against the full-precision JSON value.
fn same_number(got: f64, want: f64, rel: f64) -> bool {
    (got.is_nan() && want.is_nan()) || close(got, want, rel) || (got == want)
}

#[test]
fn json_carries_the_same_numbers_as_the_text() {
    for (name, files) in [
        ("pgbench", &["pgbench_base.txt", "pgbench_pv.txt"][..]),
        (
            "three_sets",
            &["pgbench_base.txt", "pgbench_pv.txt", "pgbench_pv2.txt"],
        ),
        ("tenths_nan", &["tenths.txt", "small_ints.txt"]),
        ("zero_mean_reference", &["zero_mean.txt", "small_ints.txt"]),
        ("negative_reference", &["negative_b.txt", "negative_a.txt"]),
    ] {
        let paths: Vec<String> = files.iter().map(|f| data(f)).collect();
        let mut args = vec!["--json"];
        args.extend(paths.iter().map(String::as_str));
        let out = ministat(&args, b"");
        let text = golden(name);
        assert_eq!(out.status, u8::from(text.contains("\nDifference at")), "{name}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
        assert_eq!(json["confidence"], 95.0);
        let sets = json["sets"].as_array().expect("sets");
        assert_eq!(sets.len(), files.len());
        for (set, symbol) in sets.iter().zip(['x', '+', '*']) {
            let row = table_row(&text, symbol);
            assert_eq!(set["symbol"], symbol.to_string());
            assert_eq!(set["n"].as_u64(), Some(row[0] as u64), "{name}");
            for (key, want) in ["min", "max", "median", "mean", "stddev"].iter().zip(&row[1..]) {
                let got = json_number(&set[key]);
                assert!(
                    same_number(got, *want, 1e-7),
                    "{name} {symbol} {key}: {got} vs {want}"
                );
            }
        }
        let comparisons = json["comparisons"].as_array().expect("comparisons");
        assert_eq!(comparisons.len(), files.len() - 1);
        // Verdicts in text order: one per set after the first.
        let verdicts: Vec<&str> = text
            .split('\n')
            .filter(|l| l.contains("difference proven") || l.starts_with("Difference"))
            .collect();
        for (c, verdict) in comparisons.iter().zip(verdicts) {
            assert_eq!(c["proven"], verdict.starts_with("Difference"), "{name}");
            assert_eq!(c["t_method"], "student");
            if verdict.starts_with("Difference") {
                let block: Vec<&str> = text
                    .split(verdict)
                    .nth(1)
                    .unwrap()
                    .lines()
                    .skip(1)
                    .take(3)
                    .collect();
                let (d, e) = plus_minus(block[0]);
                let (p, pe) = plus_minus(block[1]);
                assert!(same_number(json_number(&c["difference"]), d, 1e-5), "{name}");
                assert!(same_number(json_number(&c["half_width"]), e, 1e-5), "{name}");
                let percent = json_number(&c["percent"]);
                let percent_half = json_number(&c["percent_half_width"]);
                assert!(
                    same_number(percent, p, 1e-5) || (percent.is_nan() && p.is_infinite()),
                    "{name}"
                );
                assert!(
                    same_number(percent_half, pe, 1e-5) || (percent_half.is_nan() && pe.is_infinite()),
                    "{name}"
                );
                let pooled: f64 = block[2]
                    .trim()
                    .strip_prefix("(Student's t, pooled s = ")
                    .and_then(|s| s.strip_suffix(')'))
                    .expect(block[2])
                    .parse()
                    .unwrap();
                assert!(same_number(json_number(&c["pooled_s"]), pooled, 1e-5), "{name}");
            }
        }
    }
}

#[test]
fn json_with_n_has_no_comparisons_and_exits_0() {
    let args = ["--json", "-n", &data("pgbench_base.txt"), &data("pgbench_pv.txt")];
    let out = ministat(&args, b"");
    assert_eq!(out.status, 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["comparisons"].as_array().map(Vec::len), Some(0));
    assert_eq!(json["sets"].as_array().map(Vec::len), Some(2));
}

#[test]
fn exit_status_says_whether_a_difference_was_proven() {
    let base = data("pgbench_base.txt");
    let pv2 = data("pgbench_pv2.txt");
    // Proven at 80 % and 90 %, not at 95 % (golden pv2_c*).
    assert_eq!(
        ministat(&["-c", "80", &base, &pv2], b"").status,
        Exit::from(Outcome::Difference).code()
    );
    assert_eq!(
        ministat(&["-c", "95", &base, &pv2], b"").status,
        Exit::from(Outcome::NoDifference).code()
    );
    // One set, or -n: nothing compared.
    assert_eq!(ministat(&[&base], b"").status, 0);
    assert_eq!(ministat(&["-n", &base, &data("pgbench_pv.txt")], b"").status, 0);
}

#[test]
fn non_finite_input_is_an_error_not_a_crash() {
    for bad in ["1\ninf\n3\n", "1\n2\nnan\n4\n", "1\n2\n1e999\n"] {
        let out = ministat(&[], bad.as_bytes());
        assert_eq!(out.status, 2, "{bad:?}");
        assert!(out.stdout.is_empty());
        assert!(
            out.stderr.contains("in <stdin>: not a finite number"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn unreadable_input_is_an_error() {
    let out = ministat(&[], b"1\n2\n\xff\n");
    assert_eq!(out.status, 2);
    assert_eq!(
        out.stderr,
        "pvbench ministat: Invalid data on line 3 in <stdin>\n"
    );
    // A directory opens but cannot be read.
    let out = ministat(&[DATA], b"");
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.starts_with("pvbench ministat: Cannot read"),
        "{}",
        out.stderr
    );
}

#[test]
fn plot_widths_ministat_leaves_undefined_do_not_panic() {
    for width in ["1", "3", "100000"] {
        let out = ministat(&["-w", width, &data("ties_a.txt"), &data("ties_b.txt")], b"");
        assert_eq!(out.status, 0, "-w {width}");
    }
    let out = ministat(&["-w", "100001", &data("ties_a.txt")], b"");
    assert_eq!(out.status, 2);
}
