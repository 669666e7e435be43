//! End-to-end: the built `qdn` operator CLI (`crates/qdn-cli`) against moto, with the
//! built functions beside it where a token or a trail must come from them. Each run
//! gets a cleared environment: only what the test passes, so a developer's AWS
//! configuration never leaks in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use relay_tests::moto::{TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_FROM_NUMBER};
use relay_tests::qdn::{env_for, qdn, qdn_with};
use relay_tests::stack::{BACKUP_PHONE, PRIMARY_PHONE, Stack, seed_dispatcher, unix_now};
use relay_tests::{AwsFixture, twilio_signature};
use serde_json::{Value, json};

const DRIVER: &str = "+16195550123";

async fn seeded(prefix: &str) -> AwsFixture {
    let aws = AwsFixture::create(prefix).await;
    aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    aws
}

#[tokio::test]
async fn list_and_show_normalise_numbers_and_flag_problems() {
    let aws = seeded("cli-list").await;
    aws.put_dispatcher(json!({
        "dispatcher_id": "maria-backup",
        "phone": "858-335-4807",
        "available": false,
        "last_heartbeat": unix_now() - 3 * 3600,
        "tertiary_contact": "555-01",
        "on_duty": false
    }))
    .await;

    let run = qdn(&aws, &["dispatchers", "list"]).await;
    let out = run.assert_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("HEARTBEAT"),
        "{out}"
    );
    // Sorted by ID, numbers normalised, ages as people say them.
    assert!(lines[1].starts_with("maria-backup"), "{out}");
    assert!(
        lines[1].contains(BACKUP_PHONE) && lines[1].contains("3h ago"),
        "{out}"
    );
    assert!(lines[1].contains("invalid \"555-01\""), "{out}");
    assert!(lines[2].starts_with("sergio-main"), "{out}");
    assert!(lines[2].contains(PRIMARY_PHONE), "{out}");
    assert!(
        lines[2].contains(BACKUP_PHONE),
        "the backup normalised: {out}"
    );
    assert!(
        lines[2].contains("+16195550199") && lines[2].contains("s ago"),
        "{out}"
    );
    assert!(
        out.contains("maria-backup: tertiary_contact does not normalise"),
        "{out}"
    );
    // The columns line up: every row starts its PHONE column where the header does.
    let phone_at = lines[0].find("PHONE").unwrap();
    assert_eq!(lines[1].find("+1858"), Some(phone_at), "{out}");
    assert_eq!(lines[2].find("+1858"), Some(phone_at), "{out}");

    let listed = qdn(&aws, &["--json", "dispatchers", "list"]).await;
    let doc = listed.json();
    let items = doc["dispatchers"].as_array().expect("an array of items");
    assert_eq!(items.len(), 2, "{doc}");
    assert_eq!(items[1]["dispatcher_id"], "sergio-main");
    assert_eq!(items[1]["primary"], true);
    assert_eq!(items[1]["backup_dispatcher"]["e164"], BACKUP_PHONE);
    assert_eq!(items[1]["backup_dispatcher"]["stored"], "858-335-4807");
    assert_eq!(items[0]["tertiary_contact"]["e164"], Value::Null);
    assert_eq!(items[0]["on_duty"], false);
    assert_eq!(items[0]["problems"].as_array().unwrap().len(), 1, "{doc}");

    let show = qdn(&aws, &["dispatchers", "show", "sergio-main"]).await;
    let out = show.assert_ok();
    assert!(out.contains("sergio-main (primary)"), "{out}");
    assert!(
        out.contains("+18583354807 (stored as \"858-335-4807\")"),
        "{out}"
    );
    assert!(
        out.contains("+16195550199 (stored as \"+1-619-555-0199\")"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("problems") && l.ends_with("none")),
        "{out}"
    );

    let show = qdn(&aws, &["dispatchers", "show", "maria-backup"]).await;
    let out = show.assert_ok();
    assert!(
        out.contains("invalid \"555-01\" (wrong number of digits)"),
        "{out}"
    );
    assert!(
        out.contains("PROBLEM: maria-backup: tertiary_contact does not normalise"),
        "{out}"
    );
    let doc = qdn(&aws, &["--json", "dispatchers", "show", "maria-backup"])
        .await
        .json();
    assert_eq!(doc["phone"]["e164"], BACKUP_PHONE);
    assert!(doc["heartbeat_age_secs"].as_i64().unwrap() >= 3 * 3600);

    let unknown = qdn(&aws, &["dispatchers", "show", "nobody"]).await;
    let line = unknown.assert_fails(1);
    assert!(line.contains("nobody"), "{line}");
    assert!(unknown.stdout.is_empty(), "{unknown:?}");
}

