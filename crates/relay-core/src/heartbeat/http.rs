//! Lambda glue for `dispatcher-heartbeat`: the application built once in `main`, and
//! the handler of EventBridge's `Scheduled Event`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;

use super::{Heartbeat, RunSummary};
use crate::api::{StartupError, fail_invocation, unix_now};
use crate::config::HeartbeatSettings;
use crate::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use crate::sns::SnsAlertPublisher;
use crate::startup::InitClock;
use crate::transport::Transport;

/// Everything a run needs, built once per execution environment.
pub struct HeartbeatApp {
    settings: HeartbeatSettings,
    dispatchers: DynamoDispatcherStore,
    log: DynamoMessageLog,
    alerts: SnsAlertPublisher,
}

impl HeartbeatApp {
    pub async fn from_env() -> Result<Self, StartupError> {
        // No prefetch: nobody waits on this function's first invocation.
        let mut clock = InitClock::start();
        let settings = HeartbeatSettings::from_env()?;
        clock.config_read();
        let transport = Transport::from_env()?;
        clock.tls_configured();
        let aws = transport.aws_config().await?;
        clock.sdk_config_loaded();
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let app = HeartbeatApp {
            dispatchers: DynamoDispatcherStore::new(dynamodb.clone(), &settings.tables.state_table)
                .with_scan_page_size(settings.scan_page_size),
            log: DynamoMessageLog::new(dynamodb, &settings.tables.message_table),
            alerts: SnsAlertPublisher::new(
                aws_sdk_sns::Client::new(&aws),
                &settings.alert_topic_arn,
            ),
            settings,
        };
        clock.clients_built();
        clock.finish("dispatcher-heartbeat");
        Ok(app)
    }
}

/// Runs the heartbeat once. The answer is the run's summary; a run that failed
/// part-way fails the invocation, so Lambda reports it (and the next run retries).
pub async fn handle(
    app: &Result<HeartbeatApp, StartupError>,
    event: LambdaEvent<EventBridgeEvent>,
) -> Result<RunSummary, lambda_runtime::Error> {
    let app = match app {
        Ok(app) => app,
        Err(e) => return Err(fail_invocation("dispatcher-heartbeat", e)),
    };
    tracing::info!(
        detail_type = %event.payload.detail_type,
        source = %event.payload.source,
        "heartbeat triggered"
    );
    let heartbeat = Heartbeat {
        primary_dispatcher_id: &app.settings.primary_dispatcher_id,
        default_country: app.settings.default_country,
        dispatchers: &app.dispatchers,
        deliveries: &app.log,
        problems: &app.log,
        alerts: &app.alerts,
    };
    match heartbeat.run(unix_now()).await {
        Ok(summary) => Ok(summary),
        Err(e) => {
            tracing::error!(error = %e, "heartbeat run failed part-way; the next run retries");
            Err(e.to_string().into())
        }
    }
}
