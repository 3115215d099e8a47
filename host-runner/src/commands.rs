//! What each subcommand does, on top of the modules that do the work.

use std::io::Write;
use std::time::Duration;

use crate::build::layout::{self, Layout};
use crate::build::{self, BuildError, BuildOptions};
use crate::calibrate::{self, CalibrateOptions};
use crate::cli::{
    BootArgs, BuildArgs, CalibrateArgs, GuestArgs, MergeArgs, PlanArgs, ReportArgs, RunArgs, SoakArgs,
};
use crate::collect::{self, Collector};
use crate::exit::Exit;
use crate::export::{self, ExportError};
use crate::merge::{self, MergeError, MergeOptions};
use crate::report::{self, RenderOptions, ReportError};
use crate::results::shard::{self, Partition};
use crate::results::{MatrixSpec, MigrationSpec, ShardError, SpecError};
use crate::runner::{self, Host, RunError, RunOptions, TargetMde};
use crate::soak::{self, SoakOptions};
use crate::vm::accel::{self, AccelChoice, Resolved};
use pvbench_wire::cmdline::Cmdline;

use crate::vm::guest::{
    self, Ended, GuestConfig, GuestError, MigratePlan, MigrationKind, Outcome, StallWatch,
};
use crate::vm::qemu::{self, QemuError};
use pvbench_wire::exit::GuestExit;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Qemu(#[from] QemuError),
    #[error(transparent)]
    Accel(#[from] accel::AccelError),
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Collect(#[from] collect::CollectError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Soak(#[from] soak::SoakError),
    #[error(transparent)]
    Calibrate(#[from] calibrate::CalibrateError),
    #[error(transparent)]
    Cmdline(#[from] pvbench_wire::cmdline::CmdlineError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error(transparent)]
    Export(#[from] ExportError),
}

pub fn build(args: &BuildArgs) -> Result<Exit, CommandError> {
    let layout = Layout::new(layout::project_root());
    let image = build::build(
        &layout,
        BuildOptions {
            force: args.force,
            quiet: args.quiet,
        },
    )?;
    if !args.quiet {
        eprintln!(
            "pvbench: guest image {} ({}, {})",
            image.manifest.id, image.manifest.kernel, image.manifest.toolchain
        );
    }
    println!("{}", image.dir.display());
    Ok(Exit::Success)
}

pub fn boot(args: &BootArgs) -> Result<Exit, CommandError> {
    let layout = Layout::new(layout::project_root());
    let host = prepare(&layout, args.guest.accel, args.quiet)?;
    let collector = args
        .metrics
        .as_ref()
        .map(|_| Collector::start([BOOT_RUN]))
        .transpose()?;
    let mut cmdline = Cmdline::new();
    for word in &args.guest_args {
        cmdline.push_word(word)?;
    }
    if let Some(collector) = &collector {
        for (key, value) in collector.target(BOOT_RUN).expect("run registered above").words() {
            cmdline.push(key, value)?;
        }
    }
    let mut config = guest_config(&args.guest, &host.resolved, cmdline)?;
    config.network |= collector.is_some();
    config.migrate = args.migrate_every.map(|every| MigratePlan {
        every,
        kind: args
            .migration
            .unwrap_or_else(|| MigrationKind::default_for(config.accel)),
    });
    let mut stdout = std::io::stdout();
    let echo: Option<&mut (dyn Write + Send)> = if args.quiet { None } else { Some(&mut stdout) };
    // Ctrl-C and SIGTERM kill the guest, and pvbench goes on to its report and
    // removes the guest's sockets (their default action would leave them).
    crate::vm::interrupt::install();
    let outcome = guest::run(&host.qemu, &host.boot_files(), &config, echo)?;
    report(&outcome, &config, args.quiet);
    if let Some(m) = &outcome.migrations {
        let downtimes: Vec<String> = m.downtimes_ms.iter().map(u64::to_string).collect();
        eprintln!(
            "pvbench: {} {} migrations, downtime ms: [{}]{}",
            m.count,
            m.kind.map_or("live", MigrationKind::name),
            downtimes.join(", "),
            m.error
                .as_ref()
                .map_or(String::new(), |e| format!("; then failed: {e}"))
        );
    }
    if let Some(states) = &outcome.vcpus_at_kill {
        eprintln!("pvbench: the vCPUs when it was killed:");
        for line in states.lines() {
            eprintln!("  | {line}");
        }
    }
    if let Some(dump) = &outcome.memory_dump {
        eprintln!("pvbench: {dump}");
    }
    if let Some(probe) = &outcome.nmi_probe {
        eprintln!("pvbench: {probe}");
    }
    if let (Some(collector), Some(dir)) = (collector, &args.metrics) {
        for run in &collector.finish(Duration::from_secs(3)).runs {
            let files = collect::write_run_files(run, dir)?;
            let l = &run.latency;
            eprintln!(
                "pvbench: metrics {:?}: {} intervals, {} samples, p50 {} us, p99 {} us{} -> {}",
                run.status,
                run.received.intervals,
                l.count,
                l.p50,
                l.p99,
                match run.resumes {
                    0 => String::new(),
                    n => format!(", {n} resumed connections"),
                },
                files.summary.display()
            );
            for error in &run.errors {
                eprintln!("pvbench: metrics: {error}");
            }
        }
    }
    if crate::vm::interrupt::interrupted() {
        return Ok(Exit::Interrupted);
    }
    Ok(exit_status(&outcome))
}

/// The metrics run name of `pvbench boot --metrics`.
const BOOT_RUN: &str = "boot";

/// The benchmark matrix (a profile or a TOML file), then its summary.
pub fn run(args: &RunArgs) -> Result<Exit, CommandError> {
    let layout = Layout::new(layout::project_root());
    let mut spec = match &args.matrix {
        Some(path) => MatrixSpec::load(path)?,
        None => MatrixSpec::profile(args.profile),
    };
    if let Some(vcpus) = args.vcpus {
        spec.vcpus = Some(vcpus);
    }
    if args.print_matrix {
        print!("{}", toml::to_string(&spec).expect("spec serializes"));
        return Ok(Exit::Success);
    }
    let name = match (&args.matrix, args.profile) {
        (Some(_), _) => "matrix",
        (None, profile) => profile.name(),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| runner::default_out(&layout, name));
    let reps = spec.reps;
    // A shard count the matrix cannot fill is refused before the image is built.
    if let Some(s) = args.shard {
        shard::partition(&spec, s.count)?;
    }
    let host = prepare(&layout, args.accel, args.quiet)?;
    let results = runner::run(
        &layout,
        &host,
        RunOptions {
            spec,
            out: out.clone(),
            resume: args.resume,
            quiet: args.quiet,
            target: args.target_mde.map(|mde_pct| TargetMde {
                mde_pct,
                max_reps: args.max_reps.unwrap_or(3 * reps),
            }),
            shard: args.shard,
            dump_on_stall: args.dump_on_stall,
        },
    )?;
    let report = report::render(&results, &RenderOptions::default());
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    report.write_into(&out)?;
    eprintln!("pvbench: results in {}", out.display());
    Ok(Exit::Success)
}

/// How `run --shard K/N` splits the matrix, for every K.
pub fn plan(args: &PlanArgs) -> Result<Exit, CommandError> {
    let spec = match &args.matrix {
        Some(path) => MatrixSpec::load(path)?,
        None => MatrixSpec::profile(args.profile),
    };
    let partition = shard::partition(&spec, args.shards)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&partition).expect("partition serializes")
        );
    } else {
        print!("{}", plan_text(&spec, &partition));
    }
    Ok(Exit::Success)
}

/// The partition for people: the cost model, then each shard's groups.
fn plan_text(spec: &MatrixSpec, partition: &Partition) -> String {
    let m = &partition.cost_model;
    let cells: usize = partition.shards.iter().map(|s| s.cells()).sum();
    let groups: usize = partition.shards.iter().map(|s| s.groups.len()).sum();
    let mut out = format!(
        "{} cells in {groups} comparison groups, {} shards (a group never splits: every lock mode \
         and repetition of a row runs on one host)\n\
         expected cost per cell: {:.2} s + {:.2} s per hog guest + the work: pgbench-like \
         duration_s, kernbench-like its cap (a bound: it has no \
         fixed duration), times {} repetition(s) per boot\n",
        cells,
        partition.shards.len(),
        m.cell_overhead_s,
        m.hog_start_s,
        spec.boot_reps(),
    );
    let n = partition.shards.len();
    for (i, s) in partition.shards.iter().enumerate() {
        out.push_str(&format!(
            "shard {}/{n}: {:.0} s expected, {} cells\n",
            i + 1,
            s.cost_s,
            s.cells()
        ));
        for g in &s.groups {
            out.push_str(&format!(
                "  {:<26} {:>4} cells {:>7.0} s\n",
                g.group.to_string(),
                g.cells,
                g.cost_s
            ));
        }
    }
    out
}

/// Every shard's directory into one results directory.
pub fn merge(args: &MergeArgs) -> Result<Exit, CommandError> {
    let merged = merge::merge(&MergeOptions {
        dirs: args.dirs.clone(),
        out: args.out.clone(),
    })?;
    eprintln!(
        "pvbench: merged {} shards ({} cells) into {}",
        args.dirs.len(),
        merged.cells.len(),
        args.out.display()
    );
    Ok(Exit::Success)
}

/// `pvbench report`: the exports asked for, then the report.
pub fn report_results(args: ReportArgs) -> Result<Exit, CommandError> {
    export::write_all(&args.dir, &args.export)?;
    Ok(report::run(&args.into())?)
}

/// Many overcommitted cells, counted by how they ended: exit 0 if none failed,
/// 1 if any did.
pub fn soak(args: &SoakArgs) -> Result<Exit, CommandError> {
    let layout = Layout::new(layout::project_root());
    let mut spec = match &args.matrix {
        Some(path) => MatrixSpec::load(path)?,
        None => soak::spec(),
    };
    if let Some(reps) = args.reps {
        spec.reps = reps;
    }
    if let Some(every) = args.migrate_every {
        spec.migration = Some(MigrationSpec {
            every_s: every.as_secs_f64(),
            kind: None,
        });
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| runner::default_out(&layout, "soak"));
    let host = prepare(&layout, args.accel, args.quiet)?;
    let summary = soak::run(
        &layout,
        &host,
        SoakOptions {
            spec,
            vcpus: args.vcpus.clone(),
            out: out.clone(),
            resume: args.resume,
            quiet: args.quiet,
            dump_on_stall: args.dump_on_stall,
        },
    )?;
    print!("{}", soak::text(&summary));
    eprintln!("pvbench: soak results in {}", out.display());
    Ok(if summary.total.failed() == 0 {
        Exit::Success
    } else {
        Exit::CellsFailed
    })
}

/// The noise floor: native reference and A/A matrix.
pub fn calibrate(args: &CalibrateArgs) -> Result<Exit, CommandError> {
    let layout = Layout::new(layout::project_root());
    if args.reanalyze {
        let out = args.out.as_deref().expect("clap requires --out with --reanalyze");
        let calibration = calibrate::reanalyze(out, args.aa_runs as usize)?;
        print!("{}", calibrate::markdown(&calibration));
        return Ok(Exit::Success);
    }
    let mut spec = match &args.matrix {
        Some(path) => MatrixSpec::load(path)?,
        None => calibrate::spec(),
    };
    // A/A: one lock mode in every cell.
    spec.locks.truncate(1);
    if let Some(reps) = args.reps {
        spec.reps = reps;
    }
    if let Some(vcpus) = args.vcpus {
        spec.vcpus = Some(vcpus);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| calibrate::default_out(&layout));
    let host = prepare(&layout, args.accel, args.quiet)?;
    let calibration = calibrate::run(
        &layout,
        &host,
        CalibrateOptions {
            spec,
            aa_runs: args.aa_runs as usize,
            out: out.clone(),
            resume: args.resume,
            quiet: args.quiet,
        },
    )?;
    print!("{}", calibrate::markdown(&calibration));
    eprintln!("pvbench: calibration in {}", out.display());
    Ok(Exit::Success)
}

/// QEMU, the image and the accelerator, each failing with one clear line.
fn prepare(layout: &Layout, choice: AccelChoice, quiet: bool) -> Result<Host, CommandError> {
    let qemu = qemu::find()?;
    let image = build::build(layout, BuildOptions { force: false, quiet })?;
    let resolved = accel::resolve(choice, &qemu, &image.loader(), &layout.state_dir())?;
    if let Some(note) = &resolved.note {
        eprintln!("pvbench: {note}");
    }
    Ok(Host {
        qemu,
        image,
        resolved,
    })
}

fn guest_config(
    args: &GuestArgs,
    resolved: &Resolved,
    mut cmdline: Cmdline,
) -> Result<GuestConfig, CommandError> {
    // Only a KVM the probe saw at native speed is vouched for: the guest may then
    // use the KVM_HC_KICK_CPU hypercall (nested KVMs advertise it and hang).
    if resolved.verified_hardware_kvm {
        cmdline.push(pvbench_wire::cmdline::PVLOCK_HW_KVM, 1)?;
    }
    Ok(GuestConfig {
        vcpus: args.vcpus,
        memory_mib: args.memory,
        accel: resolved.accel,
        cmdline,
        timeout: args.timeout,
        network: args.network,
        stall: args.stall_after.map(StallWatch::over),
        migrate: None,
        dump_on_stall: args.dump_on_stall.clone(),
    })
}

fn report(outcome: &Outcome, config: &GuestConfig, show_tail_on_failure: bool) {
    let first = outcome
        .first_app_line
        .map_or(String::from("no application output"), |t| {
            format!("first guest line after {:.2} s", t.as_secs_f64())
        });
    eprintln!(
        "pvbench: {} ({} vCPUs, {}, {:.2} s, {first})",
        outcome.describe(),
        config.vcpus,
        config.accel.name(),
        outcome.wall.as_secs_f64()
    );
    // A status the guest chose is an answer, not a crash: no tail for it.
    if !outcome.succeeded() && !matches!(outcome.ended, Ended::Exited(GuestExit::Status(_))) {
        if show_tail_on_failure && !outcome.serial_tail.is_empty() {
            eprintln!("pvbench: last serial lines:");
            for line in &outcome.serial_tail {
                eprintln!("  | {line}");
            }
        }
        if !outcome.qemu_stderr.trim().is_empty() {
            eprintln!("pvbench: QEMU said: {}", outcome.qemu_stderr.trim());
        }
    }
}

/// `pvbench boot`'s status: the guest's own, where it chose one.
fn exit_status(outcome: &Outcome) -> Exit {
    match outcome.ended {
        Ended::Exited(GuestExit::Status(status)) => Exit::Guest(status),
        Ended::Exited(GuestExit::KernelSuccess) => Exit::Success,
        Ended::Exited(GuestExit::KernelFailure | GuestExit::NoReport(_))
        | Ended::Signaled
        | Ended::MigrationFailed
        | Ended::Killed => Exit::GuestFailed,
        Ended::TimedOut | Ended::Stalled { .. } => Exit::TimedOut,
    }
}
