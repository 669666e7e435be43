//! Least privilege, measured: every function is driven through each path that makes
//! a distinct AWS call (the scenarios below), the local AWS records every call with
//! the access key naming the function that made it, and each function's role in
//! `template.yaml` must grant exactly those calls, on those resources, plus what
//! Lambda itself does with the role (its log group, an SQS event source's polling).
//!
//! A static guard keeps the scenarios complete: every AWS SDK operation the functions'
//! code calls (found in its source, `relay_tests::sdk_calls`) must have been observed
//! for at least one function, and every DynamoDB transaction item kind it builds too.
//!
//! When a test here fails, either a role grants what its function never calls (remove
//! it), a function calls what its role does not grant (add it), or the code calls
//! something no scenario reaches (add a scenario).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use relay_tests::iam::{self, Observed, Permission};
use relay_tests::moto::{AwsFixture, TEST_JWT_KEY, recorded_calls};
use relay_tests::rota::{override_line, shift_began_minutes_ago};
use relay_tests::sdk_calls;
use relay_tests::stack::{
    BACKUP_PHONE, HttpAnswer, PRIMARY_PHONE, Stack, driver_params, message_sid, seed_dispatcher,
    unix_now,
};
use relay_tests::template::{Function, Template};
use relay_tests::twilio_sandbox::Fault;
use relay_tests::{FunctionProcess, Invocation, RuntimeApi, sqs_event_from_messages, tokens};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

const DRIVER: &str = "+16195550123";
const ACK_WINDOW_SECS: u64 = 1;

/// What the scenarios measured, shared by the tests below (one run per process).
struct Measurement {
    functions: Vec<Function>,
    observed: Observed,
}

static MEASUREMENT: OnceCell<Measurement> = OnceCell::const_new();

async fn measurement() -> &'static Measurement {
    MEASUREMENT.get_or_init(measure).await
}

/// Runs every scenario, then attributes the calls the local AWS recorded.
async fn measure() -> Measurement {
    let mut variables = BTreeMap::new();
    inbound_scenarios(&mut variables).await;
    outbound_scenarios(&mut variables).await;
    heartbeat_scenarios(&mut variables).await;
    ack_timeout_scenarios(&mut variables).await;
    let endpoint = relay_tests::moto::endpoint().await;
    let calls = recorded_calls(&endpoint).await;
    let functions = Template::load().functions();
    let observed = iam::observe(&calls, &functions, &variables);
    // Shown with a failure (and with --nocapture): what each function was seen to need.
    eprintln!("{} AWS calls recorded", calls.len());
    for (function, permissions) in &observed.permissions {
        eprintln!("{function} called:");
        for permission in permissions {
            eprintln!("    {permission}");
        }
    }
    Measurement {
        functions,
        observed,
    }
}

/// Records which variable the tests give the functions each of `aws`'s resources in.
fn remember(aws: &AwsFixture, variables: &mut BTreeMap<String, String>) {
    let env = aws
        .function_env()
        .into_iter()
        .chain(aws.ack_env(ACK_WINDOW_SECS));
    for (variable, value) in env {
        if variable != "AWS_ENDPOINT_URL" && variable != "ACK_TIMEOUT_SECS" {
            variables.insert(value, variable);
        }
    }
}

fn ack_env(stack: &Stack) -> Vec<(String, String)> {
    stack.aws.ack_env(ACK_WINDOW_SECS)
}

/// A stack with acknowledgement on (so texts start timers), the seed dispatcher
/// changed by `change`, and one `sms-inbound`.
async fn inbound_stack(prefix: &str, change: impl FnOnce(&mut Value)) -> Stack {
    let mut stack = Stack::start_function("sms-inbound", prefix, 0, &[]).await;
    let mut seed = seed_dispatcher(unix_now());
    change(&mut seed);
    stack.aws.put_dispatcher(seed).await;
    let env = ack_env(&stack);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    stack.spawn_instance("sms-inbound", &env);
    stack
}

fn assert_status(answer: &HttpAnswer, status: u16, what: &str) {
    assert_eq!(answer.status, status, "{what}: {answer:?}");
}

/// The reference a relayed text carries.
fn reference(body: &str) -> String {
    relay_tests::stack::reference_of(body)
}

