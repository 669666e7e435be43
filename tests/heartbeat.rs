//! End-to-end: the built `dispatcher-heartbeat` binary under the Lambda Runtime API,
//! invoked with EventBridge's scheduled event (`events/heartbeat-schedule.json`),
//! against moto; with `sms-inbound` beside it where a delivery failure is needed.

use std::time::Duration;

use relay_tests::heartbeat::{HeartbeatProcess, schedule_event};
use relay_tests::stack::{PRIMARY_PHONE, Stack, seed_dispatcher, unix_now};
use relay_tests::{Invocation, assert_metric, request_id_of};
use serde_json::{Value, json};

/// An inbound stack (for its fixture and, where needed, sms-inbound) and a heartbeat.
async fn start(prefix: &str, extra_env: &[(&str, &str)]) -> (Stack, HeartbeatProcess) {
    let stack = Stack::start(prefix).await;
    let heartbeat = HeartbeatProcess::start(&stack, extra_env).await;
    (stack, heartbeat)
}

async fn alert_types(stack: &Stack) -> Vec<(String, String)> {
    stack
        .aws
        .alerts()
        .await
        .into_iter()
        .map(|a| {
            (
                a.message["type"].as_str().unwrap_or_default().to_string(),
                a.message["dispatcher_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// The primary's `available` is now `available`, with exactly the one alert that says so.
async fn assert_primary_became(stack: &Stack, available: bool) {
    assert_eq!(
        stack.aws.get_dispatcher("sergio-main").await.unwrap()["available"],
        json!(available)
    );
    let kind = if available {
        "dispatcher_available"
    } else {
        "dispatcher_unavailable"
    };
    assert_eq!(
        alert_types(stack).await,
        vec![(kind.to_string(), "sergio-main".to_string())]
    );
}

#[tokio::test]
async fn a_healthy_dispatcher_is_checked_in_and_the_run_is_summarised() {
    let (stack, heartbeat) = start("hb-healthy", &[]).await;
    let mut seed = seed_dispatcher(unix_now());
    seed["last_heartbeat"] = json!(unix_now() - 900);
    stack.aws.put_dispatcher(seed).await;
    let before = unix_now();

    let summary = heartbeat.run().await;

    assert_eq!(summary["seen"], 1, "{summary}");
    assert_eq!(summary["available"], 1);
    assert_eq!(summary["changed"], 0);
    let item = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    assert_eq!(item["available"], json!(true));
    assert!(item["last_heartbeat"].as_i64().unwrap() >= before, "{item}");
    assert!(alert_types(&stack).await.is_empty());
    let line = heartbeat
        .function
        .wait_for_log(|l| l.contains("\"heartbeat run\""), Duration::from_secs(5))
        .await
        .expect("one JSON summary line");
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["seen"], 1);
    assert!(line["spans"][0]["requestId"].is_string(), "{line}");
    assert_eq!(summary["primary_available"], true);
    let available = heartbeat
        .function
        .wait_for_metric("DispatchersAvailable", Duration::from_secs(5))
        .await
        .expect("an EMF document with the gauges");
    assert_metric(&available, "DispatchersAvailable", &[]);
    assert_metric(&available, "PrimaryAvailable", &[]);
    assert_eq!(available["DispatchersAvailable"], serde_json::json!([1.0]));
    assert_eq!(available["PrimaryAvailable"], serde_json::json!([1.0]));
    assert_eq!(request_id_of(&available), request_id_of(&line));
    heartbeat.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn off_duty_and_back_alert_once_each_and_an_unchanged_run_alerts_nothing() {
    let (stack, heartbeat) = start("hb-duty", &[]).await;
    let mut seed = seed_dispatcher(unix_now());
    seed["on_duty"] = json!(false);
    let heartbeat_before = seed["last_heartbeat"].clone();
    stack.aws.put_dispatcher(seed.clone()).await;

    let summary = heartbeat.run().await;
    assert_eq!(summary["changed"], 1);
    assert_eq!(summary["primary_available"], false);
    let gauges = heartbeat
        .function
        .wait_for_metric("PrimaryAvailable", Duration::from_secs(5))
        .await
        .expect("the primary's availability gauge");
    assert_eq!(
        gauges["PrimaryAvailable"],
        serde_json::json!([0.0]),
        "{gauges}"
    );
    let item = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    assert_eq!(item["available"], json!(false));
    assert_eq!(
        item["last_heartbeat"], heartbeat_before,
        "untouched when unhealthy"
    );
    assert_eq!(
        alert_types(&stack).await,
        vec![("dispatcher_unavailable".into(), "sergio-main".into())]
    );

    assert_eq!(heartbeat.run().await["changed"], 0);
    assert!(alert_types(&stack).await.is_empty(), "no repeat");

    let mut item = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    item["on_duty"] = json!(true);
    stack.aws.put_dispatcher(item).await;
    assert_eq!(heartbeat.run().await["changed"], 1);
    assert_primary_became(&stack, true).await;
    heartbeat.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn a_delivery_failure_makes_the_dispatcher_unavailable_and_a_later_delivery_available() {
    let (stack, heartbeat) = start("hb-delivery", &[]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    // Two texts reach the primary; the first is never delivered.
    stack.text_from("+16195550123", "first").await;
    stack.text_from("+16195550123", "second").await;
    let to_primary: Vec<String> = stack
        .sent_to(PRIMARY_PHONE)
        .into_iter()
        .map(|m| m.sid)
        .collect();
    assert_eq!(to_primary.len(), 2);
    assert_eq!(
        stack
            .fire_status(&to_primary[0], "undelivered", Some(30003))
            .await
            .status,
        200
    );
    stack.aws.alerts().await; // the cascade of the first text

    assert_eq!(heartbeat.run().await["changed"], 1);
    assert_primary_became(&stack, false).await;

    // The second text is delivered after the failure: the phone works again.
    assert_eq!(
        stack
            .fire_status(&to_primary[1], "delivered", None)
            .await
            .status,
        200
    );
    assert_eq!(heartbeat.run().await["changed"], 1);
    assert_primary_became(&stack, true).await;
    heartbeat.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn every_dispatcher_is_seen_across_scan_pages() {
    let (stack, heartbeat) = start("hb-pages", &[("SCAN_PAGE_SIZE", "2")]).await;
    for i in 0..5 {
        let mut item = seed_dispatcher(unix_now());
        item["dispatcher_id"] = json!(if i == 0 {
            "sergio-main".to_string()
        } else {
            format!("d-{i}")
        });
        item["on_duty"] = json!(i % 2 == 0);
        stack.aws.put_dispatcher(item).await;
    }
    let summary = heartbeat.run().await;
    assert_eq!(summary["seen"], 5, "{summary}");
    assert_eq!(summary["available"], 3);
    assert_eq!(summary["changed"], 2);
    heartbeat.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn configuration_problems_and_unreadable_items_are_alerted_once_and_skipped() {
    let (stack, heartbeat) = start("hb-problems", &[]).await;
    let mut broken = seed_dispatcher(unix_now());
    broken["tertiary_contact"] = json!("call me");
    stack.aws.put_dispatcher(broken).await;
    // A key that is no dispatcher ID: the one damage that leaves an item unusable.
    let mut unreadable = seed_dispatcher(unix_now());
    unreadable["dispatcher_id"] = json!("garbled item!");
    stack.aws.put_dispatcher(unreadable).await;

    let first = heartbeat.run().await;
    assert_eq!(first["seen"], 2, "{first}");
    assert_eq!(first["unreadable"], 1);
    assert_eq!(first["problems"], 2);
    assert_eq!(first["new_problems"], 2);
    let alerts = stack.aws.alerts().await;
    let problems: Vec<&Value> = alerts
        .iter()
        .filter(|a| a.message["type"] == "configuration_problem")
        .map(|a| &a.message)
        .collect();
    assert_eq!(problems.len(), 2, "{alerts:?}");
    let mut attributes: Vec<&str> = problems
        .iter()
        .map(|p| p["attribute"].as_str().unwrap())
        .collect();
    attributes.sort();
    assert_eq!(attributes, vec!["dispatcher_id", "tertiary_contact"]);
    assert!(
        problems.iter().all(|p| !p.to_string().contains("call me")),
        "no raw values"
    );
    let second = heartbeat.run().await;
    assert_eq!(second["new_problems"], 0);
    assert!(
        alert_types(&stack).await.is_empty(),
        "not every five minutes"
    );
    // The readable item was still checked in.
    assert_eq!(
        stack.aws.get_dispatcher("sergio-main").await.unwrap()["available"],
        json!(true)
    );
    heartbeat.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn a_missing_primary_is_a_problem_alerted_once() {
    let (stack, heartbeat) = start("hb-noprimary", &[]).await;
    let mut other = seed_dispatcher(unix_now());
    other["dispatcher_id"] = json!("maria-backup");
    stack.aws.put_dispatcher(other).await;
    assert_eq!(heartbeat.run().await["new_problems"], 1);
    assert_eq!(
        alert_types(&stack).await,
        vec![("configuration_problem".into(), "sergio-main".into())]
    );
    assert_eq!(heartbeat.run().await["new_problems"], 0);
    heartbeat.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn the_heartbeats_write_never_overwrites_a_concurrent_change() {
    // What the run read (available, on duty) is the condition of its write: an OFF
    // that lands between the read and the write makes the write a no-op.
    use relay_aws::dynamo::DynamoDispatcherStore;
    use relay_core::dispatcher::Flag;
    use relay_core::ids::DispatcherId;
    use relay_core::ports::{DispatcherStore, Observed};
    let stack = Stack::start_function("sms-inbound", "hb-race", 0, &[]).await;
    let mut seed = seed_dispatcher(unix_now());
    seed["available"] = json!(false);
    stack.aws.put_dispatcher(seed).await;
    let store = DynamoDispatcherStore::new(stack.aws.dynamodb.clone(), &stack.aws.state_table);
    let id = DispatcherId::parse("sergio-main").unwrap();
    let seen = Observed {
        available: Flag::Set(false),
        on_duty: Flag::Set(true),
    };
    // The dispatcher texts OFF meanwhile.
    store.set_on_duty(&id, false, unix_now()).await.unwrap();
    assert!(
        !store
            .set_health(&id, &seen, true, unix_now())
            .await
            .unwrap()
    );
    let item = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    assert_eq!(item["on_duty"], json!(false));
    assert_eq!(item["available"], json!(false));
    // With what is there now, the write goes through.
    let now_seen = Observed {
        available: Flag::Set(false),
        on_duty: Flag::Set(false),
    };
    assert!(
        store
            .set_health(&id, &now_seen, false, unix_now())
            .await
            .unwrap()
    );
    stack.stop().await;
}

#[tokio::test]
async fn missing_configuration_fails_every_run_naming_the_variable() {
    let stack = Stack::start_function("sms-inbound", "hb-noconfig", 0, &[]).await;
    let heartbeat = HeartbeatProcess::start(&stack, &[("ALERT_TOPIC_ARN", "")]).await;
    for _ in 0..2 {
        match heartbeat.runtime.invoke(schedule_event()).await {
            Invocation::Error(error) => {
                assert!(error.to_string().contains("ALERT_TOPIC_ARN"), "{error}")
            }
            Invocation::Response(r) => panic!("answered {r}"),
        }
    }
    heartbeat.stop().await;
    stack.stop().await;
}

#[tokio::test]
async fn one_damaged_item_among_healthy_ones_is_alerted_once_and_stops_nothing() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (stack, heartbeat) = start("hb-damaged", &[]).await;
    let now = unix_now();
    let mut stale = seed_dispatcher(now);
    stale["last_heartbeat"] = json!(now - 900);
    stack.aws.put_dispatcher(stale).await;
    stack
        .aws
        .put_dispatcher(json!({
            "dispatcher_id": "maria-backup",
            "phone": "858-335-4807",
            "available": false,
            "last_heartbeat": now - 900,
        }))
        .await;
    // Hand-edited: a TTL in words, and `available` typed as a string.
    stack
        .aws
        .put_dispatcher_with(
            json!({"dispatcher_id": "tomas-nights", "phone": "+16195550177", "last_heartbeat": now - 900}),
            &[
                ("message_log_ttl", AttributeValue::S("one day".into())),
                ("available", AttributeValue::S("true".into())),
            ],
        )
        .await;

    let first = heartbeat.run().await;

    assert_eq!(first["seen"], 3, "{first}");
    assert_eq!(first["available"], 3, "every item was checked: {first}");
    assert_eq!(first["unreadable"], 0, "{first}");
    assert_eq!(
        (first["problems"].as_u64(), first["new_problems"].as_u64()),
        (Some(2), Some(2))
    );
    for id in ["sergio-main", "maria-backup", "tomas-nights"] {
        let item = stack.aws.get_dispatcher(id).await.unwrap();
        assert_eq!(item["available"], json!(true), "{item}");
        assert!(item["last_heartbeat"].as_i64().unwrap() >= now, "{item}");
    }
    // The heartbeat's own attribute is mended by its write; the operator's is not.
    let mended = stack.aws.get_dispatcher("tomas-nights").await.unwrap();
    assert_eq!(mended["message_log_ttl"], "one day");

    let second = heartbeat.run().await;
    assert_eq!(
        (second["problems"].as_u64(), second["new_problems"].as_u64()),
        (Some(1), Some(0)),
        "{second}"
    );

    let alerts = stack.aws.alerts().await;
    let problems: Vec<&Value> = alerts
        .iter()
        .map(|a| &a.message)
        .filter(|m| m["type"] == "configuration_problem")
        .collect();
    let mut named: Vec<(&str, &str)> = problems
        .iter()
        .map(|m| {
            (
                m["dispatcher_id"].as_str().unwrap(),
                m["attribute"].as_str().unwrap(),
            )
        })
        .collect();
    named.sort();
    assert_eq!(
        named,
        vec![
            ("tomas-nights", "available"),
            ("tomas-nights", "message_log_ttl")
        ],
        "{problems:?}"
    );
    let ttl = problems
        .iter()
        .find(|m| m["attribute"] == "message_log_ttl")
        .unwrap();
    assert_eq!(
        ttl["reason"],
        "tomas-nights: message_log_ttl: expected whole seconds from 1 to 31622400 (366 days), found a string"
    );
    heartbeat.stop().await;
    stack.stop().await;
}
