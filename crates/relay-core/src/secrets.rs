//! Secrets Manager: the Twilio account secret, read lazily and cached.
//!
//! Read on first use rather than at start, so an unreadable secret fails the
//! invocation with a log line naming it instead of crash-looping the init phase, and
//! re-read after a few minutes so a rotation is picked up without a redeploy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use serde::Deserialize;
use tokio::sync::Mutex;
use tracing::instrument;

use crate::ids::{AccountSid, MessagingServiceSid};
use crate::phone::{CountryCode, PhoneNumber};

/// How long a fetched secret is trusted before it is read again.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {secret_id} could not be read: {detail}")]
    Unreadable { secret_id: String, detail: String },
    #[error("secret {secret_id} is malformed: {detail}")]
    Malformed { secret_id: String, detail: String },
}

/// Reads a secret's `SecretString` at a version stage.
#[derive(Debug, Clone)]
pub struct SecretReader {
    client: Client,
}

impl SecretReader {
    pub fn new(client: Client) -> Self {
        SecretReader { client }
    }

    /// The string at `stage`, or `None` when the secret has no version at that stage
    /// (a secret that was never rotated has no `AWSPREVIOUS`).
    #[instrument(level = "debug", skip(self))]
    pub async fn read(&self, secret_id: &str, stage: &str) -> Result<Option<String>, SecretError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage(stage)
            .send()
            .await;
        match result {
            Ok(output) => output
                .secret_string
                .map(Some)
                .ok_or_else(|| SecretError::Malformed {
                    secret_id: secret_id.to_string(),
                    detail: "it has no SecretString".into(),
                }),
            Err(e)
                if stage != "AWSCURRENT"
                    && e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(SecretError::Unreadable {
                secret_id: secret_id.to_string(),
                detail: DisplayErrorContext(e).to_string(),
            }),
        }
    }
}

/// The Twilio account the relay sends from and verifies webhooks with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioAccount {
    pub account_sid: AccountSid,
    pub auth_token: String,
    /// The token before the last rotation (`AWSPREVIOUS`), still accepted on webhooks.
    pub previous_auth_token: Option<String>,
    pub from_number: Option<PhoneNumber>,
    pub messaging_service_sid: Option<MessagingServiceSid>,
}

#[derive(Deserialize)]
struct TwilioSecretJson {
    account_sid: String,
    auth_token: String,
    #[serde(default)]
    from_number: Option<String>,
    #[serde(default)]
    messaging_service_sid: Option<String>,
}

#[derive(Deserialize)]
struct TokenOnly {
    auth_token: String,
}

impl TwilioAccount {
    /// Parses the secret JSON `{"account_sid", "auth_token", "from_number"?,
    /// "messaging_service_sid"?}`; at least one of the last two must be present.
    pub fn parse(
        secret_id: &str,
        json: &str,
        default_country: CountryCode,
    ) -> Result<Self, SecretError> {
        let malformed = |detail: String| SecretError::Malformed {
            secret_id: secret_id.to_string(),
            detail,
        };
        let raw: TwilioSecretJson =
            serde_json::from_str(json).map_err(|e| malformed(e.to_string()))?;
        let account_sid =
            AccountSid::parse(raw.account_sid.trim()).map_err(|e| malformed(e.to_string()))?;
        if raw.auth_token.trim().is_empty() {
            return Err(malformed("auth_token is empty".into()));
        }
        let present = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let from_number = present(raw.from_number)
            .map(|raw| PhoneNumber::parse(&raw, default_country))
            .transpose()
            .map_err(|e| malformed(format!("from_number: {e}")))?;
        let messaging_service_sid = present(raw.messaging_service_sid)
            .map(|raw| MessagingServiceSid::parse(&raw))
            .transpose()
            .map_err(|e| malformed(e.to_string()))?;
        if from_number.is_none() && messaging_service_sid.is_none() {
            return Err(malformed(
                "one of from_number or messaging_service_sid is required".into(),
            ));
        }
        Ok(TwilioAccount {
            account_sid,
            auth_token: raw.auth_token.trim().to_string(),
            previous_auth_token: None,
            from_number,
            messaging_service_sid,
        })
    }

