//! Progress reporting for long runs: a live line on a terminal, periodic log lines
//! otherwise (Slurm logs), nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A background reporter counting finished runs.
pub struct Progress {
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts reporting on stderr for `total` runs of `steps` steps each.
    pub fn start(total: u64, steps: u64, quiet: bool) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = (!quiet).then(|| {
            let (done, stop) = (done.clone(), stop.clone());
            std::thread::spawn(move || report(total, steps, &done, &stop))
        });
        Progress { done, stop, thread }
    }

    /// Counts `runs` more runs as done.
    pub fn advance(&self, runs: u64) {
        self.done.fetch_add(runs, Ordering::Relaxed);
    }

    /// Prints `text` on stderr, also with `--quiet`; on a terminal the live line is cleared
    /// first (the reporter redraws it at its next tick), so the text starts a line.
    pub fn note(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.thread.is_some() && std::io::stderr().is_terminal() {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = write!(err, "{text}");
        let _ = err.flush();
    }

    /// Stops the reporter (the final line is printed by the caller).
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn report(total: u64, steps: u64, done: &AtomicU64, stop: &AtomicBool) {
    let terminal = std::io::stderr().is_terminal();
    let tick = Duration::from_millis(200);
    let every = if terminal {
        tick
    } else {
        Duration::from_secs(5)
    };
    let start = Instant::now();
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // Parked rather than slept, so that `finish` wakes the reporter at once.
        std::thread::park_timeout(tick);
        if stop.load(Ordering::Relaxed) || last.elapsed() < every {
            continue;
        }
        last = Instant::now();
        let line = status_line(done.load(Ordering::Relaxed), total, steps, start.elapsed());
        let mut err = std::io::stderr().lock();
        if terminal {
            let bar = bar(done.load(Ordering::Relaxed), total, 24);
            let _ = write!(err, "\r\x1b[2K{bar} {line}");
        } else {
            let _ = writeln!(err, "mpr-sweep: {line}");
        }
        let _ = err.flush();
    }
    if terminal {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
}

/// `1200/6161 runs (19%)  8.1e8 run-steps/s  ETA 0:00:06`
pub fn status_line(done: u64, total: u64, steps: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = done as f64 * steps as f64 / secs;
    let eta = if done == 0 {
        "--:--:--".to_string()
    } else {
        clock(Duration::from_secs_f64(
            secs * (total - done) as f64 / done as f64,
        ))
    };
    let pct = if total == 0 {
        100.0
    } else {
        100.0 * done as f64 / total as f64
    };
    format!("{done}/{total} runs ({pct:.0}%)  {rate:.2e} run-steps/s  ETA {eta}")
}

/// `[#########...............]`: the fraction of runs done, `width` characters wide.
pub fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        width
    } else {
        ((done as f64 / total as f64) * width as f64).floor() as usize
    };
    let filled = filled.min(width);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// `H:MM:SS`
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_shows_progress_rate_and_eta() {
        let line = status_line(250, 1000, 10_000, Duration::from_secs(10));
        assert_eq!(line, "250/1000 runs (25%)  2.50e5 run-steps/s  ETA 0:00:30");
        assert_eq!(bar(250, 1000, 8), "[##......]");
        assert_eq!(bar(5, 0, 4), "[####]");
        assert_eq!(clock(Duration::from_secs(3 * 3600 + 62)), "3:01:02");
    }
}
