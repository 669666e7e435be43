//! End-to-end: `qdn timers dead` and `qdn timers redrive`, the built `qdn` against
//! the fixture's timer queue and its dead-letter queue in moto. Timers are parked in
//! the dead-letter queue directly, as SQS does after five failed receives.

use std::time::Duration;

use relay_core::ack::AckTimer;
use relay_core::ids::MessageSid;
use relay_core::reference::TextRef;
use relay_tests::AwsFixture;
use relay_tests::dynamo_json::to_item;
use relay_tests::qdn::{Run, env_for, qdn_with};
use relay_tests::stack::unix_now;
use serde_json::{Value, json};

const DRIVER: &str = "+16195550123";
/// A body the dead-letter queue may hold that is no timer.
const JUNK: &str = r#"{"hello": "not a timer"}"#;
/// How long a condition may take to hold.
const DEADLINE: Duration = Duration::from_secs(15);

/// `qdn`'s variables for `aws`, the dead-letter queue's included. The timer queue is
/// left to the tests (as `--ack-queue-url`), so one can leave it out.
fn timers_env(aws: &AwsFixture) -> Vec<(String, String)> {
    let mut env = env_for(aws);
    env.push(("ACK_DEAD_LETTER_QUEUE_URL".into(), aws.ack_dlq_url.clone()));
    // moto serves one request at a time and answers exactly: a long poll would only
    // hold everyone else's calls.
    env.push(("QDN_SQS_WAIT_SECS".into(), "0".into()));
    env
}

fn random_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

fn timer(sent_at: i64) -> AckTimer {
    AckTimer {
        inbound_sid: MessageSid::parse(&random_sid()).unwrap(),
        forwarded_sid: MessageSid::parse(&random_sid()).unwrap(),
        ack_ref: TextRef::parse("K7Q").unwrap(),
        sent_at,
    }
}

/// Puts `body` in the dead-letter queue; its SQS message ID.
async fn park(aws: &AwsFixture, body: &str) -> String {
    let out = aws
        .sqs
        .send_message()
        .queue_url(&aws.ack_dlq_url)
        .message_body(body)
        .send()
        .await
        .expect("send to the dead-letter queue");
    out.message_id().expect("a message ID").to_string()
}

/// The inbound item of the text `timer` watches: forwarded, awaiting its ACK.
async fn put_awaiting_text(aws: &AwsFixture, timer: &AckTimer) {
    let item = json!({
        "message_sid": timer.inbound_sid.as_str(),
        "record_type": "inbound",
        "state": "forwarded",
        "ack_state": "awaiting",
        "ack_ref": timer.ack_ref.as_str(),
        "forwarded_sid": timer.forwarded_sid.as_str(),
        "delivery_status": "delivered",
        "from_number": DRIVER,
        "received_at": timer.sent_at,
        "expires_at": unix_now() + 86_400,
    });
    aws.dynamodb
        .put_item()
        .table_name(&aws.message_table)
        .set_item(Some(to_item(&item)))
        .send()
        .await
        .expect("put the inbound item");
}

