//! Business dates, and the civil calendar arithmetic behind them. A document's business
//! date is given by the operator (it is what the document number carries), never read
//! from a clock inside the core: `LocalTime` turns unix seconds the caller read into a
//! date and wall-clock time at a fixed offset from UTC, with no clock and no time zone
//! database. Must not touch: the clock, files, anything of the books.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::CodeError;

/// A calendar date, validated (Gregorian, years 2000–2199).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BusinessDate {
    year: u16,
    month: u8,
    day: u8,
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

impl BusinessDate {
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, CodeError> {
        if !(2000..=2199).contains(&year) || day == 0 || day > days_in_month(year, month) {
            return Err(CodeError::BadDate { value: format!("{year:04}-{month:02}-{day:02}") });
        }
        Ok(Self { year, month, day })
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let bad = || CodeError::BadDate { value: s.chars().take(20).collect() };
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let year = s[0..4].parse().map_err(|_| bad())?;
        let month = s[5..7].parse().map_err(|_| bad())?;
        let day = s[8..10].parse().map_err(|_| bad())?;
        Self::new(year, month, day).map_err(|_| bad())
    }

    pub fn year(self) -> u16 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }

    /// `MMDD` as used in document numbers.
    pub fn mmdd(self) -> String {
        format!("{:02}{:02}", self.month, self.day)
    }

    /// The UTC calendar date of a Unix time given in days (the caller reads the clock).
    pub fn from_unix_days(days: i64) -> Option<BusinessDate> {
        let (year, month, day) = civil_from_days(days);
        BusinessDate::new(u16::try_from(year).ok()?, month, day).ok()
    }

    /// Days since 2000-01-01, for ordering and compact keys.
    pub fn day_number(self) -> u32 {
        let mut days = 0u32;
        for y in 2000..self.year {
            days += if days_in_month(y, 2) == 29 { 366 } else { 365 };
        }
        for m in 1..self.month {
            days += u32::from(days_in_month(self.year, m));
        }
        days + u32::from(self.day) - 1
    }
}

/// Howard Hinnant's `civil_from_days`: the proleptic Gregorian (year, month, day) of a
/// count of days since 1970-01-01, exact for every date. `days` must stay within ±2^60
/// (callers pass seconds / 86 400, far inside), so nothing below overflows.
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // doy is 0..=365 and mp 0..=11, so the day is 1..=31 and the month 1..=12.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// A wall-clock reading to the minute at a fixed offset from UTC: the date and time a till
/// prints, and the day it dates a sale by. Built only by [`LocalTime::from_unix`], so every
/// field is a real calendar value; the year is not limited to business dates (a clock set
/// to 1970 still reads as 1970, and [`LocalTime::business_date`] refuses it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalTime {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
}

impl LocalTime {
    /// `unix_secs` (read from a clock by the caller) at `utc_offset_minutes` east of UTC
    /// (Shanghai: 480). Any offset is computed exactly; which offsets make sense is the
    /// caller's configuration rule.
    pub fn from_unix(unix_secs: u64, utc_offset_minutes: i32) -> LocalTime {
        // A u64 beyond i64 is a broken clock, not a date: clamp it far into the future
        // (still exact arithmetic, and business_date refuses it).
        let secs = i64::try_from(unix_secs).unwrap_or(i64::MAX / 2) + i64::from(utc_offset_minutes) * 60;
        let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        // rest is 0..86_400, so the hour is 0..=23 and the minute 0..=59.
        LocalTime { year, month, day, hour: (rest / 3_600) as u8, minute: (rest % 3_600 / 60) as u8 }
    }

    pub fn year(self) -> i64 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }
    pub fn hour(self) -> u8 {
        self.hour
    }
    pub fn minute(self) -> u8 {
        self.minute
    }

    /// The business date of this reading; refused outside the years business dates cover.
    pub fn business_date(self) -> Result<BusinessDate, CodeError> {
        let bad = || CodeError::BadDate { value: format!("{:04}-{:02}-{:02}", self.year, self.month, self.day) };
        BusinessDate::new(u16::try_from(self.year).map_err(|_| bad())?, self.month, self.day)
    }
}

