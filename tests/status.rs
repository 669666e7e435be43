//! End-to-end: Twilio's status callbacks (`POST /api/v1/sms/status`) for the texts the
//! built `sms-inbound` binary forwarded, under the Lambda Runtime API, AWS in moto,
//! Twilio in the sandbox (which builds and signs the callbacks as Twilio does).

use std::time::Duration;

use relay_tests::moto::TEST_AUTH_TOKEN;
use relay_tests::stack::{
    BACKUP_PHONE, PRIMARY_PHONE, Stack, TERTIARY_PHONE, message_sid, seed_dispatcher, unix_now,
    without_reference,
};
use relay_tests::twilio_sandbox::StatusCallback;
use relay_tests::{HttpAnswer, assert_metric, eventually, twilio_signature};
use serde_json::{Value, json};

const DRIVER: &str = "+16195550123";

// ---- helpers -------------------------------------------------------------------

/// A stack with the seed's dispatcher, changed by `change`.
async fn seeded(prefix: &str, change: impl FnOnce(&mut Value)) -> Stack {
    let stack = Stack::start(prefix).await;
    let mut seed = seed_dispatcher(unix_now());
    change(&mut seed);
    stack.aws.put_dispatcher(seed).await;
    stack
}

/// A driver's text, relayed: its inbound SID and the forwarded message's SID. Alerts
/// the relay raised on the way are drained, so a test sees only the callbacks' alerts.
async fn relayed(stack: &Stack, body: &str) -> (String, String) {
    let before = stack.sent().len();
    let (sid, answer) = stack.text_from(DRIVER, body).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = stack.sent();
    assert_eq!(sent.len(), before + 1, "{sent:?}");
    let forwarded = sent.last().unwrap();
    assert!(
        forwarded.status_callback.is_some(),
        "the relay sets StatusCallback on every forwarded text: {forwarded:?}"
    );
    stack.aws.alerts().await;
    (sid, forwarded.sid.clone())
}

fn assert_empty_twiml(answer: &HttpAnswer) {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.headers.get("content-type").map(String::as_str),
        Some("text/xml"),
        "{answer:?}"
    );
    assert_eq!(answer.body, "<Response/>");
}

fn item(items: &[Value], key: &str) -> Value {
    items
        .iter()
        .find(|i| i["message_sid"] == key)
        .cloned()
        .unwrap_or_else(|| panic!("no message-log item {key}: {items:#?}"))
}

fn delivery_key(phone: &str) -> String {
    format!("delivery#{phone}")
}

fn alerts_of<'a>(alerts: &'a [relay_tests::Alert], kind: &str) -> Vec<&'a Value> {
    alerts
        .iter()
        .filter(|a| a.message["type"] == kind)
        .map(|a| &a.message)
        .collect()
}

/// Every message-log item, in a stable order (for before/after comparisons).
async fn snapshot(stack: &Stack) -> Vec<Value> {
    let mut items = stack.aws.message_log_items().await;
    items.sort_by_key(|i| i["message_sid"].as_str().unwrap_or_default().to_owned());
    items
}

