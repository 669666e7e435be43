//! Acknowledgement, the service: the timer that escalates a relayed text, and `ACK`
//! from the phone the text went to (the text's reference is [`super::replies`]'). On only when
//! `ACK_QUEUE_URL` is set; everything else behaves as without it.

use crate::clock::unix_millis;
use crate::config::AckSettings;
use relay_core::ack::AckTimer;
use relay_core::ids::MessageSid;
use relay_core::phone::PhoneNumber;
use relay_core::ports::{AckStore, StoreError, TimerError, TimerQueue};
use relay_core::reference::TextRef;

/// Why acknowledgement could not do its part for a text.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Timer(#[from] TimerError),
}

impl AckError {
    /// What failed, without a service's own text: for alerts and answers.
    pub fn summary(&self) -> String {
        match self {
            AckError::Store(e) => e.summary(),
            AckError::Timer(e) => e.summary(),
        }
    }
}

/// What an `ACK` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    Acknowledged {
        reference: TextRef,
        message_sid: MessageSid,
    },
    /// The word after ACK is no open reference (unknown, closed, or not ours at all).
    UnknownReference(String),
    /// The reference is live, but its text does not await this phone's ACK (another
    /// phone's, acknowledged already, or escalated).
    NotYours(TextRef),
    /// A bare ACK from a phone with no open text.
    NothingOpen,
}

impl AckOutcome {
    /// The one-line TwiML answer to the dispatcher.
    pub fn reply(&self) -> String {
        match self {
            AckOutcome::Acknowledged { reference, .. } => {
                format!("QDN relay: {reference} acknowledged. Thank you.")
            }
            AckOutcome::UnknownReference(word) => {
                format!("QDN relay: no open message {word}; nothing changed.")
            }
            AckOutcome::NotYours(r) => format!(
                "QDN relay: {r} is not awaiting your ACK (already acknowledged, escalated, or another phone's); nothing changed."
            ),
            AckOutcome::NothingOpen => {
                "QDN relay: no message awaits your ACK; nothing changed.".to_string()
            }
        }
    }
}

/// The acknowledgement machinery, borrowed for one invocation.
#[derive(Clone, Copy)]
pub struct Acks<'a> {
    pub settings: &'a AckSettings,
    pub store: &'a dyn AckStore,
    pub timers: &'a dyn TimerQueue,
}

impl Acks<'_> {
    /// The text went out to `to`: it now awaits its ACK, and its timer starts. A timer
    /// that cannot be scheduled is an error for the caller to alert on: without it
    /// nothing escalates the text.
    pub async fn sent(
        &self,
        sid: &MessageSid,
        reference: &TextRef,
        forwarded_sid: &MessageSid,
        to: &PhoneNumber,
        now: i64,
    ) -> Result<(), AckError> {
        // Milliseconds: a bare ACK takes the oldest, even of texts sent the same second.
        self.store
            .await_ack(sid, reference, to, unix_millis())
            .await?;
        let timer = AckTimer {
            inbound_sid: sid.clone(),
            forwarded_sid: forwarded_sid.clone(),
            ack_ref: reference.clone(),
            sent_at: now,
        };
        self.timers
            .schedule(&timer, self.settings.timeout_secs)
            .await?;
        tracing::info!(message_sid = %sid, forwarded_sid = %forwarded_sid, ack_ref = %reference, to = %to.masked(), window_secs = self.settings.timeout_secs, "awaiting acknowledgement");
        Ok(())
    }

    /// `ACK [word]` from `from`: acknowledges the named (or oldest open) text sent to
    /// that phone, if it is still awaiting its ACK.
    pub async fn acknowledge(
        &self,
        from: &PhoneNumber,
        word: Option<&str>,
        now: i64,
    ) -> Result<AckOutcome, StoreError> {
        let reference = match word {
            Some(word) => match TextRef::parse(word) {
                Some(reference) => reference,
                None => return Ok(AckOutcome::UnknownReference(word.to_string())),
            },
            None => match self.store.oldest_open(from).await? {
                Some(reference) => reference,
                None => return Ok(AckOutcome::NothingOpen),
            },
        };
        let Some(sid) = self.store.find_ref(&reference, now).await? else {
            return Ok(AckOutcome::UnknownReference(reference.to_string()));
        };
        if !self.store.acknowledge(&sid, &reference, from, now).await? {
            return Ok(AckOutcome::NotYours(reference));
        }
        self.store.stop_awaiting(&reference, from).await?;
        tracing::info!(message_sid = %sid, ack_ref = %reference, from = %from.masked(), "acknowledged");
        Ok(AckOutcome::Acknowledged {
            reference,
            message_sid: sid,
        })
    }
}
