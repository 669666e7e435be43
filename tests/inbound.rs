//! End-to-end: the built `sms-inbound` binary under the Lambda Runtime API, AWS in moto,
//! Twilio in the sandbox. Each test has its own tables, topic, sandbox and process.

use relay_tests::stack::{
    BACKUP_PHONE, PRIMARY_PHONE, QDN_NUMBER, Stack, TERTIARY_PHONE, reference_of, seed_dispatcher,
    unix_now, without_reference,
};
use serde_json::json;

const DRIVER: &str = "+16195550123";

#[tokio::test]
async fn available_primary_receives_the_text() {
    let stack = Stack::start("primary").await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;

    let (sid, answer) = stack.text_from(DRIVER, "Load ready at 5th & Main").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.headers["content-type"], "text/xml");
    assert_eq!(answer.body, "<Response/>");
    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, PRIMARY_PHONE);
    assert_eq!(sent[0].from.as_deref(), Some(QDN_NUMBER));
    assert_eq!(
        without_reference(&sent[0].body),
        format!("QDN driver {DRIVER}: Load ready at 5th & Main")
    );
    reference_of(&sent[0].body);
    assert!(stack.aws.alerts().await.is_empty());
    let primary = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    assert_eq!(primary["available"], json!(true));
    // Metrics (EMF lines on stdout): the relay by tier, and the invocation's handling
    // time, each tagged with the invocation's request ID.
    let relayed = stack.metric("MessagesRelayed").await;
    assert_metric(&relayed, "MessagesRelayed", &[("Tier", "primary")]);
    assert_eq!(relayed["MessagesRelayed"], 1);
    let handling = stack.metric("HandlingTime").await;
    assert_metric(&handling, "HandlingTime", &[("Function", "sms-inbound")]);
    assert_eq!(
        handling["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
        "Milliseconds"
    );
    let routed = stack
        .json_logs()
        .into_iter()
        .find(|l| l["message_sid"] == sid.as_str() && l.get("routing_decision").is_some())
        .expect("routing line");
    assert_eq!(request_id_of(&relayed), request_id_of(&routed));
    assert!(request_id_of(&relayed).is_some_and(|id| !id.is_empty()));
    stack.stop().await;
}

#[tokio::test]
async fn unavailable_primary_cascades_to_backup() {
    let stack = Stack::start("backup").await;
    let mut seed = seed_dispatcher(unix_now());
    seed["available"] = json!(false);
    stack.aws.put_dispatcher(seed).await;

    let (_, answer) = stack.text_from(DRIVER, "Where do I dump?").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, BACKUP_PHONE);
    let alerts = stack.aws.alerts().await;
    assert!(
        alerts.iter().any(|a| a.message["type"] == "cascade"),
        "{alerts:?}"
    );
    let relayed = stack.metric("MessagesRelayed").await;
    assert_metric(&relayed, "MessagesRelayed", &[("Tier", "backup")]);
    let cascades = stack.metric("Cascades").await;
    assert_metric(&cascades, "Cascades", &[]);
    assert_eq!(cascades["Cascades"], 1);
    let by_reason = stack.metric("CascadesByReason").await;
    assert_metric(
        &by_reason,
        "CascadesByReason",
        &[("Reason", "marked_unavailable")],
    );
    let alerted = stack.metric("Alerts").await;
    assert_metric(&alerted, "Alerts", &[("Kind", "cascade")]);
    stack.stop().await;
}

#[tokio::test]
async fn no_backup_cascades_to_tertiary() {
    let stack = Stack::start("tertiary").await;
    let mut seed = seed_dispatcher(unix_now());
    seed["available"] = json!(false);
    seed.as_object_mut().unwrap().remove("backup_dispatcher");
    stack.aws.put_dispatcher(seed).await;

    let (_, answer) = stack.text_from(DRIVER, "Anyone there?").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent_to(TERTIARY_PHONE).len(), 1, "{:?}", stack.sent());
    assert_eq!(stack.sent().len(), 1);
    stack.stop().await;
}

// ---- helpers -------------------------------------------------------------------

use relay_tests::moto::TEST_AUTH_TOKEN;
use relay_tests::stack::{API_HOST, INBOUND_PATH, STAGE, driver_params, message_sid};
use relay_tests::twilio_sandbox::Fault;
use relay_tests::{
    Invocation, function_url_event, http_api_v2_event, twilio_form, twilio_signature,
};
use relay_tests::{assert_metric, request_id_of};
use serde_json::Value;

fn as_refs<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn seeded(prefix: &str, change: impl FnOnce(&mut Value)) -> Stack {
    let stack = Stack::start(prefix).await;
    let mut seed = seed_dispatcher(unix_now());
    change(&mut seed);
    stack.aws.put_dispatcher(seed).await;
    stack
}

/// The seeded stack with `secret` as the Twilio secret from the start: `sms-inbound`
/// reads its secret during init (the prefetch), so the secret is set before the
/// process starts.
async fn seeded_with_twilio_secret(prefix: &str, secret: &Value) -> Stack {
    let mut stack = Stack::start_function("sms-inbound", prefix, 0, &[]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    stack
        .aws
        .rotate_secret(&stack.aws.twilio_secret_id, &secret.to_string())
        .await;
    stack.spawn_instance("sms-inbound", &[]);
    stack
}

/// The headers Twilio sends with a form webhook.
fn webhook_headers(signature: &str) -> [(&'static str, &str); 2] {
    [
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-twilio-signature", signature),
    ]
}

/// An HTTP API (v2) event for the inbound endpoint, signed over `url`.
fn signed_http_api_event(url: &str, params: &[(&str, &str)], query: Option<&str>) -> Value {
    let signature = twilio_signature(TEST_AUTH_TOKEN, url, params);
    http_api_v2_event(
        "POST",
        INBOUND_PATH,
        STAGE,
        API_HOST,
        &webhook_headers(&signature),
        &twilio_form(params),
        query,
    )
}

/// Nothing holds `sid`'s claim, so a redelivery can still forward it: the claim is
/// gone, or given back as the record of a text that reached nobody (`undelivered`,
/// which any claim may take over).
async fn assert_claim_released(stack: &Stack, sid: &str) {
    let items = stack.aws.message_log_items().await;
    assert!(
        items
            .iter()
            .filter(|i| i["message_sid"] == sid)
            .all(|i| i["state"] == "undelivered"),
        "claim not released: {items:?}"
    );
}

/// The message was not forwarded: its claim is released and ops were alerted.
async fn assert_released_and_alerted(stack: &Stack, sid: &str) {
    assert_claim_released(stack, sid).await;
    let alerts = stack.aws.alerts().await;
    let undeliverable = alerts.iter().find(|a| a.message["type"] == "undeliverable");
    let alert = undeliverable.unwrap_or_else(|| panic!("no undeliverable alert: {alerts:?}"));
    assert_eq!(alert.message["message_sid"], sid);
}

fn inbound_item(items: &[Value], sid: &str) -> Value {
    items
        .iter()
        .find(|i| i["message_sid"] == sid)
        .cloned()
        .unwrap_or_else(|| panic!("no message-log item for {sid}: {items:?}"))
}

// ---- cascade ---------------------------------------------------------------------

#[tokio::test]
async fn stale_heartbeat_cascades_and_marks_the_primary_unavailable_once() {
    let stack = seeded("stale", |s| s["last_heartbeat"] = json!(unix_now() - 301)).await;

    let (sid, first) = stack.text_from(DRIVER, "one").await;
    let (_, second) = stack.text_from(DRIVER, "two").await;

    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 2, "{:?}", stack.sent());
    let primary = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    assert_eq!(primary["available"], json!(false));
    let alerts = stack.aws.alerts().await;
    let unavailable: Vec<_> = alerts
        .iter()
        .filter(|a| a.message["type"] == "dispatcher_unavailable")
        .collect();
    assert_eq!(
        unavailable.len(),
        1,
        "flipped once, alerted once: {alerts:?}"
    );
    assert_eq!(unavailable[0].message["message_sid"], sid.as_str());
    let cascades = alerts
        .iter()
        .filter(|a| a.message["type"] == "cascade")
        .count();
    assert_eq!(cascades, 2, "every cascaded message alerts: {alerts:?}");
    stack.stop().await;
}

#[tokio::test]
async fn off_duty_primary_cascades_to_backup() {
    let stack = seeded("offduty", |s| s["on_duty"] = json!(false)).await;
    let (_, answer) = stack.text_from(DRIVER, "hello").await;
    assert_eq!(answer.status, 200);
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "{:?}", stack.sent());
    let alerts = stack.aws.alerts().await;
    let cascade = alerts
        .iter()
        .find(|a| a.message["type"] == "cascade")
        .unwrap();
    assert_eq!(cascade.message["reason"], "primary: primary off duty");
    stack.stop().await;
}

