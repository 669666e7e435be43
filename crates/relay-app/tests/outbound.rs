//! The outbound service over the in-memory adapters: idempotency, check-in and the
//! mapping of Twilio's answers, driven deterministically.

use relay_app::memory::{MemoryDispatcherStore, MemoryMessageLog, ScriptedSender};
use relay_app::outbound::{Outbound, OutboundError, Reply};
use relay_core::auth::AuthError;
use relay_core::claim::{IdempotencyKey, RecordState};
use relay_core::dispatcher::{DispatcherRecord, Flag};
use relay_core::ids::DispatcherId;
use relay_core::phone::CountryCode;
use relay_core::ports::SendError;
use relay_core::reply::OutboundRequest;
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;

fn dispatcher() -> DispatcherRecord {
    DispatcherRecord {
        dispatcher_id: DispatcherId::parse("sergio-main").unwrap(),
        phone: Some("+18585550100".into()),
        available: Flag::Set(true),
        last_heartbeat: Some(NOW - 1_000),
        backup_dispatcher: None,
        tertiary_contact: None,
        message_log_ttl: Some(600),
        on_duty: Flag::Set(true),
        problems: Vec::new(),
    }
}

fn request(body: &str) -> OutboundRequest {
    let json = json!({"to": "+16195550123", "body": body, "job_ref": "JOB-7"});
    OutboundRequest::parse(json.to_string().as_bytes(), CountryCode::NANP).unwrap()
}

struct World {
    dispatchers: MemoryDispatcherStore,
    log: MemoryMessageLog,
    sender: ScriptedSender,
}

impl World {
    fn new(sender: ScriptedSender) -> Self {
        World {
            dispatchers: MemoryDispatcherStore::with([dispatcher()]),
            log: MemoryMessageLog::default(),
            sender,
        }
    }

    async fn send(&self, body: &str, key: Option<&str>) -> Result<Reply, OutboundError> {
        let outbound = Outbound {
            dispatchers: &self.dispatchers,
            claims: &self.log,
            log: &self.log,
            sender: &self.sender,
            wait_for_first: std::time::Duration::ZERO,
        };
        let key = key.map(|k| IdempotencyKey::parse(k).unwrap());
        outbound
            .send(
                &dispatcher().dispatcher_id,
                &request(body),
                key.as_ref(),
                NOW,
            )
            .await
    }
}

fn parts(reply: &Reply) -> (u16, Value) {
    let response = match reply {
        Reply::Fresh(r) | Reply::Replayed(r) => r,
    };
    (
        response.status,
        serde_json::from_str(&response.body).unwrap(),
    )
}

#[tokio::test]
async fn a_send_answers_202_with_the_stamped_text_and_checks_the_dispatcher_in() {
    let world = World::new(ScriptedSender::default());
    let reply = world.send("On my way", None).await.unwrap();
    let (status, body) = parts(&reply);
    assert_eq!(status, 202);
    assert_eq!(body["to"], "+16195550123");
    assert_eq!(body["status"], "queued");
    let sent = world.sender.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(body["body"], sent[0].body);
    assert!(
        sent[0]
            .body
            .starts_with("On my way\n-- Job JOB-7 / sergio-main / ")
    );
    let record = world.dispatchers.record("sergio-main").unwrap();
    assert_eq!(record.last_heartbeat, Some(NOW));
    let sid = body["message_sid"].as_str().unwrap();
    let logged = world.log.entry(sid).unwrap().outbound.unwrap();
    assert_eq!(logged.job_ref.as_deref(), Some("JOB-7"));
    assert_eq!(logged.answers, None);
    assert_eq!(logged.expires_at, NOW + 600);
}

#[tokio::test]
async fn the_same_key_twice_sends_once_and_answers_the_same() {
    let world = World::new(ScriptedSender::default());
    let first = world.send("On my way", Some("k-1")).await.unwrap();
    let second = world.send("On my way", Some("k-1")).await.unwrap();
    assert!(matches!(first, Reply::Fresh(_)));
    assert!(matches!(second, Reply::Replayed(_)));
    assert_eq!(parts(&first), parts(&second));
    assert_eq!(world.sender.tried().len(), 1);
    // Another key is another request.
    world.send("On my way", Some("k-2")).await.unwrap();
    assert_eq!(world.sender.tried().len(), 2);
}

#[tokio::test]
async fn a_key_reused_for_another_body_is_refused() {
    let world = World::new(ScriptedSender::default());
    world.send("On my way", Some("k-1")).await.unwrap();
    let error = world.send("Running late", Some("k-1")).await.unwrap_err();
    assert!(matches!(error, OutboundError::IdempotencyKeyReused));
    assert_eq!(error.status().as_u16(), 422);
    assert_eq!(world.sender.tried().len(), 1);
}

