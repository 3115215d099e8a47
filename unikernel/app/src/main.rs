//! The pvbench guest: runs on the Hermit kernel and reports to the host.
//!
//! Its arguments are the words after `--` on the kernel command line.
//! `mode=hello` (the default) prints the hello line; `mode=exit status=N` ends
//! with status N; `mode=panic` and `mode=hang` exist for the host's failure tests.

use std::process::ExitCode;

use pvbench_wire::cmdline;
use pvbench_wire::exit::{DEBUG_EXIT_PORT, port_value};

// std on Hermit calls the C math functions; this crate defines them.
use pvbench_cmath as _;

const KERNEL_VERSION: &str = match option_env!("PVBENCH_KERNEL_VERSION") {
    Some(version) => version,
    None => "unknown",
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let line = args.join(" ");
    let vcpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("pvbench-guest: hello vcpus={vcpus} kernel=hermit-{KERNEL_VERSION} args={args:?}");

    let status = match cmdline::find(&line, cmdline::MODE).unwrap_or("hello") {
        "hello" => 0,
        "exit" => match cmdline::find(&line, cmdline::STATUS).map(str::parse::<u8>) {
            Some(Ok(status)) => status,
            _ => {
                eprintln!("pvbench-guest: mode=exit needs status=0..=125");
                2
            }
        },
        "panic" => panic!("mode=panic asked for a panic"),
        "hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        other => {
            eprintln!("pvbench-guest: unknown mode={other} (expected hello, exit, panic, hang)");
            2
        }
    };
    exit(status)
}

/// Ends the VM with the exact status (see `pvbench_wire::exit`); Hermit's own
/// shutdown would only tell success from failure.
fn exit(status: u8) -> ! {
    println!("pvbench-guest: exit status={status}");
    // SAFETY: Hermit runs the application in ring 0; writing isa-debug-exit stops
    // QEMU, and without the device the write is ignored and we fall through.
    unsafe {
        std::arch::asm!("out dx, eax", in("dx") DEBUG_EXIT_PORT, in("eax") port_value(status), options(nomem, nostack));
    }
    std::process::exit(i32::from(status))
}
