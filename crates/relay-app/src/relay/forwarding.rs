//! Sending a driver's text to a dispatcher: the one sequence every path takes, whether
//! the text is new (the webhook), moves on after a failed delivery (a status callback)
//! or is escalated because nobody acknowledged it (an ACK timer). It reserves the
//! text's reference, walks the tiers of a plan, records what went out, finishes the
//! claim the text goes out under, opens the conversation its dispatcher may answer,
//! arms the acknowledgement timer and alerts.

use std::future::Future;

use relay_core::ack::CurrentAck;
use relay_core::alert::{Alert, AlertKind};
use relay_core::cascade::{
    Attempt, CascadePlan, SkipReason, Target, Tier, cascade_cause, cascade_reason,
};
use relay_core::claim::{ClaimKey, ClaimOwner, RecordState};
use relay_core::conversation::Driver;
use relay_core::fate::Unreached;
use relay_core::ids::{DispatcherId, MessageSid};
use relay_core::ports::{
    Finish, ForwardRecord, ForwardedMessage, MovedOn, RelayText, SentSms, UnreachedRecord,
};
use relay_core::reference::reference_lines;
use relay_core::sms::InboundSms;
use relay_core::walk::{Relayed, WalkEnd, walk_tiers};

use super::acks::Acks;
use super::move_on::MoveCause;
use super::{RelayError, RelayPorts};
use crate::alerting::publish_or_log;
use crate::metric;

/// A claim this invocation holds: the text goes out under it, once.
#[derive(Debug, Clone)]
pub struct Held {
    pub key: ClaimKey,
    pub owner: ClaimOwner,
}

impl Held {
    pub fn new(key: ClaimKey) -> Self {
        Held {
            key,
            owner: ClaimOwner::random(),
        }
    }
}

/// Where the text comes from, which decides how what went out is recorded. Generic
/// rather than an enum, so a function that only moves texts on (`ack-timeout`) does
/// not carry the first forward's code.
pub trait Origin {
    /// The already relayed text this one moves on from, if any.
    fn moving_on(&self) -> Option<&ForwardedMessage>;

    /// Writes what went out and finishes the claim; the alert the send calls for, if
    /// any. A write that fails is logged, never fatal: the text is out, and failing now
    /// would send it again.
    fn record(
        &self,
        ports: &RelayPorts<'_>,
        out: &Sending<'_>,
        went: Went<'_>,
    ) -> impl Future<Output = Option<AlertKind>> + Send;

    /// The text reached nobody (`fate`, `reason`): recorded so, its words kept for
    /// `qdn redeliver`. A send whose outcome is unknown also ends the claim, so
    /// nothing but an operator sends the text again. A write that fails is logged.
    fn unreached(
        &self,
        ports: &RelayPorts<'_>,
        out: &Sending<'_>,
        fate: Unreached,
        reason: &str,
        now: i64,
    ) -> impl Future<Output = ()> + Send;
}

/// A driver's text, relayed for the first time under its inbound claim (or sent
/// again by an operator under the same claim, when its first try reached nobody);
/// the text is kept (with its media and callback) until someone gets it.
pub struct FirstForward<'a> {
    pub sms: &'a InboundSms,
    pub kept: RelayText,
    pub body_truncated: bool,
    /// When the driver's text first arrived (the webhook's own `now`, unless this
    /// is a redelivery).
    pub received_at: i64,
    /// Set for an operator's redelivery: the redeliveries it will have had.
    pub redeliveries: Option<u32>,
}

/// A relayed text moving on to the tiers after its own, under its move-on claim.
pub struct MovingOn<'a> {
    pub forward: &'a ForwardedMessage,
    pub cause: MoveCause,
    /// The round of the cascade the text goes on in (one more than `forward`'s when
    /// it starts again at the primary).
    pub round: u32,
}

/// What went out, for [`Origin::record`].
pub struct Went<'a> {
    pub target: &'a Target,
    pub sent: &'a SentSms,
    pub reason: &'a str,
    pub attempts: Vec<Attempt>,
    pub now: i64,
}

