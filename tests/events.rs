//! The sample events in `events/` (for `cargo lambda invoke --data-file` and `sam local
//! invoke -e`) get the answers `events/README.md` says they get: each file, as it is,
//! through the built function under the Runtime API, with the JWT secret holding the
//! documented local demo key.

use std::path::PathBuf;

use relay_tests::stack::{HttpAnswer, Stack, seed_dispatcher, unix_now};
use relay_tests::tokens::{self, HmacBits};
use serde_json::Value;

/// The local demo key the outbound events are signed with (`events/README.md`). Only
/// ever for local runs.
const DEMO_KEY: &str = "qdn-local-demo-jwt-key-0123456789abcdef";
const DRIVER: &str = "+16195550123";

/// Every `events/outbound-*.json`, with the status and error code it is documented to get.
const OUTBOUND_EVENTS: &[(&str, u16, Option<&str>)] = &[
    ("outbound-send.json", 202, None),
    ("outbound-expired-token.json", 401, Some("token_expired")),
    ("outbound-bad-request.json", 400, Some("missing_field")),
    ("outbound-alg-none.json", 401, Some("wrong_algorithm")),
];

fn events_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"))
}

fn event(file: &str) -> Value {
    let path = events_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An `sms-outbound` stack whose JWT secret holds [`DEMO_KEY`] from the function's
/// first read on, and the seed's dispatcher.
async fn demo_stack(prefix: &str) -> Stack {
    let stack = Stack::start_function("sms-outbound", prefix, 0, &[]).await;
    stack
        .aws
        .rotate_secret(&stack.aws.jwt_secret_id, DEMO_KEY)
        .await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    with_instance(stack, "sms-outbound")
}

/// Adds one process of `function` to a stack started with none.
fn with_instance(mut stack: Stack, function: &str) -> Stack {
    let mut env = stack.aws.function_env();
    env.push(("TWILIO_API_BASE".into(), stack.twilio.base_url()));
    stack.functions.push(relay_tests::FunctionProcess::spawn(
        function,
        &stack.runtime,
        &env,
    ));
    stack
}

fn json_body(answer: &HttpAnswer) -> Value {
    assert_eq!(
        answer.headers.get("content-type").map(String::as_str),
        Some("application/json"),
        "{answer:?}"
    );
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body))
}

/// The bearer token of an event's `Authorization` header.
fn bearer(event: &Value) -> &str {
    event["headers"]["Authorization"]
        .as_str()
        .and_then(|h| h.strip_prefix("Bearer "))
        .expect("a Bearer Authorization header")
}

/// Invokes `file` on a fresh demo stack and checks the documented refusal: `status`,
/// the JSON error `code`, and nothing sent.
async fn assert_refused(prefix: &str, file: &str) -> Value {
    let (_, status, code) = OUTBOUND_EVENTS
        .iter()
        .find(|(f, _, _)| *f == file)
        .expect("a listed event");
    let stack = demo_stack(prefix).await;
    let answer = stack.invoke(event(file)).await;
    assert_eq!(answer.status, *status, "{file}: {answer:?}");
    let body = json_body(&answer);
    assert_eq!(body["error"].as_str(), *code, "{file}: {body}");
    assert!(stack.sent().is_empty(), "{file}: {:?}", stack.sent());
    stack.stop().await;
    body
}

