//! Lambda glue for `dispatcher-heartbeat`: the application built once in `main`, and
//! the handler of EventBridge's `Scheduled Event`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;

use relay_app::clock::unix_now;
use relay_app::config::HeartbeatSettings;
use relay_app::heartbeat::{Heartbeat, RunSummary};
use relay_aws::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use relay_aws::sns::SnsAlertPublisher;

use crate::api::{StartupError, fail_invocation};
use crate::clients::Clients;

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
        let (settings, mut clients) = Clients::start(HeartbeatSettings::from_env).await?;
        let app = HeartbeatApp {
            dispatchers: clients
                .dispatchers(&settings.tables)
                .with_scan_page_size(settings.scan_page_size),
            log: clients.message_log(&settings.tables),
            alerts: clients.alerts(&settings.alert_topic_arn),
            settings,
        };
        clients.built();
        clients.finish("dispatcher-heartbeat");
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