#[tokio::test]
async fn cascade_alert_names_event_type_dispatcher_reason_and_message() {
    let stack = seeded("alert", |s| s["available"] = json!(false)).await;
    let (sid, _) = stack.text_from(DRIVER, "hello").await;

    let alerts = stack.aws.alerts().await;
    let cascade = alerts
        .iter()
        .find(|a| a.message["type"] == "cascade")
        .unwrap_or_else(|| panic!("no cascade alert: {alerts:?}"));
    assert_eq!(
        cascade.attributes.get("type").map(String::as_str),
        Some("cascade")
    );
    let subject = cascade.subject.as_deref().unwrap_or_default();
    assert!(
        subject.contains("cascade") && subject.contains("backup"),
        "{subject}"
    );
    assert_eq!(cascade.message["dispatcher_id"], "sergio-main");
    assert_eq!(cascade.message["message_sid"], sid.as_str());
    assert_eq!(cascade.message["routing_decision"], "backup");
    assert_eq!(
        cascade.message["reason"],
        "primary: primary marked unavailable"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_number_twilio_refuses_for_good_falls_through_to_the_next_tier() {
    // +15005550001 is Twilio's magic "invalid number" (21211) number.
    let stack = seeded("refused", |s| s["phone"] = json!("+15005550001")).await;
    let (sid, answer) = stack.text_from(DRIVER, "hello").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "{:?}", stack.sent());
    let requests = stack.twilio.requests();
    assert_eq!(requests.len(), 2, "one refused try, one send: {requests:?}");
    assert_eq!(requests[0].error_code, Some(21211));
    let item = inbound_item(&stack.aws.message_log_items().await, &sid);
    assert_eq!(item["routing_decision"], "backup");
    assert_eq!(item["attempts"][0]["error_code"], json!(21211));
    let alerts = stack.aws.alerts().await;
    let cascade = alerts
        .iter()
        .find(|a| a.message["type"] == "cascade")
        .unwrap();
    assert!(
        cascade.message["reason"]
            .as_str()
            .unwrap()
            .contains("21211"),
        "{cascade:?}"
    );
    // Twilio's error text quotes the number; it is masked in logs, alerts and items.
    let everything = format!("{}\n{alerts:?}\n{item:?}", stack.logs().join("\n"));
    assert!(!everything.contains("+15005550001"), "{everything}");
    stack.stop().await;
}

#[tokio::test]
async fn invalid_numbers_in_the_table_are_skipped_and_alerted_never_sent_to() {
    let stack = seeded("badnum", |s| {
        s["phone"] = json!("call sergio");
        s["backup_dispatcher"] = json!("335-4807");
    })
    .await;
    let (_, answer) = stack.text_from(DRIVER, "hello").await;

    assert_eq!(answer.status, 200);
    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, TERTIARY_PHONE);
    assert_eq!(
        stack.twilio.requests().len(),
        1,
        "nothing was tried on the bad numbers"
    );
    let alerts = stack.aws.alerts().await;
    let cascade = alerts
        .iter()
        .find(|a| a.message["type"] == "cascade")
        .unwrap();
    assert_eq!(cascade.message["routing_decision"], "tertiary");
    assert_eq!(
        cascade.message["invalid_numbers"],
        json!(["primary: call sergio", "backup: 335-4807"])
    );
    let logs = stack.logs().join("\n");
    assert!(
        logs.contains("backup: invalid number (wrong number of digits)"),
        "{logs}"
    );
    assert!(
        !logs.contains("335-4807"),
        "the raw value stays out of the logs"
    );
    stack.stop().await;
}

#[tokio::test]
async fn no_reachable_tier_answers_5xx_alerts_and_sends_nothing() {
    let stack = seeded("none", |s| {
        s["available"] = json!(false);
        s["backup_dispatcher"] = json!("nope");
        s.as_object_mut().unwrap().remove("tertiary_contact");
    })
    .await;
    let (sid, answer) = stack.text_from(DRIVER, "hello").await;

    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(stack.sent().is_empty());
    let alerts = stack.aws.alerts().await;
    let undeliverable = alerts
        .iter()
        .find(|a| a.message["type"] == "undeliverable")
        .unwrap_or_else(|| panic!("{alerts:?}"));
    assert_eq!(undeliverable.message["message_sid"], sid.as_str());
    assert_eq!(undeliverable.attributes["type"], "undeliverable");
    let counted = stack.metric("Undeliverable").await;
    assert_metric(&counted, "Undeliverable", &[]);
    assert_eq!(counted["Undeliverable"], 1);
    // The claim is given back as the text's record, its words kept: a redelivery
    // (the webhook's, or an operator's) after ops fix the table can forward it, and
    // `qdn messages --undelivered` lists it.
    let item = stack.aws.message_log_item(&sid).await;
    assert_eq!(item["state"], "undelivered", "{item}");
    assert_eq!(item["fate"], "undeliverable", "{item}");
    assert!(
        item["relay_body"].as_str().unwrap().ends_with(": hello"),
        "the text as forwarded: {item}"
    );
    assert_eq!(item["unresolved_day"], item["msg_day"], "{item}");
    assert!(
        item["failure"].as_str().unwrap().contains("backup"),
        "why, tier by tier: {item}"
    );

    // Ops mend the backup; Twilio's retry of the same webhook takes the record over
    // and forwards the text, once: the failed attempt never blocks a retry.
    let mut mended = seed_dispatcher(unix_now());
    mended["available"] = json!(false);
    mended.as_object_mut().unwrap().remove("tertiary_contact");
    stack.aws.put_dispatcher(mended).await;
    let retried = stack.text_with_sid(&sid, DRIVER, "hello").await;
    assert_eq!(retried.status, 200, "{retried:?}");
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "{:?}", stack.sent());
    let item = stack.aws.message_log_item(&sid).await;
    assert_eq!(item["state"], "forwarded", "{item}");
    assert!(item.get("unresolved_day").is_none(), "resolved: {item}");
    let again = stack.text_with_sid(&sid, DRIVER, "hello").await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(stack.sent().len(), 1, "a later redelivery sends nothing");
    stack.stop().await;
}