    /// Tokens a webhook signature may be made with: current first, then previous.
    pub fn webhook_tokens(&self) -> Vec<&str> {
        std::iter::once(self.auth_token.as_str())
            .chain(self.previous_auth_token.as_deref())
            .collect()
    }
}

/// The Twilio account, fetched on first use and cached for [`SECRET_CACHE_TTL`].
#[derive(Debug)]
pub struct TwilioAccountCache {
    reader: SecretReader,
    secret_id: String,
    default_country: CountryCode,
    cached: Mutex<Option<(Instant, Arc<TwilioAccount>)>>,
}

impl TwilioAccountCache {
    pub fn new(
        reader: SecretReader,
        secret_id: impl Into<String>,
        default_country: CountryCode,
    ) -> Self {
        TwilioAccountCache {
            reader,
            secret_id: secret_id.into(),
            default_country,
            cached: Mutex::new(None),
        }
    }

    pub async fn get(&self) -> Result<Arc<TwilioAccount>, SecretError> {
        let mut cached = self.cached.lock().await;
        if let Some((fetched_at, account)) = cached.as_ref()
            && fetched_at.elapsed() < SECRET_CACHE_TTL
        {
            return Ok(account.clone());
        }
        let account = Arc::new(self.fetch().await?);
        *cached = Some((Instant::now(), account.clone()));
        Ok(account)
    }

    async fn fetch(&self) -> Result<TwilioAccount, SecretError> {
        let current = self
            .reader
            .read(&self.secret_id, "AWSCURRENT")
            .await?
            .ok_or_else(|| SecretError::Unreadable {
                secret_id: self.secret_id.clone(),
                detail: "no AWSCURRENT version".into(),
            })?;
        let mut account = TwilioAccount::parse(&self.secret_id, &current, self.default_country)?;
        // A broken previous version must not take the relay down: it only widens what
        // webhooks are accepted during a rotation.
        match self.reader.read(&self.secret_id, "AWSPREVIOUS").await {
            Ok(Some(previous)) => match serde_json::from_str::<TokenOnly>(&previous) {
                Ok(p) if p.auth_token.trim() != account.auth_token => {
                    account.previous_auth_token = Some(p.auth_token.trim().to_string());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(secret_id = %self.secret_id, error = %e, "AWSPREVIOUS version of the Twilio secret is malformed; ignoring it")
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "AWSPREVIOUS version of the Twilio secret is unreadable; ignoring it")
            }
        }
        Ok(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn parse(json: &str) -> Result<TwilioAccount, SecretError> {
        TwilioAccount::parse("qdn/twilio", json, CountryCode::NANP)
    }

    #[test]
    fn from_number_or_service_is_required() {
        let json = format!(r#"{{"account_sid":"{SID}","auth_token":"t"}}"#);
        let err = parse(&json).unwrap_err();
        assert!(err.to_string().contains("qdn/twilio"), "{err}");
        assert!(err.to_string().contains("from_number"), "{err}");
    }

    #[test]
    fn numbers_are_normalised_and_sids_checked() {
        let json =
            format!(r#"{{"account_sid":"{SID}","auth_token":"t","from_number":"858-555-0100"}}"#);
        let account = parse(&json).unwrap();
        assert_eq!(
            account.from_number.as_ref().unwrap().as_str(),
            "+18585550100"
        );
        assert_eq!(account.webhook_tokens(), vec!["t"]);
        let bad =
            format!(r#"{{"account_sid":"{SID}","auth_token":"t","messaging_service_sid":"MG1"}}"#);
        assert!(matches!(parse(&bad), Err(SecretError::Malformed { .. })));
        assert!(matches!(
            parse("not json"),
            Err(SecretError::Malformed { .. })
        ));
        assert!(
            parse(r#"{"account_sid":"AC1","auth_token":"t","from_number":"+18585550100"}"#)
                .is_err()
        );
    }
}
