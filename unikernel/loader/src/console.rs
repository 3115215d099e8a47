//! COM1 output for the loader's messages, a `log` sink and the exit path.

use core::fmt::{self, Write};

use pvbench_wire::exit::{DEBUG_EXIT_PORT, port_value};
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
/// Line status register bit: transmit holding register empty.
const LSR_THR_EMPTY: u8 = 1 << 5;

pub struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            // SAFETY: COM1's data and line-status registers; QEMU always provides
            // the device and reading LSR has no side effect.
            unsafe {
                let mut lsr = Port::<u8>::new(COM1 + 5);
                while lsr.read() & LSR_THR_EMPTY == 0 {}
                Port::<u8>::new(COM1).write(byte);
            }
        }
        Ok(())
    }
}

macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Serial, "pvbench-loader: {}", format_args!($($arg)*));
    }};
}
pub(crate) use println;

/// Forwards hermit-entry's log records; only warnings and errors by default,
/// because every byte on the serial line costs boot time under TCG.
struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            println!("{}: {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

pub fn init_logging() {
    static LOGGER: Logger = Logger;
    // Only fails if a logger is already set, which cannot happen: we are the only caller.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Warn);
}

/// Ends the VM with `status` through isa-debug-exit (see `pvbench_wire::exit`).
pub fn exit(status: u8) -> ! {
    // SAFETY: writing the debug-exit port only stops QEMU; without the device the
    // write is ignored and we halt below.
    unsafe { Port::<u32>::new(DEBUG_EXIT_PORT).write(port_value(status)) };
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
