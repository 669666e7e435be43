//! `sms-inbound`: a driver's text reaches exactly one dispatcher, down the cascade.
//!
//! [`Relay::relay`] claims the message (de-duplication), reads the primary dispatcher,
//! runs a dispatcher's keyword command or walks the cascade plan, records the outcome
//! and alerts ops. [`http`] turns Lambda HTTP events into calls of it.

pub mod acks;
pub mod move_on;
pub mod status;

use relay_core::alert::{Alert, AlertKind};
use relay_core::sms::{ACK_LINES_RESERVE, Command, InboundSms, forwarded_text};

use crate::alerting::publish_or_log;
use crate::config::InboundSettings;
use crate::metric;
use acks::{AckOutcome, Acks};
use relay_core::cascade::{
    Attempt, CascadePlan, CascadePolicy, SkipReason, Tier, cascade_cause, cascade_reason,
    plan_cascade,
};
use relay_core::claim::{
    ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, RecordKind, RecordState,
};
use relay_core::dispatcher::DispatcherRecord;
use relay_core::ids::{DispatcherId, MessageSid};
use relay_core::phone::{PhoneNumber, mask};
use relay_core::ports::{
    AlertPublisher, ClaimStore, CommandRecord, DeliveryLog, DispatcherStore, Finish, ForwardRecord,
    MessageLog, RelayText, SendError, SentSms, SmsSender, StoreError,
};
use relay_core::walk::{Relayed, WalkEnd, walk_tiers};

/// What became of a webhook that was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Forwarded {
        tier: Tier,
        forwarded_sid: MessageSid,
    },
    /// A redelivery of a message that is being or has been handled: nothing was sent.
    Duplicate { state: RecordState },
    /// A dispatcher's keyword; `reply` is texted back to them (through TwiML), if any.
    Command { reply: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Alerts and answers say only this; the AWS error's own text goes to the log
    /// (`{:?}` of the error, or [`RelayError::detail`]).
    #[error("{}", .0.summary())]
    Store(#[from] StoreError),
    #[error("primary dispatcher {0} is not in the state table")]
    PrimaryMissing(DispatcherId),
    #[error("no tier could be reached: {0}")]
    NoTierReachable(String),
    #[error(transparent)]
    Twilio(SendError),
}

impl RelayError {
    /// The full story for the log, AWS's own words included.
    pub fn detail(&self) -> String {
        match self {
            RelayError::Store(e) => e.to_string(),
            other => other.to_string(),
        }
    }
}

/// The inbound relay's dependencies, borrowed for one invocation.
pub struct Relay<'a> {
    pub settings: &'a InboundSettings,
    pub dispatchers: &'a dyn DispatcherStore,
    pub claims: &'a dyn ClaimStore,
    pub log: &'a dyn MessageLog,
    pub deliveries: &'a dyn DeliveryLog,
    pub alerts: &'a dyn AlertPublisher,
    pub sender: &'a dyn SmsSender,
    /// Set when acknowledgement is on (`ACK_QUEUE_URL`).
    pub acks: Option<Acks<'a>>,
}

