//! The outbound request body and the stamped text it becomes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ids::DispatcherId;
use crate::phone::{CountryCode, PhoneNumber};
use crate::sms::MAX_SMS_CHARS;

/// Job references are short codes (`JOB-1042`); anything longer is a mistake.
pub const MAX_JOB_REF_CHARS: usize = 64;

/// Why a request body is refused (`400`, naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    #[error("{0} is missing")]
    MissingField(&'static str),
    #[error("{0} is empty")]
    EmptyField(&'static str),
    #[error("{field} is invalid: {reason}")]
    InvalidField { field: &'static str, reason: String },
}

impl RequestError {
    pub fn field(&self) -> Option<&'static str> {
        match self {
            RequestError::NotJson(_) => None,
            RequestError::MissingField(field)
            | RequestError::EmptyField(field)
            | RequestError::InvalidField { field, .. } => Some(field),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            RequestError::NotJson(_) => "not_json",
            RequestError::MissingField(_) => "missing_field",
            RequestError::EmptyField(_) => "empty_field",
            RequestError::InvalidField { .. } => "invalid_field",
        }
    }
}

/// `{"to", "body", "job_ref"}`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub to: PhoneNumber,
    pub body: String,
    pub job_ref: String,
}

impl OutboundRequest {
    pub fn parse(json: &[u8], default_country: CountryCode) -> Result<Self, RequestError> {
        let value: Value =
            serde_json::from_slice(json).map_err(|e| RequestError::NotJson(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(RequestError::NotJson("expected an object".into()));
        };
        let text = |field: &'static str| -> Result<String, RequestError> {
            match fields.get(field) {
                None | Some(Value::Null) => Err(RequestError::MissingField(field)),
                Some(Value::String(s)) if s.trim().is_empty() => {
                    Err(RequestError::EmptyField(field))
                }
                Some(Value::String(s)) => Ok(s.trim().to_string()),
                Some(_) => Err(RequestError::InvalidField {
                    field,
                    reason: "expected a string".into(),
                }),
            }
        };
        let to_raw = text("to")?;
        let to = PhoneNumber::parse(&to_raw, default_country).map_err(|e| {
            RequestError::InvalidField {
                field: "to",
                reason: e.reason().to_string(),
            }
        })?;
        let body = text("body")?;
        let job_ref = text("job_ref")?;
        if job_ref.chars().count() > MAX_JOB_REF_CHARS {
            return Err(RequestError::InvalidField {
                field: "job_ref",
                reason: format!("longer than {MAX_JOB_REF_CHARS} characters"),
            });
        }
        if job_ref.chars().any(char::is_control) {
            return Err(RequestError::InvalidField {
                field: "job_ref",
                reason: "it holds a control character (a line break?)".into(),
            });
        }
        Ok(OutboundRequest { to, body, job_ref })
    }

    /// A digest of what the request asks for, so a reused `Idempotency-Key` can be
    /// told apart from a retry. Length-prefixed, so no two requests share one.
    pub fn fingerprint(&self) -> String {
        let mut hash = Sha256::new();
        for part in [self.to.as_str(), self.body.as_str(), self.job_ref.as_str()] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        URL_SAFE_NO_PAD.encode(hash.finalize())
    }

    /// The text the driver receives: the body, then a line with the job reference, the
    /// dispatcher and the UTC time. Plain GSM characters, so the stamp does not turn
    /// the message into (shorter) UCS-2 segments. Refused if it would pass Twilio's
    /// limit.
    pub fn stamped(&self, dispatcher: &DispatcherId, at: i64) -> Result<String, RequestError> {
        let text = stamp(&self.body, &self.job_ref, dispatcher, at);
        let length = text.chars().count();
        if length > MAX_SMS_CHARS {
            let room = MAX_SMS_CHARS - (length - self.body.chars().count());
            return Err(RequestError::InvalidField {
                field: "body",
                reason: format!(
                    "stamped it is {length} characters, over Twilio's {MAX_SMS_CHARS}; \
                     the body may have at most {room}"
                ),
            });
        }
        Ok(text)
    }
}

/// `<body>\n-- Job <job_ref> / <dispatcher> / <YYYY-MM-DDTHH:MM:SSZ>`.
pub fn stamp(body: &str, job_ref: &str, dispatcher: &DispatcherId, at: i64) -> String {
    format!(
        "{body}\n-- Job {job_ref} / {dispatcher} / {}",
        iso8601_utc(at)
    )
}

/// A dispatcher's answer by text: `<answer>\n-- <signer> / <YYYY-MM-DDTHH:MM:SSZ>`, the
/// outbound stamp without a job reference (the answer names no job).
pub fn stamp_answer(answer: &str, signer: &impl std::fmt::Display, at: i64) -> String {
    format!("{answer}\n-- {signer} / {}", iso8601_utc(at))
}