async fn inbound_scenarios(variables: &mut BTreeMap<String, String>) {
    // Relayed to the primary (claim, transaction, secret, timer), delivered (status
    // callbacks), acknowledged by reference and bare, and delivered twice.
    let stack = inbound_stack("iam-in", |_| {}).await;
    remember(&stack.aws, variables);
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, "Load ready");
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let event = stack.inbound_event(&params);
    assert_status(
        &stack.invoke(event.clone()).await,
        200,
        "relay to the primary",
    );
    assert_status(&stack.invoke(event).await, 200, "the same webhook again");
    let first = stack.sent_to(PRIMARY_PHONE)[0].clone();
    assert_status(
        &stack.fire_status(&first.sid, "delivered", None).await,
        200,
        "delivered callback",
    );
    let (_, ack) = stack
        .text_from(PRIMARY_PHONE, &format!("ACK {}", reference(&first.body)))
        .await;
    assert!(ack.body.contains("acknowledged"), "ACK: {ack:?}");
    stack.text_from("+16195550124", "second").await;
    let (_, bare) = stack.text_from(PRIMARY_PHONE, "ACK").await;
    assert!(bare.body.contains("acknowledged"), "bare ACK: {bare:?}");
    // OFF and ON: the dispatcher items with the sender's phone.
    let (_, off) = stack.text_from(PRIMARY_PHONE, "OFF").await;
    assert!(off.body.contains("OFF duty"), "OFF: {off:?}");
    stack.text_from(PRIMARY_PHONE, "ON").await;
    // A signature that matches no token: the secret is read again.
    let forged = stack.event_signed(
        &params,
        &stack.inbound_url(),
        "00000000000000000000000000000000",
    );
    assert_status(&stack.invoke(forged).await, 403, "forged signature");
    // A failed delivery moves the text on to the backup.
    let (_, answer) = stack.text_from(DRIVER, "Where do I dump?").await;
    assert_status(&answer, 200, "relay to be moved on");
    let forwarded = stack.sent().last().unwrap().sid.clone();
    assert_status(
        &stack
            .fire_status(&forwarded, "undelivered", Some(30003))
            .await,
        200,
        "undelivered callback",
    );
    assert_eq!(stack.sent().last().unwrap().to, BACKUP_PHONE, "moved on");
    // Twilio down for every attempt: 502, and the claim is given back as undelivered.
    stack.twilio.inject(Fault::status(500).times(3));
    let (_, failed) = stack.text_from(DRIVER, "Twilio is down").await;
    assert_status(&failed, 502, "send failed");
    stack.stop().await;

    // A primary with a stale heartbeat: marked unavailable, cascade, alert.
    let stack = inbound_stack("iam-in-cascade", |seed| {
        seed["last_heartbeat"] = json!(unix_now() - 86_400);
    })
    .await;
    remember(&stack.aws, variables);
    let (_, answer) = stack.text_from(DRIVER, "Anyone?").await;
    assert_status(&answer, 200, "cascade");
    assert_eq!(stack.sent()[0].to, BACKUP_PHONE, "cascaded");
    stack.stop().await;
}

async fn outbound_scenarios(variables: &mut BTreeMap<String, String>) {
    let stack = Stack::start_function("sms-outbound", "iam-out", 1, &[]).await;
    remember(&stack.aws, variables);
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let token = |sub: &str| {
        tokens::hs256(
            TEST_JWT_KEY.as_bytes(),
            &tokens::claims(sub, unix_now() + 600),
        )
    };
    let body = |to: &str| json!({"to": to, "body": "On my way", "job_ref": "JOB-1"}).to_string();
    let send = |sub: &str, to: &str, key: Option<&str>| {
        stack.invoke(stack.outbound_event(Some(&token(sub)), &body(to), key))
    };
    assert_status(&send("sergio-main", DRIVER, None).await, 202, "reply");
    assert_status(
        &send("sergio-main", DRIVER, Some("k-1")).await,
        202,
        "keyed",
    );
    assert_status(
        &send("sergio-main", DRIVER, Some("k-1")).await,
        202,
        "replay",
    );
    // Twilio refuses the number: the key's claim is given back.
    let invalid = "+15005550001";
    assert_status(
        &send("sergio-main", invalid, Some("k-2")).await,
        422,
        "refused",
    );
    // A token for no dispatcher item: the claim taken beside the read is given back.
    assert_status(&send("nobody", DRIVER, Some("k-3")).await, 401, "unknown");
    stack.stop().await;
}

