//! End-to-end acknowledgement: `sms-inbound` with `ACK_QUEUE_URL` set (a one-second
//! window), the timer queue in moto, and `ack-timeout` under its own Runtime API,
//! handed the queue's messages as Lambda's SQS event source would.

use std::time::Duration;

use relay_tests::SqsRecordSpec;
use relay_tests::acks::{Timeouts, WINDOW_SECS, fire_due_timers, start};
use relay_tests::stack::{
    BACKUP_PHONE, PRIMARY_PHONE, Stack, TERTIARY_PHONE, reference_of, seed_dispatcher, unix_now,
};
use relay_tests::{sqs_event, sqs_event_from_messages};
use serde_json::{Value, json};

const DRIVER: &str = "+16195550123";
/// The reference of a relayed text, which (acknowledgement on) also says how to ACK it.
fn reference(body: &str) -> String {
    let reference = reference_of(body);
    assert!(
        body.ends_with(&format!("\nReply ACK {reference} to acknowledge")),
        "{body:?}"
    );
    reference
}

fn no_failures(response: &Value) {
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
}

async fn inbound_item(stack: &Stack, sid: &str) -> Value {
    stack.aws.message_log_item(sid).await
}

async fn alert_types(stack: &Stack) -> Vec<Value> {
    stack
        .aws
        .alerts()
        .await
        .into_iter()
        .map(|a| a.message)
        .collect()
}

