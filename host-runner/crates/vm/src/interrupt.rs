//! Ctrl-C (SIGINT) and SIGTERM as a flag every waiting guest polls: a guest
//! that sees it is killed, and its caller keeps what finished. One module owns
//! the flag and the handler; nothing else writes the flag.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Whether SIGINT or SIGTERM arrived since [`install`].
pub fn interrupted() -> bool {
    // Relaxed: a flag polled every few milliseconds; nothing else is published with it.
    INTERRUPTED.load(Ordering::Relaxed)
}

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store. Relaxed: polled, publishes nothing.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// From now on SIGINT and SIGTERM set the flag instead of ending the process.
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(
                signal,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
    }
}
