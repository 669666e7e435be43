//! `sms-outbound`: a dispatcher's reply reaches the driver once, stamped.
//!
//! [`Outbound::send`] takes an authenticated dispatcher's checked request, claims its
//! `Idempotency-Key` (if any) with the same claim mechanism inbound webhooks use,
//! sends the stamped text through Twilio, and records the answer so a retry of the
//! request gets it again instead of a second text. [`http`] turns Lambda HTTP events
//! into calls of it; [`OutboundError::status`] is where failures become statuses.

pub mod http;
pub mod request;

use std::time::{Duration, Instant};

use lambda_http::http::StatusCode;
use serde_json::json;

use crate::api::error_body;
use crate::auth::AuthError;
use crate::claim::{
    CLAIM_LOCK_SECS, ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, ExistingRecord,
    IdempotencyKey, IdempotencyKeyError, RecordKind, RecordState, StoredResponse,
};
use crate::dispatcher::DispatcherRecord;
use crate::metric;
use crate::ports::{
    ClaimStore, DispatcherStore, Finish, OutboundLog, OutboundRecord, OutgoingSms, SendError,
    SentSms, SmsSender, StoreError,
};
use request::{OutboundRequest, RequestError};

/// How long an answer is kept for retries of the same `Idempotency-Key` (the IETF
/// draft suggests a day).
pub const IDEMPOTENCY_TTL_SECS: i64 = 86_400;

/// Every way an outbound request can fail; [`OutboundError::status`] maps them.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    IdempotencyKey(#[from] IdempotencyKeyError),
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    InFlight,
    /// The details are logged; the answer says only which store.
    #[error("the message store is unavailable")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Twilio(SendError),
}

impl OutboundError {
    pub fn status(&self) -> StatusCode {
        match self {
            OutboundError::Auth(_) => StatusCode::UNAUTHORIZED,
            OutboundError::Request(_) | OutboundError::IdempotencyKey(_) => StatusCode::BAD_REQUEST,
            OutboundError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            OutboundError::InFlight => StatusCode::CONFLICT,
            OutboundError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            OutboundError::Twilio(e) => match e {
                SendError::RecipientRefused { .. } | SendError::Rejected { .. } => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                SendError::Unavailable { .. } => StatusCode::BAD_GATEWAY,
                SendError::OutcomeUnknown { .. } => StatusCode::GATEWAY_TIMEOUT,
            },
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            OutboundError::Auth(e) => e.code(),
            OutboundError::Request(e) => e.code(),
            OutboundError::IdempotencyKey(_) => "invalid_idempotency_key",
            OutboundError::IdempotencyKeyReused => "idempotency_key_reused",
            OutboundError::InFlight => "request_in_flight",
            OutboundError::Store(_) => "store_unavailable",
            OutboundError::Twilio(e) => match e {
                SendError::RecipientRefused { .. } | SendError::Rejected { .. } => {
                    "twilio_rejected"
                }
                SendError::Unavailable { .. } => "twilio_unavailable",
                SendError::OutcomeUnknown { .. } => "twilio_outcome_unknown",
            },
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            OutboundError::Request(e) => e.field(),
            OutboundError::IdempotencyKey(_) => Some("Idempotency-Key"),
            _ => None,
        }
    }

    /// The JSON answer: the shared error shape, plus Twilio's code and message when
    /// Twilio refused the request.
    pub fn response(&self) -> StoredResponse {
        let extra = match self {
            OutboundError::Twilio(
                SendError::RecipientRefused { code, message }
                | SendError::Rejected { code, message, .. },
            ) => Some(json!({ "twilio_code": code, "twilio_message": message })),
            _ => None,
        };
        let body = error_body(self.code(), &self.to_string(), self.field(), extra);
        StoredResponse {
            status: self.status().as_u16(),
            body: body.to_string(),
        }
    }
}

/// A text Twilio accepted: the `202` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub sent: SentSms,
    pub to: String,
    pub body: String,
}

impl Accepted {
    pub fn response(&self) -> StoredResponse {
        let body = json!({
            "message_sid": self.sent.sid.as_str(),
            "status": self.sent.status.as_str(),
            "to": self.to,
            "body": self.body,
        });
        StoredResponse {
            status: StatusCode::ACCEPTED.as_u16(),
            body: body.to_string(),
        }
    }
}

/// What the caller answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// This request's own outcome.
    Fresh(StoredResponse),
    /// The stored answer of the first request with this `Idempotency-Key`.
    Replayed(StoredResponse),
}

/// How often a request whose `Idempotency-Key` is in flight looks for the answer.
const IN_FLIGHT_POLL: Duration = Duration::from_millis(200);

/// The outbound service's dependencies, borrowed for one invocation.
pub struct Outbound<'a> {
    pub dispatchers: &'a dyn DispatcherStore,
    pub claims: &'a dyn ClaimStore,
    pub log: &'a dyn OutboundLog,
    pub sender: &'a dyn SmsSender,
    /// How long a request whose key is in flight waits for the first one's answer
    /// (to replay it) before answering `409`.
    pub wait_for_first: Duration,
}

