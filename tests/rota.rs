//! End-to-end: the rota decides who is primary (shifts in a zone, overrides), tiers
//! name dispatchers by ID, and the heartbeat texts the incoming primary once per shift.
//! Every rota is built around the real current instant (`relay_tests::rota`): no test
//! depends on the time of day it runs at, and none sleeps until a boundary.

use relay_tests::heartbeat::HeartbeatProcess;
use relay_tests::rota::{override_line, shift_began_minutes_ago};
use relay_tests::stack::{PRIMARY_PHONE, Stack, TERTIARY_PHONE, seed_dispatcher, unix_now};
use serde_json::{Value, json};

const DRIVER: &str = "+16195550123";
const ANA_PHONE: &str = "+18585550144";
const BO_PHONE: &str = "+18585550155";

fn dispatcher(id: &str, phone: &str) -> Value {
    let mut item = seed_dispatcher(unix_now());
    item["dispatcher_id"] = json!(id);
    item["phone"] = json!(phone);
    item
}

/// A stack with `sergio-main` (the fallback primary), `ana` and `bo`.
async fn start(prefix: &str) -> Stack {
    let stack = Stack::start(prefix).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    stack.aws.put_dispatcher(dispatcher("ana", ANA_PHONE)).await;
    stack.aws.put_dispatcher(dispatcher("bo", BO_PHONE)).await;
    stack
}

#[tokio::test]
async fn a_text_goes_to_the_dispatcher_whose_shift_it_is_in_the_rotas_zone() {
    let stack = start("rota-shift").await;
    // India has no daylight saving: "a minute ago" is exact whatever the date.
    let (rota, _) = shift_began_minutes_ago("Asia/Kolkata", "ana", "sergio-main", 1, 8);
    stack.aws.put_rota(&rota).await;
    let (sid, answer) = stack.text_from(DRIVER, "Load ready").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent_to(ANA_PHONE).len(), 1, "{:?}", stack.sent());
    assert!(stack.sent_to(PRIMARY_PHONE).is_empty());
    let item = stack.aws.message_log_item(&sid).await;
    assert_eq!(item["dispatcher_id"], "ana", "{item}");
    assert_eq!(item["routing_decision"], "primary");
    // The shift that began a minute ago for someone else is theirs.
    let (rota, _) = shift_began_minutes_ago("Asia/Kolkata", "sergio-main", "ana", 1, 8);
    stack.aws.put_rota(&rota).await;
    stack.text_from(DRIVER, "Second load").await;
    assert_eq!(stack.sent_to(PRIMARY_PHONE).len(), 1, "{:?}", stack.sent());
    stack.stop().await;
}

#[tokio::test]
async fn an_override_wins_over_the_shift_and_ends_on_time() {
    let stack = start("rota-override").await;
    let now = unix_now();
    let (shifts, _) = shift_began_minutes_ago("UTC", "ana", "sergio-main", 1, 8);
    let rota = format!("{shifts}{}", override_line("bo", now - 60, now + 3_600));
    stack.aws.put_rota(&rota).await;
    stack.text_from(DRIVER, "Load ready").await;
    assert_eq!(stack.sent_to(BO_PHONE).len(), 1, "{:?}", stack.sent());
    // An override that is over no longer counts: the shift's dispatcher has it.
    let rota = format!("{shifts}{}", override_line("bo", now - 7_200, now - 60));
    stack.aws.put_rota(&rota).await;
    stack.text_from(DRIVER, "Second load").await;
    assert_eq!(stack.sent_to(ANA_PHONE).len(), 1, "{:?}", stack.sent());
    stack.stop().await;
}