#[tokio::test]
async fn missing_primary_item_answers_5xx_and_alerts() {
    let stack = Stack::start("noitem").await;
    let (_, answer) = stack.text_from(DRIVER, "hello").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    let alerts = stack.aws.alerts().await;
    assert!(
        alerts.iter().any(|a| a.message["type"] == "undeliverable"
            && a.message["reason"]
                .as_str()
                .unwrap()
                .contains("sergio-main")),
        "{alerts:?}"
    );
    stack.stop().await;
}

// ---- signatures and bad input ------------------------------------------------------

async fn assert_refused_and_nothing_happened(stack: &Stack, event: Value, status: u16) {
    let answer = stack.invoke(event).await;
    assert_eq!(answer.status, status, "{answer:?}");
    assert!(answer.headers["content-type"].starts_with("application/json"));
    let error: Value = serde_json::from_str(&answer.body).expect("JSON error body");
    assert!(
        error["error"].is_string() && error["message"].is_string(),
        "{error}"
    );
    assert!(stack.sent().is_empty(), "nothing sent");
    assert!(stack.twilio.requests().is_empty(), "Twilio never called");
    assert!(
        stack.aws.message_log_items().await.is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn forged_missing_and_wrong_url_signatures_are_refused_with_403() {
    let stack = seeded("sig", |_| {}).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let params = as_refs(&params);

    let forged = stack.event_signed(&params, &stack.inbound_url(), "not-the-auth-token");
    assert_refused_and_nothing_happened(&stack, forged, 403).await;

    let wrong_url = stack.event_signed(
        &params,
        &format!("https://{API_HOST}{INBOUND_PATH}"), // stage left out
        TEST_AUTH_TOKEN,
    );
    assert_refused_and_nothing_happened(&stack, wrong_url, 403).await;

    let mut missing = stack.inbound_event(&params);
    missing["headers"]
        .as_object_mut()
        .unwrap()
        .remove("X-Twilio-Signature");
    missing["multiValueHeaders"]
        .as_object_mut()
        .unwrap()
        .remove("X-Twilio-Signature");
    assert_refused_and_nothing_happened(&stack, missing, 403).await;

    // A body changed after signing.
    let mut tampered = stack.inbound_event(&params);
    tampered["body"] = json!(tampered["body"].as_str().unwrap().replace("hello", "hellp"));
    assert_refused_and_nothing_happened(&stack, tampered, 403).await;

    let error: Vec<String> = stack
        .logs()
        .into_iter()
        .filter(|l| l.contains("bad_signature"))
        .collect();
    assert!(!error.is_empty(), "refusals are logged");
    stack.stop().await;
}

#[tokio::test]
async fn signature_over_the_url_with_its_default_port_is_accepted() {
    let stack = seeded("port", |_| {}).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let with_port = format!("https://{API_HOST}:443/{STAGE}{INBOUND_PATH}");
    let answer = stack
        .invoke(stack.event_signed(&as_refs(&params), &with_port, TEST_AUTH_TOKEN))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent().len(), 1);
    stack.stop().await;
}

/// Rotates the Twilio secret to [`relay_tests::stack::ROTATED_AUTH_TOKEN`]; the old
/// token becomes `AWSPREVIOUS`.
async fn rotate_the_twilio_token(stack: &Stack) {
    let rotated = json!({
        "account_sid": relay_tests::moto::TEST_ACCOUNT_SID,
        "auth_token": relay_tests::stack::ROTATED_AUTH_TOKEN,
        "from_number": relay_tests::moto::TEST_FROM_NUMBER,
    });
    stack
        .aws
        .rotate_secret(&stack.aws.twilio_secret_id, &rotated.to_string())
        .await;
}

#[tokio::test]
async fn previous_auth_token_is_accepted_during_rotation() {
    // Rotated before the process starts: its init reads the secret (the prefetch), and
    // a rotation racing it would make the first text depend on which read came first.
    let mut stack = Stack::start_function("sms-inbound", "rotate", 0, &[]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    rotate_the_twilio_token(&stack).await;
    stack.spawn_instance("sms-inbound", &[]);
    // Signed with the old token (now AWSPREVIOUS).
    let (_, answer) = stack.text_from(DRIVER, "hello").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent().len(), 1);
    // Signed with the new token (AWSCURRENT).
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "x");
    let current = stack.event_signed(
        &as_refs(&params),
        &stack.inbound_url(),
        relay_tests::stack::ROTATED_AUTH_TOKEN,
    );
    assert_eq!(stack.invoke(current).await.status, 200);
    // Signed with an unrelated token: still refused.
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "x");
    let forged = stack.event_signed(&as_refs(&params), &stack.inbound_url(), "0000");
    assert_eq!(stack.invoke(forged).await.status, 403);
    stack.stop().await;
}

#[tokio::test]
async fn a_twilio_token_rotated_while_the_process_is_warm_is_picked_up() {
    // Any signature that fails may re-read the secret (the default waits a minute).
    let stack = Stack::start_with("rotate-warm", 1, &[("SECRET_REFRESH_AFTER_SECS", "0")]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let (_, warm) = stack.text_from(DRIVER, "before").await;
    assert_eq!(warm.status, 200, "{warm:?}");
    rotate_the_twilio_token(&stack).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "after");
    let signed_with_new = stack.event_signed(
        &as_refs(&params),
        &stack.inbound_url(),
        relay_tests::stack::ROTATED_AUTH_TOKEN,
    );
    let answer = stack.invoke(signed_with_new).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent().len(), 2);
    assert!(
        stack
            .logs()
            .iter()
            .any(|l| l.contains("credential did not verify; re-read the secret")),
        "the secret was re-read once"
    );
    stack.stop().await;
}

