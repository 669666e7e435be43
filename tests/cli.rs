//! End-to-end: the built `qdn` operator CLI (`crates/qdn-cli`) against moto, with the
//! built functions beside it where a token or a trail must come from them. Each run
//! gets a cleared environment: only what the test passes, so a developer's AWS
//! configuration never leaks in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use relay_core::rota::Rota;
use relay_tests::moto::{TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TEST_FROM_NUMBER};
use relay_tests::qdn::{env_for, qdn, qdn_fed, qdn_with};
use relay_tests::rota::{override_line, shift_began_minutes_ago};
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
    assert!(
        out.contains("sergio-main (primary now: PRIMARY_DISPATCHER_ID, as there is no rota)"),
        "{out}"
    );
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
        &["--state-table", "no-such-table", "who"],
        &["--state-table", "no-such-table", "rota", "show"],
        &[
            "--state-table",
            "no-such-table",
            "rota",
            "override",
            "sergio-main",
            "--to",
            "+1h",
        ],
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
        &["rota"],
        &["rota", "set"],
        &["rota", "override", "sergio-main"],
        &["who", "sergio-main"],
    ] {
        let run = qdn(&aws, args).await;
        run.assert_fails(2);
    }
    let help = qdn(&aws, &["dispatchers", "put", "--help"]).await;
    assert!(help.assert_ok().contains("Examples:"), "{help:?}");
    let help = qdn(&aws, &["rota", "set", "--help"]).await;
    assert!(
        help.assert_ok().contains("The file replaces everything"),
        "{help:?}"
    );
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
    qdn(aws, &["who"]).await.assert_ok();
    qdn(aws, &["rota", "show"]).await.assert_ok();
    let (rota, _) = shift_began_minutes_ago("Asia/Kolkata", "sergio-main", "maria-backup", 1, 8);
    let set = qdn(aws, &["rota", "set", &rota_file(aws, "session", &rota)]).await;
    assert!(set.assert_ok().contains("primary now"), "{set:?}");
    qdn(aws, &["rota", "show"]).await.assert_ok();
    let over = qdn(
        aws,
        &[
            "rota",
            "override",
            "maria-backup",
            "--from",
            "now",
            "--to",
            "+1h",
        ],
    )
    .await;
    assert!(
        over.assert_ok()
            .contains("primary now  maria-backup (override)"),
        "{over:?}"
    );
    qdn(aws, &["who"]).await.assert_ok();
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

/// A second dispatcher beside the seed's, available with a fresh heartbeat.
fn night_desk(now: i64) -> Value {
    json!({
        "dispatcher_id": "ana-night",
        "phone": "+18585550111",
        "available": true,
        "last_heartbeat": now - 30,
        "on_duty": true
    })
}

/// The seed's dispatcher and `ana-night`.
async fn two_dispatchers(prefix: &str) -> AwsFixture {
    let aws = seeded(prefix).await;
    aws.put_dispatcher(night_desk(unix_now())).await;
    aws
}

/// Writes `text` to a file of this test's own (named after its tables) and returns
/// its path, for `qdn rota set`.
fn rota_file(aws: &AwsFixture, name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join("qdn-cli-tests");
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let path = dir.join(format!("{}-{name}.txt", aws.state_table));
    std::fs::write(&path, text).expect("the rota file is written");
    path.to_string_lossy().into_owned()
}

/// The rota item's text as stored, if there is one.
async fn stored_rota(aws: &AwsFixture) -> Option<String> {
    aws.get_dispatcher("#rota")
        .await
        .map(|item| item["rota"].as_str().expect("a text").to_string())
}