#[tokio::test]
async fn a_key_in_flight_gets_409_and_no_send() {
    let world = World::new(ScriptedSender::default());
    let key = "k-1";
    // Another invocation holds the key and has not answered yet.
    use relay_core::claim::{ClaimKey, ClaimOwner, ClaimRequest, RecordKind};
    use relay_core::ports::ClaimStore;
    let claim_key = ClaimKey::idempotency(
        &dispatcher().dispatcher_id,
        &IdempotencyKey::parse(key).unwrap(),
    );
    let fingerprint = request("On my way").fingerprint();
    world
        .log
        .claim(&ClaimRequest {
            key: &claim_key,
            kind: RecordKind::Idempotency,
            owner: &ClaimOwner::random(),
            fingerprint: Some(&fingerprint),
            now: NOW,
            lock_secs: 60,
            reclaims: None,
        })
        .await
        .unwrap();
    let error = world.send("On my way", Some(key)).await.unwrap_err();
    assert!(matches!(error, OutboundError::InFlight), "{error}");
    assert_eq!(error.status().as_u16(), 409);
    assert!(world.sender.tried().is_empty());
}

#[tokio::test]
async fn a_failure_before_sending_does_not_block_a_retry() {
    let unavailable = SendError::Unavailable {
        detail: "HTTP 503".into(),
    };
    let world = World::new(ScriptedSender::failing_with([unavailable]));
    let first = world.send("On my way", Some("k-1")).await.unwrap();
    assert_eq!(parts(&first).0, 502);
    assert_eq!(parts(&first).1["error"], "twilio_unavailable");
    let retry = world.send("On my way", Some("k-1")).await.unwrap();
    assert!(matches!(retry, Reply::Fresh(_)));
    assert_eq!(parts(&retry).0, 202);
    assert_eq!(world.sender.sent().len(), 1);
    // No check-in for the failed try: only the send that worked counts.
    assert_eq!(world.dispatchers.last_heartbeat("sergio-main"), Some(NOW));
}

#[tokio::test]
async fn twilio_refusals_answer_422_with_twilios_code() {
    let refused = SendError::RecipientRefused {
        code: 21211,
        message: "The 'To' number ***0123 is not a valid phone number.".into(),
    };
    let world = World::new(ScriptedSender::failing_with([refused]));
    let reply = world.send("On my way", Some("k-1")).await.unwrap();
    let (status, body) = parts(&reply);
    assert_eq!(status, 422);
    assert_eq!(body["twilio_code"], 21211);
    assert!(
        body["twilio_message"]
            .as_str()
            .unwrap()
            .contains("not a valid")
    );
    assert_eq!(
        world.dispatchers.last_heartbeat("sergio-main"),
        Some(NOW - 1_000),
        "no check-in without a send"
    );
}

#[tokio::test]
async fn an_unanswered_send_answers_504_and_is_never_repeated_for_its_key() {
    let unknown = SendError::OutcomeUnknown {
        detail: "timed out".into(),
    };
    let world = World::new(ScriptedSender::failing_with([unknown]));
    let first = world.send("On my way", Some("k-1")).await.unwrap();
    assert_eq!(parts(&first).0, 504);
    let again = world.send("On my way", Some("k-1")).await.unwrap();
    assert!(matches!(again, Reply::Replayed(_)));
    assert_eq!(parts(&again), parts(&first));
    assert_eq!(world.sender.tried().len(), 1);
    let key = "idempotency#sergio-main#k-1";
    assert_eq!(
        world.log.entry(key).unwrap().state,
        RecordState::OutcomeUnknown
    );
}

/// The dispatcher read and the key's claim go out together: a request from a
/// dispatcher the table does not know is refused, and gives the claim back, so the same
/// request succeeds once the item exists instead of waiting out a leftover lock (409).
#[tokio::test]
async fn an_unknown_dispatcher_is_refused_and_leaves_no_claim_behind() {
    let world = World {
        dispatchers: MemoryDispatcherStore::default(),
        log: MemoryMessageLog::default(),
        sender: ScriptedSender::default(),
    };
    let error = world.send("On my way", Some("k-1")).await.unwrap_err();
    assert!(
        matches!(error, OutboundError::Auth(AuthError::UnknownDispatcher)),
        "{error:?}"
    );
    assert!(world.sender.tried().is_empty());

    world.dispatchers.put(dispatcher());
    let reply = world.send("On my way", Some("k-1")).await.unwrap();
    assert_eq!(parts(&reply).0, 202);
    assert_eq!(world.sender.tried().len(), 1);
}

/// An unknown dispatcher is answered before a body too long to send, as before the
/// reads overlapped; a known one gets the 400.
#[tokio::test]
async fn an_unknown_dispatcher_is_answered_before_a_body_too_long() {
    let long = "x".repeat(1_600);
    let stranger = World {
        dispatchers: MemoryDispatcherStore::default(),
        log: MemoryMessageLog::default(),
        sender: ScriptedSender::default(),
    };
    let error = stranger.send(&long, Some("k-1")).await.unwrap_err();
    assert_eq!(error.status().as_u16(), 401, "{error:?}");
    let known = World::new(ScriptedSender::default());
    let error = known.send(&long, Some("k-1")).await.unwrap_err();
    assert_eq!(error.status().as_u16(), 400, "{error:?}");
    assert!(stranger.sender.tried().is_empty() && known.sender.tried().is_empty());
}
