//! Configuration from the environment, typed and checked once at start.
//!
//! A missing or malformed variable is an error that names the variable; `main` keeps
//! it and fails every invocation with it, so the function never crash-loops at init
//! and never forwards with half a configuration.

use crate::ids::DispatcherId;
use crate::phone::CountryCode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is required but not set")]
    Missing { name: &'static str },
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

impl ConfigError {
    /// The variable at fault, for the log line.
    pub fn variable(&self) -> &'static str {
        match self {
            ConfigError::Missing { name } | ConfigError::Invalid { name, .. } => name,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub state_table: String,
    pub message_table: String,
    pub alert_topic_arn: String,
    pub twilio_secret_id: String,
    /// Only `sms-outbound` needs it; it checks with [`Settings::jwt_secret_id`].
    pub jwt_secret_id: Option<String>,
    pub primary_dispatcher_id: DispatcherId,
    pub heartbeat_max_age_secs: i64,
    /// Scheme and host Twilio calls, without a trailing slash.
    pub public_base_url: Option<String>,
    /// Where the Twilio REST API lives, without a trailing slash.
    pub twilio_api_base: String,
    pub default_country: CountryCode,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`; an empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing { name });
        let invalid = |name: &'static str, value: &str, reason: String| ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason,
        };

        let primary_raw = get("PRIMARY_DISPATCHER_ID").unwrap_or_else(|| "sergio-main".into());
        let primary_dispatcher_id = DispatcherId::parse(&primary_raw)
            .map_err(|e| invalid("PRIMARY_DISPATCHER_ID", &primary_raw, e.to_string()))?;

        let heartbeat_max_age_secs = match get("HEARTBEAT_MAX_AGE_SECS") {
            None => 300,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|secs| *secs > 0)
                .ok_or_else(|| {
                    invalid(
                        "HEARTBEAT_MAX_AGE_SECS",
                        &raw,
                        "expected a positive whole number of seconds".into(),
                    )
                })?,
        };

        let public_base_url = match get("PUBLIC_BASE_URL") {
            None => None,
            Some(raw) => Some(
                http_base_url(&raw).map_err(|reason| invalid("PUBLIC_BASE_URL", &raw, reason))?,
            ),
        };
        let twilio_raw = get("TWILIO_API_BASE").unwrap_or_else(|| "https://api.twilio.com".into());
        let twilio_api_base = http_base_url(&twilio_raw)
            .map_err(|reason| invalid("TWILIO_API_BASE", &twilio_raw, reason))?;

        let country_raw = get("DEFAULT_COUNTRY_CODE").unwrap_or_else(|| "1".into());
        let default_country = CountryCode::parse(&country_raw)
            .map_err(|e| invalid("DEFAULT_COUNTRY_CODE", &country_raw, e.to_string()))?;

        Ok(Settings {
            state_table: get("STATE_TABLE").unwrap_or_else(|| "qdn-dispatcher-state".into()),
            message_table: get("MESSAGE_TABLE").unwrap_or_else(|| "qdn-message-log".into()),
            alert_topic_arn: required("ALERT_TOPIC_ARN")?,
            twilio_secret_id: required("TWILIO_SECRET_ID")?,
            jwt_secret_id: get("JWT_SECRET_ID"),
            primary_dispatcher_id,
            heartbeat_max_age_secs,
            public_base_url,
            twilio_api_base,
            default_country,
        })
    }

    pub fn jwt_secret_id(&self) -> Result<&str, ConfigError> {
        self.jwt_secret_id.as_deref().ok_or(ConfigError::Missing {
            name: "JWT_SECRET_ID",
        })
    }
}

/// An `http(s)://host...` URL with any trailing slash removed.
fn http_base_url(raw: &str) -> Result<String, String> {
    let parsed = url::Url::parse(raw).map_err(|e| e.to_string())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err("expected an http:// or https:// URL with a host".into());
    }
    Ok(raw.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    const REQUIRED: [(&str, &str); 2] = [
        (
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:qdn-alerts",
        ),
        ("TWILIO_SECRET_ID", "qdn/twilio"),
    ];

    #[test]
    fn defaults_match_the_contract() {
        let s = settings(&REQUIRED).unwrap();
        assert_eq!(s.state_table, "qdn-dispatcher-state");
        assert_eq!(s.message_table, "qdn-message-log");
        assert_eq!(s.primary_dispatcher_id.as_str(), "sergio-main");
        assert_eq!(s.heartbeat_max_age_secs, 300);
        assert_eq!(s.public_base_url, None);
        assert_eq!(s.twilio_api_base, "https://api.twilio.com");
        assert_eq!(s.default_country, CountryCode::NANP);
        assert_eq!(s.jwt_secret_id, None);
        assert_eq!(s.jwt_secret_id().unwrap_err().variable(), "JWT_SECRET_ID");
    }

    #[test]
    fn missing_required_variables_are_named() {
        let err = settings(&REQUIRED[..1]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                name: "TWILIO_SECRET_ID"
            }
        );
        let err = settings(&[("TWILIO_SECRET_ID", "x"), ("ALERT_TOPIC_ARN", "  ")]).unwrap_err();
        assert_eq!(err.variable(), "ALERT_TOPIC_ARN");
        assert!(err.to_string().contains("ALERT_TOPIC_ARN"));
    }

    #[test]
    fn malformed_values_are_named() {
        for (name, value) in [
            ("HEARTBEAT_MAX_AGE_SECS", "five"),
            ("HEARTBEAT_MAX_AGE_SECS", "-1"),
            ("PUBLIC_BASE_URL", "dashboard.quickdumpnow.com"),
            ("TWILIO_API_BASE", "ftp://x"),
            ("DEFAULT_COUNTRY_CODE", "abc"),
            ("PRIMARY_DISPATCHER_ID", "has space"),
        ] {
            let mut vars = REQUIRED.to_vec();
            vars.push((name, value));
            let err = settings(&vars).unwrap_err();
            assert_eq!(err.variable(), name, "{value}");
        }
    }

    #[test]
    fn overrides_are_read() {
        let mut vars = REQUIRED.to_vec();
        vars.extend([
            ("STATE_TABLE", "s"),
            ("MESSAGE_TABLE", "m"),
            ("PRIMARY_DISPATCHER_ID", "ana"),
            ("HEARTBEAT_MAX_AGE_SECS", "60"),
            ("PUBLIC_BASE_URL", "https://dashboard.quickdumpnow.com/"),
            ("TWILIO_API_BASE", "http://127.0.0.1:4599"),
            ("DEFAULT_COUNTRY_CODE", "44"),
            ("JWT_SECRET_ID", "qdn/jwt"),
        ]);
        let s = settings(&vars).unwrap();
        assert_eq!(s.state_table, "s");
        assert_eq!(s.message_table, "m");
        assert_eq!(s.primary_dispatcher_id.as_str(), "ana");
        assert_eq!(s.heartbeat_max_age_secs, 60);
        assert_eq!(
            s.public_base_url.as_deref(),
            Some("https://dashboard.quickdumpnow.com")
        );
        assert_eq!(s.twilio_api_base, "http://127.0.0.1:4599");
        assert_eq!(s.default_country, CountryCode::parse("44").unwrap());
        assert_eq!(s.jwt_secret_id().unwrap(), "qdn/jwt");
    }
}
