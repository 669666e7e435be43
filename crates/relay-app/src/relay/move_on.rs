//! Moving a relayed text on from the tier that has it to the tiers after: the one
//! piece both the status callback (delivery failed) and the acknowledgement timer (no
//! ACK in time) use. A claim on `move_on#<text SID>` makes it happen once per text,
//! whoever asks and however often, so a text moved on because its delivery failed is
//! never moved on again by its old timer. The send itself is the relay's one sequence
//! ([`super::forwarding`]).

use relay_core::ack::{AckState, escalation_note, redelivery_note, repeat_note};
use relay_core::alert::{Alert, AlertKind};
use relay_core::cascade::{
    Attempt, AttemptOutcome, CascadePlan, CascadePolicy, Tier, cascade_reason, plan_after,
    plan_cascade,
};
use relay_core::claim::{ClaimKey, ClaimOutcome, ClaimRequest, RecordKind, RecordState};
use relay_core::fate::Unreached;
use relay_core::ids::{DispatcherId, MessageSid};
use relay_core::phone::CountryCode;
use relay_core::ports::ForwardedMessage;

use super::forwarding::{Held, MovingOn, Outgoing, Sending, Sent, finished, stop_awaiting_old};
use super::{RelayError, RelayPorts, primary_record};
use crate::alerting::publish_or_log;

/// Why a text moves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveCause {
    /// Twilio reported it `undelivered` / `failed`.
    DeliveryFailed { error_code: Option<u32> },
    /// Nobody acknowledged it within the window.
    NotAcknowledged { window_secs: u64 },
    /// It reached nobody, and an operator sends it again (`qdn redeliver`): from the
    /// primary now, under the claim of its `nth` redelivery.
    Redelivered { nth: u32, received_at: i64 },
}

impl MoveCause {
    /// The try this move starts from, for the trail (a redelivery adds none: the
    /// failure is on the trail already).
    fn attempt(self, forward: &ForwardedMessage) -> Option<Attempt> {
        let (outcome, error_code, message) = match self {
            MoveCause::DeliveryFailed { error_code } => {
                (AttemptOutcome::DeliveryFailed, error_code, None)
            }
            MoveCause::NotAcknowledged { window_secs } => (
                AttemptOutcome::NotAcknowledged,
                None,
                Some(format!("not acknowledged within {window_secs}s")),
            ),
            MoveCause::Redelivered { .. } => return None,
        };
        Some(Attempt {
            tier: forward.tier,
            to: forward.to.masked(),
            outcome,
            error_code,
            message,
        })
    }

    /// The claim that makes this move happen once.
    fn claim(self, forward: &ForwardedMessage) -> (ClaimKey, RecordKind) {
        match self {
            MoveCause::Redelivered { nth, .. } => (
                ClaimKey::redelivery(&forward.inbound_sid, nth),
                RecordKind::Redelivery,
            ),
            _ => (ClaimKey::move_on(&forward.sid), RecordKind::MoveOn),
        }
    }

    pub(crate) fn is_redelivery(self) -> bool {
        matches!(self, MoveCause::Redelivered { .. })
    }

    /// How the move's claim ends once the text went on.
    pub(crate) fn moved_state(self) -> RecordState {
        match self {
            MoveCause::Redelivered { .. } => RecordState::Redelivered,
            _ => RecordState::MovedOn,
        }
    }

    /// The alert for a text moved on to `tier`: a redelivery alerts only a cascade,
    /// as the webhook does.
    pub(crate) fn moved_alert(self, tier: Tier) -> Option<AlertKind> {
        match self {
            MoveCause::DeliveryFailed { .. } => Some(AlertKind::Cascade),
            MoveCause::NotAcknowledged { .. } => Some(AlertKind::AckTimeout),
            MoveCause::Redelivered { .. } => (tier != Tier::Primary).then_some(AlertKind::Cascade),
        }
    }

