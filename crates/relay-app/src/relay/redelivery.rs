//! `qdn redeliver`: an operator sends a text that reached nobody down the cascade
//! again, once the cause is mended. It is the relay's own sequence, from whoever is
//! primary now: a text never sent goes out under its inbound claim as the webhook
//! sends it (a retry of the webhook and the operator exclude each other); a text sent
//! before moves on under the claim of its n-th redelivery. Either way, of operators
//! running it at once, one sends it.

use relay_core::cascade::Tier;
use relay_core::claim::{ClaimKey, ClaimOutcome, ClaimRequest, RecordKind, RecordState};
use relay_core::fate::{MessageSummary, Refusal, Unreached};
use relay_core::ids::MessageSid;
use relay_core::ports::{Finish, RelayText};
use relay_core::sms::InboundSms;

use super::forwarding::Held;
use super::move_on::{MoveCause, MoveOnService, Moved, Repeats};
use super::{DriversText, Relay, RelayError, primary_record};

/// What a redelivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redelivered {
    /// It went out to `tier`; it had reached nobody as `was`.
    Sent {
        tier: Tier,
        forwarded_sid: MessageSid,
        was: Unreached,
    },
    /// It reached nobody again; `reason` says why, tier by tier.
    ReachedNobody { reason: String },
    /// Nothing was sent, and why.
    Refused(Refusal),
}

impl Relay<'_> {
    /// Sends driver's text `sid` again, if it reached nobody.
    pub async fn redeliver(&self, sid: &MessageSid, now: i64) -> Result<Redelivered, RelayError> {
        let Some(logged) = self.ports.log.logged_text(sid, now).await? else {
            return Ok(Redelivered::Refused(Refusal::Unknown));
        };
        let summary = &logged.summary;
        let was = match summary.redeliverable() {
            Ok(was) => was,
            Err(refusal) => return Ok(Redelivered::Refused(refusal)),
        };
        let Some(kept) = logged.kept.clone() else {
            return Ok(Redelivered::Refused(Refusal::TextGone));
        };
        let Some(forwarded_sid) = &summary.forwarded_sid else {
            return self
                .redeliver_unsent(summary, kept, logged.body_truncated, was, now)
                .await;
        };
        let Some(forward) = self.ports.log.forwarded(forwarded_sid, now).await? else {
            return Ok(Redelivered::Refused(Refusal::TextGone));
        };
        let service = MoveOnService {
            default_country: self.settings.default_country,
            heartbeat_max_age_secs: self.settings.heartbeat_max_age_secs,
            // A redelivery is one walk; repeats are for the timers.
            repeats: Repeats {
                rounds: 0,
                fallback_primary: &self.settings.primary_dispatcher_id,
            },
            ports: self.ports,
        };
        let cause = MoveCause::Redelivered {
            nth: summary.redeliveries,
            received_at: summary.received_at,
        };
        Ok(match service.move_on(&forward, cause, now).await? {
            Moved::MovedOn {
                tier,
                forwarded_sid,
            } => sent(sid, tier, forwarded_sid, was),
            Moved::GaveUp => Redelivered::ReachedNobody {
                reason: self.why_unreached(sid, now).await,
            },
            Moved::AlreadyMovedOn => Redelivered::Refused(Refusal::BeingRedelivered),
        })
    }

    /// A text never sent: under its inbound claim, taken over from its record.
    /// `Ok(Err(reason))` when it reached nobody again.
    async fn redeliver_unsent(
        &self,
        summary: &MessageSummary,
        kept: RelayText,
        body_truncated: bool,
        was: Unreached,
        now: i64,
    ) -> Result<Redelivered, RelayError> {
        let claim = Held::new(ClaimKey::inbound(&summary.sid));
        let request = ClaimRequest::new(&claim.key, RecordKind::Inbound, &claim.owner, now)
            // An operator may send a text whose first send's outcome was unknown.
            .reclaiming(RecordState::OutcomeUnknown);
        if let ClaimOutcome::Taken(existing) = self.ports.claims.claim(&request).await? {
            tracing::info!(message_sid = %summary.sid, state = %existing.state, "someone else holds this text; not redelivering it");
            return Ok(Redelivered::Refused(Refusal::BeingRedelivered));
        }
        let sms = InboundSms {
            sid: summary.sid.clone(),
            from: summary.from.clone().unwrap_or_default(),
            to: summary.to.clone().unwrap_or_default(),
            body: kept.body.clone(),
            media_urls: kept.media_urls.clone(),
        };
        let text = DriversText {
            sms: &sms,
            kept,
            body_truncated,
            received_at: summary.received_at,
            redeliveries: Some(summary.redeliveries + 1),
        };
        let expires_at = summary.expires_at.unwrap_or(now + 86_400);
        let primary = self
            .ports
            .dispatchers
            .roster()
            .await
            .map_err(RelayError::from)
            .and_then(|roster| {
                let record = primary_record(&roster, &self.settings.primary_dispatcher_id, now)?;
                Ok((roster, record))
            });
        let (roster, record) = match primary {
            Ok(found) => found,
            Err(error) => {
                self.give_back(&claim, &error.to_string(), expires_at).await;
                self.alert_undeliverable(&sms, &error, now).await;
                return Err(error);
            }
        };
        // Past this point a text that reaches nobody is recorded so by the sequence.
        match self
            .forward_drivers_text(text, &claim, &roster, &record, now)
            .await
        {
            Ok((tier, forwarded_sid)) => Ok(sent(&summary.sid, tier, forwarded_sid, was)),
            Err(RelayError::NoTierReachable(reason)) => {
                self.alert_undeliverable(&sms, &RelayError::NoTierReachable(reason.clone()), now)
                    .await;
                Ok(Redelivered::ReachedNobody { reason })
            }
            Err(error) => {
                self.alert_undeliverable(&sms, &error, now).await;
                Err(error)
            }
        }
    }

    /// Leaves the text as it was found, undelivered and with its words (the claim
    /// kept them), for the next try.
    async fn give_back(&self, claim: &Held, why: &str, expires_at: i64) {
        let finish = Finish {
            state: RecordState::Undelivered,
            response: None,
            detail: Some(why),
            expires_at,
        };
        self.ports.finish(claim, &finish).await;
    }

    /// Why a text that moved on reached nobody, as its item now says.
    async fn why_unreached(&self, sid: &MessageSid, now: i64) -> String {
        match self.ports.log.logged_text(sid, now).await {
            Ok(Some(logged)) => logged
                .summary
                .failure
                .unwrap_or_else(|| "no tier could be reached".into()),
            _ => "no tier could be reached".into(),
        }
    }
}

fn sent(sid: &MessageSid, tier: Tier, forwarded_sid: MessageSid, was: Unreached) -> Redelivered {
    tracing::info!(message_sid = %sid, routing_decision = tier.as_str(), forwarded_sid = %forwarded_sid, was = was.as_str(), "redelivered by an operator");
    Redelivered::Sent {
        tier,
        forwarded_sid,
        was,
    }
}
