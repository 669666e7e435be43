//! The sample events in `events/` (for `sam local invoke -e` and `cargo lambda invoke
//! --data-file`) get the answers `events/README.md` says they get.
//!
//! Every file is in [`MANIFEST`] (file, function, the dispatcher table it expects, the
//! documented outcome) and has a test here that runs it, as it is, through the built
//! function under the Runtime API emulator against moto, with that function's
//! environment taken from `events/env.json`: env.json's keys, the values of resource
//! names and local endpoints replaced by this test's own (every fixture has its own
//! tables, topic, queue and secrets), and nothing env.json lacks. The secrets hold the
//! published local demo values, the dispatcher table is seeded with the `qdn dispatchers
//! put` commands events/README.md documents (run through the built `qdn`), and the
//! Twilio sandbox accepts only the demo account, so a file answers as documented only if
//! its signature, its token and env.json are right.
//!
//! The signed files' `X-Twilio-Signature` is recomputed here from the demo auth token:
//! `QDN_RESIGN_EVENTS=1 cargo test -p relay-tests --test events signed` rewrites a
//! header that differs (after an edit of a file's body or host) instead of failing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use relay_tests::stack::{BACKUP_PHONE, HttpAnswer, PRIMARY_PHONE, Stack, TERTIARY_PHONE};
use relay_tests::tokens::{self, HmacBits};
use relay_tests::twilio_sandbox::{Sandbox, SandboxConfig, SentMessage};
use relay_tests::{AwsFixture, FunctionProcess, Invocation, RuntimeApi, binary_path};
use serde_json::{Map, Value, json};

/// The local demo key the outbound events are signed with (`events/README.md`). Only
/// ever for local runs.
const DEMO_JWT_KEY: &str = "qdn-local-demo-jwt-key-0123456789abcdef";
/// The local demo Twilio auth token the webhook and status events are signed with
/// (`events/README.md`). Only ever for local runs.
const DEMO_AUTH_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
/// The demo Twilio secret's account: the `AccountSid` the signed events carry.
const DEMO_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
/// Twilio's magic "valid sender" test number, the demo secret's `from_number`.
const DEMO_FROM_NUMBER: &str = "+15005550006";
/// The demo Twilio secret, exactly as events/README.md shows it.
const DEMO_TWILIO_SECRET: &str = r#"{"account_sid":"AC00000000000000000000000000000001","auth_token":"a1b2c3d4e5f60718293a4b5c6d7e8f90","from_number":"+15005550006"}"#;
const DRIVER: &str = "+16195550123";

/// The dispatcher table of each scenario: the arguments of `qdn dispatchers put`
/// (events/README.md shows each as `qdn dispatchers put <these>`), run on an empty table.
/// (a) the seed's dispatcher, available (a new item starts available, with a fresh
/// heartbeat).
const PRIMARY_AVAILABLE: &str =
    "sergio-main --phone +18585550100 --backup 858-335-4807 --tertiary +1-619-555-0199";
/// (b) the same, but the primary off duty: unavailable.
const PRIMARY_UNAVAILABLE: &str = "sergio-main --phone +18585550100 --backup 858-335-4807 --tertiary +1-619-555-0199 --on-duty false";
/// (c) the primary off duty and no backup.
const NO_BACKUP: &str =
    "sergio-main --phone +18585550100 --tertiary +1-619-555-0199 --on-duty false";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    SmsInbound,
    SmsOutbound,
    DispatcherHeartbeat,
    AckTimeout,
}

impl Function {
    const ALL: [Function; 4] = [
        Function::SmsInbound,
        Function::SmsOutbound,
        Function::DispatcherHeartbeat,
        Function::AckTimeout,
    ];

    /// The logical ID in template.yaml, and env.json's section.
    fn logical_id(self) -> &'static str {
        match self {
            Function::SmsInbound => "SmsInboundFunction",
            Function::SmsOutbound => "SmsOutboundFunction",
            Function::DispatcherHeartbeat => "DispatcherHeartbeatFunction",
            Function::AckTimeout => "AckTimeoutFunction",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Function::SmsInbound => "sms-inbound",
            Function::SmsOutbound => "sms-outbound",
            Function::DispatcherHeartbeat => "dispatcher-heartbeat",
            Function::AckTimeout => "ack-timeout",
        }
    }

    /// What env.json adds to the template's variables for a local run: the AWS
    /// endpoint, and Twilio's where the function sends texts.
    fn local_only(self) -> &'static [&'static str] {
        match self {
            Function::DispatcherHeartbeat => &["AWS_ENDPOINT_URL"],
            _ => &["AWS_ENDPOINT_URL", "TWILIO_API_BASE"],
        }
    }
}