/// Runs `qdn args` until `done` holds of the run, or fails the test at the deadline.
async fn run_until(env: &[(String, String)], args: &[&str], done: impl Fn(&Run) -> bool) -> Run {
    let until = tokio::time::Instant::now() + DEADLINE;
    loop {
        let run = qdn_with(env, args).await;
        if done(&run) {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "qdn {args:?} never did what was expected: {run:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The listing's rows (header left out), once it has `rows` of them.
async fn listing(env: &[(String, String)], rows: usize) -> Vec<String> {
    let run = run_until(env, &["timers", "dead"], |run| {
        run.status == 0 && run.stdout.lines().count() == rows + 1
    })
    .await;
    let mut lines = run.stdout.lines().map(str::to_string);
    let header = lines.next().unwrap();
    for column in [
        "TIMER",
        "MESSAGE",
        "REFERENCE",
        "SENT",
        "RECEIVES",
        "TEXT NOW",
    ] {
        assert!(header.contains(column), "{}", run.stdout);
    }
    lines.collect()
}

/// The `--json` listing's timers, once there are `count` of them.
async fn json_listing(env: &[(String, String)], count: usize) -> Vec<Value> {
    let run = run_until(env, &["--json", "timers", "dead"], |run| {
        run.status == 0
            && serde_json::from_str::<Value>(&run.stdout)
                .is_ok_and(|doc| doc["timers"].as_array().is_some_and(|t| t.len() == count))
    })
    .await;
    run.json()["timers"].as_array().unwrap().clone()
}

/// What a row says that does not change from one listing to the next: its TIMER,
/// MESSAGE and REFERENCE (RECEIVES grows with every receive, SENT with time).
fn identity(row: &str) -> String {
    row.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Everything on the timer queue, `count` messages in all.
async fn drain_ack_queue(aws: &AwsFixture, count: usize) -> Vec<AckTimer> {
    let until = tokio::time::Instant::now() + DEADLINE;
    let mut timers = Vec::new();
    while timers.len() < count {
        assert!(
            tokio::time::Instant::now() < until,
            "only {} of {count} timers reached the timer queue",
            timers.len()
        );
        let messages = aws.receive_ack_timers(Duration::from_secs(1)).await;
        for message in &messages {
            let body = message.body().unwrap_or_default();
            timers.push(AckTimer::parse(body).unwrap_or_else(|e| panic!("{e}: {body}")));
        }
        aws.delete_ack_timers(&messages).await;
    }
    timers
}

#[tokio::test]
async fn dead_lists_without_taking_and_redrive_puts_timers_back() {
    let aws = AwsFixture::create("cli-timers").await;
    let env = timers_env(&aws);

    let empty = qdn_with(&env, &["timers", "dead"]).await;
    assert_eq!(empty.assert_ok().trim(), "no dead-lettered timers");
    let empty = qdn_with(&env, &["--json", "timers", "dead"]).await;
    empty.assert_ok();
    assert_eq!(empty.json(), json!({"timers": []}));

    let timer = timer(unix_now() - 600);
    put_awaiting_text(&aws, &timer).await;
    let timer_id = park(&aws, &timer.to_json()).await;
    let junk_id = park(&aws, JUNK).await;

    let rows = listing(&env, 2).await;
    let text = rows.join("\n");
    let row = rows
        .iter()
        .find(|row| row.contains(timer.inbound_sid.as_str()))
        .unwrap_or_else(|| panic!("no row for the timer: {text}"));
    assert!(row.starts_with(&timer_id[..8]), "{text}");
    assert!(row.contains(" K7Q "), "{text}");
    assert!(row.contains("10m ago"), "{text}");
    assert!(
        row.ends_with("ack awaiting, forwarded, delivered"),
        "{text}"
    );
    let junk = rows
        .iter()
        .find(|row| row.starts_with(&junk_id[..8]))
        .unwrap_or_else(|| panic!("no row for the junk: {text}"));
    assert!(junk.contains("not a timer: "), "{text}");
    assert!(!text.contains("6195550123"), "no driver's number: {text}");

    // Nothing was taken: the next listing, at once, shows the same.
    let again = listing(&env, 2).await;
    let ids = |rows: &[String]| {
        let mut ids: Vec<String> = rows.iter().map(|row| identity(row)).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&again), ids(&rows));

    let timers = json_listing(&env, 2).await;
    let listed = timers
        .iter()
        .find(|t| t["sqs_message_id"] == timer_id.as_str())
        .unwrap_or_else(|| panic!("{timers:?}"));
    assert_eq!(listed["message_sid"], timer.inbound_sid.as_str());
    assert_eq!(listed["forwarded_sid"], timer.forwarded_sid.as_str());
    assert_eq!(listed["reference"], "K7Q");
    assert_eq!(listed["sent_at"], timer.sent_at);
    assert!(listed["receive_count"].as_u64().unwrap() >= 3, "{listed}");
    assert_eq!(listed["state"], "forwarded");
    assert_eq!(listed["ack_state"], "awaiting");
    assert_eq!(listed["delivery_status"], "delivered");
    let junk = timers
        .iter()
        .find(|t| t["sqs_message_id"] == junk_id.as_str())
        .unwrap_or_else(|| panic!("{timers:?}"));
    assert!(junk["error"].as_str().is_some(), "{junk}");

    // Without the timer queue, redrive touches nothing.
    let no_target = qdn_with(&env, &["timers", "redrive"]).await;
    let line = no_target.assert_fails(2);
    assert!(
        line.contains("ACK_QUEUE_URL") && line.contains("--ack-queue-url"),
        "{line}"
    );
    assert_eq!(json_listing(&env, 2).await.len(), 2);

    let redrive = qdn_with(
        &env,
        &["--ack-queue-url", &aws.ack_queue_url, "timers", "redrive"],
    )
    .await;
    assert_eq!(redrive.status, 1, "the junk was left: {redrive:?}");
    assert!(redrive.stderr.is_empty(), "{redrive:?}");
    let out = &redrive.stdout;
    assert!(
        out.contains(&format!(
            "put back {}: {} reference K7Q",
            &timer_id[..8],
            timer.inbound_sid
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("left {}: not a timer: ", &junk_id[..8])),
        "{out}"
    );
    assert!(
        out.contains(&format!("1 timer put back on {}-ack\n", aws.name)),
        "{out}"
    );
    assert!(
        out.contains(&format!("1 message left in {}-ack-dlq", aws.name)),
        "{out}"
    );

    // The timer is on the timer queue, due now, exactly as it was.
    assert_eq!(drain_ack_queue(&aws, 1).await, vec![timer.clone()]);
    // The dead-letter queue holds only the junk, visible again at once.
    let left = json_listing(&env, 1).await;
    assert_eq!(left[0]["sqs_message_id"], junk_id.as_str(), "{left:?}");
    assert!(left[0]["error"].is_string(), "{left:?}");
}

#[tokio::test]
async fn redrive_moves_more_than_a_batch_and_empties_the_queue() {
    let aws = AwsFixture::create("cli-timers-many").await;
    let env = timers_env(&aws);
    let sent_at = unix_now() - 3 * 3_600;
    let mut parked = Vec::new();
    for _ in 0..12 {
        let timer = timer(sent_at);
        park(&aws, &timer.to_json()).await;
        parked.push(timer);
    }

    // No message-log items: every text's item is gone.
    let rows = listing(&env, 12).await;
    for row in &rows {
        assert!(
            row.contains("3h ago") && row.ends_with("gone (expired)"),
            "{rows:?}"
        );
    }

    let redrive = qdn_with(
        &env,
        &["--ack-queue-url", &aws.ack_queue_url, "timers", "redrive"],
    )
    .await;
    let out = redrive.assert_ok();
    assert_eq!(
        out.lines().filter(|l| l.starts_with("put back ")).count(),
        12,
        "{out}"
    );
    assert!(
        out.ends_with(&format!("12 timers put back on {}-ack\n", aws.name)),
        "{out}"
    );

    let mut moved = drain_ack_queue(&aws, 12).await;
    moved.sort_by(|a, b| a.inbound_sid.as_str().cmp(b.inbound_sid.as_str()));
    parked.sort_by(|a, b| a.inbound_sid.as_str().cmp(b.inbound_sid.as_str()));
    assert_eq!(moved, parked);

    let empty = qdn_with(&env, &["timers", "dead"]).await;
    assert_eq!(empty.assert_ok().trim(), "no dead-lettered timers");
    let again = qdn_with(
        &env,
        &[
            "--ack-queue-url",
            &aws.ack_queue_url,
            "--json",
            "timers",
            "redrive",
        ],
    )
    .await;
    again.assert_ok();
    assert_eq!(
        again.json(),
        json!({"queue": aws.ack_queue_url, "moved": [], "left": []})
    );
}

#[tokio::test]
async fn dead_needs_the_dead_letter_queue() {
    let aws = AwsFixture::create("cli-timers-usage").await;
    let run = qdn_with(&env_for(&aws), &["timers", "dead"]).await;
    let line = run.assert_fails(2);
    assert!(
        line.contains("ACK_DEAD_LETTER_QUEUE_URL") && line.contains("--ack-dead-letter-queue-url"),
        "{line}"
    );
}