impl Outbound<'_> {
    /// Sends `request` for `dispatcher` (authenticated, and read from the state table),
    /// at most once per `key`.
    pub async fn send(
        &self,
        dispatcher: &DispatcherRecord,
        request: &OutboundRequest,
        key: Option<&IdempotencyKey>,
        now: i64,
    ) -> Result<Reply, OutboundError> {
        let text = request.stamped(&dispatcher.dispatcher_id, now)?;
        let Some(key) = key else {
            return Ok(Reply::Fresh(
                match self.deliver(dispatcher, request, text, now).await {
                    Ok(accepted) => accepted.response(),
                    Err(error) => error.response(),
                },
            ));
        };
        let claim_key = ClaimKey::idempotency(&dispatcher.dispatcher_id, key);
        let owner = ClaimOwner::random();
        let fingerprint = request.fingerprint();
        let claim = ClaimRequest {
            key: &claim_key,
            kind: RecordKind::Idempotency,
            owner: &owner,
            fingerprint: Some(&fingerprint),
            now,
            lock_secs: CLAIM_LOCK_SECS,
        };
        let waiting_since = Instant::now();
        loop {
            let waited = waiting_since.elapsed();
            let claim = ClaimRequest {
                now: now + waited.as_secs() as i64,
                ..claim.clone()
            };
            match self.claims.claim(&claim).await? {
                ClaimOutcome::Acquired => break,
                ClaimOutcome::Taken(existing) => match replay(existing, &fingerprint) {
                    Err(OutboundError::InFlight) if waited < self.wait_for_first => {
                        tokio::time::sleep(IN_FLIGHT_POLL).await;
                    }
                    answer => return answer,
                },
            }
        }
        let result = self.deliver(dispatcher, request, text, now).await;
        let state = match &result {
            Ok(_) => RecordState::Answered,
            // The text may be out: the key must never send again.
            Err(OutboundError::Twilio(SendError::OutcomeUnknown { .. })) => {
                RecordState::OutcomeUnknown
            }
            // Nothing went out: a retry with this key may try again.
            Err(_) => {
                if let Err(e) = self.claims.release(&claim_key, &owner).await {
                    tracing::error!(key = %claim_key, error = %e, "could not release the idempotency claim; a retry waits for its lock to lapse");
                }
                return Ok(Reply::Fresh(result.unwrap_err().response()));
            }
        };
        let response = match &result {
            Ok(accepted) => accepted.response(),
            Err(error) => error.response(),
        };
        let finish = Finish {
            state,
            response: Some(&response),
            detail: result.as_ref().err().map(|_| "Twilio did not answer"),
            expires_at: now + IDEMPOTENCY_TTL_SECS,
        };
        if let Err(e) = self.claims.finish(&claim_key, &owner, &finish).await {
            // The outcome stands (the text is out, or may be); a retry after the lock
            // lapses could send again, so say so loudly.
            tracing::error!(key = %claim_key, error = %e, "could not store the answer for the Idempotency-Key");
        }
        Ok(Reply::Fresh(response))
    }

    async fn deliver(
        &self,
        dispatcher: &DispatcherRecord,
        request: &OutboundRequest,
        text: String,
        now: i64,
    ) -> Result<Accepted, OutboundError> {
        let sms = OutgoingSms {
            to: request.to.clone(),
            body: text,
            media_urls: Vec::new(),
            status_callback: None,
        };
        let id = &dispatcher.dispatcher_id;
        let sent = match self.sender.send(&sms).await {
            Ok(sent) => sent,
            Err(error) => {
                tracing::warn!(dispatcher_id = %id, to = %request.to.masked(), job_ref = %request.job_ref, %error, "outbound text not sent");
                let error = OutboundError::Twilio(error);
                metric::outbound_failed(error.code());
                return Err(error);
            }
        };
        tracing::info!(dispatcher_id = %id, message_sid = %sent.sid, to = %request.to.masked(), job_ref = %request.job_ref, "outbound text sent");
        metric::outbound_sent();
        // The text is out: failing to record it must not turn the answer into an error
        // that invites a second send.
        match self.dispatchers.check_in(id, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(dispatcher_id = %id, "dispatcher item vanished before its check-in")
            }
            Err(e) => tracing::error!(dispatcher_id = %id, error = %e, "check-in not recorded"),
        }
        let record = OutboundRecord {
            sid: sent.sid.clone(),
            dispatcher_id: id.clone(),
            to: request.to.clone(),
            job_ref: request.job_ref.clone(),
            delivery_status: sent.status,
            sent_at: now,
            expires_at: now + dispatcher.message_log_ttl_secs() as i64,
        };
        if let Err(e) = self.log.record_outbound(&record).await {
            tracing::error!(message_sid = %sent.sid, error = %e, "outbound text sent but not logged");
        }
        Ok(Accepted {
            sent,
            to: request.to.to_string(),
            body: sms.body,
        })
    }
}

/// What a request whose key is already claimed gets.
fn replay(existing: ExistingRecord, fingerprint: &str) -> Result<Reply, OutboundError> {
    if existing.fingerprint.as_deref() != Some(fingerprint) {
        return Err(OutboundError::IdempotencyKeyReused);
    }
    match (existing.state, existing.response) {
        (RecordState::InProgress, _) => Err(OutboundError::InFlight),
        (_, Some(response)) => Ok(Reply::Replayed(response)),
        // A finished idempotency record always stores its answer; without one, the
        // safe answer is "not now" rather than a second send.
        (_, None) => Err(OutboundError::InFlight),
    }
}
