//! The handover text: when a dispatcher's stint as primary starts (a shift, an
//! override, or the fallback covering a gap), they get one text saying until when.
//!
//! The heartbeat runs every five minutes, so a stint's start is noticed within one
//! period. Each stint is claimed (`handover#<dispatcher>#<start>`, the one claim
//! mechanism), so retried or overlapping runs send it once. A stint whose text could
//! not go out is released and tried again by the next run, while it lasts.

use relay_core::claim::{ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, RecordState};
use relay_core::ids::DispatcherId;
use relay_core::phone::{CountryCode, PhoneNumber};
use relay_core::ports::{ClaimStore, Finish, OutgoingSms, SendError, SenderSource};
use relay_core::roster::Roster;
use relay_core::rota::handover_text;

/// How long a finished handover claim is kept after its stint ends.
const KEEP_AFTER_STINT_SECS: i64 = 86_400;
/// A stint with no known end keeps its claim this long (more than the rota's week).
const KEEP_OPEN_STINT_SECS: i64 = 9 * 86_400;

/// What one run did about the handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoverOutcome {
    /// No rota, or no change of primary within its horizon: nothing to hand over.
    NoStint,
    Sent,
    /// An earlier (or concurrent) run has it.
    AlreadySent,
    /// The primary's item is missing or has no usable phone (a configuration
    /// problem the heartbeat alerts); the next run tries again.
    NoPhone,
    /// Twilio or the secret failed; the next run tries again.
    Failed,
    /// Twilio took the request and never answered: it may be out, so never again.
    OutcomeUnknown,
    /// The claim could not be read or written; the next run tries again.
    StoreFailed,
}

impl HandoverOutcome {
    pub fn name(&self) -> &'static str {
        match self {
            HandoverOutcome::NoStint => "none",
            HandoverOutcome::Sent => "sent",
            HandoverOutcome::AlreadySent => "already_sent",
            HandoverOutcome::NoPhone => "no_phone",
            HandoverOutcome::Failed => "failed",
            HandoverOutcome::OutcomeUnknown => "outcome_unknown",
            HandoverOutcome::StoreFailed => "store_failed",
        }
    }
}

/// The handover's dependencies, borrowed for one run.
#[derive(Clone, Copy)]
pub struct Handovers<'a> {
    pub claims: &'a dyn ClaimStore,
    /// Read only when a text is due: most runs never need the Twilio secret.
    pub texts: &'a dyn SenderSource,
    pub default_country: CountryCode,
}

impl Handovers<'_> {
    /// Sends the current stint's handover text unless it went out already.
    pub async fn hand_over(
        &self,
        roster: &Roster,
        fallback: &DispatcherId,
        now: i64,
    ) -> HandoverOutcome {
        let (Some(rota), stint) = (roster.rota(), roster.stint_at(fallback, now)) else {
            return HandoverOutcome::NoStint;
        };
        let Some(since) = stint.since else {
            return HandoverOutcome::NoStint;
        };
        let dispatcher = &stint.duty.dispatcher;
        let key = ClaimKey::handover(dispatcher, since);
        let owner = ClaimOwner::random();
        let request = ClaimRequest::new(&key, relay_core::claim::RecordKind::Handover, &owner, now);
        match self.claims.claim(&request).await {
            Ok(ClaimOutcome::Acquired) => {}
            Ok(ClaimOutcome::Taken(_)) => return HandoverOutcome::AlreadySent,
            Err(e) => {
                tracing::error!(dispatcher_id = %dispatcher, error = %e, "handover claim unavailable; the next run tries again");
                return HandoverOutcome::StoreFailed;
            }
        }
        let phone = roster
            .record(dispatcher)
            .and_then(|record| record.phone.as_deref())
            .and_then(|raw| PhoneNumber::parse(raw, self.default_country).ok());
        let Some(phone) = phone else {
            tracing::error!(dispatcher_id = %dispatcher, primary_by = stint.duty.source.name(), "the incoming primary has no item or no usable phone; no handover text");
            self.release(&key, &owner).await;
            return HandoverOutcome::NoPhone;
        };
        let sms = OutgoingSms {
            to: phone.clone(),
            body: handover_text(rota, &stint),
            media_urls: Vec::new(),
            status_callback: None,
        };
        let sent = match self.texts.sender().await {
            Ok(sender) => sender.send(&sms).await,
            Err(why) => {
                tracing::error!(dispatcher_id = %dispatcher, error = %why, "no Twilio sender for the handover text; the next run tries again");
                self.release(&key, &owner).await;
                return HandoverOutcome::Failed;
            }
        };
        let expires_at = stint.until.map_or(since + KEEP_OPEN_STINT_SECS, |until| {
            until + KEEP_AFTER_STINT_SECS
        });
        let (state, outcome) = match &sent {
            Ok(_) => (RecordState::HandedOver, HandoverOutcome::Sent),
            Err(SendError::OutcomeUnknown { .. }) => {
                (RecordState::OutcomeUnknown, HandoverOutcome::OutcomeUnknown)
            }
            Err(e) => {
                tracing::error!(dispatcher_id = %dispatcher, to = %phone.masked(), error = %e, "handover text not sent; the next run tries again");
                self.release(&key, &owner).await;
                return HandoverOutcome::Failed;
            }
        };
        tracing::info!(dispatcher_id = %dispatcher, to = %phone.masked(), primary_by = stint.duty.source.name(), since, until = stint.until, outcome = outcome.name(), forwarded_sid = sent.as_ref().ok().map(|s| s.sid.as_str()), "handover text");
        let finish = Finish {
            state,
            response: None,
            detail: None,
            expires_at,
        };
        if let Err(e) = self.claims.finish(&key, &owner, &finish).await {
            // Its lock still keeps other runs off until it lapses.
            tracing::error!(dispatcher_id = %dispatcher, error = %e, "handover sent but its claim could not be finished");
        }
        outcome
    }

    async fn release(&self, key: &ClaimKey, owner: &ClaimOwner) {
        if let Err(e) = self.claims.release(key, owner).await {
            tracing::error!(claim = %key, error = %e, "could not release the handover claim; it lapses with its lock");
        }
    }
}