#[test]
fn every_outbound_event_file_is_covered_here() {
    let mut on_disk: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("outbound-") && name.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = OUTBOUND_EVENTS
        .iter()
        .map(|(f, _, _)| f.to_string())
        .collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

/// The tokens are what `events/README.md` says: HS256 over the demo key for
/// `sergio-main`, `iat` 2026-11-24, `exp` 2100-01-01 (or the past, for the expired one),
/// and an unsigned `alg: none` forgery.
#[test]
fn the_event_tokens_are_the_documented_ones() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&B64URL.decode(part).expect("base64url")).expect("JSON")
    };
    for (file, alg, exp) in [
        ("outbound-send.json", "HS256", 4_102_444_800_i64),
        ("outbound-bad-request.json", "HS256", 4_102_444_800),
        ("outbound-expired-token.json", "HS256", 1_700_000_000),
        ("outbound-alg-none.json", "none", 4_102_444_800),
    ] {
        let event = event(file);
        let token = bearer(&event);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{file}: {token}");
        assert_eq!(decode(parts[0])["alg"], alg, "{file}");
        let claims = decode(parts[1]);
        assert_eq!(claims["sub"], "sergio-main", "{file}");
        assert_eq!(claims["exp"], exp, "{file}");
        assert_eq!(claims["iat"], 1_795_478_400, "{file}");
        let signature = B64URL.decode(parts[2]).expect("base64url");
        if alg == "none" {
            assert!(signature.is_empty(), "{file}");
        } else {
            let input = token.rsplit_once('.').unwrap().0;
            assert_eq!(
                signature,
                HmacBits::Sha256.mac(DEMO_KEY.as_bytes(), input.as_bytes()),
                "{file}: not signed with the demo key"
            );
        }
        assert_eq!(event["headers"]["Idempotency-Key"], "demo-0001", "{file}");
    }
    // Independently of the above: the relay_tests token maker agrees on the signature.
    let event = event("outbound-send.json");
    let token = bearer(&event);
    let (header, rest) = token.split_once('.').unwrap();
    let payload = rest.split_once('.').unwrap().0;
    let text = |part: &str| String::from_utf8(B64URL.decode(part).unwrap()).unwrap();
    assert_eq!(
        tokens::sign_parts(
            HmacBits::Sha256,
            &text(header),
            &text(payload),
            DEMO_KEY.as_bytes()
        ),
        token
    );
}

#[tokio::test]
async fn outbound_send_is_accepted_sends_one_sms_and_replays_on_a_rerun() {
    let stack = demo_stack("ev-send").await;
    let answer = stack.invoke(event("outbound-send.json")).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let body = json_body(&answer);
    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, DRIVER);
    assert!(
        sent[0]
            .body
            .starts_with("Gate code is 4412\n-- Job JOB-1042 / sergio-main / "),
        "{}",
        sent[0].body
    );
    assert_eq!(body["message_sid"], sent[0].sid);
    assert_eq!(body["status"], "queued");
    assert_eq!(body["to"], DRIVER);
    assert_eq!(body["body"], sent[0].body);

    // Its Idempotency-Key (demo-0001): invoking the file again replays the first answer.
    let again = stack.invoke(event("outbound-send.json")).await;
    assert_eq!(again.status, 202, "{again:?}");
    assert_eq!(json_body(&again), body);
    assert_eq!(
        again.headers.get("idempotent-replayed").map(String::as_str),
        Some("true"),
        "{again:?}"
    );
    assert_eq!(stack.sent().len(), 1, "{:?}", stack.sent());
    stack.stop().await;
}

#[tokio::test]
async fn outbound_expired_token_is_refused_with_401() {
    assert_refused("ev-expired", "outbound-expired-token.json").await;
}

#[tokio::test]
async fn outbound_bad_request_is_refused_with_400_naming_job_ref() {
    let body = assert_refused("ev-400", "outbound-bad-request.json").await;
    assert_eq!(body["field"], "job_ref", "{body}");
}

#[tokio::test]
async fn outbound_alg_none_is_refused_with_401() {
    assert_refused("ev-none", "outbound-alg-none.json").await;
}

/// `inbound-rest.json` carries a placeholder `X-Twilio-Signature`: `403`, nothing sent.
#[tokio::test]
async fn inbound_rest_with_its_placeholder_signature_is_refused_with_403() {
    let stack = Stack::start("ev-inbound").await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let answer = stack.invoke(event("inbound-rest.json")).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(stack.sent().is_empty(), "{:?}", stack.sent());
    stack.stop().await;
}

/// `status-delivered.json` and `status-undelivered.json` carry a placeholder
/// `X-Twilio-Signature`: `403`, nothing sent, no alert.
#[tokio::test]
async fn status_callbacks_with_their_placeholder_signature_are_refused_with_403() {
    let stack = Stack::start("ev-status").await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    for file in ["status-delivered.json", "status-undelivered.json"] {
        let event = event(file);
        assert_eq!(event["path"], "/api/v1/sms/status", "{file}");
        let answer = stack.invoke(event).await;
        assert_eq!(answer.status, 403, "{file}: {answer:?}");
    }
    assert!(stack.sent().is_empty(), "{:?}", stack.sent());
    assert!(stack.aws.alerts().await.is_empty());
    stack.stop().await;
}
