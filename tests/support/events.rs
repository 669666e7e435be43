//! The events API Gateway and function URLs hand a function, Twilio's webhook body and
//! signature, and reading the function's HTTP answer back out of its JSON.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha1::Sha1;

/// The host of the function URL that [`function_url_event`] pretends was called.
pub const FUNCTION_URL_HOST: &str = "xyz.lambda-url.us-east-1.on.aws";
const ACCOUNT_ID: &str = "123456789012";
const SOURCE_IP: &str = "127.0.0.1";

/// A REST API (v1) proxy-integration event, shaped like `sam local generate-event
/// apigateway aws-proxy`, for resource `/{proxy+}`. `path` excludes the stage;
/// `query` is a raw query string (`a=1&b=2`). API Gateway's own headers (`Host`,
/// `X-Forwarded-Proto: https`, `X-Forwarded-Port: 443`, `X-Forwarded-For`) are added
/// unless `headers` names them.
pub fn rest_proxy_event(
    method: &str,
    path: &str,
    stage: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &str,
    query: Option<&str>,
) -> Value {
    let headers = with_gateway_headers(host, headers);
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (name, value) in &headers {
        single.insert(name.clone(), json!(value));
        let values = multi.entry(name.clone()).or_insert_with(|| json!([]));
        values.as_array_mut().unwrap().push(json!(value));
    }
    let (query_single, query_multi) = match query.filter(|q| !q.is_empty()) {
        None => (Value::Null, Value::Null),
        Some(q) => {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).expect("query string");
            let mut single = Map::new();
            let mut multi: Map<String, Value> = Map::new();
            for (name, value) in pairs {
                single.insert(name.clone(), json!(value));
                let values = multi.entry(name).or_insert_with(|| json!([]));
                values.as_array_mut().unwrap().push(json!(value));
            }
            (Value::Object(single), Value::Object(multi))
        }
    };
    let (epoch_ms, request_time) = now();
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": query_single,
        "multiValueQueryStringParameters": query_multi,
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "resourceId": "123456",
            "stage": stage,
            "requestId": request_id(),
            "requestTime": request_time,
            "requestTimeEpoch": epoch_ms,
            "path": format!("/{stage}{path}"),
            "identity": {
                "cognitoIdentityPoolId": null,
                "accountId": null,
                "cognitoIdentityId": null,
                "caller": null,
                "accessKey": null,
                "sourceIp": SOURCE_IP,
                "cognitoAuthenticationType": null,
                "cognitoAuthenticationProvider": null,
                "userArn": null,
                "userAgent": header(&headers, "user-agent").unwrap_or("Custom User Agent String"),
                "user": null
            },
            "domainName": host,
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "apiId": "1234567890",
            "protocol": "HTTP/1.1"
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// An HTTP API (payload v2.0) event. `rawPath` carries the stage unless it is
/// `$default`, as API Gateway does.
pub fn http_api_v2_event(
    method: &str,
    path: &str,
    stage: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &str,
    query: Option<&str>,
) -> Value {
    let raw_path = if stage == "$default" {
        path.to_owned()
    } else {
        format!("/{stage}{path}")
    };
    let route_key = format!("{method} {path}");
    v2_event(V2 {
        method,
        raw_path: &raw_path,
        route_key: &route_key,
        stage,
        host,
        api_id: "1234567890",
        headers,
        body,
        query,
    })
}

/// A Lambda function URL event (payload v2.0, stage `$default`, host
/// [`FUNCTION_URL_HOST`]).
pub fn function_url_event(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    query: Option<&str>,
) -> Value {
    v2_event(V2 {
        method,
        raw_path: path,
        route_key: "$default",
        stage: "$default",
        host: FUNCTION_URL_HOST,
        api_id: "xyz",
        headers,
        body,
        query,
    })
}

/// The same event with its body base64-encoded, as API Gateway sends binary bodies.
pub fn with_base64_body(mut event: Value) -> Value {
    let body = event["body"].as_str().unwrap_or_default();
    event["body"] = json!(BASE64.encode(body));
    event["isBase64Encoded"] = json!(true);
    event
}

/// A Twilio webhook body: the parameters, form-urlencoded.
pub fn twilio_form(params: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(params).expect("form encoding")
}

