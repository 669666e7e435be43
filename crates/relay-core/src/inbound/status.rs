//! Twilio's status callbacks for the texts we forward (`POST /api/v1/sms/status`).
//!
//! Each status lands on the forwarded message's log items, and only ever moves it
//! forward. `undelivered` / `failed` records a delivery failure against the number the
//! text went to and sends the text on to the tiers after the one that failed, at once
//! and once (a claim per failed message), with a `cascade` alert; past the last tier,
//! an `undeliverable` alert.

use super::RelayError;
use super::invalid_numbers;
use super::webhook::{Webhook, WebhookError};
use crate::alert::{Alert, AlertKind, publish_or_log};
use crate::cascade::{Attempt, AttemptOutcome, CascadePolicy, Tier, cascade_reason, plan_after};
use crate::claim::{ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, RecordKind, RecordState};
use crate::config::InboundSettings;
use crate::delivery::DeliveryStatus;
use crate::ids::MessageSid;
use crate::ports::{
    AlertPublisher, ClaimStore, DeliveryLog, DispatcherStore, Finish, ForwardedMessage, MessageLog,
    MovedOn, SendError, SmsSender,
};
use crate::walk::{Relayed, WalkEnd, walk_tiers};

/// One status callback: which forwarded message, its new status, Twilio's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    pub sid: MessageSid,
    pub status: DeliveryStatus,
    pub error_code: Option<u32>,
}

impl StatusUpdate {
    /// Reads a callback's form. `Ok(None)` for a status Twilio may add that we do not
    /// know: it is logged and answered `200`, as there is nothing to do with it.
    pub fn from_webhook(hook: &Webhook) -> Result<Option<Self>, WebhookError> {
        let required = |name: &'static str| {
            hook.param(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or(WebhookError::MissingField(name))
        };
        let sid =
            MessageSid::parse(required("MessageSid")?).map_err(|e| WebhookError::InvalidField {
                field: "MessageSid",
                detail: e.to_string(),
            })?;
        let raw_status = required("MessageStatus")?;
        let error_code = match hook
            .param("ErrorCode")
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            None => None,
            Some(code) => Some(
                code.parse::<u32>()
                    .map_err(|_| WebhookError::InvalidField {
                        field: "ErrorCode",
                        detail: "not a number".into(),
                    })?,
            ),
        };
        let Some(status) = DeliveryStatus::parse(raw_status) else {
            tracing::warn!(message_sid = %sid, status = raw_status, "status callback with a status we do not know; ignored");
            return Ok(None);
        };
        Ok(Some(StatusUpdate {
            sid,
            status,
            error_code,
        }))
    }
}

/// What a status callback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusHandled {
    /// Not a message we forwarded (or its log expired): nothing to do.
    UnknownMessage,
    /// The status would move the message backwards (or replace another final one).
    Stale,
    Recorded,
    /// The failed delivery went on to `tier`.
    MovedOn {
        tier: Tier,
        forwarded_sid: MessageSid,
    },
    /// The failed delivery was the last tier's (or nothing else could be reached).
    GaveUp,
    /// Another callback for the same failure is moving (or moved) it on.
    AlreadyMovedOn,
}

/// The status callback's dependencies, borrowed for one invocation.
pub struct StatusCallbacks<'a> {
    pub settings: &'a InboundSettings,
    pub dispatchers: &'a dyn DispatcherStore,
    pub claims: &'a dyn ClaimStore,
    pub log: &'a dyn MessageLog,
    pub deliveries: &'a dyn DeliveryLog,
    pub alerts: &'a dyn AlertPublisher,
    pub sender: &'a dyn SmsSender,
}