    /// How a text that could go nowhere after its tier ended, and its alert.
    fn gave_up(self) -> (Unreached, AlertKind) {
        match self {
            MoveCause::DeliveryFailed { .. } | MoveCause::Redelivered { .. } => {
                (Unreached::Undeliverable, AlertKind::Undeliverable)
            }
            MoveCause::NotAcknowledged { .. } => {
                (Unreached::Unacknowledged, AlertKind::Unacknowledged)
            }
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
    /// Tiers naming a dispatcher are skipped while that dispatcher is not available.
    pub heartbeat_max_age_secs: i64,
    /// A text nobody acknowledged past its last tier starts again at whoever is
    /// primary now, this many more rounds (`ESCALATION_REPEATS`).
    pub repeats: Repeats<'a>,
    /// With acknowledgement on (`acks`), the text that goes on carries a new
    /// reference and starts a new timer.
    pub ports: RelayPorts<'a>,
}

/// `ESCALATION_REPEATS`, and who is primary when no rota says.
#[derive(Debug, Clone, Copy)]
pub struct Repeats<'a> {
    pub rounds: u32,
    pub fallback_primary: &'a DispatcherId,
}

impl MoveOnService<'_> {
    /// Sends `forward`'s text on to the tiers after its own, once.
    pub async fn move_on(
        &self,
        forward: &ForwardedMessage,
        cause: MoveCause,
        now: i64,
    ) -> Result<Moved, RelayError> {
        let ports = &self.ports;
        let (key, kind) = cause.claim(forward);
        let claim = Held::new(key);
        let mut request = ClaimRequest::new(&claim.key, kind, &claim.owner, now);
        if cause.is_redelivery() {
            // An operator may try again after a redelivery whose outcome was unknown.
            request = request.reclaiming(RecordState::OutcomeUnknown);
        }
        if let ClaimOutcome::Taken(existing) = ports.claims.claim(&request).await? {
            tracing::info!(forwarded_sid = %forward.sid, state = %existing.state, "this text is already being moved on");
            return Ok(Moved::AlreadyMovedOn);
        }
        let result = self.move_on_claimed(forward, cause, &claim, now).await;
        if let Err(error) = &result {
            // Unless the text may already be out (then the claim is finished), give
            // the claim back so a redelivered callback or timer can move it on.
            if !error.may_have_sent() {
                ports.release(&claim).await;
            }
            // A store that failed on the way is retried by the redelivery; Twilio's
            // refusal or silence needs a person.
            if let RelayError::Twilio(send_error) = error {
                let passed: Vec<Attempt> = cause.attempt(forward).into_iter().collect();
                let reason = format!(
                    "{}; sending it on failed: {send_error}",
                    cascade_reason(&CascadePlan::default(), &passed, None)
                );
                self.alert(AlertKind::Undeliverable, forward, &reason, now)
                    .await;
            }
        }
        result
    }

