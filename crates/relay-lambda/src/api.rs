//! What the functions share at the Lambda boundary: why a function cannot serve, a
//! JSON answer, and the invocation's deadline. Each function maps its own errors to
//! statuses in one place (`ApiError::status` in [`crate::inbound`],
//! `OutboundError::status` in `relay_app::outbound`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use relay_app::config::ConfigError;
use relay_core::secret::SecretError;

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
    Transport(#[from] relay_aws::transport::TransportError),
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
}