impl Relay<'_> {
    /// Handles one inbound message exactly once, however often it is delivered.
    pub async fn relay(
        &self,
        sms: &InboundSms,
        status_callback: Option<String>,
        now: i64,
    ) -> Result<Handled, RelayError> {
        let key = ClaimKey::inbound(&sms.sid);
        let owner = ClaimOwner::random();
        let request = ClaimRequest::new(&key, RecordKind::Inbound, &owner, now);
        let primary_id = &self.settings.primary_dispatcher_id;
        // Independent: overlapping the claim and the primary's item saves a round trip
        // on every message (a duplicate's read is wasted, and duplicates are rare).
        let (claimed, record) = tokio::join!(
            self.claims.claim(&request),
            self.dispatchers.get(primary_id)
        );
        match claimed {
            Ok(ClaimOutcome::Acquired) => {}
            Ok(ClaimOutcome::Taken(existing)) => {
                tracing::info!(message_sid = %sms.sid, state = %existing.state, "duplicate delivery; not forwarding again");
                return Ok(Handled::Duplicate {
                    state: existing.state,
                });
            }
            Err(e) => {
                let error = RelayError::Store(e);
                self.alert_undeliverable(sms, &error, now).await;
                return Err(error);
            }
        }
        let held = Held { key, owner };
        let result = self
            .handle_claimed(sms, &held, record, status_callback, now)
            .await;
        if let Err(error) = &result {
            // Unless the text may already be out, give the claim back so Twilio's
            // redelivery (or the fallback URL pointing here) can still forward it.
            let maybe_sent = matches!(error, RelayError::Twilio(SendError::OutcomeUnknown { .. }));
            if !maybe_sent
                && let Err(release_error) = self.claims.release(&held.key, &held.owner).await
            {
                tracing::error!(message_sid = %sms.sid, error = %release_error, "could not release the claim; a redelivery will wait for it to expire");
            }
            self.alert_undeliverable(sms, error, now).await;
        }
        result
    }

    async fn handle_claimed(
        &self,
        sms: &InboundSms,
        held: &Held,
        record: Result<Option<DispatcherRecord>, StoreError>,
        status_callback: Option<String>,
        now: i64,
    ) -> Result<Handled, RelayError> {
        let primary_id = &self.settings.primary_dispatcher_id;
        let record = record?.ok_or_else(|| RelayError::PrimaryMissing(primary_id.clone()))?;

        if let Some(command) = Command::parse(&sms.body)
            && self.is_dispatcher_phone(&sms.from, &record)
        {
            return self.run_command(sms, held, &command, &record, now).await;
        }

        let policy = CascadePolicy {
            heartbeat_max_age_secs: self.settings.heartbeat_max_age_secs,
            default_country: self.settings.default_country,
        };
        let plan = plan_cascade(&record, now, &policy);
        // Already marked unavailable: nothing to flip, so no write on every message.
        if let Some(why) = plan
            .primary_unavailable
            .as_ref()
            .filter(|_| record.is_marked_available())
        {
            self.mark_primary_unavailable(&record.dispatcher_id, &why.to_string(), sms, now)
                .await;
        }

        // With acknowledgement on, room is kept for the relay's own lines (the ACK
        // instruction, and the note on an escalated text).
        let reserve = if self.acks.is_some() {
            ACK_LINES_RESERVE
        } else {
            0
        };
        let (body, body_truncated) = forwarded_text(sms, reserve);
        let reference = match &self.acks {
            Some(acks) => {
                let expires_at = now + record.message_log_ttl_secs() as i64;
                Some(acks.reserve(&sms.sid, now, expires_at).await?)
            }
            None => None,
        };
        let sent_body = match &reference {
            Some(reference) => format!("{body}{}", Acks::instruction(reference)),
            None => body.clone(),
        };
        let relay = RelayText {
            body,
            media_urls: sms.media_urls.clone(),
            status_callback,
        };
        let text = Relayed {
            inbound_sid: &sms.sid,
            body: &sent_body,
            media_urls: &relay.media_urls,
            status_callback: relay.status_callback.as_deref(),
        };
        let walk = walk_tiers(self.sender, &plan.targets, text).await;
        match walk.end {
            WalkEnd::Sent { target, sent } => {
                let forwarded_sid = sent.sid.clone();
                let delivery = Delivery {
                    tier: target.tier,
                    to: &target.number,
                    sent,
                    body_truncated,
                    relay,
                };
                let handled = self
                    .finish_forwarded(sms, held, &record, &plan, walk.attempts, delivery, now)
                    .await;
                if let (Some(acks), Some(reference)) = (&self.acks, &reference)
                    && let Err(e) = acks
                        .sent(&sms.sid, reference, &forwarded_sid, &target.number, now)
                        .await
                {
                    let reason = format!(
                        "the text went out, but its acknowledgement timer could not be started ({e}); it will not escalate by itself"
                    );
                    tracing::error!(message_sid = %sms.sid, reason, "acknowledgement not armed");
                    let alert = Alert::new(
                        AlertKind::Undeliverable,
                        record.dispatcher_id.as_str(),
                        reason,
                        now,
                    )
                    .for_message(sms.sid.as_str());
                    self.publish(&alert).await;
                }
                Ok(handled)
            }
            WalkEnd::Exhausted => Err(RelayError::NoTierReachable(cascade_reason(
                &plan,
                &walk.attempts,
                None,
            ))),
            WalkEnd::Stopped(error @ SendError::OutcomeUnknown { .. }) => {
                let expires_at = now + record.message_log_ttl_secs() as i64;
                let detail = error.to_string();
                let finish = Finish {
                    state: RecordState::OutcomeUnknown,
                    response: None,
                    detail: Some(&detail),
                    expires_at,
                };
                if let Err(e) = self.claims.finish(&held.key, &held.owner, &finish).await {
                    tracing::error!(message_sid = %sms.sid, error = %e, "could not record the unknown outcome");
                }
                Err(RelayError::Twilio(error))
            }
            WalkEnd::Stopped(error) => Err(RelayError::Twilio(error)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish_forwarded(
        &self,
        sms: &InboundSms,
        held: &Held,
        record: &DispatcherRecord,
        plan: &CascadePlan,
        attempts: Vec<Attempt>,
        delivery: Delivery<'_>,
        now: i64,
    ) -> Handled {
        let reason = cascade_reason(plan, &attempts, Some(delivery.tier));
        metric::relayed(delivery.tier);
        if delivery.tier != Tier::Primary {
            metric::cascaded(cascade_cause(plan, &attempts, Some(delivery.tier)));
        }
        tracing::info!(
            routing_decision = delivery.tier.as_str(),
            dispatcher_id = %record.dispatcher_id,
            cascade_reason = %reason,
            message_sid = %sms.sid,
            forwarded_sid = %delivery.sent.sid,
            forwarded_to = %delivery.to.masked(),
            num_media = sms.media_urls.len(),
            "message routed"
        );
        let forward = ForwardRecord {
            inbound_sid: sms.sid.clone(),
            from: sms.from.clone(),
            to: sms.to.clone(),
            routing_decision: delivery.tier,
            dispatcher_id: record.dispatcher_id.clone(),
            cascade_reason: reason.clone(),
            forwarded_sid: delivery.sent.sid.clone(),
            forwarded_to: delivery.to.clone(),
            forwarded_status: delivery.sent.status,
            relay: delivery.relay,
            body_truncated: delivery.body_truncated,
            attempts,
            received_at: now,
            forwarded_at: now,
            expires_at: now + record.message_log_ttl_secs() as i64,
        };
        if let Err(e) = self.log.record_forwarded(&forward, &held.owner).await {
            // The text is out; failing now would make Twilio's fallback send it again.
            tracing::error!(message_sid = %sms.sid, forwarded_sid = %delivery.sent.sid, error = %e, "message forwarded but the message log could not be written");
        }
        if delivery.tier != Tier::Primary {
            let mut alert = Alert::new(
                AlertKind::Cascade,
                record.dispatcher_id.as_str(),
                reason,
                now,
            )
            .for_message(sms.sid.as_str());
            alert.routing_decision = Some(delivery.tier.as_str().to_string());
            alert.invalid_numbers = invalid_numbers(plan);
            self.publish(&alert).await;
        }
        Handled::Forwarded {
            tier: delivery.tier,
            forwarded_sid: delivery.sent.sid,
        }
    }

    /// Marks the primary unavailable so later messages skip it at once; the update is
    /// conditional, so of many concurrent invocations only one flips it and alerts.
    async fn mark_primary_unavailable(
        &self,
        id: &DispatcherId,
        why: &str,
        sms: &InboundSms,
        now: i64,
    ) {
        match self.dispatchers.mark_unavailable(id).await {
            Ok(true) => {
                tracing::info!(dispatcher_id = %id, reason = why, "primary marked unavailable");
                let alert = Alert::new(AlertKind::DispatcherUnavailable, id.as_str(), why, now)
                    .for_message(sms.sid.as_str());
                self.publish(&alert).await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(dispatcher_id = %id, error = %e, "could not mark the primary unavailable");
            }
        }
    }

    fn is_dispatcher_phone(&self, from: &str, record: &DispatcherRecord) -> bool {
        let country = self.settings.default_country;
        let Ok(from) = PhoneNumber::parse(from, country) else {
            return false;
        };
        [
            &record.phone,
            &record.backup_dispatcher,
            &record.tertiary_contact,
        ]
        .into_iter()
        .flatten()
        .any(|raw| PhoneNumber::parse(raw, country).is_ok_and(|n| n == from))
    }

    async fn run_command(
        &self,
        sms: &InboundSms,
        held: &Held,
        command: &Command,
        primary: &DispatcherRecord,
        now: i64,
    ) -> Result<Handled, RelayError> {
        let mut changed = Vec::new();
        let reply = match command {
            Command::On | Command::Off => {
                let on_duty = matches!(command, Command::On);
                for id in self.dispatchers_with_phone(&sms.from).await? {
                    if self.dispatchers.set_on_duty(&id, on_duty, now).await? {
                        changed.push(id);
                    }
                }
                // A text from their phone proves it works again: an older delivery
                // failure must not make the heartbeat undo this ON.
                if on_duty
                    && !changed.is_empty()
                    && let Ok(phone) = PhoneNumber::parse(&sms.from, self.settings.default_country)
                {
                    self.deliveries
                        .record_delivery(&phone, true, None, now)
                        .await?;
                }
                Some(match (on_duty, changed.is_empty()) {
                    (_, true) => "QDN relay: this phone has no dispatcher entry, so nothing changed. Ask ops to add it.".to_string(),
                    (true, false) => "QDN relay: you are ON duty. Driver texts come to you.".to_string(),
                    (false, false) => "QDN relay: you are OFF duty. Driver texts go to your backup.".to_string(),
                })
            }
            // With acknowledgement off (no ACK_QUEUE_URL) the keyword is still a
            // command, never relayed to another dispatcher.
            Command::Ack { reference } => match (
                &self.acks,
                PhoneNumber::parse(&sms.from, self.settings.default_country),
            ) {
                (Some(acks), Ok(from)) => {
                    let outcome = acks.acknowledge(&from, reference.as_deref(), now).await?;
                    match &outcome {
                        // Acknowledged: nothing will send the text again.
                        AckOutcome::Acknowledged { message_sid, .. } => {
                            if let Err(e) = self.log.forget_relay_text(message_sid).await {
                                tracing::error!(message_sid = %message_sid, error = ?e, "could not drop the kept text; it expires with the message");
                            }
                        }
                        _ => {
                            tracing::info!(message_sid = %sms.sid, from = %mask(&sms.from), outcome = ?outcome, "ACK changed nothing")
                        }
                    }
                    Some(outcome.reply())
                }
                _ => None,
            },
        };
        tracing::info!(
            command = command.name(),
            message_sid = %sms.sid,
            from = %mask(&sms.from),
            dispatcher_ids = ?changed.iter().map(DispatcherId::as_str).collect::<Vec<_>>(),
            "dispatcher command"
        );
        let record = CommandRecord {
            inbound_sid: sms.sid.clone(),
            command: command.clone(),
            dispatcher_ids: changed,
            received_at: now,
            expires_at: now + primary.message_log_ttl_secs() as i64,
        };
        if let Err(e) = self.log.record_command(&record, &held.owner).await {
            tracing::error!(message_sid = %sms.sid, error = %e, "command applied but the message log could not be written");
        }
        Ok(Handled::Command { reply })
    }

    /// IDs of the dispatcher items whose own `phone` is `from`.
    async fn dispatchers_with_phone(&self, from: &str) -> Result<Vec<DispatcherId>, RelayError> {
        let country = self.settings.default_country;
        let Ok(from) = PhoneNumber::parse(from, country) else {
            return Ok(Vec::new());
        };
        let mut ids = Vec::new();
        // An item without a usable key is logged by the store where it was read.
        for record in self.dispatchers.all().await?.into_iter().flatten() {
            let phone = record
                .phone
                .as_deref()
                .map(|raw| PhoneNumber::parse(raw, country));
            if matches!(phone, Some(Ok(ref n)) if *n == from) {
                ids.push(record.dispatcher_id);
            }
        }
        Ok(ids)
    }

    async fn alert_undeliverable(&self, sms: &InboundSms, error: &RelayError, now: i64) {
        tracing::error!(
            message_sid = %sms.sid,
            dispatcher_id = %self.settings.primary_dispatcher_id,
            error = %error,
            detail = %error.detail(),
            "message could not be forwarded"
        );
        let alert = Alert::new(
            AlertKind::Undeliverable,
            self.settings.primary_dispatcher_id.as_str(),
            error.to_string(),
            now,
        )
        .for_message(sms.sid.as_str());
        self.publish(&alert).await;
    }

    async fn publish(&self, alert: &Alert) {
        publish_or_log(self.alerts, alert).await;
    }
}

/// The claim this invocation holds on the inbound message.
struct Held {
    key: ClaimKey,
    owner: ClaimOwner,
}

struct Delivery<'a> {
    tier: Tier,
    to: &'a PhoneNumber,
    sent: SentSms,
    body_truncated: bool,
    relay: RelayText,
}

/// The tiers of `plan` skipped for a number that does not normalise, for alerts.
pub(crate) fn invalid_numbers(plan: &CascadePlan) -> Vec<String> {
    plan.invalid_numbers()
        .map(|skipped| match &skipped.reason {
            SkipReason::InvalidNumber { raw, .. } => format!("{}: {raw}", skipped.tier),
            other => format!("{}: {other}", skipped.tier),
        })
        .collect()
}
