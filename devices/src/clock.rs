//! The clock that device deadlines are measured on, injectable so that a test of "the
//! scale never settled" runs in microseconds instead of waiting out the deadline.

use std::cell::Cell;
use std::time::Instant;

/// A monotonic millisecond counter. Only differences between two readings matter.
pub trait Clock: Send {
    fn now_ms(&self) -> u64;
}

/// Real time, from [`Instant`].
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock { start: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        crate::error::millis(self.start.elapsed())
    }
}

/// Simulated time: every reading moves the clock forward by `step_ms`. A loop that
/// looks at the clock once per attempt therefore reaches any deadline after a known
/// number of attempts, with no sleeping.
#[derive(Debug)]
pub struct StepClock {
    now_ms: Cell<u64>,
    step_ms: u64,
}

impl StepClock {
    pub fn new(step_ms: u64) -> StepClock {
        StepClock { now_ms: Cell::new(0), step_ms }
    }
}

impl Clock for StepClock {
    fn now_ms(&self) -> u64 {
        let now = self.now_ms.get();
        self.now_ms.set(now.saturating_add(self.step_ms));
        now
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}
