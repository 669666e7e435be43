//! Status callbacks, built as Twilio posts them but not posted: a test harness turns
//! them into whatever event its function under test receives.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use crate::types::SentMessage;

const API_VERSION: &str = "2010-04-01";

/// Twilio's `ErrorCode` for an `undelivered` message when the caller names none:
/// 30003, "Unreachable destination handset".
pub const UNDELIVERED_ERROR_CODE: u32 = 30003;
/// Twilio's `ErrorCode` for a `failed` message when the caller names none: 30008,
/// "Unknown error".
pub const FAILED_ERROR_CODE: u32 = 30008;

/// One status callback request: Twilio `POST`s `params`, form-urlencoded, to `url` with
/// `X-Twilio-Signature: signature`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCallback {
    /// The message's `StatusCallback`, exactly as it was sent.
    pub url: String,
    /// The form parameters, in the order Twilio writes them.
    pub params: Vec<(String, String)>,
    /// `X-Twilio-Signature`, signed with the account's auth token.
    pub signature: String,
}

impl StatusCallback {
    /// The value of parameter `name`, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `MessageStatus`.
    pub fn status(&self) -> &str {
        self.param("MessageStatus").unwrap_or_default()
    }
}

/// Twilio's `X-Twilio-Signature`: base64 of HMAC-SHA1 keyed by `auth_token` over `url`
/// followed by every parameter sorted by name (then value), each name immediately
/// followed by its value.
pub fn webhook_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    BASE64.encode(mac.finalize().into_bytes())
}

/// The form Twilio posts when `message` moves to `status`, in Twilio's order.
/// `MessagingServiceSid` replaces `From` for a message sent through a Messaging Service.
pub(crate) fn callback_params(
    message: &SentMessage,
    status: &str,
    error_code: Option<u32>,
) -> Vec<(String, String)> {
    let mut params: Vec<(&str, String)> = Vec::with_capacity(10);
    if let Some(code) = error_code {
        params.push(("ErrorCode", code.to_string()));
    }
    params.push(("SmsSid", message.sid.clone()));
    params.push(("SmsStatus", status.to_owned()));
    params.push(("MessageStatus", status.to_owned()));
    params.push(("To", message.to.clone()));
    match (&message.messaging_service_sid, &message.from) {
        (Some(service), _) => params.push(("MessagingServiceSid", service.clone())),
        (None, Some(from)) => params.push(("From", from.clone())),
        (None, None) => {}
    }
    params.push(("MessageSid", message.sid.clone()));
    params.push(("AccountSid", message.account_sid.clone()));
    params.push(("ApiVersion", API_VERSION.to_owned()));
    params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The statuses Twilio calls back over a message's life, ending in `final_status`.
///
/// No callback is sent for a message's initial status: `queued` is called back only
/// for a message sent through a Messaging Service (created `accepted`).
pub(crate) fn life_statuses(message: &SentMessage, final_status: &str) -> Vec<&'static str> {
    let mut statuses = Vec::with_capacity(3);
    if message.status == "accepted" {
        statuses.push("queued");
    }
    // `failed` is Twilio giving up before the carrier took it: never `sent` first.
    if final_status != "failed" {
        statuses.push("sent");
    }
    statuses
}

/// The `ErrorCode` Twilio sends with `status` when the caller names none.
pub(crate) fn default_error_code(status: &str) -> Option<u32> {
    match status {
        "undelivered" => Some(UNDELIVERED_ERROR_CODE),
        "failed" => Some(FAILED_ERROR_CODE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(params: &[(&str, &str)]) -> Vec<(String, String)> {
        params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The vector of the test suite of Twilio's Python helper library
    /// (`tests/unit/test_request_validator.py`).
    #[test]
    fn signature_matches_twilios_vector() {
        let params = owned(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            webhook_signature("12345", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        // The order given does not matter: parameters are sorted by name.
        let mut reversed = params.clone();
        reversed.reverse();
        assert_eq!(
            webhook_signature("12345", url, &reversed),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert_ne!(
            webhook_signature("54321", url, &params),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    /// A repeated name: its values sorted too (the same helper library's tests).
    #[test]
    fn repeated_parameters_sort_by_value() {
        let params = owned(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            webhook_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    /// The vector of Twilio's "Validating Signatures" page.
    #[test]
    fn signature_matches_twilios_docs_example() {
        let params = owned(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]);
        assert_eq!(
            webhook_signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
    }
}
