//! Stored items as people may have left them.
//!
//! Items in the tables are edited by hand (the console, the AWS CLI), so an attribute
//! can be missing, of another type, or impossible. The decoders read one attribute at
//! a time through [`StoredItem`] and say what is wrong with each ([`Damage`]) instead
//! of failing the whole item. No storage types here: the DynamoDB adapter implements
//! [`StoredItem`] over its own attribute values.

use std::fmt;

/// A stored attribute's type, in DynamoDB's terms (the types a person can pick).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredType {
    String,
    Number,
    Boolean,
    Null,
    Binary,
    List,
    Map,
    StringSet,
    NumberSet,
    BinarySet,
}

impl fmt::Display for StoredType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoredType::String => "a string",
            StoredType::Number => "a number",
            StoredType::Boolean => "a boolean",
            StoredType::Null => "null",
            StoredType::Binary => "binary",
            StoredType::List => "a list",
            StoredType::Map => "a map",
            StoredType::StringSet => "a string set",
            StoredType::NumberSet => "a number set",
            StoredType::BinarySet => "a binary set",
        })
    }
}

/// One attribute's value as the decoders see it, borrowed from the store's item. A
/// number stays text: DynamoDB keeps up to 38 digits, more than any Rust integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored<'a> {
    Text(&'a str),
    Number(&'a str),
    Bool(bool),
    /// Any other type: the decoders only need to name it.
    Other(StoredType),
}

impl Stored<'_> {
    pub fn stored_type(&self) -> StoredType {
        match self {
            Stored::Text(_) => StoredType::String,
            Stored::Number(_) => StoredType::Number,
            Stored::Bool(_) => StoredType::Boolean,
            Stored::Other(other) => *other,
        }
    }
}

/// An item, attribute by attribute.
pub trait StoredItem {
    fn attribute(&self, name: &str) -> Option<Stored<'_>>;
}

/// What an attribute should have held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expected {
    Boolean,
    /// Whole seconds since 1970, up to the year 9999.
    UnixTime,
    /// A lifetime: whole seconds, more than none and at most [`MAX_TTL_SECS`].
    TtlSeconds,
    /// A phone number, as a string (or the digits of a number).
    PhoneNumber,
    DispatcherId,
    MessageSid,
    /// A string with one of a fixed set of values (a tier, a state, a status).
    KnownName,
    /// Any string.
    Text,
    /// A whole number.
    WholeNumber,
}

/// The longest `message_log_ttl` that is a policy and not a typo: 366 days.
pub const MAX_TTL_SECS: i64 = 366 * 86_400;

/// 9999-12-31T23:59:59Z: no later time is a timestamp anyone meant.
pub const MAX_UNIX_TIME: i64 = 253_402_300_799;

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Boolean => f.write_str("a boolean"),
            Expected::UnixTime => f.write_str("whole Unix seconds"),
            Expected::TtlSeconds => write!(f, "whole seconds from 1 to {MAX_TTL_SECS} (366 days)"),
            Expected::PhoneNumber => f.write_str("a phone number"),
            Expected::DispatcherId => f.write_str("a dispatcher ID"),
            Expected::MessageSid => f.write_str("a Twilio message SID"),
            Expected::KnownName => f.write_str("one of the relay's names"),
            Expected::Text => f.write_str("a string"),
            Expected::WholeNumber => f.write_str("a whole number"),
        }
    }
}

/// What is wrong with one attribute. Never holds a phone number: it is logged and
/// alerted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Damage {
    /// Needed, and absent or empty.
    Missing,
    WrongType {
        expected: Expected,
        found: StoredType,
    },
    /// A phone number stored as a DynamoDB Number: it is read as its digits.
    StoredAsNumber,
    /// A fraction where whole seconds belong.
    NotWhole { expected: Expected },
    /// A number outside what the attribute can mean; `found` is the number as stored
    /// (only ever for attributes that are not phone numbers).
    OutOfRange { expected: Expected, found: String },
    /// A string that is not what the attribute holds (an ID, a SID, a state name).
    Unrecognised { expected: Expected },
    /// A phone number that does not normalise: why (never the number).
    DoesNotNormalise { reason: &'static str },
    /// A tier naming a dispatcher ID that has no item.
    UnknownDispatcher { dispatcher: String },
}