#[tokio::test]
async fn sms_inbound_does_not_need_the_jwt_secret() {
    let stack = Stack::start_with("no-jwt", 1, &[("JWT_SECRET_ID", "")]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let (_, answer) = stack.text_from(DRIVER, "hello").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent_to(PRIMARY_PHONE).len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_refused_with_400_naming_the_problem() {
    let stack = seeded("malformed", |_| {}).await;
    let url = stack.inbound_url();

    for missing in ["MessageSid", "From", "To"] {
        let sid = message_sid();
        let params: Vec<(&str, String)> = driver_params(&sid, DRIVER, "hello")
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        let answer = stack
            .invoke(stack.event_signed(&as_refs(&params), &url, TEST_AUTH_TOKEN))
            .await;
        assert_eq!(answer.status, 400, "{missing}: {answer:?}");
        let error: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(error["field"], missing, "{error}");
    }

    let params = driver_params("SM123", DRIVER, "hello");
    let answer = stack
        .invoke(stack.event_signed(&as_refs(&params), &url, TEST_AUTH_TOKEN))
        .await;
    assert_eq!(answer.status, 400);
    assert!(answer.body.contains("MessageSid"), "{}", answer.body);

    let mut json_body = stack.inbound_event(&[("MessageSid", "x")]);
    json_body["body"] = json!("{\"MessageSid\": \"SM1\"}");
    json_body["headers"]["Content-Type"] = json!("application/json");
    json_body["multiValueHeaders"]["Content-Type"] = json!(["application/json"]);
    let answer = stack.invoke(json_body).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body.contains("x-www-form-urlencoded"),
        "{}",
        answer.body
    );

    assert!(stack.sent().is_empty());
    assert!(stack.aws.message_log_items().await.is_empty());
    stack.stop().await;
}

// ---- de-duplication ----------------------------------------------------------------

#[tokio::test]
async fn the_same_webhook_delivered_twice_forwards_once() {
    let stack = seeded("dup", |_| {}).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let event = stack.inbound_event(&as_refs(&params));

    let first = stack.invoke(event.clone()).await;
    let second = stack.invoke(event).await;

    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(second.body, "<Response/>");
    assert_eq!(stack.sent().len(), 1, "{:?}", stack.sent());
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_deliveries_across_instances_forward_once() {
    let stack = Stack::start_with("concurrent", 4, &[]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let event = stack.inbound_event(&as_refs(&params));

    // Let every instance finish its init and poll, so the deliveries really race.
    stack
        .runtime
        .wait_for_pollers(4, std::time::Duration::from_secs(30))
        .await;
    let answers = futures::future::join_all((0..8).map(|_| stack.invoke(event.clone()))).await;

    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    assert_eq!(stack.sent().len(), 1, "{:?}", stack.sent());
    let serving: usize = stack
        .functions
        .iter()
        .filter(|f| f.logs().iter().any(|l| l.contains(&sid)))
        .count();
    assert!(
        serving >= 2,
        "the deliveries were spread over several instances"
    );
    stack.stop().await;
}

#[tokio::test]
async fn twilio_failure_then_redelivery_delivers_exactly_once() {
    let stack = seeded("redeliver", |_| {}).await;
    // Three 500s exhaust the bounded retries of the first delivery.
    stack.twilio.inject(Fault::status(500).times(3));
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let event = stack.inbound_event(&as_refs(&params));

    let failed = stack.invoke(event.clone()).await;
    assert_eq!(failed.status, 502, "{failed:?}");
    assert!(stack.sent().is_empty());
    assert_eq!(stack.twilio.requests().len(), 3, "bounded retries");
    let alerts = stack.aws.alerts().await;
    assert!(
        alerts.iter().any(|a| a.message["type"] == "undeliverable"),
        "{alerts:?}"
    );

    let retried = stack.invoke(event.clone()).await;
    assert_eq!(retried.status, 200, "{retried:?}");
    let again = stack.invoke(event).await;
    assert_eq!(again.status, 200);
    assert_eq!(stack.sent().len(), 1, "{:?}", stack.sent());
    stack.stop().await;
}

#[tokio::test]
async fn transient_twilio_errors_are_retried_within_one_delivery() {
    let stack = seeded("retry", |_| {}).await;
    stack.twilio.inject(Fault::rate_limited(Some(0)));
    stack.twilio.inject(Fault::status(503));
    let (_, answer) = stack.text_from(DRIVER, "hello").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent().len(), 1);
    assert_eq!(stack.twilio.requests().len(), 3);
    stack.stop().await;
}

// ---- message content, log item, log line ------------------------------------------

#[tokio::test]
async fn media_is_forwarded_as_media() {
    let stack = seeded("media", |_| {}).await;
    let sid = format!("MM{:032x}", rand::random::<u128>());
    let mut params = driver_params(&sid, DRIVER, "photo of the site");
    params.retain(|(k, _)| *k != "NumMedia");
    params.extend([
        ("NumMedia", "2".to_string()),
        (
            "MediaUrl0",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1".to_string(),
        ),
        ("MediaContentType0", "image/jpeg".to_string()),
        (
            "MediaUrl1",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2".to_string(),
        ),
        ("MediaContentType1", "image/png".to_string()),
    ]);
    let answer = stack.invoke(stack.inbound_event(&as_refs(&params))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = stack.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].media_urls,
        vec![
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2"
        ]
    );
    assert!(sent[0].body.contains("photo of the site") && sent[0].body.contains(DRIVER));
    stack.stop().await;
}

#[tokio::test]
async fn message_log_item_records_the_decision_and_expires_after_the_dispatchers_ttl() {
    let stack = seeded("logitem", |s| {
        s["available"] = json!(false);
        s["message_log_ttl"] = json!(3600);
    })
    .await;
    let before = unix_now();
    let (sid, _) = stack.text_from(DRIVER, "hello").await;
    let after = unix_now();

    let items = stack.aws.message_log_items().await;
    let item = inbound_item(&items, &sid);
    assert_eq!(item["state"], "forwarded");
    assert_eq!(item["routing_decision"], "backup");
    assert_eq!(item["dispatcher_id"], "sergio-main");
    assert_eq!(
        item["cascade_reason"],
        "primary: primary marked unavailable"
    );
    let forwarded_sid = item["forwarded_sid"].as_str().unwrap();
    assert_eq!(forwarded_sid, stack.sent()[0].sid);
    let received = item["received_at"].as_i64().unwrap();
    assert!((before..=after).contains(&received));
    assert_eq!(item["expires_at"].as_i64().unwrap(), received + 3600);
    assert!(item.get("lock_expires_at").is_none());
    // The forwarded message has its own item, for status callbacks and ACKs.
    let forward = inbound_item(&items, forwarded_sid);
    assert_eq!(forward["inbound_sid"], sid.as_str());
    assert_eq!(forward["to_number"], BACKUP_PHONE);
    assert_eq!(forward["expires_at"].as_i64().unwrap(), received + 3600);
    stack.stop().await;
}

#[tokio::test]
async fn default_ttl_is_one_day() {
    let stack = seeded("ttl", |s| {
        s.as_object_mut().unwrap().remove("message_log_ttl");
    })
    .await;
    let (sid, _) = stack.text_from(DRIVER, "hello").await;
    let item = inbound_item(&stack.aws.message_log_items().await, &sid);
    let received = item["received_at"].as_i64().unwrap();
    assert_eq!(item["expires_at"].as_i64().unwrap(), received + 86_400);
    stack.stop().await;
}

#[tokio::test]
async fn routing_is_logged_as_one_json_line_without_body_or_full_numbers() {
    let stack = seeded("logline", |s| s["available"] = json!(false)).await;
    let (sid, _) = stack.text_from(DRIVER, "secret load details").await;

    let logs = stack.json_logs();
    let decisions: Vec<&Value> = logs
        .iter()
        .filter(|l| l.get("routing_decision").is_some())
        .collect();
    assert_eq!(decisions.len(), 1, "{logs:?}");
    let line = decisions[0];
    assert_eq!(line["routing_decision"], "backup");
    assert_eq!(line["dispatcher_id"], "sergio-main");
    assert_eq!(
        line["cascade_reason"],
        "primary: primary marked unavailable"
    );
    assert_eq!(line["message_sid"], sid.as_str());
    // Every line the function wrote (it served this one invocation) carries the
    // invocation's Lambda request ID.
    let request_id = line["spans"][0]["requestId"]
        .as_str()
        .unwrap_or_else(|| panic!("no request ID: {line}"));
    // The metric lines too (flushed at the end of the invocation).
    stack.metric("Cascades").await;
    // Lines written during init (ending with its `init phases` line) belong to no
    // invocation; every line after it does.
    let logs: Vec<Value> = stack
        .json_logs()
        .into_iter()
        .skip_while(|l| l["message"] != "init phases")
        .skip(1)
        .collect();
    assert!(logs.len() >= 2, "{logs:?}");
    for l in &logs {
        assert_eq!(request_id_of(l), Some(request_id), "{l}");
    }
    let all = stack.logs().join("\n");
    assert!(
        !all.contains("secret load details"),
        "body leaked into logs"
    );
    for number in [
        DRIVER,
        BACKUP_PHONE,
        PRIMARY_PHONE,
        "6195550123",
        "8583354807",
    ] {
        assert!(!all.contains(number), "{number} leaked into logs:\n{all}");
    }
    stack.stop().await;
}

// ---- dispatcher keywords ----------------------------------------------------------

#[tokio::test]
async fn off_and_on_from_the_dispatchers_phone_flip_on_duty_and_are_not_relayed() {
    let stack = seeded("keywords", |s| {
        s["last_heartbeat"] = json!(unix_now() - 3600)
    })
    .await;

    let (_, off) = stack.text_from(PRIMARY_PHONE, "  off ").await;
    assert_eq!(off.status, 200, "{off:?}");
    assert_eq!(off.headers["content-type"], "text/xml");
    assert!(off.body.contains("OFF duty"), "{}", off.body);
    let primary = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    assert_eq!(primary["on_duty"], json!(false));
    assert!(stack.sent().is_empty(), "a command is not relayed");

    let before = unix_now();
    let (_, on) = stack.text_from("858-555-0100", "ON").await;
    assert_eq!(on.status, 200);
    let primary = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    assert_eq!(primary["on_duty"], json!(true));
    assert_eq!(primary["available"], json!(true));
    assert!(
        primary["last_heartbeat"].as_i64().unwrap() >= before,
        "ON is a check-in"
    );
    assert!(stack.sent().is_empty());

    // Back on duty with a fresh check-in: the next driver text goes to the primary.
    stack.text_from(DRIVER, "hello").await;
    assert_eq!(stack.sent_to(PRIMARY_PHONE).len(), 1, "{:?}", stack.sent());
    stack.stop().await;
}

#[tokio::test]
async fn keywords_from_drivers_are_relayed_and_dispatchers_other_texts_never_are() {
    let stack = seeded("notkeyword", |_| {}).await;
    stack.text_from(DRIVER, "OFF").await;
    let sent = stack.sent_to(PRIMARY_PHONE);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        without_reference(&sent[0].body),
        format!("QDN driver {DRIVER}: OFF")
    );
    let primary = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    assert_eq!(primary["on_duty"], json!(true));
    // The backup's words are a reply (to nobody here), never a driver's text.
    let (_, answer) = stack.text_from(BACKUP_PHONE, "Running 10 min late").await;
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .body
            .contains("Not sent: no driver's text came to this phone"),
        "{}",
        answer.body
    );
    assert_eq!(stack.sent().len(), 1, "{:?}", stack.sent());
    stack.stop().await;
}