/// One more function on a stack's fixture, on a Runtime API of its own.
struct Beside {
    runtime: RuntimeApi,
    function: FunctionProcess,
}

impl Beside {
    async fn start(stack: &Stack, binary: &str, extra: Vec<(String, String)>) -> Beside {
        let runtime = RuntimeApi::start().await;
        let mut env = stack.aws.function_env();
        env.push(("TWILIO_API_BASE".into(), stack.twilio.base_url()));
        env.extend(extra);
        let function = FunctionProcess::spawn(binary, &runtime, &env);
        Beside { runtime, function }
    }

    async fn invoke(&self, event: Value) -> Value {
        match self.runtime.invoke(event).await {
            Invocation::Response(response) => response,
            Invocation::Error(e) => panic!(
                "{} failed: {e}\n{}",
                self.function.name(),
                self.function.logs().join("\n")
            ),
        }
    }

    async fn stop(self) {
        self.function.stop().await;
    }
}

async fn heartbeat_scenarios(variables: &mut BTreeMap<String, String>) {
    let stack = Stack::start_function("sms-inbound", "iam-hb", 0, &[]).await;
    remember(&stack.aws, variables);
    // Marked unavailable but healthy: the run flips it back and alerts; a second item
    // with an unusable phone is a configuration problem, alerted once and remembered.
    let mut seed = seed_dispatcher(unix_now());
    seed["available"] = json!(false);
    stack.aws.put_dispatcher(seed).await;
    stack
        .aws
        .put_dispatcher(json!({"dispatcher_id": "night-desk", "phone": "12", "available": true}))
        .await;
    let heartbeat = Beside::start(&stack, "dispatcher-heartbeat", Vec::new()).await;
    let schedule: Value = serde_json::from_str(include_str!("../events/heartbeat-schedule.json"))
        .expect("the schedule event");
    let summary = heartbeat.invoke(schedule.clone()).await;
    assert!(summary["changed"].as_u64() >= Some(1), "{summary}");
    assert!(summary["new_problems"].as_u64() >= Some(1), "{summary}");
    // A rota whose shift began a minute ago: the handover text (the Twilio secret, a
    // claim taken and finished).
    let (rota, _) = shift_began_minutes_ago("UTC", "sergio-main", "night-desk", 1, 8);
    stack.aws.put_rota(&rota).await;
    let summary = heartbeat.invoke(schedule.clone()).await;
    assert_eq!(summary["handover"], "sent", "{summary}");
    // An override for a dispatcher with no usable phone: its claim is given back.
    let now = unix_now();
    stack
        .aws
        .put_rota(&format!(
            "{rota}{}",
            override_line("night-desk", now - 60, now + 3_600)
        ))
        .await;
    let summary = heartbeat.invoke(schedule).await;
    assert_eq!(summary["handover"], "no_phone", "{summary}");
    heartbeat.stop().await;
    stack.stop().await;
}

async fn ack_timeout_scenarios(variables: &mut BTreeMap<String, String>) {
    // Nobody acknowledges: the timer escalates to the backup (a new reference and
    // timer), then the backup's to the tertiary, then the tertiary's gives up.
    let stack = inbound_stack("iam-ack", |_| {}).await;
    remember(&stack.aws, variables);
    let timeouts = Beside::start(&stack, "ack-timeout", ack_env(&stack)).await;
    let (_, answer) = stack.text_from(DRIVER, "Load ready").await;
    assert_status(&answer, 200, "relay with a timer");
    for tier in ["backup", "tertiary", "nobody"] {
        let response = fire_due_timers(&stack, &timeouts).await;
        assert_eq!(
            response["batchItemFailures"],
            json!([]),
            "to {tier}: {response}"
        );
    }
    assert_eq!(stack.sent().len(), 3, "{:?}", stack.sent());

    // Twilio down while escalating: the move-on claim is given back, the timer fails.
    let (_, answer) = stack.text_from(DRIVER, "Load two").await;
    assert_status(&answer, 200, "relay with a timer");
    stack.twilio.inject(Fault::status(503).times(3));
    let response = fire_due_timers(&stack, &timeouts).await;
    let failures = response["batchItemFailures"].as_array().map(Vec::len);
    assert_eq!(failures, Some(1), "{response}");
    timeouts.stop().await;
    stack.stop().await;
}

