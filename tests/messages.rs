//! End-to-end: every text accounted for. Texts relayed, acknowledged, answered,
//! escalated and failed through the built functions, then `qdn messages` (the message
//! table's time-ordered indexes in moto) and `qdn redeliver` (the relay's own sequence
//! through the built CLI) as an operator plays an incident: the primary's number
//! broken, texts undeliverable, the number mended, the texts sent again, once.

use std::time::{Duration, Instant};

use relay_tests::acks::{fire_due_timers, start};
use relay_tests::qdn::{Run, env_for, qdn_with};
use relay_tests::stack::{
    BACKUP_PHONE, PRIMARY_PHONE, Stack, reference_of, seed_dispatcher, unix_now,
};
use serde_json::{Value, json};

const DRIVER: &str = "+16195550123";
const OTHER_DRIVER: &str = "+16195550188";
/// Twilio's magic number that is refused for good (21211): a broken phone.
const BROKEN_PHONE: &str = "+15005550001";

/// `qdn` for `stack`, with what `qdn redeliver` reads beside the tables.
async fn qdn(stack: &Stack, args: &[&str]) -> Run {
    let mut env = env_for(&stack.aws);
    env.push(("ALERT_TOPIC_ARN".into(), stack.aws.topic_arn.clone()));
    env.push(("TWILIO_API_BASE".into(), stack.twilio.base_url()));
    qdn_with(&env, args).await
}

async fn listed(stack: &Stack, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["--json", "messages"];
    args.extend_from_slice(extra);
    let doc = qdn(stack, &args).await.json();
    doc["messages"].as_array().cloned().unwrap_or_default()
}

fn sids(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["message_sid"].as_str().unwrap())
        .collect()
}

fn find<'a>(messages: &'a [Value], sid: &str) -> &'a Value {
    messages
        .iter()
        .find(|m| m["message_sid"] == sid)
        .unwrap_or_else(|| panic!("{sid} not listed: {messages:?}"))
}

/// A stack whose only dispatcher is the primary, at `phone`, with no backup or
/// tertiary: when its number is broken, a text reaches nobody.
async fn primary_only(prefix: &str, phone: &str) -> Stack {
    let stack = Stack::start(prefix).await;
    let mut seed = seed_dispatcher(unix_now());
    seed["phone"] = json!(phone);
    let item = seed.as_object_mut().unwrap();
    item.remove("backup_dispatcher");
    item.remove("tertiary_contact");
    stack.aws.put_dispatcher(seed).await;
    stack
}