/// Unix seconds as ISO 8601 UTC, to the second: `2026-11-24T16:05:09Z`.
pub fn iso8601_utc(unix_secs: i64) -> String {
    match Timestamp::from_second(unix_secs) {
        Ok(at) => at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        // Outside jiff's range (years -9999..=9999): no real clock says that.
        Err(_) => format!("@{unix_secs}"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn parse(value: Value) -> Result<OutboundRequest, RequestError> {
        OutboundRequest::parse(value.to_string().as_bytes(), CountryCode::NANP)
    }

    fn ok() -> Value {
        json!({"to": "619-555-0123", "body": "Gate code is 4412", "job_ref": "JOB-1042"})
    }

    #[test]
    fn a_good_request_is_normalised() {
        let request = parse(ok()).unwrap();
        assert_eq!(request.to.as_str(), "+16195550123");
        assert_eq!(request.body, "Gate code is 4412");
        assert_eq!(request.job_ref, "JOB-1042");
    }

    #[test]
    fn each_problem_names_its_field() {
        let cases: Vec<(Value, RequestError)> = vec![
            (
                json!({"body": "b", "job_ref": "j"}),
                RequestError::MissingField("to"),
            ),
            (
                json!({"to": "+16195550123", "job_ref": "j"}),
                RequestError::MissingField("body"),
            ),
            (
                json!({"to": "+16195550123", "body": "b"}),
                RequestError::MissingField("job_ref"),
            ),
            (
                json!({"to": " ", "body": "b", "job_ref": "j"}),
                RequestError::EmptyField("to"),
            ),
            (
                json!({"to": "+16195550123", "body": "", "job_ref": "j"}),
                RequestError::EmptyField("body"),
            ),
            (
                json!({"to": "+16195550123", "body": "b", "job_ref": null}),
                RequestError::MissingField("job_ref"),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse(value.clone()).unwrap_err(), expected, "{value}");
        }
        for (value, field) in [
            (json!({"to": "555-01", "body": "b", "job_ref": "j"}), "to"),
            (
                json!({"to": 6195550123u64, "body": "b", "job_ref": "j"}),
                "to",
            ),
            (
                json!({"to": "+16195550123", "body": ["b"], "job_ref": "j"}),
                "body",
            ),
            (
                json!({"to": "+16195550123", "body": "b", "job_ref": "a\nb"}),
                "job_ref",
            ),
            (
                json!({"to": "+16195550123", "body": "b", "job_ref": "j".repeat(65)}),
                "job_ref",
            ),
        ] {
            assert_eq!(
                parse(value.clone()).unwrap_err().field(),
                Some(field),
                "{value}"
            );
        }
        for raw in ["", "{", "[]", "\"text\"", "to=1"] {
            let err = OutboundRequest::parse(raw.as_bytes(), CountryCode::NANP).unwrap_err();
            assert_eq!(err.code(), "not_json", "{raw}");
            assert_eq!(err.field(), None);
        }
    }

    #[test]
    fn the_stamp_reads_on_a_phone() {
        let dispatcher = DispatcherId::parse("sergio-main").unwrap();
        let request = parse(ok()).unwrap();
        assert_eq!(
            request.stamped(&dispatcher, 1_795_500_309).unwrap(),
            "Gate code is 4412\n-- Job JOB-1042 / sergio-main / 2026-11-24T06:05:09Z"
        );
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn the_stamped_text_must_fit_twilios_limit() {
        let dispatcher = DispatcherId::parse("sergio-main").unwrap();
        let overhead = stamp("", "JOB-1042", &dispatcher, 0).chars().count();
        let fits = MAX_SMS_CHARS - overhead;
        let mut request = parse(ok()).unwrap();
        request.body = "é".repeat(fits);
        assert_eq!(
            request.stamped(&dispatcher, 0).unwrap().chars().count(),
            MAX_SMS_CHARS
        );
        request.body.push('x');
        let err = request.stamped(&dispatcher, 0).unwrap_err();
        assert_eq!(err.field(), Some("body"));
        assert!(
            err.to_string().contains(&format!("at most {fits}")),
            "{err}"
        );
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let a = parse(ok()).unwrap();
        let mut b = a.clone();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.body.push('!');
        assert_ne!(a.fingerprint(), b.fingerprint());
        // Moving text between fields is another request too.
        let mut c = a.clone();
        c.body = format!("{}J", a.body);
        c.job_ref = "OB-1042".into();
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    proptest! {
        /// Any bytes: a request or a 400 naming what is wrong, never a panic.
        #[test]
        fn any_body_parses_or_is_refused(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            match OutboundRequest::parse(&raw, CountryCode::NANP) {
                Ok(request) => {
                    prop_assert!(!request.body.is_empty() && !request.job_ref.is_empty());
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }

        /// Well-formed requests with arbitrary text keep their words, and stamping
        /// either fits Twilio's limit or is refused for the body.
        #[test]
        fn texts_survive_and_stamps_fit(
            body in "\\PC{1,1700}",
            job_ref in "[A-Z0-9-]{1,20}",
            at in 0i64..4_102_444_800,
        ) {
            prop_assume!(!body.trim().is_empty());
            let value = json!({"to": "+16195550123", "body": body, "job_ref": job_ref});
            let request = parse(value).unwrap();
            prop_assert_eq!(&request.body, body.trim());
            let dispatcher = DispatcherId::parse("sergio-main").unwrap();
            match request.stamped(&dispatcher, at) {
                Ok(text) => {
                    prop_assert!(text.chars().count() <= MAX_SMS_CHARS);
                    prop_assert!(text.starts_with(body.trim()));
                    let stamp_line = text.lines().last().unwrap();
                    let job_line = format!("-- Job {job_ref} / sergio-main / ");
                    prop_assert!(stamp_line.starts_with(&job_line));
                    prop_assert!(stamp_line.ends_with('Z'));
                }
                Err(error) => prop_assert_eq!(error.field(), Some("body")),
            }
        }
    }
}
