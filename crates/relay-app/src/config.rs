//! Configuration from the environment, typed and checked once at start.
//!
//! A missing or malformed variable is an error that names the variable; `main` keeps
//! it and fails every invocation with it, so the function never crash-loops at init
//! and never forwards with half a configuration.

use std::time::Duration;

use relay_core::ids::DispatcherId;
use relay_core::phone::CountryCode;

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

/// Reads variables through a lookup (the process environment, or a map in tests); an
/// empty value counts as unset. Each binary reads only the variables it needs.
struct Env<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing { name })
    }

    fn or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_string())
    }

    /// Parses the variable (or `default` when unset) with `parse`, naming it on error.
    fn parsed<T>(
        &self,
        name: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.or(name, default);
        parse(&raw).map_err(|reason| ConfigError::Invalid {
            name,
            value: raw.clone(),
            reason,
        })
    }

    fn seconds(&self, name: &'static str, default: &str, min: u64) -> Result<u64, ConfigError> {
        self.parsed(name, default, |raw| {
            raw.parse::<u64>()
                .ok()
                .filter(|secs| *secs >= min)
                .ok_or_else(|| format!("expected a whole number of seconds, at least {min}"))
        })
    }

    fn tables(&self) -> Tables {
        Tables {
            state_table: self.or("STATE_TABLE", "qdn-dispatcher-state"),
            message_table: self.or("MESSAGE_TABLE", "qdn-message-log"),
        }
    }

    fn country(&self) -> Result<CountryCode, ConfigError> {
        self.parsed("DEFAULT_COUNTRY_CODE", "1", |raw| {
            CountryCode::parse(raw).map_err(|e| e.to_string())
        })
    }

    fn twilio_api_base(&self) -> Result<String, ConfigError> {
        self.parsed("TWILIO_API_BASE", "https://api.twilio.com", http_base_url)
    }

    fn secret_cache(&self) -> Result<SecretCacheSettings, ConfigError> {
        Ok(SecretCacheSettings {
            ttl: Duration::from_secs(self.seconds("SECRET_CACHE_TTL_SECS", "300", 1)?),
            refresh_after: Duration::from_secs(self.seconds(
                "SECRET_REFRESH_AFTER_SECS",
                "60",
                0,
            )?),
        })
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// `REPLY_WINDOW_SECS` (default 7200): how long a relayed text can be answered by
    /// text; at most a week (a reference is reserved that long).
    fn reply_window_secs(&self) -> Result<u64, ConfigError> {
        self.parsed("REPLY_WINDOW_SECS", "7200", |raw| {
            raw.parse::<u64>()
                .ok()
                .filter(|secs| (1..=MAX_REPLY_WINDOW_SECS).contains(secs))
                .ok_or_else(|| format!("expected 1 to {MAX_REPLY_WINDOW_SECS} seconds (a week)"))
        })
    }

    /// `PRIMARY_DISPATCHER_ID` (default `sergio-main`): the primary when no rota
    /// covers the instant.
    fn primary_dispatcher_id(&self) -> Result<DispatcherId, ConfigError> {
        self.parsed("PRIMARY_DISPATCHER_ID", "sergio-main", |raw| {
            DispatcherId::parse(raw).map_err(|e| e.to_string())
        })
    }

    /// `HEARTBEAT_MAX_AGE_SECS` (default 300).
    fn heartbeat_max_age_secs(&self) -> Result<i64, ConfigError> {
        Ok(self.seconds("HEARTBEAT_MAX_AGE_SECS", "300", 1)? as i64)
    }

    /// `ESCALATION_REPEATS` (default 0): more rounds for a text nobody acknowledges.
    fn escalation_repeats(&self) -> Result<u32, ConfigError> {
        self.parsed("ESCALATION_REPEATS", "0", |raw| {
            raw.parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_ESCALATION_REPEATS)
                .ok_or_else(|| format!("expected 0 to {MAX_ESCALATION_REPEATS} rounds"))
        })
    }

    /// Acknowledgement is on when `ACK_QUEUE_URL` is set.
    fn ack(&self) -> Result<Option<AckSettings>, ConfigError> {
        let Some(queue_url) = self.get("ACK_QUEUE_URL") else {
            return Ok(None);
        };
        let queue_url = self.parsed("ACK_QUEUE_URL", "", |_| http_base_url(&queue_url))?;
        let timeout_secs = self.parsed("ACK_TIMEOUT_SECS", "30", |raw| {
            raw.parse::<u64>()
                .ok()
                .filter(|secs| (1..=900).contains(secs))
                .ok_or_else(|| "expected 1 to 900 seconds (SQS delays at most 15 minutes)".into())
        })?;
        Ok(Some(AckSettings {
            queue_url,
            timeout_secs,
        }))
    }
}

