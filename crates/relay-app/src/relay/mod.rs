//! `sms-inbound`: a driver's text reaches exactly one dispatcher, down the cascade; a
//! dispatcher's text is a command or an answer to a driver, never relayed.
//!
//! [`Relay::relay`] claims the message (de-duplication), reads the primary dispatcher
//! and the dispatcher items, runs a dispatcher's keyword command or answer
//! ([`answering`]), or plans the cascade and hands the text to the one sequence every
//! text takes ([`forwarding`]), which walks the plan, records the outcome and alerts
//! ops.

pub mod acks;
pub mod answering;
pub mod forwarding;
pub mod move_on;
pub mod redelivery;
pub mod replies;
pub mod status;

use relay_core::ack::redelivery_note;
use relay_core::alert::{Alert, AlertKind};
use relay_core::cascade::{CascadePolicy, Tier, plan_cascade};
use relay_core::claim::{ClaimKey, ClaimOutcome, ClaimRequest, RecordKind, RecordState};
use relay_core::conversation::{
    AnswerOutcome, DispatcherText, Driver, Signer, first_words, signer_of,
};
use relay_core::dispatcher::DispatcherRecord;
use relay_core::fate::Unreached;
use relay_core::ids::{DispatcherId, MessageSid};
use relay_core::phone::{PhoneNumber, mask};
use relay_core::ports::{
    AlertPublisher, ClaimStore, CommandRecord, DeliveryLog, DispatcherStore, MessageLog,
    OutboundLog, RelayText, SendError, SmsSender, StoreError,
};
use relay_core::roster::Roster;
use relay_core::sms::{Command, InboundSms, RELAY_LINES_RESERVE, forwarded_text};

use crate::alerting::publish_or_log;
use crate::config::InboundSettings;
use acks::{AckError, AckOutcome, Acks};
use answering::AnswerText;
use forwarding::{FirstForward, Held, Origin, Outgoing, Sending, Sent};
use replies::{ReferenceError, Replies};

/// What became of a webhook that was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Forwarded {
        tier: Tier,
        forwarded_sid: MessageSid,
    },
    /// A redelivery of a message that is being or has been handled: nothing was sent;
    /// `reply` is what the first delivery answered the dispatcher, if anything.
    Duplicate {
        state: RecordState,
        reply: Option<String>,
    },
    /// A dispatcher's keyword; `reply` is texted back to them (through TwiML), if any.
    Command { reply: Option<String> },
    /// A dispatcher's answer to a driver, sent or not.
    Answer(AnswerOutcome),
}

impl Handled {
    /// What the dispatcher reads back (the TwiML `<Message>`), if anything.
    pub fn reply(&self) -> Option<String> {
        match self {
            Handled::Forwarded { .. } => None,
            Handled::Duplicate { reply, .. } | Handled::Command { reply } => reply.clone(),
            Handled::Answer(outcome) => Some(outcome.reply()),
        }
    }
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
    /// The acknowledgement timer or record could not be written.
    #[error("{}", .0.summary())]
    Ack(#[from] AckError),
    /// A reference for the text could not be reserved.
    #[error("{}", .0.summary())]
    Reference(#[from] ReferenceError),
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
            RelayError::Reference(e) => e.to_string(),
            other => other.to_string(),
        }
    }
}

/// The item of whoever is primary at `now`: the rota's, else `fallback`. A rota
/// naming a dispatcher with no item must not lose the text: the fallback's item
/// takes it (the heartbeat alerts the rota's problem).
pub(crate) fn primary_record(
    roster: &Roster,
    fallback: &DispatcherId,
    now: i64,
) -> Result<DispatcherRecord, RelayError> {
    let duty = roster.duty_at(fallback, now);
    if let Some(record) = roster.record(&duty.dispatcher) {
        return Ok(record.clone());
    }
    if duty.dispatcher != *fallback {
        tracing::error!(dispatcher_id = %duty.dispatcher, primary_by = duty.source.name(), fallback = %fallback, "the rota's primary has no dispatcher item; the fallback primary takes the text");
        if let Some(record) = roster.record(fallback) {
            return Ok(record.clone());
        }
    }
    Err(RelayError::PrimaryMissing(duty.dispatcher))
}