/// What a file is documented to get.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// `200` TwiML; the driver's text forwarded once, to `phone` only (the `tier`), with
    /// exactly the alerts of these types (a `cascade` one naming the file's message).
    Forwarded {
        tier: &'static str,
        phone: &'static str,
        alerts: &'static [&'static str],
    },
    /// `200` to a status callback for a message that is not in the log: nothing sent,
    /// nothing written, no alert.
    StatusNothingToDo,
    /// `202`, one SMS to the driver, and the same answer replayed on a second invocation.
    OutboundSent,
    /// The JSON refusal `status` / `error`; nothing sent.
    Refused { status: u16, error: &'static str },
    /// The heartbeat's run summary (one dispatcher seen, the primary available).
    HeartbeatSummary,
    /// `{"batchItemFailures": []}`; nothing sent, no alert.
    NoBatchItemFailures,
    /// A dispatcher's answer by text that goes nowhere: `200` TwiML whose `<Message>`
    /// starts with `refusal`, an `AnswersRefused` metric with this `Reason`, the text
    /// logged `answered`; nothing sent, no alert.
    AnswerRefused {
        refusal: &'static str,
        reason: &'static str,
    },
}

struct EventFile {
    file: &'static str,
    function: Function,
    /// `qdn dispatchers put` arguments run first, if any.
    setup: Option<&'static str>,
    outcome: Outcome,
}

const MANIFEST: &[EventFile] = &[
    EventFile {
        file: "inbound-primary-available.json",
        function: Function::SmsInbound,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::Forwarded {
            tier: "primary",
            phone: PRIMARY_PHONE,
            alerts: &[],
        },
    },
    EventFile {
        file: "inbound-primary-unavailable.json",
        function: Function::SmsInbound,
        setup: Some(PRIMARY_UNAVAILABLE),
        outcome: Outcome::Forwarded {
            tier: "backup",
            phone: BACKUP_PHONE,
            alerts: &["cascade", "dispatcher_unavailable"],
        },
    },
    EventFile {
        file: "inbound-no-backup.json",
        function: Function::SmsInbound,
        setup: Some(NO_BACKUP),
        outcome: Outcome::Forwarded {
            tier: "tertiary",
            phone: TERTIARY_PHONE,
            alerts: &["cascade", "dispatcher_unavailable"],
        },
    },
    EventFile {
        file: "inbound-rest.json",
        function: Function::SmsInbound,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::Forwarded {
            tier: "primary",
            phone: PRIMARY_PHONE,
            alerts: &[],
        },
    },
    EventFile {
        file: "status-delivered.json",
        function: Function::SmsInbound,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::StatusNothingToDo,
    },
    EventFile {
        file: "status-undelivered.json",
        function: Function::SmsInbound,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::StatusNothingToDo,
    },
    EventFile {
        file: "outbound-send.json",
        function: Function::SmsOutbound,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::OutboundSent,
    },
    EventFile {
        file: "outbound-expired-token.json",
        function: Function::SmsOutbound,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::Refused {
            status: 401,
            error: "token_expired",
        },
    },
    EventFile {
        file: "outbound-bad-request.json",
        function: Function::SmsOutbound,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::Refused {
            status: 400,
            error: "missing_field",
        },
    },
    EventFile {
        file: "outbound-alg-none.json",
        function: Function::SmsOutbound,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::Refused {
            status: 401,
            error: "wrong_algorithm",
        },
    },
    EventFile {
        file: "heartbeat-schedule.json",
        function: Function::DispatcherHeartbeat,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::HeartbeatSummary,
    },
    EventFile {
        file: "ack-timer-sqs.json",
        function: Function::AckTimeout,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::NoBatchItemFailures,
    },
    EventFile {
        file: "ack-timer-sqs-malformed.json",
        function: Function::AckTimeout,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::NoBatchItemFailures,
    },
    // On its own no driver's text came to the primary's phone: nothing to answer.
    // After inbound-primary-available.json it reaches that driver (its own test below).
    EventFile {
        file: "inbound-dispatcher-answer.json",
        function: Function::SmsInbound,
        setup: Some(PRIMARY_AVAILABLE),
        outcome: Outcome::AnswerRefused {
            refusal: "QDN relay: Not sent: no driver's text came to this phone",
            reason: "nobody_waiting",
        },
    },
];

/// One `#[tokio::test]` per file, and the list of files they run.
macro_rules! event_tests {
    ($($name:ident => $file:literal,)*) => {
        const TESTED: &[&str] = &[$($file),*];
        $(
            #[tokio::test]
            async fn $name() {
                run_and_check($file).await;
            }
        )*
    };
}

