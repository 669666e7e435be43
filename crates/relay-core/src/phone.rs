//! Phone numbers in E.164, parsed from the way people type them.
//!
//! Dispatcher items store numbers as typed (`858-335-4807`, `+1-619-555-0199`); every
//! use goes through [`PhoneNumber::parse`] so a number that cannot be normalised is
//! caught as a configuration error instead of being sent to.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A country calling code such as `1` (NANP) or `44` (UK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountryCode(u16);

impl CountryCode {
    pub const NANP: CountryCode = CountryCode(1);

    pub fn parse(raw: &str) -> Result<Self, PhoneError> {
        let digits = raw.trim().trim_start_matches('+');
        if digits.is_empty()
            || digits.len() > 3
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(PhoneError::BadCountryCode(raw.to_string()));
        }
        digits
            .parse()
            .map(CountryCode)
            .map_err(|_| PhoneError::BadCountryCode(raw.to_string()))
    }

    fn digits(self) -> String {
        self.0.to_string()
    }
}

impl Default for CountryCode {
    fn default() -> Self {
        CountryCode::NANP
    }
}

/// An E.164 number: `+`, then 8 to 15 digits, the first not zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number {0:?} contains characters other than digits and separators")]
    BadCharacters(String),
    #[error("phone number {0:?} has the wrong number of digits")]
    BadLength(String),
    #[error("country code {0:?} is not 1 to 3 digits")]
    BadCountryCode(String),
}

impl PhoneError {
    /// What is wrong, without the number itself (for logs at info level).
    pub fn reason(&self) -> &'static str {
        match self {
            PhoneError::Empty => "empty",
            PhoneError::BadCharacters(_) => "characters other than digits and separators",
            PhoneError::BadLength(_) => "wrong number of digits",
            PhoneError::BadCountryCode(_) => "bad country code",
        }
    }
}

impl PhoneNumber {
    /// Normalises a number as people write it. Separators (space, `-`, `.`, `(`, `)`,
    /// `/`) are dropped. With a leading `+` (or `00`) the number is international;
    /// without one it is national to `default_country`.
    pub fn parse(raw: &str, default_country: CountryCode) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        let (international, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' => {}
                _ => return Err(PhoneError::BadCharacters(raw.to_string())),
            }
        }
        if digits.is_empty() {
            return Err(PhoneError::BadCharacters(raw.to_string()));
        }
        let full = if international {
            digits
        } else if let Some(after_idd) = digits.strip_prefix("00") {
            after_idd.to_string()
        } else {
            national_to_international(&digits, default_country)
                .ok_or_else(|| PhoneError::BadLength(raw.to_string()))?
        };
        if !(8..=15).contains(&full.len()) || full.starts_with('0') {
            return Err(PhoneError::BadLength(raw.to_string()));
        }
        // NANP numbers have exactly ten digits after the `1`.
        if full.starts_with('1') && full.len() != 11 {
            return Err(PhoneError::BadLength(raw.to_string()));
        }
        Ok(PhoneNumber(format!("+{full}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but its last four digits hidden, for logs.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// Hides all but the last four characters of something phone-like, for logs.
pub fn mask(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let keep = chars.len().min(4);
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("***{tail}")
}

fn national_to_international(digits: &str, country: CountryCode) -> Option<String> {
    let code = country.digits();
    if country == CountryCode::NANP {
        return match digits.len() {
            10 => Some(format!("1{digits}")),
            11 if digits.starts_with('1') => Some(digits.to_string()),
            _ => None,
        };
    }
    // Elsewhere a national number usually carries a trunk prefix `0`.
    let national = digits.strip_prefix('0').unwrap_or(digits);
    Some(format!("{code}{national}"))
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    /// Deserialised numbers must already be E.164; typed ones go through `parse`.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if !value.starts_with('+') {
            return Err(PhoneError::BadCharacters(value));
        }
        PhoneNumber::parse(&value, CountryCode::NANP)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(raw: &str) -> Result<String, PhoneError> {
        PhoneNumber::parse(raw, CountryCode::NANP).map(String::from)
    }

    #[test]
    fn contract_examples_normalise() {
        assert_eq!(us("858-335-4807").unwrap(), "+18583354807");
        assert_eq!(us("+1-619-555-0199").unwrap(), "+16195550199");
        assert_eq!(us("+18585550100").unwrap(), "+18585550100");
    }

    #[test]
    fn common_spellings_normalise() {
        assert_eq!(us("(858) 335-4807").unwrap(), "+18583354807");
        assert_eq!(us("1 858 335 4807").unwrap(), "+18583354807");
        assert_eq!(us("858.335.4807").unwrap(), "+18583354807");
        assert_eq!(us(" +44 20 7946 0958 ").unwrap(), "+442079460958");
        assert_eq!(us("0044 20 7946 0958").unwrap(), "+442079460958");
    }

    #[test]
    fn other_default_country_strips_trunk_zero() {
        let uk = CountryCode::parse("44").unwrap();
        assert_eq!(
            PhoneNumber::parse("020 7946 0958", uk).unwrap().as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn junk_is_rejected() {
        assert_eq!(us(""), Err(PhoneError::Empty));
        assert!(matches!(us("call me"), Err(PhoneError::BadCharacters(_))));
        assert!(matches!(
            us("1-800-FLOWERS"),
            Err(PhoneError::BadCharacters(_))
        ));
        assert!(matches!(us("335-4807"), Err(PhoneError::BadLength(_))));
        assert!(matches!(
            us("+1 858 335 48071"),
            Err(PhoneError::BadLength(_))
        ));
        assert!(matches!(
            us("+1234567890123456"),
            Err(PhoneError::BadLength(_))
        ));
        assert!(matches!(us("+0123456789"), Err(PhoneError::BadLength(_))));
        assert!(matches!(us("---"), Err(PhoneError::BadCharacters(_))));
    }

    #[test]
    fn country_code_validates() {
        assert_eq!(CountryCode::parse("1").unwrap(), CountryCode::NANP);
        assert!(CountryCode::parse("+44").is_ok());
        assert!(CountryCode::parse("").is_err());
        assert!(CountryCode::parse("1234").is_err());
        assert!(CountryCode::parse("x").is_err());
    }

    #[test]
    fn masking_keeps_last_four() {
        assert_eq!(us("858-335-4807").map(|n| mask(&n)).unwrap(), "***4807");
        assert_eq!(mask("12"), "***12");
    }

    #[test]
    fn serde_round_trip_requires_e164() {
        let n: PhoneNumber = serde_json::from_str("\"+18583354807\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"+18583354807\"");
        assert!(serde_json::from_str::<PhoneNumber>("\"858-335-4807\"").is_err());
    }
}
