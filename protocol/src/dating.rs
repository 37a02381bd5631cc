//! The branch clock's rules for a document's date, decided on plain data: the business
//! date of today comes in as an argument (the edge reads it in the branch's configured
//! time zone), so this never reads the clock.
//!
//! Applied only where a document is entered (the branch, and the branch's own down-channel
//! postings). HQ does not re-judge them: HQ's clock is not the branch's clock at the time
//! of posting, and an entry does not record that time, so a judgement at HQ could refuse
//! an entry the branch rightly took and the two books would differ. What HQ judges is
//! what the journal itself says (a close must be dated after its month; stock in date
//! order), in `books::post`, the same on both sides.
//!
//! Must not: read the clock, or hold any state.

use crate::date::BusinessDate;
use crate::document::{DocType, Period};

/// Default of how many days ahead of the branch's today a document may be dated.
pub const AHEAD_DAYS_MAX_DEFAULT: u32 = 7;

/// Why a date is refused at the branch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DateRefusal {
    /// Dated more than the window ahead of the branch's today.
    #[error("{date} is {ahead} days after today ({today} in {zone}); a document may be dated at most {max} days ahead: check the date (and the year)")]
    TooFarAhead { date: String, today: String, zone: String, ahead: u32, max: u32 },
    /// A month close of a month that has not ended by the branch's clock.
    #[error("{period} has not ended yet (today is {today} in {zone}): a month is closed only after it ends")]
    MonthNotEnded { period: String, today: String, zone: String },
}

/// Checks a draft's date against the branch's today: at most `ahead_days_max` days
/// ahead, and a month close (`period`) only for a month before today's.
pub fn check(
    doc_type: DocType,
    date: BusinessDate,
    period: Option<Period>,
    today: BusinessDate,
    zone: &str,
    ahead_days_max: u32,
) -> Result<(), DateRefusal> {
    let ahead = date.day_number().saturating_sub(today.day_number());
    if ahead > ahead_days_max {
        return Err(DateRefusal::TooFarAhead {
            date: date.to_string(),
            today: today.to_string(),
            zone: zone.into(),
            ahead,
            max: ahead_days_max,
        });
    }
    if doc_type == DocType::PeriodClose {
        if let Some(p) = period.filter(|p| *p >= Period::of(today)) {
            return Err(DateRefusal::MonthNotEnded { period: p.label(), today: today.to_string(), zone: zone.into() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: u16, m: u8, day: u8) -> BusinessDate {
        BusinessDate::new(y, m, day).expect("test date")
    }

    #[test]
    fn a_window_ahead_and_closes_only_for_ended_months() {
        let today = d(2026, 11, 28);
        let zone = "Asia/Shanghai";
        assert_eq!(check(DocType::Sale, d(2026, 12, 5), None, today, zone, 7), Ok(()));
        let e = check(DocType::Sale, d(2026, 12, 6), None, today, zone, 7).expect_err("8 days ahead");
        assert_eq!(e.to_string(), "2026-12-06 is 8 days after today (2026-11-28 in Asia/Shanghai); a document may be dated at most 7 days ahead: check the date (and the year)");
        assert!(check(DocType::Sale, d(2062, 11, 28), None, today, zone, 7).is_err(), "a mistyped year");
        assert_eq!(check(DocType::Sale, d(2020, 1, 1), None, today, zone, 0), Ok(()), "back-dating is the books' rule");
        // November cannot be closed on 28 November, even by a close dated 1 December.
        let nov = Some(Period { year: 2026, month: 11 });
        let e = check(DocType::PeriodClose, d(2026, 12, 1), nov, today, zone, 7).expect_err("not ended");
        assert_eq!(e.to_string(), "2026-11 has not ended yet (today is 2026-11-28 in Asia/Shanghai): a month is closed only after it ends");
        assert_eq!(check(DocType::PeriodClose, d(2026, 12, 1), nov, d(2026, 12, 1), zone, 7), Ok(()));
    }
}
