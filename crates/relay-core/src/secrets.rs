//! Secrets: one cache for every secret the functions read (the Twilio account, the
//! JWT key), over Secrets Manager through the official caching crate.
//!
//! Secrets are read on first use rather than at start, so an unreadable secret fails
//! the invocation with a log line naming it instead of crash-looping the init phase.
//! Both the `AWSCURRENT` and `AWSPREVIOUS` versions are kept, so credentials made
//! before a rotation still verify while it settles. Values live in `secrecy` types:
//! no `Debug` or log line can print them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::SecretCacheSettings;
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

/// Secrets Manager itself: one `GetSecretValue` per stage read. The caching is
/// [`SecretCache`]'s.
#[derive(Debug)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        SecretsManagerSource { client }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn read(
        &self,
        secret_id: &str,
        stage: VersionStage,
    ) -> Result<Option<SecretString>, SecretError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage(stage.label())
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error) => {
                let not_found = error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception());
                // A secret that was never rotated has no AWSPREVIOUS version.
                if not_found && stage == VersionStage::Previous {
                    return Ok(None);
                }
                return Err(SecretError::Unreadable {
                    secret_id: secret_id.to_string(),
                    detail: DisplayErrorContext(&error).to_string(),
                });
            }
        };
        match output.secret_string {
            Some(value) => Ok(Some(SecretString::from(value))),
            None => Err(SecretError::Malformed {
                secret_id: secret_id.to_string(),
                detail: format!("its {} version has no SecretString", stage.label()),
            }),
        }
    }
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

struct Cached {
    versions: Arc<SecretVersions>,
    /// When the source was last asked (successfully or not).
    read_at: Instant,
    /// When to ask it again on an ordinary `get`.
    next_read: Instant,
}

/// The one cache for every secret the functions read: each secret's versions are
/// read on first use, re-read once they are older than the TTL, and re-read early
/// (at most once per `refresh_after`) when a credential fails against them. A failed
/// re-read keeps serving what was cached.
pub struct SecretCache {
    source: Box<dyn SecretSource>,
    settings: SecretCacheSettings,
    entries: Mutex<HashMap<String, Cached>>,
}

