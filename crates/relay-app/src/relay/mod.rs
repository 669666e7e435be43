//! `sms-inbound`: a driver's text reaches exactly one dispatcher, down the cascade.
//!
//! [`Relay::relay`] claims the message (de-duplication), reads the primary dispatcher,
//! runs a dispatcher's keyword command or plans the cascade, and hands the text to the
//! one sequence every text takes ([`forwarding`]), which walks the plan, records the
//! outcome and alerts ops.

pub mod acks;
pub mod forwarding;
pub mod move_on;
pub mod status;

use relay_core::alert::{Alert, AlertKind};
use relay_core::cascade::{CascadePolicy, Tier, plan_cascade};
use relay_core::claim::{ClaimKey, ClaimOutcome, ClaimRequest, RecordKind, RecordState};
use relay_core::dispatcher::DispatcherRecord;
use relay_core::ids::{DispatcherId, MessageSid};
use relay_core::phone::{PhoneNumber, mask};
use relay_core::ports::{
    AlertPublisher, ClaimStore, CommandRecord, DeliveryLog, DispatcherStore, MessageLog, RelayText,
    SendError, SmsSender, StoreError,
};
use relay_core::sms::{ACK_LINES_RESERVE, Command, InboundSms, forwarded_text};

use crate::alerting::publish_or_log;
use crate::config::InboundSettings;
use acks::{AckError, AckOutcome, Acks};
use forwarding::{FirstForward, Held, Outgoing, Sending, Sent};

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
    /// A reference for the text could not be reserved.
    #[error("{}", .0.summary())]
    Ack(#[from] AckError),
}

impl RelayError {
    /// Whether the text may be out although this failed: Twilio took the request and
    /// never answered. Its claim is then kept, so nothing sends it again.
    pub fn may_have_sent(&self) -> bool {
        matches!(self, RelayError::Twilio(SendError::OutcomeUnknown { .. }))
    }

    /// The full story for the log, AWS's own words included.
    pub fn detail(&self) -> String {
        match self {
            RelayError::Store(e) => e.to_string(),
            RelayError::Ack(e) => e.to_string(),
            other => other.to_string(),
        }
    }
}

/// What sending, moving on and escalating a text use, borrowed for one invocation:
/// the webhook's relay, the status callbacks and the ACK timers share it.
#[derive(Clone, Copy)]
pub struct RelayPorts<'a> {
    pub dispatchers: &'a dyn DispatcherStore,
    pub claims: &'a dyn ClaimStore,
    pub log: &'a dyn MessageLog,
    pub deliveries: &'a dyn DeliveryLog,
    pub alerts: &'a dyn AlertPublisher,
    pub sender: &'a dyn SmsSender,
    /// Set when acknowledgement is on (`ACK_QUEUE_URL`).
    pub acks: Option<Acks<'a>>,
}

/// The inbound relay: its settings and ports.
pub struct Relay<'a> {
    pub settings: &'a InboundSettings,
    pub ports: RelayPorts<'a>,
}

