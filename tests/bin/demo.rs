//! The seed's three smoke tests, played against the local stack: moto for AWS, the
//! Twilio sandbox, a Lambda Runtime API and the real `sms-inbound` binary; then the
//! primary dispatcher answering a driver by text (`<REF> On my way`) through the same
//! `sms-inbound`, with Twilio redelivering that webhook; then a dispatcher's reply
//! through the real `sms-outbound` binary, retried with the same `Idempotency-Key`. Run
//! it with `scripts/demo.sh`, which prepares moto's venv and builds the functions first.
//!
//! Each scenario writes a fresh dispatcher item, clears the sandbox and the alert
//! queue, texts the relay as a driver and prints what happened. Exit status 0 only if
//! every scenario routed as expected and every answer reached the driver exactly once.

use std::process::ExitCode;
use std::time::Duration;

use relay_tests::moto::TEST_JWT_KEY;
use relay_tests::stack::{
    BACKUP_PHONE, PRIMARY_PHONE, QDN_NUMBER, Stack, TERTIARY_PHONE, driver_params, message_sid,
    reference_of, seed_dispatcher, unix_now,
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
    failures.extend(answer_by_text(&stack, SCENARIOS.len() + 1).await);
    stack.stop().await;
    failures.extend(reply_to_driver(SCENARIOS.len() + 2).await);

    println!();
    if failures.is_empty() {
        println!(
            "demo: all {} scenarios routed as expected (primary, backup, tertiary), \
             the primary's answer by text reached the driver once, \
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

/// A driver texts, the primary answers by text with the reference of the text it got
/// (`<REF> On my way`), then Twilio redelivers that webhook (the same `MessageSid`):
/// the driver gets one stamped text from the QDN number, the primary's TwiML names the
/// driver and the reference, and the redelivery sends nothing.
async fn answer_by_text(stack: &Stack, n: usize) -> Vec<String> {
    stack.twilio.reset();
    stack.aws.alerts().await; // drop anything left from the scenarios
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    println!();
    println!("== {n}. the primary answers the driver by text (and Twilio redelivers the answer)");
    let mut problems = Vec::new();

    let question = "At the gate, which bay?";
    let (_, asked) = stack.text_from(DRIVER, question).await;
    println!("   driver {DRIVER} texted: {question:?}");
    println!("   function answered: HTTP {} {}", asked.status, asked.body);
    if asked.status != 200 {
        problems.push(format!("the driver's text answered {}", asked.status));
    }
    let relayed = stack.sent_to(PRIMARY_PHONE);
    for text in &relayed {
        println!("   primary  {PRIMARY_PHONE} received:");
        for line in text.body.lines() {
            println!("     | {line}");
        }
    }
    if relayed.len() != 1 || stack.sent().len() != 1 {
        problems.push(format!(
            "the driver's text: {} text(s) to the primary, {} in all, expected 1",
            relayed.len(),
            stack.sent().len()
        ));
    }
    // reference_of panics on a text without a well-formed `[REF]` line.
    let reference = relayed
        .first()
        .and_then(|text| std::panic::catch_unwind(|| reference_of(&text.body)).ok());
    let Some(reference) = reference else {
        problems.push("the relayed text carries no [REF] line".into());
        println!("   => WRONG: {}", problems.join("; "));
        return problems
            .into_iter()
            .map(|p| format!("answer: {p}"))
            .collect();
    };

    let words = "On my way";
    let answer_text = format!("{reference} {words}");
    let (sid, answered) = stack.text_from(PRIMARY_PHONE, &answer_text).await;
    println!("   primary  {PRIMARY_PHONE} texted: {answer_text:?} ({sid})");
    println!(
        "   function answered: HTTP {} {}",
        answered.status, answered.body
    );
    let confirmation = format!("Sent to ***{} ({reference})", &DRIVER[DRIVER.len() - 4..]);
    if answered.status != 200 || !answered.body.contains(&confirmation) {
        problems.push(format!("the primary's TwiML does not say {confirmation:?}"));
    }
    let to_driver = stack.sent_to(DRIVER);
    for text in &to_driver {
        println!(
            "   driver   {DRIVER} received (from {}):",
            text.from.as_deref().unwrap_or("?")
        );
        for line in text.body.lines() {
            println!("     | {line}");
        }
    }
    match to_driver.as_slice() {
        [text] => {
            if text.from.as_deref() != Some(QDN_NUMBER) {
                problems.push(format!(
                    "the answer came from {:?}, not {QDN_NUMBER}",
                    text.from
                ));
            }
            let stamped = text
                .body
                .strip_prefix(&format!("{words}\n-- sergio-main / "))
                .is_some_and(|at| at.parse::<jiff::Timestamp>().is_ok());
            if !stamped {
                problems.push(format!(
                    "the answer is not {words:?} stamped \"-- sergio-main / <UTC time>\""
                ));
            }
        }
        texts => problems.push(format!(
            "the driver received {} texts, expected 1",
            texts.len()
        )),
    }
    // stdout is read asynchronously; the line may trail the response a little.
    let answer_line = stack.functions[0]
        .wait_for_log(
            |line| line.contains("dispatcher answer") && line.contains(&sid),
            Duration::from_secs(2),
        )
        .await;
    match &answer_line {
        Some(line) => println!("   answer log: {line}"),
        None => println!("   answer log: (none)"),
    }
    let outcome = answer_line
        .as_deref()
        .and_then(|line| serde_json::from_str::<Value>(line).ok())
        .and_then(|log| log["answer_outcome"].as_str().map(str::to_owned));
    if outcome.as_deref() != Some("sent") {
        problems.push(format!("answer_outcome was {outcome:?}, expected \"sent\""));
    }

    let before = stack.sent().len();
    let again = stack.text_with_sid(&sid, PRIMARY_PHONE, &answer_text).await;
    let more = stack.sent().len() - before;
    println!(
        "   Twilio redelivers {sid}: HTTP {} {}; texts sent: {more}",
        again.status, again.body
    );
    if again.status != 200 || again.body != answered.body {
        problems.push("the redelivery did not get the first answer".into());
    }
    if more != 0 {
        problems.push(format!("the redelivery sent {more} more text(s)"));
    }
    let alerts = stack.aws.alerts().await;
    if !alerts.is_empty() {
        problems.push(format!("{} alert(s)", alerts.len()));
    }
    if problems.is_empty() {
        println!(
            "   => OK: the driver got the answer once ({reference}), stamped, from {QDN_NUMBER}"
        );
    } else {
        println!("   => WRONG: {}", problems.join("; "));
    }
    problems
        .into_iter()
        .map(|p| format!("answer: {p}"))
        .collect()
}

/// A dispatcher answers the driver through `sms-outbound`, then retries the same
/// request (same `Idempotency-Key`), as a flaky phone connection would.
async fn reply_to_driver(n: usize) -> Vec<String> {
    println!();
    println!("Starting sms-outbound ...");
    let stack = Stack::start_function("sms-outbound", "demo-out", 1, &[]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    println!("== {n}. dispatcher sergio-main replies to the driver (and retries once)");
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
