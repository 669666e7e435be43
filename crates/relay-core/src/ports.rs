//! The narrow interfaces the handlers use, so the DynamoDB, SNS and Twilio adapters
//! can be swapped for in-memory ones in tests.

use std::collections::BTreeSet;

use async_trait::async_trait;

use crate::ack::{AckState, AckTimer, CurrentAck};
use crate::alert::{Alert, AlertKind};
use crate::cascade::{Attempt, Tier};
use crate::claim::{ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, RecordState, StoredResponse};
use crate::conversation::{Conversation, Driver, Signer};
use crate::delivery::DeliveryStatus;
use crate::dispatcher::{DispatcherRecord, Flag};
use crate::fate::{MessageSummary, Unreached};
use crate::ids::{DispatcherId, MessageSid};
use crate::phone::PhoneNumber;
use crate::problem::ProblemKey;
use crate::reference::TextRef;
use crate::roster::Roster;
use crate::sms::Command;
use crate::stored::{Damage, Named};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{table}: {operation} failed: {detail}")]
    Unavailable {
        table: String,
        operation: &'static str,
        detail: String,
    },
    #[error("{table}: item {key:?} is malformed: {detail}")]
    Malformed {
        table: String,
        key: String,
        detail: String,
    },
    /// An attribute the reader cannot do without is missing, of the wrong type or
    /// impossible (`key` is shown masked where it may be a phone number).
    #[error("{table}: item {key:?}: {}", Named(attribute, damage))]
    Damaged {
        table: String,
        key: String,
        attribute: &'static str,
        damage: Damage,
    },
    /// The claim on `key` is no longer this invocation's: its lock lapsed and another
    /// invocation took it over.
    #[error("{table}: the claim on {key} is no longer held by this invocation")]
    ClaimLost { table: String, key: String },
}

impl StoreError {
    /// What failed, without the AWS error's own text: for alerts and answers (the
    /// full error goes to the log).
    pub fn summary(&self) -> String {
        match self {
            StoreError::Unavailable {
                table, operation, ..
            } => format!("DynamoDB {operation} on {table} failed"),
            StoreError::Malformed { table, key, .. } => {
                format!("item {key:?} of {table} is malformed")
            }
            StoreError::Damaged {
                table,
                key,
                attribute,
                damage,
            } => format!("item {key:?} of {table}: {}", Named(attribute, damage)),
            StoreError::ClaimLost { table, key } => {
                format!("the claim on {key} in {table} was lost")
            }
        }
    }
}