/// Hands the due timers to ack-timeout as one batch and deletes them (as Lambda does
/// with a batch's records); its batch response.
async fn fire_due_timers(stack: &Stack, timeouts: &Beside) -> Value {
    let messages = stack.aws.receive_ack_timers(Duration::from_secs(10)).await;
    assert!(!messages.is_empty(), "no timer came due");
    let event = sqs_event_from_messages(&stack.aws.ack_queue_arn, &messages);
    let response = timeouts.invoke(event).await;
    stack.aws.delete_ack_timers(&messages).await;
    response
}

/// Per function: what its role grants beyond what it needs, or needs beyond what its
/// role grants.
fn role_diffs(
    measurement: &Measurement,
    template: &Template,
    direction: impl Fn(&BTreeSet<Permission>, &BTreeSet<Permission>) -> Vec<String>,
) -> Vec<String> {
    let mut report = Vec::new();
    for function in &measurement.functions {
        let granted = iam::role_permissions(template, &function.role)
            .unwrap_or_else(|e| panic!("{}: {e}", function.role));
        let mut needed = measurement.observed.permissions[&function.binary].clone();
        needed.extend(iam::platform_permissions(function));
        let lines = direction(&granted, &needed);
        if !lines.is_empty() {
            report.push(format!(
                "  {} ({}, role {}):\n{}",
                function.binary,
                function.logical_id,
                function.role,
                lines.join("\n")
            ));
        }
    }
    report
}

#[tokio::test]
async fn no_role_grants_what_its_function_never_calls() {
    let measurement = measurement().await;
    let template = Template::load();
    let report = role_diffs(measurement, &template, |granted, needed| {
        iam::missing_from(granted, needed)
    });
    assert!(
        report.is_empty(),
        "granted in template.yaml, never called by the function (nor needed by Lambda \
         for its logs or event source); remove them, or add the scenario that calls \
         them to tests/iam.rs:\n{}",
        report.join("\n")
    );
}

#[tokio::test]
async fn every_call_a_function_makes_is_granted_by_its_role() {
    let measurement = measurement().await;
    let template = Template::load();
    let mut report = role_diffs(measurement, &template, |granted, needed| {
        iam::missing_from(needed, granted)
    });
    report.extend(
        measurement
            .observed
            .problems
            .iter()
            .map(|p| format!("  {p}")),
    );
    assert!(
        report.is_empty(),
        "called by the function (or needed by Lambda for it), not granted by its role \
         in template.yaml:\n{}",
        report.join("\n")
    );
}

#[tokio::test]
async fn every_sdk_call_in_the_functions_code_is_exercised_by_a_scenario() {
    let measurement = measurement().await;
    let binaries: Vec<String> = measurement
        .functions
        .iter()
        .map(|f| f.binary.clone())
        .collect();
    let code = sdk_calls::function_code(&binaries);
    let found = sdk_calls::scan(&code);
    assert!(
        !found.operations.is_empty(),
        "no AWS SDK call found in {:?} ({} files): the scan is broken",
        code.packages,
        code.files.len()
    );
    let mut report = Vec::new();
    for ((service, operation), sites) in &found.operations {
        let observed = measurement
            .observed
            .operations
            .contains(&(service.clone(), operation.clone()));
        if !observed {
            report.push(format!(
                "  {service}:{operation}, called at {}",
                where_(sites)
            ));
        }
    }
    for (action, sites) in &found.transaction_items {
        if !measurement.observed.transaction_items.contains(action) {
            report.push(format!(
                "  a transaction item authorised as {action}, built at {}",
                where_(sites)
            ));
        }
    }
    assert!(
        report.is_empty(),
        "the functions' code ({}) makes AWS calls no scenario in tests/iam.rs exercised, \
         so their roles are not checked for them; add a scenario that reaches each:\n{}",
        code.packages.join(", "),
        report.join("\n")
    );
}

fn where_(sites: &[sdk_calls::CallSite]) -> String {
    sites
        .iter()
        .map(|s| format!("{}:{}", s.file.display(), s.line))
        .collect::<Vec<_>>()
        .join(", ")
}
