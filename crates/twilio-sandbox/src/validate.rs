//! Checks a Messages POST the way Twilio does, in Twilio's order.

use crate::error::TwilioError;
use crate::types::SentMessage;
use crate::util::{is_sid, new_sid, rfc2822_now};

const MAX_BODY_CHARS: usize = 1600;
const MAX_MEDIA: usize = 10;

/// The first value of `key`, if any.
pub(crate) fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Validates the form of a Messages POST and builds the message it creates.
pub(crate) fn new_message(
    account_sid: &str,
    params: &[(String, String)],
) -> Result<SentMessage, TwilioError> {
    let to = param(params, "To")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad(21604, "A 'To' phone number is required."))?;
    let from = param(params, "From").filter(|v| !v.is_empty());
    let service = param(params, "MessagingServiceSid").filter(|v| !v.is_empty());
    if from.is_none() && service.is_none() {
        return Err(bad(21603, "A 'From' phone number is required."));
    }
    if let Some(sid) = service.filter(|sid| !is_sid(sid, "MG")) {
        return Err(bad(
            21701,
            format!("The Messaging Service Sid {sid} is invalid."),
        ));
    }
    let body = param(params, "Body").unwrap_or_default();
    let media_urls: Vec<String> = params
        .iter()
        .filter(|(k, v)| k == "MediaUrl" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    if body.is_empty() && media_urls.is_empty() {
        return Err(bad(21602, "Message body is required."));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(bad(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    if media_urls.len() > MAX_MEDIA {
        return Err(bad(21623, "Number of media files exceeds allowed limit"));
    }
    if !is_e164(to) {
        return Err(invalid_to(to));
    }
    if let Some(from) = from {
        check_magic_from(from)?;
    }
    check_magic_to(to)?;

    let sid = new_sid(if media_urls.is_empty() { "SM" } else { "MM" });
    Ok(SentMessage {
        sid,
        account_sid: account_sid.to_owned(),
        to: to.to_owned(),
        from: from.map(str::to_owned),
        messaging_service_sid: service.map(str::to_owned),
        body: body.to_owned(),
        media_urls,
        status_callback: param(params, "StatusCallback")
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        date_created: rfc2822_now(),
        status: if service.is_some() {
            "accepted"
        } else {
            "queued"
        }
        .to_owned(),
        error_code: None,
    })
}

/// `+`, then 8 to 15 digits, the first not zero.
pub(crate) fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

/// A 400 answer with a validation code.
fn bad(code: u32, message: impl Into<String>) -> TwilioError {
    TwilioError::bad_request(code, message)
}

fn invalid_to(to: &str) -> TwilioError {
    TwilioError::bad_request(
        21211,
        format!("The 'To' number {to} is not a valid phone number."),
    )
}

/// Twilio's magic test `From` numbers.
fn check_magic_from(from: &str) -> Result<(), TwilioError> {
    match from {
        "+15005550001" => Err(bad(
            21212,
            format!(
                "The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."
            ),
        )),
        "+15005550007" => Err(bad(
            21606,
            format!(
                "The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."
            ),
        )),
        "+15005550008" => Err(bad(
            21611,
            "This 'From' number has exceeded the maximum number of queued messages",
        )),
        _ => Ok(()),
    }
}

/// Twilio's magic test `To` numbers.
fn check_magic_to(to: &str) -> Result<(), TwilioError> {
    match to {
        "+15005550001" => Err(invalid_to(to)),
        "+15005550002" => Err(bad(
            21612,
            "The 'To' phone number is not currently reachable via SMS.",
        )),
        "+15005550003" => Err(bad(
            21408,
            format!(
                "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."
            ),
        )),
        "+15005550004" => Err(bad(21610, "Attempt to send to unsubscribed recipient")),
        "+15005550009" => Err(bad(21614, "'To' number is not a valid mobile number")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        assert!(is_e164("+15005550006"));
        assert!(is_e164("+44123456"));
        assert!(!is_e164("+4412345"));
        assert!(!is_e164("+1234567890123456"));
        assert!(!is_e164("15005550006"));
        assert!(!is_e164("+05005550006"));
        assert!(!is_e164("+1500555000a"));
    }
}