#[tokio::test]
async fn rota_set_then_show_round_trips_and_who_names_the_shift_and_the_next() {
    let aws = two_dispatchers("cli-rota").await;
    let now = unix_now();
    // sergio-main's daily shift began a minute ago in Kolkata and lasts 8 hours;
    // ana-night has the other 16. An override to come, and one long over.
    let (shifts, ends_at) =
        shift_began_minutes_ago("Asia/Kolkata", "sergio-main", "ana-night", 1, 8);
    let future = override_line("ana-night", now + 2 * 86_400, now + 2 * 86_400 + 3_600);
    let past = override_line("ana-night", now - 2 * 86_400, now - 86_400);
    let file = rota_file(&aws, "good", &format!("{shifts}{future}{past}"));

    let set = qdn(&aws, &["rota", "set", &file]).await;
    let out = set.assert_ok();
    assert!(
        out.starts_with(&format!(
            "rota of {} replaced from {file}: zone Asia/Kolkata, 2 shift(s), 1 override(s)",
            aws.state_table
        )),
        "{out}"
    );
    assert!(
        out.contains("primary now  sergio-main (shift daily "),
        "{out}"
    );
    let warnings: Vec<&str> = set.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{set:?}");
    assert!(
        warnings[0].starts_with(&format!(
            "qdn: warning: {file} line 6: the override for ana-night ended "
        )) && warnings[0].ends_with(": not kept"),
        "{set:?}"
    );

    // What is stored is the canonical text: no comment, no override already over.
    let item = aws.get_dispatcher("#rota").await.expect("the rota item");
    let stored = item["rota"].as_str().unwrap().to_string();
    let rota = Rota::parse(&stored).expect("the stored rota parses");
    assert_eq!(stored, rota.render(), "canonical");
    assert!(!stored.contains('#'), "{stored}");
    assert_eq!(rota.shifts.len(), 2, "{stored}");
    assert_eq!(rota.overrides.len(), 1, "{stored}");
    assert_eq!(rota.overrides[0].from, now + 2 * 86_400);
    let updated_at = item["updated_at"].as_i64().expect("updated_at");
    assert!(updated_at >= now && updated_at <= unix_now(), "{item}");

    // `show` prints it back, under one comment line; its output is a rota file.
    let show = qdn(&aws, &["rota", "show"]).await;
    let out = show.assert_ok();
    let (header, body) = out.split_once('\n').unwrap();
    assert!(
        header.starts_with(&format!(
            "# the rota of {}, zone Asia/Kolkata: written ",
            aws.state_table
        )),
        "{out}"
    );
    assert_eq!(body, stored, "{out}");
    let again = rota_file(&aws, "shown", out);
    qdn(&aws, &["rota", "set", &again]).await.assert_ok();
    assert_eq!(stored_rota(&aws).await.unwrap(), stored, "a round trip");

    let doc = qdn(&aws, &["--json", "rota", "show"]).await.json();
    assert_eq!(doc["zone"], "Asia/Kolkata");
    assert_eq!(doc["text"], stored.as_str());
    assert_eq!(doc["rota"], "stored");
    assert_eq!(doc["past_overrides"], 0);
    assert_eq!(doc["problems"], json!([]));
    assert!(doc["updated_at"].as_i64().unwrap() >= updated_at, "{doc}");
    let shifts = doc["shifts"].as_array().unwrap();
    assert_eq!(shifts.len(), 2, "{doc}");
    assert_eq!(shifts[0]["days"], "daily");
    assert_eq!(shifts[0]["dispatcher"], "sergio-main");
    assert_eq!(
        format!(
            "daily {}-{} sergio-main",
            shifts[0]["from"].as_str().unwrap(),
            shifts[0]["to"].as_str().unwrap()
        ),
        rota.shifts[0].to_string()
    );
    assert_eq!(shifts[1]["dispatcher"], "ana-night");
    let overrides = doc["overrides"].as_array().unwrap();
    assert_eq!(overrides.len(), 1, "{doc}");
    assert_eq!(overrides[0]["dispatcher"], "ana-night");
    let from = overrides[0]["from"].as_str().unwrap();
    assert!(from.ends_with("+05:30"), "RFC 3339 in the zone: {doc}");
    assert_eq!(
        from.parse::<jiff::Timestamp>().unwrap().as_second(),
        now + 2 * 86_400
    );

    // `who`: sergio-main by the shift until it ends, then ana-night for 16 hours;
    // the times on the rota's wall clock.
    let who = qdn(&aws, &["who"]).await;
    let out = who.assert_ok();
    let shift = &rota.shifts[0];
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(
        rows[0],
        format!(
            "primary now  sergio-main (shift daily {}-{})",
            shift.from, shift.to
        ),
        "{out}"
    );
    assert!(rows[1].starts_with("since        "), "{out}");
    assert!(
        rows[2].starts_with(&format!("until        {} (in ", rota.wall_clock(ends_at))),
        "{out}"
    );
    assert!(rota.wall_clock(ends_at).ends_with(" IST"), "{out}");
    let other = &rota.shifts[1];
    assert_eq!(
        rows[3],
        format!(
            "next         ana-night (shift daily {}-{}), until {}",
            other.from,
            other.to,
            rota.wall_clock(ends_at + 16 * 3_600)
        ),
        "{out}"
    );
    assert_eq!(rows[4], "times in     Asia/Kolkata", "{out}");
    assert_eq!(rows.len(), 5, "no notes: {out}");

    let doc = qdn(&aws, &["--json", "who"]).await.json();
    assert_eq!(doc["zone"], "Asia/Kolkata");
    assert_eq!(doc["now"]["dispatcher"], "sergio-main");
    assert_eq!(doc["now"]["source"], "shift");
    assert_eq!(doc["now"]["available"], true);
    assert_eq!(doc["now"]["until_unix"], ends_at);
    assert_eq!(doc["now"]["since_unix"], ends_at - 8 * 3_600);
    let until = doc["now"]["until"].as_str().unwrap();
    assert!(until.ends_with("+05:30"), "{doc}");
    assert_eq!(
        until.parse::<jiff::Timestamp>().unwrap().as_second(),
        ends_at
    );
    assert_eq!(doc["next"]["dispatcher"], "ana-night");
    assert_eq!(doc["next"]["source"], "shift");
    assert_eq!(doc["next"]["since_unix"], ends_at);
    assert_eq!(doc["next"]["until_unix"], ends_at + 16 * 3_600);

    // The dispatcher commands say who is primary now by the rota.
    let doc = qdn(&aws, &["--json", "dispatchers", "list"]).await.json();
    assert_eq!(
        doc["primary_now"],
        json!({"dispatcher": "sergio-main", "source": "shift"})
    );
    let primary: Vec<(&str, bool)> = doc["dispatchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["dispatcher_id"].as_str().unwrap(),
                d["primary"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(primary, vec![("ana-night", false), ("sergio-main", true)]);
    let list = qdn(&aws, &["dispatchers", "list"]).await;
    let out = list.assert_ok();
    assert!(out.lines().nth(2).unwrap().contains("yes (shift)"), "{out}");
    let show = qdn(&aws, &["dispatchers", "show", "ana-night"]).await;
    assert!(
        show.assert_ok()
            .contains("ana-night (not primary now: sergio-main is)"),
        "{show:?}"
    );
    let check = qdn(&aws, &["dispatchers", "check"]).await;
    let out = check.assert_ok();
    assert!(
        out.starts_with("no problems: 2 dispatcher item(s) and the rota (Asia/Kolkata, 2 shift(s), 1 override(s) to come)")
            && out.trim_end().ends_with("primary now sergio-main (shift)"),
        "{out}"
    );

    // `-` reads the rota from stdin.
    let (swapped, _) = shift_began_minutes_ago("Asia/Kolkata", "ana-night", "sergio-main", 1, 8);
    let fed = qdn_fed(&aws, &["rota", "set", "-"], &swapped).await;
    assert!(
        fed.assert_ok()
            .contains("primary now  ana-night (shift daily "),
        "{fed:?}"
    );
    assert_eq!(
        stored_rota(&aws).await.unwrap(),
        Rota::parse(&swapped).unwrap().render()
    );
}

#[tokio::test]
async fn a_bad_rota_file_is_refused_naming_the_line_and_nothing_is_written() {
    let aws = two_dispatchers("cli-rota-bad").await;
    // With no rota stored, a refused file leaves none.
    let file = rota_file(
        &aws,
        "typo",
        "zone Asia/Kolkata\ndaily 09:00-17:00 sergio-main\nmon-fri 9am-5pm ana-night\n",
    );
    let run = qdn(&aws, &["rota", "set", &file]).await;
    let line = run.assert_fails(2);
    assert!(
        line.starts_with(&format!(
            "qdn: {file} line 3: \"9am-5pm\" is not a shift's hours"
        )),
        "{line}"
    );
    assert!(run.stdout.is_empty(), "{run:?}");
    assert_eq!(stored_rota(&aws).await, None, "nothing written");

    let good = "zone Asia/Kolkata\ndaily 09:00-17:00 sergio-main\ndaily 17:00-09:00 ana-night\n";
    aws.put_rota(good).await;
    let before = aws.get_dispatcher("#rota").await.unwrap();
    for (name, text, expected) in [
        (
            "syntax",
            "# a comment\nzone Asia/Kolkata\nmon-fri 09:00-17:00\n",
            " line 3: expected `DAYS HH:MM-HH:MM DISPATCHER`",
        ),
        (
            "zone",
            "zone Asia/Mumbay\ndaily 09:00-17:00 sergio-main\n",
            " line 1: unknown time zone \"Asia/Mumbay\"",
        ),
        (
            "overlap",
            "zone Asia/Kolkata\ndaily 09:00-17:00 sergio-main\n\ndaily 16:00-09:00 ana-night\n",
            " line 4: shift \"daily 16:00-09:00 ana-night\" overlaps line 2's \"daily 09:00-17:00 sergio-main\" from mon 16:00",
        ),
        (
            "unknown",
            "zone Asia/Kolkata\ndaily 09:00-17:00 sergio-main\ndaily 17:00-09:00 nobody\n",
            " line 3: dispatcher nobody has no item in",
        ),
        (
            "override",
            "zone Asia/Kolkata\ndaily 09:00-09:00 sergio-main\noverride 2099-12-24T18:00 2099-12-25T06:00 ghost\n",
            " line 3: dispatcher ghost has no item in",
        ),
    ] {
        let file = rota_file(&aws, name, text);
        let run = qdn(&aws, &["rota", "set", &file]).await;
        let line = run.assert_fails(2);
        assert!(
            line.starts_with(&format!("qdn: {file}{expected}")),
            "{name}: {line}"
        );
        assert!(run.stdout.is_empty(), "{run:?}");
        assert_eq!(
            aws.get_dispatcher("#rota").await.unwrap(),
            before,
            "{name}: nothing written"
        );
    }
    // `show` still prints what was there.
    let show = qdn(&aws, &["rota", "show"]).await;
    assert!(show.assert_ok().ends_with(good), "{show:?}");
    let missing = qdn(&aws, &["rota", "set", "/nonexistent/rota.txt"]).await;
    assert!(
        missing
            .assert_fails(2)
            .starts_with("qdn: cannot read /nonexistent/rota.txt: "),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_gap_is_written_with_a_warning_and_check_reports_it() {
    let aws = seeded("cli-rota-gap").await;
    // Sergio all day Monday to Saturday; nobody on Sundays.
    let file = rota_file(
        &aws,
        "gap",
        "zone Asia/Kolkata\nmon-sat 00:00-00:00 sergio-main\n",
    );
    let set = qdn(&aws, &["rota", "set", &file]).await;
    set.assert_ok();
    assert_eq!(
        set.stderr.trim_end(),
        format!(
            "qdn: warning: {file}: no shift covers sun 00:00 to mon 00:00: PRIMARY_DISPATCHER_ID (sergio-main) is primary then, and the heartbeat reports the gap"
        ),
        "{set:?}"
    );
    assert_eq!(
        stored_rota(&aws).await.unwrap(),
        "zone Asia/Kolkata\nmon-sat 00:00-00:00 sergio-main\n"
    );

    let check = qdn(&aws, &["dispatchers", "check"]).await;
    assert_eq!(check.status, 1, "{check:?}");
    assert!(
        check.stdout.contains(
            "PROBLEM: #rota: no shift covers sun 00:00 to mon 00:00: the fallback primary (PRIMARY_DISPATCHER_ID) is primary then\n"
        ),
        "{check:?}"
    );
    let doc = qdn(&aws, &["--json", "dispatchers", "check"]).await.json();
    assert_eq!(doc["problems"][0]["kind"], "rota_gap", "{doc}");
    assert_eq!(doc["problems"][0]["key"], "#rota/gap/sun 00:00/mon 00:00");
    assert_eq!(doc["rota"], "stored");

    // `show` lists it as a comment (the output stays a rota file) and exits 0.
    let show = qdn(&aws, &["rota", "show"]).await;
    assert!(
        show.assert_ok()
            .trim_end()
            .ends_with("# PROBLEM: no shift covers sun 00:00 to mon 00:00: the fallback primary (PRIMARY_DISPATCHER_ID) is primary then"),
        "{show:?}"
    );
    let doc = qdn(&aws, &["--json", "rota", "show"]).await.json();
    assert_eq!(doc["problems"].as_array().unwrap().len(), 1, "{doc}");
}

#[tokio::test]
async fn an_override_makes_its_dispatcher_primary_until_it_ends() {
    let aws = two_dispatchers("cli-rota-override").await;
    // No rota yet: the override creates one, in UTC with no shifts.
    let before = unix_now();
    let run = qdn(
        &aws,
        &[
            "rota",
            "override",
            "ana-night",
            "--from",
            "now",
            "--to",
            "+1h",
        ],
    )
    .await;
    let after = unix_now();
    let out = run.assert_ok();
    assert!(
        out.starts_with(&format!(
            "override added to the rota of {}: ana-night is primary from ",
            aws.state_table
        )),
        "{out}"
    );
    assert!(
        out.contains("there was no rota: created one in zone UTC with no shifts"),
        "{out}"
    );
    assert!(out.contains("primary now  ana-night (override)"), "{out}");
    let rota = Rota::parse(&stored_rota(&aws).await.expect("created")).unwrap();
    assert_eq!(rota.zone_name(), "UTC");
    assert!(rota.shifts.is_empty());
    assert_eq!(rota.overrides.len(), 1);
    let added = &rota.overrides[0];
    assert_eq!(added.dispatcher.as_str(), "ana-night");
    assert!((before..=after).contains(&added.from), "{added:?}");
    assert_eq!(added.to, added.from + 3_600, "{added:?}");

    let doc = qdn(&aws, &["--json", "who"]).await.json();
    assert_eq!(doc["now"]["dispatcher"], "ana-night", "{doc}");
    assert_eq!(doc["now"]["source"], "override");
    assert_eq!(doc["now"]["until_unix"], added.to);
    assert_eq!(doc["next"]["dispatcher"], "sergio-main");
    assert_eq!(doc["next"]["source"], "fallback");
    assert_eq!(doc["next"]["until"], Value::Null, "the fallback has no end");
    let who = qdn(&aws, &["who"]).await;
    assert!(
        who.assert_ok()
            .starts_with("primary now  ana-night (override)"),
        "{who:?}"
    );

    // Over a rota of shifts: the shifts stay, and the override wins over them.
    let (shifts, _) = shift_began_minutes_ago("Asia/Kolkata", "sergio-main", "ana-night", 1, 8);
    let file = rota_file(&aws, "shifts", &shifts);
    qdn(&aws, &["rota", "set", &file]).await.assert_ok();
    let doc = qdn(
        &aws,
        &[
            "--json",
            "rota",
            "override",
            "ana-night",
            "--from",
            "now",
            "--to",
            "+90m",
        ],
    )
    .await
    .json();
    assert_eq!(doc["created_rota"], false, "{doc}");
    assert_eq!(doc["who"]["now"]["dispatcher"], "ana-night");
    assert_eq!(doc["who"]["now"]["source"], "override");
    let to = doc["override"]["to_unix"].as_i64().unwrap();
    assert_eq!(to, doc["override"]["from_unix"].as_i64().unwrap() + 5_400);
    assert!(
        doc["override"]["to"].as_str().unwrap().ends_with("+05:30"),
        "{doc}"
    );
    let stored = stored_rota(&aws).await.unwrap();
    let rota = Rota::parse(&stored).unwrap();
    assert_eq!(
        rota.shifts,
        Rota::parse(&shifts).unwrap().shifts,
        "{stored}"
    );
    assert_eq!(rota.overrides.len(), 1, "{stored}");
    let who = qdn(&aws, &["--json", "who"]).await.json();
    assert_eq!(who["now"]["dispatcher"], "ana-night");
    assert_eq!(who["now"]["source"], "override");
    assert_eq!(who["now"]["until_unix"], to, "until the override ends");
    assert_eq!(who["next"]["dispatcher"], "sergio-main");
    assert_eq!(who["next"]["source"], "shift");

    // Refused: nothing written.
    let unknown = qdn(&aws, &["rota", "override", "nobody", "--to", "+1h"]).await;
    let line = unknown.assert_fails(1);
    assert!(line.contains("unknown dispatcher nobody"), "{line}");
    assert!(unknown.stdout.is_empty(), "{unknown:?}");
    for (args, expected) in [
        (
            &[
                "rota",
                "override",
                "ana-night",
                "--from",
                "+2h",
                "--to",
                "+1h",
            ][..],
            "qdn: --to (",
        ),
        (
            &[
                "rota",
                "override",
                "ana-night",
                "--from",
                "2020-01-01T00:00Z",
                "--to",
                "2020-01-01 07:00",
            ],
            "qdn: --to (2020-01-01T07:00+05:30) is already past",
        ),
        (
            &["rota", "override", "ana-night", "--to", "tomorrow"],
            "qdn: --to: \"tomorrow\" is not a time",
        ),
    ] {
        let run = qdn(&aws, args).await;
        let line = run.assert_fails(2);
        assert!(line.starts_with(expected), "{args:?}: {line}");
    }
    assert_eq!(stored_rota(&aws).await.unwrap(), stored, "nothing written");
}

#[tokio::test]
async fn who_without_a_rota_is_the_fallback_and_flags_a_primary_it_cannot_use() {
    let aws = seeded("cli-who").await;
    let who = qdn(&aws, &["who"]).await;
    assert_eq!(
        who.assert_ok(),
        "primary now  sergio-main (PRIMARY_DISPATCHER_ID, as there is no rota)\n\
         until        no end: there is no usable rota\n\
         times in     UTC (no rota)\n"
    );
    let doc = qdn(&aws, &["--json", "who"]).await.json();
    assert_eq!(doc["rota"], "absent");
    assert_eq!(doc["zone"], Value::Null);
    assert_eq!(doc["now"]["dispatcher"], "sergio-main");
    assert_eq!(doc["now"]["source"], "fallback");
    assert_eq!(doc["now"]["since"], Value::Null);
    assert_eq!(doc["now"]["until"], Value::Null);
    assert_eq!(doc["now"]["available"], true);
    assert_eq!(doc["next"], Value::Null);

    let show = qdn(&aws, &["rota", "show"]).await;
    assert_eq!(
        show.assert_ok().trim_end(),
        format!(
            "no rota in {}: PRIMARY_DISPATCHER_ID (sergio-main) is primary at all times (write one with `qdn rota set FILE`)",
            aws.state_table
        )
    );
    let doc = qdn(&aws, &["--json", "rota", "show"]).await.json();
    assert_eq!(doc["rota"], "absent");
    assert_eq!(doc["shifts"], json!([]));

    // A primary the cascade would pass over is flagged.
    let mut off = seed_dispatcher(unix_now());
    off["on_duty"] = json!(false);
    aws.put_dispatcher(off).await;
    let who = qdn(&aws, &["who"]).await;
    assert!(
        who.assert_ok().contains(
            "NOTE: the primary now is not available (sergio-main off duty): the cascade passes over them to the backup"
        ),
        "{who:?}"
    );
    let doc = qdn(&aws, &["--json", "who"]).await.json();
    assert_eq!(doc["now"]["available"], false);
    assert_eq!(doc["now"]["unavailable_because"], "sergio-main off duty");
    let doc = qdn(
        &aws,
        &["--json", "who", "--primary-dispatcher-id", "ana-main"],
    )
    .await
    .json();
    assert_eq!(doc["now"]["dispatcher"], "ana-main");
    assert_eq!(doc["now"]["has_item"], false);
    assert_eq!(doc["now"]["available"], false);
}

#[tokio::test]
async fn an_unreadable_rota_is_shown_with_why_and_mended_by_set() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let aws = two_dispatchers("cli-rota-unreadable").await;
    let broken = "zone Asia/Kolkata\nmon 06:00 sergio-main\n";
    aws.put_rota(broken).await;
    let show = qdn(&aws, &["rota", "show"]).await;
    assert_eq!(show.status, 1, "{show:?}");
    assert!(
        show.stdout
            .starts_with("PROBLEM: #rota: rota: line 2: \"06:00\" is not a shift's hours"),
        "{show:?}"
    );
    assert!(show.stdout.ends_with(broken), "the stored text: {show:?}");
    let who = qdn(&aws, &["who"]).await;
    assert!(
        who.assert_ok().starts_with(
            "primary now  sergio-main (PRIMARY_DISPATCHER_ID, as the rota is unreadable)"
        ),
        "{who:?}"
    );
    let over = qdn(&aws, &["rota", "override", "ana-night", "--to", "+1h"]).await;
    assert!(
        over.assert_fails(2)
            .contains("the stored rota is unreadable"),
        "{over:?}"
    );
    let good = "zone Asia/Kolkata\ndaily 09:00-17:00 sergio-main\ndaily 17:00-09:00 ana-night\n";
    let file = rota_file(&aws, "mend", good);
    qdn(&aws, &["rota", "set", &file]).await.assert_ok();
    assert_eq!(stored_rota(&aws).await.unwrap(), good);

    // Not even a string: `set` replaces it all the same.
    aws.put_dispatcher_with(
        json!({"dispatcher_id": "#rota"}),
        &[("rota", AttributeValue::N("12".into()))],
    )
    .await;
    let show = qdn(&aws, &["--json", "rota", "show"]).await;
    assert_eq!(show.status, 1, "{show:?}");
    let doc = show.json();
    assert_eq!(doc["rota"], "unreadable");
    assert_eq!(doc["problems"][0]["kind"], "wrong_type", "{doc}");
    qdn(&aws, &["rota", "set", &file]).await.assert_ok();
    assert_eq!(stored_rota(&aws).await.unwrap(), good);
    qdn(&aws, &["rota", "show"]).await.assert_ok();
}
