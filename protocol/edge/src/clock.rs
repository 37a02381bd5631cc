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

/// The IANA time zone of a branch's (or HQ's) business day, named in `agent.toml` /
/// `hq.toml` as `business_zone` and checked when the file is loaded. The tz database is
/// bundled with the binary, so every machine turns the same instant into the same date.
#[derive(Clone, Debug)]
pub struct BusinessZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

/// A `business_zone` that names no IANA time zone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("business_zone = {given:?} is not an IANA time zone name (such as \"Asia/Shanghai\" or \"Asia/Urumqi\")")]
pub struct ZoneError {
    pub given: String,
}

impl BusinessZone {
    /// The default zone.
    pub const DEFAULT: &'static str = "Asia/Shanghai";

    pub fn parse(name: &str) -> Result<BusinessZone, ZoneError> {
        let tz = jiff::tz::TimeZone::get(name).map_err(|_| ZoneError { given: name.chars().take(64).collect() })?;
        Ok(BusinessZone { name: name.to_string(), tz })
    }

    pub fn shanghai() -> BusinessZone {
        BusinessZone::parse(BusinessZone::DEFAULT).expect("the bundled tz database holds Asia/Shanghai")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Minutes east of UTC in this zone at `unix` seconds (daylight saving included).
    pub fn offset_minutes_at(&self, unix: u64) -> i32 {
        let at = jiff::Timestamp::from_second(i64::try_from(unix).unwrap_or(0)).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        self.tz.to_offset(at).seconds() / 60
    }

    /// The business date in this zone at `unix` seconds (see [`today_at`] for a clock
    /// outside the calendar's range).
    pub fn date_at(&self, unix: u64) -> protocol::date::BusinessDate {
        protocol::date::LocalTime::from_unix(unix, self.offset_minutes_at(unix))
            .business_date()
            .unwrap_or_else(|_| protocol::date::BusinessDate::new(2000, 1, 1).expect("2000-01-01 is a valid date"))
    }

    /// Today's business date in this zone, from the system clock.
    pub fn today(&self) -> protocol::date::BusinessDate {
        self.date_at(now_unix())
    }
}

impl Default for BusinessZone {
    fn default() -> BusinessZone {
        BusinessZone::shanghai()
    }
}

impl PartialEq for BusinessZone {
    fn eq(&self, other: &BusinessZone) -> bool {
        self.name == other.name
    }
}

impl Eq for BusinessZone {}

impl serde::Serialize for BusinessZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> serde::Deserialize<'de> for BusinessZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<BusinessZone, D::Error> {
        let name = String::deserialize(d)?;
        BusinessZone::parse(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod zone_tests {
    use super::*;

    #[test]
    fn dates_follow_the_zone_and_bad_names_are_refused() {
        // 2026-11-30 16:30 UTC is 2026-12-01 00:30 in Shanghai, still 30 November in UTC.
        let unix = 1_796_056_200;
        let sh = BusinessZone::shanghai();
        assert_eq!((sh.date_at(unix).to_string(), sh.offset_minutes_at(unix)), ("2026-12-01".to_string(), 480));
        let utc = BusinessZone::parse("UTC").expect("UTC");
        assert_eq!(utc.date_at(unix).to_string(), "2026-11-30");
        // Daylight saving is the zone's: New York is UTC−5 in winter, UTC−4 in summer.
        let ny = BusinessZone::parse("America/New_York").expect("zone");
        assert_eq!((ny.offset_minutes_at(unix), ny.offset_minutes_at(1_783_000_000)), (-300, -240));
        let e = BusinessZone::parse("Asia/Shangai").expect_err("typo");
        assert!(e.to_string().contains("\"Asia/Shangai\" is not an IANA time zone"), "{e}");
    }
}