#[tokio::test]
async fn ack_from_a_dispatcher_is_a_command_not_a_message() {
    let stack = seeded("ack", |_| {}).await;
    let (sid, answer) = stack.text_from(BACKUP_PHONE, "ack k7q").await;
    assert_eq!(answer.status, 200);
    assert!(stack.sent().is_empty());
    let item = inbound_item(&stack.aws.message_log_items().await, &sid);
    assert_eq!(item["state"], "command");
    assert_eq!(item["command"], "ACK");
    stack.stop().await;
}

// ---- event shapes and URLs ----------------------------------------------------------

#[tokio::test]
async fn http_api_and_function_url_events_are_served_too() {
    let stack = seeded("v2", |_| {}).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "via http api");
    let params = as_refs(&params);
    let url = format!("https://{API_HOST}/{STAGE}{INBOUND_PATH}");
    let event = signed_http_api_event(&url, &params, None);
    assert_eq!(stack.invoke(event).await.status, 200);

    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "via function url");
    let params = as_refs(&params);
    let url = format!(
        "https://{}{INBOUND_PATH}",
        relay_tests::events::FUNCTION_URL_HOST
    );
    let signature = twilio_signature(TEST_AUTH_TOKEN, &url, &params);
    let headers = webhook_headers(&signature);
    let event = function_url_event("POST", INBOUND_PATH, &headers, &twilio_form(&params), None);
    let event = relay_tests::events::with_base64_body(event);
    let answer = stack.invoke(event).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent().len(), 2, "{:?}", stack.sent());
    stack.stop().await;
}

#[tokio::test]
async fn public_base_url_is_what_the_signature_covers_when_set() {
    let base = "https://dashboard.quickdumpnow.com";
    let stack = Stack::start_with("publicurl", 1, &[("PUBLIC_BASE_URL", base)]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let params = as_refs(&params);

    let by_request_url = stack.event_signed(&params, &stack.inbound_url(), TEST_AUTH_TOKEN);
    assert_eq!(stack.invoke(by_request_url).await.status, 403);

    let public = format!("{base}{INBOUND_PATH}");
    let answer = stack
        .invoke(stack.event_signed(&params, &public, TEST_AUTH_TOKEN))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = stack.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].status_callback.as_deref(),
        Some("https://dashboard.quickdumpnow.com/api/v1/sms/status")
    );
    stack.stop().await;
}

// ---- configuration ------------------------------------------------------------------

