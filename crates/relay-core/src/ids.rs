//! Identifiers that validate on parse: dispatcher IDs and Twilio SIDs.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("dispatcher ID {0:?} must be 1 to 64 characters of letters, digits, '-', '_' or '.'")]
    DispatcherId(String),
    #[error("{kind} {value:?} must be {prefix} followed by 32 hexadecimal digits")]
    Sid {
        kind: &'static str,
        prefix: &'static str,
        value: String,
    },
}

/// The key of a dispatcher item, such as `sergio-main`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DispatcherId(String);

impl DispatcherId {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(DispatcherId(raw.to_string()))
        } else {
            Err(IdError::DispatcherId(raw.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Twilio message SID: `SM` (or `MM`, for MMS) and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageSid(String);

impl MessageSid {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let valid = has_sid_shape(raw, &["SM", "MM"]);
        if valid {
            Ok(MessageSid(raw.to_string()))
        } else {
            Err(IdError::Sid {
                kind: "MessageSid",
                prefix: "SM or MM",
                value: raw.to_string(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Twilio account SID: `AC` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountSid(String);

impl AccountSid {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if has_sid_shape(raw, &["AC"]) {
            Ok(AccountSid(raw.to_string()))
        } else {
            Err(IdError::Sid {
                kind: "account_sid",
                prefix: "AC",
                value: raw.to_string(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Twilio Messaging Service SID: `MG` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessagingServiceSid(String);

impl MessagingServiceSid {
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        if has_sid_shape(raw, &["MG"]) {
            Ok(MessagingServiceSid(raw.to_string()))
        } else {
            Err(IdError::Sid {
                kind: "messaging_service_sid",
                prefix: "MG",
                value: raw.to_string(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Twilio SIDs are a two-letter prefix and 32 hex digits.
pub(crate) fn has_sid_shape(raw: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|prefix| {
        raw.strip_prefix(prefix)
            .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

macro_rules! string_newtype_impls {
    ($($name:ident),*) => {$(
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    )*};
}
string_newtype_impls!(DispatcherId, MessageSid, AccountSid, MessagingServiceSid);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatcher_ids() {
        assert!(DispatcherId::parse("sergio-main").is_ok());
        assert!(DispatcherId::parse("a.b_c-1").is_ok());
        assert!(DispatcherId::parse("").is_err());
        assert!(DispatcherId::parse("has space").is_err());
        assert!(DispatcherId::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn message_sids() {
        let sid = format!("SM{}", "a".repeat(32));
        assert_eq!(MessageSid::parse(&sid).unwrap().as_str(), sid);
        assert!(MessageSid::parse(&format!("MM{}", "0F".repeat(16))).is_ok());
        assert!(MessageSid::parse("SM123").is_err());
        assert!(MessageSid::parse(&format!("XX{}", "a".repeat(32))).is_err());
        assert!(MessageSid::parse(&format!("SM{}", "g".repeat(32))).is_err());
        assert!(MessageSid::parse("S").is_err());
        assert!(MessageSid::parse("").is_err());
    }

    #[test]
    fn account_and_service_sids() {
        assert!(AccountSid::parse(&format!("AC{}", "1".repeat(32))).is_ok());
        assert!(AccountSid::parse(&format!("MG{}", "1".repeat(32))).is_err());
        assert!(MessagingServiceSid::parse(&format!("MG{}", "1".repeat(32))).is_ok());
        assert!(MessagingServiceSid::parse("MG1").is_err());
    }
}
