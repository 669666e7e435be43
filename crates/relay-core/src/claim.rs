//! One claim mechanism for every "exactly once": a record in the message table that
//! only one invocation can create (or take over once abandoned), owned by a random
//! token so that only its holder can finish or release it.
//!
//! Inbound webhooks claim their `MessageSid`; outbound requests with an
//! `Idempotency-Key` claim `idempotency#<dispatcher>#<key>`. A failed claim hands back
//! what the earlier holder left (its state, its request's fingerprint, its answer),
//! straight from the failed conditional write.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{DispatcherId, MessageSid};

/// How long a claim holds before another invocation may take it over: longer than
/// any function's timeout, so a live invocation never loses it.
pub const CLAIM_LOCK_SECS: i64 = 60;

/// The state of a claimed record in the message table, stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    /// Claimed; the holder is working on it.
    InProgress,
    /// An inbound text went out to a dispatcher.
    Forwarded,
    /// An inbound text was a dispatcher's keyword command.
    Command,
    /// A send went out but its answer never came: it may or may not have been sent,
    /// so nothing may send it again.
    OutcomeUnknown,
    /// An outbound request finished; its answer is stored for replays.
    Answered,
    /// A failed delivery was moved on to the next tier.
    MovedOn,
    /// Nothing more could be done for the message: every tier failed. Ops were alerted.
    GaveUp,
    /// The incoming primary got their handover text.
    HandedOver,
    /// A driver's text the relay could get to nobody, kept with why: given back, so
    /// the webhook's retry (or `qdn redeliver`) may take it over and send it.
    Undelivered,
    /// An operator's redelivery of a text that reached nobody went out.
    Redelivered,
}

impl RecordState {
    pub const ALL: [RecordState; 10] = [
        RecordState::InProgress,
        RecordState::Forwarded,
        RecordState::Command,
        RecordState::OutcomeUnknown,
        RecordState::Answered,
        RecordState::MovedOn,
        RecordState::GaveUp,
        RecordState::HandedOver,
        RecordState::Undelivered,
        RecordState::Redelivered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::InProgress => "in_progress",
            RecordState::Forwarded => "forwarded",
            RecordState::Command => "command",
            RecordState::OutcomeUnknown => "outcome_unknown",
            RecordState::Answered => "answered",
            RecordState::MovedOn => "moved_on",
            RecordState::GaveUp => "gave_up",
            RecordState::HandedOver => "handed_over",
            RecordState::Undelivered => "undelivered",
            RecordState::Redelivered => "redelivered",
        }
    }

    pub fn parse(raw: &str) -> Option<RecordState> {
        Self::ALL.into_iter().find(|state| state.as_str() == raw)
    }
}