/// The most `ESCALATION_REPEATS`: past that, a text nobody acknowledges needs a
/// person, not another round of texts.
pub const MAX_ESCALATION_REPEATS: u32 = 5;

/// The longest `REPLY_WINDOW_SECS`: a week.
pub const MAX_REPLY_WINDOW_SECS: u64 = 7 * 86_400;

/// Acknowledgement: the timer queue and the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckSettings {
    /// `ACK_QUEUE_URL`.
    pub queue_url: String,
    /// `ACK_TIMEOUT_SECS` (default 30).
    pub timeout_secs: u64,
}

/// What `ack-timeout` reads: what sending a text on needs, and the acknowledgement
/// settings (required: the function only exists for them).
#[derive(Debug, Clone)]
pub struct AckTimeoutSettings {
    pub tables: Tables,
    pub alert_topic_arn: String,
    pub twilio_secret_id: String,
    pub twilio_api_base: String,
    pub default_country: CountryCode,
    pub secret_cache: SecretCacheSettings,
    pub ack: AckSettings,
    /// `REPLY_WINDOW_SECS`: the references of the texts it sends on live this long.
    pub reply_window_secs: u64,
    /// A round starts again at whoever is primary now (the rota, else this).
    pub primary_dispatcher_id: DispatcherId,
    /// Tiers naming a dispatcher are skipped while that dispatcher is not available.
    pub heartbeat_max_age_secs: i64,
    /// `ESCALATION_REPEATS`.
    pub escalation_repeats: u32,
}

impl AckTimeoutSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(from_process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup };
        Ok(AckTimeoutSettings {
            tables: env.tables(),
            alert_topic_arn: env.required("ALERT_TOPIC_ARN")?,
            twilio_secret_id: env.required("TWILIO_SECRET_ID")?,
            twilio_api_base: env.twilio_api_base()?,
            default_country: env.country()?,
            secret_cache: env.secret_cache()?,
            ack: env.ack()?.ok_or(ConfigError::Missing {
                name: "ACK_QUEUE_URL",
            })?,
            reply_window_secs: env.reply_window_secs()?,
            primary_dispatcher_id: env.primary_dispatcher_id()?,
            heartbeat_max_age_secs: env.heartbeat_max_age_secs()?,
            escalation_repeats: env.escalation_repeats()?,
        })
    }
}

fn from_process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The two DynamoDB tables every function uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub state_table: String,
    pub message_table: String,
}

/// How long secrets are trusted before they are read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretCacheSettings {
    /// `SECRET_CACHE_TTL_SECS` (default 300): a cached secret is re-read after this.
    pub ttl: Duration,
    /// `SECRET_REFRESH_AFTER_SECS` (default 60): a credential that fails to verify
    /// against a cache at least this old makes the cache re-read the secret once.
    pub refresh_after: Duration,
}

/// What `sms-inbound` reads.
#[derive(Debug, Clone)]
pub struct InboundSettings {
    pub tables: Tables,
    pub alert_topic_arn: String,
    pub twilio_secret_id: String,
    pub primary_dispatcher_id: DispatcherId,
    pub heartbeat_max_age_secs: i64,
    /// Scheme and host Twilio calls, without a trailing slash.
    pub public_base_url: Option<String>,
    /// Where the Twilio REST API lives, without a trailing slash.
    pub twilio_api_base: String,
    pub default_country: CountryCode,
    pub secret_cache: SecretCacheSettings,
    /// On when `ACK_QUEUE_URL` is set.
    pub ack: Option<AckSettings>,
    /// `REPLY_WINDOW_SECS`: how long a relayed text can be answered by text.
    pub reply_window_secs: u64,
}

