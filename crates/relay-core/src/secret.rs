//! Secrets as the relay knows them: the versions of one secret (current and, during a
//! rotation, previous), where they come from (a port), and the Twilio account read from
//! its secret. Values live in `secrecy` types: no `Debug` or log line can print them.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::ids::{AccountSid, MessagingServiceSid};
use crate::phone::{CountryCode, PhoneNumber};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {secret_id} could not be read: {detail}")]
    Unreadable { secret_id: String, detail: String },
    #[error("secret {secret_id} is malformed: {detail}")]
    Malformed { secret_id: String, detail: String },
}

/// A version stage of a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionStage {
    Current,
    /// The version before the last rotation; a secret never rotated has none.
    Previous,
}

impl VersionStage {
    pub fn label(self) -> &'static str {
        match self {
            VersionStage::Current => "AWSCURRENT",
            VersionStage::Previous => "AWSPREVIOUS",
        }
    }
}

/// Where secret values come from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The `SecretString` at `stage`, or `None` when the secret has no version there.
    async fn read(
        &self,
        secret_id: &str,
        stage: VersionStage,
    ) -> Result<Option<SecretString>, SecretError>;
}

/// A secret's current value and, during a rotation, the previous one.
#[derive(Debug, Clone)]
pub struct SecretVersions {
    pub current: SecretString,
    pub previous: Option<SecretString>,
}

impl SecretVersions {
    /// Current first, then previous.
    pub fn all(&self) -> impl Iterator<Item = &SecretString> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }
}

/// The Twilio account the relay sends from and verifies webhooks with.
#[derive(Debug, Clone)]
pub struct TwilioAccount {
    pub account_sid: AccountSid,
    pub auth_token: SecretString,
    /// The token before the last rotation (`AWSPREVIOUS`), still accepted on webhooks.
    pub previous_auth_token: Option<SecretString>,
    pub from_number: Option<PhoneNumber>,
    pub messaging_service_sid: Option<MessagingServiceSid>,
}

#[derive(Deserialize)]
struct TwilioSecretJson {
    account_sid: String,
    auth_token: SecretString,
    #[serde(default)]
    from_number: Option<String>,
    #[serde(default)]
    messaging_service_sid: Option<String>,
}

#[derive(Deserialize)]
struct TokenOnly {
    auth_token: SecretString,
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
            // serde's own message may quote a value of the secret: say only where.
            serde_json::from_str(json).map_err(|e| {
                malformed(format!(
                    "not a JSON object of the expected shape (line {}, column {})",
                    e.line(),
                    e.column()
                ))
            })?;
        let account_sid =
            AccountSid::parse(raw.account_sid.trim()).map_err(|e| malformed(e.to_string()))?;
        let auth_token = raw.auth_token.expose_secret().trim();
        if auth_token.is_empty() {
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
            auth_token: SecretString::from(auth_token),
            previous_auth_token: None,
            from_number,
            messaging_service_sid,
        })
    }

    /// The account from the Twilio secret's versions: the current one in full, and
    /// the previous one's auth token (still accepted on webhooks during a rotation).
    pub fn from_versions(
        secret_id: &str,
        versions: &SecretVersions,
        default_country: CountryCode,
    ) -> Result<Self, SecretError> {
        let mut account =
            Self::parse(secret_id, versions.current.expose_secret(), default_country)?;
        if let Some(previous) = &versions.previous {
            match serde_json::from_str::<TokenOnly>(previous.expose_secret()) {
                Ok(p) => {
                    let token = p.auth_token.expose_secret().trim();
                    if !token.is_empty() && token != account.auth_token.expose_secret() {
                        account.previous_auth_token = Some(SecretString::from(token));
                    }
                }
                Err(_) => {
                    // serde's message may quote the secret: say only where it is.
                    tracing::warn!(
                        secret_id,
                        "the AWSPREVIOUS version of the Twilio secret is malformed; ignoring it"
                    );
                }
            }
        }
        Ok(account)
    }

    /// Tokens a webhook signature may be made with: current first, then previous.
    pub fn webhook_tokens(&self) -> Vec<&str> {
        std::iter::once(self.auth_token.expose_secret())
            .chain(self.previous_auth_token.as_ref().map(|t| t.expose_secret()))
            .collect()
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
