//! Drives the sandbox over real HTTP, as the relay and the demo do.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use twilio_sandbox::{
    Account, DEFAULT_ACCOUNT_SID as SID, DEFAULT_AUTH_TOKEN as TOKEN, Fault, RecordedRequest,
    Sandbox, SandboxConfig, SentMessage,
};

const FROM: &str = "+15005550006";
const TO: &str = "+15551234567";
const OTHER_SID: &str = "AC11111111111111111111111111111111";
const OTHER_TOKEN: &str = "other-token";

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig::default()).await.unwrap()
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    json: Value,
}

fn messages_url(sandbox: &Sandbox, account_sid: &str) -> String {
    format!(
        "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
        sandbox.base_url()
    )
}

async fn read_answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        json,
    }
}

/// POSTs a form as `user:password` to `account_sid`'s Messages resource.
async fn post_as(
    sandbox: &Sandbox,
    auth: Option<(&str, &str)>,
    account_sid: &str,
    params: &[(&str, &str)],
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(messages_url(sandbox, account_sid))
        .form(params);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    read_answer(request.send().await.unwrap()).await
}

async fn send(sandbox: &Sandbox, params: &[(&str, &str)]) -> Answer {
    post_as(sandbox, Some((SID, TOKEN)), SID, params).await
}

async fn send_sms(sandbox: &Sandbox, to: &str) -> Answer {
    send(sandbox, &[("To", to), ("From", FROM), ("Body", "hello")]).await
}

async fn get(url: &str, auth: Option<(&str, &str)>) -> Answer {
    let mut request = reqwest::Client::new().get(url);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    read_answer(request.send().await.unwrap()).await
}

