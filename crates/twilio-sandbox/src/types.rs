//! Configuration, records and faults: the sandbox's public data types.

use serde::{Deserialize, Serialize};

/// Account SID the binary accepts by default.
pub const DEFAULT_ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
/// Auth token the binary accepts by default.
pub const DEFAULT_AUTH_TOKEN: &str = "sandbox-auth-token";

/// Which credentials the sandbox accepts.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    pub accounts: Vec<Account>,
}

impl SandboxConfig {
    /// A config accepting exactly one account.
    pub fn single(account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self {
            accounts: vec![Account {
                account_sid: account_sid.into(),
                auth_token: auth_token.into(),
            }],
        }
    }
}

impl Default for SandboxConfig {
    /// One account: [`DEFAULT_ACCOUNT_SID`] / [`DEFAULT_AUTH_TOKEN`].
    fn default() -> Self {
        Self::single(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
    }
}

/// An account SID and the auth token that authenticates it.
#[derive(Clone, Debug)]
pub struct Account {
    pub account_sid: String,
    pub auth_token: String,
}

/// A message the sandbox accepted (answered 201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub body: String,
    pub media_urls: Vec<String>,
    pub status_callback: Option<String>,
    /// RFC 2822, as Twilio writes it: `Mon, 23 Nov 2026 23:59:26 +0000`.
    pub date_created: String,
    /// `queued`, or `accepted` when sent through a Messaging Service; then whatever
    /// [`Sandbox::status_callback`](crate::Sandbox::status_callback) moved it to.
    pub status: String,
    /// Twilio's error code for an `undelivered` or `failed` message.
    #[serde(default)]
    pub error_code: Option<u32>,
}

/// One `POST .../Messages.json` attempt, accepted or not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The account SID in the request path.
    pub account_sid: String,
    pub to: Option<String>,
    /// Form parameters in the order received (repeated keys kept).
    pub params: Vec<(String, String)>,
    /// HTTP status answered.
    pub status: u16,
    /// Twilio error code answered, if any.
    pub error_code: Option<u32>,
}

/// A scripted misbehaviour for upcoming Messages POSTs.
///
/// Faults form a FIFO list; each authenticated POST takes the first matching
/// fault with `times > 0` and uses it up once. `status` of 400 or more answers
/// that error (nothing is recorded as sent); otherwise only `delay_ms` applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub code: Option<u32>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default = "one")]
    pub times: u32,
    #[serde(default)]
    pub delay_ms: u64,
    /// Only requests whose `To` equals this match.
    #[serde(default)]
    pub to: Option<String>,
    /// Sent as `Retry-After` with the error.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
}

fn one() -> u32 {
    1
}

impl Default for Fault {
    fn default() -> Self {
        Self {
            status: None,
            code: None,
            message: None,
            times: 1,
            delay_ms: 0,
            to: None,
            retry_after_secs: None,
        }
    }
}

impl Fault {
    /// Answer `status` once, with Twilio's default code and message for it.
    pub fn status(status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }

    /// Answer 429 (code 20429) once, with an optional `Retry-After`.
    pub fn rate_limited(retry_after_secs: Option<u64>) -> Self {
        Self {
            retry_after_secs,
            ..Self::status(429)
        }
    }

    /// Only wait `delay_ms` before answering normally, once.
    pub fn slow(delay_ms: u64) -> Self {
        Self {
            delay_ms,
            ..Self::default()
        }
    }

    /// Apply this fault to the next `times` matching requests.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    /// Only match requests sent to `to`.
    pub fn to(mut self, to: impl Into<String>) -> Self {
        self.to = Some(to.into());
        self
    }

    /// Answer this Twilio error code (and message) instead of the default.
    pub fn code(mut self, code: u32, message: impl Into<String>) -> Self {
        self.code = Some(code);
        self.message = Some(message.into());
        self
    }

    /// Wait this long before answering.
    pub fn delay_ms(mut self, delay_ms: u64) -> Self {
        self.delay_ms = delay_ms;
        self
    }
}