#[tokio::test]
async fn missing_configuration_fails_every_invocation_naming_the_variable() {
    let stack = Stack::start_with("noconfig", 1, &[("TWILIO_SECRET_ID", "")]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let event = stack.inbound_event(&as_refs(&params));
    for _ in 0..2 {
        let Invocation::Error(error) = stack.invoke_event(event.clone()).await else {
            panic!("expected the invocation to fail");
        };
        assert!(error.to_string().contains("TWILIO_SECRET_ID"), "{error}");
    }
    let logged = stack.functions[0]
        .wait_for_log(
            |l| l.contains("TWILIO_SECRET_ID"),
            std::time::Duration::from_secs(5),
        )
        .await;
    assert!(logged.is_some(), "{:?}", stack.logs());
    assert!(stack.sent().is_empty());
    assert!(stack.aws.message_log_items().await.is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn unreadable_secret_fails_the_invocation_naming_the_secret() {
    let stack =
        Stack::start_with("nosecret", 1, &[("TWILIO_SECRET_ID", "qdn/does-not-exist")]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let Invocation::Error(error) = stack
        .invoke_event(stack.inbound_event(&as_refs(&params)))
        .await
    else {
        panic!("expected the invocation to fail");
    };
    assert!(error.to_string().contains("qdn/does-not-exist"), "{error}");
    assert!(stack.sent().is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn a_send_twilio_never_answers_is_not_repeated_by_retries_or_redeliveries() {
    let stack = seeded("timeout", |_| {}).await;
    // Longer than the client's 5 s timeout: Twilio takes the message, we never hear.
    stack.twilio.inject(Fault::slow(6_500));
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let event = stack.inbound_event(&as_refs(&params));

    let first = stack.invoke(event.clone()).await;
    assert_eq!(first.status, 504, "{first:?}");
    let redelivered = stack.invoke(event).await;
    assert_eq!(redelivered.status, 200, "{redelivered:?}");

    // Twilio finishes the slow send (and the sandbox records it then); both
    // invocations have answered, so any retry or resend would be recorded by now too.
    let recorded = relay_tests::eventually(std::time::Duration::from_secs(10), || {
        !stack.twilio.requests().is_empty()
    })
    .await;
    assert!(recorded, "the sandbox never saw the request");
    assert_eq!(
        stack.twilio.requests().len(),
        1,
        "no retry, no fall-through, no resend"
    );
    let item = inbound_item(&stack.aws.message_log_items().await, &sid);
    assert_eq!(item["state"], "outcome_unknown");
    let alerts = stack.aws.alerts().await;
    let alert = alerts
        .iter()
        .find(|a| a.message["type"] == "undeliverable")
        .unwrap_or_else(|| panic!("{alerts:?}"));
    assert!(
        alert.message["reason"]
            .as_str()
            .unwrap()
            .contains("may or may not"),
        "{alert:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn sends_through_the_messaging_service_when_the_secret_names_one() {
    let service = "MG0123456789abcdef0123456789abcdef";
    let secret = json!({
        "account_sid": relay_tests::moto::TEST_ACCOUNT_SID,
        "auth_token": TEST_AUTH_TOKEN,
        "messaging_service_sid": service,
    });
    let stack = seeded_with_twilio_secret("service", &secret).await;

    let (_, answer) = stack.text_from(DRIVER, "hello").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = stack.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].messaging_service_sid.as_deref(), Some(service));
    assert_eq!(sent[0].from, None);
    stack.stop().await;
}

#[tokio::test]
async fn configuration_overrides_are_honoured() {
    let stack = Stack::start_with(
        "overrides",
        1,
        &[
            ("PRIMARY_DISPATCHER_ID", "ana-uk"),
            ("HEARTBEAT_MAX_AGE_SECS", "60"),
            ("DEFAULT_COUNTRY_CODE", "44"),
        ],
    )
    .await;
    // Fresh by the default limit (300 s), stale by the configured one (60 s).
    stack
        .aws
        .put_dispatcher(json!({
            "dispatcher_id": "ana-uk",
            "phone": "+447700900001",
            "available": true,
            "last_heartbeat": unix_now() - 120,
            "backup_dispatcher": "07700 900123",
        }))
        .await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;

    let (_, answer) = stack.text_from(DRIVER, "hello").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].to, "+447700900123",
        "national number in the default country"
    );
    let ana = stack.aws.get_dispatcher("ana-uk").await.unwrap();
    assert_eq!(ana["available"], json!(false));
    let sergio = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    assert_eq!(
        sergio["available"],
        json!(true),
        "only the configured primary is read"
    );
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_messages_mark_a_stale_primary_unavailable_exactly_once() {
    let stack = Stack::start_with("flip", 3, &[]).await;
    let mut seed = seed_dispatcher(unix_now());
    seed["last_heartbeat"] = json!(unix_now() - 900);
    stack.aws.put_dispatcher(seed).await;
    stack
        .runtime
        .wait_for_pollers(3, std::time::Duration::from_secs(30))
        .await;

    let texts = (0..6).map(|i| {
        let sid = message_sid();
        let params = driver_params(&sid, DRIVER, &format!("text {i}"));
        stack.invoke(stack.inbound_event(&as_refs(&params)))
    });
    let answers = futures::future::join_all(texts).await;

    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 6, "{:?}", stack.sent());
    let alerts = stack.aws.alerts().await;
    let flips = alerts
        .iter()
        .filter(|a| a.message["type"] == "dispatcher_unavailable")
        .count();
    assert_eq!(flips, 1, "{alerts:?}");
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a.message["type"] == "cascade")
            .count(),
        6
    );
    stack.stop().await;
}

#[tokio::test]
async fn status_callbacks_get_the_same_signature_check() {
    let stack = seeded("status", |_| {}).await;
    let url = format!("https://{API_HOST}/{STAGE}/api/v1/sms/status");
    let sid = message_sid();
    let params = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "delivered"),
        ("AccountSid", relay_tests::moto::TEST_ACCOUNT_SID),
    ];
    let event = |token: &str| {
        let signature = twilio_signature(token, &url, &params);
        relay_tests::rest_proxy_event(
            "POST",
            "/api/v1/sms/status",
            STAGE,
            API_HOST,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Signature", &signature),
            ],
            &twilio_form(&params),
            None,
        )
    };
    let forged = stack.invoke(event("wrong-token")).await;
    assert_eq!(forged.status, 403, "{forged:?}");
    let signed = stack.invoke(event(TEST_AUTH_TOKEN)).await;
    assert_eq!(signed.status, 200, "{signed:?}");
    assert_eq!(signed.body, "<Response/>");
    assert!(stack.sent().is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn no_attempt_starts_that_the_invocation_deadline_would_cut_off() {
    let stack = seeded("deadline", |_| {}).await;
    stack
        .runtime
        .set_function_timeout(std::time::Duration::from_secs(8));
    // Each failing answer takes 2 s; a second attempt would start past 8 - 5 - 1 s.
    stack
        .twilio
        .inject(Fault::status(500).delay_ms(2_000).times(3));

    let (sid, answer) = stack.text_from(DRIVER, "hello").await;

    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(
        stack.twilio.requests().len(),
        1,
        "{:?}",
        stack.twilio.requests()
    );
    assert!(
        answer.body.contains("not enough time left"),
        "{}",
        answer.body
    );
    assert_claim_released(&stack, &sid).await;
    stack.stop().await;
}

#[tokio::test]
async fn a_query_string_on_the_webhook_url_is_part_of_what_is_signed() {
    let stack = seeded("query", |_| {}).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let params = as_refs(&params);
    let query = "tenant=qdn&zone=north&shift=night&lang=en";
    let url = format!("{}?{query}", stack.inbound_url());
    let signature = twilio_signature(TEST_AUTH_TOKEN, &url, &params);
    let event = relay_tests::rest_proxy_event(
        "POST",
        INBOUND_PATH,
        STAGE,
        API_HOST,
        &webhook_headers(&signature),
        &twilio_form(&params),
        Some(query),
    );
    let answer = stack.invoke(event).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let v2 = signed_http_api_event(&url, &params, Some(query));
    let answer = stack.invoke(v2).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent().len(), 1, "the second is the same message");
    stack.stop().await;
}