event_tests! {
    inbound_primary_available_goes_to_the_primary => "inbound-primary-available.json",
    inbound_primary_unavailable_goes_to_the_backup_with_a_cascade_alert => "inbound-primary-unavailable.json",
    inbound_no_backup_goes_to_the_tertiary => "inbound-no-backup.json",
    inbound_rest_is_forwarded_to_the_primary => "inbound-rest.json",
    status_delivered_answers_200 => "status-delivered.json",
    status_undelivered_answers_200 => "status-undelivered.json",
    outbound_send_is_accepted_sends_one_sms_and_replays_on_a_rerun => "outbound-send.json",
    outbound_expired_token_is_refused_with_401 => "outbound-expired-token.json",
    outbound_bad_request_is_refused_with_400_naming_job_ref => "outbound-bad-request.json",
    outbound_alg_none_is_refused_with_401 => "outbound-alg-none.json",
    heartbeat_schedule_returns_a_run_summary => "heartbeat-schedule.json",
    ack_timer_sqs_returns_no_batch_item_failures => "ack-timer-sqs.json",
    ack_timer_sqs_malformed_returns_no_batch_item_failures => "ack-timer-sqs-malformed.json",
    inbound_dispatcher_answer_with_nobody_waiting_is_refused_in_twiml => "inbound-dispatcher-answer.json",
}

fn repo_file(relative: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(relative)
}

