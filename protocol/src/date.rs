//! Business dates. A document's business date is given by the operator (it is what the
//! document number carries), never read from a clock inside the core.

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
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = yoe + era * 400 + i64::from(month <= 2);
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
    fn day_numbers_are_ordered() {
        let a = BusinessDate::parse("2026-12-31").expect("valid");
        let b = BusinessDate::parse("2027-01-01").expect("valid");
        assert_eq!(a.day_number() + 1, b.day_number());
        assert_eq!(BusinessDate::parse("2000-01-01").expect("valid").day_number(), 0);
    }
}
