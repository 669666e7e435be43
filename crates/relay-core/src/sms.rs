//! A text as the relay handles it: what Twilio's messaging webhook says of it, the
//! keywords a dispatcher texts, and the text a dispatcher receives.

use crate::ids::MessageSid;

/// Twilio's limit for one message body, in characters.
pub const MAX_SMS_CHARS: usize = 1600;

/// Twilio allows at most ten media items on a message.
pub const MAX_MEDIA: usize = 10;

/// Room kept in every forwarded text for the relay's own lines: the reference lines
/// (`crate::reference::reference_lines`) and an escalation's first line.
pub const RELAY_LINES_RESERVE: usize = 160;

/// Appended when a forwarded text had to be shortened to fit [`MAX_SMS_CHARS`].
const TRUNCATION_MARK: &str = " [cut]";

/// Why a webhook's parameters do not describe a text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("missing or empty parameter {0}")]
    Missing(&'static str),
    #[error("parameter {field} is invalid: {detail}")]
    Invalid { field: &'static str, detail: String },
}

/// A webhook's POST parameters, by name.
pub struct Form<'a>(pub &'a [(String, String)]);

impl Form<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A parameter that must be there and not blank.
    pub fn required(&self, name: &'static str) -> Result<&str, FieldError> {
        self.param(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(FieldError::Missing(name))
    }
}

/// A driver's (or dispatcher's) text as Twilio's messaging webhook describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSms {
    pub sid: MessageSid,
    /// As Twilio sent it; usually E.164, but may be a short code or alphanumeric ID.
    pub from: String,
    pub to: String,
    pub body: String,
    pub media_urls: Vec<String>,
}