fn read(relative: &str) -> String {
    let path = repo_file(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn event(file: &str) -> Value {
    let text = read(&format!("events/{file}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("events/{file}: {e}"))
}

fn manifest(file: &str) -> &'static EventFile {
    MANIFEST
        .iter()
        .find(|entry| entry.file == file)
        .unwrap_or_else(|| panic!("{file} is not in MANIFEST"))
}

/// events/env.json's section for `function`.
fn env_json(function: Function) -> Map<String, Value> {
    let env: Value = serde_json::from_str(&read("events/env.json")).expect("env.json is JSON");
    env[function.logical_id()]
        .as_object()
        .unwrap_or_else(|| panic!("env.json has no {} object", function.logical_id()))
        .clone()
}

/// The function's environment: env.json's section, with the values that name resources
/// or local endpoints replaced by this fixture's and sandbox's. Never a key env.json
/// lacks.
fn function_env(function: Function, aws: &AwsFixture, twilio: &Sandbox) -> Vec<(String, String)> {
    env_json(function)
        .into_iter()
        .map(|(key, value)| {
            let documented = value
                .as_str()
                .unwrap_or_else(|| panic!("env.json {key} is not a string: {value}"));
            let value = match key.as_str() {
                "AWS_ENDPOINT_URL" => aws.endpoint.clone(),
                "TWILIO_API_BASE" => twilio.base_url(),
                "STATE_TABLE" => aws.state_table.clone(),
                "MESSAGE_TABLE" => aws.message_table.clone(),
                "ALERT_TOPIC_ARN" => aws.topic_arn.clone(),
                "ACK_QUEUE_URL" => aws.ack_queue_url.clone(),
                "TWILIO_SECRET_ID" => aws.twilio_secret_id.clone(),
                "JWT_SECRET_ID" => aws.jwt_secret_id.clone(),
                _ => documented.to_owned(),
            };
            (key, value)
        })
        .collect()
}

/// Runs the built `qdn dispatchers put <args>` against the fixture's dispatcher table,
/// with only the variables it needs (no developer AWS configuration leaks in).
async fn qdn_dispatchers_put(aws: &AwsFixture, args: &str) {
    let nowhere = std::env::temp_dir().join("qdn-events-tests-no-aws-config");
    let mut command = tokio::process::Command::new(binary_path("qdn"));
    command.env_clear();
    for name in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
        .envs([
            ("AWS_ENDPOINT_URL", aws.endpoint.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("STATE_TABLE", aws.state_table.as_str()),
            ("MESSAGE_TABLE", aws.message_table.as_str()),
        ])
        .env("AWS_CONFIG_FILE", &nowhere)
        .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
        .args(["dispatchers", "put"])
        .args(args.split_whitespace());
    let out = command.output().await.expect("qdn runs");
    assert!(
        out.status.success(),
        "qdn dispatchers put {args}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A stack for `entry`: the fixture with the demo secrets, the table as the entry's
/// setup leaves it, a sandbox that knows only the demo account, and one process of the
/// entry's function with its env.json environment.
async fn start(entry: &EventFile) -> Stack {
    let prefix = format!("ev-{}", entry.file.trim_end_matches(".json"));
    let aws = AwsFixture::create(&prefix).await;
    aws.rotate_secret(&aws.twilio_secret_id, DEMO_TWILIO_SECRET)
        .await;
    aws.rotate_secret(&aws.jwt_secret_id, DEMO_JWT_KEY).await;
    if let Some(args) = entry.setup {
        qdn_dispatchers_put(&aws, args).await;
    }
    let twilio = Sandbox::start(SandboxConfig::single(DEMO_ACCOUNT_SID, DEMO_AUTH_TOKEN))
        .await
        .expect("twilio sandbox starts");
    let runtime = RuntimeApi::start().await;
    let env = function_env(entry.function, &aws, &twilio);
    let function = FunctionProcess::spawn(entry.function.binary(), &runtime, &env);
    Stack {
        aws,
        twilio,
        runtime,
        functions: vec![function],
    }
}

/// A non-HTTP function's answer; panics (with its logs) on an invocation error.
async fn invoke_raw(stack: &Stack, event: Value) -> Value {
    match stack.invoke_event(event).await {
        Invocation::Response(response) => response,
        Invocation::Error(error) => panic!(
            "invocation failed: {error}\nlogs:\n{}",
            stack.logs().join("\n")
        ),
    }
}

fn json_body(answer: &HttpAnswer) -> Value {
    assert_eq!(
        answer.headers.get("content-type").map(String::as_str),
        Some("application/json"),
        "{answer:?}"
    );
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{e}: {}", answer.body))
}

/// A form-encoded event body's parameters.
fn form(event: &Value) -> Vec<(String, String)> {
    serde_urlencoded::from_str(event["body"].as_str().expect("a body")).expect("a form body")
}

fn param(event: &Value, name: &str) -> String {
    form(event)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name} in {}", event["body"]))
        .1
}

/// What the function answers with everything right: runs `file` and checks the
/// outcome MANIFEST gives it.
async fn run_and_check(file: &str) {
    let entry = manifest(file);
    let stack = start(entry).await;
    let event = event(file);
    match entry.outcome {
        Outcome::Forwarded {
            tier,
            phone,
            alerts,
        } => check_forwarded(&stack, file, event, tier, phone, alerts).await,
        Outcome::StatusNothingToDo => check_status(&stack, file, event).await,
        Outcome::OutboundSent => check_outbound_sent(&stack, event).await,
        Outcome::Refused { status, error } => {
            let answer = stack.invoke(event).await;
            assert_eq!(answer.status, status, "{file}: {answer:?}");
            let body = json_body(&answer);
            assert_eq!(body["error"], error, "{file}: {body}");
            if file == "outbound-bad-request.json" {
                assert_eq!(body["field"], "job_ref", "{body}");
            }
            assert!(stack.sent().is_empty(), "{file}: {:?}", stack.sent());
        }
        Outcome::HeartbeatSummary => {
            let summary = invoke_raw(&stack, event).await;
            assert_eq!(summary["seen"], 1, "{summary}");
            assert_eq!(summary["available"], 1, "{summary}");
            assert_eq!(summary["changed"], 0, "{summary}");
            assert_eq!(summary["problems"], 0, "{summary}");
            assert_eq!(summary["failed"], 0, "{summary}");
            assert_eq!(summary["primary_available"], true, "{summary}");
            assert!(stack.aws.alerts().await.is_empty());
        }
        Outcome::NoBatchItemFailures => {
            let response = invoke_raw(&stack, event).await;
            assert_eq!(response, json!({"batchItemFailures": []}), "{file}");
            assert!(stack.sent().is_empty(), "{file}: {:?}", stack.sent());
            assert!(stack.aws.alerts().await.is_empty(), "{file}");
        }
        Outcome::AnswerRefused { refusal, reason } => {
            check_answer_refused(&stack, file, event, refusal, reason).await
        }
    }
    stack.stop().await;
}

/// A text sent through the demo Twilio account from the QDN number, starting `start`.
fn assert_sent_as_demo(file: &str, sent: &SentMessage, start: &str) {
    assert_eq!(sent.account_sid, DEMO_ACCOUNT_SID, "{file}");
    assert_eq!(sent.from.as_deref(), Some(DEMO_FROM_NUMBER), "{file}");
    assert!(sent.body.starts_with(start), "{file}: {}", sent.body);
}

/// A `200` TwiML answer.
fn assert_twiml(file: &str, answer: &HttpAnswer) {
    assert_eq!(answer.status, 200, "{file}: {answer:?}");
    assert!(
        answer
            .headers
            .get("content-type")
            .is_some_and(|t| t.starts_with("text/xml")),
        "{file}: {answer:?}"
    );
    assert!(answer.body.contains("<Response"), "{file}: {answer:?}");
}

/// The TwiML `<Message>` of a dispatcher's answer; panics unless `answer` is `200`
/// TwiML with one.
fn twiml_message<'a>(file: &str, answer: &'a HttpAnswer) -> &'a str {
    assert_twiml(file, answer);
    answer
        .body
        .strip_prefix("<Response><Message>")
        .and_then(|rest| rest.strip_suffix("</Message></Response>"))
        .unwrap_or_else(|| panic!("{file}: no TwiML <Message>: {}", answer.body))
}

/// A dispatcher's answer nobody is waiting for: refused in TwiML, counted, logged;
/// never relayed (it comes from a dispatcher's phone), nothing sent, no alert.
async fn check_answer_refused(
    stack: &Stack,
    file: &str,
    event: Value,
    refusal: &str,
    reason: &str,
) {
    assert_eq!(param(&event, "From"), PRIMARY_PHONE, "{file}");
    let sid = param(&event, "MessageSid");
    let answer = stack.invoke(event).await;
    let message = twiml_message(file, &answer);
    assert!(message.starts_with(refusal), "{file}: {message}");
    // events/README.md shows the whole TwiML answer (wrapped over lines there).
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words(&read("events/README.md")).contains(&format!("`{}`", words(&answer.body))),
        "{file}: events/README.md does not show its answer {}",
        answer.body
    );
    assert!(stack.sent().is_empty(), "{file}: {:?}", stack.sent());
    assert!(stack.aws.alerts().await.is_empty(), "{file}");
    // As template.yaml's dashboard reads it: {QDN/SmsRelay,Service,Reason}.
    let refused = stack.metric("AnswersRefused").await;
    relay_tests::assert_metric(&refused, "AnswersRefused", &[("Reason", reason)]);
    let item = stack.aws.message_log_item(&sid).await;
    assert_eq!(item["state"], "answered", "{item}");
}

/// `inbound-primary-available.json`, then `inbound-dispatcher-answer.json` (the primary
/// answering by text, with no reference): the answer reaches that file's driver, once,
/// stamped by `sergio-main`, and the primary's TwiML says so with the text's reference.
#[tokio::test]
async fn inbound_dispatcher_answer_after_the_primary_available_text_reaches_its_driver() {
    let stack = start(manifest("inbound-primary-available.json")).await;
    let relayed = stack.invoke(event("inbound-primary-available.json")).await;
    assert_eq!(relayed.status, 200, "{relayed:?}");
    let forwarded = stack.sent_to(PRIMARY_PHONE);
    assert_eq!(forwarded.len(), 1, "{:?}", stack.sent());
    let reference = relay_tests::stack::reference_of(&forwarded[0].body);

    let file = "inbound-dispatcher-answer.json";
    let event = event(file);
    let words = param(&event, "Body");
    let answer = stack.invoke(event.clone()).await;
    let message = twiml_message(file, &answer);
    assert_eq!(
        message,
        format!(
            "QDN relay: Sent to ***{} ({reference}).",
            &DRIVER[DRIVER.len() - 4..]
        ),
        "{file}"
    );
    let to_driver = stack.sent_to(DRIVER);
    assert_eq!(to_driver.len(), 1, "{:?}", stack.sent());
    assert_sent_as_demo(file, &to_driver[0], &format!("{words}\n-- sergio-main / "));
    assert_eq!(stack.sent().len(), 2, "{:?}", stack.sent());
    assert!(stack.aws.alerts().await.is_empty());

    // Twilio's redelivery (the same MessageSid): the same answer, nothing sent again.
    let again = stack.invoke(event).await;
    assert_eq!(twiml_message(file, &again), message, "{file}: {again:?}");
    assert_eq!(stack.sent().len(), 2, "{:?}", stack.sent());
    stack.stop().await;
}

async fn check_forwarded(
    stack: &Stack,
    file: &str,
    event: Value,
    tier: &str,
    phone: &str,
    alerts: &[&str],
) {
    let sid = param(&event, "MessageSid");
    let text = param(&event, "Body");
    let answer = stack.invoke(event).await;
    assert_twiml(file, &answer);

    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{file}: {sent:?}");
    assert_eq!(
        sent[0].to, phone,
        "{file}: forwarded to the {tier}? {sent:?}"
    );
    assert_sent_as_demo(file, &sent[0], &format!("QDN driver {DRIVER}: {text}"));

    let item = stack.aws.message_log_item(&sid).await;
    assert_eq!(item["state"], "forwarded", "{item}");
    assert_eq!(item["routing_decision"], tier, "{item}");

    let got = stack.aws.alerts().await;
    let mut kinds: Vec<&str> = got
        .iter()
        .map(|a| a.message["type"].as_str().unwrap_or_default())
        .collect();
    kinds.sort();
    assert_eq!(kinds, alerts, "{file}: {got:?}");
    for alert in got.iter().filter(|a| a.message["type"] == "cascade") {
        assert_eq!(alert.message["message_sid"], sid.as_str(), "{:?}", alert);
        assert_eq!(alert.message["routing_decision"], tier, "{:?}", alert);
        assert_eq!(alert.message["dispatcher_id"], "sergio-main", "{:?}", alert);
    }
}

/// A status callback for a forwarded SID the (fresh) message log does not hold:
/// `200`, logged as nothing to do; nothing sent, written or alerted.
async fn check_status(stack: &Stack, file: &str, event: Value) {
    assert_eq!(event["path"], "/api/v1/sms/status", "{file}");
    let sid = param(&event, "MessageSid");
    let answer = stack.invoke(event).await;
    assert_eq!(answer.status, 200, "{file}: {answer:?}");
    let line = stack.functions[0]
        .wait_for_log(
            |l| l.contains("status callback for a message we did not forward") && l.contains(&sid),
            Duration::from_secs(5),
        )
        .await;
    assert!(line.is_some(), "{file}: {}", stack.logs().join("\n"));
    assert!(stack.sent().is_empty(), "{file}: {:?}", stack.sent());
    assert!(stack.aws.message_log_items().await.is_empty(), "{file}");
    assert!(stack.aws.alerts().await.is_empty(), "{file}");
}

async fn check_outbound_sent(stack: &Stack, event: Value) {
    let answer = stack.invoke(event.clone()).await;
    assert_eq!(answer.status, 202, "{answer:?}");
    let body = json_body(&answer);
    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, DRIVER);
    assert_eq!(sent[0].account_sid, DEMO_ACCOUNT_SID);
    assert!(
        sent[0]
            .body
            .starts_with("Gate code is 4412\n-- Job JOB-1042 / sergio-main / "),
        "{}",
        sent[0].body
    );
    assert_eq!(body["message_sid"], sent[0].sid);
    assert_eq!(body["status"], "queued");
    assert_eq!(body["to"], DRIVER);
    assert_eq!(body["body"], sent[0].body);

    // Its Idempotency-Key (demo-0001): invoking the file again replays the first answer.
    let again = stack.invoke(event).await;
    assert_eq!(again.status, 202, "{again:?}");
    assert_eq!(json_body(&again), body);
    assert_eq!(
        again.headers.get("idempotent-replayed").map(String::as_str),
        Some("true"),
        "{again:?}"
    );
    assert_eq!(stack.sent().len(), 1, "{:?}", stack.sent());
}

/// Every `events/*.json` but env.json is in MANIFEST, and has its test above.
#[test]
fn every_event_file_is_in_the_manifest_and_has_a_test() {
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_file("events"))
        .expect("events/")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json") && name != "env.json")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = MANIFEST.iter().map(|e| e.file.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "events/ and MANIFEST differ");
    let mut tested: Vec<String> = TESTED.iter().map(|f| f.to_string()).collect();
    tested.sort();
    assert_eq!(listed, tested, "MANIFEST and the tests differ");
}

