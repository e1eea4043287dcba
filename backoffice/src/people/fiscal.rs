//! Italian tax identifiers, checked with their check characters: the codice fiscale of a
//! natural person (16 characters, with its omocodia variants) and the partita IVA (11 digits).
//!
//! Omocodia: when two people would get the same code, the Agenzia delle Entrate replaces
//! digits of the date and town fields, from the right, with letters (`0`…`9` → `L M N P Q R S T
//! U V`). Every variant is a valid code of the same person; [`CodiceFiscale::canonical`] undoes
//! the replacement, so that duplicates are found whatever variant was typed.

use std::fmt;

/// Letters that stand for digits in an omocodia variant, `0` first.
const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";
/// Positions (0-based) of the digits omocodia may replace.
const DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
/// Month letters, January first.
const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";
/// What a character at an odd position (1st, 3rd…) is worth, for `0`–`9` then `A`–`Z`.
const ODD_VALUES: [u32; 36] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, // 0-9
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
    23, // A-Z
];

/// Why a tax identifier was refused; the messages are for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FiscalError {
    #[error("il codice fiscale ha 16 caratteri")]
    CodeLength,
    #[error("il codice fiscale contiene caratteri non ammessi")]
    CodeCharacters,
    #[error("la data di nascita nel codice fiscale non è valida")]
    CodeDate,
    #[error("il carattere di controllo del codice fiscale non corrisponde")]
    CodeCheck,
    #[error("la partita IVA ha 11 cifre")]
    VatFormat,
    #[error("la cifra di controllo della partita IVA non corrisponde")]
    VatCheck,
}

/// Sex as the codice fiscale encodes it (day of birth + 40 for women).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

/// A checked codice fiscale of a natural person, uppercase, as typed (omocodia kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodiceFiscale(String);

impl CodiceFiscale {
    /// Checks `raw` (spaces ignored, any case).
    pub fn parse(raw: &str) -> Result<Self, FiscalError> {
        let code: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = code.as_bytes();
        if code.chars().count() != 16 || bytes.len() != 16 {
            return Err(FiscalError::CodeLength);
        }
        let letter_at = |i: usize| bytes[i].is_ascii_uppercase();
        let digit_or_omocodia =
            |i: usize| bytes[i].is_ascii_digit() || OMOCODIA.contains(&bytes[i]);
        let shape = (0..6).all(letter_at)
            && DIGIT_POSITIONS.iter().all(|&i| digit_or_omocodia(i))
            && letter_at(8)
            && letter_at(11)
            && letter_at(15);
        if !shape {
            return Err(FiscalError::CodeCharacters);
        }
        let parsed = Self(code);
        let canonical = parsed.canonical();
        let canonical = canonical.as_bytes();
        let day = two_digits(canonical, 9);
        if !MONTHS.contains(&canonical[8]) || !matches!(day, 1..=31 | 41..=71) {
            return Err(FiscalError::CodeDate);
        }
        if check_character(&parsed.0.as_bytes()[..15]) != parsed.0.as_bytes()[15] {
            return Err(FiscalError::CodeCheck);
        }
        Ok(parsed)
    }

    /// The code as typed (uppercase).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code with omocodia undone (the check character recomputed): the same for every
    /// variant of one person's code.
    pub fn canonical(&self) -> String {
        let mut bytes = self.0.as_bytes().to_vec();
        for i in DIGIT_POSITIONS {
            if let Some(digit) = OMOCODIA.iter().position(|&letter| letter == bytes[i]) {
                bytes[i] = b'0' + digit as u8;
            }
        }
        bytes[15] = check_character(&bytes[..15]);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Two-digit year, month (1–12), day (1–31) and sex of birth.
    pub fn birth(&self) -> (u8, u8, u8, Sex) {
        let canonical = self.canonical();
        let bytes = canonical.as_bytes();
        let month = MONTHS
            .iter()
            .position(|&letter| letter == bytes[8])
            .map_or(0, |index| index as u8 + 1);
        let day = two_digits(bytes, 9);
        let (day, sex) = if day > 40 {
            (day - 40, Sex::Female)
        } else {
            (day, Sex::Male)
        };
        (two_digits(bytes, 6), month, day, sex)
    }
}

impl fmt::Display for CodiceFiscale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn two_digits(bytes: &[u8], at: usize) -> u8 {
    (bytes[at].wrapping_sub(b'0')) * 10 + bytes[at + 1].wrapping_sub(b'0')
}

/// The check character of the first 15 characters of a codice fiscale.
fn check_character(first: &[u8]) -> u8 {
    let sum: u32 = first
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let index = if c.is_ascii_digit() {
                usize::from(c - b'0')
            } else {
                usize::from(c - b'A') + 10
            };
            if i % 2 == 0 {
                ODD_VALUES[index]
            } else if c.is_ascii_digit() {
                u32::from(c - b'0')
            } else {
                u32::from(c - b'A')
            }
        })
        .sum();
    b'A' + (sum % 26) as u8
}