/// A status callback for `sid` signed with `token` over the stack's status URL, as
/// Twilio builds one (without going through the sandbox).
fn signed_callback(stack: &Stack, token: &str, params: &[(&str, &str)]) -> StatusCallback {
    let url = stack.status_url();
    StatusCallback {
        signature: twilio_signature(token, &url, params),
        url,
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn with_logs(stack: &Stack) -> String {
    format!("logs:\n{}", stack.logs().join("\n"))
}

/// The primary's text failed with `status` / `code`: everything rule 1 and 2 promise.
async fn assert_failure_moves_on_to_the_backup(prefix: &str, status: &str, code: u32) {
    let stack = seeded(prefix, |_| {}).await;
    let (inbound, primary_sid) = relayed(&stack, "Load ready at 5th & Main").await;
    assert_eq!(stack.sent()[0].to, PRIMARY_PHONE);

    let answer = stack.fire_status(&primary_sid, status, Some(code)).await;

    assert_empty_twiml(&answer);
    let sent = stack.sent();
    assert_eq!(sent.len(), 2, "{sent:?}\n{}", with_logs(&stack));
    assert_eq!(sent[1].to, BACKUP_PHONE);
    assert_eq!(
        without_reference(&sent[1].body),
        without_reference(&sent[0].body),
        "the same text goes on"
    );
    let backup_sid = sent[1].sid.clone();

    let alerts = stack.aws.alerts().await;
    let cascades = alerts_of(&alerts, "cascade");
    assert_eq!(cascades.len(), 1, "{alerts:?}");
    let cascade = cascades[0];
    assert_eq!(
        cascade["reason"],
        format!("primary: delivery failed (Twilio error {code})")
    );
    assert_eq!(cascade["routing_decision"], "backup");
    assert_eq!(cascade["message_sid"], inbound.as_str());
    assert_eq!(cascade["dispatcher_id"], "sergio-main");
    assert_eq!(alerts.len(), 1, "nothing else alerted: {alerts:?}");

    let items = stack.aws.message_log_items().await;
    let primary_forward = item(&items, &primary_sid);
    assert_eq!(primary_forward["delivery_status"], status);
    let inbound_item = item(&items, &inbound);
    assert_eq!(inbound_item["forwarded_sid"], backup_sid.as_str());
    assert_eq!(inbound_item["routing_decision"], "backup");
    let attempts = inbound_item["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("no attempts: {inbound_item}"));
    let failed = attempts
        .iter()
        .position(|a| a["outcome"] == "delivery_failed")
        .unwrap_or_else(|| panic!("no failed delivery in the attempts: {attempts:?}"));
    assert_eq!(attempts[failed]["tier"], "primary", "{attempts:?}");
    assert_eq!(attempts[failed]["error_code"], json!(code), "{attempts:?}");
    assert_eq!(
        attempts.len(),
        failed + 2,
        "the backup's send follows the failure, last: {attempts:?}"
    );
    assert_eq!(attempts[failed + 1]["tier"], "backup", "{attempts:?}");
    assert_eq!(attempts[failed + 1]["outcome"], "sent", "{attempts:?}");
    let backup_forward = item(&items, &backup_sid);
    assert_eq!(backup_forward["record_type"], "forward");
    assert_eq!(backup_forward["moved_on_from"], primary_sid.as_str());
    assert_eq!(backup_forward["inbound_sid"], inbound.as_str());
    assert_eq!(backup_forward["routing_decision"], "backup");
    let health = item(&items, &delivery_key(PRIMARY_PHONE));
    assert!(
        health["last_failure_at"].is_i64(),
        "the failure is recorded against the primary's number: {health}"
    );
    let failures = stack.metric("DeliveryFailures").await;
    assert_metric(&failures, "DeliveryFailures", &[]);
    assert_eq!(failures["DeliveryFailures"], 1);
    let moved = stack.metric("TextsMovedOn").await;
    assert_metric(&moved, "TextsMovedOn", &[("Tier", "backup")]);
    let by_reason = stack.metric("CascadesByReason").await;
    assert_metric(
        &by_reason,
        "CascadesByReason",
        &[("Reason", "delivery_failed")],
    );
    stack.stop().await;
}

// ---- the failure statuses move the text on -------------------------------------

#[tokio::test]
async fn undelivered_primary_text_moves_on_to_the_backup_at_once() {
    assert_failure_moves_on_to_the_backup("st-undeliv", "undelivered", 30003).await;
}

#[tokio::test]
async fn failed_primary_text_moves_on_to_the_backup_at_once() {
    assert_failure_moves_on_to_the_backup("st-failed", "failed", 30008).await;
}

#[tokio::test]
async fn a_failed_backup_text_moves_on_to_the_tertiary() {
    let stack = seeded("st-chain", |_| {}).await;
    let (inbound, primary_sid) = relayed(&stack, "Gate code?").await;

    let first = stack
        .fire_status(&primary_sid, "undelivered", Some(30003))
        .await;
    assert_empty_twiml(&first);
    let sent = stack.sent();
    assert_eq!(sent.len(), 2, "{sent:?}\n{}", with_logs(&stack));
    assert_eq!(sent[1].to, BACKUP_PHONE);
    let backup_sid = sent[1].sid.clone();

    let second = stack
        .fire_status(&backup_sid, "undelivered", Some(30003))
        .await;
    assert_empty_twiml(&second);
    let sent = stack.sent();
    assert_eq!(sent.len(), 3, "{sent:?}\n{}", with_logs(&stack));
    assert_eq!(sent[2].to, TERTIARY_PHONE);
    assert_eq!(
        without_reference(&sent[2].body),
        without_reference(&sent[0].body),
        "the same text goes on"
    );
    let tertiary_sid = sent[2].sid.clone();

    let alerts = stack.aws.alerts().await;
    let cascades = alerts_of(&alerts, "cascade");
    assert_eq!(cascades.len(), 2, "{alerts:?}");
    assert_eq!(
        cascades[0]["reason"],
        "primary: delivery failed (Twilio error 30003)"
    );
    assert_eq!(cascades[0]["routing_decision"], "backup");
    let second_reason = cascades[1]["reason"].as_str().unwrap_or_default();
    assert!(
        second_reason.starts_with("backup: delivery failed (Twilio error 30003)"),
        "{alerts:?}"
    );
    assert_eq!(cascades[1]["routing_decision"], "tertiary");
    assert_eq!(cascades[1]["message_sid"], inbound.as_str());

    let items = stack.aws.message_log_items().await;
    let inbound_item = item(&items, &inbound);
    assert_eq!(inbound_item["forwarded_sid"], tertiary_sid.as_str());
    assert_eq!(inbound_item["routing_decision"], "tertiary");
    assert_eq!(item(&items, &backup_sid)["delivery_status"], "undelivered");
    assert_eq!(
        item(&items, &tertiary_sid)["moved_on_from"],
        backup_sid.as_str()
    );
    for phone in [PRIMARY_PHONE, BACKUP_PHONE] {
        let health = item(&items, &delivery_key(phone));
        assert!(health["last_failure_at"].is_i64(), "{health}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn the_last_tier_failing_gives_up_with_an_undeliverable_alert_and_keeps_the_text_listed() {
    let stack = seeded("st-lasttier", |s| {
        s["available"] = json!(false);
        s.as_object_mut().unwrap().remove("backup_dispatcher");
    })
    .await;
    let (inbound, tertiary_sid) = relayed(&stack, "Anyone there?").await;
    assert_eq!(stack.sent()[0].to, TERTIARY_PHONE);
    let kept = item(&stack.aws.message_log_items().await, &inbound);
    assert!(
        kept["relay_body"].is_string(),
        "the text is kept until delivered: {kept}"
    );

    let answer = stack
        .fire_status(&tertiary_sid, "failed", Some(30008))
        .await;

    assert_empty_twiml(&answer);
    assert_eq!(
        stack.sent().len(),
        1,
        "nothing more sent: {:?}",
        stack.sent()
    );
    let alerts = stack.aws.alerts().await;
    let undeliverable = alerts_of(&alerts, "undeliverable");
    assert_eq!(undeliverable.len(), 1, "{alerts:?}");
    let reason = undeliverable[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("tertiary: delivery failed (Twilio error 30008)"),
        "{reason}"
    );
    assert_eq!(undeliverable[0]["message_sid"], inbound.as_str());
    assert_eq!(undeliverable[0]["dispatcher_id"], "sergio-main");
    assert!(alerts_of(&alerts, "cascade").is_empty(), "{alerts:?}");
    let items = stack.aws.message_log_items().await;
    let inbound_item = item(&items, &inbound);
    // Listed as reached nobody, its words kept for `qdn redeliver`.
    assert!(
        inbound_item["relay_body"].is_string(),
        "the kept text stays: {inbound_item}"
    );
    assert_eq!(inbound_item["fate"], "undeliverable", "{inbound_item}");
    assert_eq!(
        inbound_item["unresolved_day"], inbound_item["msg_day"],
        "{inbound_item}"
    );
    assert_eq!(item(&items, &tertiary_sid)["delivery_status"], "failed");
    stack.stop().await;
}

// ---- other statuses are recorded ------------------------------------------------

#[tokio::test]
async fn delivered_is_recorded_and_drops_the_kept_text_without_sending() {
    let stack = seeded("st-delivered", |_| {}).await;
    let (inbound, primary_sid) = relayed(&stack, "hello").await;

    let answer = stack.fire_status(&primary_sid, "delivered", None).await;

    assert_empty_twiml(&answer);
    assert_eq!(stack.sent().len(), 1, "{:?}", stack.sent());
    let alerts = stack.aws.alerts().await;
    assert!(alerts.is_empty(), "{alerts:?}");
    let items = stack.aws.message_log_items().await;
    assert_eq!(item(&items, &primary_sid)["delivery_status"], "delivered");
    let inbound_item = item(&items, &inbound);
    assert_eq!(inbound_item["delivery_status"], "delivered");
    assert!(
        inbound_item.get("relay_body").is_none(),
        "the kept text is dropped once delivered: {inbound_item}"
    );
    let health = item(&items, &delivery_key(PRIMARY_PHONE));
    assert!(health["last_success_at"].is_i64(), "{health}");
    assert!(health.get("last_failure_at").is_none(), "{health}");
    // Seconds from the forward to the delivered callback, for the dashboard's average.
    let delivery = stack.metric("DeliveryTime").await;
    assert_metric(&delivery, "DeliveryTime", &[]);
    let seconds = delivery["DeliveryTime"][0].as_f64().expect("one value");
    assert!((0.0..60.0).contains(&seconds), "{delivery}");
    stack.stop().await;
}

#[tokio::test]
async fn statuses_arriving_out_of_order_never_move_the_message_backwards() {
    let stack = seeded("st-order", |_| {}).await;

    // `delivered`, then a late `sent` and a late `queued`.
    let (inbound, sid) = relayed(&stack, "one").await;
    for status in ["delivered", "sent", "queued"] {
        assert_empty_twiml(&stack.fire_status(&sid, status, None).await);
    }
    let items = stack.aws.message_log_items().await;
    assert_eq!(item(&items, &sid)["delivery_status"], "delivered");
    assert_eq!(item(&items, &inbound)["delivery_status"], "delivered");

    // A whole life, delivered in reverse.
    let (inbound, sid) = relayed(&stack, "two").await;
    let life = stack
        .twilio
        .status_callbacks_for_life(&sid, "delivered", None);
    assert!(life.len() >= 2, "{life:?}");
    assert_eq!(life.last().unwrap().status(), "delivered");
    for callback in life.iter().rev() {
        assert_empty_twiml(&stack.invoke(stack.status_event(callback)).await);
    }
    let items = stack.aws.message_log_items().await;
    assert_eq!(item(&items, &sid)["delivery_status"], "delivered");
    assert_eq!(item(&items, &inbound)["delivery_status"], "delivered");

    assert_eq!(stack.sent().len(), 2, "nothing resent: {:?}", stack.sent());
    let alerts = stack.aws.alerts().await;
    assert!(alerts.is_empty(), "{alerts:?}");
    stack.stop().await;
}

#[tokio::test]
async fn an_unknown_status_is_answered_and_changes_nothing() {
    let stack = seeded("st-exploded", |_| {}).await;
    let (_, sid) = relayed(&stack, "hello").await;
    let before = snapshot(&stack).await;

    let answer = stack.fire_status(&sid, "exploded", None).await;

    assert_empty_twiml(&answer);
    assert_eq!(snapshot(&stack).await, before, "{}", with_logs(&stack));
    assert_eq!(stack.sent().len(), 1, "{:?}", stack.sent());
    let alerts = stack.aws.alerts().await;
    assert!(alerts.is_empty(), "{alerts:?}");
    stack.stop().await;
}

// ---- redeliveries and races -----------------------------------------------------

#[tokio::test]
async fn a_redelivered_failure_callback_sends_the_text_on_only_once() {
    let stack = seeded("st-redeliver", |_| {}).await;
    let (_, primary_sid) = relayed(&stack, "hello").await;

    // The very same event twice, then Twilio building the callback again.
    let callback = stack
        .twilio
        .status_callback(&primary_sid, "undelivered", Some(30003))
        .expect("the forwarded text has a StatusCallback");
    let event = stack.status_event(&callback);
    assert_empty_twiml(&stack.invoke(event.clone()).await);
    assert_empty_twiml(&stack.invoke(event).await);
    assert_empty_twiml(
        &stack
            .fire_status(&primary_sid, "undelivered", Some(30003))
            .await,
    );

    let sent = stack.sent();
    assert_eq!(sent.len(), 2, "{sent:?}\n{}", with_logs(&stack));
    assert_eq!(sent[1].to, BACKUP_PHONE);
    let alerts = stack.aws.alerts().await;
    assert_eq!(alerts_of(&alerts, "cascade").len(), 1, "{alerts:?}");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    stack.stop().await;
}

#[tokio::test]
async fn concurrent_failure_callbacks_across_instances_send_the_text_on_once() {
    let stack = Stack::start_with("st-race", 2, &[]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    stack
        .runtime
        .wait_for_pollers(2, Duration::from_secs(30))
        .await;
    let (_, primary_sid) = relayed(&stack, "hello").await;
    let callback = stack
        .twilio
        .status_callback(&primary_sid, "undelivered", Some(30003))
        .expect("the forwarded text has a StatusCallback");
    let event = stack.status_event(&callback);
    // Both instances idle again before the callbacks race.
    stack
        .runtime
        .wait_for_pollers(2, Duration::from_secs(30))
        .await;

    let (first, second) = tokio::join!(stack.invoke(event.clone()), stack.invoke(event));

    assert_eq!(
        (first.status, second.status),
        (200, 200),
        "{first:?} {second:?}"
    );
    let sent = stack.sent();
    assert_eq!(sent.len(), 2, "{sent:?}\n{}", with_logs(&stack));
    assert_eq!(sent[1].to, BACKUP_PHONE);
    let alerts = stack.aws.alerts().await;
    assert_eq!(alerts_of(&alerts, "cascade").len(), 1, "{alerts:?}");
    // Both instances really handled the callback (else nothing raced).
    let handled_by = |f: &relay_tests::FunctionProcess| {
        f.json_logs().iter().any(|l| {
            l["message"] == "status callback" && l["forwarded_sid"] == primary_sid.as_str()
        })
    };
    let both = eventually(Duration::from_secs(5), || {
        stack.functions.iter().all(handled_by)
    })
    .await;
    assert!(
        both,
        "both instances served the callback: {}",
        with_logs(&stack)
    );
    stack.stop().await;
}

// ---- callbacks we must not act on -----------------------------------------------

#[tokio::test]
async fn a_forged_status_callback_is_refused_and_changes_nothing() {
    let stack = seeded("st-forged", |_| {}).await;
    let (_, sid) = relayed(&stack, "hello").await;
    let before = snapshot(&stack).await;

    // Signed with the wrong auth token.
    let mut wrong_token = stack
        .twilio
        .status_callback(&sid, "undelivered", Some(30003))
        .unwrap();
    let params: Vec<(&str, &str)> = wrong_token
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    wrong_token.signature = twilio_signature(
        "ffffffffffffffffffffffffffffffff",
        &wrong_token.url,
        &params,
    );
    let answer = stack.invoke(stack.status_event(&wrong_token)).await;
    assert_eq!(answer.status, 403, "{answer:?}");

    // A genuine `sent` callback whose status was changed after signing.
    let mut tampered = stack.twilio.status_callback(&sid, "sent", None).unwrap();
    for (name, value) in &mut tampered.params {
        if name == "MessageStatus" || name == "SmsStatus" {
            *value = "undelivered".into();
        }
    }
    tampered
        .params
        .insert(0, ("ErrorCode".into(), "30003".into()));
    let answer = stack.invoke(stack.status_event(&tampered)).await;
    assert_eq!(answer.status, 403, "{answer:?}");

    assert_eq!(stack.sent().len(), 1, "nothing sent: {:?}", stack.sent());
    assert_eq!(
        snapshot(&stack).await,
        before,
        "no status written\n{}",
        with_logs(&stack)
    );
    let alerts = stack.aws.alerts().await;
    assert!(alerts.is_empty(), "{alerts:?}");
    stack.stop().await;
}

#[tokio::test]
async fn a_callback_for_a_message_we_did_not_forward_is_answered_and_logged() {
    let stack = seeded("st-unknown", |_| {}).await;
    let unknown = message_sid();
    let callback = signed_callback(
        &stack,
        TEST_AUTH_TOKEN,
        &[
            ("ErrorCode", "30003"),
            ("SmsSid", &unknown),
            ("SmsStatus", "undelivered"),
            ("MessageStatus", "undelivered"),
            ("To", PRIMARY_PHONE),
            ("From", "+15005550006"),
            ("MessageSid", &unknown),
            ("AccountSid", "AC00000000000000000000000000000001"),
            ("ApiVersion", "2010-04-01"),
        ],
    );

    let answer = stack.invoke(stack.status_event(&callback)).await;

    assert_empty_twiml(&answer);
    let logged = eventually(Duration::from_secs(5), || {
        stack
            .json_logs()
            .iter()
            .any(|l| l.to_string().contains(&unknown))
    })
    .await;
    assert!(
        logged,
        "a JSON log line names {unknown}: {}",
        with_logs(&stack)
    );
    assert!(stack.sent().is_empty(), "{:?}", stack.sent());
    let alerts = stack.aws.alerts().await;
    assert!(alerts.is_empty(), "{alerts:?}");
    let items = stack.aws.message_log_items().await;
    assert!(
        items.iter().all(|i| !i.to_string().contains(&unknown)),
        "{items:?}"
    );
    assert!(
        items
            .iter()
            .all(|i| i["message_sid"] != delivery_key(PRIMARY_PHONE)),
        "no failure recorded against a number for an unknown message: {items:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_damaged_item_still_moves_a_failed_text_on() {
    // Read through the same decoder as the webhook: a backup stored as a Number is
    // its digits, and a TTL in words is the default.
    use aws_sdk_dynamodb::types::AttributeValue;
    let stack = Stack::start("st-damaged").await;
    stack
        .aws
        .put_dispatcher_with(
            seed_dispatcher(unix_now()),
            &[
                ("backup_dispatcher", AttributeValue::N("8583354807".into())),
                ("message_log_ttl", AttributeValue::S("one day".into())),
            ],
        )
        .await;
    let (_, primary_sid) = relayed(&stack, "Gate code?").await;

    let answer = stack
        .fire_status(&primary_sid, "undelivered", Some(30003))
        .await;

    assert_empty_twiml(&answer);
    let sent = stack.sent();
    assert_eq!(sent.len(), 2, "{sent:?}\n{}", with_logs(&stack));
    assert_eq!(sent[1].to, BACKUP_PHONE);
    stack.stop().await;
}