#[tokio::test]
async fn put_creates_an_item_and_then_updates_only_the_given_fields() {
    let aws = AwsFixture::create("cli-put").await;
    let before = unix_now();
    let run = qdn(
        &aws,
        &[
            "dispatchers",
            "put",
            "maria-backup",
            "--phone",
            "858-335-4807",
        ],
    )
    .await;
    let out = run.assert_ok();
    assert!(
        out.starts_with("created dispatcher item maria-backup"),
        "{out}"
    );
    assert!(out.contains(BACKUP_PHONE), "{out}");
    let item = aws.get_dispatcher("maria-backup").await.expect("created");
    assert_eq!(item["phone"], BACKUP_PHONE, "written normalised: {item}");
    assert_eq!(item["available"], true, "{item}");
    let heartbeat = item["last_heartbeat"].as_i64().expect("a heartbeat");
    assert!(heartbeat >= before && heartbeat <= unix_now(), "{item}");
    assert_eq!(
        item.as_object().unwrap().len(),
        4,
        "only what was given: {item}"
    );

    let full = qdn(
        &aws,
        &[
            "dispatchers",
            "put",
            "maria-backup",
            "--backup",
            "(619) 555-0100",
            "--tertiary",
            "+1-619-555-0199",
            "--ttl",
            "2d",
            "--on-duty",
            "false",
        ],
    )
    .await;
    assert!(
        full.assert_ok()
            .starts_with("updated dispatcher item maria-backup")
    );

    // A partial update: only the backup changes.
    let partial = qdn(
        &aws,
        &[
            "dispatchers",
            "put",
            "maria-backup",
            "--backup",
            "858.555.0111",
        ],
    )
    .await;
    let out = partial.assert_ok();
    assert!(
        out.contains("backup_dispatcher") && out.contains("+16195550100"),
        "{out}"
    );
    assert!(out.contains("+18585550111"), "{out}");
    assert!(
        !out.contains("tertiary_contact"),
        "only the given field: {out}"
    );
    let item = aws.get_dispatcher("maria-backup").await.unwrap();
    assert_eq!(
        item,
        json!({
            "dispatcher_id": "maria-backup",
            "phone": BACKUP_PHONE,
            "available": true,
            "last_heartbeat": heartbeat,
            "backup_dispatcher": "+18585550111",
            "tertiary_contact": "+16195550199",
            "message_log_ttl": 172800,
            "on_duty": false
        })
    );

    let doc = qdn(
        &aws,
        &[
            "--json",
            "dispatchers",
            "put",
            "maria-backup",
            "--on-duty",
            "true",
        ],
    )
    .await
    .json();
    assert_eq!(
        doc,
        json!({"dispatcher_id": "maria-backup", "outcome": "updated", "set": {"on_duty": true}})
    );

    // A new item needs --phone: nothing is written without it.
    let refused = qdn(
        &aws,
        &["dispatchers", "put", "new-one", "--backup", "858-335-4807"],
    )
    .await;
    assert!(refused.assert_fails(2).contains("--phone"), "{refused:?}");
    assert!(aws.get_dispatcher("new-one").await.is_none());
}