impl InboundSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(from_process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup };
        let public_base_url = match env.get("PUBLIC_BASE_URL") {
            None => None,
            Some(_) => Some(env.parsed("PUBLIC_BASE_URL", "", http_base_url)?),
        };
        Ok(InboundSettings {
            tables: env.tables(),
            alert_topic_arn: env.required("ALERT_TOPIC_ARN")?,
            twilio_secret_id: env.required("TWILIO_SECRET_ID")?,
            primary_dispatcher_id: env.primary_dispatcher_id()?,
            heartbeat_max_age_secs: env.heartbeat_max_age_secs()?,
            public_base_url,
            twilio_api_base: env.twilio_api_base()?,
            default_country: env.country()?,
            secret_cache: env.secret_cache()?,
            ack: env.ack()?,
            reply_window_secs: env.reply_window_secs()?,
        })
    }
}

/// What `dispatcher-heartbeat` reads.
#[derive(Debug, Clone)]
pub struct HeartbeatSettings {
    pub tables: Tables,
    pub alert_topic_arn: String,
    /// The handover text goes out through Twilio.
    pub twilio_secret_id: String,
    pub twilio_api_base: String,
    pub secret_cache: SecretCacheSettings,
    pub primary_dispatcher_id: DispatcherId,
    pub default_country: CountryCode,
    /// `SCAN_PAGE_SIZE` (default: DynamoDB's own 1 MB pages): items per `Scan` page.
    pub scan_page_size: Option<i32>,
}

impl HeartbeatSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(from_process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup };
        let scan_page_size = match env.get("SCAN_PAGE_SIZE") {
            None => None,
            Some(_) => Some(env.parsed("SCAN_PAGE_SIZE", "", |raw| {
                raw.parse::<i32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| "expected a positive whole number of items".to_string())
            })?),
        };
        Ok(HeartbeatSettings {
            tables: env.tables(),
            alert_topic_arn: env.required("ALERT_TOPIC_ARN")?,
            twilio_secret_id: env.required("TWILIO_SECRET_ID")?,
            twilio_api_base: env.twilio_api_base()?,
            secret_cache: env.secret_cache()?,
            primary_dispatcher_id: env.primary_dispatcher_id()?,
            default_country: env.country()?,
            scan_page_size,
        })
    }
}

/// What `sms-outbound` reads.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub tables: Tables,
    pub twilio_secret_id: String,
    pub jwt_secret_id: String,
    pub twilio_api_base: String,
    pub default_country: CountryCode,
    pub secret_cache: SecretCacheSettings,
}

