//! Moving a relayed text on from the tier that has it to the tiers after: the one
//! piece both the status callback (delivery failed) and the acknowledgement timer (no
//! ACK in time) use. A claim on `move_on#<text SID>` makes it happen once per text,
//! whoever asks and however often, so a text moved on because its delivery failed is
//! never moved on again by its old timer.

use super::RelayError;
use super::acks::Acks;
use super::invalid_numbers;
use relay_core::ack::{AckState, escalation_note};
use relay_core::alert::{Alert, AlertKind};

use crate::alerting::publish_or_log;
use crate::metric;
use relay_core::cascade::{
    Attempt, AttemptOutcome, CascadePlan, CascadePolicy, Tier, cascade_cause, cascade_reason,
    plan_after,
};
use relay_core::claim::{
    ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, RecordKind, RecordState,
};
use relay_core::ids::MessageSid;
use relay_core::phone::CountryCode;
use relay_core::ports::{
    AlertPublisher, ClaimStore, DispatcherStore, Finish, ForwardedMessage, MessageLog, MovedOn,
    SendError, SmsSender,
};
use relay_core::walk::{Relayed, WalkEnd, walk_tiers};

/// Why a text moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveCause {
    /// Twilio reported it `undelivered` / `failed`.
    DeliveryFailed { error_code: Option<u32> },
    /// Nobody acknowledged it within the window.
    NotAcknowledged { window_secs: u64 },
}

impl MoveCause {
    fn attempt(self, forward: &ForwardedMessage) -> Attempt {
        let (outcome, error_code, message) = match self {
            MoveCause::DeliveryFailed { error_code } => {
                (AttemptOutcome::DeliveryFailed, error_code, None)
            }
            MoveCause::NotAcknowledged { window_secs } => (
                AttemptOutcome::NotAcknowledged,
                None,
                Some(format!("not acknowledged within {window_secs}s")),
            ),
        };
        Attempt {
            tier: forward.tier,
            to: forward.to.masked(),
            outcome,
            error_code,
            message,
        }
    }

    /// The alert for a text moved on, and for one that could go nowhere.
    fn alerts(self) -> (AlertKind, AlertKind) {
        match self {
            MoveCause::DeliveryFailed { .. } => (AlertKind::Cascade, AlertKind::Undeliverable),
            MoveCause::NotAcknowledged { .. } => (AlertKind::AckTimeout, AlertKind::Unacknowledged),
        }
    }
}

/// What moving on did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moved {
    /// The text went on to `tier`.
    MovedOn {
        tier: Tier,
        forwarded_sid: MessageSid,
    },
    /// The failed text was the last tier's (or nothing after it could be reached).
    GaveUp,
    /// Someone else is moving (or moved) this text on.
    AlreadyMovedOn,
}

/// The move-on's dependencies, borrowed for one invocation.
pub struct MoveOnService<'a> {
    pub default_country: CountryCode,
    pub dispatchers: &'a dyn DispatcherStore,
    pub claims: &'a dyn ClaimStore,
    pub log: &'a dyn MessageLog,
    pub alerts: &'a dyn AlertPublisher,
    pub sender: &'a dyn SmsSender,
    /// Set when acknowledgement is on: the text that goes on carries a new reference
    /// and starts a new timer.
    pub acks: Option<Acks<'a>>,
}