impl InboundSms {
    /// Reads the webhook's POST parameters: `MessageSid`, `From` and `To` are needed,
    /// `Body` may be empty, and `NumMedia` says how many `MediaUrlN` there are.
    pub fn from_form(form: &[(String, String)]) -> Result<Self, FieldError> {
        let form = Form(form);
        let sid =
            MessageSid::parse(form.required("MessageSid")?).map_err(|e| FieldError::Invalid {
                field: "MessageSid",
                detail: e.to_string(),
            })?;
        let from = form.required("From")?.to_string();
        let to = form.required("To")?.to_string();
        let body = form.param("Body").unwrap_or_default().to_string();
        let num_media = match form.param("NumMedia").map(str::trim) {
            None | Some("") => 0,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= MAX_MEDIA)
                .ok_or_else(|| FieldError::Invalid {
                    field: "NumMedia",
                    detail: format!("{raw:?} is not a count from 0 to {MAX_MEDIA}"),
                })?,
        };
        let media_urls = (0..num_media)
            .map(|i| {
                let field = format!("MediaUrl{i}");
                form.param(&field)
                    .map(str::trim)
                    .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
                    .map(str::to_string)
                    .ok_or_else(|| FieldError::Invalid {
                        field: "NumMedia",
                        detail: format!(
                            "says {num_media} media but {field} is missing or not a URL"
                        ),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(InboundSms {
            sid,
            from,
            to,
            body,
            media_urls,
        })
    }
}

/// The longest word `ACK` may be followed by and still be a command.
pub const MAX_ACK_WORD: usize = 20;

/// A keyword a dispatcher texts from their own phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    On,
    Off,
    Ack { reference: Option<String> },
}

impl Command {
    /// `ON`, `OFF`, `ACK` or `ACK <reference>`, any case, surrounding space ignored.
    pub fn parse(body: &str) -> Option<Command> {
        let mut words = body.split_whitespace();
        let keyword = words.next()?.to_ascii_uppercase();
        let argument = words.next();
        if words.next().is_some() {
            return None;
        }
        match (keyword.as_str(), argument) {
            ("ON", None) => Some(Command::On),
            ("OFF", None) => Some(Command::Off),
            ("ACK", None) => Some(Command::Ack { reference: None }),
            // Any one word a dispatcher might type after ACK (a reference, a job
            // number): a command, never relayed, known or not.
            ("ACK", Some(reference))
                if reference.len() <= MAX_ACK_WORD
                    && reference
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                Some(Command::Ack {
                    reference: Some(reference.to_ascii_uppercase()),
                })
            }
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Command::On => "ON",
            Command::Off => "OFF",
            Command::Ack { .. } => "ACK",
        }
    }
}

/// The text a dispatcher receives: the driver's number, then their words. Shortened
/// (and marked) only if the whole would pass Twilio's limit.
pub fn forwarded_text(sms: &InboundSms, reserve: usize) -> (String, bool) {
    let limit = MAX_SMS_CHARS - reserve;
    let body = sms.body.trim();
    let text = if body.is_empty() && !sms.media_urls.is_empty() {
        format!(
            "QDN driver {}: (sent {} attachment(s))",
            sms.from,
            sms.media_urls.len()
        )
    } else {
        format!("QDN driver {}: {}", sms.from, body)
    };
    if text.chars().count() <= limit {
        return (text, false);
    }
    let keep = limit - TRUNCATION_MARK.chars().count();
    let mut cut: String = text.chars().take(keep).collect();
    cut.push_str(TRUNCATION_MARK);
    (cut, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(body: &str, media: usize) -> InboundSms {
        InboundSms {
            sid: MessageSid::parse("SM0123456789abcdef0123456789abcdef").unwrap(),
            from: "+15551230000".into(),
            to: "+18585550000".into(),
            body: body.into(),
            media_urls: (0..media).map(|i| format!("https://m/{i}")).collect(),
        }
    }

    #[test]
    fn forwarded_text_carries_the_drivers_number_and_words() {
        assert_eq!(
            forwarded_text(&sms(" Load ready at 5th & Main ", 0), 0),
            (
                "QDN driver +15551230000: Load ready at 5th & Main".to_string(),
                false
            )
        );
        assert_eq!(
            forwarded_text(&sms("", 2), 0).0,
            "QDN driver +15551230000: (sent 2 attachment(s))"
        );
    }

    #[test]
    fn forwarded_text_fits_twilios_limit() {
        let (text, cut) = forwarded_text(&sms(&"é".repeat(1600), 0), 0);
        assert!(cut);
        assert_eq!(text.chars().count(), MAX_SMS_CHARS);
        assert!(text.ends_with(TRUNCATION_MARK));
        let exact = "x".repeat(MAX_SMS_CHARS - "QDN driver +15551230000: ".len());
        assert!(!forwarded_text(&sms(&exact, 0), 0).1);
        let (reserved, cut) = forwarded_text(&sms(&exact, 0), RELAY_LINES_RESERVE);
        assert!(cut);
        assert_eq!(
            reserved.chars().count(),
            MAX_SMS_CHARS - RELAY_LINES_RESERVE
        );
    }

    fn form(params: &[(&str, &str)]) -> Vec<(String, String)> {
        params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const SID: &str = "SM0123456789abcdef0123456789abcdef";

    #[test]
    fn inbound_sms_needs_sid_from_and_to() {
        let ok = InboundSms::from_form(&form(&[("MessageSid", SID), ("From", "+1"), ("To", "+2")]));
        assert_eq!(ok.unwrap().body, "");
        for missing in ["MessageSid", "From", "To"] {
            let params: Vec<(&str, &str)> = [("MessageSid", SID), ("From", "+1"), ("To", "+2")]
                .into_iter()
                .filter(|(k, _)| *k != missing)
                .collect();
            assert_eq!(
                InboundSms::from_form(&form(&params)),
                Err(FieldError::Missing(match missing {
                    "MessageSid" => "MessageSid",
                    "From" => "From",
                    _ => "To",
                }))
            );
        }
        let bad_sid = InboundSms::from_form(&form(&[
            ("MessageSid", "SM1"),
            ("From", "+1"),
            ("To", "+2"),
        ]));
        assert!(matches!(
            bad_sid,
            Err(FieldError::Invalid {
                field: "MessageSid",
                ..
            })
        ));
    }

    #[test]
    fn media_urls_follow_num_media() {
        let sms = InboundSms::from_form(&form(&[
            ("MessageSid", SID),
            ("From", "+1"),
            ("To", "+2"),
            ("NumMedia", "2"),
            ("MediaUrl1", "https://media/b"),
            ("MediaUrl0", "https://media/a"),
        ]))
        .unwrap();
        assert_eq!(sms.media_urls, vec!["https://media/a", "https://media/b"]);
        let short = InboundSms::from_form(&form(&[
            ("MessageSid", SID),
            ("From", "+1"),
            ("To", "+2"),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://media/a"),
        ]));
        assert!(matches!(
            short,
            Err(FieldError::Invalid {
                field: "NumMedia",
                ..
            })
        ));
    }

    #[test]
    fn keywords() {
        assert_eq!(Command::parse(" on "), Some(Command::On));
        assert_eq!(Command::parse("Off"), Some(Command::Off));
        assert_eq!(
            Command::parse("ack"),
            Some(Command::Ack { reference: None })
        );
        assert_eq!(
            Command::parse("ACK k7q"),
            Some(Command::Ack {
                reference: Some("K7Q".into())
            })
        );
        assert_eq!(Command::parse("on my way"), None);
        assert_eq!(Command::parse("offload at 5"), None);
        assert_eq!(Command::parse("ACK K7Q please"), None);
        assert_eq!(
            Command::parse("ack job-1042"),
            Some(Command::Ack {
                reference: Some("JOB-1042".into())
            })
        );
        assert!(Command::parse(&format!("ACK {}", "J".repeat(MAX_ACK_WORD))).is_some());
        assert_eq!(Command::parse(&format!("ACK {}", "J".repeat(21))), None);
        assert_eq!(Command::parse("ACK job_1042"), None);
        assert_eq!(Command::parse(""), None);
    }
}
