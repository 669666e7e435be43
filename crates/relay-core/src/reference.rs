//! The reference every relayed text carries, such as `K7Q`: a dispatcher answers the
//! driver with `K7Q <answer>` and, with acknowledgement on, acknowledges with `ACK K7Q`.
//!
//! A reference is three characters of [`REF_ALPHABET`] with at least one letter and at
//! least one digit, so no word of an answer (`YES`, `OK`, `10`) is ever one of ours.
//! What a dispatcher types back is read more widely ([`TextRef::parse`]): any three
//! letters and digits with at least one of each, any case, so a misread `K0Q` is told
//! "not an open reference" rather than sent to a driver as an answer.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Letters and digits no one confuses on a phone screen: no `0`/`O`, no `1`/`I`.
pub const REF_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const REF_LEN: usize = 3;

/// The longest reference line (with the ACK hint), for the room kept in a text.
pub const REFERENCE_LINES_MAX_CHARS: usize = 80;

/// A relayed text's reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TextRef(String);

impl TextRef {
    /// A fresh reference: our alphabet, at least one letter and one digit.
    pub fn random() -> Self {
        let mut rng = rand::rng();
        loop {
            let candidate: String = (0..REF_LEN)
                .map(|_| REF_ALPHABET[rng.random_range(0..REF_ALPHABET.len())] as char)
                .collect();
            if has_letter_and_digit(&candidate) {
                return TextRef(candidate);
            }
        }
    }

    /// A word in the shape of a reference, as a dispatcher types it (any case);
    /// `None` for any other word.
    pub fn parse(raw: &str) -> Option<Self> {
        let upper = raw.trim().to_ascii_uppercase();
        let shaped = upper.len() == REF_LEN
            && upper.bytes().all(|b| b.is_ascii_alphanumeric())
            && has_letter_and_digit(&upper);
        shaped.then_some(TextRef(upper))
    }

    /// Whether the relay could have issued it (only then can it be live).
    pub fn is_issuable(&self) -> bool {
        self.0.bytes().all(|b| REF_ALPHABET.contains(&b))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn has_letter_and_digit(word: &str) -> bool {
    word.bytes().any(|b| b.is_ascii_alphabetic()) && word.bytes().any(|b| b.is_ascii_digit())
}

impl fmt::Display for TextRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TextRef {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        TextRef::parse(&raw).ok_or_else(|| format!("{raw:?} is not a text reference"))
    }
}

impl From<TextRef> for String {
    fn from(reference: TextRef) -> String {
        reference.0
    }
}

/// The last lines of every relayed text: the reference and how to answer, then (with
/// acknowledgement on) how to acknowledge.
pub fn reference_lines(reference: &TextRef, ack_on: bool) -> String {
    let mut lines = format!("\n[{reference}] Reply \"{reference} <answer>\" to answer the driver");
    if ack_on {
        lines.push_str(&format!("\nReply ACK {reference} to acknowledge"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn fresh_references_have_a_letter_and_a_digit_and_no_ambiguous_characters() {
        for _ in 0..500 {
            let reference = TextRef::random();
            let raw = reference.as_str();
            assert_eq!(raw.len(), REF_LEN);
            assert!(!raw.contains(['0', 'O', '1', 'I']), "{raw}");
            assert!(raw.bytes().any(|b| b.is_ascii_digit()), "{raw}");
            assert!(raw.bytes().any(|b| b.is_ascii_alphabetic()), "{raw}");
            assert!(reference.is_issuable());
            assert_eq!(TextRef::parse(&raw.to_lowercase()), Some(reference));
        }
    }

    #[test]
    fn words_are_not_references() {
        for word in [
            "YES", "yes", "OK", "ACK", "10", "999", "K7", "K7QQ", "JOB-1042", "K-7",
        ] {
            assert_eq!(TextRef::parse(word), None, "{word}");
        }
        assert_eq!(TextRef::parse("k7q").unwrap().as_str(), "K7Q");
        let misread = TextRef::parse("K0Q").expect("in the shape of a reference");
        assert!(!misread.is_issuable(), "we never issue a 0");
    }

    #[test]
    fn the_lines_name_the_reference_and_how_to_answer() {
        let reference = TextRef::parse("K7Q").unwrap();
        assert_eq!(
            reference_lines(&reference, false),
            "\n[K7Q] Reply \"K7Q <answer>\" to answer the driver"
        );
        let with_ack = reference_lines(&reference, true);
        assert!(with_ack.ends_with("\nReply ACK K7Q to acknowledge"));
        assert!(with_ack.chars().count() <= REFERENCE_LINES_MAX_CHARS);
    }

    proptest! {
        #[test]
        fn a_reference_is_three_letters_and_digits_with_one_of_each(word in "[ -~]{0,6}") {
            if let Some(reference) = TextRef::parse(&word) {
                let raw = reference.as_str();
                prop_assert_eq!(raw.len(), REF_LEN);
                prop_assert!(raw.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
                prop_assert!(raw.bytes().any(|b| b.is_ascii_digit()));
                prop_assert!(raw.bytes().any(|b| b.is_ascii_uppercase()));
                prop_assert_eq!(TextRef::parse(&word.to_ascii_lowercase()), Some(reference));
            }
        }

        #[test]
        fn words_without_a_digit_or_a_letter_never_are(word in "[A-Za-z]{3}|[0-9]{3}") {
            prop_assert_eq!(TextRef::parse(&word), None);
        }
    }
}