impl Origin for FirstForward<'_> {
    fn moving_on(&self) -> Option<&ForwardedMessage> {
        None
    }

    async fn record(
        &self,
        ports: &RelayPorts<'_>,
        out: &Sending<'_>,
        went: Went<'_>,
    ) -> Option<AlertKind> {
        let tier = went.target.tier;
        let record = ForwardRecord {
            inbound_sid: self.sms.sid.clone(),
            from: self.sms.from.clone(),
            to: self.sms.to.clone(),
            routing_decision: tier,
            dispatcher_id: out.dispatcher_id.clone(),
            cascade_reason: went.reason.to_string(),
            forwarded_sid: went.sent.sid.clone(),
            forwarded_to: went.target.number.clone(),
            forwarded_status: went.sent.status,
            relay: self.kept.clone(),
            body_truncated: self.body_truncated,
            attempts: went.attempts,
            received_at: self.received_at,
            forwarded_at: went.now,
            expires_at: out.expires_at,
            redeliveries: self.redeliveries,
        };
        // The inbound claim becomes the forwarded record in the same write.
        if let Err(e) = ports.log.record_forwarded(&record, &out.claim.owner).await {
            tracing::error!(message_sid = %self.sms.sid, forwarded_sid = %went.sent.sid, error = %e, "message forwarded but the message log could not be written");
        }
        (tier != Tier::Primary).then_some(AlertKind::Cascade)
    }

    async fn unreached(
        &self,
        ports: &RelayPorts<'_>,
        out: &Sending<'_>,
        fate: Unreached,
        reason: &str,
        _now: i64,
    ) {
        let record = UnreachedRecord {
            inbound_sid: self.sms.sid.clone(),
            from: self.sms.from.clone(),
            to: self.sms.to.clone(),
            dispatcher_id: out.dispatcher_id.clone(),
            fate,
            reason: reason.to_string(),
            relay: self.kept.clone(),
            body_truncated: self.body_truncated,
            received_at: self.received_at,
            expires_at: out.expires_at,
            redeliveries: self.redeliveries.map_or(0, |n| n - 1),
        };
        // The claim becomes the record: given back when undeliverable (a retry may
        // send it), finished when the text may be out.
        if let Err(e) = ports.log.record_unreached(&record, &out.claim.owner).await {
            tracing::error!(message_sid = %self.sms.sid, fate = fate.as_str(), error = %e, "the text reached nobody, and that could not be recorded");
            if fate == Unreached::OutcomeUnknown {
                ports
                    .finish(out.claim, &outcome_unknown(reason, out.expires_at))
                    .await;
            }
        }
    }
}

/// The claim's end after a send whose outcome is unknown.
fn outcome_unknown(detail: &str, expires_at: i64) -> Finish<'_> {
    Finish {
        state: RecordState::OutcomeUnknown,
        response: None,
        detail: Some(detail),
        expires_at,
    }
}

impl Origin for MovingOn<'_> {
    fn moving_on(&self) -> Option<&ForwardedMessage> {
        Some(self.forward)
    }

    async fn record(
        &self,
        ports: &RelayPorts<'_>,
        out: &Sending<'_>,
        went: Went<'_>,
    ) -> Option<AlertKind> {
        let forward = self.forward;
        let moved = MovedOn {
            inbound_sid: forward.inbound_sid.clone(),
            failed_sid: forward.sid.clone(),
            tier: went.target.tier,
            dispatcher_id: out.dispatcher_id.clone(),
            cascade_reason: went.reason.to_string(),
            forwarded_sid: went.sent.sid.clone(),
            forwarded_to: went.target.number.clone(),
            status: went.sent.status,
            attempts: went.attempts,
            at: went.now,
            expires_at: out.expires_at,
            round: self.round,
            redelivered: self.cause.is_redelivery(),
        };
        if let Err(e) = ports.log.record_moved_on(&moved).await {
            // The finished claim below still keeps it from going on twice.
            tracing::error!(message_sid = %forward.inbound_sid, error = %e, "moved on, but the message log could not be written");
        }
        ports
            .finish(
                out.claim,
                &finished(self.cause.moved_state(), out.expires_at),
            )
            .await;
        self.cause.moved_alert(went.target.tier)
    }

    async fn unreached(
        &self,
        ports: &RelayPorts<'_>,
        out: &Sending<'_>,
        fate: Unreached,
        reason: &str,
        now: i64,
    ) {
        let inbound_sid = &self.forward.inbound_sid;
        if let Err(e) = ports
            .log
            .mark_unreached(inbound_sid, fate, reason, now)
            .await
        {
            tracing::error!(message_sid = %inbound_sid, fate = fate.as_str(), error = %e, "the text reached nobody, and that could not be recorded");
        }
        if fate == Unreached::OutcomeUnknown {
            ports
                .finish(out.claim, &outcome_unknown(reason, out.expires_at))
                .await;
        }
    }
}