#[tokio::test]
async fn put_with_an_unusable_number_writes_nothing_and_names_the_flag() {
    let aws = seeded("cli-put-bad").await;
    let before = aws.get_dispatcher("sergio-main").await.unwrap();

    let run = qdn(
        &aws,
        &[
            "dispatchers",
            "put",
            "sergio-main",
            "--phone",
            "858-335-4807",
            "--backup",
            "555-01",
        ],
    )
    .await;
    let line = run.assert_fails(2);
    assert!(line.starts_with("qdn: --backup: "), "{line}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert_eq!(
        aws.get_dispatcher("sergio-main").await.unwrap(),
        before,
        "nothing written"
    );

    let run = qdn(
        &aws,
        &["dispatchers", "put", "sergio-main", "--tertiary", "call me"],
    )
    .await;
    assert!(
        run.assert_fails(2).starts_with("qdn: --tertiary: "),
        "{run:?}"
    );
    let run = qdn(
        &aws,
        &["dispatchers", "put", "fresh", "--phone", "1-800-FLOWERS"],
    )
    .await;
    assert!(run.assert_fails(2).starts_with("qdn: --phone: "), "{run:?}");
    let run = qdn(&aws, &["dispatchers", "put", "sergio-main", "--ttl", "0"]).await;
    assert!(run.assert_fails(2).starts_with("qdn: --ttl: "), "{run:?}");
    assert_eq!(
        aws.get_dispatcher("sergio-main").await.unwrap(),
        before,
        "nothing written"
    );
    assert!(aws.get_dispatcher("fresh").await.is_none());
}

#[tokio::test]
async fn check_is_clean_on_the_seed_and_finds_what_the_heartbeat_would() {
    let aws = seeded("cli-check").await;
    let clean = qdn(&aws, &["dispatchers", "check"]).await;
    assert!(clean.assert_ok().starts_with("no problems"), "{clean:?}");

    let mut broken = seed_dispatcher(unix_now());
    broken["backup_dispatcher"] = json!("555-01");
    broken["message_log_ttl"] = json!(0);
    aws.put_dispatcher(broken).await;
    let found = qdn(&aws, &["dispatchers", "check"]).await;
    assert_eq!(found.status, 1, "{found:?}");
    assert!(found.stderr.is_empty(), "{found:?}");
    assert!(
        found.stdout.contains(
            "PROBLEM: sergio-main: backup_dispatcher does not normalise (wrong number of digits)"
        ),
        "{found:?}"
    );
    assert!(
        found
            .stdout
            .contains("PROBLEM: sergio-main: message_log_ttl: expected whole seconds from 1 to 31622400 (366 days), found 0\n"),
        "{found:?}"
    );

    // The primary item is missing when the primary is someone else.
    aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let run = qdn(
        &aws,
        &[
            "dispatchers",
            "check",
            "--primary-dispatcher-id",
            "ana-main",
        ],
    )
    .await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("ana-main: the primary dispatcher item is missing"),
        "{run:?}"
    );
    let doc = qdn(
        &aws,
        &[
            "--json",
            "dispatchers",
            "check",
            "--primary-dispatcher-id",
            "ana-main",
        ],
    )
    .await
    .json();
    assert_eq!(
        doc["problems"],
        json!([{
            "dispatcher_id": "ana-main",
            "attribute": null,
            "kind": "primary_missing",
            "key": "ana-main/item/primary_missing",
            "problem": "ana-main: the primary dispatcher item is missing",
        }])
    );
    assert_eq!(doc["checked"], 1);

    // A damaged attribute is named, and the item still counts: never "missing".
    aws.put_dispatcher(
        json!({"dispatcher_id": "garbled", "phone": "+18585550111", "available": "yes"}),
    )
    .await;
    let run = qdn(
        &aws,
        &["dispatchers", "check", "--primary-dispatcher-id", "garbled"],
    )
    .await;
    assert_eq!(run.status, 1, "{run:?}");
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("PROBLEM: "))
            .collect::<Vec<_>>(),
        vec!["PROBLEM: garbled: available: expected a boolean, found a string"],
        "{run:?}"
    );
    assert!(!run.stdout.contains("missing"), "{run:?}");
}

