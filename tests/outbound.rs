//! End-to-end: the built `sms-outbound` binary under the Lambda Runtime API, AWS in
//! moto, Twilio in the sandbox. Tokens are made here, independently of the function's
//! JWT library (`relay_tests::tokens`).

use std::time::Duration;

use relay_tests::moto::{TEST_FROM_NUMBER, TEST_JWT_KEY};
use relay_tests::stack::{HttpAnswer, Stack, seed_dispatcher, unix_now};
use relay_tests::tokens;
use relay_tests::twilio_sandbox::Fault;
use relay_tests::{
    Invocation, assert_metric, eventually, function_url_event, http_api_v2_event, request_id_of,
};
use serde_json::{Value, json};

const DRIVER: &str = "+16195550123";
const DISPATCHER: &str = "sergio-main";
/// Twilio's magic "invalid number" test recipient (21211).
const INVALID_NUMBER: &str = "+15005550001";
const ROTATED_JWT_KEY: &str = "rotated-jwt-signing-key-fedcba9876543210";

async fn outbound_stack(prefix: &str, extra_env: &[(&str, &str)]) -> Stack {
    let stack = Stack::start_function("sms-outbound", prefix, 1, extra_env).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    stack
}

fn token() -> String {
    tokens::hs256(
        TEST_JWT_KEY.as_bytes(),
        &tokens::claims(DISPATCHER, unix_now() + 600),
    )
}

fn request(body: &str) -> String {
    json!({"to": DRIVER, "body": body, "job_ref": "JOB-1042"}).to_string()
}

/// One request through the Runtime API: `token` as the bearer (if any), `body` as it
/// is, and an `Idempotency-Key` (if any).
async fn send(stack: &Stack, token: Option<&str>, body: &str, key: Option<&str>) -> HttpAnswer {
    stack.invoke(stack.outbound_event(token, body, key)).await
}

fn json_body(answer: &HttpAnswer) -> Value {
    assert_eq!(
        answer.headers.get("content-type").map(String::as_str),
        Some("application/json"),
        "{answer:?}"
    );
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body))
}

/// `status` with a JSON error `code`, and nothing sent.
fn assert_refused(stack: &Stack, answer: &HttpAnswer, status: u16, code: &str) -> Value {
    assert_eq!(answer.status, status, "{answer:?}");
    let body = json_body(answer);
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(stack.sent().is_empty(), "{:?}", stack.sent());
    body
}

#[tokio::test]
async fn a_verified_reply_reaches_the_driver_stamped_and_checks_the_dispatcher_in() {
    let stack = outbound_stack("out-ok", &[]).await;
    let before = unix_now();
    let answer = send(&stack, Some(&token()), &request("Gate code is 4412"), None).await;

    assert_eq!(answer.status, 202, "{answer:?}");
    let body = json_body(&answer);
    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, DRIVER);
    assert_eq!(sent[0].from.as_deref(), Some(TEST_FROM_NUMBER));
    assert_eq!(body["message_sid"], sent[0].sid);
    assert_eq!(body["status"], "queued");
    assert_eq!(body["to"], DRIVER);
    assert_eq!(body["body"], sent[0].body);

    // The stamp: the body, then the job, the dispatcher and the UTC time.
    let (text, stamp) = sent[0].body.split_once('\n').expect("a stamp line");
    assert_eq!(text, "Gate code is 4412");
    let time = stamp
        .strip_prefix("-- Job JOB-1042 / sergio-main / ")
        .unwrap_or_else(|| panic!("stamp: {stamp:?}"));
    let stamped_at: jiff::Timestamp = time.parse().expect("ISO 8601");
    assert!(
        time.ends_with('Z') && time.len() == "2026-11-24T16:05:09Z".len(),
        "{time}"
    );
    let stamped_at = stamped_at.as_second();
    assert!(before <= stamped_at && stamped_at <= unix_now(), "{time}");

    // The send is the dispatcher's check-in.
    let dispatcher = stack.aws.get_dispatcher(DISPATCHER).await.unwrap();
    let heartbeat = dispatcher["last_heartbeat"].as_i64().unwrap();
    assert!(heartbeat >= before, "{dispatcher}");

    // The message log keeps the send, never the body.
    let items = stack.aws.message_log_items().await;
    let logged = items
        .iter()
        .find(|i| i["message_sid"] == sent[0].sid)
        .expect("an outbound log item");
    assert_eq!(logged["record_type"], "outbound");
    assert_eq!(logged["dispatcher_id"], DISPATCHER);
    assert_eq!(logged["job_ref"], "JOB-1042");
    assert!(!logged.to_string().contains("Gate code"), "{logged}");
    stack.stop().await;
}

