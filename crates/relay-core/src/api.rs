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
    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
}

/// Fails the invocation with `error`, logged with the variable at fault (if any), so
/// API Gateway answers a 5xx and the process stays up.
pub fn fail_invocation(function: &str, error: &StartupError) -> lambda_http::Error {
    let variable = match error {
        StartupError::Config(c) => Some(c.variable()),
        StartupError::HttpClient(_) | StartupError::Secrets(_) | StartupError::Transport(_) => None,
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
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    remaining_ms(deadline_ms, now_ms).map(|ms| Instant::now() + Duration::from_millis(ms))
}

/// How long until `deadline_ms`, at `now_ms`; `None` when there is no real deadline:
/// 0 (not given), or a value more than a day in the past, which no Lambda sends but
/// emulators do (`cargo lambda watch` sends a bare 600000, a moment in 1970).
fn remaining_ms(deadline_ms: u64, now_ms: u64) -> Option<u64> {
    const NOT_A_DEADLINE_BEFORE_MS: u64 = 86_400_000;
    if deadline_ms == 0 || deadline_ms.saturating_add(NOT_A_DEADLINE_BEFORE_MS) < now_ms {
        return None;
    }
    Some(deadline_ms.saturating_sub(now_ms))
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
    use proptest::prelude::*;

    const NOW_MS: u64 = 1_795_478_400_000;

    #[test]
    fn deadlines_give_the_time_left_and_emulators_placeholders_none() {
        assert_eq!(remaining_ms(NOW_MS + 3_000, NOW_MS), Some(3_000));
        // Just past: a real deadline, already due.
        assert_eq!(remaining_ms(NOW_MS - 5, NOW_MS), Some(0));
        assert_eq!(remaining_ms(0, NOW_MS), None);
        // cargo lambda watch's relative 600000.
        assert_eq!(remaining_ms(600_000, NOW_MS), None);
    }

    proptest! {
        #[test]
        fn any_header_value_gives_a_bounded_answer(deadline in any::<u64>(), now in any::<u64>()) {
            if let Some(left) = remaining_ms(deadline, now) {
                prop_assert!(left <= deadline);
            }
        }
    }

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