#[async_trait]
pub trait DispatcherStore: Send + Sync {
    async fn get(&self, id: &DispatcherId) -> Result<Option<DispatcherRecord>, StoreError>;
    /// Every item of the table, in one read: each dispatcher item (one without a
    /// usable `dispatcher_id` as an error in its place; damaged attributes are on the
    /// record's `problems`) and the rota item.
    async fn roster(&self) -> Result<Roster, StoreError>;
    /// Sets `available = false` only while it is still true, so concurrent invocations
    /// agree on who flipped it. `Ok(true)` when this call made the change.
    async fn mark_unavailable(&self, id: &DispatcherId) -> Result<bool, StoreError>;
    /// The dispatcher's ON/OFF switch. ON is also a check-in: `available = true` and
    /// `last_heartbeat = now`. Does nothing (`Ok(false)`) when the item does not exist.
    async fn set_on_duty(
        &self,
        id: &DispatcherId,
        on_duty: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// A dispatcher's check-in: `last_heartbeat = now`. `Ok(false)` when the item
    /// does not exist.
    async fn check_in(&self, id: &DispatcherId, now: i64) -> Result<bool, StoreError>;
    /// The heartbeat's verdict: healthy sets `available = true, last_heartbeat = now`,
    /// unhealthy `available = false`. Only while the item still shows what the
    /// heartbeat read (`seen`), so a concurrent ON/OFF or inbound flip is never
    /// overwritten with stale data: `Ok(false)` when it changed meanwhile.
    async fn set_health(
        &self,
        id: &DispatcherId,
        seen: &Observed,
        healthy: bool,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// What the heartbeat read of a dispatcher item, the condition of its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub available: Flag,
    pub on_duty: Flag,
}

impl Observed {
    pub fn of(record: &DispatcherRecord) -> Self {
        Observed {
            available: record.available,
            on_duty: record.on_duty,
        }
    }
}

/// Configuration problems the heartbeat has already alerted about (by their stable
/// keys), so each is alerted once, not every five minutes.
#[async_trait]
pub trait ProblemLog: Send + Sync {
    async fn known_problems(&self) -> Result<BTreeSet<ProblemKey>, StoreError>;
    async fn set_known_problems(&self, problems: &BTreeSet<ProblemKey>) -> Result<(), StoreError>;
}

/// How a claim ends when it is not released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish<'a> {
    pub state: RecordState,
    /// The answer to replay to retries (outbound requests).
    pub response: Option<&'a StoredResponse>,
    /// Why it ended this way, for whoever reads the trail (never a message body).
    pub detail: Option<&'a str>,
    pub expires_at: i64,
}

/// The one claim mechanism behind every "exactly once" (see [`crate::claim`]).
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Claims the key atomically: of any number of concurrent callers exactly one gets
    /// `Acquired`; the others get what is stored under it. A claim whose lock has
    /// lapsed (`lock_secs` after it was taken) is abandoned and may be taken over.
    async fn claim(&self, request: &ClaimRequest<'_>) -> Result<ClaimOutcome, StoreError>;
    /// Drops `owner`'s claim so a retry can start afresh. A claim that someone else
    /// holds now, or that was finished, is left alone.
    async fn release(&self, key: &ClaimKey, owner: &ClaimOwner) -> Result<(), StoreError>;
    /// Ends `owner`'s claim in a final state; [`StoreError::ClaimLost`] if it is no
    /// longer theirs.
    async fn finish(
        &self,
        key: &ClaimKey,
        owner: &ClaimOwner,
        finish: &Finish<'_>,
    ) -> Result<(), StoreError>;
}

/// The outcome of a relayed message, written over the in-progress claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRecord {
    pub inbound_sid: MessageSid,
    pub from: String,
    pub to: String,
    pub routing_decision: Tier,
    pub dispatcher_id: DispatcherId,
    pub cascade_reason: String,
    pub forwarded_sid: MessageSid,
    pub forwarded_to: PhoneNumber,
    pub forwarded_status: DeliveryStatus,
    /// The text as forwarded, kept (with its media and callback) until the message is
    /// delivered or given up, so a failed delivery can be sent on to the next tier.
    pub relay: RelayText,
    pub body_truncated: bool,
    pub attempts: Vec<Attempt>,
    pub received_at: i64,
    pub forwarded_at: i64,
    /// `received_at + message_log_ttl` of the dispatcher routed through.
    pub expires_at: i64,
    /// Set when an operator sent it again: the redeliveries it has had, this one
    /// included.
    pub redeliveries: Option<u32>,
}

/// The outcome of a dispatcher's keyword command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub inbound_sid: MessageSid,
    pub command: Command,
    pub dispatcher_ids: Vec<DispatcherId>,
    pub received_at: i64,
    pub expires_at: i64,
}

