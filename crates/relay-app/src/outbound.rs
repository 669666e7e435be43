//! `sms-outbound`: a dispatcher's reply reaches the driver once, stamped.
//!
//! [`Outbound::send`] takes an authenticated dispatcher's checked request, claims its
//! `Idempotency-Key` (if any) with the same claim mechanism inbound webhooks use,
//! sends the stamped text through Twilio, and records the answer so a retry of the
//! request gets it again instead of a second text. [`http`] turns Lambda HTTP events
//! into calls of it; [`OutboundError::status`] is where failures become statuses.

use std::future::Future;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use crate::answer::error_body;
use crate::metric;
use relay_core::auth::AuthError;
use relay_core::claim::{
    ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, ExistingRecord, IdempotencyKey,
    IdempotencyKeyError, RecordKind, RecordState, StoredResponse,
};
use relay_core::dispatcher::DispatcherRecord;
use relay_core::ids::DispatcherId;
use relay_core::phone::PhoneNumber;
use relay_core::ports::{
    ClaimStore, DispatcherStore, Finish, OutboundLog, OutboundRecord, OutgoingSms, SendError,
    SentSms, SmsSender, StoreError,
};
use relay_core::reply::{OutboundRequest, RequestError};

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
    /// Sends `request` for the authenticated dispatcher `id`, at most once per `key`.
    ///
    /// Three sequential network steps on the way to a `202`: the dispatcher's item
    /// and the key's claim, together; Twilio; then the check-in, the log item and the
    /// stored answer, together.
    pub async fn send(
        &self,
        id: &DispatcherId,
        request: &OutboundRequest,
        key: Option<&IdempotencyKey>,
        now: i64,
    ) -> Result<Reply, OutboundError> {
        let text = match request.stamped(id, now) {
            Ok(text) => text,
            Err(error) => {
                // An unknown dispatcher is answered before a bad body.
                self.dispatcher(id).await?;
                return Err(error.into());
            }
        };
        let Some(key) = key else {
            let dispatcher = self.dispatcher(id).await?;
            let response = match self.deliver(&dispatcher, request, text).await {
                Ok(accepted) => {
                    self.record_sent(&dispatcher, request, &accepted, now, None)
                        .await;
                    accepted.response()
                }
                Err(error) => error.response(),
            };
            return Ok(Reply::Fresh(response));
        };
        let claim_key = ClaimKey::idempotency(id, key);
        let owner = ClaimOwner::random();
        let fingerprint = request.fingerprint();
        let claim = ClaimRequest {
            fingerprint: Some(&fingerprint),
            ..ClaimRequest::new(&claim_key, RecordKind::Idempotency, &owner, now)
        };
        // Independent reads: overlapping them saves a round trip on every request.
        let (dispatcher, mut claimed) =
            tokio::join!(self.dispatcher(id), self.claims.claim(&claim));
        let dispatcher = match dispatcher {
            Ok(dispatcher) => dispatcher,
            Err(error) => {
                if matches!(claimed, Ok(ClaimOutcome::Acquired)) {
                    self.release(&claim_key, &owner).await;
                }
                return Err(error);
            }
        };
        let waiting_since = Instant::now();
        loop {
            match claimed? {
                ClaimOutcome::Acquired => break,
                ClaimOutcome::Taken(existing) => match replay(existing, &fingerprint) {
                    Err(OutboundError::InFlight)
                        if waiting_since.elapsed() < self.wait_for_first =>
                    {
                        tokio::time::sleep(IN_FLIGHT_POLL).await;
                    }
                    answer => return answer,
                },
            }
            let waited = waiting_since.elapsed();
            let claim = ClaimRequest {
                now: now + waited.as_secs() as i64,
                ..claim.clone()
            };
            claimed = self.claims.claim(&claim).await;
        }
        let (state, response) = match self.deliver(&dispatcher, request, text).await {
            Ok(accepted) => {
                let response = accepted.response();
                let finish = Finish {
                    state: RecordState::Answered,
                    response: Some(&response),
                    detail: None,
                    expires_at: now + IDEMPOTENCY_TTL_SECS,
                };
                let held = (&claim_key, &owner, &finish);
                self.record_sent(&dispatcher, request, &accepted, now, Some(held))
                    .await;
                return Ok(Reply::Fresh(response));
            }
            // The text may be out: the key must never send again.
            Err(error @ OutboundError::Twilio(SendError::OutcomeUnknown { .. })) => {
                (RecordState::OutcomeUnknown, error.response())
            }
            // Nothing went out: a retry with this key may try again.
            Err(error) => {
                self.release(&claim_key, &owner).await;
                return Ok(Reply::Fresh(error.response()));
            }
        };
        let finish = Finish {
            state,
            response: Some(&response),
            detail: Some("Twilio did not answer"),
            expires_at: now + IDEMPOTENCY_TTL_SECS,
        };
        self.store_answer(&claim_key, &owner, &finish).await;
        Ok(Reply::Fresh(response))
    }

    async fn dispatcher(&self, id: &DispatcherId) -> Result<DispatcherRecord, OutboundError> {
        self.dispatchers
            .get(id)
            .await?
            .ok_or(OutboundError::Auth(AuthError::UnknownDispatcher))
    }

    async fn release(&self, key: &ClaimKey, owner: &ClaimOwner) {
        if let Err(e) = self.claims.release(key, owner).await {
            tracing::error!(key = %key, error = %e, "could not release the idempotency claim; a retry waits for its lock to lapse");
        }
    }

    async fn store_answer(&self, key: &ClaimKey, owner: &ClaimOwner, finish: &Finish<'_>) {
        if let Err(e) = self.claims.finish(key, owner, finish).await {
            // The outcome stands (the text is out, or may be); a retry after the lock
            // lapses could send again, so say so loudly.
            tracing::error!(key = %key, error = %e, "could not store the answer for the Idempotency-Key");
        }
    }

    fn texts(&self) -> DriverTexts<'_> {
        DriverTexts {
            sender: self.sender,
            dispatchers: self.dispatchers,
            log: self.log,
        }
    }

    /// Sends the stamped text: Twilio's answer, nothing recorded yet.
    async fn deliver(
        &self,
        dispatcher: &DispatcherRecord,
        request: &OutboundRequest,
        text: String,
    ) -> Result<Accepted, OutboundError> {
        let id = &dispatcher.dispatcher_id;
        match self.texts().send(&request.to, &text).await {
            Ok(sent) => {
                tracing::info!(dispatcher_id = %id, message_sid = %sent.sid, to = %request.to.masked(), job_ref = %request.job_ref, "outbound text sent");
                metric::outbound_sent();
                Ok(Accepted {
                    sent,
                    to: request.to.to_string(),
                    body: text,
                })
            }
            Err(error) => {
                tracing::warn!(dispatcher_id = %id, to = %request.to.masked(), job_ref = %request.job_ref, %error, "outbound text not sent");
                let error = OutboundError::Twilio(error);
                metric::outbound_failed(error.code());
                Err(error)
            }
        }
    }

    /// After a send: the dispatcher's check-in, the log item and (with a key) the
    /// stored answer, written together. The text is out: none of them failing may turn
    /// the answer into an error that invites a second send.
    async fn record_sent(
        &self,
        dispatcher: &DispatcherRecord,
        request: &OutboundRequest,
        accepted: &Accepted,
        now: i64,
        answer: Option<(&ClaimKey, &ClaimOwner, &Finish<'_>)>,
    ) {
        let id = &dispatcher.dispatcher_id;
        let record = OutboundRecord {
            sid: accepted.sent.sid.clone(),
            dispatcher_id: id.clone(),
            to: request.to.clone(),
            job_ref: Some(request.job_ref.clone()),
            answers: None,
            delivery_status: accepted.sent.status,
            sent_at: now,
            expires_at: now + dispatcher.message_log_ttl_secs() as i64,
        };
        let store = async {
            if let Some((key, owner, finish)) = answer {
                self.store_answer(key, owner, finish).await;
            }
        };
        self.texts()
            .record_sent(&record, std::slice::from_ref(id), now, store)
            .await;
    }
}