#[tokio::test]
async fn a_backup_named_by_id_is_used_while_available_and_skipped_off_duty() {
    let stack = start("rota-tier-id").await;
    let mut primary = seed_dispatcher(unix_now());
    primary["on_duty"] = json!(false);
    primary["backup_dispatcher"] = json!("bo");
    stack.aws.put_dispatcher(primary).await;
    stack.text_from(DRIVER, "Load ready").await;
    assert_eq!(stack.sent_to(BO_PHONE).len(), 1, "{:?}", stack.sent());

    let mut bo = dispatcher("bo", BO_PHONE);
    bo["on_duty"] = json!(false);
    stack.aws.put_dispatcher(bo).await;
    let (sid, _) = stack.text_from(DRIVER, "Second load").await;
    assert_eq!(stack.sent_to(BO_PHONE).len(), 1, "bo is off duty: skipped");
    assert_eq!(stack.sent_to(TERTIARY_PHONE).len(), 1, "{:?}", stack.sent());
    let item = stack.aws.message_log_item(&sid).await;
    let reason = item["cascade_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("backup: bo off duty"), "{reason}");
    stack.stop().await;
}

async fn handovers(stack: &Stack, phone: &str) -> Vec<String> {
    stack
        .sent_to(phone)
        .into_iter()
        .map(|m| m.body)
        .filter(|body| body.starts_with("You are on QDN dispatch"))
        .collect()
}

#[tokio::test]
async fn the_incoming_primary_is_texted_once_per_shift_across_repeated_and_concurrent_runs() {
    let stack = start("rota-handover").await;
    let (rota, ends_at) = shift_began_minutes_ago("Asia/Kolkata", "ana", "bo", 1, 8);
    stack.aws.put_rota(&rota).await;
    let first = HeartbeatProcess::start(&stack, &[]).await;
    let second = HeartbeatProcess::start(&stack, &[]).await;
    // Two runs at once (an overlapping schedule and a retry): one text.
    let (a, b) = tokio::join!(first.run(), second.run());
    let mut outcomes = [
        a["handover"].as_str().unwrap().to_string(),
        b["handover"].as_str().unwrap().to_string(),
    ];
    outcomes.sort();
    assert_eq!(outcomes, ["already_sent", "sent"], "{a} {b}");
    assert_eq!(
        (a["primary"].as_str(), a["primary_by"].as_str()),
        (Some("ana"), Some("shift"))
    );
    // And the next runs of the same shift: still one.
    assert_eq!(first.run().await["handover"], "already_sent");
    assert_eq!(second.run().await["handover"], "already_sent");
    let texts = handovers(&stack, ANA_PHONE).await;
    let until = jiff::Timestamp::from_second(ends_at)
        .unwrap()
        .in_tz("Asia/Kolkata")
        .unwrap()
        .strftime("%H:%M IST")
        .to_string();
    assert_eq!(
        texts,
        [format!(
            "You are on QDN dispatch until {until}. Reply OFF to hand over."
        )]
    );
    assert!(handovers(&stack, BO_PHONE).await.is_empty());
    first.stop().await;
    second.stop().await;
    stack.stop().await;
}

/// The `configuration_problem` alerts published so far.
async fn configuration_problems(stack: &Stack) -> Vec<Value> {
    stack
        .aws
        .alerts()
        .await
        .into_iter()
        .map(|a| a.message)
        .filter(|m| m["type"] == "configuration_problem")
        .collect()
}

#[tokio::test]
async fn a_rota_naming_a_missing_dispatcher_is_alerted_once_and_texts_still_go_out() {
    let stack = start("rota-missing").await;
    let (rota, _) = shift_began_minutes_ago("UTC", "ghost", "ana", 1, 8);
    stack.aws.put_rota(&rota).await;
    let heartbeat = HeartbeatProcess::start(&stack, &[]).await;
    let summary = heartbeat.run().await;
    assert_eq!(summary["handover"], "no_phone", "{summary}");
    heartbeat.run().await;
    let problems = configuration_problems(&stack).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["dispatcher_id"], "ghost");
    assert_eq!(
        problems[0]["reason"],
        "#rota: the rota names dispatcher ghost, which has no item"
    );
    // The text is not lost: the fallback primary's item takes it.
    stack.text_from(DRIVER, "Load ready").await;
    assert_eq!(stack.sent_to(PRIMARY_PHONE).len(), 1, "{:?}", stack.sent());
    heartbeat.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn a_damaged_rota_item_stops_nothing_and_is_alerted_once_naming_the_attribute() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let stack = start("rota-damaged").await;
    // Typed into the console as a list, not the rota's text.
    stack
        .aws
        .put_dispatcher_with(
            json!({"dispatcher_id": "#rota"}),
            &[(
                "rota",
                AttributeValue::L(vec![AttributeValue::S("ana".into())]),
            )],
        )
        .await;
    stack.text_from(DRIVER, "Load ready").await;
    assert_eq!(
        stack.sent_to(PRIMARY_PHONE).len(),
        1,
        "the fallback primary has it"
    );
    let heartbeat = HeartbeatProcess::start(&stack, &[]).await;
    let summary = heartbeat.run().await;
    assert_eq!(summary["primary_by"], "fallback", "{summary}");
    heartbeat.run().await;
    let problems = configuration_problems(&stack).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["dispatcher_id"], "#rota");
    assert_eq!(problems[0]["attribute"], "rota");
    heartbeat.stop().await;
    stack.stop().await;
}
