//! Acknowledgement, the domain part: where a relayed text's acknowledgement stands, and
//! the timer that escalates it when nobody acknowledges it (its reference is
//! [`crate::reference`]'s).
//!
//! A relayed message's acknowledgement goes `awaiting` → `acknowledged` (an `ACK` from
//! the phone it went to), or `awaiting` → `escalating` (its timer fired first) → the next
//! tier's text `awaiting` again, … → `unacknowledged` past the last tier. Every step is
//! a conditional write on the message-log item, so an ACK and a timer racing each other
//! (or two copies of one timer) end in exactly one of them.

use serde::{Deserialize, Serialize};

use crate::ids::MessageSid;
use crate::reference::TextRef;

/// The first line of an escalated text: it was escalated, and why.
pub fn escalation_note(from_tier: &str, window_secs: u64) -> String {
    format!("QDN escalated: not acknowledged by {from_tier} within {window_secs}s\n")
}

/// The first line of a text starting another round of the cascade
/// (`ESCALATION_REPEATS`).
pub fn repeat_note(round: u32, rounds: u32, window_secs: u64) -> String {
    format!(
        "QDN escalated again (round {round} of {rounds}): nobody acknowledged it at any tier within {window_secs}s\n"
    )
}

/// The first line of a text an operator sends again (`qdn redeliver`): the
/// dispatcher must know it is not new.
pub fn redelivery_note(age_secs: i64) -> String {
    let age = age_secs.max(0);
    let age = match age {
        0..=119 => format!("{age}s"),
        120..=7199 => format!("{}m", age / 60),
        _ => format!("{}h", age / 3600),
    };
    format!("QDN resent by ops: first received {age} ago\n")
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
    pub fn parse(raw: &str) -> Option<Self> {
        [
            AckState::Awaiting,
            AckState::Acknowledged,
            AckState::Escalating,
            AckState::Unacknowledged,
        ]
        .into_iter()
        .find(|state| state.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AckState::Awaiting => "awaiting",
            AckState::Acknowledged => "acknowledged",
            AckState::Escalating => "escalating",
            AckState::Unacknowledged => "unacknowledged",
        }
    }
}

/// Where a message's acknowledgement stands now: its state and its current text's
/// reference (either may be missing on an item written without them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAck {
    pub state: Option<AckState>,
    pub reference: Option<TextRef>,
}

impl CurrentAck {
    /// Whether the text `reference` named has gone, or is going, on to another tier:
    /// its timer won (`escalating`) or a newer text with another reference replaced it.
    /// (`unacknowledged` under the same reference: past the last tier, sent nowhere.)
    pub fn moved_past(&self, reference: &TextRef) -> bool {
        self.state == Some(AckState::Escalating)
            || self
                .reference
                .as_ref()
                .is_some_and(|current| current != reference)
    }
}

/// The timer of one relayed text: the body of its SQS message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckTimer {
    pub inbound_sid: MessageSid,
    /// The text this timer watches; a timer for a text that was since moved on (or
    /// acknowledged) does nothing.
    pub forwarded_sid: MessageSid,
    pub ack_ref: TextRef,
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
    fn escalated_texts_say_why() {
        assert_eq!(
            escalation_note("primary", 30),
            "QDN escalated: not acknowledged by primary within 30s\n"
        );
    }

    #[test]
    fn a_text_is_moved_past_once_its_timer_won_or_a_newer_text_replaced_it() {
        let k7q = TextRef::parse("K7Q").unwrap();
        let at = |state, reference: &str| CurrentAck {
            state: Some(state),
            reference: TextRef::parse(reference),
        };
        assert!(!at(AckState::Awaiting, "K7Q").moved_past(&k7q));
        assert!(!at(AckState::Acknowledged, "K7Q").moved_past(&k7q));
        assert!(at(AckState::Escalating, "K7Q").moved_past(&k7q));
        assert!(
            !at(AckState::Unacknowledged, "K7Q").moved_past(&k7q),
            "sent nowhere"
        );
        assert!(at(AckState::Unacknowledged, "P3X").moved_past(&k7q));
        assert!(at(AckState::Awaiting, "P3X").moved_past(&k7q));
        for state in [
            AckState::Awaiting,
            AckState::Acknowledged,
            AckState::Escalating,
            AckState::Unacknowledged,
        ] {
            assert_eq!(AckState::parse(state.as_str()), Some(state));
        }
        assert_eq!(AckState::parse("done"), None);
    }

    #[test]
    fn timers_round_trip() {
        let timer = AckTimer {
            inbound_sid: MessageSid::parse("SM0123456789abcdef0123456789abcdef").unwrap(),
            forwarded_sid: MessageSid::parse("SMfedcba9876543210fedcba9876543210").unwrap(),
            ack_ref: TextRef::parse("K7Q").unwrap(),
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

    }
}
