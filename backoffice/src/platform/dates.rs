//! Calendar dates as the back office stores them: `YYYY-MM-DD`, zero-padded, so that the text
//! order is the date order (SQL compares and matches them as text).

/// Year, month and day of `text`, if it is such a date (years 1900–2100).
pub fn parse(text: &str) -> Option<(u16, u8, u8)> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    let year: u16 = text.get(0..4)?.parse().ok()?;
    let month: u8 = text.get(5..7)?.parse().ok()?;
    let day: u8 = text.get(8..10)?.parse().ok()?;
    let valid =
        (1900..=2100).contains(&year) && (1..=12).contains(&month) && (1..=31).contains(&day);
    valid.then_some((year, month, day))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn only_zero_padded_real_dates() {
        assert_eq!(parse("1985-12-10"), Some((1985, 12, 10)));
        for wrong in [
            "1985-1-5",
            "1985/12/10",
            "1985-13-01",
            "1985-12-32",
            "0985-12-10",
            "",
            "1985-12-1a",
        ] {
            assert_eq!(parse(wrong), None, "{wrong}");
        }
    }
}