#[tokio::test]
async fn texts_appear_newest_first_with_their_fate_and_undelivered_lists_exactly_those_that_reached_nobody()
 {
    let (stack, timeouts) = start("msgs-fates", |_| {}).await;
    // Acknowledged.
    let (acked, _) = stack.text_from(DRIVER, "Load ready at dock 2").await;
    let reference = reference_of(&stack.sent_to(PRIMARY_PHONE)[0].body);
    stack
        .text_from(PRIMARY_PHONE, &format!("ACK {reference}"))
        .await;
    // Answered by text.
    let (answered, _) = stack.text_from(OTHER_DRIVER, "Gate code?").await;
    let reference = reference_of(&stack.sent_to(PRIMARY_PHONE)[1].body);
    stack
        .text_from(PRIMARY_PHONE, &format!("{reference} 4417"))
        .await;
    // Nobody acknowledges: escalated to the backup.
    let (escalated, _) = stack.text_from(DRIVER, "Still waiting").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.aws.message_log_item(&escalated).await["escalated_at"].is_null() {
        assert!(Instant::now() < deadline, "the text never escalated");
        fire_due_timers(&stack, &timeouts).await;
    }
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1);
    // The primary's number breaks, and no tier is left: undeliverable.
    let mut seed = seed_dispatcher(unix_now());
    seed["phone"] = json!(BROKEN_PHONE);
    seed.as_object_mut().unwrap().remove("backup_dispatcher");
    seed.as_object_mut().unwrap().remove("tertiary_contact");
    stack.aws.put_dispatcher(seed).await;
    let (failed, answer) = stack.text_from(OTHER_DRIVER, "Anyone?").await;
    assert_eq!(answer.status, 503, "{answer:?}");

    let messages = listed(&stack, &["--since", "1h"]).await;
    // Drivers' texts only (the ACK and the answer are dispatchers' own), newest first.
    assert_eq!(messages.len(), 4, "{messages:?}");
    assert_eq!(sids(&messages)[0], failed, "the newest first: {messages:?}");
    let times: Vec<i64> = messages
        .iter()
        .map(|m| m["received_at"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(find(&messages, &acked)["fate"], "acknowledged");
    assert_eq!(find(&messages, &answered)["fate"], "answered");
    let moved = find(&messages, &escalated);
    assert_eq!(moved["fate"], "awaiting_ack");
    assert_eq!(moved["escalated"], true);
    assert_eq!(moved["tier"], "backup");
    let unreached = find(&messages, &failed);
    assert_eq!(unreached["fate"], "undeliverable");
    assert_eq!(unreached["unresolved"], true);
    assert!(
        unreached["failure"].as_str().unwrap().contains("primary"),
        "{unreached}"
    );
    for message in &messages {
        assert_eq!(message["dispatcher_id"], "sergio-main", "{message}");
        let driver = message["driver"].as_str().unwrap();
        assert!(!driver.contains("6195550"), "masked: {driver}");
    }

    let undelivered = listed(&stack, &["--undelivered"]).await;
    assert_eq!(sids(&undelivered), [failed.as_str()], "{undelivered:?}");
    assert!(
        listed(&stack, &["--dispatcher", "ana-night"])
            .await
            .is_empty()
    );
    assert_eq!(
        listed(&stack, &["--dispatcher", "sergio-main"]).await.len(),
        4
    );

    // As a table: one row per text under aligned columns, fates in words.
    let run = qdn(&stack, &["messages", "--since", "1h"]).await;
    let out = run.assert_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("4 drivers' texts since "), "{out}");
    assert!(
        lines[1].starts_with("WHEN") && lines[1].contains("FATE"),
        "{out}"
    );
    let fate_at = lines[1].find("FATE").unwrap();
    for (sid, fate) in [
        (&failed, "undeliverable"),
        (&escalated, "awaiting ack, escalated"),
        (&answered, "answered"),
        (&acked, "acknowledged"),
    ] {
        let row = lines
            .iter()
            .find(|l| l.contains(sid.as_str()))
            .unwrap_or_else(|| panic!("{sid}: {out}"));
        assert_eq!(row.get(fate_at..fate_at + fate.len()), Some(fate), "{out}");
        assert!(row.contains("ago"), "ages as people read them: {out}");
    }
    let run = qdn(&stack, &["messages", "--undelivered"]).await;
    let out = run.assert_ok();
    assert!(
        out.contains("WHY") && out.contains(failed.as_str()),
        "{out}"
    );
    assert!(!out.contains(escalated.as_str()), "{out}");
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn more_texts_than_a_page_of_the_index_are_all_listed() {
    let stack = primary_only("msgs-pages", PRIMARY_PHONE).await;
    let mut sent = Vec::new();
    for n in 0..5 {
        let (sid, answer) = stack.text_from(DRIVER, &format!("text {n}")).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        sent.push(sid);
    }
    let doc = qdn(&stack, &["--json", "messages", "--page-size", "2"])
        .await
        .json();
    let messages = doc["messages"].as_array().unwrap();
    let mut listed: Vec<&str> = sids(messages);
    listed.sort();
    sent.sort();
    assert_eq!(listed, sent, "every text, across pages: {doc}");
    assert!(doc["pages"].as_u64().unwrap() >= 3, "{doc}");
    stack.stop().await;
}

#[tokio::test]
async fn an_incident_texts_undeliverable_then_the_number_mended_and_each_text_redelivered_once() {
    let stack = primary_only("msgs-incident", BROKEN_PHONE).await;
    let (first, answer) = stack.text_from(DRIVER, "Truck 12 at gate 4").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    let (second, answer) = stack.text_from(OTHER_DRIVER, "Need a pickup").await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(stack.sent().is_empty());

    // 1. What reached nobody?
    let run = qdn(&stack, &["messages", "--undelivered"]).await;
    let out = run.assert_ok().to_string();
    println!("$ qdn messages --undelivered\n{out}");
    assert!(out.contains(&first) && out.contains(&second), "{out}");
    assert!(out.contains("undeliverable"), "{out}");

    // 2. Sent again before the cause is mended: it reaches nobody again (exit 2).
    let run = qdn(&stack, &["redeliver", &first]).await;
    let line = run.assert_fails(2);
    println!("$ qdn redeliver {first}   # before mending\n{line}");
    assert!(line.contains("reached nobody again"), "{line}");
    assert!(stack.sent().is_empty());
    assert_eq!(
        sids(&listed(&stack, &["--undelivered"]).await).len(),
        2,
        "still listed"
    );

    // 3. The number is mended.
    qdn(
        &stack,
        &[
            "dispatchers",
            "put",
            "sergio-main",
            "--phone",
            "858-555-0100",
        ],
    )
    .await
    .assert_ok();

    // 4. Two operators redeliver the first text at once: it goes out once.
    let args = ["redeliver", first.as_str()];
    let (a, b) = tokio::join!(qdn(&stack, &args), qdn(&stack, &args));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [0, 1], "one sends, one is refused: {a:?} {b:?}");
    let (winner, loser) = if a.status == 0 { (&a, &b) } else { (&b, &a) };
    println!("$ qdn redeliver {first}\n{}", winner.stdout);
    println!(
        "$ qdn redeliver {first}   # at the same time\n{}",
        loser.stderr
    );
    let out = stack.sent_to(PRIMARY_PHONE);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0]
            .body
            .starts_with("QDN resent by ops: first received "),
        "{}",
        out[0].body
    );
    assert!(
        out[0].body.contains("Truck 12 at gate 4"),
        "{}",
        out[0].body
    );
    assert!(winner.stdout.contains(&out[0].sid), "{}", winner.stdout);

    // 5. The trail records it; only the second is still undelivered.
    let run = qdn(&stack, &["trail", &first]).await;
    let trail = run.assert_ok().to_string();
    println!("$ qdn trail {first}\n{trail}");
    assert!(trail.contains("redelivered"), "{trail}");
    assert!(!trail.contains("reached nobody"), "{trail}");
    let item = stack.aws.message_log_item(&first).await;
    assert_eq!(item["state"], "forwarded", "{item}");
    assert_eq!(item["redeliveries"], 1, "{item}");
    assert!(item.get("unresolved_day").is_none(), "{item}");
    assert_eq!(
        sids(&listed(&stack, &["--undelivered"]).await),
        [second.as_str()]
    );
    let run = qdn(&stack, &["redeliver", &second]).await;
    run.assert_ok();
    assert_eq!(stack.sent_to(PRIMARY_PHONE).len(), 2);
    let run = qdn(&stack, &["messages", "--undelivered"]).await;
    println!("$ qdn messages --undelivered\n{}", run.assert_ok());
    assert!(listed(&stack, &["--undelivered"]).await.is_empty());

    // 6. A text someone got is refused (exit 1), and nothing is sent.
    let delivered = stack.fire_status(&out[0].sid, "delivered", None).await;
    assert_eq!(delivered.status, 200, "{delivered:?}");
    let run = qdn(&stack, &["redeliver", &first]).await;
    let line = run.assert_fails(1);
    println!("$ qdn redeliver {first}   # delivered\n{line}");
    assert!(line.contains("someone got it (delivered)"), "{line}");
    assert_eq!(stack.sent().len(), 2);
    let messages = listed(&stack, &[]).await;
    assert_eq!(find(&messages, &first)["fate"], "delivered");
    assert_eq!(find(&messages, &first)["redeliveries"], 1);

    // An unknown SID is refused too.
    let run = qdn(&stack, &["redeliver", "SM00000000000000000000000000000000"]).await;
    assert!(run.assert_fails(1).contains("no driver's text"), "{run:?}");
    stack.stop().await;
}

