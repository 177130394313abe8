//! The epoch ticker: one background thread per engine that advances wasmtime's epoch at a
//! fixed period, so that every guest call can carry a deadline of a few ticks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::{Error, ErrorKind};

/// Stops and joins its thread when dropped.
pub(super) struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(super) fn start(engine: wasmtime::Engine, period: Duration) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("rolescope-epoch".into())
            .spawn(move || {
                // One tick per period of wall-clock time; a spurious wake-up never ticks early.
                let mut next = Instant::now() + period;
                while !flag.load(Ordering::Acquire) {
                    let now = Instant::now();
                    if now < next {
                        std::thread::park_timeout(next - now);
                        continue;
                    }
                    engine.increment_epoch();
                    next += period;
                }
            })
            .map_err(|e| Error::new(ErrorKind::Instantiate, format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            // A ticker that panicked has nothing left to clean up.
            let _ = t.join();
        }
    }
}