/// The inbound side of the message log: what became of a claimed webhook.
#[async_trait]
pub trait MessageLog: Send + Sync {
    /// Records a forwarded message over `owner`'s claim: the inbound item becomes
    /// `forwarded`, and an item keyed by the forwarded message's SID points back to it
    /// for status callbacks.
    async fn record_forwarded(
        &self,
        record: &ForwardRecord,
        owner: &ClaimOwner,
    ) -> Result<(), StoreError>;
    async fn record_command(
        &self,
        record: &CommandRecord,
        owner: &ClaimOwner,
    ) -> Result<(), StoreError>;
    /// The forwarded message `sid` (its `record_type = forward` item), if we sent it
    /// and its log has not expired at `now`.
    async fn forwarded(
        &self,
        sid: &MessageSid,
        now: i64,
    ) -> Result<Option<ForwardedMessage>, StoreError>;
    /// Records `status` on the forwarded message (and on its inbound item while that
    /// still points at it) if it moves the message forward, or repeats the status
    /// already stored (a redelivered callback). `Ok(false)` when it would move the
    /// message backwards or replace another final status: nothing is written.
    async fn record_delivery_status(
        &self,
        forward: &ForwardedMessage,
        status: DeliveryStatus,
        error_code: Option<u32>,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// The kept text of inbound message `sid`, unless it was forgotten or expired.
    async fn relay_text(&self, sid: &MessageSid, now: i64)
    -> Result<Option<RelayText>, StoreError>;
    /// Someone got the text (delivered, acknowledged): its kept words go, and it is
    /// no longer listed as reached nobody.
    async fn resolved(&self, sid: &MessageSid) -> Result<(), StoreError>;
    /// A driver's text whose first try reached nobody, written over `owner`'s claim
    /// with its words kept, so it can be sent again (`qdn redeliver`).
    async fn record_unreached(
        &self,
        record: &UnreachedRecord,
        owner: &ClaimOwner,
    ) -> Result<(), StoreError>;
    /// A text already out that reached nobody in the end (every tier failed, nobody
    /// acknowledged it, or its last send's outcome is unknown): listed as such, its
    /// words kept until it is resolved or expires.
    async fn mark_unreached(
        &self,
        sid: &MessageSid,
        fate: Unreached,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Driver's text `sid` as its inbound item tells it, with its kept words (if
    /// still kept), read consistently; `None` if it is not logged or expired at `now`.
    async fn logged_text(
        &self,
        sid: &MessageSid,
        now: i64,
    ) -> Result<Option<LoggedText>, StoreError>;
    /// The text inbound message `sid` currently points at (its `forwarded_sid`).
    async fn current_forward(&self, sid: &MessageSid) -> Result<Option<MessageSid>, StoreError>;
    /// A failed delivery sent on: the inbound item now points at the new forwarded
    /// message (its attempts extended), which gets its own forward item.
    async fn record_moved_on(&self, moved: &MovedOn) -> Result<(), StoreError>;
}

/// A driver's text whose first try reached nobody: the claim becomes its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreachedRecord {
    pub inbound_sid: MessageSid,
    pub from: String,
    pub to: String,
    /// The primary its cascade started from.
    pub dispatcher_id: DispatcherId,
    pub fate: Unreached,
    /// Why, tier by tier (never a body).
    pub reason: String,
    pub relay: RelayText,
    pub body_truncated: bool,
    pub received_at: i64,
    pub expires_at: i64,
    /// Operators' redeliveries so far (0 for the webhook's own try).
    pub redeliveries: u32,
}

/// A logged driver's text and, while they are kept, its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedText {
    pub summary: MessageSummary,
    pub kept: Option<RelayText>,
    pub body_truncated: bool,
}

/// A text as it is forwarded: the same at every tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayText {
    pub body: String,
    /// Who sent it, when their number is one a dispatcher can answer.
    pub driver: Option<Driver>,
    pub media_urls: Vec<String>,
    pub status_callback: Option<String>,
}

/// A forwarded message, as its `record_type = forward` item keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedMessage {
    pub sid: MessageSid,
    pub inbound_sid: MessageSid,
    pub tier: Tier,
    /// The primary dispatcher item the cascade started from.
    pub dispatcher_id: DispatcherId,
    pub to: PhoneNumber,
    /// When it was sent (unknown on items written before this was recorded).
    pub sent_at: Option<i64>,
    pub expires_at: i64,
    /// Which round of the cascade it is in: 0 the first, 1 after one repeat
    /// (`ESCALATION_REPEATS`).
    pub round: u32,
}