impl Damage {
    /// A stable name for the kind of damage: part of a problem's identity, so a
    /// problem is alerted once however its wording changes.
    pub fn kind(&self) -> &'static str {
        match self {
            Damage::Missing => "missing",
            Damage::WrongType { .. } => "wrong_type",
            Damage::StoredAsNumber => "stored_as_number",
            Damage::NotWhole { .. } => "not_whole",
            Damage::OutOfRange { .. } => "out_of_range",
            Damage::Unrecognised { .. } => "unrecognised",
            Damage::DoesNotNormalise { .. } => "does_not_normalise",
            Damage::UnknownDispatcher { .. } => "unknown_dispatcher",
        }
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::Missing => f.write_str("is not set"),
            Damage::WrongType { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            Damage::StoredAsNumber => {
                f.write_str("expected a string, found a number (read as its digits)")
            }
            Damage::NotWhole { expected } => write!(f, "expected {expected}, found a fraction"),
            Damage::OutOfRange { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            Damage::Unrecognised { expected } => {
                write!(f, "expected {expected}, found another string")
            }
            Damage::DoesNotNormalise { reason } => write!(f, "does not normalise ({reason})"),
            Damage::UnknownDispatcher { dispatcher } => {
                write!(f, "names dispatcher {dispatcher}, which has no item")
            }
        }
    }
}

/// `damage` as a sentence about `attribute`: "phone is not set", "available:
/// expected a boolean, found a string".
pub struct Named<'a>(pub &'a str, pub &'a Damage);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Named(attribute, damage) = self;
        match damage {
            Damage::Missing
            | Damage::DoesNotNormalise { .. }
            | Damage::UnknownDispatcher { .. } => {
                write!(f, "{attribute} {damage}")
            }
            _ => write!(f, "{attribute}: {damage}"),
        }
    }
}

/// Why a stored number is not a whole number of the `i64` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberShape {
    Fraction,
    TooLarge,
    NotANumber,
}

/// Reads a stored number (DynamoDB's form: sign, digits, fraction, exponent) as a
/// whole `i64`. `1e12` and `5.0` are whole; `1.5` is not.
pub fn whole_number(raw: &str) -> Result<i64, NumberShape> {
    let raw = raw.trim();
    if let Ok(value) = raw.parse::<i64>() {
        return Ok(value);
    }
    // Not a plain integer: an exponent, a fraction, or too many digits. The float is
    // only used to classify; any whole value it finds fits f64 exactly up to 2^53,
    // far past every range the relay accepts.
    let value: f64 = raw.parse().map_err(|_| NumberShape::NotANumber)?;
    if !value.is_finite() {
        return Err(NumberShape::NotANumber);
    }
    if value.fract() != 0.0 {
        return Err(NumberShape::Fraction);
    }
    if value.abs() >= 9.0e15 {
        return Err(NumberShape::TooLarge);
    }
    Ok(value as i64)
}

/// A few characters of a number as stored, for a problem's text.
fn shown(raw: &str) -> String {
    let raw = raw.trim();
    if raw.chars().count() <= 24 {
        raw.to_string()
    } else {
        let head: String = raw.chars().take(24).collect();
        format!("{head}…")
    }
}

/// Typed reads of one attribute. `Ok(None)`: absent (or DynamoDB's `NULL`, which the
/// console offers as a way to clear a value).
pub fn read_bool(item: &dyn StoredItem, name: &str) -> Result<Option<bool>, Damage> {
    match item.attribute(name) {
        None | Some(Stored::Other(StoredType::Null)) => Ok(None),
        Some(Stored::Bool(value)) => Ok(Some(value)),
        Some(other) => Err(Damage::WrongType {
            expected: Expected::Boolean,
            found: other.stored_type(),
        }),
    }
}

/// A string attribute; an empty one counts as absent.
pub fn read_text<'a>(
    item: &'a dyn StoredItem,
    name: &str,
    expected: Expected,
) -> Result<Option<&'a str>, Damage> {
    match item.attribute(name) {
        None | Some(Stored::Other(StoredType::Null)) => Ok(None),
        Some(Stored::Text(text)) => Ok(Some(text).filter(|t| !t.trim().is_empty())),
        Some(other) => Err(Damage::WrongType {
            expected,
            found: other.stored_type(),
        }),
    }
}

