//! Properties of reading API Gateway requests as Twilio webhooks.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use relay_lambda::webhook::{Route, Webhook};

/// Twilio-like POST parameters: short names, any values.
fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    vec(("[A-Za-z][A-Za-z0-9]{0,9}", any::<String>()), 0..8)
}

/// A REST API (v1) proxy event for `path` (without the stage) as lambda_http reads it.
fn rest_request(
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
    query: &[(String, String)],
) -> Option<lambda_http::Request> {
    let mut single = serde_json::Map::new();
    let mut multi = serde_json::Map::new();
    for (name, value) in query {
        single.insert(name.clone(), value.clone().into());
        multi
            .entry(name.clone())
            .or_insert_with(|| serde_json::json!([]))
            .as_array_mut()
            .unwrap()
            .push(value.clone().into());
    }
    let (single, multi) = if query.is_empty() {
        (serde_json::Value::Null, serde_json::Value::Null)
    } else {
        (single.into(), multi.into())
    };
    let event = serde_json::json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {
            "Host": "abc123.execute-api.us-east-1.amazonaws.com",
            "X-Forwarded-Proto": "https",
            "Content-Type": content_type,
            "X-Twilio-Signature": "sig"
        },
        "multiValueHeaders": {},
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc",
            "stage": "prod",
            "requestId": "r",
            "path": format!("/prod{path}"),
            "httpMethod": method,
            "apiId": "abc123",
            "protocol": "HTTP/1.1",
            "identity": {"sourceIp": "127.0.0.1"},
            "resourcePath": "/{proxy+}"
        },
        "body": body,
        "isBase64Encoded": false
    });
    lambda_http::request::from_str(&event.to_string()).ok()
}

// ---------------------------------------------------------------------------------
// Webhooks

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/x-www-form-urlencoded".to_string()),
        Just("application/x-www-form-urlencoded; charset=utf-8".to_string()),
        Just("application/json".to_string()),
        Just(String::new()),
        "[ -~]{0,30}",
    ]
}

fn webhook_path() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/api/v1/sms/inbound".to_string()),
        Just("/api/v1/sms/status".to_string()),
        "(/[a-z0-9]{0,6}){0,4}",
    ]
}

proptest! {
    /// Reading any request as a webhook never panics, whatever its body, content type,
    /// path, method or query string.
    #[test]
    fn reading_a_webhook_never_panics(
        method in select(&["POST", "GET", "PUT"][..]),
        path in webhook_path(),
        content_type in content_type(),
        body in prop_oneof![any::<String>(), "[A-Za-z0-9=&%+]{0,40}"],
        query in vec(("[a-z]{1,3}", "[ -~]{0,6}"), 0..7),
        public_base in proptest::option::of(Just("https://dashboard.example")),
    ) {
        let Some(req) = rest_request(method, &path, &content_type, &body, &query) else {
            return Ok(());
        };
        if let Ok(hook) = Webhook::from_request(&req, public_base) {
            let _ = hook.status_callback_url();
            let _ = hook.inbound_sms();
        }
    }

    /// A form body's parameters come out as they went in, names, values and order.
    #[test]
    fn form_bodies_round_trip(params in params()) {
        let body = serde_urlencoded::to_string(&params).unwrap();
        let req = rest_request(
            "POST",
            "/api/v1/sms/inbound",
            "application/x-www-form-urlencoded",
            &body,
            &[],
        )
        .expect("a valid event");
        let hook = Webhook::from_request(&req, None).unwrap();
        prop_assert_eq!(hook.route, Route::Inbound);
        prop_assert_eq!(hook.params, params);
    }
}