    async fn move_on_claimed(
        &self,
        forward: &ForwardedMessage,
        cause: MoveCause,
        claim: &Held,
        now: i64,
    ) -> Result<Moved, RelayError> {
        let ports = &self.ports;
        // A claim taken over after its holder sent the text on but could not finish it:
        // the message already points past this text, so it must not go on again.
        if let Some(current) = ports.log.current_forward(&forward.inbound_sid).await?
            && current != forward.sid
        {
            tracing::info!(forwarded_sid = %forward.sid, current = %current, "this text was already moved on");
            ports
                .finish(claim, &finished(RecordState::MovedOn, forward.expires_at))
                .await;
            return Ok(Moved::AlreadyMovedOn);
        }
        let passed: Vec<Attempt> = cause.attempt(forward).into_iter().collect();
        let (roster, text) = tokio::join!(
            ports.dispatchers.roster(),
            ports.log.relay_text(&forward.inbound_sid, now)
        );
        let roster = roster?;
        let (Some(record), Some(text)) = (roster.record(&forward.dispatcher_id), text?) else {
            let why = format!(
                "{}; the text can no longer be sent on (its dispatcher item or kept text is gone)",
                cascade_reason(&CascadePlan::default(), &passed, None)
            );
            self.give_up(forward, cause, claim, &why, now).await;
            return Ok(Moved::GaveUp);
        };
        let policy = self.policy();
        let mut plan = plan_after(record, forward.tier, &roster, now, &policy);
        let mut round = forward.round;
        let mut dispatcher = record.clone();
        let mut restart = None;
        // An operator's redelivery starts at whoever is primary now, as a new text.
        if let MoveCause::Redelivered { .. } = cause {
            let primary = primary_record(&roster, self.repeats.fallback_primary, now)?;
            plan = plan_cascade(&primary, &roster, now, &policy);
            restart = Some("sent again by an operator".to_string());
            dispatcher = primary;
        }
        // Past the last tier with rounds left: again from whoever is primary now.
        if let MoveCause::NotAcknowledged { window_secs } = cause
            && plan.targets.is_empty()
            && forward.round < self.repeats.rounds
        {
            let primary = primary_record(&roster, self.repeats.fallback_primary, now)?;
            round = forward.round + 1;
            plan = plan_cascade(&primary, &roster, now, &policy);
            restart = Some(format!(
                "round {} of {}: nobody acknowledged it at any tier within {window_secs}s",
                round + 1,
                self.repeats.rounds + 1
            ));
            dispatcher = primary;
        }
        // Escalated texts say so, and why.
        let body = match (cause, &restart) {
            (MoveCause::NotAcknowledged { window_secs }, Some(_)) => format!(
                "{}{}",
                repeat_note(round + 1, self.repeats.rounds + 1, window_secs),
                text.body
            ),
            (MoveCause::NotAcknowledged { window_secs }, None) => format!(
                "{}{}",
                escalation_note(forward.tier.as_str(), window_secs),
                text.body
            ),
            (MoveCause::Redelivered { received_at, .. }, _) => {
                format!("{}{}", redelivery_note(now - received_at), text.body)
            }
            (MoveCause::DeliveryFailed { .. }, _) => text.body.clone(),
        };
        let out = Outgoing {
            origin: MovingOn {
                forward,
                cause,
                round,
            },
            sending: Sending {
                claim,
                inbound_sid: &forward.inbound_sid,
                dispatcher_id: &dispatcher.dispatcher_id,
                plan: &plan,
                passed,
                restart,
                body,
                driver: text.driver.as_ref(),
                media_urls: &text.media_urls,
                status_callback: text.status_callback.as_deref(),
                expires_at: forward.expires_at,
            },
        };
        match ports.send(&out, now).await? {
            Sent::To {
                tier,
                forwarded_sid,
            } => Ok(Moved::MovedOn {
                tier,
                forwarded_sid,
            }),
            Sent::NoTier { reason } => {
                self.give_up(forward, cause, claim, &reason, now).await;
                Ok(Moved::GaveUp)
            }
        }
    }

    fn policy(&self) -> CascadePolicy {
        CascadePolicy {
            heartbeat_max_age_secs: self.heartbeat_max_age_secs,
            default_country: self.default_country,
        }
    }

    /// Nothing more can be done: ops are told, the text is listed as reached nobody
    /// (its words kept for `qdn redeliver`), a text nobody acknowledged is marked so,
    /// and the claim is finished (a redelivery's is given back, so the operator can
    /// try again once the cause is mended).
    async fn give_up(
        &self,
        forward: &ForwardedMessage,
        cause: MoveCause,
        claim: &Held,
        reason: &str,
        now: i64,
    ) {
        let ports = &self.ports;
        let (fate, alert) = cause.gave_up();
        self.alert(alert, forward, reason, now).await;
        if let Err(e) = ports
            .log
            .mark_unreached(&forward.inbound_sid, fate, reason, now)
            .await
        {
            tracing::error!(message_sid = %forward.inbound_sid, error = %e, "the text reached nobody, and that could not be recorded");
        }
        if let Some(acks) = &ports.acks {
            stop_awaiting_old(acks, forward).await;
            if let MoveCause::NotAcknowledged { .. } = cause
                && let Err(e) = acks
                    .store
                    .set_ack_state(&forward.inbound_sid, AckState::Unacknowledged)
                    .await
            {
                tracing::error!(message_sid = %forward.inbound_sid, error = %e, "could not mark the message unacknowledged");
            }
        }
        if cause.is_redelivery() {
            ports.release(claim).await;
        } else {
            ports
                .finish(claim, &finished(RecordState::GaveUp, forward.expires_at))
                .await;
        }
    }

    async fn alert(&self, kind: AlertKind, forward: &ForwardedMessage, reason: &str, now: i64) {
        tracing::error!(message_sid = %forward.inbound_sid, forwarded_sid = %forward.sid, dispatcher_id = %forward.dispatcher_id, alert_type = kind.as_str(), reason, "text could not be moved on as it should");
        let alert =
            Alert::new(kind, &forward.dispatcher_id, reason, now).for_message(&forward.inbound_sid);
        publish_or_log(self.ports.alerts, &alert).await;
    }
}
