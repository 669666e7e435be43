//! The seed's three smoke tests, played against the local stack: moto for AWS, the
//! Twilio sandbox, a Lambda Runtime API and the real `sms-inbound` binary; then a
//! dispatcher's reply through the real `sms-outbound` binary, retried with the same
//! `Idempotency-Key`. Run it with `scripts/demo.sh`, which prepares moto's venv and
//! builds the functions first.
//!
//! Each scenario writes a fresh dispatcher item, clears the sandbox and the alert
//! queue, texts the relay as a driver and prints what happened. Exit status 0 only if
//! every scenario routed as expected.

use std::process::ExitCode;
use std::time::Duration;

use relay_tests::moto::TEST_JWT_KEY;
use relay_tests::stack::{
    BACKUP_PHONE, PRIMARY_PHONE, Stack, TERTIARY_PHONE, driver_params, message_sid,
    seed_dispatcher, unix_now,
};
use relay_tests::{Alert, Invocation, response_parts, tokens};
use serde_json::{Value, json};

const DRIVER: &str = "+16195550123";
const TIERS: [(&str, &str); 3] = [
    ("primary", PRIMARY_PHONE),
    ("backup", BACKUP_PHONE),
    ("tertiary", TERTIARY_PHONE),
];

struct Scenario {
    title: &'static str,
    /// Changes to the seed's dispatcher item (available, fresh heartbeat).
    setup: fn(&mut Value),
    text: &'static str,
    /// The tier that should receive the text.
    expected: &'static str,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        title: "primary available -> primary receives",
        setup: |_| {},
        text: "Load ready at 5th & Main",
        expected: "primary",
    },
    Scenario {
        title: "primary unavailable -> backup receives, cascade alert",
        setup: |item| item["available"] = json!(false),
        text: "Where do I dump?",
        expected: "backup",
    },
    Scenario {
        title: "primary unavailable, no backup -> tertiary receives",
        setup: |item| {
            item["available"] = json!(false);
            item.as_object_mut().unwrap().remove("backup_dispatcher");
        },
        text: "Anyone there?",
        expected: "tertiary",
    },
];

/// What one scenario produced.
struct Outcome {
    /// The dispatcher item the scenario started from.
    dispatcher: Value,
    /// The HTTP status, or the invocation's error report.
    answer: Result<(u16, String), Value>,
    /// Per tier: the bodies the sandbox accepted for that phone.
    received: Vec<(&'static str, &'static str, Vec<String>)>,
    /// Every other number the sandbox was asked to send to.
    stray: Vec<String>,
    alerts: Vec<Alert>,
    decision_line: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    println!("Starting the local stack (moto, Twilio sandbox, Runtime API, sms-inbound) ...");
    let stack = Stack::start("demo").await;
    let mut failures = Vec::new();
    for (n, scenario) in SCENARIOS.iter().enumerate() {
        let outcome = play(&stack, scenario).await;
        let problems = check(scenario, &outcome);
        report(n + 1, scenario, &outcome, &problems);
        failures.extend(
            problems
                .into_iter()
                .map(|p| format!("scenario {}: {p}", n + 1)),
        );
    }
    stack.stop().await;
    failures.extend(reply_to_driver().await);

    println!();
    if failures.is_empty() {
        println!(
            "demo: all {} scenarios routed as expected (primary, backup, tertiary), \
             and the dispatcher's reply reached the driver once",
            SCENARIOS.len()
        );
        ExitCode::SUCCESS
    } else {
        println!("demo: FAILED: {}", failures.join("; "));
        ExitCode::FAILURE
    }
}

/// Resets the world, texts the relay once, and collects what happened.
async fn play(stack: &Stack, scenario: &Scenario) -> Outcome {
    stack.twilio.reset();
    stack.aws.alerts().await; // drop anything left from the previous scenario
    let mut item = seed_dispatcher(unix_now());
    (scenario.setup)(&mut item);
    stack.aws.put_dispatcher(item.clone()).await;

    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, scenario.text);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let answer = match stack.runtime.invoke(stack.inbound_event(&params)).await {
        Invocation::Response(response) => {
            let (status, _, body) = response_parts(&response);
            Ok((status, body))
        }
        Invocation::Error(error) => Err(error),
    };

    let sent = stack.sent();
    let received = TIERS
        .iter()
        .map(|&(tier, phone)| {
            let bodies = sent
                .iter()
                .filter(|m| m.to == phone)
                .map(|m| m.body.clone());
            (tier, phone, bodies.collect())
        })
        .collect();
    let stray = sent
        .iter()
        .filter(|m| TIERS.iter().all(|(_, phone)| m.to != *phone))
        .map(|m| m.to.clone())
        .collect();
    // stdout is read asynchronously; the line may trail the response a little.
    let decision_line = stack.functions[0]
        .wait_for_log(
            |line| line.contains("routing_decision") && line.contains(&sid),
            Duration::from_secs(2),
        )
        .await;
    Outcome {
        dispatcher: item,
        answer,
        received,
        stray,
        alerts: stack.aws.alerts().await,
        decision_line,
    }
}