/// One text on its way: where it comes from, and how it goes.
pub struct Outgoing<'a, O: Origin> {
    pub origin: O,
    pub sending: Sending<'a>,
}

/// How a text goes out, whatever its origin.
pub struct Sending<'a> {
    pub claim: &'a Held,
    pub inbound_sid: &'a MessageSid,
    /// The dispatcher item the cascade started from.
    pub dispatcher_id: &'a DispatcherId,
    pub plan: &'a CascadePlan,
    /// What came before this walk: the failed or unacknowledged try, when moving on.
    pub passed: Vec<Attempt>,
    /// Why this walk starts over at the primary (a repeated round), said first in the
    /// cascade reason.
    pub restart: Option<String>,
    /// The text as the dispatcher reads it, before its reference lines.
    pub body: String,
    /// Its driver, when they can be answered by text.
    pub driver: Option<&'a Driver>,
    pub media_urls: &'a [String],
    pub status_callback: Option<&'a str>,
    /// When the message's log items expire.
    pub expires_at: i64,
}

/// How the walk ended, when nothing failed on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    To {
        tier: Tier,
        forwarded_sid: MessageSid,
    },
    /// No tier of the plan took it; `reason` says why, tier by tier.
    NoTier { reason: String },
}

impl RelayPorts<'_> {
    /// Sends `out` down its plan. On an error the claim is the caller's to give back,
    /// except after a send whose outcome is unknown: then it is finished here as
    /// `outcome_unknown`, so nothing sends the text again.
    pub(crate) async fn send<O: Origin>(
        &self,
        outgoing: &Outgoing<'_, O>,
        now: i64,
    ) -> Result<Sent, RelayError> {
        let result = self.walk_and_record(outgoing, now).await;
        if let Err(error) = &result {
            let fate = if error.may_have_sent() {
                Unreached::OutcomeUnknown
            } else {
                Unreached::Undeliverable
            };
            outgoing
                .origin
                .unreached(self, &outgoing.sending, fate, &error.to_string(), now)
                .await;
        }
        result
    }

    async fn walk_and_record<O: Origin>(
        &self,
        outgoing: &Outgoing<'_, O>,
        now: i64,
    ) -> Result<Sent, RelayError> {
        let Outgoing { origin, sending } = outgoing;
        let out = sending;
        let reference = self.replies.reserve(out.inbound_sid, now).await?;
        let body = format!(
            "{}{}",
            out.body,
            reference_lines(&reference, self.acks.is_some())
        );
        let text = Relayed {
            inbound_sid: out.inbound_sid,
            body: &body,
            media_urls: out.media_urls,
            status_callback: out.status_callback,
        };
        let walk = walk_tiers(self.sender, &out.plan.targets, text).await;
        let mut attempts = out.passed.clone();
        attempts.extend(walk.attempts);
        let (target, sent) = match walk.end {
            WalkEnd::Sent { target, sent } => (target, sent),
            WalkEnd::Exhausted => {
                let reason = cascade_reason(out.plan, &attempts, None);
                return Ok(Sent::NoTier { reason });
            }
            // Recorded by `send`, as every error is.
            WalkEnd::Stopped(error) => return Err(RelayError::Twilio(error)),
        };
        let tier = target.tier;
        let reason = cascade_reason(out.plan, &attempts, Some(tier));
        let reason = match &out.restart {
            Some(why) => format!("{why}; {reason}"),
            None => reason,
        };
        let moved_on = origin.moving_on().is_some();
        if moved_on {
            metric::moved_on(tier);
        } else {
            metric::relayed(tier);
        }
        if moved_on || tier != Tier::Primary {
            metric::cascaded(cascade_cause(out.plan, &attempts, Some(tier)));
        }
        tracing::info!(
            routing_decision = tier.as_str(),
            dispatcher_id = %out.dispatcher_id,
            cascade_reason = %reason,
            message_sid = %out.inbound_sid,
            forwarded_sid = %sent.sid,
            forwarded_to = %target.number.masked(),
            to_dispatcher = target.dispatcher.as_ref().map(DispatcherId::as_str),
            num_media = out.media_urls.len(),
            moved_on,
            "message routed"
        );
        let went = Went {
            target: &target,
            sent: &sent,
            reason: &reason,
            attempts,
            now,
        };
        let alert_kind = origin.record(self, out, went).await;
        if let Some(driver) = out.driver {
            self.replies
                .opened(out.inbound_sid, &reference, driver, &target.number, now)
                .await;
        }
        if let Some(acks) = &self.acks {
            if let Some(forward) = origin.moving_on() {
                stop_awaiting_old(acks, forward).await;
            }
            if let Err(e) = acks
                .sent(out.inbound_sid, &reference, &sent.sid, &target.number, now)
                .await
            {
                let reason = format!(
                    "the text went out, but its acknowledgement timer could not be started ({}); it will not escalate by itself",
                    e.summary()
                );
                tracing::error!(message_sid = %out.inbound_sid, reason, error = %e, "acknowledgement not armed");
                let alert = Alert::new(AlertKind::Undeliverable, out.dispatcher_id, reason, now)
                    .for_message(out.inbound_sid);
                publish_or_log(self.alerts, &alert).await;
            }
        }
        if let Some(kind) = alert_kind {
            let alert = Alert::new(kind, out.dispatcher_id, reason, now)
                .for_message(out.inbound_sid)
                .routed_to(tier)
                .with_invalid_numbers(invalid_numbers(out.plan));
            publish_or_log(self.alerts, &alert).await;
        }
        Ok(Sent::To {
            tier,
            forwarded_sid: sent.sid,
        })
    }

    /// Ends the claim as `finish` says; a failure is logged (the claim then expires).
    pub(crate) async fn finish(&self, claim: &Held, finish: &Finish<'_>) {
        if let Err(e) = self.claims.finish(&claim.key, &claim.owner, finish).await {
            tracing::error!(key = %claim.key, error = %e, "could not finish the claim");
        }
    }

    /// Gives the claim back, so a redelivery can send the text; a failure is logged
    /// (a redelivery then waits for the claim's lock to lapse).
    pub(crate) async fn release(&self, claim: &Held) {
        if let Err(e) = self.claims.release(&claim.key, &claim.owner).await {
            tracing::error!(key = %claim.key, error = %e, "could not release the claim; a redelivery will wait for it to expire");
        }
    }
}

/// A final state with nothing to replay.
pub(crate) fn finished(state: RecordState, expires_at: i64) -> Finish<'static> {
    Finish {
        state,
        response: None,
        detail: None,
        expires_at,
    }
}

/// The phone a moved-on text went to no longer awaits its ACK (it may still answer
/// it: the reference lives on for the reply window).
pub(crate) async fn stop_awaiting_old(acks: &Acks<'_>, forward: &ForwardedMessage) {
    let Ok(CurrentAck {
        reference: Some(reference),
        ..
    }) = acks.store.current_ack(&forward.inbound_sid).await
    else {
        return;
    };
    if let Err(e) = acks.store.stop_awaiting(&reference, &forward.to).await {
        tracing::error!(message_sid = %forward.inbound_sid, error = %e, "the old text still shows as awaiting its ACK");
    }
}

/// The tiers of `plan` skipped for a number that does not normalise, for alerts.
fn invalid_numbers(plan: &CascadePlan) -> Vec<String> {
    plan.invalid_numbers()
        .map(|skipped| match &skipped.reason {
            SkipReason::InvalidNumber { raw, .. } => format!("{}: {raw}", skipped.tier),
            other => format!("{}: {other}", skipped.tier),
        })
        .collect()
}
