//! The clocks of the edge: the only place either binary's sync code reads time.
//!
//! `now_unix` stamps records people read (last seen, last error). `MonotonicClock` gives
//! the `now_ms` the sync state machines take as an argument; it never goes backwards,
//! so a wall-clock jump cannot fire or starve a timer. Nothing here decides anything.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Seconds since the Unix epoch; 0 if the system clock is before 1970.
pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Asia/Shanghai (UTC+8, no daylight saving): the default business time zone.
pub const SHANGHAI_UTC_OFFSET_MINUTES: i32 = 8 * 60;

/// Today's business date at a UTC offset (a clock before 1970, or past the calendar's
/// range, reads as 2000-01-01, which no real posting date is near).
pub fn today_at(utc_offset_minutes: i32) -> protocol::date::BusinessDate {
    protocol::date::LocalTime::from_unix(now_unix(), utc_offset_minutes)
        .business_date()
        .unwrap_or_else(|_| protocol::date::BusinessDate::new(2000, 1, 1).expect("2000-01-01 is a valid date"))
}

/// Milliseconds since this clock was started, on tokio's monotonic clock (so paused-time
/// tokio tests drive it too).
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    start: Instant,
}

impl MonotonicClock {
    pub fn start() -> MonotonicClock {
        MonotonicClock { start: Instant::now() }
    }

    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The instant of `at_ms` on this clock, for `tokio::time::sleep_until`.
    pub fn instant(&self, at_ms: u64) -> Instant {
        self.start + Duration::from_millis(at_ms)
    }
}