#[tokio::test]
async fn relayed_texts_carry_a_reference_and_start_a_timer() {
    let (stack, timeouts) = start("ack-ref", |_| {}).await;
    let (sid, answer) = stack.text_from(DRIVER, "Load ready").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = stack.sent_to(PRIMARY_PHONE);
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .body
            .starts_with(&format!("QDN driver {DRIVER}: Load ready\n["))
    );
    let reference = reference(&sent[0].body);
    let item = inbound_item(&stack, &sid).await;
    assert_eq!(item["ack_state"], "awaiting");
    assert_eq!(item["ack_ref"], reference.as_str());
    assert_eq!(
        stack.aws.ack_queue_depth().await,
        (0, 0, 1),
        "one delayed timer"
    );
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn ack_with_the_reference_stops_escalation() {
    let (stack, timeouts) = start("ack-stop", |_| {}).await;
    let (sid, _) = stack.text_from(DRIVER, "Load ready").await;
    let reference = reference(&stack.sent_to(PRIMARY_PHONE)[0].body);
    let (_, reply) = stack
        .text_from(PRIMARY_PHONE, &format!("ack {}", reference.to_lowercase()))
        .await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.contains(&format!("{reference} acknowledged")),
        "{}",
        reply.body
    );
    // The timer comes due after the ACK: nothing escalates.
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    assert_eq!(stack.sent().len(), 1, "{:?}", stack.sent());
    assert_eq!(
        inbound_item(&stack, &sid).await["ack_state"],
        "acknowledged"
    );
    assert!(alert_types(&stack).await.is_empty());
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn a_bare_ack_takes_the_oldest_open_text_to_that_phone() {
    let (stack, timeouts) = start("ack-bare", |_| {}).await;
    let (first, _) = stack.text_from(DRIVER, "first").await;
    let (second, _) = stack.text_from("+16195550124", "second").await;
    let first_ref = reference(&stack.sent_to(PRIMARY_PHONE)[0].body);
    let (_, reply) = stack.text_from(PRIMARY_PHONE, "ACK").await;
    assert!(
        reply.body.contains(&format!("{first_ref} acknowledged")),
        "{}",
        reply.body
    );
    assert_eq!(
        inbound_item(&stack, &first).await["ack_state"],
        "acknowledged"
    );
    assert_eq!(inbound_item(&stack, &second).await["ack_state"], "awaiting");
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn no_ack_escalates_to_the_next_tier_with_an_alert_and_a_new_reference() {
    let (stack, timeouts) = start("ack-escalate", |_| {}).await;
    let (sid, _) = stack.text_from(DRIVER, "Load ready").await;
    let first_ref = reference(&stack.sent_to(PRIMARY_PHONE)[0].body);

    no_failures(&fire_due_timers(&stack, &timeouts).await);

    let escalated = stack.sent_to(BACKUP_PHONE);
    assert_eq!(escalated.len(), 1, "{:?}", stack.sent());
    let body = &escalated[0].body;
    assert!(
        body.starts_with(&format!(
            "QDN escalated: not acknowledged by primary within {WINDOW_SECS}s\nQDN driver {DRIVER}: Load ready\n["
        )),
        "{body:?}"
    );
    let second_ref = reference(body);
    assert_ne!(second_ref, first_ref);
    let alerts = alert_types(&stack).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["type"], "ack_timeout");
    assert_eq!(alerts[0]["routing_decision"], "backup");
    assert_eq!(alerts[0]["message_sid"], sid.as_str());
    assert_eq!(
        alerts[0]["reason"],
        format!("primary: not acknowledged within {WINDOW_SECS}s")
    );
    let item = inbound_item(&stack, &sid).await;
    assert_eq!(item["ack_state"], "awaiting");
    assert_eq!(item["ack_ref"], second_ref.as_str());
    assert_eq!(item["routing_decision"], "backup");
    // The old reference is closed; the backup can acknowledge the new one.
    let (_, stale) = stack
        .text_from(PRIMARY_PHONE, &format!("ACK {first_ref}"))
        .await;
    assert!(stale.body.contains("nothing changed"), "{}", stale.body);
    let (_, reply) = stack
        .text_from(BACKUP_PHONE, &format!("ACK {second_ref}"))
        .await;
    assert!(reply.body.contains("acknowledged"), "{}", reply.body);
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    assert_eq!(stack.sent().len(), 2, "nothing after the ACK");
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn duplicate_and_late_timers_never_escalate_twice() {
    let (stack, timeouts) = start("ack-dup", |_| {}).await;
    stack.text_from(DRIVER, "Load ready").await;
    let messages = stack.aws.receive_ack_timers(Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    // The same timer twice in one batch (SQS's at-least-once delivery) ...
    let twice = [messages[0].clone(), messages[0].clone()];
    no_failures(
        &timeouts
            .invoke(sqs_event_from_messages(&stack.aws.ack_queue_arn, &twice))
            .await,
    );
    // ... and once more, late.
    no_failures(
        &timeouts
            .invoke(sqs_event_from_messages(&stack.aws.ack_queue_arn, &messages))
            .await,
    );
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "{:?}", stack.sent());
    assert_eq!(stack.sent().len(), 2);
    let escalations = alert_types(&stack)
        .await
        .into_iter()
        .filter(|a| a["type"] == "ack_timeout")
        .count();
    assert_eq!(escalations, 1);
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn two_copies_of_a_timer_at_once_escalate_once() {
    let (stack, timeouts) = start("ack-race", |_| {}).await;
    let timeouts = {
        timeouts.stop().await;
        Timeouts::start(&stack, 2).await
    };
    timeouts
        .runtime
        .wait_for_pollers(2, Duration::from_secs(30))
        .await;
    stack.text_from(DRIVER, "Load ready").await;
    let messages = stack.aws.receive_ack_timers(Duration::from_secs(5)).await;
    let event = sqs_event_from_messages(&stack.aws.ack_queue_arn, &messages);
    let (a, b) = tokio::join!(timeouts.invoke(event.clone()), timeouts.invoke(event));
    no_failures(&a);
    no_failures(&b);
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "{:?}", stack.sent());
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn an_ack_from_the_wrong_phone_changes_nothing() {
    let (stack, timeouts) = start("ack-wrong", |_| {}).await;
    let (sid, _) = stack.text_from(DRIVER, "Load ready").await;
    let reference = reference(&stack.sent_to(PRIMARY_PHONE)[0].body);
    // The backup (a dispatcher's phone) acknowledges the primary's text.
    let (_, reply) = stack
        .text_from(BACKUP_PHONE, &format!("ACK {reference}"))
        .await;
    assert!(reply.body.contains("nothing changed"), "{}", reply.body);
    assert_eq!(inbound_item(&stack, &sid).await["ack_state"], "awaiting");
    assert_eq!(stack.sent().len(), 1, "the ACK was not relayed");
    // So the timer still escalates.
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1);
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn past_the_last_tier_nobody_acknowledging_is_alerted_and_nothing_sent() {
    let (stack, timeouts) = start("ack-last", |seed| {
        seed["available"] = json!(false);
        seed.as_object_mut().unwrap().remove("backup_dispatcher");
    })
    .await;
    let (sid, _) = stack.text_from(DRIVER, "Load ready").await;
    assert_eq!(stack.sent_to(TERTIARY_PHONE).len(), 1);
    stack.aws.alerts().await; // the cascade to the tertiary
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    assert_eq!(stack.sent().len(), 1, "nothing sent past the last tier");
    let alerts = alert_types(&stack).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["type"], "unacknowledged");
    assert!(
        alerts[0]["reason"]
            .as_str()
            .unwrap()
            .contains("tertiary: not acknowledged")
    );
    assert_eq!(
        inbound_item(&stack, &sid).await["ack_state"],
        "unacknowledged"
    );
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn ack_and_a_job_number_from_a_dispatcher_is_a_command_never_relayed() {
    let (stack, timeouts) = start("ack-job", |_| {}).await;
    let (sid, reply) = stack.text_from(PRIMARY_PHONE, "ACK JOB-1042").await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.body.contains("no open message JOB-1042"),
        "{}",
        reply.body
    );
    assert!(stack.sent().is_empty(), "{:?}", stack.sent());
    assert_eq!(inbound_item(&stack, &sid).await["state"], "command");
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn with_acknowledgement_off_texts_carry_a_reference_to_answer_but_no_ack_hint_or_timer() {
    let stack = Stack::start("ack-off").await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    stack.text_from(DRIVER, "Load ready").await;
    let body = &stack.sent_to(PRIMARY_PHONE)[0].body;
    let reference = reference_of(body);
    assert_eq!(
        body,
        &format!(
            "QDN driver {DRIVER}: Load ready\n[{reference}] Reply \"{reference} <answer>\" to answer the driver"
        )
    );
    assert_eq!(stack.aws.ack_queue_depth().await, (0, 0, 0));
    // ACK and a word is still a command, never relayed.
    let (_, reply) = stack.text_from(PRIMARY_PHONE, "ACK JOB-1042").await;
    assert_eq!(reply.status, 200);
    assert_eq!(stack.sent().len(), 1);
    stack.stop().await;
}

#[tokio::test]
async fn a_malformed_record_among_good_ones_is_dropped_not_retried() {
    let (stack, timeouts) = start("ack-malformed", |_| {}).await;
    stack.text_from(DRIVER, "Load ready").await;
    let messages = stack.aws.receive_ack_timers(Duration::from_secs(5)).await;
    let good = &messages[0];
    let mut records = vec![SqsRecordSpec::new(&stack.aws.ack_queue_arn, "not a timer")];
    records.push(
        SqsRecordSpec::new(&stack.aws.ack_queue_arn, good.body().unwrap())
            .message_id(good.message_id().unwrap()),
    );
    let response = timeouts.invoke(sqs_event(&records)).await;
    no_failures(&response);
    assert_eq!(
        stack.sent_to(BACKUP_PHONE).len(),
        1,
        "the good one escalated"
    );
    assert!(timeouts.logs().contains("unreadable timer record dropped"));
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn a_text_moved_on_for_a_failed_delivery_is_not_moved_again_by_its_old_timer() {
    let (stack, timeouts) = start("ack-status", |_| {}).await;
    stack.text_from(DRIVER, "Load ready").await;
    let primary_sid = stack.sent_to(PRIMARY_PHONE)[0].sid.clone();
    let answer = stack
        .fire_status(&primary_sid, "undelivered", Some(30003))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1);
    // Both timers come due: the primary's (stale) and the backup's (escalates).
    let messages = stack.aws.receive_ack_timers(Duration::from_secs(5)).await;
    let mut all = messages.clone();
    if all.len() < 2 {
        all.extend(stack.aws.receive_ack_timers(Duration::from_secs(5)).await);
    }
    let old_timer: Vec<_> = all
        .into_iter()
        .filter(|m| m.body().unwrap_or_default().contains(&primary_sid))
        .collect();
    assert_eq!(old_timer.len(), 1);
    no_failures(
        &timeouts
            .invoke(sqs_event_from_messages(
                &stack.aws.ack_queue_arn,
                &old_timer,
            ))
            .await,
    );
    assert_eq!(
        stack.sent().len(),
        2,
        "the old timer moved nothing: {:?}",
        stack.sent()
    );
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn the_sample_timer_events_are_answered_without_failures() {
    let (stack, timeouts) = start("ack-events", |_| {}).await;
    for file in ["ack-timer-sqs.json", "ack-timer-sqs-malformed.json"] {
        let path = format!("{}/../events/{file}", env!("CARGO_MANIFEST_DIR"));
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // Timers for messages this log never had: nothing to do, nothing to retry.
        no_failures(&timeouts.invoke(event).await);
    }
    assert!(stack.sent().is_empty());
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn an_escalation_that_fails_on_the_way_is_reported_for_redelivery() {
    let (stack, timeouts) = start("ack-retry", |_| {}).await;
    stack.text_from(DRIVER, "Load ready").await;
    let messages = stack.aws.receive_ack_timers(Duration::from_secs(5)).await;
    let event = sqs_event_from_messages(&stack.aws.ack_queue_arn, &messages);
    // Twilio is down through every retry: nothing went out, so SQS should try again.
    stack
        .twilio
        .inject(relay_tests::twilio_sandbox::Fault::status(503).times(3));
    let response = timeouts.invoke(event.clone()).await;
    assert_eq!(
        response["batchItemFailures"],
        json!([{"itemIdentifier": messages[0].message_id().unwrap()}]),
        "{response}"
    );
    assert_eq!(stack.sent().len(), 1);
    // SQS's redelivery escalates it.
    no_failures(&timeouts.invoke(event).await);
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "{:?}", stack.sent());
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn a_delivered_text_nobody_acknowledges_still_escalates_with_its_words() {
    let (stack, timeouts) = start("ack-delivered", |_| {}).await;
    let (sid, _) = stack.text_from(DRIVER, "Load ready").await;
    let primary_sid = stack.sent_to(PRIMARY_PHONE)[0].sid.clone();
    assert_eq!(
        stack
            .fire_status(&primary_sid, "delivered", None)
            .await
            .status,
        200
    );
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    let escalated = stack.sent_to(BACKUP_PHONE);
    assert_eq!(escalated.len(), 1, "{:?}", stack.sent());
    assert!(
        escalated[0]
            .body
            .contains(&format!("QDN driver {DRIVER}: Load ready"))
    );
    // Once acknowledged, the kept text is dropped.
    let reference = reference(&escalated[0].body);
    stack
        .text_from(BACKUP_PHONE, &format!("ACK {reference}"))
        .await;
    assert!(inbound_item(&stack, &sid).await.get("relay_body").is_none());
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn an_answer_by_text_within_the_window_acknowledges_and_stops_the_escalation() {
    let (stack, timeouts) = start("ack-answer", |_| {}).await;
    let (sid, _) = stack.text_from(DRIVER, "Load ready").await;
    let reference = reference(&stack.sent_to(PRIMARY_PHONE)[0].body);
    let (_, reply) = stack
        .text_from(PRIMARY_PHONE, &format!("{reference} On my way"))
        .await;
    assert!(
        reply
            .body
            .contains(&format!("Sent to ***0123 ({reference}).")),
        "{}",
        reply.body
    );
    assert_eq!(
        inbound_item(&stack, &sid).await["ack_state"],
        "acknowledged"
    );
    // The timer comes due after the answer: nothing escalates.
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    assert!(stack.sent_to(BACKUP_PHONE).is_empty(), "{:?}", stack.sent());
    assert_eq!(stack.sent_to(DRIVER).len(), 1);
    assert!(alert_types(&stack).await.is_empty());
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn an_answer_after_the_text_escalated_still_reaches_the_driver_and_says_so() {
    let (stack, timeouts) = start("ack-answer-late", |_| {}).await;
    stack.text_from(DRIVER, "Load ready").await;
    let first_ref = reference(&stack.sent_to(PRIMARY_PHONE)[0].body);
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    assert_eq!(stack.sent_to(BACKUP_PHONE).len(), 1, "escalated");
    // The primary answers the text it got, with its reference: never lost.
    let (_, reply) = stack
        .text_from(PRIMARY_PHONE, &format!("{first_ref} On my way"))
        .await;
    assert!(
        reply.body.contains(&format!("Sent to ***0123 ({first_ref}). Nobody acknowledged the text in time, so it was also sent on to the next tier.")),
        "{}",
        reply.body
    );
    assert_eq!(stack.sent_to(DRIVER).len(), 1, "{:?}", stack.sent());
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn an_answer_racing_its_timer_is_never_lost() {
    let (stack, timeouts) = start("ack-answer-race", |_| {}).await;
    let (sid, _) = stack.text_from(DRIVER, "Load ready").await;
    let reference = reference(&stack.sent_to(PRIMARY_PHONE)[0].body);
    // The timer is due: hand it to ack-timeout while the answer comes in.
    let messages = stack.aws.receive_ack_timers(Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    let answer = format!("{reference} On my way");
    let (fired, (_, reply)) = tokio::join!(
        timeouts.invoke(sqs_event_from_messages(&stack.aws.ack_queue_arn, &messages)),
        stack.text_from(PRIMARY_PHONE, &answer)
    );
    no_failures(&fired);
    stack.aws.delete_ack_timers(&messages).await;
    assert_eq!(stack.sent_to(DRIVER).len(), 1, "{:?}", stack.sent());
    let escalated = !stack.sent_to(BACKUP_PHONE).is_empty();
    let told = reply
        .body
        .contains("so it was also sent on to the next tier");
    assert_eq!(escalated, told, "told iff escalated: {}", reply.body);
    if !escalated {
        assert_eq!(
            inbound_item(&stack, &sid).await["ack_state"],
            "acknowledged"
        );
    }
    timeouts.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn escalation_repeats_give_one_more_round_from_the_primary_then_unacknowledged() {
    let (stack, timeouts) = start("ack-repeat", |_| {}).await;
    timeouts.stop().await;
    let timeouts = Timeouts::start_with(&stack, 1, &[("ESCALATION_REPEATS", "1")]).await;
    let (sid, _) = stack.text_from(DRIVER, "Load ready").await;
    // Round 1: primary, then backup, then tertiary.
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    assert_eq!(stack.sent().len(), 3, "{:?}", stack.sent());
    // Past the last tier: round 2 starts at the primary now. The same timer delivered
    // twice in one batch (SQS at least once) adds no round.
    let messages = stack.aws.receive_ack_timers(Duration::from_secs(5)).await;
    assert_eq!(messages.len(), 1);
    let twice = [messages[0].clone(), messages[0].clone()];
    no_failures(
        &timeouts
            .invoke(sqs_event_from_messages(&stack.aws.ack_queue_arn, &twice))
            .await,
    );
    stack.aws.delete_ack_timers(&messages).await;
    let to_primary = stack.sent_to(PRIMARY_PHONE);
    assert_eq!(to_primary.len(), 2, "{:?}", stack.sent());
    assert!(
        to_primary[1].body.starts_with(
            "QDN escalated again (round 2 of 2): nobody acknowledged it at any tier within 1s\n"
        ),
        "{:?}",
        to_primary[1].body
    );
    // Round 2: backup, tertiary, then nobody: unacknowledged, nothing more sent.
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    no_failures(&fire_due_timers(&stack, &timeouts).await);
    assert_eq!(stack.sent().len(), 6, "{:?}", stack.sent());
    assert_eq!(stack.sent_to(TERTIARY_PHONE).len(), 2);
    let kinds: Vec<String> = alert_types(&stack)
        .await
        .into_iter()
        .map(|a| a["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "ack_timeout",
            "ack_timeout",
            "ack_timeout",
            "ack_timeout",
            "ack_timeout",
            "unacknowledged"
        ],
        "each step an ack_timeout, then unacknowledged"
    );
    let item = inbound_item(&stack, &sid).await;
    assert_eq!(item["ack_state"], "unacknowledged");
    timeouts.stop().await;
    stack.stop().await;
}
