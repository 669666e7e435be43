//! Proves the test harness itself: moto and the fixtures (the ack queue and the SQS
//! events made of its timers too), moto's request lock, and the Runtime API emulator
//! (with a fake in-process poller instead of a real function). Timings are not
//! asserted here, beyond a queue delay's lower bound: machines are shared and noisy.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sns::types::MessageAttributeValue;
use relay_tests::{AwsFixture, Invocation, RuntimeApi};
use serde_json::{Value, json};

#[tokio::test]
async fn fixture_stores_dispatchers_and_reads_alerts() {
    let aws = AwsFixture::create("selftest").await;

    let dispatcher = json!({
        "dispatcher_id": "sergio-main",
        "phone": "+18585550100",
        "available": true,
        "last_heartbeat": 1712345678,
        "backup_dispatcher": "858-335-4807",
        "message_log_ttl": 86400,
        "note": null,
    });
    aws.put_dispatcher(dispatcher.clone()).await;
    assert_eq!(aws.get_dispatcher("sergio-main").await, Some(dispatcher));
    assert_eq!(aws.get_dispatcher("nobody").await, None);
    assert!(aws.message_log_items().await.is_empty());

    aws.sns
        .publish()
        .topic_arn(&aws.topic_arn)
        .subject("Dispatcher cascade")
        .message(json!({"type": "cascade", "dispatcher_id": "sergio-main"}).to_string())
        .message_attributes(
            "type",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("cascade")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let alerts = aws.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].subject.as_deref(), Some("Dispatcher cascade"));
    assert_eq!(alerts[0].message["type"], "cascade");
    assert_eq!(alerts[0].attributes["type"], "cascade");
    assert!(aws.alerts().await.is_empty(), "alerts() drains the queue");

    let twilio = aws
        .secrets
        .get_secret_value()
        .secret_id(&aws.twilio_secret_id)
        .send()
        .await
        .unwrap();
    let twilio: Value = serde_json::from_str(twilio.secret_string().unwrap()).unwrap();
    assert_eq!(twilio["auth_token"], relay_tests::moto::TEST_AUTH_TOKEN);
}

/// moto runs one request at a time, so racing conditional writes have one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_conditional_puts_have_exactly_one_winner() {
    let aws = AwsFixture::create("selftest-race").await;
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..20 {
        let dynamodb = aws.dynamodb.clone();
        let table = aws.message_table.clone();
        racers.spawn(async move {
            dynamodb
                .put_item()
                .table_name(table)
                .item("message_sid", AttributeValue::S("SMrace".into()))
                .item("attempt", AttributeValue::N(i.to_string()))
                .condition_expression("attribute_not_exists(message_sid)")
                .send()
                .await
        });
    }
    let (mut won, mut lost) = (0, 0);
    while let Some(result) = racers.join_next().await {
        match result.unwrap() {
            Ok(_) => won += 1,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                lost += 1
            }
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((won, lost), (1, 19));
    assert_eq!(aws.message_log_items().await.len(), 1);
}

#[tokio::test]
async fn runtime_api_round_trips_responses_errors_and_init_errors() {
    let api = RuntimeApi::start().await;
    assert!(api.first_poll_at().is_none());
    let poller = tokio::spawn(fake_function(api.address(), "solo", usize::MAX));
    let first_poll = api.wait_first_poll().await;
    assert_eq!(api.first_poll_at(), Some(first_poll));

    let Invocation::Response(answer) = api.invoke(json!({"n": 1})).await else {
        panic!("expected a response");
    };
    assert_eq!(answer["event"], json!({"n": 1}));
    assert_eq!(answer["poller"], "solo");
    assert!(answer["deadline_ms"].as_u64().unwrap() > epoch_ms());

    let outcome = api.invoke(json!({"fail": true})).await;
    assert_eq!(
        outcome,
        Invocation::Error(json!({"errorType": "Boom", "errorMessage": "asked to fail"}))
    );

    reqwest::Client::new()
        .post(format!(
            "http://{}/2018-06-01/runtime/init/error",
            api.address()
        ))
        .json(&json!({"errorType": "Runtime.InitError", "errorMessage": "no config"}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.init_errors()[0]["errorMessage"], "no config");
    poller.abort();
}

/// Two processes polling at once: each invocation goes to exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pollers_get_distinct_invocations() {
    let api = RuntimeApi::start().await;
    let a = tokio::spawn(fake_function(api.address(), "a", 1));
    let b = tokio::spawn(fake_function(api.address(), "b", 1));
    let (first, second) = tokio::join!(api.invoke(json!({"n": 1})), api.invoke(json!({"n": 2})));

    let (Invocation::Response(first), Invocation::Response(second)) = (first, second) else {
        panic!("expected two responses");
    };
    let pollers: HashSet<_> = [&first["poller"], &second["poller"]].into_iter().collect();
    assert_eq!(pollers.len(), 2, "{first} / {second}");
    let ids_a = a.await.unwrap();
    let ids_b = b.await.unwrap();
    assert_eq!((ids_a.len(), ids_b.len()), (1, 1));
    assert_ne!(ids_a[0], ids_b[0]);
}