impl fmt::Display for RecordState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a claimed record is for, stored as `record_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A driver's (or dispatcher's) text that reached the webhook.
    Inbound,
    /// A dispatcher's outbound request carrying an `Idempotency-Key`.
    Idempotency,
    /// Moving a failed delivery on to the next tier, once per failed message.
    MoveOn,
    /// The handover text of one stint as primary, once per stint.
    Handover,
    /// An operator's redelivery of a text already sent once, once per redelivery.
    Redelivery,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Inbound => "inbound",
            RecordKind::Idempotency => "idempotency",
            RecordKind::MoveOn => "move_on",
            RecordKind::Handover => "handover",
            RecordKind::Redelivery => "redelivery",
        }
    }
}

/// The message-table key a claim is taken under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimKey(String);

impl ClaimKey {
    pub fn inbound(sid: &MessageSid) -> Self {
        ClaimKey(sid.as_str().to_string())
    }

    /// Keys are per dispatcher: two dispatchers may pick the same key.
    pub fn idempotency(dispatcher: &DispatcherId, key: &IdempotencyKey) -> Self {
        ClaimKey(format!("idempotency#{dispatcher}#{}", key.as_str()))
    }

    /// Moving the failed delivery of forwarded message `sid` on: once per message.
    pub fn move_on(sid: &MessageSid) -> Self {
        ClaimKey(format!("move_on#{sid}"))
    }

    /// The handover text of `dispatcher`'s stint as primary from `since`: once per
    /// stint, however many heartbeat runs see it.
    pub fn handover(dispatcher: &DispatcherId, since: i64) -> Self {
        ClaimKey(format!("handover#{dispatcher}#{since}"))
    }

    /// The `nth` redelivery (0 the first) of driver's text `sid`: of operators
    /// redelivering it at once, one sends it.
    pub fn redelivery(sid: &MessageSid, nth: u32) -> Self {
        ClaimKey(format!("redeliver#{sid}#{nth}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClaimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The holder of a claim: random per attempt, so a claim taken over after its lock
/// lapsed cannot be finished or released by the invocation that lost it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimOwner(String);

impl ClaimOwner {
    pub fn random() -> Self {
        ClaimOwner(format!("{:032x}", rand::random::<u128>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An `Idempotency-Key` header value: 1 to 255 printable ASCII characters, as the
/// IETF draft's examples use (UUIDs and the like).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyKeyError {
    #[error("Idempotency-Key is empty")]
    Empty,
    #[error("Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY_LEN} characters")]
    TooLong,
    #[error("Idempotency-Key may only hold printable ASCII characters")]
    NotPrintable,
}

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, IdempotencyKeyError> {
        // The draft's header is a structured-field string: accept it quoted or bare.
        let trimmed = raw.trim();
        let unquoted = trimmed
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or(trimmed);
        if unquoted.is_empty() {
            return Err(IdempotencyKeyError::Empty);
        }
        if unquoted.len() > MAX_IDEMPOTENCY_KEY_LEN {
            return Err(IdempotencyKeyError::TooLong);
        }
        if !unquoted.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(IdempotencyKeyError::NotPrintable);
        }
        Ok(IdempotencyKey(unquoted.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A request to claim `key` for `owner` at `now`.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    pub key: &'a ClaimKey,
    pub kind: RecordKind,
    pub owner: &'a ClaimOwner,
    /// What the claimed request said (a digest), so a key reused for another request
    /// can be told apart from a retry.
    pub fingerprint: Option<&'a str>,
    pub now: i64,
    pub lock_secs: i64,
    /// A finished state this claim may take over besides [`RecordState::Undelivered`]
    /// (which any claim may): an operator's redelivery takes over `outcome_unknown`.
    pub reclaims: Option<RecordState>,
}

impl<'a> ClaimRequest<'a> {
    /// A claim with the standard lock ([`CLAIM_LOCK_SECS`]) and no fingerprint.
    pub fn new(key: &'a ClaimKey, kind: RecordKind, owner: &'a ClaimOwner, now: i64) -> Self {
        ClaimRequest {
            key,
            kind,
            owner,
            fingerprint: None,
            now,
            lock_secs: CLAIM_LOCK_SECS,
            reclaims: None,
        }
    }

    /// May also take over a record left in `state`.
    pub fn reclaiming(mut self, state: RecordState) -> Self {
        self.reclaims = Some(state);
        self
    }

    /// Whether a record left in `state` (its lock lapsed at `lock_expires_at`) may be
    /// taken over by this claim.
    pub fn may_take_over(&self, state: RecordState, lock_expires_at: Option<i64>) -> bool {
        match state {
            RecordState::InProgress => lock_expires_at.is_some_and(|at| at < self.now),
            RecordState::Undelivered => true,
            other => self.reclaims == Some(other),
        }
    }
}

/// An answer stored with an outbound record, replayed to retries of the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// What an earlier holder left under the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRecord {
    pub state: RecordState,
    pub fingerprint: Option<String>,
    pub response: Option<StoredResponse>,
}

/// The result of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The caller holds the key until it finishes or releases it.
    Acquired,
    /// Someone else holds it (or finished with it): here is what they left.
    Taken(ExistingRecord),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_their_names() {
        for state in RecordState::ALL {
            assert_eq!(RecordState::parse(state.as_str()), Some(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
        assert_eq!(RecordState::parse("done"), None);
    }

    #[test]
    fn idempotency_keys_are_printable_ascii_up_to_255() {
        assert_eq!(IdempotencyKey::parse(" abc-1 ").unwrap().as_str(), "abc-1");
        assert_eq!(
            IdempotencyKey::parse("\"8e03978e-40d5\"").unwrap().as_str(),
            "8e03978e-40d5"
        );
        assert_eq!(IdempotencyKey::parse(""), Err(IdempotencyKeyError::Empty));
        assert_eq!(
            IdempotencyKey::parse("\"\""),
            Err(IdempotencyKeyError::Empty)
        );
        assert_eq!(
            IdempotencyKey::parse(&"k".repeat(256)),
            Err(IdempotencyKeyError::TooLong)
        );
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert_eq!(
            IdempotencyKey::parse("clé"),
            Err(IdempotencyKeyError::NotPrintable)
        );
        assert_eq!(
            IdempotencyKey::parse("a\tb"),
            Err(IdempotencyKeyError::NotPrintable)
        );
    }

    #[test]
    fn idempotency_claims_are_per_dispatcher() {
        let key = IdempotencyKey::parse("k1").unwrap();
        let a = ClaimKey::idempotency(&DispatcherId::parse("ana").unwrap(), &key);
        let b = ClaimKey::idempotency(&DispatcherId::parse("bob").unwrap(), &key);
        assert_ne!(a, b);
        assert_eq!(a.as_str(), "idempotency#ana#k1");
    }

    #[test]
    fn a_claim_takes_over_an_abandoned_or_undelivered_record_and_only_a_redelivery_more() {
        let key = ClaimKey::redelivery(
            &MessageSid::parse("SM0123456789abcdef0123456789abcdef").unwrap(),
            2,
        );
        assert_eq!(
            key.as_str(),
            "redeliver#SM0123456789abcdef0123456789abcdef#2"
        );
        let owner = ClaimOwner::random();
        let webhook = ClaimRequest::new(&key, RecordKind::Inbound, &owner, 1000);
        assert!(!webhook.may_take_over(RecordState::InProgress, Some(1060)));
        assert!(webhook.may_take_over(RecordState::InProgress, Some(999)));
        assert!(webhook.may_take_over(RecordState::Undelivered, None));
        for state in RecordState::ALL {
            if !matches!(state, RecordState::InProgress | RecordState::Undelivered) {
                assert!(!webhook.may_take_over(state, None), "{state}");
            }
        }
        let redelivery = webhook.clone().reclaiming(RecordState::OutcomeUnknown);
        assert!(redelivery.may_take_over(RecordState::OutcomeUnknown, None));
        assert!(!redelivery.may_take_over(RecordState::Forwarded, None));
    }

    proptest::proptest! {
        /// Any header value: a key of 1..=255 printable ASCII characters, or a
        /// reason; never a panic. A key's text is itself a valid header value.
        #[test]
        fn any_header_value_is_a_key_or_a_reason(raw in ".{0,300}") {
            if let Ok(key) = IdempotencyKey::parse(&raw) {
                let text = key.as_str();
                proptest::prop_assert!(!text.is_empty() && text.len() <= MAX_IDEMPOTENCY_KEY_LEN);
                proptest::prop_assert!(text.bytes().all(|b| b.is_ascii_graphic() || b == b' '));
                proptest::prop_assert!(IdempotencyKey::parse(text).is_ok());
            }
        }

        #[test]
        fn printable_keys_are_accepted_as_they_are(raw in "[!-~]{1,255}") {
            let unquoted = raw.len() < 2 || !(raw.starts_with('"') && raw.ends_with('"'));
            proptest::prop_assume!(unquoted);
            let key = IdempotencyKey::parse(&raw).unwrap();
            proptest::prop_assert_eq!(key.as_str(), raw.as_str());
        }
    }

    #[test]
    fn owners_differ() {
        assert_ne!(ClaimOwner::random(), ClaimOwner::random());
    }
}
