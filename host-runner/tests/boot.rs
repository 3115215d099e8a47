//! `pvbench build` and `pvbench boot` with real guests under QEMU TCG.

mod common;

use std::path::Path;

use common::{boot, boot_with, image, pvbench, text};

#[test]
fn image_holds_loader_app_and_manifest() {
    let dir = Path::new(image());
    for file in ["loader.elf32", "app.elf", "image.json"] {
        assert!(dir.join(file).is_file(), "{file} missing in {}", dir.display());
    }
    // QEMU's multiboot loader only takes 32-bit ELF files.
    let loader = std::fs::read(dir.join("loader.elf32")).unwrap();
    assert_eq!(&loader[..5], b"\x7fELF\x01", "loader is not ELF32");
    let manifest = std::fs::read_to_string(dir.join("image.json")).unwrap();
    assert!(manifest.contains("hermit-kernel 0.11.0"), "{manifest}");
}

#[test]
fn cached_build_returns_the_same_image() {
    let first = image();
    let again = pvbench().args(["build", "--quiet"]).output().unwrap();
    assert!(again.status.success());
    assert_eq!(text(&again.stdout).trim(), first);
}

#[test]
fn guest_reports_its_vcpus_and_kernel() {
    for vcpus in [1, 2] {
        let out = boot(vcpus, 60, &["mode=hello"]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "vcpus={vcpus}\n{stdout}\n{}",
            text(&out.stderr)
        );
        let hello = format!("pvbench-guest: hello vcpus={vcpus} kernel=hermit-0.11.0");
        // --quiet keeps the console off stdout; the report line is on stderr.
        assert!(!stdout.contains(&hello), "quiet boot echoed the console");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("guest exited with status 0"), "{stderr}");
        assert!(stderr.contains(&format!("({vcpus} vCPUs, tcg,")), "{stderr}");
    }
}

#[test]
fn console_is_streamed_without_quiet() {
    image();
    let out = pvbench()
        .args([
            "boot",
            "--accel",
            "tcg",
            "--vcpus",
            "2",
            "--",
            "mode=hello",
            "probe=yes",
        ])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("pvbench-guest: hello vcpus=2 kernel=hermit-0.11.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"args=["mode=hello", "probe=yes"]"#),
        "guest args lost: {stdout}"
    );
}

#[test]
fn exact_exit_status_reaches_the_host() {
    for status in [3, 42, 125] {
        let out = boot(1, 60, &["mode=exit", &format!("status={status}")]);
        assert_eq!(out.status.code(), Some(status), "{}", text(&out.stderr));
    }
}