impl Relay<'_> {
    /// Handles one inbound message exactly once, however often it is delivered.
    pub async fn relay(
        &self,
        sms: &InboundSms,
        status_callback: Option<String>,
        now: i64,
    ) -> Result<Handled, RelayError> {
        let ports = &self.ports;
        let claim = Held::new(ClaimKey::inbound(&sms.sid));
        let request = ClaimRequest::new(&claim.key, RecordKind::Inbound, &claim.owner, now);
        let primary_id = &self.settings.primary_dispatcher_id;
        // Independent: overlapping the claim and the primary's item saves a round trip
        // on every message (a duplicate's read is wasted, and duplicates are rare).
        let (claimed, record) = tokio::join!(
            ports.claims.claim(&request),
            ports.dispatchers.get(primary_id)
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
        let result = self
            .handle_claimed(sms, &claim, record, status_callback, now)
            .await;
        if let Err(error) = &result {
            // Unless the text may already be out, give the claim back so Twilio's
            // redelivery (or the fallback URL pointing here) can still forward it.
            if !error.may_have_sent() {
                ports.release(&claim).await;
            }
            self.alert_undeliverable(sms, error, now).await;
        }
        result
    }

    async fn handle_claimed(
        &self,
        sms: &InboundSms,
        claim: &Held,
        record: Result<Option<DispatcherRecord>, StoreError>,
        status_callback: Option<String>,
        now: i64,
    ) -> Result<Handled, RelayError> {
        let primary_id = &self.settings.primary_dispatcher_id;
        let record = record?.ok_or_else(|| RelayError::PrimaryMissing(primary_id.clone()))?;
        // Parsed once: a sender that is no phone number is never a dispatcher.
        let from = PhoneNumber::parse(&sms.from, self.settings.default_country).ok();

        if let (Some(command), Some(from)) = (Command::parse(&sms.body), &from)
            && self.is_dispatcher_phone(from, &record)
        {
            return self
                .run_command(sms, from, claim, &command, &record, now)
                .await;
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
        let reserve = if self.ports.acks.is_some() {
            ACK_LINES_RESERVE
        } else {
            0
        };
        let (body, body_truncated) = forwarded_text(sms, reserve);
        let kept = RelayText {
            body: body.clone(),
            media_urls: sms.media_urls.clone(),
            status_callback,
        };
        let out = Outgoing {
            origin: FirstForward {
                sms,
                kept: kept.clone(),
                body_truncated,
            },
            sending: Sending {
                passed: Vec::new(),
                claim,
                inbound_sid: &sms.sid,
                dispatcher_id: &record.dispatcher_id,
                plan: &plan,
                body,
                media_urls: &sms.media_urls,
                status_callback: kept.status_callback.as_deref(),
                expires_at: now + record.message_log_ttl_secs() as i64,
            },
        };
        match self.ports.send(out, now).await? {
            Sent::To {
                tier,
                forwarded_sid,
            } => Ok(Handled::Forwarded {
                tier,
                forwarded_sid,
            }),
            Sent::NoTier { reason } => Err(RelayError::NoTierReachable(reason)),
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
        match self.ports.dispatchers.mark_unavailable(id).await {
            Ok(true) => {
                tracing::info!(dispatcher_id = %id, reason = why, "primary marked unavailable");
                let alert = Alert::new(AlertKind::DispatcherUnavailable, id, why, now)
                    .for_message(&sms.sid);
                publish_or_log(self.ports.alerts, &alert).await;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(dispatcher_id = %id, error = %e, "could not mark the primary unavailable");
            }
        }
    }

    fn is_dispatcher_phone(&self, from: &PhoneNumber, record: &DispatcherRecord) -> bool {
        let country = self.settings.default_country;
        [
            &record.phone,
            &record.backup_dispatcher,
            &record.tertiary_contact,
        ]
        .into_iter()
        .flatten()
        .any(|raw| PhoneNumber::parse(raw, country).is_ok_and(|n| n == *from))
    }

    async fn run_command(
        &self,
        sms: &InboundSms,
        from: &PhoneNumber,
        claim: &Held,
        command: &Command,
        primary: &DispatcherRecord,
        now: i64,
    ) -> Result<Handled, RelayError> {
        let ports = &self.ports;
        let mut changed = Vec::new();
        let reply = match command {
            Command::On | Command::Off => {
                let on_duty = matches!(command, Command::On);
                for id in self.dispatchers_with_phone(from).await? {
                    if ports.dispatchers.set_on_duty(&id, on_duty, now).await? {
                        changed.push(id);
                    }
                }
                // A text from their phone proves it works again: an older delivery
                // failure must not make the heartbeat undo this ON.
                if on_duty && !changed.is_empty() {
                    ports
                        .deliveries
                        .record_delivery(from, true, None, now)
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
            Command::Ack { reference } => match &ports.acks {
                Some(acks) => {
                    let outcome = acks.acknowledge(from, reference.as_deref(), now).await?;
                    match &outcome {
                        // Acknowledged: nothing will send the text again.
                        AckOutcome::Acknowledged { message_sid, .. } => {
                            if let Err(e) = ports.log.forget_relay_text(message_sid).await {
                                tracing::error!(message_sid = %message_sid, error = %e, "could not drop the kept text; it expires with the message");
                            }
                        }
                        _ => {
                            tracing::info!(message_sid = %sms.sid, from = %from.masked(), outcome = ?outcome, "ACK changed nothing")
                        }
                    }
                    Some(outcome.reply())
                }
                None => None,
            },
        };
        tracing::info!(
            command = command.name(),
            message_sid = %sms.sid,
            from = %from.masked(),
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
        if let Err(e) = ports.log.record_command(&record, &claim.owner).await {
            tracing::error!(message_sid = %sms.sid, error = %e, "command applied but the message log could not be written");
        }
        Ok(Handled::Command { reply })
    }

    /// IDs of the dispatcher items whose own `phone` is `from`.
    async fn dispatchers_with_phone(
        &self,
        from: &PhoneNumber,
    ) -> Result<Vec<DispatcherId>, RelayError> {
        let country = self.settings.default_country;
        let mut ids = Vec::new();
        // An item without a usable key is logged by the store where it was read.
        for record in self.ports.dispatchers.all().await?.into_iter().flatten() {
            let phone = record
                .phone
                .as_deref()
                .and_then(|raw| PhoneNumber::parse(raw, country).ok());
            if phone.as_ref() == Some(from) {
                ids.push(record.dispatcher_id);
            }
        }
        Ok(ids)
    }

    async fn alert_undeliverable(&self, sms: &InboundSms, error: &RelayError, now: i64) {
        let primary_id = &self.settings.primary_dispatcher_id;
        tracing::error!(
            message_sid = %sms.sid,
            dispatcher_id = %primary_id,
            from = %mask(&sms.from),
            error = %error,
            detail = %error.detail(),
            "message could not be forwarded"
        );
        let alert = Alert::new(AlertKind::Undeliverable, primary_id, error.to_string(), now)
            .for_message(&sms.sid);
        publish_or_log(self.ports.alerts, &alert).await;
    }
}
