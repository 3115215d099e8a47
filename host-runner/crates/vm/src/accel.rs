//! Choosing the accelerator: KVM where it really runs guest code at native speed,
//! QEMU's multi-threaded TCG everywhere else.
//!
//! `/dev/kvm` alone proves nothing: on this project's machines it is kvm_pvm, a
//! paravirtual KVM nested in a Firecracker VM that emulates ring-0 guest code
//! instruction by instruction (~1000x slower). Hermit runs in ring 0, so `auto`
//! times a loader probe loop under KVM and keeps KVM only if it runs at speed.
//! The verdict is cached per host boot.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pvbench_wire::cmdline;
use pvbench_wire::exit::{GuestExit, PROBE_DONE};
use serde::{Deserialize, Serialize};

use crate::qemu;

/// The probe loop: 2^26 dec/jnz iterations, ~0.03 s natively.
const PROBE_LOG2: u32 = 26;
/// Generous for QEMU start plus the native loop; an emulating KVM needs minutes.
const PROBE_LIMIT: Duration = Duration::from_secs(3);

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccelChoice {
    /// KVM if the probe sees it run ring-0 code at native speed, else TCG.
    Auto,
    /// TCG, whatever `/dev/kvm` offers.
    Tcg,
    /// KVM without the probe; an error if `/dev/kvm` cannot be opened.
    Kvm,
}

impl AccelChoice {
    /// Every choice, by its name on the command line.
    pub const NAMES: [&'static str; 3] = ["auto", "tcg", "kvm"];
}

impl std::str::FromStr for AccelChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(AccelChoice::Auto),
            "tcg" => Ok(AccelChoice::Tcg),
            "kvm" => Ok(AccelChoice::Kvm),
            other => Err(format!("{other:?} is not one of auto, tcg, kvm")),
        }
    }
}

/// What guests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// QEMU's multi-threaded TCG: one host thread per vCPU, emulated.
    Tcg,
    /// `/dev/kvm`; hardware KVM only where [`Resolved::verified_hardware_kvm`] says so.
    Kvm,
}

impl Accel {
    /// QEMU's `-accel` and `-cpu` arguments for this accelerator.
    pub fn qemu_args(self) -> [&'static str; 4] {
        match self {
            // One host thread per vCPU. Without MONITOR/MWAIT the kernel idles with
            // HLT; TCG treats MWAIT as PAUSE, so idle vCPUs would burn host CPU.
            Accel::Tcg => ["-accel", "tcg,thread=multi", "-cpu", "max,-monitor"],
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host,-monitor"],
        }
    }

    /// The name users and result files know it by, as serialized.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// Why no accelerator could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum AccelError {
    /// KVM was asked for but `/dev/kvm` cannot be opened read-write.
    #[error("--accel kvm: /dev/kvm is not usable ({0}); use --accel tcg or auto")]
    NoKvm(String),
    /// QEMU could not be started or waited for to run the KVM probe.
    #[error("cannot run the KVM probe: {0}")]
    Probe(std::io::Error),
}

/// The accelerator, and why when `auto` did not pick the obvious one.
pub struct Resolved {
    /// What guests run on.
    pub accel: Accel,
    /// Why `auto` fell back to TCG, for the user.
    pub note: Option<String>,
    /// KVM that the probe saw run ring-0 code at native speed: hardware KVM,
    /// where the guest may use the KVM_HC_KICK_CPU hypercall.
    pub verified_hardware_kvm: bool,
}

#[derive(Serialize, Deserialize)]
struct CachedProbe {
    boot_id: String,
    qemu: String,
    at_speed: bool,
    seconds: f64,
}

/// Turns the user's choice into an accelerator. `auto` boots `loader` as the
/// probe, at most once per host boot and QEMU version (cached in `state_dir`).
pub fn resolve(
    choice: AccelChoice,
    qemu: &Path,
    loader: &Path,
    state_dir: &Path,
) -> Result<Resolved, AccelError> {
    match choice {
        AccelChoice::Tcg => Ok(Resolved {
            accel: Accel::Tcg,
            note: None,
            verified_hardware_kvm: false,
        }),
        AccelChoice::Kvm => {
            kvm_usable().map_err(AccelError::NoKvm)?;
            // Forced KVM is not probed, so not vouched for.
            Ok(Resolved {
                accel: Accel::Kvm,
                note: None,
                verified_hardware_kvm: false,
            })
        }
        AccelChoice::Auto => {
            if let Err(why) = kvm_usable() {
                return Ok(Resolved {
                    accel: Accel::Tcg,
                    note: Some(format!("using TCG: no usable /dev/kvm ({why})")),
                    verified_hardware_kvm: false,
                });
            }
            let (at_speed, seconds) = probe_cached(qemu, loader, state_dir)?;
            if at_speed {
                Ok(Resolved {
                    accel: Accel::Kvm,
                    note: None,
                    verified_hardware_kvm: true,
                })
            } else {
                let pvm = if Path::new("/sys/module/kvm_pvm").exists() {
                    " (kvm_pvm is loaded)"
                } else {
                    ""
                };
                Ok(Resolved {
                    accel: Accel::Tcg,
                    note: Some(format!(
                        "using TCG: /dev/kvm ran a 2^{PROBE_LOG2}-iteration ring-0 loop too slowly (>{seconds:.1} s, native ~0.03 s): a nested or paravirtual KVM{pvm}"
                    )),
                    verified_hardware_kvm: false,
                })
            }
        }
    }
}

fn kvm_usable() -> Result<(), String> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(drop)
        .map_err(|e| e.to_string())
}

fn probe_cached(qemu: &Path, loader: &Path, state_dir: &Path) -> Result<(bool, f64), AccelError> {
    let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let qemu_version = qemu::version(qemu);
    let path = state_dir.join("kvm-probe.json");
    if let Some(cached) = fs::read_to_string(&path)
        .ok()
        .and_then(|text| serde_json::from_str::<CachedProbe>(&text).ok())
        .filter(|c| c.boot_id == boot_id && c.qemu == qemu_version)
    {
        return Ok((cached.at_speed, cached.seconds));
    }
    let (at_speed, seconds) = probe(qemu, loader)?;
    let cached = CachedProbe {
        boot_id,
        qemu: qemu_version,
        at_speed,
        seconds,
    };
    // Losing the cache only costs another probe.
    let _ = fs::create_dir_all(state_dir)
        .and_then(|()| fs::write(&path, serde_json::to_string(&cached).expect("serializes")));
    Ok((at_speed, seconds))
}

/// Boots the loader alone under KVM in probe mode and times it.
fn probe(qemu: &Path, loader: &Path) -> Result<(bool, f64), AccelError> {
    let started = Instant::now();
    let mut child = Command::new(qemu)
        .args(Accel::Kvm.qemu_args())
        .args(qemu::common_args(1, 64, loader))
        .args(["-append", &format!("{}={PROBE_LOG2}", cmdline::PROBE)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(AccelError::Probe)?;
    loop {
        if let Some(status) = child.try_wait().map_err(AccelError::Probe)? {
            let done = status.code().map(GuestExit::from_qemu_code) == Some(GuestExit::Status(PROBE_DONE));
            return Ok((done, started.elapsed().as_secs_f64()));
        }
        if started.elapsed() > PROBE_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Ok((false, PROBE_LIMIT.as_secs_f64()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