#[track_caller]
fn assert_error(answer: &Answer, status: u16, code: u32) {
    assert_eq!(answer.status, status, "{}", answer.json);
    assert_eq!(answer.json["code"], code, "{}", answer.json);
    assert_eq!(answer.json["status"], status, "{}", answer.json);
    assert_eq!(
        answer.json["more_info"],
        format!("https://www.twilio.com/docs/errors/{code}")
    );
    assert!(
        answer.json["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

fn is_hex_sid(sid: &str, prefix: &str) -> bool {
    sid.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 32
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `Mon, 23 Nov 2026 23:59:26 +0000`
fn is_rfc2822(date: &str) -> bool {
    let parts: Vec<&str> = date.split(' ').collect();
    parts.len() == 6
        && ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"].contains(&parts[0])
        && parts[1].len() == 2
        && parts[3].len() == 4
        && parts[4].len() == 8
        && parts[5] == "+0000"
}

#[tokio::test]
async fn accepted_sms_has_twilios_message_shape() {
    let sandbox = sandbox().await;
    let answer = send(
        &sandbox,
        &[
            ("To", TO),
            ("From", FROM),
            ("Body", "Hello, dispatcher"),
            ("StatusCallback", "https://example.com/status"),
        ],
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    let m = &answer.json;
    let sid = m["sid"].as_str().unwrap();
    assert!(is_hex_sid(sid, "SM"), "{sid}");
    assert_eq!(m["account_sid"], SID);
    assert_eq!(m["to"], TO);
    assert_eq!(m["from"], FROM);
    assert_eq!(m["messaging_service_sid"], Value::Null);
    assert_eq!(m["body"], "Hello, dispatcher");
    assert_eq!(m["num_media"], "0");
    assert_eq!(m["num_segments"], "1");
    assert_eq!(m["status"], "queued");
    assert_eq!(m["direction"], "outbound-api");
    assert_eq!(m["api_version"], "2010-04-01");
    assert!(is_rfc2822(m["date_created"].as_str().unwrap()), "{m}");
    assert_eq!(m["date_updated"], m["date_created"]);
    for null in ["date_sent", "price", "error_code", "error_message"] {
        assert_eq!(m[null], Value::Null, "{null}");
    }
    assert_eq!(
        m["uri"],
        format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json")
    );
    assert_eq!(
        m["subresource_uris"]["media"],
        format!("/2010-04-01/Accounts/{SID}/Messages/{sid}/Media.json")
    );

    let messages = sandbox.messages();
    assert_eq!(messages.len(), 1);
    let sent = &messages[0];
    assert_eq!(sent.sid, sid);
    assert_eq!(sent.account_sid, SID);
    assert_eq!(sent.to, TO);
    assert_eq!(sent.from.as_deref(), Some(FROM));
    assert_eq!(sent.body, "Hello, dispatcher");
    assert!(sent.media_urls.is_empty());
    assert_eq!(
        sent.status_callback.as_deref(),
        Some("https://example.com/status")
    );
    assert_eq!(sent.date_created, m["date_created"]);
    assert_eq!(sent.status, "queued");

    let requests = sandbox.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, 201);
    assert_eq!(requests[0].error_code, None);
    assert_eq!(requests[0].to.as_deref(), Some(TO));
    assert_eq!(requests[0].account_sid, SID);
    assert_eq!(requests[0].params[0], ("To".to_owned(), TO.to_owned()));
}

#[tokio::test]
async fn repeated_media_urls_are_kept_in_order_with_mm_prefix() {
    let sandbox = sandbox().await;
    let answer = send(
        &sandbox,
        &[
            ("To", TO),
            ("From", FROM),
            ("MediaUrl", "https://example.com/a.jpg"),
            ("MediaUrl", "https://example.com/b.png"),
        ],
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert!(is_hex_sid(answer.json["sid"].as_str().unwrap(), "MM"));
    assert_eq!(answer.json["num_media"], "2");
    assert_eq!(answer.json["body"], "");
    let sent = &sandbox.messages()[0];
    assert_eq!(
        sent.media_urls,
        ["https://example.com/a.jpg", "https://example.com/b.png"]
    );
    let media = sandbox.requests()[0]
        .params
        .iter()
        .filter(|(k, _)| k == "MediaUrl")
        .count();
    assert_eq!(media, 2);
}

#[tokio::test]
async fn messaging_service_sends_are_accepted_without_from() {
    let sandbox = sandbox().await;
    let service = "MG0123456789abcdef0123456789abcdef";
    let answer = send(
        &sandbox,
        &[("To", TO), ("MessagingServiceSid", service), ("Body", "hi")],
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_eq!(answer.json["from"], Value::Null);
    assert_eq!(answer.json["messaging_service_sid"], service);
    assert_eq!(answer.json["status"], "accepted");
    assert_eq!(sandbox.messages()[0].from, None);

    let bad = send(
        &sandbox,
        &[("To", TO), ("MessagingServiceSid", "MG123"), ("Body", "hi")],
    )
    .await;
    assert_error(&bad, 400, 21701);
    let bad = send(
        &sandbox,
        &[
            ("To", TO),
            ("MessagingServiceSid", "PN0123456789abcdef0123456789abcdef"),
            ("From", FROM),
            ("Body", "hi"),
        ],
    )
    .await;
    assert_error(&bad, 400, 21701);
    assert_eq!(sandbox.messages().len(), 1);
}

#[tokio::test]
async fn authentication_failures_answer_20003() {
    let sandbox = Sandbox::start(SandboxConfig {
        accounts: vec![
            Account {
                account_sid: SID.into(),
                auth_token: TOKEN.into(),
            },
            Account {
                account_sid: OTHER_SID.into(),
                auth_token: OTHER_TOKEN.into(),
            },
        ],
    })
    .await
    .unwrap();
    let params = [("To", TO), ("From", FROM), ("Body", "hi")];
    let unknown = "AC99999999999999999999999999999999";

    for (auth, path) in [
        (None, SID),
        (Some((SID, "wrong-token")), SID),
        (Some((SID, OTHER_TOKEN)), SID),
        (Some((unknown, TOKEN)), unknown),
        (Some((SID, TOKEN)), unknown),
    ] {
        let answer = post_as(&sandbox, auth, path, &params).await;
        assert_error(&answer, 401, 20003);
        assert_eq!(answer.json["message"], "Authenticate");
        assert_eq!(
            answer.headers[WWW_AUTHENTICATE],
            "Basic realm=\"Twilio API\""
        );
    }

    // Good credentials, but another (real) account's path.
    let answer = post_as(&sandbox, Some((SID, TOKEN)), OTHER_SID, &params).await;
    assert_error(&answer, 404, 20404);

    // A malformed Authorization header.
    let response = reqwest::Client::new()
        .post(messages_url(&sandbox, SID))
        .header("Authorization", "Basic !!!not-base64")
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_error(&read_answer(response).await, 401, 20003);

    assert!(sandbox.messages().is_empty());
    let statuses: Vec<u16> = sandbox.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 404, 401]);
    assert_eq!(sandbox.requests()[4].account_sid, unknown);

    // Each account can send as itself.
    let answer = post_as(&sandbox, Some((OTHER_SID, OTHER_TOKEN)), OTHER_SID, &params).await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.json["account_sid"], OTHER_SID);
}

#[tokio::test]
async fn validation_errors_follow_twilios_order() {
    let sandbox = sandbox().await;
    let long_body = "x".repeat(1601);
    let media: Vec<(&str, &str)> = (0..11)
        .map(|_| ("MediaUrl", "https://e.com/a.jpg"))
        .collect();
    let mut too_much_media = vec![("To", TO), ("From", FROM)];
    too_much_media.extend(media);

    let cases: Vec<(Vec<(&str, &str)>, u32)> = vec![
        (vec![], 21604),
        (vec![("From", FROM), ("Body", "hi")], 21604),
        (vec![("To", ""), ("From", FROM), ("Body", "hi")], 21604),
        (vec![("To", "not-a-number")], 21603),
        (vec![("To", TO), ("Body", "hi")], 21603),
        (vec![("To", "nope"), ("From", FROM)], 21602),
        (vec![("To", TO), ("From", FROM), ("Body", "")], 21602),
        (
            vec![("To", "nope"), ("From", FROM), ("Body", &long_body)],
            21617,
        ),
        (too_much_media, 21623),
        (
            vec![("To", "5551234567"), ("From", FROM), ("Body", "hi")],
            21211,
        ),
        (vec![("To", "+1555"), ("From", FROM), ("Body", "hi")], 21211),
        (
            vec![("To", "+0551234567"), ("From", FROM), ("Body", "hi")],
            21211,
        ),
        (
            vec![("To", "+1234567890123456"), ("From", FROM), ("Body", "hi")],
            21211,
        ),
        (
            vec![("To", "+1 555 123 4567"), ("From", FROM), ("Body", "hi")],
            21211,
        ),
    ];
    for (params, code) in &cases {
        let answer = send(&sandbox, params).await;
        assert_error(&answer, 400, *code);
    }
    let answer = send(&sandbox, &[("From", FROM)]).await;
    assert_eq!(answer.json["message"], "A 'To' phone number is required.");
    let answer = send(&sandbox, &[("To", "555"), ("From", FROM), ("Body", "hi")]).await;
    assert_eq!(
        answer.json["message"],
        "The 'To' number 555 is not a valid phone number."
    );

    assert!(sandbox.messages().is_empty());
    let codes: Vec<Option<u32>> = sandbox.requests().iter().map(|r| r.error_code).collect();
    assert_eq!(codes.len(), cases.len() + 2);
    assert!(codes.iter().all(|c| c.is_some()));
}

#[tokio::test]
async fn body_limit_counts_characters_and_media_limit_is_ten() {
    let sandbox = sandbox().await;
    let wide = "é".repeat(1600); // 3200 bytes, 1600 characters
    let answer = send(&sandbox, &[("To", TO), ("From", FROM), ("Body", &wide)]).await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    let wider = "é".repeat(1601);
    let answer = send(&sandbox, &[("To", TO), ("From", FROM), ("Body", &wider)]).await;
    assert_error(&answer, 400, 21617);

    let mut params = vec![("To", TO), ("From", FROM)];
    params.extend((0..10).map(|_| ("MediaUrl", "https://e.com/a.jpg")));
    let answer = send(&sandbox, &params).await;
    assert_eq!(answer.status, 201, "{}", answer.json);
    assert_eq!(answer.json["num_media"], "10");
    assert_eq!(sandbox.messages().len(), 2);
}

#[tokio::test]
async fn magic_numbers_answer_their_errors() {
    let sandbox = sandbox().await;
    for (from, code) in [
        ("+15005550001", 21212),
        ("+15005550007", 21606),
        ("+15005550008", 21611),
    ] {
        let answer = send(&sandbox, &[("To", TO), ("From", from), ("Body", "hi")]).await;
        assert_error(&answer, 400, code);
    }
    for (to, code) in [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ] {
        let answer = send_sms(&sandbox, to).await;
        assert_error(&answer, 400, code);
    }
    // The magic "valid" numbers work.
    assert_eq!(send_sms(&sandbox, "+15005550006").await.status, 201);
    assert_eq!(sandbox.messages().len(), 1);
    let answer = send_sms(&sandbox, "+15005550004").await;
    assert_eq!(
        answer.json["message"],
        "Attempt to send to unsubscribed recipient"
    );
}

#[tokio::test]
async fn server_errors_twice_then_success() {
    let sandbox = sandbox().await;
    sandbox.inject(Fault::status(500).times(2));
    for _ in 0..2 {
        let answer = send_sms(&sandbox, TO).await;
        assert_error(&answer, 500, 20500);
        assert_eq!(answer.json["message"], "Internal Server Error");
        assert!(sandbox.messages().is_empty());
    }
    assert_eq!(send_sms(&sandbox, TO).await.status, 201);
    assert_eq!(send_sms(&sandbox, TO).await.status, 201);
    let statuses: Vec<u16> = sandbox.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 201, 201]);
    assert_eq!(sandbox.requests()[0].error_code, Some(20500));
    assert_eq!(sandbox.messages().len(), 2);
}

#[tokio::test]
async fn rate_limit_fault_sends_retry_after() {
    let sandbox = sandbox().await;
    sandbox.inject(Fault::rate_limited(Some(3)));
    sandbox.inject(Fault::rate_limited(None));
    let answer = send_sms(&sandbox, TO).await;
    assert_error(&answer, 429, 20429);
    assert_eq!(answer.json["message"], "Too Many Requests");
    assert_eq!(answer.headers[RETRY_AFTER], "3");
    let answer = send_sms(&sandbox, TO).await;
    assert_error(&answer, 429, 20429);
    assert!(answer.headers.get(RETRY_AFTER).is_none());
    assert_eq!(send_sms(&sandbox, TO).await.status, 201);
}

#[tokio::test]
async fn delay_only_fault_slows_then_succeeds() {
    let sandbox = sandbox().await;
    sandbox.inject(Fault::slow(300));
    let started = Instant::now();
    let answer = send_sms(&sandbox, TO).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer.status, 201);
    let started = Instant::now();
    assert_eq!(send_sms(&sandbox, TO).await.status, 201);
    assert!(started.elapsed() < Duration::from_millis(300));

    // A delayed error.
    sandbox.inject(Fault::status(503).delay_ms(200));
    let started = Instant::now();
    let answer = send_sms(&sandbox, TO).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_error(&answer, 503, 20500);
    assert_eq!(sandbox.messages().len(), 2);
}