/// The signed events carry Twilio's signature with the demo auth token over the URL
/// the function rebuilds from them (`https://` Host, then the request context's path,
/// which keeps the stage), and each driver's text has its own MessageSid.
#[test]
fn signed_events_carry_the_demo_signature() {
    let resign = std::env::var_os("QDN_RESIGN_EVENTS").is_some();
    let mut drift = Vec::new();
    let mut sids = BTreeSet::new();
    for entry in MANIFEST
        .iter()
        .filter(|e| e.function == Function::SmsInbound)
    {
        let file = entry.file;
        let event = event(file);
        let host = event["headers"]["Host"].as_str().expect("a Host header");
        assert_eq!(event["requestContext"]["domainName"], host, "{file}");
        assert_eq!(event["headers"]["X-Forwarded-Proto"], "https", "{file}");
        assert_eq!(event["requestContext"]["stage"], "prod", "{file}");
        let path = event["path"].as_str().expect("a path");
        let context_path = event["requestContext"]["path"].as_str().expect("a path");
        assert_eq!(context_path, format!("/prod{path}"), "{file}");
        let url = format!("https://{host}{context_path}");
        let params = form(&event);
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let account = params.iter().find(|(k, _)| *k == "AccountSid").unwrap().1;
        assert_eq!(account, DEMO_ACCOUNT_SID, "{file}");
        if path == "/api/v1/sms/inbound" {
            let sid = params.iter().find(|(k, _)| *k == "MessageSid").unwrap().1;
            assert!(
                sids.insert(sid.to_owned()),
                "{file}: MessageSid {sid} is reused"
            );
        }

        let expected = relay_tests::twilio_signature(DEMO_AUTH_TOKEN, &url, &params);
        let header = event["headers"]["X-Twilio-Signature"].as_str().unwrap();
        let multi = event["multiValueHeaders"]["X-Twilio-Signature"]
            .as_array()
            .expect("multiValueHeaders X-Twilio-Signature");
        assert_eq!(multi, &[json!(header)], "{file}: the two headers differ");
        if header == expected {
            continue;
        }
        if resign {
            let path = repo_file(&format!("events/{file}"));
            let text = read(&format!("events/{file}"));
            let rewritten = text.replace(&format!("\"{header}\""), &format!("\"{expected}\""));
            std::fs::write(&path, rewritten).expect("rewrite the event");
            eprintln!("re-signed events/{file}: {expected}");
        } else {
            drift.push(format!(
                "{file}: has {header}, the demo signature over {url} is {expected}"
            ));
        }
    }
    assert!(
        drift.is_empty(),
        "signatures differ (QDN_RESIGN_EVENTS=1 rewrites them):\n{}",
        drift.join("\n")
    );
}