/// A driver's text about to go down the cascade.
struct DriversText<'a> {
    /// Its SID, sender and QDN number (the body that goes out is `kept`'s).
    sms: &'a InboundSms,
    kept: RelayText,
    body_truncated: bool,
    received_at: i64,
    /// Set for an operator's redelivery: the redeliveries it will have had.
    redeliveries: Option<u32>,
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
    /// Every relayed text's reference, and the conversations it opens.
    pub replies: Replies<'a>,
    /// Set when acknowledgement is on (`ACK_QUEUE_URL`).
    pub acks: Option<Acks<'a>>,
}

/// The inbound relay: its settings and ports.
pub struct Relay<'a> {
    pub settings: &'a InboundSettings,
    pub ports: RelayPorts<'a>,
    /// Where dispatchers' answers by text are logged (as `sms-outbound`'s replies are).
    pub outbound_log: &'a dyn OutboundLog,
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
        // Independent: overlapping the claim and the state table's one read (the rota,
        // the primary's item, and every dispatcher's phone, which is never relayed)
        // saves a round trip on every message (a duplicate's read is wasted, and
        // duplicates are rare).
        let (claimed, roster) =
            tokio::join!(ports.claims.claim(&request), ports.dispatchers.roster());
        match claimed {
            Ok(ClaimOutcome::Acquired) => {}
            Ok(ClaimOutcome::Taken(existing)) => {
                tracing::info!(message_sid = %sms.sid, state = %existing.state, "duplicate delivery; not handling it again");
                return Ok(Handled::Duplicate {
                    state: existing.state,
                    reply: existing.response.map(|response| response.body),
                });
            }
            Err(e) => {
                let error = RelayError::Store(e);
                self.alert_undeliverable(sms, &error, now).await;
                return Err(error);
            }
        }
        let result = self
            .handle_claimed(sms, &claim, roster, status_callback, now)
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
        roster: Result<Roster, StoreError>,
        status_callback: Option<String>,
        now: i64,
    ) -> Result<Handled, RelayError> {
        let roster = roster?;
        let record = primary_record(&roster, &self.settings.primary_dispatcher_id, now)?;
        // Parsed once: a sender that is no phone number is never a dispatcher.
        let from = PhoneNumber::parse(&sms.from, self.settings.default_country).ok();

        if let Some(from) = &from {
            // An item without a usable key is logged by the store where it was read.
            let dispatchers: Vec<DispatcherRecord> = roster.records().cloned().collect();
            if let Some(signer) = signer_of(from, &dispatchers, self.settings.default_country) {
                return self
                    .handle_dispatcher_text(sms, from, signer, &dispatchers, claim, &record, now)
                    .await;
            }
        }

        // Room is kept for the relay's own lines (the reference and how to answer, and
        // the note on an escalated text).
        let (body, body_truncated) = forwarded_text(sms, RELAY_LINES_RESERVE);
        let driver = from.map(|number| Driver {
            number,
            first_words: first_words(&sms.body),
        });
        let text = DriversText {
            sms,
            kept: RelayText {
                body,
                driver,
                media_urls: sms.media_urls.clone(),
                status_callback,
            },
            body_truncated,
            received_at: now,
            redeliveries: None,
        };
        let (tier, forwarded_sid) = self
            .forward_drivers_text(text, claim, &roster, &record, now)
            .await?;
        Ok(Handled::Forwarded {
            tier,
            forwarded_sid,
        })
    }

    /// Sends a driver's text down the cascade from `record` (the primary now) under
    /// `claim`: the webhook's path, and an operator's redelivery of a text whose first
    /// try reached nobody. A text that reaches nobody is recorded so, with its words.
    async fn forward_drivers_text(
        &self,
        text: DriversText<'_>,
        claim: &Held,
        roster: &Roster,
        record: &DispatcherRecord,
        now: i64,
    ) -> Result<(Tier, MessageSid), RelayError> {
        let policy = CascadePolicy {
            heartbeat_max_age_secs: self.settings.heartbeat_max_age_secs,
            default_country: self.settings.default_country,
        };
        let plan = plan_cascade(record, roster, now, &policy);
        // Already marked unavailable: nothing to flip, so no write on every message.
        if let Some(why) = plan
            .primary_unavailable
            .as_ref()
            .filter(|_| record.is_marked_available())
        {
            self.mark_primary_unavailable(&record.dispatcher_id, &why.to_string(), text.sms, now)
                .await;
        }
        let sms = text.sms;
        let out = Outgoing {
            sending: Sending {
                passed: Vec::new(),
                restart: text
                    .redeliveries
                    .map(|_| "sent again by an operator".to_string()),
                claim,
                inbound_sid: &sms.sid,
                dispatcher_id: &record.dispatcher_id,
                plan: &plan,
                body: match text.redeliveries {
                    Some(_) => format!(
                        "{}{}",
                        redelivery_note(now - text.received_at),
                        text.kept.body
                    ),
                    None => text.kept.body.clone(),
                },
                driver: text.kept.driver.as_ref(),
                media_urls: &text.kept.media_urls,
                status_callback: text.kept.status_callback.as_deref(),
                expires_at: now + record.message_log_ttl_secs() as i64,
            },
            origin: FirstForward {
                sms,
                kept: text.kept.clone(),
                body_truncated: text.body_truncated,
                received_at: text.received_at,
                redeliveries: text.redeliveries,
            },
        };
        match self.ports.send(&out, now).await? {
            Sent::To {
                tier,
                forwarded_sid,
            } => Ok((tier, forwarded_sid)),
            Sent::NoTier { reason } => {
                out.origin
                    .unreached(
                        &self.ports,
                        &out.sending,
                        Unreached::Undeliverable,
                        &reason,
                        now,
                    )
                    .await;
                Err(RelayError::NoTierReachable(reason))
            }
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

    /// A text from a dispatcher's phone: a keyword command, or an answer to a driver.
    /// Never relayed down the cascade.
    #[allow(clippy::too_many_arguments)]
    async fn handle_dispatcher_text(
        &self,
        sms: &InboundSms,
        from: &PhoneNumber,
        signer: Signer,
        dispatchers: &[DispatcherRecord],
        claim: &Held,
        primary: &DispatcherRecord,
        now: i64,
    ) -> Result<Handled, RelayError> {
        let own_items = self.dispatchers_with_phone(from, dispatchers);
        match DispatcherText::parse(&sms.body) {
            DispatcherText::Command(command) => {
                self.run_command(sms, from, own_items, claim, &command, primary, now)
                    .await
            }
            DispatcherText::Answer(answer) => {
                let text = AnswerText {
                    sms,
                    from,
                    signer,
                    check_ins: own_items,
                    answer,
                    log_ttl_secs: primary.message_log_ttl_secs() as i64,
                };
                let outcome = self
                    .ports
                    .answer(text, claim, self.outbound_log, now)
                    .await?;
                Ok(Handled::Answer(outcome))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_command(
        &self,
        sms: &InboundSms,
        from: &PhoneNumber,
        own_items: Vec<DispatcherId>,
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
                for id in own_items {
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
                            ports.forget_kept_text(message_sid).await;
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
    fn dispatchers_with_phone(
        &self,
        from: &PhoneNumber,
        dispatchers: &[DispatcherRecord],
    ) -> Vec<DispatcherId> {
        let country = self.settings.default_country;
        dispatchers
            .iter()
            .filter(|record| {
                record
                    .phone
                    .as_deref()
                    .and_then(|raw| PhoneNumber::parse(raw, country).ok())
                    .is_some_and(|phone| phone == *from)
            })
            .map(|record| record.dispatcher_id.clone())
            .collect()
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