/// A stand-in for a `lambda_runtime` program: polls `/next` and answers each event
/// with an echo, or with an error for `{"fail": true}`. Returns the request IDs it
/// handled after `limit` invocations.
async fn fake_function(address: String, name: &'static str, limit: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let base = format!("http://{address}/2018-06-01/runtime/invocation");
    let mut handled = Vec::new();
    while handled.len() < limit {
        let next = client.get(format!("{base}/next")).send().await.unwrap();
        let header = |name: &str| next.headers()[name].to_str().unwrap().to_owned();
        let id = header("lambda-runtime-aws-request-id");
        let deadline_ms: u64 = header("lambda-runtime-deadline-ms").parse().unwrap();
        assert!(
            next.headers()
                .contains_key("lambda-runtime-invoked-function-arn")
        );
        assert!(next.headers().contains_key("lambda-runtime-trace-id"));
        let event: Value = next.json().await.unwrap();
        let request = if event["fail"] == true {
            client
                .post(format!("{base}/{id}/error"))
                .json(&json!({"errorType": "Boom", "errorMessage": "asked to fail"}))
        } else {
            let answer = json!({"event": event, "poller": name, "deadline_ms": deadline_ms});
            client.post(format!("{base}/{id}/response")).json(&answer)
        };
        assert_eq!(request.send().await.unwrap().status(), 202);
        handled.push(id);
    }
    handled
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `Stack::status_event` turns the sandbox's status callback into the REST event API
/// Gateway would hand `sms-inbound` for it: the status path, the callback's form, and a
/// signature valid over the StatusCallback URL; and the function accepts it.
#[tokio::test]
async fn status_events_carry_the_sandboxs_signed_callback() {
    use relay_tests::moto::{TEST_ACCOUNT_SID, TEST_AUTH_TOKEN};
    use relay_tests::stack::{API_HOST, STAGE, STATUS_PATH, Stack};

    const STATUS_URL: &str =
        "https://qdn1234567.execute-api.us-east-1.amazonaws.com/prod/api/v1/sms/status";
    let stack = Stack::start("selftest-status").await;
    assert_eq!(stack.status_url(), STATUS_URL);
    let send = |callback: &'static str| {
        let url = format!(
            "{}/2010-04-01/Accounts/{TEST_ACCOUNT_SID}/Messages.json",
            stack.twilio.base_url()
        );
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .basic_auth(TEST_ACCOUNT_SID, Some(TEST_AUTH_TOKEN))
                .form(&[
                    ("To", "+18585550100"),
                    ("From", "+15005550006"),
                    ("Body", "hello"),
                    ("StatusCallback", callback),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            let message: Value = response.json().await.unwrap();
            message["sid"].as_str().unwrap().to_owned()
        }
    };
    let sid = send(STATUS_URL).await;

    let callback = stack
        .twilio
        .status_callback(&sid, "undelivered", Some(30003))
        .expect("a callback for a message sent with StatusCallback");
    let event = stack.status_event(&callback);
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["path"], STATUS_PATH);
    assert_eq!(event["requestContext"]["stage"], STAGE);
    assert_eq!(event["requestContext"]["path"], "/prod/api/v1/sms/status");
    assert_eq!(event["headers"]["Host"], API_HOST);
    assert_eq!(event["headers"]["X-Forwarded-Proto"], "https");
    assert_eq!(
        event["headers"]["Content-Type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(event["headers"]["User-Agent"], "TwilioProxy/1.1");

    // The body is the callback's form, parameter for parameter.
    let body: Vec<(String, String)> =
        serde_urlencoded::from_str(event["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, callback.params);
    let param = |name: &str| {
        body.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(param("MessageSid"), Some(sid.as_str()));
    assert_eq!(param("SmsSid"), Some(sid.as_str()));
    assert_eq!(param("MessageStatus"), Some("undelivered"));
    assert_eq!(param("SmsStatus"), Some("undelivered"));
    assert_eq!(param("ErrorCode"), Some("30003"));
    assert_eq!(param("AccountSid"), Some(TEST_ACCOUNT_SID));
    assert_eq!(param("To"), Some("+18585550100"));
    assert_eq!(param("From"), Some("+15005550006"));
    assert_eq!(param("ApiVersion"), Some("2010-04-01"));

    // The signature is Twilio's over the URL API Gateway was called at, by the
    // harness's own signer, with the account's auth token.
    let refs: Vec<(&str, &str)> = body.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let signature = relay_tests::twilio_signature(TEST_AUTH_TOKEN, STATUS_URL, &refs);
    assert_eq!(event["headers"]["X-Twilio-Signature"], signature.as_str());
    assert_eq!(callback.signature, signature);

    // A StatusCallback elsewhere cannot be passed off as a call to this stack.
    let elsewhere = send("https://example.com/prod/api/v1/sms/status").await;
    let stray = stack
        .twilio
        .status_callback(&elsewhere, "delivered", None)
        .unwrap();
    let refused =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stack.status_event(&stray)));
    assert!(refused.is_err(), "status_event accepted {}", stray.url);

    // Through the built function: the path is routed and the signature accepted.
    let answer = stack.fire_status(&sid, "delivered", None).await;
    assert!(
        ![403, 404, 405].contains(&answer.status),
        "{answer:?}\nlogs:\n{}",
        stack.logs().join("\n")
    );
    assert_eq!(stack.sent()[0].status, "delivered");
    stack.stop().await;
}

/// The ack queue: a timer sent with a delay stays out of reach until the delay is over
/// (moto honours `DelaySeconds`), then arrives with every system attribute, stays in
/// flight until deleted, and becomes the SQS event `ack-timeout` is handed through the
/// Runtime API emulator. Acknowledgements stay off unless a test adds `ack_env`.
#[tokio::test]
async fn ack_queue_delays_timers_and_turns_them_into_sqs_events() {
    use aws_lambda_events::event::sqs::SqsEvent;
    use aws_sdk_sqs::types::QueueAttributeName;
    use relay_tests::moto::ACK_MAX_RECEIVE_COUNT;
    use relay_tests::sqs_events::{SqsRecordSpec, md5_hex, sqs_event, sqs_event_from_messages};
    use std::time::{Duration, Instant};

    let aws = AwsFixture::create("selftest-ack").await;
    assert!(aws.ack_queue_url.ends_with(&format!("/{}-ack", aws.name)));
    assert!(aws.ack_queue_arn.ends_with(&format!(":{}-ack", aws.name)));
    assert!(
        aws.function_env()
            .iter()
            .all(|(k, _)| !k.starts_with("ACK_")),
        "acks are off unless a test turns them on"
    );
    assert_eq!(
        aws.ack_env(2),
        [
            ("ACK_QUEUE_URL".to_owned(), aws.ack_queue_url.clone()),
            ("ACK_TIMEOUT_SECS".to_owned(), "2".to_owned()),
        ]
    );

    // Redrive to the dead-letter queue after five receives, as in template.yaml.
    let attributes = aws
        .sqs
        .get_queue_attributes()
        .queue_url(&aws.ack_queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let redrive: Value = serde_json::from_str(
        attributes.attributes().unwrap()[&QueueAttributeName::RedrivePolicy].as_str(),
    )
    .unwrap();
    assert!(
        redrive["deadLetterTargetArn"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}-ack-dlq", aws.name)),
        "{redrive}"
    );
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        ACK_MAX_RECEIVE_COUNT.to_string()
    );
    assert!(aws.ack_dlq_url.ends_with(&format!("/{}-ack-dlq", aws.name)));

    assert_eq!(aws.ack_queue_depth().await, (0, 0, 0));
    let body = json!({
        "inbound_sid": "SM0123456789abcdef0123456789abcdef",
        "forwarded_sid": "SMfedcba9876543210fedcba9876543210",
        "ack_ref": "K7Q",
        "sent_at": 1795478400,
    })
    .to_string();
    let before_send = Instant::now();
    let sent = aws
        .sqs
        .send_message()
        .queue_url(&aws.ack_queue_url)
        .message_body(&body)
        .delay_seconds(1)
        .send()
        .await
        .unwrap();
    let message_id = sent.message_id().unwrap().to_owned();

    assert!(
        aws.receive_ack_timers(Duration::ZERO).await.is_empty(),
        "a delayed timer is not received before its delay is over"
    );
    assert_eq!(
        aws.ack_queue_depth().await,
        (0, 0, 1),
        "the timer is delayed"
    );

    let timers = aws.receive_ack_timers(Duration::from_secs(5)).await;
    let arrived_after = before_send.elapsed();
    assert_eq!(timers.len(), 1, "{timers:?}");
    assert!(
        arrived_after >= Duration::from_millis(950),
        "the 1 s delay held: arrived after {arrived_after:?}"
    );
    let timer = &timers[0];
    assert_eq!(timer.message_id(), Some(message_id.as_str()));
    assert_eq!(timer.body(), Some(body.as_str()));
    assert_eq!(timer.md5_of_body(), Some(md5_hex(&body).as_str()));
    assert_eq!(
        aws.ack_queue_depth().await,
        (0, 1, 0),
        "received, not deleted: in flight"
    );

    let event = sqs_event_from_messages(&aws.ack_queue_arn, &timers);
    let record = &event["Records"][0];
    assert_eq!(record["messageId"], message_id.as_str());
    assert_eq!(record["body"], body.as_str());
    assert_eq!(record["receiptHandle"], timer.receipt_handle().unwrap());
    assert_eq!(record["eventSourceARN"], aws.ack_queue_arn.as_str());
    assert_eq!(record["attributes"]["ApproximateReceiveCount"], "1");
    // moto's MD5 is the one the builder computes for the same body.
    let built = sqs_event(&[SqsRecordSpec::new(&aws.ack_queue_arn, body.clone())]);
    assert_eq!(record["md5OfBody"], built["Records"][0]["md5OfBody"]);
    let sent_ms: u64 = record["attributes"]["SentTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let first_receive_ms: u64 = record["attributes"]["ApproximateFirstReceiveTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(first_receive_ms >= sent_ms + 950, "{record}");
    let parsed: SqsEvent = serde_json::from_value(event.clone()).unwrap();
    assert_eq!(
        parsed.records[0].message_id.as_deref(),
        Some(message_id.as_str())
    );

    // Handed through the Runtime API emulator as Lambda's event source would, it
    // reaches the function unchanged.
    let api = RuntimeApi::start().await;
    let poller = tokio::spawn(fake_function(api.address(), "ack-timeout", 1));
    let Invocation::Response(answer) = api.invoke(event.clone()).await else {
        panic!("expected a response");
    };
    assert_eq!(answer["event"], event);
    poller.await.unwrap();

    // Deleting (what Lambda does after a success) empties the queue.
    aws.delete_ack_timers(&timers).await;
    assert_eq!(aws.ack_queue_depth().await, (0, 0, 0));
    assert!(aws.receive_ack_timers(Duration::ZERO).await.is_empty());
}

#[tokio::test]
async fn an_invocations_output_is_read_whole_before_invoke_returns() {
    // What the function logged of an invocation trails its response through a pipe;
    // `Stack::invoke` waits for the invocation's last line (its metrics flush, tagged
    // with the request ID), so assertions on the logs right after it never race it.
    use relay_tests::stack::{Stack, seed_dispatcher, unix_now};
    let stack = Stack::start("settle").await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    for round in 0..5 {
        let (sid, answer) = stack.text_from("+16195550123", "hello").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let logs = stack.json_logs();
        let routed = logs
            .iter()
            .find(|l| l["message_sid"] == sid.as_str() && l.get("routing_decision").is_some())
            .unwrap_or_else(|| panic!("round {round}: no routing line yet"));
        let request_id = routed["spans"][0]["requestId"].as_str().unwrap();
        assert!(
            logs.iter()
                .any(|l| l.get("_aws").is_some() && l["RequestId"] == request_id),
            "round {round}: the invocation's metrics line is read too"
        );
    }
    stack.stop().await;
}