/// What went wrong, if anything.
fn check(scenario: &Scenario, outcome: &Outcome) -> Vec<String> {
    let mut problems = Vec::new();
    match &outcome.answer {
        Ok((200, _)) => {}
        Ok((status, body)) => problems.push(format!("function answered {status} ({body})")),
        Err(error) => problems.push(format!("invocation failed: {error}")),
    }
    for (tier, phone, bodies) in &outcome.received {
        let want = usize::from(*tier == scenario.expected);
        if bodies.len() != want {
            problems.push(format!(
                "{tier} {phone} received {} text(s), expected {want}",
                bodies.len()
            ));
        }
    }
    if !outcome.stray.is_empty() {
        problems.push(format!("texts went to {:?}", outcome.stray));
    }
    let decision = outcome
        .decision_line
        .as_deref()
        .and_then(|line| serde_json::from_str::<Value>(line).ok())
        .and_then(|log| log["routing_decision"].as_str().map(str::to_owned));
    match decision.as_deref() {
        Some(tier) if tier == scenario.expected => {}
        Some(tier) => problems.push(format!("routing_decision was {tier}")),
        None => problems.push("no routing_decision log line".into()),
    }
    let cascades = outcome
        .alerts
        .iter()
        .filter(|a| a.message["type"] == "cascade")
        .count();
    match (scenario.expected, cascades) {
        ("primary", 0) => {}
        ("primary", n) => problems.push(format!("{n} cascade alert(s) for a primary delivery")),
        (_, 0) => problems.push("no cascade alert".into()),
        _ => {}
    }
    problems
}

fn report(n: usize, scenario: &Scenario, outcome: &Outcome, problems: &[String]) {
    println!();
    println!("== {n}. {}", scenario.title);
    let field = |name: &str| match &outcome.dispatcher[name] {
        Value::Null => "(none)".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!(
        "   dispatcher sergio-main: available={}, backup_dispatcher={}, tertiary_contact={}",
        field("available"),
        field("backup_dispatcher"),
        field("tertiary_contact"),
    );
    println!("   driver {DRIVER} texted: {:?}", scenario.text);
    match &outcome.answer {
        Ok((status, body)) => println!("   function answered: HTTP {status} {body}"),
        Err(error) => println!("   function failed: {error}"),
    }
    for (tier, phone, bodies) in &outcome.received {
        if bodies.is_empty() {
            println!("   {tier:<8} {phone}: (nothing)");
        }
        for body in bodies {
            println!("   {tier:<8} {phone}: {body:?}");
        }
    }
    if outcome.alerts.is_empty() {
        println!("   SNS alerts: none");
    }
    for alert in &outcome.alerts {
        println!(
            "   SNS alert: {:?} type={} reason={:?}",
            alert.subject.as_deref().unwrap_or("(no subject)"),
            alert.message["type"].as_str().unwrap_or("?"),
            alert.message["reason"].as_str().unwrap_or("?"),
        );
    }
    match &outcome.decision_line {
        Some(line) => println!("   decision log: {line}"),
        None => println!("   decision log: (none)"),
    }
    if problems.is_empty() {
        println!("   => OK: routed to {}", scenario.expected);
    } else {
        println!("   => WRONG: {}", problems.join("; "));
    }
}

/// A dispatcher answers the driver through `sms-outbound`, then retries the same
/// request (same `Idempotency-Key`), as a flaky phone connection would.
async fn reply_to_driver() -> Vec<String> {
    println!();
    println!("Starting sms-outbound ...");
    let stack = Stack::start_function("sms-outbound", "demo-out", 1, &[]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    println!("== 4. dispatcher sergio-main replies to the driver (and retries once)");
    let token = tokens::hs256(
        TEST_JWT_KEY.as_bytes(),
        &tokens::claims("sergio-main", unix_now() + 600),
    );
    let body =
        json!({"to": DRIVER, "body": "Dump at the north gate, code 4412", "job_ref": "JOB-1042"});
    let mut problems = Vec::new();
    let mut answers = Vec::new();
    for attempt in ["first", "retry"] {
        let event = stack.outbound_event(Some(&token), &body.to_string(), Some("demo-reply-1"));
        let answer = stack.invoke(event).await;
        println!("   {attempt}: HTTP {} {}", answer.status, answer.body);
        answers.push(answer);
    }
    let sent = stack.sent_to(DRIVER);
    for text in &sent {
        println!("   driver {DRIVER} received:");
        for line in text.body.lines() {
            println!("     | {line}");
        }
    }
    if answers.iter().any(|a| a.status != 202) {
        problems.push("reply: expected 202 twice".to_string());
    }
    if answers.len() == 2 && answers[0].body != answers[1].body {
        problems.push("reply: the retry did not get the first answer".to_string());
    }
    if sent.len() != 1 {
        problems.push(format!(
            "reply: driver received {} texts, expected 1",
            sent.len()
        ));
    }
    stack.stop().await;
    problems
}
