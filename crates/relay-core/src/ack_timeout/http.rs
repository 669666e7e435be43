//! Lambda glue for `ack-timeout`: the application built once in `main`, and the
//! handler of SQS batches, answering partial batch failures.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;

use super::on_timer;
use crate::ack::AckTimer;
use crate::api::{StartupError, deadline_from_ms, fail_invocation, unix_now};
use crate::config::AckTimeoutSettings;
use crate::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use crate::inbound::acks::Acks;
use crate::inbound::move_on::MoveOnService;
use crate::secrets::{SecretCache, SecretsManagerSource, TwilioAccount};
use crate::sns::SnsAlertPublisher;
use crate::sqs::SqsTimerQueue;
use crate::startup::InitClock;
use crate::transport::Transport;
use crate::twilio::{RetryPolicy, TwilioApi};

/// Everything a batch needs, built once per execution environment.
pub struct AckTimeoutApp {
    settings: AckTimeoutSettings,
    dispatchers: DynamoDispatcherStore,
    log: DynamoMessageLog,
    alerts: SnsAlertPublisher,
    twilio: TwilioApi,
    secrets: SecretCache,
    timers: SqsTimerQueue,
}

impl AckTimeoutApp {
    pub async fn from_env() -> Result<Self, StartupError> {
        // No prefetch: nobody waits on this function's first invocation.
        let mut clock = InitClock::start();
        let settings = AckTimeoutSettings::from_env()?;
        clock.config_read();
        let transport = Transport::from_env()?;
        clock.tls_configured();
        let aws = transport.aws_config().await?;
        clock.sdk_config_loaded();
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let source = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&aws));
        let app = AckTimeoutApp {
            dispatchers: DynamoDispatcherStore::new(dynamodb.clone(), &settings.tables.state_table),
            log: DynamoMessageLog::new(dynamodb, &settings.tables.message_table),
            alerts: SnsAlertPublisher::new(
                aws_sdk_sns::Client::new(&aws),
                &settings.alert_topic_arn,
            ),
            twilio: TwilioApi::new(
                transport.reqwest(),
                &settings.twilio_api_base,
                RetryPolicy::default(),
            )?,
            secrets: SecretCache::new(Box::new(source), settings.secret_cache),
            timers: SqsTimerQueue::new(aws_sdk_sqs::Client::new(&aws), &settings.ack.queue_url),
            settings,
        };
        clock.clients_built();
        clock.finish("ack-timeout");
        Ok(app)
    }
}

/// Handles one batch of due timers. A record that cannot be parsed is logged and
/// dropped (retrying cannot fix it); a record whose escalation failed on the way
/// (DynamoDB, Twilio unreachable) is reported in `batchItemFailures`, so SQS
/// redelivers it alone.
pub async fn handle(
    app: &Result<AckTimeoutApp, StartupError>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let app = match app {
        Ok(app) => app,
        Err(e) => return Err(fail_invocation("ack-timeout", e)),
    };
    let secret_id = &app.settings.twilio_secret_id;
    let account = match app.secrets.get(secret_id).await.and_then(|versions| {
        TwilioAccount::from_versions(secret_id, &versions, app.settings.default_country)
    }) {
        Ok(account) => account,
        Err(e) => {
            tracing::error!(error = %e, "Twilio secret unreadable; failing the batch");
            return Err(e.into());
        }
    };
    let sender = app
        .twilio
        .sender(&account, deadline_from_ms(event.context.deadline));
    let acks = Acks {
        settings: &app.settings.ack,
        store: &app.log,
        timers: &app.timers,
    };
    let move_on = MoveOnService {
        default_country: app.settings.default_country,
        dispatchers: &app.dispatchers,
        claims: &app.log,
        log: &app.log,
        alerts: &app.alerts,
        sender: &sender,
        acks: Some(acks),
    };
    let mut response = SqsBatchResponse::default();
    for record in event.payload.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let timer = match record.body.as_deref().map(AckTimer::parse) {
            Some(Ok(timer)) => timer,
            Some(Err(error)) => {
                tracing::warn!(message_id, error, "unreadable timer record dropped");
                continue;
            }
            None => {
                tracing::warn!(message_id, "timer record without a body dropped");
                continue;
            }
        };
        if let Err(error) = on_timer(&app.log, &acks, &move_on, &timer, unix_now()).await {
            tracing::error!(message_id, message_sid = %timer.inbound_sid, error = %error, detail = %error.detail(), "timer failed; SQS will deliver it again");
            response.add_failure(message_id);
        }
    }
    Ok(response)
}
