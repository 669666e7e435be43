//! Acknowledgement, the domain part: the short reference a relayed text carries, the
//! line that tells the dispatcher how to acknowledge it, and the timer that escalates it
//! when nobody does.
//!
//! A relayed message's acknowledgement goes `awaiting` → `acknowledged` (an `ACK` from
//! the phone it went to), or `awaiting` → `escalating` (its timer fired first) → the next
//! tier's text `awaiting` again, … → `unacknowledged` past the last tier. Every step is
//! a conditional write on the message-log item, so an ACK and a timer racing each other
//! (or two copies of one timer) end in exactly one of them.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::ids::MessageSid;

/// Letters and digits no one confuses on a phone screen: no `0`/`O`, no `1`/`I`.
pub const REF_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
pub const REF_LEN: usize = 3;

/// A message's acknowledgement reference, such as `K7Q`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AckRef(String);

impl AckRef {
    pub fn random() -> Self {
        let mut rng = rand::rng();
        AckRef(
            (0..REF_LEN)
                .map(|_| REF_ALPHABET[rng.random_range(0..REF_ALPHABET.len())] as char)
                .collect(),
        )
    }

    /// A reference as a dispatcher types it back, any case; `None` when it cannot be one
    /// of ours (wrong length or a character we never use).
    pub fn parse(raw: &str) -> Option<Self> {
        let upper = raw.trim().to_ascii_uppercase();
        let ours = upper.len() == REF_LEN && upper.bytes().all(|b| REF_ALPHABET.contains(&b));
        ours.then_some(AckRef(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AckRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AckRef {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        AckRef::parse(&raw).ok_or_else(|| format!("{raw:?} is not an acknowledgement reference"))
    }
}

impl From<AckRef> for String {
    fn from(reference: AckRef) -> String {
        reference.0
    }
}

/// The last line of every relayed text while acknowledgement is on.
pub fn ack_instruction(reference: &AckRef) -> String {
    format!("\nReply ACK {reference}")
}

/// The first line of an escalated text: it was escalated, and why.
pub fn escalation_note(from_tier: &str, window_secs: u64) -> String {
    format!("QDN escalated: not acknowledged by {from_tier} within {window_secs}s\n")
}

/// Where a message's acknowledgement stands, on its message-log item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckState {
    Awaiting,
    Acknowledged,
    /// Its timer fired first; the text is going on to the next tier.
    Escalating,
    /// Past the last tier, nobody acknowledged it.
    Unacknowledged,
}

impl AckState {
    pub fn as_str(self) -> &'static str {
        match self {
            AckState::Awaiting => "awaiting",
            AckState::Acknowledged => "acknowledged",
            AckState::Escalating => "escalating",
            AckState::Unacknowledged => "unacknowledged",
        }
    }
}

/// The timer of one relayed text: the body of its SQS message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckTimer {
    pub inbound_sid: MessageSid,
    /// The text this timer watches; a timer for a text that was since moved on (or
    /// acknowledged) does nothing.
    pub forwarded_sid: MessageSid,
    pub ack_ref: AckRef,
    pub sent_at: i64,
}

impl AckTimer {
    pub fn parse(body: &str) -> Result<Self, String> {
        serde_json::from_str(body).map_err(|e| format!("not an acknowledgement timer: {e}"))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a timer serialises")
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn references_are_short_and_unambiguous() {
        for _ in 0..200 {
            let reference = AckRef::random();
            assert_eq!(reference.as_str().len(), REF_LEN);
            assert!(!reference.as_str().contains(['0', 'O', '1', 'I']));
            assert_eq!(
                AckRef::parse(&reference.as_str().to_lowercase()),
                Some(reference)
            );
        }
        assert_eq!(AckRef::parse("k7q").unwrap().as_str(), "K7Q");
        assert_eq!(AckRef::parse("K0Q"), None, "0 is never used");
        assert_eq!(AckRef::parse("JOB-1042"), None);
    }

    #[test]
    fn texts_say_how_to_acknowledge_and_why_they_were_escalated() {
        let reference = AckRef::parse("K7Q").unwrap();
        assert_eq!(ack_instruction(&reference), "\nReply ACK K7Q");
        assert_eq!(
            escalation_note("primary", 30),
            "QDN escalated: not acknowledged by primary within 30s\n"
        );
    }

    #[test]
    fn timers_round_trip() {
        let timer = AckTimer {
            inbound_sid: MessageSid::parse("SM0123456789abcdef0123456789abcdef").unwrap(),
            forwarded_sid: MessageSid::parse("SMfedcba9876543210fedcba9876543210").unwrap(),
            ack_ref: AckRef::parse("K7Q").unwrap(),
            sent_at: 1_795_478_400,
        };
        assert_eq!(AckTimer::parse(&timer.to_json()), Ok(timer));
        assert!(AckTimer::parse("{}").is_err());
    }

    proptest! {
        #[test]
        fn any_body_is_a_timer_or_a_reason(body in "\\PC{0,200}") {
            if let Ok(timer) = AckTimer::parse(&body) {
                prop_assert_eq!(AckTimer::parse(&timer.to_json()), Ok(timer));
            }
        }

        #[test]
        fn any_word_is_a_reference_only_in_our_alphabet(word in "[ -~]{0,6}") {
            if let Some(reference) = AckRef::parse(&word) {
                prop_assert_eq!(reference.as_str().len(), REF_LEN);
                prop_assert!(reference.as_str().bytes().all(|b| REF_ALPHABET.contains(&b)));
            }
        }
    }
}
