//! Times as a person in Italy reads them: Europe/Rome (CET, CEST in summer).
//!
//! The EU rule (Directive 2000/84/EC): summer time from 01:00 UTC on the last Sunday of March
//! to 01:00 UTC on the last Sunday of October. Computed here rather than from a time-zone
//! database, which the server may not have.

use backoffice::UnixMillis;
use time::{Date, Month, OffsetDateTime, UtcOffset, Weekday};

/// The time in Italy at `at`, if representable.
fn local(at: UnixMillis) -> Option<OffsetDateTime> {
    let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.0) * 1_000_000).ok()?;
    Some(utc.to_offset(rome_offset(utc)))
}

/// The year in Italy at `at` (a case registered at 00:30 on 1 January belongs to the new year).
pub fn year(at: UnixMillis) -> u16 {
    local(at).map_or(1970, |local| u16::try_from(local.year()).unwrap_or(1970))
}

/// `dd/mm/yyyy hh:mm` in Italian time.
pub fn format(at: UnixMillis) -> String {
    let Some(local) = local(at) else {
        return "—".to_owned();
    };
    format!(
        "{:02}/{:02}/{} {:02}:{:02}",
        local.day(),
        u8::from(local.month()),
        local.year(),
        local.hour(),
        local.minute()
    )
}

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    let next_month_first = match month {
        Month::December => Date::from_calendar_date(year + 1, Month::January, 1),
        _ => Date::from_calendar_date(year, month.next(), 1),
    }
    .ok()?;
    let mut day = next_month_first.previous_day()?;
    while day.weekday() != Weekday::Sunday {
        day = day.previous_day()?;
    }
    Some(day)
}

fn rome_offset(utc: OffsetDateTime) -> UtcOffset {
    let year = utc.year();
    let switch =
        |month| last_sunday(year, month).map(|day| day.with_hms(1, 0, 0).map(|at| at.assume_utc()));
    let summer = match (switch(Month::March), switch(Month::October)) {
        (Some(Ok(start)), Some(Ok(end))) => utc >= start && utc < end,
        _ => false,
    };
    let hours = if summer { 2 } else { 1 };
    UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339_utc: &str) -> UnixMillis {
        let parsed =
            OffsetDateTime::parse(rfc3339_utc, &time::format_description::well_known::Rfc3339)
                .expect("valid time");
        UnixMillis(i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).expect("fits"))
    }

    #[test]
    fn winter_and_summer_time_switch_on_the_last_sundays() {
        assert_eq!(format(at("2026-01-15T09:30:00Z")), "15/01/2026 10:30");
        assert_eq!(format(at("2026-03-29T00:59:00Z")), "29/03/2026 01:59");
        assert_eq!(format(at("2026-03-29T01:00:00Z")), "29/03/2026 03:00");
        assert_eq!(format(at("2026-10-25T00:59:00Z")), "25/10/2026 02:59");
        assert_eq!(format(at("2026-10-25T01:00:00Z")), "25/10/2026 02:00");
    }

    #[test]
    fn the_year_is_the_italian_one() {
        assert_eq!(year(at("2026-12-31T22:59:00Z")), 2026);
        assert_eq!(year(at("2026-12-31T23:30:00Z")), 2027, "00:30 in Rome");
    }
}