impl MoveOnService<'_> {
    /// Sends `forward`'s text on to the tiers after its own, once.
    pub async fn move_on(
        &self,
        forward: &ForwardedMessage,
        cause: MoveCause,
        now: i64,
    ) -> Result<Moved, RelayError> {
        let key = ClaimKey::move_on(&forward.sid);
        let owner = ClaimOwner::random();
        let claim = ClaimRequest::new(&key, RecordKind::MoveOn, &owner, now);
        if let ClaimOutcome::Taken(existing) = self.claims.claim(&claim).await? {
            tracing::info!(forwarded_sid = %forward.sid, state = %existing.state, "this text is already being moved on");
            return Ok(Moved::AlreadyMovedOn);
        }
        let finish = |state: RecordState| Finish {
            state,
            response: None,
            detail: None,
            expires_at: forward.expires_at,
        };
        // A claim taken over after its holder sent the text on but could not finish it:
        // the message already points past this text, so it must not go on again.
        match self.log.current_forward(&forward.inbound_sid).await {
            Ok(Some(current)) if current != forward.sid => {
                tracing::info!(forwarded_sid = %forward.sid, current = %current, "this text was already moved on");
                self.finish(&key, &owner, &finish(RecordState::MovedOn))
                    .await;
                return Ok(Moved::AlreadyMovedOn);
            }
            Ok(_) => {}
            Err(e) => {
                let _ = self.claims.release(&key, &owner).await;
                return Err(e.into());
            }
        }
        let (moved_kind, gave_up_kind) = cause.alerts();
        let passed = cause.attempt(forward);
        let record = self.dispatchers.get(&forward.dispatcher_id).await;
        let text = self.log.relay_text(&forward.inbound_sid, now).await;
        let (record, text) = match (record, text) {
            (Ok(Some(record)), Ok(Some(text))) => (record, text),
            (Err(e), _) | (_, Err(e)) => {
                let _ = self.claims.release(&key, &owner).await;
                return Err(e.into());
            }
            (Ok(None), _) | (_, Ok(None)) => {
                let why = format!(
                    "{}; the text can no longer be sent on (its dispatcher item or kept text is gone)",
                    cascade_reason(&CascadePlan::default(), &[passed], None)
                );
                self.give_up(forward, gave_up_kind, cause, &why, now).await;
                self.finish(&key, &owner, &finish(RecordState::GaveUp))
                    .await;
                return Ok(Moved::GaveUp);
            }
        };
        let plan = plan_after(&record, forward.tier, &self.policy());
        // Escalated texts say so, and why.
        let mut body = match cause {
            MoveCause::NotAcknowledged { window_secs } => {
                format!(
                    "{}{}",
                    escalation_note(forward.tier.as_str(), window_secs),
                    text.body
                )
            }
            MoveCause::DeliveryFailed { .. } => text.body.clone(),
        };
        let reference = match &self.acks {
            Some(acks) => match acks
                .reserve(&forward.inbound_sid, now, forward.expires_at)
                .await
            {
                Ok(reference) => {
                    body.push_str(&Acks::instruction(&reference));
                    Some(reference)
                }
                Err(e) => {
                    let _ = self.claims.release(&key, &owner).await;
                    return Err(e.into());
                }
            },
            None => None,
        };
        let relayed = Relayed {
            inbound_sid: &forward.inbound_sid,
            body: &body,
            media_urls: &text.media_urls,
            status_callback: text.status_callback.as_deref(),
        };
        let walk = walk_tiers(self.sender, &plan.targets, relayed).await;
        let mut attempts = vec![passed];
        attempts.extend(walk.attempts);
        match walk.end {
            WalkEnd::Sent { target, sent } => {
                let reason = cascade_reason(&plan, &attempts, Some(target.tier));
                metric::moved_on(target.tier);
                metric::cascaded(cascade_cause(&plan, &attempts, Some(target.tier)));
                let moved = MovedOn {
                    inbound_sid: forward.inbound_sid.clone(),
                    failed_sid: forward.sid.clone(),
                    tier: target.tier,
                    dispatcher_id: forward.dispatcher_id.clone(),
                    cascade_reason: reason.clone(),
                    forwarded_sid: sent.sid.clone(),
                    forwarded_to: target.number.clone(),
                    status: sent.status,
                    attempts,
                    at: now,
                    expires_at: forward.expires_at,
                };
                tracing::info!(
                    routing_decision = target.tier.as_str(),
                    dispatcher_id = %forward.dispatcher_id,
                    cascade_reason = %reason,
                    message_sid = %forward.inbound_sid,
                    forwarded_sid = %sent.sid,
                    forwarded_to = %target.number.masked(),
                    "text moved on"
                );
                if let Err(e) = self.log.record_moved_on(&moved).await {
                    // The text is out: the finished claim below still keeps it from
                    // going on twice.
                    tracing::error!(message_sid = %forward.inbound_sid, error = ?e, "moved on, but the message log could not be written");
                }
                self.finish(&key, &owner, &finish(RecordState::MovedOn))
                    .await;
                if let (Some(acks), Some(reference)) = (&self.acks, &reference) {
                    self.close_old_ref(acks, forward).await;
                    if let Err(e) = acks
                        .sent(
                            &forward.inbound_sid,
                            reference,
                            &sent.sid,
                            &target.number,
                            now,
                        )
                        .await
                    {
                        self.timer_failed(forward, &e, now).await;
                    }
                }
                let mut alert = Alert::new(moved_kind, forward.dispatcher_id.as_str(), reason, now)
                    .for_message(forward.inbound_sid.as_str());
                alert.routing_decision = Some(target.tier.as_str().to_string());
                alert.invalid_numbers = invalid_numbers(&plan);
                publish_or_log(self.alerts, &alert).await;
                Ok(Moved::MovedOn {
                    tier: target.tier,
                    forwarded_sid: sent.sid,
                })
            }
            WalkEnd::Exhausted => {
                let reason = cascade_reason(&plan, &attempts, None);
                self.give_up(forward, gave_up_kind, cause, &reason, now)
                    .await;
                self.finish(&key, &owner, &finish(RecordState::GaveUp))
                    .await;
                Ok(Moved::GaveUp)
            }
            WalkEnd::Stopped(error) => {
                if matches!(error, SendError::OutcomeUnknown { .. }) {
                    // It may be out: never again.
                    self.finish(&key, &owner, &finish(RecordState::OutcomeUnknown))
                        .await;
                } else if let Err(e) = self.claims.release(&key, &owner).await {
                    tracing::error!(forwarded_sid = %forward.sid, error = %e, "could not release the move-on claim");
                }
                let reason = format!(
                    "{}; sending it on failed: {error}",
                    cascade_reason(&plan, &attempts[..1], None)
                );
                self.alert(AlertKind::Undeliverable, forward, &reason, now)
                    .await;
                Err(RelayError::Twilio(error))
            }
        }
    }

    fn policy(&self) -> CascadePolicy {
        CascadePolicy {
            // Not used past the primary: the tiers after one are taken as they are.
            heartbeat_max_age_secs: i64::MAX,
            default_country: self.default_country,
        }
    }

    /// Nothing more can be done: ops are told, the kept text is dropped, and a text
    /// nobody acknowledged is marked so.
    async fn give_up(
        &self,
        forward: &ForwardedMessage,
        kind: AlertKind,
        cause: MoveCause,
        reason: &str,
        now: i64,
    ) {
        self.alert(kind, forward, reason, now).await;
        if let Err(e) = self.log.forget_relay_text(&forward.inbound_sid).await {
            tracing::error!(message_sid = %forward.inbound_sid, error = ?e, "could not drop the kept text; it expires with the message");
        }
        if let Some(acks) = &self.acks {
            self.close_old_ref(acks, forward).await;
            if let MoveCause::NotAcknowledged { .. } = cause
                && let Err(e) = acks
                    .store
                    .set_ack_state(&forward.inbound_sid, AckState::Unacknowledged)
                    .await
            {
                tracing::error!(message_sid = %forward.inbound_sid, error = ?e, "could not mark the message unacknowledged");
            }
        }
    }

    /// The reference of the text that was moved on no longer names an open text.
    async fn close_old_ref(&self, acks: &Acks<'_>, forward: &ForwardedMessage) {
        let Ok(Some(reference)) = acks.store.current_ref(&forward.inbound_sid).await else {
            return;
        };
        if let Err(e) = acks.store.close_ref(&reference, &forward.to).await {
            tracing::error!(message_sid = %forward.inbound_sid, error = ?e, "could not close the old reference");
        }
    }

    async fn timer_failed(&self, forward: &ForwardedMessage, error: &str, now: i64) {
        let reason = format!(
            "the text went on, but its acknowledgement timer could not be started ({error}); it will not escalate by itself"
        );
        self.alert(AlertKind::Undeliverable, forward, &reason, now)
            .await;
    }

    async fn alert(&self, kind: AlertKind, forward: &ForwardedMessage, reason: &str, now: i64) {
        tracing::error!(message_sid = %forward.inbound_sid, forwarded_sid = %forward.sid, dispatcher_id = %forward.dispatcher_id, alert_type = kind.as_str(), reason, "text could not be moved on as it should");
        let alert = Alert::new(kind, forward.dispatcher_id.as_str(), reason, now)
            .for_message(forward.inbound_sid.as_str());
        publish_or_log(self.alerts, &alert).await;
    }

    async fn finish(&self, key: &ClaimKey, owner: &ClaimOwner, finish: &Finish<'_>) {
        if let Err(e) = self.claims.finish(key, owner, finish).await {
            tracing::error!(key = %key, error = %e, "could not finish the move-on claim");
        }
    }
}