impl OutboundSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(from_process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup };
        Ok(OutboundSettings {
            tables: env.tables(),
            twilio_secret_id: env.required("TWILIO_SECRET_ID")?,
            jwt_secret_id: env.required("JWT_SECRET_ID")?,
            twilio_api_base: env.twilio_api_base()?,
            default_country: env.country()?,
            secret_cache: env.secret_cache()?,
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

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn inbound(vars: &[(&str, &str)]) -> Result<InboundSettings, ConfigError> {
        InboundSettings::from_lookup(lookup(vars))
    }

    fn outbound(vars: &[(&str, &str)]) -> Result<OutboundSettings, ConfigError> {
        OutboundSettings::from_lookup(lookup(vars))
    }

    const INBOUND: [(&str, &str); 2] = [
        (
            "ALERT_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:qdn-alerts",
        ),
        ("TWILIO_SECRET_ID", "qdn/twilio"),
    ];

    const OUTBOUND: [(&str, &str); 2] = [
        ("TWILIO_SECRET_ID", "qdn/twilio"),
        ("JWT_SECRET_ID", "qdn/jwt"),
    ];

    #[test]
    fn defaults_match_the_contract() {
        let s = inbound(&INBOUND).unwrap();
        assert_eq!(s.tables.state_table, "qdn-dispatcher-state");
        assert_eq!(s.tables.message_table, "qdn-message-log");
        assert_eq!(s.primary_dispatcher_id.as_str(), "sergio-main");
        assert_eq!(s.heartbeat_max_age_secs, 300);
        assert_eq!(s.public_base_url, None);
        assert_eq!(s.twilio_api_base, "https://api.twilio.com");
        assert_eq!(s.default_country, CountryCode::NANP);
        assert_eq!(s.secret_cache.ttl, Duration::from_secs(300));
        assert_eq!(s.secret_cache.refresh_after, Duration::from_secs(60));
        assert_eq!(s.reply_window_secs, 7200);
        let o = outbound(&OUTBOUND).unwrap();
        assert_eq!(o.tables, s.tables);
        assert_eq!(o.twilio_api_base, "https://api.twilio.com");
        assert_eq!(o.default_country, CountryCode::NANP);
        assert_eq!(o.jwt_secret_id, "qdn/jwt");
    }

    #[test]
    fn each_function_needs_only_its_own_variables() {
        // Inbound never reads the JWT secret; outbound needs neither the alert topic
        // nor the public base URL.
        assert!(inbound(&INBOUND).is_ok());
        assert!(outbound(&OUTBOUND).is_ok());
        let err = outbound(&INBOUND).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                name: "JWT_SECRET_ID"
            }
        );
        let mut with_bad_inbound_only = OUTBOUND.to_vec();
        with_bad_inbound_only.extend([
            ("PUBLIC_BASE_URL", "not a url"),
            ("HEARTBEAT_MAX_AGE_SECS", "soon"),
            ("PRIMARY_DISPATCHER_ID", "has space"),
        ]);
        assert!(outbound(&with_bad_inbound_only).is_ok());
    }

    #[test]
    fn the_reply_window_is_a_second_to_a_week() {
        let with = |value: &'static str| {
            let mut vars = INBOUND.to_vec();
            vars.push(("REPLY_WINDOW_SECS", value));
            inbound(&vars)
        };
        assert_eq!(with("60").unwrap().reply_window_secs, 60);
        assert_eq!(with("604800").unwrap().reply_window_secs, 604_800);
        for bad in ["0", "604801", "2h", "-5"] {
            assert_eq!(
                with(bad).unwrap_err().variable(),
                "REPLY_WINDOW_SECS",
                "{bad}"
            );
        }
        // Outbound and the heartbeat never read it.
        let mut vars = OUTBOUND.to_vec();
        vars.push(("REPLY_WINDOW_SECS", "never"));
        assert!(outbound(&vars).is_ok());
    }

    #[test]
    fn the_heartbeat_reads_its_own_variables() {
        let h = HeartbeatSettings::from_lookup(lookup(&INBOUND)).unwrap();
        assert_eq!(h.primary_dispatcher_id.as_str(), "sergio-main");
        assert_eq!(h.scan_page_size, None);
        assert_eq!(h.twilio_secret_id, "qdn/twilio");
        assert_eq!(
            HeartbeatSettings::from_lookup(lookup(&[]))
                .unwrap_err()
                .variable(),
            "ALERT_TOPIC_ARN"
        );
        // It texts the incoming primary at each shift: it needs the Twilio secret.
        assert_eq!(
            HeartbeatSettings::from_lookup(lookup(&INBOUND[..1]))
                .unwrap_err()
                .variable(),
            "TWILIO_SECRET_ID"
        );
        let mut vars = INBOUND.to_vec();
        vars.push(("SCAN_PAGE_SIZE", "0"));
        assert_eq!(
            HeartbeatSettings::from_lookup(lookup(&vars))
                .unwrap_err()
                .variable(),
            "SCAN_PAGE_SIZE"
        );
        vars.pop();
        vars.push(("SCAN_PAGE_SIZE", "2"));
        let h = HeartbeatSettings::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(h.scan_page_size, Some(2));
    }

    #[test]
    fn acknowledgement_is_on_with_a_queue() {
        assert_eq!(inbound(&INBOUND).unwrap().ack, None);
        let mut vars = INBOUND.to_vec();
        vars.push((
            "ACK_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/1/qdn-ack",
        ));
        let ack = inbound(&vars).unwrap().ack.unwrap();
        assert_eq!(ack.timeout_secs, 30);
        vars.push(("ACK_TIMEOUT_SECS", "901"));
        assert_eq!(inbound(&vars).unwrap_err().variable(), "ACK_TIMEOUT_SECS");
        let timeout = AckTimeoutSettings::from_lookup(lookup(&INBOUND)).unwrap_err();
        assert_eq!(timeout.variable(), "ACK_QUEUE_URL");
    }

    #[test]
    fn escalation_repeats_are_ack_timeouts_from_0_to_5() {
        let mut vars = INBOUND.to_vec();
        vars.push((
            "ACK_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/1/qdn-ack",
        ));
        let ack_timeout = |vars: &[(&str, &str)]| AckTimeoutSettings::from_lookup(lookup(vars));
        let settings = ack_timeout(&vars).unwrap();
        assert_eq!(settings.escalation_repeats, 0);
        assert_eq!(settings.primary_dispatcher_id.as_str(), "sergio-main");
        assert_eq!(settings.heartbeat_max_age_secs, 300);
        for (raw, rounds) in [("1", 1), ("5", 5)] {
            let mut with = vars.clone();
            with.push(("ESCALATION_REPEATS", raw));
            assert_eq!(ack_timeout(&with).unwrap().escalation_repeats, rounds);
        }
        for bad in ["6", "-1", "one", "1.5"] {
            let mut with = vars.clone();
            with.push(("ESCALATION_REPEATS", bad));
            assert_eq!(
                ack_timeout(&with).unwrap_err().variable(),
                "ESCALATION_REPEATS",
                "{bad}"
            );
        }
        // sms-inbound never reads it.
        let mut with = INBOUND.to_vec();
        with.push(("ESCALATION_REPEATS", "never"));
        assert!(inbound(&with).is_ok());
    }

    #[test]
    fn missing_required_variables_are_named() {
        let err = inbound(&INBOUND[..1]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                name: "TWILIO_SECRET_ID"
            }
        );
        let err = inbound(&[("TWILIO_SECRET_ID", "x"), ("ALERT_TOPIC_ARN", "  ")]).unwrap_err();
        assert_eq!(err.variable(), "ALERT_TOPIC_ARN");
        assert!(err.to_string().contains("ALERT_TOPIC_ARN"));
        assert_eq!(
            outbound(&OUTBOUND[1..]).unwrap_err().variable(),
            "TWILIO_SECRET_ID"
        );
    }

    #[test]
    fn malformed_values_are_named() {
        for (name, value) in [
            ("HEARTBEAT_MAX_AGE_SECS", "five"),
            ("HEARTBEAT_MAX_AGE_SECS", "-1"),
            ("HEARTBEAT_MAX_AGE_SECS", "0"),
            ("PUBLIC_BASE_URL", "dashboard.quickdumpnow.com"),
            ("TWILIO_API_BASE", "ftp://x"),
            ("DEFAULT_COUNTRY_CODE", "abc"),
            ("PRIMARY_DISPATCHER_ID", "has space"),
            ("SECRET_CACHE_TTL_SECS", "0"),
            ("SECRET_REFRESH_AFTER_SECS", "a minute"),
        ] {
            let mut vars = INBOUND.to_vec();
            vars.push((name, value));
            let err = inbound(&vars).unwrap_err();
            assert_eq!(err.variable(), name, "{value}");
        }
        for (name, value) in [
            ("TWILIO_API_BASE", "api.twilio.com"),
            ("DEFAULT_COUNTRY_CODE", "+"),
            ("SECRET_CACHE_TTL_SECS", "-5"),
        ] {
            let mut vars = OUTBOUND.to_vec();
            vars.push((name, value));
            assert_eq!(outbound(&vars).unwrap_err().variable(), name, "{value}");
        }
    }

    #[test]
    fn overrides_are_read() {
        let mut vars = INBOUND.to_vec();
        vars.extend([
            ("STATE_TABLE", "s"),
            ("MESSAGE_TABLE", "m"),
            ("PRIMARY_DISPATCHER_ID", "ana"),
            ("HEARTBEAT_MAX_AGE_SECS", "60"),
            ("PUBLIC_BASE_URL", "https://dashboard.quickdumpnow.com/"),
            ("TWILIO_API_BASE", "http://127.0.0.1:4599"),
            ("DEFAULT_COUNTRY_CODE", "44"),
            ("SECRET_CACHE_TTL_SECS", "30"),
            ("SECRET_REFRESH_AFTER_SECS", "0"),
        ]);
        let s = inbound(&vars).unwrap();
        assert_eq!(s.tables.state_table, "s");
        assert_eq!(s.tables.message_table, "m");
        assert_eq!(s.primary_dispatcher_id.as_str(), "ana");
        assert_eq!(s.heartbeat_max_age_secs, 60);
        assert_eq!(
            s.public_base_url.as_deref(),
            Some("https://dashboard.quickdumpnow.com")
        );
        assert_eq!(s.twilio_api_base, "http://127.0.0.1:4599");
        assert_eq!(s.default_country, CountryCode::parse("44").unwrap());
        assert_eq!(s.secret_cache.ttl, Duration::from_secs(30));
        assert_eq!(s.secret_cache.refresh_after, Duration::ZERO);
    }
}
