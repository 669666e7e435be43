//! Acknowledgement, the service: references on relayed texts, the timer that
//! escalates them, and `ACK` from the phone a text went to. On only when
//! `ACK_QUEUE_URL` is set; everything else behaves as without it.

use crate::clock::unix_millis;
use crate::config::AckSettings;
use relay_core::ack::{AckRef, AckTimer, ack_instruction};
use relay_core::ids::MessageSid;
use relay_core::phone::PhoneNumber;
use relay_core::ports::{AckStore, StoreError, TimerError, TimerQueue};

/// How many random references to try before giving up on finding a free one (with
/// 32,768 of them, only a relay with thousands of open messages gets near it).
const REF_TRIES: usize = 20;

/// Why acknowledgement could not do its part for a text.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Every reference tried is held by an open text: thousands of texts are open, or
    /// references are not being closed.
    #[error("no free acknowledgement reference in {tries} tries")]
    NoFreeReference { tries: usize },
    #[error(transparent)]
    Timer(#[from] TimerError),
}

impl AckError {
    /// What failed, without a service's own text: for alerts and answers.
    pub fn summary(&self) -> String {
        match self {
            AckError::Store(e) => e.summary(),
            AckError::NoFreeReference { .. } => self.to_string(),
            AckError::Timer(e) => e.summary(),
        }
    }
}

/// What an `ACK` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    Acknowledged {
        reference: AckRef,
        message_sid: MessageSid,
    },
    /// The word after ACK is no open reference (unknown, closed, or not ours at all).
    UnknownReference(String),
    /// The reference is open, but on a text to another phone (or it was escalated).
    NotYours(AckRef),
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
                "QDN relay: {r} is not awaiting your ACK (another phone's, or already escalated); nothing changed."
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
    /// A reference for a text about to go out for message `sid`, free among the
    /// messages still open.
    pub async fn reserve(
        &self,
        sid: &MessageSid,
        now: i64,
        expires_at: i64,
    ) -> Result<AckRef, AckError> {
        for _ in 0..REF_TRIES {
            let reference = AckRef::random();
            if self
                .store
                .reserve_ref(&reference, sid, now, expires_at)
                .await?
            {
                return Ok(reference);
            }
        }
        Err(AckError::NoFreeReference { tries: REF_TRIES })
    }

    /// The last line of the text.
    pub fn instruction(reference: &AckRef) -> String {
        ack_instruction(reference)
    }

    /// The text went out to `to`: it now awaits its ACK, and its timer starts. A timer
    /// that cannot be scheduled is an error for the caller to alert on: without it
    /// nothing escalates the text.
    pub async fn sent(
        &self,
        sid: &MessageSid,
        reference: &AckRef,
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
            Some(word) => match AckRef::parse(word) {
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
        self.store.close_ref(&reference, from).await?;
        tracing::info!(message_sid = %sid, ack_ref = %reference, from = %from.masked(), "acknowledged");
        Ok(AckOutcome::Acknowledged {
            reference,
            message_sid: sid,
        })
    }
}