/// A failed delivery, sent on to a later tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedOn {
    pub inbound_sid: MessageSid,
    pub failed_sid: MessageSid,
    pub tier: Tier,
    pub dispatcher_id: DispatcherId,
    pub cascade_reason: String,
    pub forwarded_sid: MessageSid,
    pub forwarded_to: PhoneNumber,
    pub status: DeliveryStatus,
    /// The tries this move made, the failed delivery first; appended to the item's.
    pub attempts: Vec<Attempt>,
    pub at: i64,
    pub expires_at: i64,
    /// The round of the cascade the new text is in.
    pub round: u32,
    /// An operator sent it again (`qdn redeliver`), rather than the relay moving it.
    pub redelivered: bool,
}

/// What the relay has seen of deliveries to one number, for the heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryHealth {
    pub last_failure_at: Option<i64>,
    pub last_success_at: Option<i64>,
}

impl DeliveryHealth {
    /// No failure newer than the last success.
    pub fn is_healthy(&self) -> bool {
        match (self.last_failure_at, self.last_success_at) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(failure), Some(success)) => success >= failure,
        }
    }
}

/// Deliveries per number: failures recorded against the number a text went to.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    async fn record_delivery(
        &self,
        to: &PhoneNumber,
        delivered: bool,
        error_code: Option<u32>,
        at: i64,
    ) -> Result<(), StoreError>;
    async fn health(&self, to: &PhoneNumber) -> Result<DeliveryHealth, StoreError>;
}

/// A dispatcher's text to a driver, as the message log keeps it (never the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecord {
    pub sid: MessageSid,
    /// The dispatcher item it was sent for (a backup's or tertiary's answer: the item
    /// that names that number).
    pub dispatcher_id: DispatcherId,
    pub to: PhoneNumber,
    /// The API's job reference; an answer by text has none.
    pub job_ref: Option<String>,
    /// Set for an answer by text: the driver's texts it answers.
    pub answers: Option<Answered>,
    pub delivery_status: DeliveryStatus,
    pub sent_at: i64,
    pub expires_at: i64,
}

/// What an answer by text answered, for the driver's trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub signer: Signer,
    /// The reference the dispatcher answered (or, for a bare answer, the newest one).
    pub reference: TextRef,
    /// The driver's texts (their inbound message SIDs) it answers.
    pub inbound_sids: Vec<MessageSid>,
}

/// The outbound side of the message log.
#[async_trait]
pub trait OutboundLog: Send + Sync {
    /// Writes the outbound item and, for an answer by text, adds the answer to each
    /// driver's text it answers (their trails show who answered and when).
    async fn record_outbound(&self, record: &OutboundRecord) -> Result<(), StoreError>;
}

/// A text to send through Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingSms {
    pub to: PhoneNumber,
    pub body: String,
    pub media_urls: Vec<String>,
    pub status_callback: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentSms {
    pub sid: MessageSid,
    pub status: DeliveryStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Twilio refused this recipient for good (bad number, unsubscribed, not mobile):
    /// another number may still work.
    #[error("Twilio refused the recipient: {code} {message}")]
    RecipientRefused { code: u32, message: String },
    /// Twilio refused the request for a reason another recipient would not fix
    /// (credentials, sender, body).
    #[error("Twilio rejected the request ({status}): {code} {message}")]
    Rejected {
        status: u16,
        code: u32,
        message: String,
    },
    /// Twilio could not be reached, or answered 429/5xx, through every retry.
    #[error("Twilio unavailable: {detail}")]
    Unavailable { detail: String },
    /// The request went out but no answer came back: it may or may not have been sent,
    /// so it is not retried (a retry could send it twice).
    #[error("Twilio did not answer; the message may or may not have been sent: {detail}")]
    OutcomeUnknown { detail: String },
}

#[async_trait]
pub trait SmsSender: Send + Sync {
    async fn send(&self, sms: &OutgoingSms) -> Result<SentSms, SendError>;
}

/// Where a function that texts only now and then gets its sender: the Twilio
/// secret is read only when a text is due. The error says why there is none.
#[async_trait]
pub trait SenderSource: Send + Sync {
    async fn sender(&self) -> Result<Box<dyn SmsSender + '_>, String>;
}