/// env.json has one section per function of template.yaml, each with exactly the
/// variables the template gives that function plus the local endpoints, the values the
/// template's parameter defaults give (for literals and `!Ref Parameter`), and local
/// endpoints only on this machine.
#[test]
fn env_json_holds_each_functions_template_variables_and_the_local_endpoints() {
    let env: Value = serde_json::from_str(&read("events/env.json")).expect("JSON");
    let sections: BTreeSet<&str> = env
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = Function::ALL.iter().map(|f| f.logical_id()).collect();
    assert_eq!(sections, expected);

    let template = Template::read();
    for function in Function::ALL {
        let id = function.logical_id();
        let section = env_json(function);
        let variables = template.variables(id);
        let mut want: BTreeSet<String> = variables.keys().cloned().collect();
        want.extend(function.local_only().iter().map(|k| k.to_string()));
        let got: BTreeSet<String> = section.keys().cloned().collect();
        assert_eq!(got, want, "env.json {id}: keys");
        for (key, value) in &section {
            let value = value
                .as_str()
                .unwrap_or_else(|| panic!("env.json {id} {key} is not a string"));
            match key.as_str() {
                "AWS_ENDPOINT_URL" => assert_eq!(value, "http://127.0.0.1:5000", "{id}"),
                "TWILIO_API_BASE" => assert_eq!(value, "http://127.0.0.1:4599", "{id}"),
                "ALERT_TOPIC_ARN" => assert_eq!(
                    value, "arn:aws:sns:us-east-1:123456789012:qdn-dispatch-alerts",
                    "{id}"
                ),
                "ACK_QUEUE_URL" => assert_eq!(
                    value, "http://127.0.0.1:5000/123456789012/qdn-ack-timers",
                    "{id}"
                ),
                // Empty: the signed URL is rebuilt from the request (the template's
                // default, which leaves the variable out).
                "PUBLIC_BASE_URL" => assert_eq!(value, "", "{id}"),
                _ => match template.resolve(&variables[key]) {
                    Some(default) => assert_eq!(value, default, "env.json {id} {key}"),
                    None => panic!("env.json {id} {key}: the template's value is not known"),
                },
            }
        }
    }
    let inbound = env_json(Function::SmsInbound);
    assert_eq!(inbound["STATE_TABLE"], "qdn-dispatcher-state");
    assert_eq!(inbound["MESSAGE_TABLE"], "qdn-message-log");
    assert_eq!(inbound["TWILIO_SECRET_ID"], "qdn/twilio");
    assert_eq!(inbound["PRIMARY_DISPATCHER_ID"], "sergio-main");
    assert_eq!(env_json(Function::SmsOutbound)["JWT_SECRET_ID"], "qdn/jwt");
}

