//! Twilio's status callbacks for the texts we forward (`POST /api/v1/sms/status`).
//!
//! Each status lands on the forwarded message's log items, and only ever moves it
//! forward. `undelivered` / `failed` records a delivery failure against the number the
//! text went to and sends the text on to the tiers after the one that failed, at once
//! and once (a claim per failed message), with a `cascade` alert; past the last tier,
//! an `undeliverable` alert.

use relay_core::cascade::Tier;
use relay_core::delivery::StatusUpdate;
use relay_core::ids::MessageSid;

use super::move_on::{MoveCause, MoveOnService, Moved, Repeats};
use super::{RelayError, RelayPorts};
use crate::config::InboundSettings;
use crate::metric;

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
    pub ports: RelayPorts<'a>,
}

impl StatusCallbacks<'_> {
    pub async fn handle(
        &self,
        update: &StatusUpdate,
        now: i64,
    ) -> Result<StatusHandled, RelayError> {
        let Some(forward) = self.ports.log.forwarded(&update.sid, now).await? else {
            tracing::info!(message_sid = %update.sid, status = %update.status, "status callback for a message we did not forward (or whose log expired); nothing to do");
            return Ok(StatusHandled::UnknownMessage);
        };
        let recorded = self
            .ports
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
            if let Some(sent_at) = forward.sent_at {
                metric::delivered_after(now - sent_at);
            }
            self.ports
                .deliveries
                .record_delivery(&forward.to, true, None, now)
                .await?;
            // It reached someone: the text is not needed again, unless acknowledgement
            // is on and nobody has acknowledged it yet (an escalation would need it;
            // the ACK drops it).
            if self.ports.acks.is_none() {
                self.ports.log.resolved(&forward.inbound_sid).await?;
            }
        } else if update.status.is_failure() {
            metric::delivery_failed();
            self.ports
                .deliveries
                .record_delivery(&forward.to, false, update.error_code, now)
                .await?;
            let service = MoveOnService {
                default_country: self.settings.default_country,
                heartbeat_max_age_secs: self.settings.heartbeat_max_age_secs,
                // Repeats are for texts nobody acknowledged, never failed deliveries.
                repeats: Repeats {
                    rounds: 0,
                    fallback_primary: &self.settings.primary_dispatcher_id,
                },
                ports: self.ports,
            };
            let cause = MoveCause::DeliveryFailed {
                error_code: update.error_code,
            };
            return Ok(match service.move_on(&forward, cause, now).await? {
                Moved::MovedOn {
                    tier,
                    forwarded_sid,
                } => StatusHandled::MovedOn {
                    tier,
                    forwarded_sid,
                },
                Moved::GaveUp => StatusHandled::GaveUp,
                Moved::AlreadyMovedOn => StatusHandled::AlreadyMovedOn,
            });
        }
        Ok(StatusHandled::Recorded)
    }
}
