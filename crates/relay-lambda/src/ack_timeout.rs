//! Lambda glue for `ack-timeout`: the application built once in `main`, and the
//! handler of SQS batches, answering partial batch failures.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::LambdaEvent;

use relay_app::ack_timeout::on_timer;
use relay_app::clock::unix_now;
use relay_app::config::AckTimeoutSettings;
use relay_app::relay::RelayPorts;
use relay_app::relay::acks::Acks;
use relay_app::relay::move_on::{MoveOnService, Repeats};
use relay_app::relay::replies::Replies;
use relay_app::secret_cache::SecretCache;
use relay_aws::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use relay_aws::sns::SnsAlertPublisher;
use relay_aws::sqs::SqsTimerQueue;
use relay_aws::twilio::TwilioApi;
use relay_core::ack::AckTimer;

use crate::api::{StartupError, deadline_from_ms, fail_invocation};
use crate::clients::Clients;

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
        let (settings, mut clients) = Clients::start(AckTimeoutSettings::from_env).await?;
        let app = AckTimeoutApp {
            dispatchers: clients.dispatchers(&settings.tables),
            log: clients.message_log(&settings.tables),
            alerts: clients.alerts(&settings.alert_topic_arn),
            twilio: clients.twilio(&settings.twilio_api_base)?,
            secrets: clients.secrets(settings.secret_cache),
            timers: clients.timers(&settings.ack.queue_url),
            settings,
        };
        clients.built();
        clients.finish("ack-timeout");
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
    let account = match app
        .secrets
        .twilio_account(secret_id, app.settings.default_country)
        .await
    {
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
        heartbeat_max_age_secs: app.settings.heartbeat_max_age_secs,
        repeats: Repeats {
            rounds: app.settings.escalation_repeats,
            fallback_primary: &app.settings.primary_dispatcher_id,
        },
        ports: RelayPorts {
            dispatchers: &app.dispatchers,
            claims: &app.log,
            log: &app.log,
            deliveries: &app.log,
            alerts: &app.alerts,
            sender: &sender,
            replies: Replies {
                store: &app.log,
                window_secs: app.settings.reply_window_secs,
            },
            acks: Some(acks),
        },
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