#[tokio::test]
async fn every_unverifiable_token_is_refused_with_401() {
    let stack = outbound_stack("out-401", &[]).await;
    let key = TEST_JWT_KEY.as_bytes();
    let fresh = tokens::claims(DISPATCHER, unix_now() + 600);
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing header", None, "missing_token"),
        (
            "alg none",
            Some(tokens::alg_none(&fresh)),
            "wrong_algorithm",
        ),
        ("HS384", Some(tokens::hs384(key, &fresh)), "wrong_algorithm"),
        ("HS512", Some(tokens::hs512(key, &fresh)), "wrong_algorithm"),
        (
            "RS256 header, HMAC-signed",
            Some(tokens::rs256_header_hmac_signed(key, &fresh)),
            "wrong_algorithm",
        ),
        (
            "expired",
            Some(tokens::hs256(
                key,
                &tokens::claims(DISPATCHER, unix_now() - 300),
            )),
            "token_expired",
        ),
        (
            "no exp",
            Some(tokens::hs256(
                key,
                &json!({"sub": DISPATCHER, "iat": unix_now()}),
            )),
            "missing_exp",
        ),
        (
            "wrong key",
            Some(tokens::hs256(
                b"another-key-another-key-another-key!!",
                &fresh,
            )),
            "bad_signature",
        ),
        ("malformed", Some("not-a-jwt".into()), "malformed_token"),
        (
            "two parts",
            Some("eyJhbGciOiJIUzI1NiJ9.e30".into()),
            "malformed_token",
        ),
        (
            "unknown dispatcher",
            Some(tokens::hs256(
                key,
                &tokens::claims("nobody", unix_now() + 600),
            )),
            "unknown_dispatcher",
        ),
    ];
    for (case, token, code) in cases {
        let answer = send(&stack, token.as_deref(), &request("hi"), None).await;
        let body = assert_refused(&stack, &answer, 401, code);
        if let Some(token) = &token {
            assert!(
                !answer.body.contains(token.as_str()),
                "{case}: echoes the token"
            );
            let signature = token.rsplit('.').next().unwrap_or_default();
            assert!(
                signature.len() < 8 || !answer.body.contains(signature),
                "{case}: {body}"
            );
        }
    }
    // A header that is not a Bearer token.
    let mut event = stack.outbound_event(None, &request("hi"), None);
    event["headers"]["Authorization"] = json!(format!("Basic {}", "dXNlcjpwYXNz"));
    event["multiValueHeaders"]["Authorization"] = json!([format!("Basic {}", "dXNlcjpwYXNz")]);
    assert_refused(&stack, &stack.invoke(event).await, 401, "not_bearer");
    // Refusals are counted by their error code.
    let refused = stack.metric("OutboundFailed").await;
    assert_metric(&refused, "OutboundFailed", &[("Error", "missing_token")]);
    // Tokens never reach the logs.
    let good = token();
    send(&stack, Some(&good), &request("hi"), None).await;
    let logs = stack.logs().join("\n");
    let signature = good.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature), "a token reached the logs");
    stack.stop().await;
}

