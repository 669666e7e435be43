//! `qdn webhook --url URL --from N --body TEXT`: a driver's text posted to a webhook,
//! signed exactly as Twilio signs it: a smoke test of a deployed stack.

use std::error::Error as _;
use std::time::Duration;

use relay_core::phone::PhoneNumber;
use relay_core::signature::compute_signature;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::cli::WebhookArgs;
use crate::context::{self, CommandResult, Done, Failure, Settings};
use crate::format::{out, out_json};

/// Longer than Twilio waits for a webhook (15 s), so a slow answer is still seen.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A fresh Twilio-shaped message SID: `SM` and 32 hexadecimal digits.
pub fn fresh_message_sid() -> String {
    format!("SM{:032x}", rand::random::<u128>())
}

/// The form Twilio posts for an incoming SMS, in Twilio's order. Location fields
/// Twilio fills from carrier data are sent empty, as Twilio does when it has none.
pub fn twilio_form(
    sid: &str,
    account_sid: &str,
    from: &PhoneNumber,
    to: &PhoneNumber,
    body: &str,
) -> Vec<(String, String)> {
    let country = |n: &PhoneNumber| {
        if n.as_str().starts_with("+1") {
            "US"
        } else {
            ""
        }
    };
    [
        ("ToCountry", country(to)),
        ("ToState", ""),
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ToCity", ""),
        ("FromZip", ""),
        ("SmsSid", sid),
        ("FromState", ""),
        ("SmsStatus", "received"),
        ("FromCity", ""),
        ("Body", body),
        ("FromCountry", country(from)),
        ("To", to.as_str()),
        ("ToZip", ""),
        ("NumSegments", "1"),
        ("MessageSid", sid),
        ("AccountSid", account_sid),
        ("From", from.as_str()),
        ("ApiVersion", "2010-04-01"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .collect()
}

/// An error and its causes on one line (reqwest's own message says little).
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub async fn run(settings: &Settings, args: WebhookArgs) -> CommandResult {
    let url =
        url::Url::parse(args.url.trim()).map_err(|e| Failure::usage(format!("--url: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::usage("--url: must be an http:// or https:// URL"));
    }
    let country = settings.default_country;
    let from = PhoneNumber::parse(&args.from, country)
        .map_err(|e| Failure::usage(format!("--from: {e}")))?;
    let to_flag = args
        .to
        .as_deref()
        .map(|raw| PhoneNumber::parse(raw, country))
        .transpose()
        .map_err(|e| Failure::usage(format!("--to: {e}")))?;
    let secret_id = settings.twilio_secret_id()?;
    let aws = context::aws_config().await;
    let secrets = context::secret_cache(&aws)?;
    let account = secrets.twilio_account(secret_id, country).await?;
    let to = to_flag.or(account.from_number.clone()).ok_or_else(|| {
        Failure::usage(format!(
            "the Twilio secret {secret_id} has no from_number: give --to"
        ))
    })?;

    let sid = fresh_message_sid();
    let form = twilio_form(&sid, account.account_sid.as_str(), &from, &to, &args.body);
    // Twilio signs the URL as configured: the flag exactly as given.
    let signed_url = args.url.trim();
    let signature = compute_signature(account.auth_token.expose_secret(), signed_url, &form);
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .user_agent("TwilioProxy/1.1")
        .build()
        .map_err(|e| Failure::aws(format!("the HTTP client could not start: {}", chain(&e))))?;
    let response = client
        .post(url)
        .header("X-Twilio-Signature", &signature)
        .form(&form)
        .send()
        .await
        .map_err(|e| Failure::aws(format!("could not reach {signed_url}: {}", chain(&e))))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response
        .text()
        .await
        .map_err(|e| Failure::aws(format!("reading the answer failed: {}", chain(&e))))?;
    if settings.json {
        out_json(&json!({
            "message_sid": sid,
            "url": signed_url,
            "status": status.as_u16(),
            "content_type": content_type,
            "body": body,
        }));
    } else {
        let mut text = format!("POST {signed_url}\nMessageSid {sid} from {from} to {to}\n{status}");
        if let Some(content_type) = content_type {
            text.push_str(&format!(" ({content_type})"));
        }
        text.push('\n');
        text.push_str(&body);
        out(&text);
    }
    if status.is_success() {
        Ok(Done::Ok)
    } else {
        Err(Failure {
            status: 1,
            message: format!("the webhook answered {status}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use relay_core::phone::CountryCode;

    use super::*;

    #[test]
    fn the_form_has_what_twilio_sends() {
        let sid = fresh_message_sid();
        assert!(relay_core::ids::MessageSid::parse(&sid).is_ok(), "{sid}");
        let from = PhoneNumber::parse("619-555-0123", CountryCode::NANP).unwrap();
        let to = PhoneNumber::parse("+15005550006", CountryCode::NANP).unwrap();
        let form = twilio_form(&sid, "AC00000000000000000000000000000001", &from, &to, "hi");
        let get = |name: &str| {
            form.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(get("MessageSid"), sid);
        assert_eq!(get("SmsSid"), sid);
        assert_eq!(get("SmsMessageSid"), sid);
        assert_eq!(get("From"), "+16195550123");
        assert_eq!(get("To"), "+15005550006");
        assert_eq!(get("Body"), "hi");
        assert_eq!(get("NumMedia"), "0");
        assert_eq!(get("SmsStatus"), "received");
        assert_eq!(get("ApiVersion"), "2010-04-01");
        assert_eq!(form.len(), 19);
        assert_ne!(fresh_message_sid(), sid);
    }
}