/// `YYYY-MM-DD HH:MM`.
impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02} {:02}:{:02}", self.year, self.month, self.day, self.hour, self.minute)
    }
}

impl TryFrom<String> for BusinessDate {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, CodeError> {
        Self::parse(&s)
    }
}
impl From<BusinessDate> for String {
    fn from(d: BusinessDate) -> String {
        d.to_string()
    }
}
impl fmt::Display for BusinessDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}
impl fmt::Debug for BusinessDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BusinessDate({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let d = BusinessDate::parse("2026-06-09").expect("valid");
        assert_eq!(d.mmdd(), "0609");
        assert!(BusinessDate::parse("2026-02-29").is_err());
        assert!(BusinessDate::parse("2028-02-29").is_ok());
        assert!(BusinessDate::parse("2026-13-01").is_err());
        assert!(BusinessDate::parse("26-01-01").is_err());
        assert!(BusinessDate::parse("2026-1-011").is_err());
    }

    #[test]
    fn unix_days_to_dates() {
        assert_eq!(BusinessDate::from_unix_days(20_415), BusinessDate::new(2025, 11, 23).ok());
        assert_eq!(BusinessDate::from_unix_days(10_957), BusinessDate::new(2000, 1, 1).ok());
        assert_eq!(BusinessDate::from_unix_days(11_016), BusinessDate::new(2000, 2, 29).ok());
    }

    #[test]
    fn local_times_at_an_offset() {
        let at = |t, off| LocalTime::from_unix(t, off).to_string();
        assert_eq!(at(0, 0), "1970-01-01 00:00");
        // 2026-06-09 23:30 UTC is already 06-10 07:30 in Shanghai.
        let t = 1_781_047_800;
        assert_eq!(at(t, 0), "2026-06-09 23:30");
        assert_eq!(at(t, 480), "2026-06-10 07:30");
        assert_eq!(at(t, -600), "2026-06-09 13:30");
        assert_eq!(at(951_782_400, 0), "2000-02-29 00:00");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28 23:59");
        // Before the epoch at a western offset: the day before, not a wrapped time.
        assert_eq!(at(0, -1), "1969-12-31 23:59");
        assert_eq!(LocalTime::from_unix(t, 480).business_date().map(|d| d.to_string()), Ok("2026-06-10".into()));
        assert!(LocalTime::from_unix(0, 0).business_date().is_err(), "1970 is not a business date");
        assert!(LocalTime::from_unix(u64::MAX, 0).business_date().is_err(), "a broken clock is not a business date");
    }

    proptest::proptest! {
        /// Business days counted forward from 2000-01-01 (`day_number`, a plain loop over
        /// months) agree with the civil arithmetic, at every offset, and the time of day is
        /// what is left of the day.
        #[test]
        fn local_dates_agree_with_day_numbers(
            t in 946_684_800u64..7_258_118_400,
            off in -840i32..=840,
        ) {
            let local = LocalTime::from_unix(t, off);
            let secs = t as i64 + i64::from(off) * 60;
            let days = secs.div_euclid(86_400);
            if let Ok(d) = local.business_date() {
                proptest::prop_assert_eq!(i64::from(d.day_number()), days - 10_957);
                proptest::prop_assert_eq!(BusinessDate::from_unix_days(days), Some(d));
            } else {
                // Only the edges of 2000-2199 fall outside business dates.
                proptest::prop_assert!(!(10_957..84_006).contains(&days), "{local}");
            }
            let rest = secs.rem_euclid(86_400);
            proptest::prop_assert_eq!(i64::from(local.hour()) * 3_600 + i64::from(local.minute()) * 60, rest - rest % 60);
        }
    }

    #[test]
    fn day_numbers_are_ordered() {
        let a = BusinessDate::parse("2026-12-31").expect("valid");
        let b = BusinessDate::parse("2027-01-01").expect("valid");
        assert_eq!(a.day_number() + 1, b.day_number());
        assert_eq!(BusinessDate::parse("2000-01-01").expect("valid").day_number(), 0);
    }
}
