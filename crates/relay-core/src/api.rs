//! What the HTTP functions share: the JSON error body, the invocation's deadline and
//! the clock. Each function maps its own errors to statuses in one place
//! (`ApiError::status` in `inbound::http`, `OutboundError::status` in `outbound`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{Value, json};

use crate::config::ConfigError;
use crate::secrets::SecretError;

/// Why a function cannot serve at all. `main` keeps it and every invocation fails
/// with it ([`fail_invocation`]), instead of a crash loop at init.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the HTTP client for Twilio could not be built: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error(transparent)]
    Secrets(#[from] SecretError),
}

/// Fails the invocation with `error`, logged with the variable at fault (if any), so
/// API Gateway answers a 5xx and the process stays up.
pub fn fail_invocation(function: &str, error: &StartupError) -> lambda_http::Error {
    let variable = match error {
        StartupError::Config(c) => Some(c.variable()),
        StartupError::HttpClient(_) | StartupError::Secrets(_) => None,
    };
    tracing::error!(function, variable, %error, "the function is misconfigured; failing the invocation");
    error.to_string().into()
}

/// Every refusal's body: `{"error": code, "message": text, "field": name-or-null}`,
/// plus any `extra` fields (Twilio's code and message on a `422`).
pub fn error_body(code: &str, message: &str, field: Option<&str>, extra: Option<Value>) -> Value {
    let mut body = json!({ "error": code, "message": message, "field": field });
    if let (Some(Value::Object(extra)), Value::Object(fields)) = (extra, &mut body) {
        fields.extend(extra);
    }
    body
}

pub fn json_response(status: StatusCode, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("a status and a static header are valid")
}

/// The Lambda invocation's deadline as an `Instant`, from the Runtime API's header.
pub fn invocation_deadline(req: &Request) -> Option<Instant> {
    deadline_from_ms(req.lambda_context_ref()?.deadline)
}

/// A Lambda deadline (Unix milliseconds, 0 when not given) as an `Instant`.
pub fn deadline_from_ms(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None; // not given
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    let remaining = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(Instant::now() + remaining)
}

/// Milliseconds since the epoch: the order of events within one second.
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_have_one_shape() {
        let plain = error_body("missing_field", "to is missing", Some("to"), None);
        assert_eq!(
            plain,
            json!({"error": "missing_field", "message": "to is missing", "field": "to"})
        );
        let twilio = error_body(
            "twilio_rejected",
            "m",
            None,
            Some(json!({"twilio_code": 21211})),
        );
        assert_eq!(twilio["twilio_code"], 21211);
        assert_eq!(twilio["field"], Value::Null);
    }
}