/// An alert the topic did not take; `detail` is the service's own words, for the log.
#[derive(Debug, thiserror::Error)]
#[error("publishing the {} alert failed: {detail}", .kind.as_str())]
pub struct AlertError {
    pub kind: AlertKind,
    pub detail: String,
}

#[async_trait]
pub trait AlertPublisher: Send + Sync {
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError>;
}

/// References and the conversations they open, on the message log (see
/// [`crate::conversation`]).
#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// Reserves `reference` for inbound message `sid` until `expires_at`; `Ok(false)`
    /// when a text still live holds it (pick another).
    async fn reserve_ref(
        &self,
        reference: &TextRef,
        sid: &MessageSid,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError>;
    /// The text went to `phone`: `phone` may answer it until `expires_at`.
    async fn open_conversation(
        &self,
        phone: &PhoneNumber,
        conversation: &Conversation,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Every conversation on `phone`, live or not (one read); the caller judges them.
    /// Conversations past their `expires_at` are dropped by later writes, in batches.
    async fn conversations(&self, phone: &PhoneNumber) -> Result<Vec<Conversation>, StoreError>;
}

/// Acknowledgement records on the message log (see [`crate::ack`]).
#[async_trait]
pub trait AckStore: Send + Sync {
    /// Message `sid`'s current text, sent to `to` at `at_ms` (Unix milliseconds), now
    /// awaits `ACK <reference>`.
    async fn await_ack(
        &self,
        sid: &MessageSid,
        reference: &TextRef,
        to: &PhoneNumber,
        at: i64,
    ) -> Result<(), StoreError>;
    /// The message `reference` was reserved for, while the reservation lasts.
    async fn find_ref(
        &self,
        reference: &TextRef,
        now: i64,
    ) -> Result<Option<MessageSid>, StoreError>;
    /// The oldest reference still awaiting its ACK on a text sent to `phone`.
    async fn oldest_open(&self, phone: &PhoneNumber) -> Result<Option<TextRef>, StoreError>;
    /// `awaiting` → `acknowledged`, only while `reference` is the message's current
    /// one and `from` is the phone it went to.
    async fn acknowledge(
        &self,
        sid: &MessageSid,
        reference: &TextRef,
        from: &PhoneNumber,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// `awaiting` (or a retried `escalating`) → `escalating`, only while the message's
    /// current text is `forwarded_sid`: an ACK and a timer racing, one wins (copies of
    /// one timer are then kept to one by the move-on claim).
    async fn begin_escalation(
        &self,
        sid: &MessageSid,
        forwarded_sid: &MessageSid,
        at: i64,
    ) -> Result<bool, StoreError>;
    /// Where message `sid`'s acknowledgement stands: its state and its current text's
    /// reference (default when the message has neither).
    async fn current_ack(&self, sid: &MessageSid) -> Result<CurrentAck, StoreError>;
    /// Sets the message's acknowledgement state (`unacknowledged` past the last tier).
    async fn set_ack_state(&self, sid: &MessageSid, state: AckState) -> Result<(), StoreError>;
    /// `phone` no longer awaits `reference`'s ACK (acknowledged, or moved on). The
    /// reference itself stays reserved until it expires: its text may still be
    /// answered.
    async fn stop_awaiting(
        &self,
        reference: &TextRef,
        phone: &PhoneNumber,
    ) -> Result<(), StoreError>;
}

/// Why an acknowledgement timer was not scheduled.
#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    /// The queue refused the timer or could not be reached; `detail` is the service's
    /// own words, for the log only.
    #[error("the acknowledgement queue did not take the timer: {detail}")]
    Unavailable { queue: String, detail: String },
}

impl TimerError {
    /// What failed, without the service's own text: for alerts.
    pub fn summary(&self) -> String {
        match self {
            TimerError::Unavailable { queue, .. } => {
                format!("SQS SendMessage to {queue} failed")
            }
        }
    }
}

/// Where acknowledgement timers wait (an SQS queue with a delay).
#[async_trait]
pub trait TimerQueue: Send + Sync {
    async fn schedule(&self, timer: &AckTimer, delay_secs: u64) -> Result<(), TimerError>;
}
