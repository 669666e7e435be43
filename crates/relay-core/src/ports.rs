//! The narrow interfaces the handlers use, so the DynamoDB, SNS and Twilio adapters
//! can be swapped for in-memory ones in tests.

use async_trait::async_trait;
use serde::Serialize;

use crate::alert::Alert;
use crate::cascade::Tier;
use crate::dispatcher::DispatcherRecord;
use crate::ids::{DispatcherId, MessageSid};
use crate::phone::PhoneNumber;

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
}

#[async_trait]
pub trait DispatcherStore: Send + Sync {
    async fn get(&self, id: &DispatcherId) -> Result<Option<DispatcherRecord>, StoreError>;
    /// Every dispatcher item; items that do not parse are returned as errors in place.
    async fn all(&self) -> Result<Vec<Result<DispatcherRecord, StoreError>>, StoreError>;
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
}

/// What an earlier delivery of the same webhook left in the message log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This invocation owns the message until it records an outcome or releases it.
    Acquired,
    /// Another invocation is handling it right now.
    InProgress,
    /// Already handled; `state` is the recorded outcome (`forwarded`, `command`, ...).
    AlreadyHandled { state: String },
}

/// One try at one tier, kept on the message-log item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub tier: Tier,
    /// Masked: the full number is on the item's `forwarded_to` when it worked.
    pub to: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
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
    pub forwarded_status: String,
    pub num_media: usize,
    pub body_truncated: bool,
    pub attempts: Vec<Attempt>,
    pub received_at: i64,
    pub forwarded_at: i64,
    /// `received_at + message_log_ttl` of the dispatcher routed through.
    pub expires_at: i64,
}

/// The outcome of a dispatcher's keyword command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub inbound_sid: MessageSid,
    pub command: String,
    pub dispatcher_ids: Vec<DispatcherId>,
    pub received_at: i64,
    pub expires_at: i64,
}

#[async_trait]
pub trait MessageLog: Send + Sync {
    /// Claims `sid` atomically: exactly one of any number of concurrent callers gets
    /// `Acquired`. A claim older than `lock_secs` is abandoned and may be taken over.
    async fn claim(&self, sid: &MessageSid, now: i64, lock_secs: i64) -> Result<Claim, StoreError>;
    /// Drops an in-progress claim so a redelivery can forward the message.
    async fn release(&self, sid: &MessageSid) -> Result<(), StoreError>;
    /// Records a forwarded message: the inbound item becomes `forwarded`, and an item
    /// keyed by the forwarded message's SID points back to it for status callbacks.
    async fn record_forwarded(&self, record: &ForwardRecord) -> Result<(), StoreError>;
    async fn record_command(&self, record: &CommandRecord) -> Result<(), StoreError>;
    /// Marks a message whose send had no answer, so a redelivery does not send again.
    async fn record_outcome_unknown(
        &self,
        sid: &MessageSid,
        detail: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;
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
    pub status: String,
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

#[derive(Debug, thiserror::Error)]
#[error("publishing the {kind} alert failed: {detail}")]
pub struct AlertError {
    pub kind: &'static str,
    pub detail: String,
}

#[async_trait]
pub trait AlertPublisher: Send + Sync {
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError>;
}