/// events/README.md names every file, the demo credentials, the demo Twilio secret as
/// the tests store it, and each `qdn dispatchers put` command the tests run.
#[test]
fn the_events_readme_documents_each_file_setup_and_demo_credential() {
    let readme = read("events/README.md");
    for entry in MANIFEST {
        assert!(
            readme.contains(&format!("**`{}`**", entry.file)),
            "events/README.md does not describe {}",
            entry.file
        );
        assert!(readme.contains(entry.function.logical_id()));
        if let Some(args) = entry.setup {
            let command = format!("qdn dispatchers put {args}");
            assert!(readme.contains(&command), "missing `{command}`");
        }
    }
    for needle in [
        DEMO_AUTH_TOKEN,
        DEMO_JWT_KEY,
        DEMO_TWILIO_SECRET,
        "env.json",
    ] {
        assert!(readme.contains(needle), "events/README.md lacks {needle}");
    }
}

/// A signed file with one character of its signature changed: `403`, nothing sent,
/// nothing written, no alert.
#[tokio::test]
async fn a_tampered_signature_is_refused_with_403_and_nothing_sent() {
    let entry = manifest("inbound-primary-available.json");
    let stack = start(entry).await;
    let mut event = event(entry.file);
    let signature = event["headers"]["X-Twilio-Signature"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = signature.chars().next().unwrap();
    let flipped = format!(
        "{}{}",
        if first == 'A' { 'B' } else { 'A' },
        &signature[first.len_utf8()..]
    );
    event["headers"]["X-Twilio-Signature"] = json!(flipped);
    event["multiValueHeaders"]["X-Twilio-Signature"] = json!([flipped]);
    let answer = stack.invoke(event).await;
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(stack.sent().is_empty(), "{:?}", stack.sent());
    assert!(stack.aws.message_log_items().await.is_empty());
    assert!(stack.aws.alerts().await.is_empty());
    stack.stop().await;
}

/// The bearer token of an event's `Authorization` header.
fn bearer(event: &Value) -> &str {
    event["headers"]["Authorization"]
        .as_str()
        .and_then(|h| h.strip_prefix("Bearer "))
        .expect("a Bearer Authorization header")
}

/// The tokens are what `events/README.md` says: HS256 over the demo key for
/// `sergio-main`, `iat` 2026-11-24, `exp` 2100-01-01 (or the past, for the expired one),
/// and an unsigned `alg: none` forgery.
#[test]
fn the_event_tokens_are_the_documented_ones() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&B64URL.decode(part).expect("base64url")).expect("JSON")
    };
    for (file, alg, exp) in [
        ("outbound-send.json", "HS256", 4_102_444_800_i64),
        ("outbound-bad-request.json", "HS256", 4_102_444_800),
        ("outbound-expired-token.json", "HS256", 1_700_000_000),
        ("outbound-alg-none.json", "none", 4_102_444_800),
    ] {
        let event = event(file);
        let token = bearer(&event);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{file}: {token}");
        assert_eq!(decode(parts[0])["alg"], alg, "{file}");
        let claims = decode(parts[1]);
        assert_eq!(claims["sub"], "sergio-main", "{file}");
        assert_eq!(claims["exp"], exp, "{file}");
        assert_eq!(claims["iat"], 1_795_478_400, "{file}");
        let signature = B64URL.decode(parts[2]).expect("base64url");
        if alg == "none" {
            assert!(signature.is_empty(), "{file}");
        } else {
            let input = token.rsplit_once('.').unwrap().0;
            assert_eq!(
                signature,
                HmacBits::Sha256.mac(DEMO_JWT_KEY.as_bytes(), input.as_bytes()),
                "{file}: not signed with the demo key"
            );
        }
        assert_eq!(event["headers"]["Idempotency-Key"], "demo-0001", "{file}");
    }
    // Independently of the above: the relay_tests token maker agrees on the signature.
    let event = event("outbound-send.json");
    let token = bearer(&event);
    let (header, rest) = token.split_once('.').unwrap();
    let payload = rest.split_once('.').unwrap().0;
    let text = |part: &str| String::from_utf8(B64URL.decode(part).unwrap()).unwrap();
    assert_eq!(
        tokens::sign_parts(
            HmacBits::Sha256,
            &text(header),
            &text(payload),
            DEMO_JWT_KEY.as_bytes()
        ),
        token
    );
}

