//! The one way every function starts: its configuration read, the shared TLS
//! configuration and the AWS SDK's configuration built, then the adapters it needs,
//! each built here once, with init timed phase by phase.

use relay_app::config::{ConfigError, SecretCacheSettings, Tables};
use relay_app::secret_cache::SecretCache;
use relay_aws::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use relay_aws::secrets_manager::SecretsManagerSource;
use relay_aws::sns::SnsAlertPublisher;
use relay_aws::sqs::SqsTimerQueue;
use relay_aws::transport::Transport;
use relay_aws::twilio::{RetryPolicy, TwilioApi};

use crate::api::StartupError;
use crate::startup::InitClock;

/// What every function's clients are built from.
pub struct Clients {
    aws: aws_config::SdkConfig,
    transport: Transport,
    dynamodb: aws_sdk_dynamodb::Client,
    /// Times init; [`Clients::finish`] logs it.
    pub clock: InitClock,
}

impl Clients {
    /// Reads the function's configuration with `read_settings` (only the variables it
    /// needs), then the trust roots and the AWS SDK's configuration.
    pub async fn start<S>(
        read_settings: impl FnOnce() -> Result<S, ConfigError>,
    ) -> Result<(S, Clients), StartupError> {
        let mut clock = InitClock::start();
        let settings = read_settings()?;
        clock.config_read();
        let transport = Transport::from_env()?;
        clock.tls_configured();
        let aws = transport.aws_config().await?;
        clock.sdk_config_loaded();
        let clients = Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(&aws),
            aws,
            transport,
            clock,
        };
        Ok((settings, clients))
    }

    pub fn dispatchers(&self, tables: &Tables) -> DynamoDispatcherStore {
        DynamoDispatcherStore::new(self.dynamodb.clone(), &tables.state_table)
    }

    pub fn message_log(&self, tables: &Tables) -> DynamoMessageLog {
        DynamoMessageLog::new(self.dynamodb.clone(), &tables.message_table)
    }

    pub fn alerts(&self, topic_arn: &str) -> SnsAlertPublisher {
        SnsAlertPublisher::new(aws_sdk_sns::Client::new(&self.aws), topic_arn)
    }

    pub fn timers(&self, queue_url: &str) -> SqsTimerQueue {
        SqsTimerQueue::new(aws_sdk_sqs::Client::new(&self.aws), queue_url)
    }

    pub fn secrets(&self, settings: SecretCacheSettings) -> SecretCache {
        let source = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&self.aws));
        SecretCache::new(Box::new(source), settings)
    }

    pub fn twilio(&self, api_base: &str) -> Result<TwilioApi, StartupError> {
        Ok(TwilioApi::new(
            self.transport.reqwest(),
            api_base,
            RetryPolicy::default(),
        )?)
    }

    /// Every client is built; what follows is the prefetch, if any.
    pub fn built(&mut self) {
        self.clock.clients_built();
    }

    /// Logs init's phases for `function`.
    pub fn finish(self, function: &'static str) {
        self.clock.finish(function);
    }
}