impl StatusCallbacks<'_> {
    pub async fn handle(
        &self,
        update: &StatusUpdate,
        now: i64,
    ) -> Result<StatusHandled, RelayError> {
        let Some(forward) = self.log.forwarded(&update.sid, now).await? else {
            tracing::info!(message_sid = %update.sid, status = %update.status, "status callback for a message we did not forward (or whose log expired); nothing to do");
            return Ok(StatusHandled::UnknownMessage);
        };
        let recorded = self
            .log
            .record_delivery_status(&forward, update.status, update.error_code, now)
            .await?;
        tracing::info!(
            message_sid = %forward.inbound_sid,
            forwarded_sid = %forward.sid,
            tier = %forward.tier,
            status = %update.status,
            error_code = update.error_code,
            recorded,
            "status callback"
        );
        if !recorded {
            return Ok(StatusHandled::Stale);
        }
        if update.status.is_delivered() {
            self.deliveries
                .record_delivery(&forward.to, true, None, now)
                .await?;
            // It reached someone: the text is not needed again.
            self.log.forget_relay_text(&forward.inbound_sid).await?;
        } else if update.status.is_failure() {
            self.deliveries
                .record_delivery(&forward.to, false, update.error_code, now)
                .await?;
            return self.move_on(&forward, update, now).await;
        }
        Ok(StatusHandled::Recorded)
    }

    /// Sends the text on to the tiers after the one whose delivery failed, once.
    async fn move_on(
        &self,
        forward: &ForwardedMessage,
        update: &StatusUpdate,
        now: i64,
    ) -> Result<StatusHandled, RelayError> {
        let key = ClaimKey::move_on(&forward.sid);
        let owner = ClaimOwner::random();
        let claim = ClaimRequest::new(&key, RecordKind::MoveOn, &owner, now);
        if let ClaimOutcome::Taken(existing) = self.claims.claim(&claim).await? {
            tracing::info!(forwarded_sid = %forward.sid, state = %existing.state, "this failed delivery is already being moved on");
            return Ok(StatusHandled::AlreadyMovedOn);
        }
        let finish = |state: RecordState| Finish {
            state,
            response: None,
            detail: None,
            expires_at: forward.expires_at,
        };
        let failed = Attempt {
            tier: forward.tier,
            to: forward.to.masked(),
            outcome: AttemptOutcome::DeliveryFailed,
            error_code: update.error_code,
            message: None,
        };
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
                    "{}: delivery failed (Twilio error {}); the text can no longer be sent on (its dispatcher item or kept text is gone)",
                    forward.tier,
                    code(update.error_code)
                );
                self.give_up(forward, &why, now).await;
                self.finish(&key, &owner, &finish(RecordState::GaveUp))
                    .await;
                return Ok(StatusHandled::GaveUp);
            }
        };
        let policy = CascadePolicy {
            heartbeat_max_age_secs: self.settings.heartbeat_max_age_secs,
            default_country: self.settings.default_country,
        };
        let plan = plan_after(&record, forward.tier, &policy);
        let relayed = Relayed {
            inbound_sid: &forward.inbound_sid,
            body: &text.body,
            media_urls: &text.media_urls,
            status_callback: text.status_callback.as_deref(),
        };
        let walk = walk_tiers(self.sender, &plan.targets, relayed).await;
        let mut attempts = vec![failed];
        attempts.extend(walk.attempts);
        match walk.end {
            WalkEnd::Sent { target, sent } => {
                let reason = cascade_reason(&plan, &attempts, Some(target.tier));
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
                    "failed delivery moved on"
                );
                if let Err(e) = self.log.record_moved_on(&moved).await {
                    // The text is out: a redelivered callback must not send it again,
                    // which the finished claim below ensures.
                    tracing::error!(message_sid = %forward.inbound_sid, error = %e, "moved on, but the message log could not be written");
                }
                self.finish(&key, &owner, &finish(RecordState::MovedOn))
                    .await;
                let mut alert = Alert::new(
                    AlertKind::Cascade,
                    forward.dispatcher_id.as_str(),
                    reason,
                    now,
                )
                .for_message(forward.inbound_sid.as_str());
                alert.routing_decision = Some(target.tier.as_str().to_string());
                alert.invalid_numbers = invalid_numbers(&plan);
                publish_or_log(self.alerts, &alert).await;
                Ok(StatusHandled::MovedOn {
                    tier: target.tier,
                    forwarded_sid: sent.sid,
                })
            }
            WalkEnd::Exhausted => {
                let reason = cascade_reason(&plan, &attempts, None);
                self.give_up(forward, &reason, now).await;
                self.finish(&key, &owner, &finish(RecordState::GaveUp))
                    .await;
                Ok(StatusHandled::GaveUp)
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
                    "{}: delivery failed (Twilio error {}); sending it on failed: {error}",
                    forward.tier,
                    code(update.error_code)
                );
                self.alert_undeliverable(forward, &reason, now).await;
                Err(RelayError::Twilio(error))
            }
        }
    }

    /// Nothing more can be done: ops are told, and the kept text is dropped.
    async fn give_up(&self, forward: &ForwardedMessage, reason: &str, now: i64) {
        self.alert_undeliverable(forward, reason, now).await;
        if let Err(e) = self.log.forget_relay_text(&forward.inbound_sid).await {
            tracing::error!(message_sid = %forward.inbound_sid, error = %e, "could not drop the kept text; it expires with the message");
        }
    }

    async fn alert_undeliverable(&self, forward: &ForwardedMessage, reason: &str, now: i64) {
        tracing::error!(message_sid = %forward.inbound_sid, forwarded_sid = %forward.sid, dispatcher_id = %forward.dispatcher_id, reason, "failed delivery could not be sent on");
        let alert = Alert::new(
            AlertKind::Undeliverable,
            forward.dispatcher_id.as_str(),
            reason,
            now,
        )
        .for_message(forward.inbound_sid.as_str());
        publish_or_log(self.alerts, &alert).await;
    }

    async fn finish(&self, key: &ClaimKey, owner: &ClaimOwner, finish: &Finish<'_>) {
        if let Err(e) = self.claims.finish(key, owner, finish).await {
            tracing::error!(key = %key, error = %e, "could not finish the move-on claim");
        }
    }
}

fn code(error_code: Option<u32>) -> String {
    error_code.map_or_else(|| "none".to_string(), |c| c.to_string())
}