#[tokio::test]
async fn to_filter_and_custom_codes() {
    let sandbox = sandbox().await;
    let target = "+15557654321";
    sandbox.inject(
        Fault::status(400)
            .code(21610, "Attempt to send to unsubscribed recipient")
            .to(target),
    );
    assert_eq!(send_sms(&sandbox, TO).await.status, 201);
    let answer = send_sms(&sandbox, target).await;
    assert_error(&answer, 400, 21610);
    assert_eq!(
        answer.json["message"],
        "Attempt to send to unsubscribed recipient"
    );
    assert_eq!(send_sms(&sandbox, target).await.status, 201);

    // FIFO: the first matching fault wins, non-matching ones wait their turn.
    sandbox.inject(Fault::status(502).to(target));
    sandbox.inject(Fault::status(404));
    let answer = send_sms(&sandbox, TO).await;
    assert_error(&answer, 404, 20404);
    let answer = send_sms(&sandbox, target).await;
    assert_error(&answer, 502, 20500);
    assert_eq!(send_sms(&sandbox, target).await.status, 201);
    let to: Vec<String> = sandbox.messages().into_iter().map(|m| m.to).collect();
    assert_eq!(to, [TO, target, target]);
}

#[tokio::test]
async fn faults_over_http_and_reset() {
    let sandbox = sandbox().await;
    let client = reqwest::Client::new();
    let base = sandbox.base_url();
    let response = client
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({"status": 500, "times": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let response = client
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({"status": 429, "code": 20429, "retry_after_secs": 9, "to": "+15550000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);

    assert_error(&send_sms(&sandbox, TO).await, 500, 20500);
    assert_error(&send_sms(&sandbox, "+15550000000").await, 500, 20500);
    let limited = send_sms(&sandbox, "+15550000000").await;
    assert_error(&limited, 429, 20429);
    assert_eq!(limited.headers[RETRY_AFTER], "9");
    assert_eq!(send_sms(&sandbox, TO).await.status, 201);
    assert_eq!(sandbox.requests().len(), 4);
    assert_eq!(sandbox.messages().len(), 1);

    sandbox.inject(Fault::status(500));
    let response = client
        .post(format!("{base}/_sandbox/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert!(sandbox.requests().is_empty());
    assert!(sandbox.messages().is_empty());
    // The pending 500 is gone too.
    assert_eq!(send_sms(&sandbox, TO).await.status, 201);
    assert_eq!(sandbox.messages().len(), 1);

    sandbox.inject(Fault::status(500));
    sandbox.reset();
    assert!(sandbox.messages().is_empty());
    assert!(sandbox.requests().is_empty());
    assert_eq!(send_sms(&sandbox, TO).await.status, 201);
}

#[tokio::test]
async fn control_endpoints_expose_records() {
    let sandbox = sandbox().await;
    let base = sandbox.base_url();
    assert_eq!(send_sms(&sandbox, TO).await.status, 201);
    assert_eq!(send_sms(&sandbox, "+15005550004").await.status, 400);

    let health = get(&format!("{base}/_sandbox/health"), None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json, "ok");

    let messages = get(&format!("{base}/_sandbox/messages"), None).await;
    let messages: Vec<SentMessage> = serde_json::from_value(messages.json).unwrap();
    assert_eq!(messages, sandbox.messages());
    assert_eq!(messages.len(), 1);

    let requests = get(&format!("{base}/_sandbox/requests"), None).await;
    let requests: Vec<RecordedRequest> = serde_json::from_value(requests.json).unwrap();
    assert_eq!(requests, sandbox.requests());
    assert_eq!(requests[1].status, 400);
    assert_eq!(requests[1].error_code, Some(21610));

    let unknown = get(
        &format!("{base}/2010-04-01/Accounts/{SID}/Calls.json"),
        None,
    )
    .await;
    assert_error(&unknown, 404, 20404);
    let bad_fault = reqwest::Client::new()
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({"times": "lots"}))
        .send()
        .await
        .unwrap();
    assert!(bad_fault.status().is_client_error());
}

#[tokio::test]
async fn fetch_message_by_sid() {
    let sandbox = Sandbox::start(SandboxConfig {
        accounts: vec![
            Account {
                account_sid: SID.into(),
                auth_token: TOKEN.into(),
            },
            Account {
                account_sid: OTHER_SID.into(),
                auth_token: OTHER_TOKEN.into(),
            },
        ],
    })
    .await
    .unwrap();
    let created = send_sms(&sandbox, TO).await;
    let sid = created.json["sid"].as_str().unwrap();
    let base = sandbox.base_url();
    let url = format!("{base}/2010-04-01/Accounts/{SID}/Messages/{sid}.json");

    let fetched = get(&url, Some((SID, TOKEN))).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.json, created.json);

    assert_error(&get(&url, None).await, 401, 20003);
    assert_error(&get(&url, Some((SID, "bad"))).await, 401, 20003);
    // Another account cannot see it, even under its own path.
    let theirs = format!("{base}/2010-04-01/Accounts/{OTHER_SID}/Messages/{sid}.json");
    assert_error(
        &get(&theirs, Some((OTHER_SID, OTHER_TOKEN))).await,
        404,
        20404,
    );

    let missing = format!(
        "{base}/2010-04-01/Accounts/{SID}/Messages/SM00000000000000000000000000000000.json"
    );
    let answer = get(&missing, Some((SID, TOKEN))).await;
    assert_error(&answer, 404, 20404);
    assert_eq!(
        answer.json["message"],
        format!(
            "The requested resource /2010-04-01/Accounts/{SID}/Messages/SM00000000000000000000000000000000.json was not found"
        )
    );
    let no_suffix = format!("{base}/2010-04-01/Accounts/{SID}/Messages/{sid}");
    assert_error(&get(&no_suffix, Some((SID, TOKEN))).await, 404, 20404);
    // GETs are not Messages POST attempts.
    assert_eq!(sandbox.requests().len(), 1);
}

#[tokio::test]
async fn dropping_the_sandbox_stops_the_server() {
    let sandbox = sandbox().await;
    let base = sandbox.base_url();
    assert_eq!(
        get(&format!("{base}/_sandbox/health"), None).await.status,
        200
    );
    drop(sandbox);
    let mut refused = false;
    for _ in 0..50 {
        let fresh = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        if fresh
            .get(format!("{base}/_sandbox/health"))
            .send()
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "server still answering after drop");
}

#[tokio::test]
async fn start_on_a_given_address() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let sandbox = Sandbox::start_on(SandboxConfig::default(), addr)
        .await
        .unwrap();
    assert_eq!(sandbox.base_url(), format!("http://{addr}"));
    assert_eq!(sandbox.addr(), addr);
    assert_eq!(send_sms(&sandbox, TO).await.status, 201);
    sandbox.shutdown().await.unwrap();
}