#[tokio::test]
async fn a_token_from_qdn_is_accepted_by_sms_outbound() {
    let stack = Stack::start_function("sms-outbound", "cli-token", 1, &[]).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;

    let run = qdn(&stack.aws, &["token", "sergio-main", "--ttl", "1h"]).await;
    let token = run.assert_ok().trim().to_string();
    assert_eq!(run.stdout, format!("{token}\n"), "the token alone: {run:?}");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let body = json!({"to": DRIVER, "body": "Gate code is 4412", "job_ref": "JOB-1042"});
    let answer = stack
        .invoke(stack.outbound_event(Some(&token), &body.to_string(), None))
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(stack.sent().len(), 1);

    let now = unix_now();
    let doc = qdn(&stack.aws, &["--json", "token", "sergio-main"])
        .await
        .json();
    assert_eq!(doc["sub"], "sergio-main");
    let exp = doc["exp"].as_i64().unwrap();
    assert!(
        (exp - (now + 12 * 3600)).abs() <= 5,
        "12h by default: {doc}"
    );
    let answer = stack
        .invoke(stack.outbound_event(doc["token"].as_str(), &body.to_string(), None))
        .await;
    assert_eq!(answer.status, 202, "{answer:?}");

    let unknown = qdn(&stack.aws, &["token", "nobody"]).await;
    assert!(unknown.assert_fails(1).contains("nobody"), "{unknown:?}");
    assert!(unknown.stdout.is_empty());
    let bad_ttl = qdn(&stack.aws, &["token", "sergio-main", "--ttl", "12 parsecs"]).await;
    assert!(
        bad_ttl.assert_fails(2).starts_with("qdn: --ttl: "),
        "{bad_ttl:?}"
    );
    stack.stop().await;
}

#[tokio::test]
async fn trail_tells_what_became_of_a_message_from_either_sid() {
    let stack = Stack::start("cli-trail").await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let (sid, answer) = stack.text_from(DRIVER, "Truck 12 at the gate").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let forwarded = stack.sent()[0].sid.clone();

    for asked in [&sid, &forwarded] {
        let run = qdn(&stack.aws, &["trail", asked]).await;
        let out = run.assert_ok();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with(&format!("{sid} (inbound, forwarded)")),
            "{out}"
        );
        assert!(lines[1].starts_with("TIME (UTC)"), "{out}");
        assert!(lines[2].contains("received"), "oldest first: {out}");
        assert!(
            out.contains("forwarded") && out.contains("primary"),
            "{out}"
        );
        assert!(out.contains(&forwarded), "{out}");
        // ISO 8601 UTC times.
        let time = lines[2].split_whitespace().next().unwrap();
        assert!(
            time.ends_with('Z') && time.parse::<jiff::Timestamp>().is_ok(),
            "{out}"
        );
        assert!(
            !out.contains("6195550123"),
            "the driver's number is masked: {out}"
        );
    }

    let doc = qdn(&stack.aws, &["--json", "trail", &forwarded])
        .await
        .json();
    assert_eq!(doc["message_sid"], sid.as_str());
    assert_eq!(doc["state"], "forwarded");
    let events: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events[0], "received", "{doc}");
    assert!(events.contains(&"forwarded"), "{doc}");

    let unknown = qdn(&stack.aws, &["trail", "SM00000000000000000000000000000000"]).await;
    unknown.assert_fails(1);
    assert!(unknown.stdout.is_empty());
    stack.stop().await;
}

/// What the test's webhook listener received.
#[derive(Default)]
struct Received {
    requests: Vec<(HashMap<String, String>, bool)>,
}

type Shared = Arc<Mutex<Received>>;

