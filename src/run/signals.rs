//! SIGINT and SIGTERM: the handler records the signal and requests [`STOP`]; the kernels
//! poll it, and the run stops cleanly.

use std::sync::atomic::{AtomicI32, Ordering};

use crate::integrate::StopToken;

/// The signal that asked the run to stop (0: none). Set by the handler of
/// [`stop_on_signals`] before it requests [`STOP`].
static INTERRUPTED: AtomicI32 = AtomicI32::new(0);

/// Requested by the handler of [`stop_on_signals`]; the kernels poll it.
pub(super) static STOP: StopToken = StopToken::new();

/// The signal received since [`stop_on_signals`], if any.
pub fn interrupted() -> Option<i32> {
    match INTERRUPTED.load(Ordering::Relaxed) {
        0 => None,
        s => Some(s),
    }
}

/// Makes SIGINT (Ctrl-C) and SIGTERM (Slurm's time limit, preemption and `scancel`) stop
/// a run cleanly: the handler only records the signal and requests a
/// [`StopToken`](crate::integrate::StopToken) that the kernels poll; they
/// return within [`crate::integrate::POLL_STEPS`] steps, and [`run`](super::run()) drops
/// its writers (which removes their temporary files) and returns
/// [`Error::Interrupted`](crate::Error::Interrupted). A second SIGINT terminates at once; a
/// repeated SIGTERM is ignored (Slurm follows it with SIGKILL after its `KillWait` anyway).
#[cfg(unix)]
pub fn stop_on_signals() -> std::io::Result<()> {
    extern "C" fn on_signal(signal: libc::c_int) {
        let first = INTERRUPTED.swap(signal, Ordering::SeqCst) == 0;
        STOP.request();
        if !first && signal == libc::SIGINT {
            // SAFETY: signal(2) and raise(3) are async-signal-safe.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
                libc::raise(signal);
            }
        }
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags); the handler only
        // touches an atomic and async-signal-safe functions.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Without Unix signals, runs stop only by being killed.
#[cfg(not(unix))]
pub fn stop_on_signals() -> std::io::Result<()> {
    Ok(())
}