#[tokio::test]
async fn a_twilio_secret_without_a_sender_fails_the_invocation_naming_it() {
    let incomplete = json!({
        "account_sid": relay_tests::moto::TEST_ACCOUNT_SID,
        "auth_token": TEST_AUTH_TOKEN,
    });
    let stack = seeded_with_twilio_secret("nosender", &incomplete).await;
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "hello");
    let Invocation::Error(error) = stack
        .invoke_event(stack.inbound_event(&as_refs(&params)))
        .await
    else {
        panic!("expected the invocation to fail");
    };
    let error = error.to_string();
    assert!(
        error.contains(&stack.aws.twilio_secret_id) && error.contains("from_number"),
        "{error}"
    );
    assert!(stack.sent().is_empty());
    assert!(
        stack.aws.message_log_items().await.is_empty(),
        "nothing claimed"
    );
    stack.stop().await;
}

#[tokio::test]
async fn an_event_that_is_not_a_valid_request_fails_that_invocation_only() {
    let stack = seeded("badevent", |_| {}).await;
    let mut broken = stack.inbound_event(&[("MessageSid", "x")]);
    broken["isBase64Encoded"] = json!(true);
    broken["body"] = json!("%%% not base64 %%%");
    let Invocation::Error(_) = stack.runtime.invoke(broken).await else {
        panic!("expected the invocation to fail");
    };
    let not_an_event = stack.runtime.invoke(json!({"hello": "world"})).await;
    assert!(
        matches!(not_an_event, Invocation::Error(_)),
        "{not_an_event:?}"
    );
    // The same process goes on serving.
    let (_, answer) = stack.text_from(DRIVER, "still there?").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent().len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn every_recipient_refusal_falls_through_and_a_sender_refusal_stops() {
    // Twilio's magic numbers: unsubscribed, not reachable, region, not mobile.
    let stack = seeded("refusals", |_| {}).await;
    for (number, code) in [
        ("+15005550004", 21610),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550009", 21614),
    ] {
        let mut seed = seed_dispatcher(unix_now());
        seed["phone"] = json!(number);
        stack.aws.put_dispatcher(seed).await;
        stack.twilio.reset();
        let (_, answer) = stack.text_from(DRIVER, "hello").await;
        assert_eq!(answer.status, 200, "{code}: {answer:?}");
        let requests = stack.twilio.requests();
        assert_eq!(requests[0].error_code, Some(code));
        assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "{code}: {requests:?}");
    }
    stack.stop().await;

    // An invalid sender (21212) fails for every tier alike: stop, 502, claim released.
    let broken = json!({
        "account_sid": relay_tests::moto::TEST_ACCOUNT_SID,
        "auth_token": TEST_AUTH_TOKEN,
        "from_number": "+15005550001",
    });
    let stack = seeded_with_twilio_secret("badsender", &broken).await;
    let (sid, answer) = stack.text_from(DRIVER, "hello").await;
    assert_eq!(answer.status, 502, "{answer:?}");
    let requests = stack.twilio.requests();
    assert_eq!(requests.len(), 1, "the backup is not tried: {requests:?}");
    assert_eq!(requests[0].error_code, Some(21212));
    assert_released_and_alerted(&stack, &sid).await;
    stack.stop().await;
}

#[tokio::test]
async fn a_live_claim_blocks_a_redelivery_and_an_abandoned_one_does_not() {
    let stack = seeded("claims", |_| {}).await;
    let claim = |sid: &str, lock_expires_at: i64| {
        relay_tests::dynamo_json::to_item(&json!({
            "message_sid": sid,
            "record_type": "inbound",
            "state": "in_progress",
            "received_at": lock_expires_at - 60,
            "lock_expires_at": lock_expires_at,
            "expires_at": lock_expires_at + 3600,
        }))
    };
    let put = |item| {
        stack
            .aws
            .dynamodb
            .put_item()
            .table_name(&stack.aws.message_table)
            .set_item(Some(item))
            .send()
    };
    // Another invocation holds this one right now.
    let live = message_sid();
    put(claim(&live, unix_now() + 50)).await.unwrap();
    let params = driver_params(&live, DRIVER, "held");
    let answer = stack.invoke(stack.inbound_event(&as_refs(&params))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(stack.sent().is_empty(), "a live claim is respected");

    // This one's invocation died a while ago.
    let abandoned = message_sid();
    put(claim(&abandoned, unix_now() - 5)).await.unwrap();
    let params = driver_params(&abandoned, DRIVER, "orphaned");
    let answer = stack.invoke(stack.inbound_event(&as_refs(&params))).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent().len(), 1, "an abandoned claim is taken over");
    let item = inbound_item(&stack.aws.message_log_items().await, &abandoned);
    assert_eq!(item["state"], "forwarded");
    stack.stop().await;
}

#[tokio::test]
async fn unreachable_twilio_answers_5xx_alerts_and_keeps_the_message_retryable() {
    // Nothing listens on port 9 of loopback: every connection is refused.
    let stack = Stack::start_with(
        "unreachable",
        1,
        &[("TWILIO_API_BASE", "http://127.0.0.1:9")],
    )
    .await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let (sid, answer) = stack.text_from(DRIVER, "hello").await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(answer.body.contains("after 3 attempts"), "{}", answer.body);
    assert_released_and_alerted(&stack, &sid).await;
    stack.stop().await;
}

