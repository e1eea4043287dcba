//! Times as a person in Italy reads them: Europe/Rome (CET, CEST in summer).
//!
//! The EU rule (Directive 2000/84/EC): summer time from 01:00 UTC on the last Sunday of March
//! to 01:00 UTC on the last Sunday of October. Computed here rather than from a time-zone
//! database, which the server may not have.

use crate::UnixMillis;
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

/// Hours and minutes, `hh:mm`, in Italian time.
pub fn clock(at: UnixMillis) -> String {
    local(at).map_or_else(
        || "—".to_owned(),
        |local| format!("{:02}:{:02}", local.hour(), local.minute()),
    )
}

/// The Italian name of `month` (1–12), lower case as in a date.
pub fn month_name(month: u8) -> &'static str {
    const MONTHS: [&str; 12] = [
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ];
    MONTHS[usize::from(month.clamp(1, 12) - 1)]
}

/// The date in words, as a letter writes it: `giovedì 12 marzo 2027`.
pub fn long_date(at: UnixMillis) -> String {
    let Some(local) = local(at) else {
        return "—".to_owned();
    };
    const WEEKDAYS: [&str; 7] = [
        "lunedì",
        "martedì",
        "mercoledì",
        "giovedì",
        "venerdì",
        "sabato",
        "domenica",
    ];
    format!(
        "{} {} {} {}",
        WEEKDAYS[usize::from(local.weekday().number_days_from_monday())],
        local.day(),
        month_name(u8::from(local.month())),
        local.year()
    )
}

/// The calendar date in Italy at `at`, `YYYY-MM-DD` (as `dates` stores it).
pub fn date(at: UnixMillis) -> String {
    local(at).map_or_else(
        || "1970-01-01".to_owned(),
        |local| {
            format!(
                "{:04}-{:02}-{:02}",
                local.year(),
                u8::from(local.month()),
                local.day()
            )
        },
    )
}

/// The instant at which `date` (`YYYY-MM-DD`) begins in Italy, plus `minutes` after midnight.
pub fn at_local(date: &str, minutes: u32) -> Option<UnixMillis> {
    let (year, month, day) = crate::platform::dates::parse(date)?;
    let month = Month::try_from(month).ok()?;
    let day = Date::from_calendar_date(i32::from(year), month, day).ok()?;
    let naive = day.with_hms(0, 0, 0).ok()?.assume_utc();
    let naive = naive + time::Duration::minutes(i64::from(minutes));
    // The offset in force at that local time: try winter time, correct to summer time.
    let guess = naive - time::Duration::hours(1);
    let offset = rome_offset(guess);
    let utc = naive - time::Duration::seconds(i64::from(offset.whole_seconds()));
    i64::try_from(utc.unix_timestamp_nanos() / 1_000_000)
        .ok()
        .map(UnixMillis)
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
    fn dates_in_words_and_local_midnights() {
        let ten = at("2027-03-12T09:00:00Z");
        assert_eq!(long_date(ten), "venerdì 12 marzo 2027");
        assert_eq!(clock(ten), "10:00");
        assert_eq!(date(ten), "2027-03-12");
        assert_eq!(at_local("2027-03-12", 600), Some(ten));
        assert_eq!(
            at_local("2027-07-01", 0),
            Some(at("2027-06-30T22:00:00Z")),
            "summer time"
        );
        assert_eq!(at_local("2027-02-30", 0), None);
    }

    #[test]
    fn the_year_is_the_italian_one() {
        assert_eq!(year(at("2026-12-31T22:59:00Z")), 2026);
        assert_eq!(year(at("2026-12-31T23:30:00Z")), 2027, "00:30 in Rome");
    }
}
