//! The one cache for every secret the functions read (the Twilio account, the JWT
//! key), over any [`SecretSource`].
//!
//! Secrets are read on first use (or in init's prefetch) rather than on every
//! invocation, and both the `AWSCURRENT` and `AWSPREVIOUS` versions are kept, so
//! credentials made before a rotation still verify while it settles.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use relay_core::phone::CountryCode;
use relay_core::secret::{SecretError, SecretSource, SecretVersions, TwilioAccount, VersionStage};
use tokio::sync::Mutex;

use crate::config::SecretCacheSettings;

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

    /// The Twilio account in secret `secret_id`, from the cache while it is fresh.
    pub async fn twilio_account(
        &self,
        secret_id: &str,
        default_country: CountryCode,
    ) -> Result<TwilioAccount, SecretError> {
        let versions = self.get(secret_id).await?;
        TwilioAccount::from_versions(secret_id, &versions, default_country)
    }

    /// The Twilio account re-read after a webhook signature did not verify (see
    /// [`SecretCache::refresh_after_failure`]); `None` when it was not re-read, or the
    /// new version is unusable (logged).
    pub async fn refreshed_twilio_account(
        &self,
        secret_id: &str,
        default_country: CountryCode,
    ) -> Option<TwilioAccount> {
        let versions = self.refresh_after_failure(secret_id).await?;
        TwilioAccount::from_versions(secret_id, &versions, default_country)
            .inspect_err(
                |e| tracing::error!(secret_id, error = %e, "the re-read Twilio secret is unusable"),
            )
            .ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    mod cache {
        use std::sync::Mutex as StdMutex;
        use std::time::Duration;

        use secrecy::{ExposeSecret, SecretString};

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

        /// The fake as the cache holds it, while the test keeps a handle on it.
        struct Shared(Arc<FakeSource>);

        #[async_trait::async_trait]
        impl SecretSource for Shared {
            async fn read(
                &self,
                _secret_id: &str,
                stage: VersionStage,
            ) -> Result<Option<SecretString>, SecretError> {
                let fake = &self.0;
                fake.reads.lock().unwrap().push(stage);
                match stage {
                    VersionStage::Current => fake
                        .current
                        .lock()
                        .unwrap()
                        .clone()
                        .transpose()
                        .map(|v| v.map(SecretString::from)),
                    VersionStage::Previous => Ok(fake
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
                Box::new(Shared(source.clone())),
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