#[tokio::test]
async fn a_failing_alert_topic_does_not_stop_the_message() {
    let bogus = "arn:aws:sns:us-east-1:123456789012:no-such-topic";
    let stack = Stack::start_with("notopic", 1, &[("ALERT_TOPIC_ARN", bogus)]).await;
    let mut seed = seed_dispatcher(unix_now());
    seed["available"] = json!(false);
    stack.aws.put_dispatcher(seed).await;
    let (_, answer) = stack.text_from(DRIVER, "hello").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1);
    assert!(
        stack
            .logs()
            .iter()
            .any(|l| l.contains("alert could not be published")),
        "{:?}",
        stack.logs()
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_failing_state_table_answers_5xx_alerts_and_sends_nothing() {
    let stack = Stack::start_with("notable", 1, &[("STATE_TABLE", "no-such-table")]).await;
    let (sid, answer) = stack.text_from(DRIVER, "hello").await;
    assert_eq!(answer.status, 500, "{answer:?}");
    assert!(stack.sent().is_empty());
    assert_claim_released(&stack, &sid).await;
    let alerts = stack.aws.alerts().await;
    assert!(
        alerts.iter().any(|a| a.message["type"] == "undeliverable"
            && a.message["reason"]
                .as_str()
                .unwrap()
                .contains("no-such-table")),
        "{alerts:?}"
    );
    // Neither the alert nor the answer carries AWS's own error text; the log does.
    for text in alerts
        .iter()
        .map(|a| a.message.to_string())
        .chain([answer.body.clone()])
    {
        assert!(!text.contains("ResourceNotFound"), "{text}");
    }
    assert!(stack.logs().iter().any(|l| l.contains("ResourceNotFound")));
    stack.stop().await;
}

#[tokio::test]
async fn init_is_timed_by_phase_and_prefetches_the_twilio_secret() {
    let stack = Stack::start("init").await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let line = stack.functions[0]
        .wait_for_log(
            |l| l.contains("\"init phases\""),
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("an init phases line");
    let line: Value = serde_json::from_str(&line).unwrap();
    for phase in [
        "config_ms",
        "sdk_config_ms",
        "clients_ms",
        "prefetch_ms",
        "init_ms",
    ] {
        assert!(
            line[phase].as_f64().is_some_and(|ms| ms >= 0.0),
            "{phase}: {line}"
        );
    }
    // The secret was read during init: gone now, the first message still goes out.
    stack
        .aws
        .secrets
        .delete_secret()
        .secret_id(&stack.aws.twilio_secret_id)
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("delete the Twilio secret");

    let (_, answer) = stack.text_from(DRIVER, "first after init").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent_to(PRIMARY_PHONE).len(), 1, "{:?}", stack.sent());
    stack.stop().await;
}

// ---- damaged dispatcher items: a hand-edited attribute never stops a text ----------

use aws_sdk_dynamodb::types::AttributeValue;

fn number(raw: &str) -> AttributeValue {
    AttributeValue::N(raw.to_string())
}

fn string(raw: &str) -> AttributeValue {
    AttributeValue::S(raw.to_string())
}

/// The primary's item with `attribute` stored as `value`; a driver's text reaches
/// exactly one dispatcher, `expect_phone`, with `200`, and the function's log names the
/// damaged attribute (never a number in full). Returns the stack and the text's SID.
async fn relays_despite(
    prefix: &str,
    attribute: &str,
    value: AttributeValue,
    expect_phone: &str,
) -> (Stack, String) {
    let stack = Stack::start(prefix).await;
    stack
        .aws
        .put_dispatcher_with(seed_dispatcher(unix_now()), &[(attribute, value)])
        .await;

    let (sid, answer) = stack.text_from(DRIVER, "Load ready").await;

    assert_eq!(
        answer.status,
        200,
        "{answer:?}\n{}",
        stack.logs().join("\n")
    );
    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, expect_phone);
    let line = stack.functions[0]
        .wait_for_log(
            |l| l.contains("damaged dispatcher attribute") && l.contains(attribute),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|| panic!("no log line names {attribute}"));
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["attribute"], attribute, "{line}");
    assert_eq!(line["dispatcher_id"], "sergio-main", "{line}");
    for phone in [PRIMARY_PHONE, BACKUP_PHONE, "8583354807"] {
        assert!(!line.to_string().contains(phone), "{line}");
    }
    (stack, sid)
}

/// A damaged `message_log_ttl` still reaches the primary, and its log items live the
/// default day.
async fn damaged_ttl_reaches_the_primary(prefix: &str, value: AttributeValue) {
    let (stack, sid) = relays_despite(prefix, "message_log_ttl", value, PRIMARY_PHONE).await;
    let item = inbound_item(&stack.aws.message_log_items().await, &sid);
    let received = item["received_at"].as_i64().unwrap();
    assert_eq!(item["expires_at"].as_i64().unwrap(), received + 86_400);
    stack.stop().await;
}

#[tokio::test]
async fn a_negative_ttl_still_reaches_the_primary() {
    damaged_ttl_reaches_the_primary("dmg-ttl-neg", number("-5")).await;
}

#[tokio::test]
async fn a_ttl_in_words_still_reaches_the_primary() {
    damaged_ttl_reaches_the_primary("dmg-ttl-words", string("one day")).await;
}

#[tokio::test]
async fn a_ttl_of_1e12_still_reaches_the_primary() {
    damaged_ttl_reaches_the_primary("dmg-ttl-huge", number("1e12")).await;
}

/// A damaged attribute whose safe value is "not available": the backup gets the text,
/// and the cascade says why.
async fn damaged_availability_cascades(prefix: &str, attribute: &str, value: AttributeValue) {
    let (stack, sid) = relays_despite(prefix, attribute, value, BACKUP_PHONE).await;
    let item = inbound_item(&stack.aws.message_log_items().await, &sid);
    assert_eq!(item["routing_decision"], "backup");
    assert_eq!(
        item["cascade_reason"],
        format!("primary: primary's {attribute} attribute is damaged")
    );
    let by_reason = stack.metric("CascadesByReason").await;
    assert_metric(
        &by_reason,
        "CascadesByReason",
        &[("Reason", "damaged_item")],
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_heartbeat_stored_as_a_string_is_stale() {
    let now = unix_now().to_string();
    damaged_availability_cascades("dmg-hb-s", "last_heartbeat", string(&now)).await;
}

#[tokio::test]
async fn a_fractional_heartbeat_is_stale() {
    let now = format!("{}.5", unix_now() - 10);
    damaged_availability_cascades("dmg-hb-frac", "last_heartbeat", number(&now)).await;
}

#[tokio::test]
async fn available_stored_as_a_string_is_not_available() {
    damaged_availability_cascades("dmg-avail", "available", string("true")).await;
}

#[tokio::test]
async fn on_duty_stored_as_a_string_is_not_available() {
    damaged_availability_cascades("dmg-duty", "on_duty", string("yes")).await;
}

#[tokio::test]
async fn a_backup_stored_as_a_number_is_used() {
    let stack = Stack::start("dmg-backup-n").await;
    let mut seed = seed_dispatcher(unix_now());
    seed["available"] = json!(false);
    stack
        .aws
        .put_dispatcher_with(seed, &[("backup_dispatcher", number("8583354807"))])
        .await;

    let (_, answer) = stack.text_from(DRIVER, "Load ready").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "{:?}", stack.sent());
    assert_eq!(stack.sent().len(), 1);
    let line = stack.functions[0]
        .wait_for_log(
            |l| l.contains("damaged dispatcher attribute") && l.contains("backup_dispatcher"),
            std::time::Duration::from_secs(5),
        )
        .await
        .expect("the damage is logged, naming the attribute");
    assert!(line.contains("read as its digits"), "{line}");
    assert!(!line.contains("8583354807"), "{line}");
    stack.stop().await;
}

#[tokio::test]
async fn a_primary_without_a_phone_cascades() {
    let stack = Stack::start("dmg-nophone").await;
    let mut seed = seed_dispatcher(unix_now());
    seed.as_object_mut().unwrap().remove("phone");
    stack.aws.put_dispatcher(seed).await;

    let (sid, answer) = stack.text_from(DRIVER, "Load ready").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "{:?}", stack.sent());
    assert_eq!(stack.sent().len(), 1);
    let item = inbound_item(&stack.aws.message_log_items().await, &sid);
    assert_eq!(item["cascade_reason"], "primary: not configured");
    stack.stop().await;
}

#[tokio::test]
async fn a_phone_stored_as_a_list_cascades_naming_it() {
    let stack = Stack::start("dmg-phone-l").await;
    stack
        .aws
        .put_dispatcher_with(
            seed_dispatcher(unix_now()),
            &[("phone", AttributeValue::L(vec![string(PRIMARY_PHONE)]))],
        )
        .await;

    let (sid, answer) = stack.text_from(DRIVER, "Load ready").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "{:?}", stack.sent());
    let item = inbound_item(&stack.aws.message_log_items().await, &sid);
    assert_eq!(item["cascade_reason"], "primary: phone is damaged");
    stack.stop().await;
}