#[test]
fn panicking_guest_fails_and_shows_its_last_lines() {
    let out = boot(2, 60, &["mode=panic"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // Named as the application's panic, with where and what.
    assert!(
        stderr.contains("guest application panic at app/src/main.rs:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mode=panic asked for a panic"),
        "panic message not shown:\n{stderr}"
    );
}

#[test]
fn hanging_guest_is_killed_and_leaves_no_qemu() {
    let out = boot(2, 3, &["mode=hang"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    let pid: u32 = between(&stderr, "QEMU (pid ", ")").unwrap_or_else(|| panic!("no QEMU pid in: {stderr}"));
    // The PID may be reused by now, but never by a QEMU of this test.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(!text(&cmdline).contains("mode=hang"), "QEMU {pid} still runs");
}

#[test]
fn ctrl_c_kills_the_guest_and_leaves_no_qemu_and_no_sockets() {
    let child = common::hog_command(2, 300)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The guest's monitor socket: QEMU is up once it exists.
    let socket = std::env::temp_dir()
        .join(format!("pvbench-mon-{}-0", child.id()))
        .join("qmp.sock");
    let t = std::time::Instant::now();
    while !socket.exists() {
        assert!(
            t.elapsed().as_secs() < 120,
            "no QEMU monitor socket at {}",
            socket.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child, not yet waited for.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        !socket.parent().unwrap().exists(),
        "{} left behind",
        socket.display()
    );
    let pid: u32 = between(&stderr, "QEMU (pid ", ")").unwrap_or_else(|| panic!("no QEMU pid in: {stderr}"));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        !text(&cmdline).contains("workload=cpuhog"),
        "QEMU {pid} still runs"
    );
}

#[test]
fn idle_guest_is_killed_as_stalled_before_its_timeout() {
    // mode=hang sleeps: every vCPU idles, as in a guest whose tasks all blocked.
    let core = std::env::temp_dir().join(format!("pvbench-test-{}.core", std::process::id()));
    let core_arg = core.to_str().expect("a UTF-8 temporary directory");
    let out = boot_with(
        &[
            "--quiet",
            "--stall-after",
            "2",
            "--memory",
            "128",
            "--dump-on-stall",
            core_arg,
        ],
        2,
        120,
        &["mode=hang"],
    );
    let stderr = text(&out.stderr);
    let dump = std::fs::read(&core);
    let _ = std::fs::remove_file(&core);
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    assert!(stderr.contains("guest stalled"), "{stderr}");
    // Its memory was written first, as an ELF core holding the guest's RAM.
    assert!(stderr.contains("the stalled guest's memory is in"), "{stderr}");
    let dump = dump.unwrap_or_else(|e| panic!("no core at {core_arg}: {e}: {stderr}"));
    assert_eq!(&dump[..4], b"\x7fELF", "{stderr}");
    assert_eq!(
        u16::from_le_bytes([dump[16], dump[17]]),
        4,
        "not an ELF core (ET_CORE)"
    );
    assert!(
        dump.len() > 64 << 20,
        "a core of {} bytes for a 128 MiB guest",
        dump.len()
    );
    let wall: f64 = between(&stderr, "tcg, ", " s,").unwrap_or_else(|| panic!("no wall time in: {stderr}"));
    assert!(wall < 120.0, "killed by the timeout, not as stalled: {stderr}");
    // Before the kill QEMU's monitor said where each vCPU was, halted or not.
    assert!(stderr.contains("the vCPUs when it was killed"), "{stderr}");
    assert_eq!(stderr.matches("  | RIP=").count(), 2, "{stderr}");
    assert_eq!(stderr.matches(" HLT=").count(), 2, "{stderr}");
    // An NMI injected before the kill changed nothing: its tasks sleep.
    assert!(
        stderr.contains("it stayed stalled after an injected NMI"),
        "{stderr}"
    );
}

#[test]
fn a_lost_kick_is_told_apart_by_an_injected_nmi() {
    // mode=lostkick halts a vCPU as a pv-lock waiter whose kick was lost
    // (interrupts off): the guest idles until pvbench, before killing it as
    // stalled, injects an NMI, which ends the halt; the guest then runs.
    let out = boot_with(&["--stall-after", "2"], 2, 120, &["mode=lostkick"]);
    let stderr = text(&out.stderr);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    assert!(stderr.contains("guest stalled"), "{stderr}");
    // One vCPU was halted in the pv-lock halt window with interrupts off.
    assert!(stderr.contains("  | RIP="), "{stderr}");
    assert!(
        stdout.contains("lostkick: woken by an NMI that was not a kick"),
        "the guest never saw the NMI: {stdout}\n{stderr}"
    );
    assert!(stderr.contains("an injected NMI got it going again"), "{stderr}");
}

#[test]
fn busy_guest_is_not_taken_for_stalled() {
    let out = boot_with(
        &["--quiet", "--stall-after", "2"],
        2,
        120,
        &["workload=kernbench", "scale=1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn bad_vcpus_are_rejected_before_booting() {
    for bad in ["0", "65", "two"] {
        let out = pvbench().args(["boot", "--vcpus", bad]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "--vcpus {bad}");
        assert!(text(&out.stderr).contains("--vcpus"), "{}", text(&out.stderr));
    }
}

#[test]
fn unknown_guest_mode_is_a_guest_error() {
    let out = boot(1, 60, &["mode=dance"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn missing_qemu_is_one_clear_line() {
    let out = pvbench()
        .args(["boot", "--accel", "tcg"])
        .env("PATH", "/nonexistent")
        .env_remove("PVBENCH_QEMU")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("qemu-system-x86_64 not found: install it with `apt-get install qemu-system-x86`"),
        "{stderr}"
    );
}

#[test]
fn auto_accelerator_boots() {
    image();
    let out = pvbench()
        .args(["boot", "--quiet", "--vcpus", "1", "--", "mode=hello"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Either KVM passed the speed probe, or we were told why TCG was chosen.
    assert!(
        stderr.contains(", kvm,") || stderr.contains("using TCG:"),
        "{stderr}"
    );
}

/// The value between the first `start` in `text` and the next `end` after it.
fn between<T: std::str::FromStr>(text: &str, start: &str, end: &str) -> Option<T> {
    let rest = text.split_once(start)?.1;
    rest.split_once(end)?.0.parse().ok()
}