/// The one way a dispatcher's words reach a driver, whether through `sms-outbound`'s
/// API or as an answer by text: the send through Twilio (its errors, retries and the
/// unknown-outcome rule are the sender's), then the check-in and the log item.
#[derive(Clone, Copy)]
pub struct DriverTexts<'a> {
    pub sender: &'a dyn SmsSender,
    pub dispatchers: &'a dyn DispatcherStore,
    pub log: &'a dyn OutboundLog,
}

impl DriverTexts<'_> {
    /// Sends the stamped `text` to the driver `to` from the QDN number.
    pub async fn send(&self, to: &PhoneNumber, text: &str) -> Result<SentSms, SendError> {
        let sms = OutgoingSms {
            to: to.clone(),
            body: text.to_string(),
            media_urls: Vec::new(),
            status_callback: None,
        };
        self.sender.send(&sms).await
    }

    /// After a send: each of `check_ins` checks in, the log item is written, and
    /// `also` (the caller's own record) runs, all together. The text is out: a
    /// failure is logged, never returned.
    pub async fn record_sent(
        &self,
        record: &OutboundRecord,
        check_ins: &[DispatcherId],
        now: i64,
        also: impl Future<Output = ()>,
    ) {
        let check_in = async {
            for id in check_ins {
                match self.dispatchers.check_in(id, now).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(dispatcher_id = %id, "dispatcher item vanished before its check-in")
                    }
                    Err(e) => {
                        tracing::error!(dispatcher_id = %id, error = %e, "check-in not recorded")
                    }
                }
            }
        };
        let log = async {
            if let Err(e) = self.log.record_outbound(record).await {
                tracing::error!(message_sid = %record.sid, error = %e, "text to the driver sent but not logged");
            }
        };
        tokio::join!(check_in, log, also);
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