/// Twilio's `X-Twilio-Signature`: base64 of HMAC-SHA1 keyed by the auth token over the
/// URL followed by each parameter's name and value, sorted by name (then value).
/// Written independently of the relay's code so each checks the other.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("any key size");
    mac.update(data.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// A function's HTTP answer, v1 or v2 shaped: status, headers (lower-cased names,
/// repeated values joined with ", ", v2 `cookies` as `set-cookie`) and body (decoded
/// if `isBase64Encoded`). A v2 answer without `statusCode` is a 200 JSON body.
pub fn response_parts(resp: &Value) -> (u16, HashMap<String, String>, String) {
    let Some(status) = resp.get("statusCode") else {
        let body = match resp {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let headers = HashMap::from([("content-type".into(), "application/json".into())]);
        return (200, headers, body);
    };
    let status = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or_else(|| panic!("statusCode is not a status: {resp}"));

    let mut headers = HashMap::new();
    for (name, value) in resp["headers"].as_object().into_iter().flatten() {
        headers.insert(name.to_ascii_lowercase(), text(value));
    }
    for (name, values) in resp["multiValueHeaders"].as_object().into_iter().flatten() {
        let joined: Vec<String> = values.as_array().into_iter().flatten().map(text).collect();
        headers.insert(name.to_ascii_lowercase(), joined.join(", "));
    }
    if let Some(cookies) = resp["cookies"].as_array().filter(|c| !c.is_empty()) {
        let joined: Vec<String> = cookies.iter().map(text).collect();
        headers.insert("set-cookie".into(), joined.join(", "));
    }

    let body = resp["body"].as_str().unwrap_or_default();
    let body = if resp["isBase64Encoded"].as_bool() == Some(true) {
        let bytes = BASE64.decode(body).expect("base64 body");
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        body.to_owned()
    };
    (status, headers, body)
}

struct V2<'a> {
    method: &'a str,
    raw_path: &'a str,
    route_key: &'a str,
    stage: &'a str,
    host: &'a str,
    api_id: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a str,
    query: Option<&'a str>,
}

/// The payload v2.0 shape shared by HTTP APIs and function URLs: lower-cased
/// headers, repeated ones comma-joined, `Cookie` moved to `cookies`.
fn v2_event(e: V2) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in with_gateway_headers(e.host, e.headers) {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(value.split("; ").map(str::to_owned));
            continue;
        }
        let joined = match headers.get(&name).and_then(Value::as_str) {
            Some(previous) => format!("{previous},{value}"),
            None => value,
        };
        headers.insert(name, json!(joined));
    }
    let user_agent = headers.get("user-agent").cloned().unwrap_or(json!(""));
    let query = e.query.unwrap_or_default();
    let (epoch_ms, time) = now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": e.route_key,
        "rawPath": e.raw_path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": e.api_id,
            "domainName": e.host,
            "domainPrefix": e.host.split('.').next().unwrap_or_default(),
            "http": {
                "method": e.method,
                "path": e.raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": user_agent
            },
            "requestId": request_id(),
            "routeKey": e.route_key,
            "stage": e.stage,
            "time": time,
            "timeEpoch": epoch_ms
        },
        "body": e.body,
        "isBase64Encoded": false
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !query.is_empty() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).expect("query");
        let mut params: Map<String, Value> = Map::new();
        for (name, value) in pairs {
            let joined = match params.get(&name).and_then(Value::as_str) {
                Some(previous) => format!("{previous},{value}"),
                None => value,
            };
            params.insert(name, json!(joined));
        }
        event["queryStringParameters"] = Value::Object(params);
    }
    event
}

/// The caller's headers, plus the ones API Gateway adds that the caller did not set.
fn with_gateway_headers(host: &str, headers: &[(&str, &str)]) -> Vec<(String, String)> {
    let defaults = [
        ("Host", host),
        ("X-Forwarded-For", SOURCE_IP),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Proto", "https"),
    ];
    let mut all: Vec<(String, String)> = defaults
        .into_iter()
        .filter(|(name, _)| !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)))
        .chain(headers.iter().copied())
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    all.sort_by_key(|(n, _)| n.to_ascii_lowercase());
    all
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn request_id() -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Now as epoch milliseconds and in API Gateway's `09/Apr/2015:12:34:56 +0000` form.
fn now() -> (u64, String) {
    let now = jiff::Timestamp::now();
    let ms = u64::try_from(now.as_millisecond()).expect("after 1970");
    (ms, request_time(now))
}

/// `t` in API Gateway's `requestTime` form, `09/Apr/2015:12:34:56 +0000` (always UTC).
fn request_time(t: jiff::Timestamp) -> String {
    t.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's documented example (the "Validating Signatures" page).
    #[test]
    fn signature_matches_twilio_example() {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ];
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            twilio_signature("12345", url, &params),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
    }

    #[test]
    fn dates() {
        let at = |secs| request_time(jiff::Timestamp::from_second(secs).unwrap());
        assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(at(1_428_582_896), "09/Apr/2015:12:34:56 +0000");
        assert_eq!(at(1_709_251_199), "29/Feb/2024:23:59:59 +0000");
    }

    #[test]
    fn rest_event_paths_and_headers() {
        let e = rest_proxy_event(
            "POST",
            "/api/v1/sms/inbound",
            "prod",
            "abc.execute-api.us-east-1.amazonaws.com",
            &[("X-Forwarded-Proto", "http")],
            "a=b",
            Some("x=1&x=2"),
        );
        assert_eq!(e["path"], "/api/v1/sms/inbound");
        assert_eq!(e["requestContext"]["path"], "/prod/api/v1/sms/inbound");
        assert_eq!(e["headers"]["X-Forwarded-Proto"], "http");
        assert_eq!(
            e["headers"]["Host"],
            "abc.execute-api.us-east-1.amazonaws.com"
        );
        assert_eq!(e["queryStringParameters"]["x"], "2");
        assert_eq!(e["multiValueQueryStringParameters"]["x"], json!(["1", "2"]));
    }

    /// The hand-written example event keeps the builder's shape.
    #[test]
    fn example_event_file_matches_builder_shape() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/inbound-rest.json");
        let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let built = rest_proxy_event("POST", "/x", "prod", "h", &[], "", None);
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&file), keys(&built));
        assert_eq!(
            keys(&file["requestContext"]),
            keys(&built["requestContext"])
        );
    }

    #[test]
    fn v1_and_v2_responses() {
        let v1 = json!({"statusCode": 200, "headers": {"Content-Type": "text/xml"},
            "multiValueHeaders": {"Content-Type": ["text/xml"]}, "body": "<Response/>",
            "isBase64Encoded": false});
        let (status, headers, body) = response_parts(&v1);
        assert_eq!((status, body.as_str()), (200, "<Response/>"));
        assert_eq!(headers["content-type"], "text/xml");

        let v2 = json!({"statusCode": 403, "headers": {"x": "y"}, "cookies": ["a=b"],
            "body": BASE64.encode("nope"), "isBase64Encoded": true});
        let (status, headers, body) = response_parts(&v2);
        assert_eq!((status, body.as_str()), (403, "nope"));
        assert_eq!(headers["set-cookie"], "a=b");
    }
}
