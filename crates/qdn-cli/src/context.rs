//! What every command needs: its settings (flags over the environment, defaults as in
//! the contract), the AWS clients, and how a command fails.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use relay_app::config::SecretCacheSettings;
use relay_app::secret_cache::SecretCache;
use relay_aws::dynamo::DynamoDispatcherStore;
use relay_aws::secrets_manager::SecretsManagerSource;
use relay_core::ids::DispatcherId;
use relay_core::phone::CountryCode;
use relay_core::ports::StoreError;
use relay_core::secret::SecretError;

use crate::store::OperatorStore;

use crate::cli::GlobalArgs;

/// How a command ends when it does not succeed: the exit status and the one line
/// `qdn: ...` says on stderr.
#[derive(Debug)]
pub struct Failure {
    pub status: u8,
    pub message: String,
}

impl Failure {
    /// Bad usage: exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            status: 2,
            message: message.into(),
        }
    }

    /// A failed AWS call (or a secret that cannot be used): exit 2.
    pub fn aws(message: impl Into<String>) -> Self {
        Failure {
            status: 2,
            message: message.into(),
        }
    }

    /// An unknown dispatcher ID or message SID: exit 1.
    pub fn not_found(message: impl Into<String>) -> Self {
        Failure {
            status: 1,
            message: message.into(),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Unavailable {
                table,
                operation,
                detail,
            } => Failure::aws(format!(
                "DynamoDB {operation} on {table} failed: {}",
                concise(detail)
            )),
            _ => Failure::aws(error.to_string()),
        }
    }
}

impl From<SecretError> for Failure {
    fn from(error: SecretError) -> Self {
        match &error {
            SecretError::Unreadable { secret_id, detail } => Failure::aws(format!(
                "secret {secret_id} could not be read: {}",
                concise(detail)
            )),
            SecretError::Malformed { .. } => Failure::aws(error.to_string()),
        }
    }
}

/// The AWS SDK's error text (`DisplayErrorContext`: the error, each cause after `: `,
/// then ` (<Debug of the whole error>)`) without the debug dump and the causes that
/// repeat what was said: `ResourceNotFoundException: Requested resource not found`.
pub fn concise(detail: &str) -> String {
    // The debug dump starts ` (` and a variant name and its `(`: `(ServiceError(`.
    let mut end = detail.len();
    for (at, _) in detail.match_indices(" (") {
        let rest = &detail[at + 2..];
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        if name_len > 0
            && rest.starts_with(|c: char| c.is_ascii_uppercase())
            && rest[name_len..].starts_with('(')
        {
            end = at;
            break;
        }
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in detail[..end].split(": ") {
        let part = part.trim();
        if part.is_empty() || part == "service error" || parts.contains(&part) {
            continue;
        }
        parts.push(part);
    }
    parts.join(": ")
}

/// What the command succeeded at: exit 0, or exit 1 when it found problems (already
/// printed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Ok,
    Problems,
}

pub type CommandResult = Result<Done, Failure>;

/// A variable's value as the functions read it: trimmed, and empty counts as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The flag if given (it must not be empty), else the variable.
fn pick(flag: &Option<String>, flag_name: &str, var: &str) -> Result<Option<String>, Failure> {
    match flag {
        Some(value) if value.trim().is_empty() => {
            Err(Failure::usage(format!("--{flag_name}: the value is empty")))
        }
        Some(value) => Ok(Some(value.trim().to_string())),
        None => Ok(env(var)),
    }
}

/// The settings every command may need; secrets are required only by the commands
/// that read them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub json: bool,
    pub state_table: String,
    pub message_table: String,
    twilio_secret_id: Option<String>,
    jwt_secret_id: Option<String>,
    pub default_country: CountryCode,
    pub primary_dispatcher_id: DispatcherId,
    ack_queue_url: Option<String>,
    ack_dead_letter_queue_url: Option<String>,
}