#[tokio::test]
async fn a_text_whose_last_tier_failed_is_redelivered_once_from_the_primary_now() {
    let stack = primary_only("msgs-failed", PRIMARY_PHONE).await;
    let (sid, answer) = stack.text_from(DRIVER, "Gate is locked").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let failed = stack.sent_to(PRIMARY_PHONE)[0].sid.clone();
    // Twilio could not deliver it, and no tier is left: it reached nobody.
    stack.fire_status(&failed, "undelivered", Some(30003)).await;
    let undelivered = listed(&stack, &["--undelivered"]).await;
    assert_eq!(sids(&undelivered), [sid.as_str()], "{undelivered:?}");
    assert_eq!(undelivered[0]["delivery_status"], "undelivered");

    let args = ["redeliver", sid.as_str()];
    let (a, b) = tokio::join!(qdn(&stack, &args), qdn(&stack, &args));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [0, 1], "{a:?} {b:?}");
    let sent = stack.sent_to(PRIMARY_PHONE);
    assert_eq!(
        sent.len(),
        2,
        "the failed text, and one redelivery: {sent:?}"
    );
    assert!(sent[1].body.contains("Gate is locked"), "{}", sent[1].body);
    let item = stack.aws.message_log_item(&sid).await;
    assert_eq!(item["forwarded_sid"], sent[1].sid.as_str(), "{item}");
    assert_eq!(item["redeliveries"], 1, "{item}");
    let forward = stack.aws.message_log_item(&sent[1].sid).await;
    assert_eq!(forward["moved_on_from"], failed.as_str(), "{forward}");
    assert!(listed(&stack, &["--undelivered"]).await.is_empty());
    let trail = qdn(&stack, &["trail", &sid]).await;
    assert!(trail.assert_ok().contains("redelivered"), "{trail:?}");
    stack.stop().await;
}