/// A whole number within `range`; `expected` names what it means.
pub fn read_whole(
    item: &dyn StoredItem,
    name: &str,
    expected: Expected,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, Damage> {
    let raw = match item.attribute(name) {
        None | Some(Stored::Other(StoredType::Null)) => return Ok(None),
        Some(Stored::Number(raw)) => raw,
        Some(other) => {
            return Err(Damage::WrongType {
                expected,
                found: other.stored_type(),
            });
        }
    };
    match whole_number(raw) {
        Ok(value) if range.contains(&value) => Ok(Some(value)),
        Ok(_) | Err(NumberShape::TooLarge) => Err(Damage::OutOfRange {
            expected,
            found: shown(raw),
        }),
        Err(NumberShape::Fraction) => Err(Damage::NotWhole { expected }),
        Err(NumberShape::NotANumber) => Err(Damage::OutOfRange {
            expected,
            found: "something that is not a number".to_string(),
        }),
    }
}

/// A phone number as people store it: a string as typed, or the digits of a number
/// (`Ok((digits, Some(Damage::StoredAsNumber)))`: usable, and still a problem).
pub fn read_phone<'a>(
    item: &'a dyn StoredItem,
    name: &str,
) -> Result<Option<(&'a str, Option<Damage>)>, Damage> {
    match item.attribute(name) {
        Some(Stored::Number(digits)) => Ok(Some((digits, Some(Damage::StoredAsNumber)))),
        _ => Ok(read_text(item, name, Expected::PhoneNumber)?.map(|text| (text, None))),
    }
}

/// An in-memory item, for tests and for the in-memory adapters.
#[cfg(any(test, feature = "test-util"))]
pub mod memory {
    use std::collections::BTreeMap;

    use super::{Stored, StoredItem, StoredType};

    /// An owned attribute value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        S(String),
        N(String),
        Bool(bool),
        Other(StoredType),
    }

    /// Attributes by name.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Item(pub BTreeMap<String, Value>);

    impl Item {
        pub fn with(mut self, name: &str, value: Value) -> Self {
            self.0.insert(name.to_string(), value);
            self
        }
    }

    impl StoredItem for Item {
        fn attribute(&self, name: &str) -> Option<Stored<'_>> {
            self.0.get(name).map(|value| match value {
                Value::S(s) => Stored::Text(s),
                Value::N(n) => Stored::Number(n),
                Value::Bool(b) => Stored::Bool(*b),
                Value::Other(t) => Stored::Other(*t),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::{Item, Value};
    use super::*;

    #[test]
    fn whole_numbers_in_every_form_dynamodb_keeps() {
        assert_eq!(whole_number("86400"), Ok(86_400));
        assert_eq!(whole_number("-5"), Ok(-5));
        assert_eq!(whole_number("1e12"), Ok(1_000_000_000_000));
        assert_eq!(whole_number("5.0"), Ok(5));
        assert_eq!(whole_number("1712345678.5"), Err(NumberShape::Fraction));
        assert_eq!(whole_number("1E+40"), Err(NumberShape::TooLarge));
        assert_eq!(
            whole_number("123456789012345678901234567890"),
            Err(NumberShape::TooLarge)
        );
        for junk in ["", "one day", "inf", "NaN", "1e", "0x10"] {
            assert_eq!(whole_number(junk), Err(NumberShape::NotANumber), "{junk}");
        }
    }

    #[test]
    fn reads_say_what_was_expected_and_what_was_found() {
        let item = Item::default()
            .with("flag", Value::S("true".into()))
            .with("ttl", Value::N("-5".into()))
            .with("at", Value::N("1712345678.5".into()))
            .with("nothing", Value::Other(StoredType::Null))
            .with("blank", Value::S("  ".into()))
            .with("phone", Value::N("8583354807".into()));
        assert_eq!(
            read_bool(&item, "flag"),
            Err(Damage::WrongType {
                expected: Expected::Boolean,
                found: StoredType::String
            })
        );
        let ttl = read_whole(&item, "ttl", Expected::TtlSeconds, 1..=MAX_TTL_SECS).unwrap_err();
        assert_eq!(ttl.kind(), "out_of_range");
        assert_eq!(
            ttl.to_string(),
            "expected whole seconds from 1 to 31622400 (366 days), found -5"
        );
        assert_eq!(
            read_whole(&item, "at", Expected::UnixTime, 0..=MAX_UNIX_TIME),
            Err(Damage::NotWhole {
                expected: Expected::UnixTime
            })
        );
        assert_eq!(read_bool(&item, "nothing"), Ok(None));
        assert_eq!(read_bool(&item, "absent"), Ok(None));
        assert_eq!(read_text(&item, "blank", Expected::Text), Ok(None));
        assert_eq!(
            read_phone(&item, "phone"),
            Ok(Some(("8583354807", Some(Damage::StoredAsNumber))))
        );
    }
}