/// A checked partita IVA (11 digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitaIva(String);

impl PartitaIva {
    /// Checks `raw` (spaces ignored; an `IT` prefix accepted).
    pub fn parse(raw: &str) -> Result<Self, FiscalError> {
        let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        let digits = compact
            .strip_prefix("IT")
            .or_else(|| compact.strip_prefix("it"))
            .unwrap_or(&compact);
        if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FiscalError::VatFormat);
        }
        let values: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum: u32 = values[..10]
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                if i % 2 == 0 {
                    d
                } else if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            })
            .sum();
        if (10 - sum % 10) % 10 != values[10] {
            return Err(FiscalError::VatCheck);
        }
        Ok(Self(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently (a separate implementation of the published
    // algorithm); RSSMRA85T10A562S is the Agenzia delle Entrate's own example.
    #[test]
    fn valid_codes_and_their_omocodia_variants() {
        for code in [
            "RSSMRA85T10A562S",
            "BNCGNN80A01H501T",
            "VRDLCU75M52F205N",
            "rssmra85t10a562s",
        ] {
            assert!(CodiceFiscale::parse(code).is_ok(), "{code}");
        }
        let one = CodiceFiscale::parse("RSSMRA85T10A56NH").expect("one digit replaced");
        let all = CodiceFiscale::parse("RSSMRAURTMLARSNL").expect("every digit replaced");
        assert_eq!(one.canonical(), "RSSMRA85T10A562S");
        assert_eq!(all.canonical(), "RSSMRA85T10A562S");
        assert_eq!(all.birth(), (85, 12, 10, Sex::Male));
        let woman = CodiceFiscale::parse("VRDLCU75M52F205N").expect("valid");
        assert_eq!(woman.birth(), (75, 8, 12, Sex::Female));
    }

    #[test]
    fn wrong_codes_say_what_is_wrong() {
        let cases = [
            ("RSSMRA85T10A562", FiscalError::CodeLength),
            ("RSSMRA85T10A562SX", FiscalError::CodeLength),
            ("RSSMRA85T10A5É2S", FiscalError::CodeLength),
            ("RSSMR485T10A562S", FiscalError::CodeCharacters),
            ("RSSMRA85T10A5A2S", FiscalError::CodeCharacters),
            ("RSSMRA85Z10A562S", FiscalError::CodeDate),
            ("RSSMRA85T35A562S", FiscalError::CodeDate),
            ("RSSMRA85T10A562T", FiscalError::CodeCheck),
            ("RSSMRA85T10A56NS", FiscalError::CodeCheck),
        ];
        for (code, error) in cases {
            assert_eq!(CodiceFiscale::parse(code), Err(error), "{code}");
        }
    }

    #[test]
    fn vat_numbers_are_checked() {
        for vat in ["01234567897", "12345678903", "IT 00802710004"] {
            assert!(PartitaIva::parse(vat).is_ok(), "{vat}");
        }
        assert_eq!(
            PartitaIva::parse("IT00802710004").map(|v| v.as_str().to_owned()),
            Ok("00802710004".to_owned())
        );
        assert_eq!(PartitaIva::parse("01234567898"), Err(FiscalError::VatCheck));
        assert_eq!(PartitaIva::parse("0123456789"), Err(FiscalError::VatFormat));
        assert_eq!(
            PartitaIva::parse("0123456789A"),
            Err(FiscalError::VatFormat)
        );
    }

    #[test]
    fn any_single_character_change_is_caught() {
        let valid = "RSSMRA85T10A562S";
        for position in 0..16 {
            for replacement in ('A'..='Z').chain('0'..='9') {
                let mut changed: Vec<char> = valid.chars().collect();
                if changed[position] == replacement {
                    continue;
                }
                changed[position] = replacement;
                let changed: String = changed.into_iter().collect();
                if let Ok(code) = CodiceFiscale::parse(&changed) {
                    // Only an omocodia variant of the same digit may pass: the same person.
                    assert_eq!(code.canonical(), valid, "{changed}");
                }
            }
        }
    }
}