#[tokio::test]
async fn tokens_signed_with_the_previous_key_verify_during_a_rotation() {
    let mut stack = Stack::start_function("sms-outbound", "out-prev", 0, &[]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    // Rotated before the function first reads it: AWSPREVIOUS holds the old key.
    stack
        .aws
        .rotate_secret(&stack.aws.jwt_secret_id, ROTATED_JWT_KEY)
        .await;
    stack.spawn_instance("sms-outbound", &[]);
    let old = token();
    let new = tokens::hs256(
        ROTATED_JWT_KEY.as_bytes(),
        &tokens::claims(DISPATCHER, unix_now() + 600),
    );
    for token in [old, new] {
        let answer = send(&stack, Some(&token), &request("hi"), None).await;
        assert_eq!(answer.status, 202, "{answer:?}");
    }
    assert_eq!(stack.sent().len(), 2);
    stack.stop().await;
}

/// Serves one request (so the process has cached the key), then rotates the JWT
/// secret to [`ROTATED_JWT_KEY`]; returns a token signed with the new key.
async fn warm_then_rotate_the_jwt_key(stack: &Stack) -> String {
    let warm = send(stack, Some(&token()), &request("a"), None).await;
    assert_eq!(warm.status, 202, "{warm:?}");
    stack
        .aws
        .rotate_secret(&stack.aws.jwt_secret_id, ROTATED_JWT_KEY)
        .await;
    tokens::hs256(
        ROTATED_JWT_KEY.as_bytes(),
        &tokens::claims(DISPATCHER, unix_now() + 600),
    )
}

#[tokio::test]
async fn a_key_rotated_while_the_process_is_warm_is_picked_up_by_one_refresh() {
    // SECRET_REFRESH_AFTER_SECS=0: any bad signature may re-read the secret.
    let stack = outbound_stack("out-rot", &[("SECRET_REFRESH_AFTER_SECS", "0")]).await;
    let new = warm_then_rotate_the_jwt_key(&stack).await;
    let answer = send(&stack, Some(&new), &request("b"), None).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    // The old key is AWSPREVIOUS now: still accepted.
    assert_eq!(
        send(&stack, Some(&token()), &request("c"), None)
            .await
            .status,
        202
    );
    assert_eq!(stack.sent().len(), 3);
    assert!(
        stack
            .logs()
            .iter()
            .any(|l| l.contains("credential did not verify; re-read the secret")),
        "the secret was re-read"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_cache_younger_than_a_minute_is_not_re_read_for_a_failing_token() {
    let stack = outbound_stack("out-young", &[]).await;
    let new = warm_then_rotate_the_jwt_key(&stack).await;
    let answer = send(&stack, Some(&new), &request("b"), None).await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert!(
        stack
            .logs()
            .iter()
            .any(|l| l.contains("the cached secret is too recent to re-read")),
        "{:?}",
        stack.logs()
    );
    stack.stop().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_400_naming_the_field() {
    let stack = outbound_stack("out-400", &[]).await;
    let long = "x".repeat(1600);
    let cases: Vec<(String, Option<&str>, &str)> = vec![
        ("{not json".into(), None, "not_json"),
        ("[1,2]".into(), None, "not_json"),
        (
            json!({"body": "b", "job_ref": "J"}).to_string(),
            Some("to"),
            "missing_field",
        ),
        (
            json!({"to": DRIVER, "job_ref": "J"}).to_string(),
            Some("body"),
            "missing_field",
        ),
        (
            json!({"to": DRIVER, "body": "b"}).to_string(),
            Some("job_ref"),
            "missing_field",
        ),
        (
            json!({"to": "", "body": "b", "job_ref": "J"}).to_string(),
            Some("to"),
            "empty_field",
        ),
        (
            json!({"to": DRIVER, "body": "  ", "job_ref": "J"}).to_string(),
            Some("body"),
            "empty_field",
        ),
        (
            json!({"to": DRIVER, "body": "b", "job_ref": ""}).to_string(),
            Some("job_ref"),
            "empty_field",
        ),
        (
            json!({"to": "555-0123", "body": "b", "job_ref": "J"}).to_string(),
            Some("to"),
            "invalid_field",
        ),
        (
            json!({"to": "call me", "body": "b", "job_ref": "J"}).to_string(),
            Some("to"),
            "invalid_field",
        ),
        (
            json!({"to": DRIVER, "body": long, "job_ref": "J"}).to_string(),
            Some("body"),
            "invalid_field",
        ),
    ];
    for (body, field, code) in cases {
        let answer = send(&stack, Some(&token()), &body, None).await;
        let json = assert_refused(&stack, &answer, 400, code);
        assert_eq!(json["field"], json!(field), "{body}: {json}");
    }
    let answer = send(&stack, Some(&token()), &request("hi"), Some("")).await;
    let json = assert_refused(&stack, &answer, 400, "invalid_idempotency_key");
    assert_eq!(json["field"], "Idempotency-Key");
    // A body that just fits once stamped goes out.
    let stamp = "\n-- Job JOB-1042 / sergio-main / 2026-11-24T16:05:09Z".len();
    let fits = "y".repeat(1600 - stamp);
    assert_eq!(
        send(&stack, Some(&token()), &request(&fits), None)
            .await
            .status,
        202
    );
    assert_eq!(stack.sent()[0].body.chars().count(), 1600);
    stack.stop().await;
}

#[tokio::test]
async fn twilio_refusing_the_number_is_422_with_twilios_code() {
    let stack = outbound_stack("out-422", &[]).await;
    let body = json!({"to": INVALID_NUMBER, "body": "hi", "job_ref": "J-1"}).to_string();
    let answer = send(&stack, Some(&token()), &body, Some("k-422")).await;
    assert_eq!(answer.status, 422, "{answer:?}");
    let json = json_body(&answer);
    assert_eq!(json["error"], "twilio_rejected");
    assert_eq!(json["twilio_code"], 21211);
    assert!(
        json["twilio_message"].as_str().unwrap().contains("***0001"),
        "{json}"
    );
    assert!(stack.sent().is_empty());
    // Nothing went out, so the key does not hold the failure: a retry tries again.
    send(&stack, Some(&token()), &body, Some("k-422")).await;
    assert_eq!(stack.twilio.requests().len(), 2);
    stack.stop().await;
}

#[tokio::test]
async fn twilio_failing_once_is_retried_and_failing_always_is_502() {
    let stack = outbound_stack("out-502", &[]).await;
    stack.twilio.inject(Fault::status(500).times(1));
    let answer = send(&stack, Some(&token()), &request("once"), None).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(stack.sent().len(), 1);

    stack.twilio.inject(Fault::status(503).times(3));
    let answer = send(&stack, Some(&token()), &request("always"), None).await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(json_body(&answer)["error"], "twilio_unavailable");
    assert_eq!(stack.sent().len(), 1, "nothing more went out");
    assert_eq!(stack.twilio.requests().len(), 1 + 1 + 3);
    stack.stop().await;
}

#[tokio::test]
async fn a_send_twilio_never_answers_is_504_and_tried_once() {
    let stack = outbound_stack("out-504", &[]).await;
    // Longer than the client's 5 s request timeout.
    stack.twilio.inject(Fault::slow(6_500).times(1));
    let answer = send(&stack, Some(&token()), &request("lost?"), Some("k-504")).await;
    assert_eq!(answer.status, 504, "{answer:?}");
    assert_eq!(json_body(&answer)["error"], "twilio_outcome_unknown");
    // Twilio finishes the send it was slow to answer (and records it then).
    let recorded = eventually(Duration::from_secs(10), || {
        !stack.twilio.requests().is_empty()
    })
    .await;
    assert!(recorded, "the sandbox never saw the request");
    assert_eq!(stack.twilio.requests().len(), 1, "never retried");
    // The same key never sends again: it gets the same answer.
    let again = send(&stack, Some(&token()), &request("lost?"), Some("k-504")).await;
    assert_eq!(again.status, 504);
    assert_eq!(again.body, answer.body);
    assert_eq!(
        again.headers.get("idempotent-replayed").map(String::as_str),
        Some("true")
    );
    assert_eq!(stack.twilio.requests().len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_twice_in_a_row_sends_once_with_the_same_answer() {
    let stack = outbound_stack("out-idem", &[]).await;
    let first = send(&stack, Some(&token()), &request("hi"), Some("key-1")).await;
    let second = send(&stack, Some(&token()), &request("hi"), Some("key-1")).await;
    assert_eq!(first.status, 202, "{first:?}");
    assert_eq!((second.status, &second.body), (first.status, &first.body));
    assert_eq!(
        second
            .headers
            .get("idempotent-replayed")
            .map(String::as_str),
        Some("true")
    );
    assert_eq!(stack.sent().len(), 1);
    // Keys belong to their dispatcher: another dispatcher's same key is another request.
    let mut other = seed_dispatcher(unix_now());
    other["dispatcher_id"] = json!("maria-backup");
    stack.aws.put_dispatcher(other).await;
    let maria = tokens::hs256(
        TEST_JWT_KEY.as_bytes(),
        &tokens::claims("maria-backup", unix_now() + 600),
    );
    let third = send(&stack, Some(&maria), &request("hi"), Some("key-1")).await;
    assert_eq!(third.status, 202);
    assert_ne!(third.body, first.body);
    assert_eq!(stack.sent().len(), 2);
    stack.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_twice_at_once_sends_once_with_the_same_answer() {
    let stack = Stack::start_function("sms-outbound", "out-race", 2, &[]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    stack
        .runtime
        .wait_for_pollers(2, Duration::from_secs(20))
        .await;
    // Twilio takes a moment, so the second request arrives while the first is in flight.
    stack.twilio.inject(Fault::slow(1_000));
    let token = token();
    let event = stack.outbound_event(Some(&token), &request("hi"), Some("race-1"));
    let (a, b) = tokio::join!(stack.invoke_event(event.clone()), stack.invoke_event(event));
    let answers: Vec<HttpAnswer> = [a, b]
        .into_iter()
        .map(|invocation| match invocation {
            Invocation::Response(response) => {
                let (status, headers, body) = relay_tests::response_parts(&response);
                HttpAnswer {
                    status,
                    headers,
                    body,
                }
            }
            Invocation::Error(e) => panic!("{e}"),
        })
        .collect();
    assert_eq!(stack.sent().len(), 1, "{:?}", stack.sent());
    assert_eq!(answers[0].status, 202, "{answers:?}");
    assert_eq!(
        (answers[0].status, &answers[0].body),
        (answers[1].status, &answers[1].body)
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_422_and_sends_nothing() {
    let stack = outbound_stack("out-reuse", &[]).await;
    let first = send(&stack, Some(&token()), &request("hi"), Some("key-9")).await;
    assert_eq!(first.status, 202);
    let reused = send(
        &stack,
        Some(&token()),
        &request("something else"),
        Some("key-9"),
    )
    .await;
    assert_eq!(reused.status, 422, "{reused:?}");
    assert_eq!(json_body(&reused)["error"], "idempotency_key_reused");
    assert_eq!(stack.sent().len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn configuration_is_per_function() {
    // sms-outbound needs neither the alert topic nor the public base URL ...
    let stack = outbound_stack(
        "out-cfg",
        &[("ALERT_TOPIC_ARN", ""), ("PUBLIC_BASE_URL", "not a url")],
    )
    .await;
    assert_eq!(
        send(&stack, Some(&token()), &request("hi"), None)
            .await
            .status,
        202
    );
    stack.stop().await;
    // ... but fails every invocation without its JWT secret, naming the variable.
    let stack = outbound_stack("out-nojwt", &[("JWT_SECRET_ID", "")]).await;
    for _ in 0..2 {
        match stack
            .runtime
            .invoke(stack.outbound_event(Some(&token()), &request("hi"), None))
            .await
        {
            Invocation::Error(error) => {
                assert!(error.to_string().contains("JWT_SECRET_ID"), "{error}")
            }
            Invocation::Response(r) => panic!("answered {r}"),
        }
    }
    assert!(stack.sent().is_empty());
    assert!(
        stack
            .logs()
            .iter()
            .any(|l| l.contains("JWT_SECRET_ID") && l.contains("\"level\":\"ERROR\"")),
        "{:?}",
        stack.logs()
    );
    stack.stop().await;
}

#[tokio::test]
async fn unreadable_secrets_fail_the_invocation_naming_them() {
    let stack = outbound_stack(
        "out-nosecret",
        &[("TWILIO_SECRET_ID", "qdn/no-such-twilio")],
    )
    .await;
    // A refused request never needs the Twilio secret ...
    let refused = send(&stack, None, &request("hi"), None).await;
    assert_eq!(refused.status, 401, "{refused:?}");
    // ... a request to send fails the invocation, naming it.
    match stack
        .runtime
        .invoke(stack.outbound_event(Some(&token()), &request("hi"), None))
        .await
    {
        Invocation::Error(error) => {
            assert!(error.to_string().contains("qdn/no-such-twilio"), "{error}")
        }
        Invocation::Response(r) => panic!("answered {r}"),
    }
    stack.stop().await;
    let stack = outbound_stack("out-nojwtsecret", &[("JWT_SECRET_ID", "qdn/no-such-jwt")]).await;
    match stack
        .runtime
        .invoke(stack.outbound_event(Some(&token()), &request("hi"), None))
        .await
    {
        Invocation::Error(error) => {
            assert!(error.to_string().contains("qdn/no-such-jwt"), "{error}")
        }
        Invocation::Response(r) => panic!("answered {r}"),
    }
    assert!(stack.sent().is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn http_api_and_function_url_events_are_served_and_every_log_line_carries_the_request_id() {
    let stack = outbound_stack("out-v2", &[]).await;
    let authorization = format!("Bearer {}", token());
    let headers = [
        ("content-type", "application/json"),
        ("authorization", authorization.as_str()),
    ];
    let url_event = function_url_event(
        "POST",
        "/api/v1/sms/outbound",
        &headers,
        &request("url"),
        None,
    );
    let answer = stack.invoke(url_event).await;
    assert_eq!(answer.status, 202, "function URL: {answer:?}");
    let event = http_api_v2_event(
        "POST",
        "/api/v1/sms/outbound",
        "prod",
        relay_tests::stack::API_HOST,
        &headers,
        &request("v2"),
        None,
    );
    let answer = stack.invoke(event).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let sent_line = stack.functions[0]
        .wait_for_log(|l| l.contains("outbound text sent"), Duration::from_secs(5))
        .await
        .expect("a log line for the send");
    let line: Value = serde_json::from_str(&sent_line).unwrap();
    let request_id = line["spans"][0]["requestId"].as_str().expect("requestId");
    assert!(!request_id.is_empty());
    assert_eq!(line["to"], "***0123", "numbers are masked: {line}");
    assert!(!sent_line.contains("v2\\n--"), "bodies are never logged");
    let sent = stack.metric("OutboundSent").await;
    assert_metric(&sent, "OutboundSent", &[]);
    assert_eq!(sent["OutboundSent"], 1);
    assert_eq!(request_id_of(&sent), Some(request_id));
    for line in stack.json_logs() {
        if line["spans"].is_array() || line.get("_aws").is_some() {
            assert!(request_id_of(&line).is_some(), "{line}");
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn wrong_path_and_method_are_refused() {
    let stack = outbound_stack("out-404", &[]).await;
    let mut event = stack.outbound_event(Some(&token()), &request("hi"), None);
    event["httpMethod"] = json!("GET");
    assert_eq!(stack.invoke(event).await.status, 405);
    let mut event = stack.outbound_event(Some(&token()), &request("hi"), None);
    event["path"] = json!("/api/v1/sms/elsewhere");
    event["requestContext"]["path"] = json!("/prod/api/v1/sms/elsewhere");
    assert_eq!(stack.invoke(event).await.status, 404);
    assert!(stack.sent().is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn init_prefetches_both_secrets_so_the_first_reply_needs_neither() {
    let stack = outbound_stack("out-init", &[]).await;
    let line = stack.functions[0]
        .wait_for_log(
            |l| l.contains("\"init phases\""),
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("an init phases line");
    let line: Value = serde_json::from_str(&line).unwrap();
    assert!(line["prefetch_ms"].as_f64().is_some(), "{line}");
    // Both secrets were read during init: gone now, the first reply still goes out.
    for secret_id in [&stack.aws.jwt_secret_id, &stack.aws.twilio_secret_id] {
        stack
            .aws
            .secrets
            .delete_secret()
            .secret_id(secret_id)
            .force_delete_without_recovery(true)
            .send()
            .await
            .expect("delete a secret");
    }

    let answer = send(&stack, Some(&token()), &request("first"), Some("k-init")).await;

    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(stack.sent().len(), 1);
    stack.stop().await;
}
