//! Twilio's JSON error answer.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered the way Twilio answers it:
/// `{"code", "message", "more_info", "status"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TwilioError {
    pub status: u16,
    pub code: u32,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl TwilioError {
    pub fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// A 400 with a validation code.
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    pub fn authenticate() -> Self {
        Self::new(401, 20003, "Authenticate")
    }

    pub fn not_found(path: &str) -> Self {
        Self::new(
            404,
            20404,
            format!("The requested resource {path} was not found"),
        )
    }

    /// Twilio's usual code for a bare HTTP status: 20000 + status (20003 for 401).
    pub fn for_status(status: u16) -> Self {
        let code = if status == 401 {
            20003
        } else {
            20000 + u32::from(status)
        };
        let message = match status {
            401 => "Authenticate",
            _ => StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error"),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for TwilioError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status,
        });
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == 401 {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
