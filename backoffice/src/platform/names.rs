//! Names and titles as people type them: one line of text. A control character (a line
//! break, a tab, NUL…) has no place in a name, and would break what the name is later written
//! into: a mail header, an iCalendar line, a PostgreSQL text (which refuses NUL).

/// Why a name or title was refused, in Italian, for the message that shows it.
pub const NOT_ONE_LINE: &str =
    "nomi e titoli vanno scritti su una sola riga, senza a capo né caratteri di controllo";

/// Whether `text` holds no control character. Every area checks its names and titles with
/// it before storing them.
pub fn is_one_line(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_tabs_and_nul_are_refused() {
        assert!(is_one_line("Studio Rossi & Associati – sede di Milano"));
        for bad in [
            "Mario\r\nRossi",
            "Mario\nRossi",
            "Mario\tRossi",
            "Mario\0",
            "\u{7f}",
            "\u{85}",
        ] {
            assert!(!is_one_line(bad), "{bad:?}");
        }
    }
}