/// Just enough of template.yaml: each function's environment variables (the Globals'
/// and its own) and the parameters' defaults. Line-based, for this template's layout.
struct Template {
    lines: Vec<String>,
}

impl Template {
    fn read() -> Template {
        Template {
            lines: read("template.yaml").lines().map(str::to_owned).collect(),
        }
    }

    fn indent(line: &str) -> usize {
        line.len() - line.trim_start().len()
    }

    fn is_content(line: &str) -> bool {
        let trimmed = line.trim();
        !trimmed.is_empty() && !trimmed.starts_with('#')
    }

    /// The lines of the block opened by the line equal to `header`, up to the next
    /// content line indented no deeper than it.
    fn block(&self, header: &str) -> &[String] {
        let start = self
            .lines
            .iter()
            .position(|l| l.trim_end() == header)
            .unwrap_or_else(|| panic!("template.yaml has no line {header:?}"));
        let depth = Self::indent(header);
        let end = self.lines[start + 1..]
            .iter()
            .position(|l| Self::is_content(l) && Self::indent(l) <= depth)
            .map_or(self.lines.len(), |n| start + 1 + n);
        &self.lines[start + 1..end]
    }

    /// `NAME: value` under the first `Variables:` of `block`.
    fn variables_in(block: &[String]) -> BTreeMap<String, String> {
        let Some(start) = block.iter().position(|l| l.trim() == "Variables:") else {
            return BTreeMap::new();
        };
        let depth = Self::indent(&block[start]);
        block[start + 1..]
            .iter()
            .filter(|l| Self::is_content(l))
            .take_while(|l| Self::indent(l) > depth)
            .map(|l| {
                let (name, value) = l.trim().split_once(':').expect("NAME: value");
                (name.to_owned(), value.trim().to_owned())
            })
            .collect()
    }

    /// The Globals' variables overlaid with the function's own.
    fn variables(&self, logical_id: &str) -> BTreeMap<String, String> {
        let mut variables = Self::variables_in(self.block("Globals:"));
        variables.extend(Self::variables_in(self.block(&format!("  {logical_id}:"))));
        variables
    }

    /// A literal, or a `!Ref` to a parameter with a default: the value as deployed
    /// with the defaults. `None` for anything else (a resource, `!If`).
    fn resolve(&self, value: &str) -> Option<String> {
        let unquote = |v: &str| v.trim().trim_matches('"').to_owned();
        // `!If [AcknowledgementOn, X, !Ref AWS::NoValue]`: X, as the defaults (30 s,
        // acknowledgement on) deploy it.
        if let Some(on) = value
            .strip_prefix("!If [AcknowledgementOn, ")
            .and_then(|v| v.strip_suffix(", !Ref AWS::NoValue]"))
        {
            return self.resolve(on);
        }
        match value.strip_prefix("!Ref ") {
            None if value.starts_with('!') => None,
            None => Some(unquote(value)),
            Some(name) => {
                let parameter = self.block("Parameters:");
                let header = format!("  {name}:");
                let start = parameter.iter().position(|l| l.trim_end() == header)?;
                parameter[start + 1..]
                    .iter()
                    .take_while(|l| !Self::is_content(l) || Self::indent(l) > 2)
                    .find_map(|l| l.trim().strip_prefix("Default:").map(unquote))
            }
        }
    }
}