impl SecretCache {
    pub fn new(source: Box<dyn SecretSource>, settings: SecretCacheSettings) -> Self {
        SecretCache {
            source,
            settings,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The secret's versions, from the cache while it is fresh.
    pub async fn get(&self, secret_id: &str) -> Result<Arc<SecretVersions>, SecretError> {
        self.get_at(secret_id, Instant::now()).await
    }

    async fn get_at(
        &self,
        secret_id: &str,
        now: Instant,
    ) -> Result<Arc<SecretVersions>, SecretError> {
        let mut entries = self.entries.lock().await;
        if let Some(cached) = entries.get(secret_id)
            && now < cached.next_read
        {
            return Ok(cached.versions.clone());
        }
        match self.read(secret_id).await {
            Ok(versions) => {
                let versions = Arc::new(versions);
                entries.insert(
                    secret_id.to_string(),
                    Cached {
                        versions: versions.clone(),
                        read_at: now,
                        next_read: now + self.settings.ttl,
                    },
                );
                Ok(versions)
            }
            Err(error) => match entries.get_mut(secret_id) {
                Some(cached) => {
                    tracing::warn!(secret_id, %error, "re-reading the secret failed; serving the cached value");
                    cached.read_at = now;
                    cached.next_read = now + self.settings.refresh_after;
                    Ok(cached.versions.clone())
                }
                None => Err(error),
            },
        }
    }

    /// Called when a credential did not verify against the cached versions: re-reads
    /// the secret, bypassing every cache, if what is cached is at least
    /// `refresh_after` old. Returns the new versions when it did; `None` when it did
    /// not (too soon, or the read failed, which keeps the cached versions).
    pub async fn refresh_after_failure(&self, secret_id: &str) -> Option<Arc<SecretVersions>> {
        self.refresh_after_failure_at(secret_id, Instant::now())
            .await
    }

    async fn refresh_after_failure_at(
        &self,
        secret_id: &str,
        now: Instant,
    ) -> Option<Arc<SecretVersions>> {
        let mut entries = self.entries.lock().await;
        let cached = entries.get_mut(secret_id)?;
        if now.saturating_duration_since(cached.read_at) < self.settings.refresh_after {
            tracing::info!(
                secret_id,
                "credential did not verify; the cached secret is too recent to re-read"
            );
            return None;
        }
        cached.read_at = now;
        match self.read(secret_id).await {
            Ok(versions) => {
                tracing::info!(secret_id, "credential did not verify; re-read the secret");
                cached.versions = Arc::new(versions);
                cached.next_read = now + self.settings.ttl;
                Some(cached.versions.clone())
            }
            Err(error) => {
                tracing::warn!(secret_id, %error, "re-reading the secret failed; keeping the cached value");
                None
            }
        }
    }

    /// Both stages, read together (one round trip).
    async fn read(&self, secret_id: &str) -> Result<SecretVersions, SecretError> {
        let (current, previous) = tokio::join!(
            self.source.read(secret_id, VersionStage::Current),
            self.source.read(secret_id, VersionStage::Previous)
        );
        let current = current?.ok_or_else(|| SecretError::Unreadable {
            secret_id: secret_id.to_string(),
            detail: "it has no AWSCURRENT version".into(),
        })?;
        // A broken previous version must not take the relay down: it only widens what
        // is accepted during a rotation.
        let previous = match previous {
            Ok(previous) => previous,
            Err(error) => {
                tracing::warn!(secret_id, %error, "the AWSPREVIOUS version is unreadable; ignoring it");
                None
            }
        };
        Ok(SecretVersions { current, previous })
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

    mod cache {
        use std::sync::Mutex as StdMutex;
        use std::time::Duration;

        use super::*;

        /// A source whose answers the test sets, recording every read.
        #[derive(Default)]
        struct FakeSource {
            current: StdMutex<Option<Result<String, SecretError>>>,
            previous: StdMutex<Option<String>>,
            reads: StdMutex<Vec<VersionStage>>,
        }

        impl FakeSource {
            fn set_current(&self, value: Result<&str, SecretError>) {
                *self.current.lock().unwrap() = Some(value.map(str::to_string));
            }
            fn reads(&self) -> Vec<VersionStage> {
                self.reads.lock().unwrap().clone()
            }
        }

        #[async_trait]
        impl SecretSource for Arc<FakeSource> {
            async fn read(
                &self,
                _secret_id: &str,
                stage: VersionStage,
            ) -> Result<Option<SecretString>, SecretError> {
                self.reads.lock().unwrap().push(stage);
                match stage {
                    VersionStage::Current => self
                        .current
                        .lock()
                        .unwrap()
                        .clone()
                        .transpose()
                        .map(|v| v.map(SecretString::from)),
                    VersionStage::Previous => Ok(self
                        .previous
                        .lock()
                        .unwrap()
                        .clone()
                        .map(SecretString::from)),
                }
            }
        }

        const TTL: Duration = Duration::from_secs(300);
        const REFRESH_AFTER: Duration = Duration::from_secs(60);

        fn cache(source: &Arc<FakeSource>) -> SecretCache {
            SecretCache::new(
                Box::new(source.clone()),
                SecretCacheSettings {
                    ttl: TTL,
                    refresh_after: REFRESH_AFTER,
                },
            )
        }

        fn current(versions: &SecretVersions) -> &str {
            versions.current.expose_secret()
        }

        fn unreadable() -> SecretError {
            SecretError::Unreadable {
                secret_id: "s".into(),
                detail: "AccessDenied".into(),
            }
        }

        #[tokio::test]
        async fn reads_both_stages_once_per_ttl() {
            let source = Arc::new(FakeSource::default());
            source.set_current(Ok("k1"));
            let cache = cache(&source);
            let t0 = Instant::now();
            let first = cache.get_at("s", t0).await.unwrap();
            assert_eq!(current(&first), "k1");
            assert!(first.previous.is_none());
            // A secret never rotated has no previous version: not asked again per call.
            cache.get_at("s", t0 + TTL / 2).await.unwrap();
            assert_eq!(
                source.reads(),
                vec![VersionStage::Current, VersionStage::Previous]
            );
            source.set_current(Ok("k2"));
            let later = cache.get_at("s", t0 + TTL).await.unwrap();
            assert_eq!(current(&later), "k2");
            assert_eq!(source.reads().len(), 4);
        }

        #[tokio::test]
        async fn a_failed_re_read_keeps_serving_the_cached_value() {
            let source = Arc::new(FakeSource::default());
            source.set_current(Ok("k1"));
            let cache = cache(&source);
            let t0 = Instant::now();
            cache.get_at("s", t0).await.unwrap();
            source.set_current(Err(unreadable()));
            let served = cache.get_at("s", t0 + TTL).await.unwrap();
            assert_eq!(current(&served), "k1");
            // and it tries again only after `refresh_after`, not on every call
            let reads = source.reads().len();
            cache
                .get_at("s", t0 + TTL + REFRESH_AFTER / 2)
                .await
                .unwrap();
            assert_eq!(source.reads().len(), reads);
            assert!(
                cache
                    .refresh_after_failure_at("s", t0 + TTL * 2)
                    .await
                    .is_none()
            );
            assert_eq!(
                current(&cache.get_at("s", t0 + TTL * 2).await.unwrap()),
                "k1"
            );
        }

        #[tokio::test]
        async fn a_first_read_that_fails_is_an_error() {
            let source = Arc::new(FakeSource::default());
            source.set_current(Err(unreadable()));
            assert_eq!(cache(&source).get("s").await.unwrap_err(), unreadable());
            let missing = Arc::new(FakeSource::default());
            let err = cache(&missing).get("s").await.unwrap_err();
            assert!(err.to_string().contains("AWSCURRENT"), "{err}");
        }

        #[tokio::test]
        async fn a_failed_credential_refreshes_at_most_once_per_interval() {
            let source = Arc::new(FakeSource::default());
            source.set_current(Ok("k1"));
            let cache = cache(&source);
            let t0 = Instant::now();
            cache.get_at("s", t0).await.unwrap();
            source.set_current(Ok("k2"));
            // Younger than a minute: a forged token cannot make us call Secrets Manager.
            assert!(
                cache
                    .refresh_after_failure_at("s", t0 + REFRESH_AFTER / 2)
                    .await
                    .is_none()
            );
            assert_eq!(source.reads().len(), 2);
            let t1 = t0 + REFRESH_AFTER;
            let fresh = cache.refresh_after_failure_at("s", t1).await.unwrap();
            assert_eq!(current(&fresh), "k2");
            assert_eq!(
                source.reads()[2..],
                [VersionStage::Current, VersionStage::Previous]
            );
            assert!(cache.refresh_after_failure_at("s", t1).await.is_none());
            assert_eq!(source.reads().len(), 4);
            assert_eq!(current(&cache.get_at("s", t1).await.unwrap()), "k2");
        }

        #[tokio::test]
        async fn previous_versions_are_kept_for_rotation() {
            let source = Arc::new(FakeSource::default());
            source.set_current(Ok("k2"));
            *source.previous.lock().unwrap() = Some("k1".into());
            let versions = cache(&source).get("s").await.unwrap();
            let all: Vec<&str> = versions.all().map(|v| v.expose_secret()).collect();
            assert_eq!(all, ["k2", "k1"]);
            // and no Debug output shows them
            let debug = format!("{versions:?}");
            assert!(!debug.contains("k1") && !debug.contains("k2"), "{debug}");
        }
    }
}