impl Settings {
    pub fn resolve(args: &GlobalArgs) -> Result<Self, Failure> {
        let state_table = pick(&args.state_table, "state-table", "STATE_TABLE")?
            .unwrap_or_else(|| "qdn-dispatcher-state".into());
        let message_table = pick(&args.message_table, "message-table", "MESSAGE_TABLE")?
            .unwrap_or_else(|| "qdn-message-log".into());
        let twilio_secret_id = pick(
            &args.twilio_secret_id,
            "twilio-secret-id",
            "TWILIO_SECRET_ID",
        )?;
        let jwt_secret_id = pick(&args.jwt_secret_id, "jwt-secret-id", "JWT_SECRET_ID")?;
        let country = pick(
            &args.default_country_code,
            "default-country-code",
            "DEFAULT_COUNTRY_CODE",
        )?;
        let default_country = match country {
            None => CountryCode::default(),
            Some(raw) => CountryCode::parse(&raw).map_err(|e| {
                Failure::usage(format!(
                    "{}: {e}",
                    source_name(&args.default_country_code, "DEFAULT_COUNTRY_CODE")
                ))
            })?,
        };
        let primary = pick(
            &args.primary_dispatcher_id,
            "primary-dispatcher-id",
            "PRIMARY_DISPATCHER_ID",
        )?
        .unwrap_or_else(|| "sergio-main".into());
        let primary_dispatcher_id = DispatcherId::parse(&primary).map_err(|e| {
            Failure::usage(format!(
                "{}: {e}",
                source_name(&args.primary_dispatcher_id, "PRIMARY_DISPATCHER_ID")
            ))
        })?;
        let ack_queue_url = pick(&args.ack_queue_url, "ack-queue-url", "ACK_QUEUE_URL")?;
        let ack_dead_letter_queue_url = pick(
            &args.ack_dead_letter_queue_url,
            "ack-dead-letter-queue-url",
            "ACK_DEAD_LETTER_QUEUE_URL",
        )?;
        Ok(Settings {
            json: args.json,
            ack_queue_url,
            ack_dead_letter_queue_url,
            state_table,
            message_table,
            twilio_secret_id,
            jwt_secret_id,
            default_country,
            primary_dispatcher_id,
        })
    }

    pub fn twilio_secret_id(&self) -> Result<&str, Failure> {
        self.twilio_secret_id.as_deref().ok_or_else(|| {
            Failure::usage("TWILIO_SECRET_ID is not set (or give --twilio-secret-id)")
        })
    }

    /// `HEARTBEAT_MAX_AGE_SECS` as the functions read it (default 300): how old a
    /// heartbeat may be for the cascade to use a dispatcher.
    pub fn heartbeat_max_age_secs(&self) -> Result<i64, Failure> {
        match env("HEARTBEAT_MAX_AGE_SECS") {
            None => Ok(300),
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|secs| *secs >= 1)
                .map(i64::from)
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "HEARTBEAT_MAX_AGE_SECS: {raw:?} is not a whole number of seconds from 1"
                    ))
                }),
        }
    }

    /// `ACK_QUEUE_URL`: where acknowledgement timers wait (unset: acknowledgement off).
    pub fn ack_queue_url(&self) -> Option<&str> {
        self.ack_queue_url.as_deref()
    }

    /// `ACK_DEAD_LETTER_QUEUE_URL`: where timers ack-timeout failed on are parked.
    pub fn ack_dead_letter_queue_url(&self) -> Result<&str, Failure> {
        self.ack_dead_letter_queue_url.as_deref().ok_or_else(|| {
            Failure::usage(
                "ACK_DEAD_LETTER_QUEUE_URL is not set (or give --ack-dead-letter-queue-url)",
            )
        })
    }

    pub fn jwt_secret_id(&self) -> Result<&str, Failure> {
        self.jwt_secret_id
            .as_deref()
            .ok_or_else(|| Failure::usage("JWT_SECRET_ID is not set (or give --jwt-secret-id)"))
    }
}

/// How the setting was given, for an error that names it.
fn source_name(flag: &Option<String>, var: &str) -> String {
    match flag {
        Some(_) => format!("--{}", var.to_ascii_lowercase().replace('_', "-")),
        None => var.to_string(),
    }
}

/// The AWS SDK's configuration from its own sources (region, profile, credentials,
/// `AWS_ENDPOINT_URL`), with a bound on each call so a CLI never hangs.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await
}

pub fn dispatcher_store(aws: &aws_config::SdkConfig, settings: &Settings) -> DynamoDispatcherStore {
    DynamoDispatcherStore::new(aws_sdk_dynamodb::Client::new(aws), &settings.state_table)
}

/// What only the operator does to the tables (`put`, `trail`).
pub fn operator_store(aws: &aws_config::SdkConfig, settings: &Settings) -> OperatorStore {
    OperatorStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        &settings.state_table,
        &settings.message_table,
    )
}

/// The relay's one secret cache, over Secrets Manager.
pub fn secret_cache(aws: &aws_config::SdkConfig) -> Result<SecretCache, Failure> {
    let settings = SecretCacheSettings {
        ttl: Duration::from_secs(300),
        refresh_after: Duration::from_secs(60),
    };
    let source = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(aws));
    Ok(SecretCache::new(Box::new(source), settings))
}

#[cfg(test)]
mod tests {
    use super::concise;

    #[test]
    fn aws_errors_lose_their_debug_dump_and_repeats() {
        let detail = "service error: ResourceNotFoundException: Requested resource not found: \
            ResourceNotFoundException: Requested resource not found (ServiceError(ServiceError { \
            source: ResourceNotFoundException(ResourceNotFoundException { message: Some(\"x\") }) }))";
        assert_eq!(
            concise(detail),
            "ResourceNotFoundException: Requested resource not found"
        );
        let detail = "dispatch failure: io error: client error (Connect): tcp connect error: \
            Connection refused (os error 111) (DispatchFailure(DispatchFailure { source: x }))";
        assert_eq!(
            concise(detail),
            "dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(concise("plain words"), "plain words");
    }
}