/// A webhook that checks `X-Twilio-Signature` as Twilio's helper libraries do
/// (`relay_tests::twilio_signature`, written independently of the relay) over
/// `url`, and answers `200 <Response/>`, or `403` when it does not verify.
async fn webhook_listener() -> (String, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{base}/prod/api/v1/sms/inbound");
    let shared: Shared = Arc::default();
    let handler = {
        let url = url.clone();
        move |State(shared): State<Shared>, headers: HeaderMap, body: String| {
            let url = url.clone();
            async move {
                let params: Vec<(String, String)> =
                    serde_urlencoded::from_str(&body).expect("a form body");
                let pairs: Vec<(&str, &str)> = params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let expected = twilio_signature(TEST_AUTH_TOKEN, &url, &pairs);
                let given = headers
                    .get("x-twilio-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let valid = given == expected
                    && headers.get("content-type").and_then(|v| v.to_str().ok())
                        == Some("application/x-www-form-urlencoded");
                shared
                    .lock()
                    .unwrap()
                    .requests
                    .push((params.into_iter().collect(), valid));
                if valid {
                    (
                        StatusCode::OK,
                        [("content-type", "text/xml")],
                        "<Response/>",
                    )
                } else {
                    (
                        StatusCode::FORBIDDEN,
                        [("content-type", "text/plain")],
                        "bad signature",
                    )
                }
            }
        }
    };
    let app = axum::Router::new()
        .route("/prod/api/v1/sms/inbound", post(handler.clone()))
        .route("/prod/api/v1/sms/other", post(handler))
        .with_state(shared.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, shared)
}

#[tokio::test]
async fn webhook_posts_a_form_signed_as_twilio_signs_it() {
    let aws = AwsFixture::create("cli-webhook").await;
    let (url, received) = webhook_listener().await;

    let run = qdn(
        &aws,
        &[
            "webhook",
            "--url",
            &url,
            "--from",
            "619-555-0123",
            "--body",
            "Truck 12 at the gate",
        ],
    )
    .await;
    let out = run.assert_ok();
    assert!(
        out.contains("200 OK") && out.trim_end().ends_with("<Response/>"),
        "{out}"
    );
    let requests = std::mem::take(&mut received.lock().unwrap().requests);
    assert_eq!(requests.len(), 1);
    let (params, valid) = &requests[0];
    assert!(valid, "the signature verifies: {params:?}");
    assert_eq!(params["From"], DRIVER);
    assert_eq!(params["To"], TEST_FROM_NUMBER);
    assert_eq!(params["AccountSid"], TEST_ACCOUNT_SID);
    assert_eq!(params["Body"], "Truck 12 at the gate");
    assert_eq!(params["NumMedia"], "0");
    assert_eq!(params["SmsStatus"], "received");
    assert_eq!(params["ApiVersion"], "2010-04-01");
    let sid = &params["MessageSid"];
    assert!(relay_core::ids::MessageSid::parse(sid).is_ok(), "{sid}");
    assert_eq!(&params["SmsSid"], sid);
    assert_eq!(&params["SmsMessageSid"], sid);
    assert!(
        out.contains(sid.as_str()),
        "the SID is printed for `qdn trail`: {out}"
    );

    let doc = qdn(
        &aws,
        &[
            "--json", "webhook", "--url", &url, "--from", DRIVER, "--body", "hi",
        ],
    )
    .await
    .json();
    assert_eq!(doc["status"], 200);
    assert_eq!(doc["body"], "<Response/>");

    // Signed over one URL, posted to another: the listener refuses it, exit 1.
    let other = url.replace("/inbound", "/other");
    let refused = qdn(
        &aws,
        &["webhook", "--url", &other, "--from", DRIVER, "--body", "hi"],
    )
    .await;
    assert_eq!(refused.status, 1, "{refused:?}");
    assert!(refused.stdout.contains("403"), "{refused:?}");

    // Nothing listening: exit 2, one line.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/api/v1/sms/inbound");
    let run = qdn(
        &aws,
        &["webhook", "--url", &url, "--from", DRIVER, "--body", "hi"],
    )
    .await;
    assert!(run.assert_fails(2).contains("could not reach"), "{run:?}");

    let run = qdn(
        &aws,
        &["webhook", "--url", &url, "--from", "555-01", "--body", "hi"],
    )
    .await;
    assert!(run.assert_fails(2).starts_with("qdn: --from: "), "{run:?}");
}

#[tokio::test]
async fn a_failed_aws_call_is_one_line_and_exit_2() {
    let aws = seeded("cli-missing").await;
    for args in [
        &["--state-table", "no-such-table", "dispatchers", "list"][..],
        &["--state-table", "no-such-table", "dispatchers", "check"],
        &[
            "dispatchers",
            "show",
            "sergio-main",
            "--state-table",
            "no-such-table",
        ],
        &[
            "dispatchers",
            "put",
            "x",
            "--phone",
            DRIVER,
            "--state-table",
            "no-such-table",
        ],
        &[
            "trail",
            "SM00000000000000000000000000000000",
            "--message-table",
            "no-such-table",
        ],
        &["token", "sergio-main", "--jwt-secret-id", "no-such-secret"],
    ] {
        let run = qdn(&aws, args).await;
        let line = run.assert_fails(2);
        assert!(line.contains("no-such-"), "names what failed: {line}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    // The variables are read when no flag is given.
    let mut env = env_for(&aws);
    env.retain(|(k, _)| k != "STATE_TABLE");
    env.push(("STATE_TABLE".into(), "no-such-table".into()));
    qdn_with(&env, &["dispatchers", "list"])
        .await
        .assert_fails(2);
}

#[tokio::test]
async fn bad_usage_exits_2() {
    let aws = AwsFixture::create("cli-usage").await;
    for args in [
        &["dispatchers", "frobnicate"][..],
        &["frobnicate"],
        &["dispatchers"],
        &[],
        &["dispatchers", "put", "x", "--on-duty", "maybe"],
        &["webhook", "--url", "http://127.0.0.1:9/"],
        &["dispatchers", "put", "sergio-main"],
        &["--default-country-code", "x", "dispatchers", "list"],
    ] {
        let run = qdn(&aws, args).await;
        run.assert_fails(2);
    }
    let help = qdn(&aws, &["dispatchers", "put", "--help"]).await;
    assert!(help.assert_ok().contains("Examples:"), "{help:?}");
}

/// The commands as an operator runs them in turn on a seeded stack (run with
/// `QDN_TEST_ECHO_LOGS=1 -- --nocapture` to see what each prints).
#[tokio::test]
async fn an_operator_session_on_a_seeded_stack() {
    let stack = Stack::start("cli-session").await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    let (sid, answer) = stack.text_from(DRIVER, "Truck 12 at the gate").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let (url, received) = webhook_listener().await;
    let aws = &stack.aws;

    qdn(aws, &["dispatchers", "list"]).await.assert_ok();
    qdn(aws, &["dispatchers", "show", "sergio-main"])
        .await
        .assert_ok();
    let put = qdn(
        aws,
        &[
            "dispatchers",
            "put",
            "maria-backup",
            "--phone",
            "858-335-4807",
        ],
    )
    .await;
    assert!(put.assert_ok().starts_with("created"), "{put:?}");
    let list = qdn(aws, &["dispatchers", "list"]).await;
    assert_eq!(list.assert_ok().lines().count(), 3, "{list:?}");
    qdn(aws, &["dispatchers", "check"]).await.assert_ok();
    qdn(aws, &["token", "sergio-main", "--ttl", "1h"])
        .await
        .assert_ok();
    let trail = qdn(aws, &["trail", &sid]).await;
    assert!(trail.assert_ok().contains("forwarded"), "{trail:?}");
    let webhook = qdn(
        aws,
        &[
            "webhook",
            "--url",
            &url,
            "--from",
            "619-555-0123",
            "--body",
            "Truck 12 at the gate",
        ],
    )
    .await;
    assert!(webhook.assert_ok().contains("<Response/>"), "{webhook:?}");
    assert!(
        received.lock().unwrap().requests[0].1,
        "the signature verified"
    );
    stack.stop().await;
}

#[tokio::test]
async fn show_and_list_name_each_damaged_attribute_and_use_its_safe_value() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let aws = seeded("cli-damaged").await;
    aws.put_dispatcher_with(
        seed_dispatcher(unix_now()),
        &[
            ("on_duty", AttributeValue::S("yes".into())),
            ("message_log_ttl", AttributeValue::N("-5".into())),
            ("backup_dispatcher", AttributeValue::N("8583354807".into())),
        ],
    )
    .await;

    let show = qdn(&aws, &["dispatchers", "show", "sergio-main"]).await;
    let out = show.assert_ok();
    let problems: Vec<&str> = out.lines().filter(|l| l.starts_with("PROBLEM: ")).collect();
    assert_eq!(
        problems,
        vec![
            "PROBLEM: sergio-main: backup_dispatcher: expected a string, found a number (read as its digits)",
            "PROBLEM: sergio-main: on_duty: expected a boolean, found a string",
            "PROBLEM: sergio-main: message_log_ttl: expected whole seconds from 1 to 31622400 (366 days), found -5",
        ],
        "{out}"
    );
    assert!(
        out.contains("+18583354807 (stored as \"8583354807\")"),
        "{out}"
    );
    assert!(out.contains("unusable, so 86400"), "{out}");
    let list = qdn(&aws, &["--json", "dispatchers", "list"]).await.json();
    let item = &list["dispatchers"][0];
    assert_eq!(item["on_duty"], false, "{item}");
    let attributes: Vec<&str> = item["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["attribute"].as_str().unwrap())
        .collect();
    assert_eq!(
        attributes,
        vec!["backup_dispatcher", "on_duty", "message_log_ttl"]
    );
    let check = qdn(&aws, &["dispatchers", "check"]).await;
    assert_eq!(check.status, 1, "{check:?}");
    assert!(!check.stdout.contains("missing"), "{check:?}");
}
