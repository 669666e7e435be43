//! Lambda glue for `dispatcher-heartbeat`: the application built once in `main`, and
//! the handler of EventBridge's `Scheduled Event`.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;

use relay_app::clock::unix_now;
use relay_app::config::HeartbeatSettings;
use relay_app::heartbeat::{Heartbeat, RunSummary};
use relay_aws::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use relay_aws::sns::SnsAlertPublisher;
use relay_aws::twilio::TwilioApi;
use relay_core::ports::{OutgoingSms, SendError, SenderSource, SentSms, SmsSender};
use relay_core::secret::TwilioAccount;

use relay_app::handover::Handovers;
use relay_app::secret_cache::SecretCache;

use crate::api::{StartupError, deadline_from_ms, fail_invocation};
use crate::clients::Clients;

/// Everything a run needs, built once per execution environment.
pub struct HeartbeatApp {
    settings: HeartbeatSettings,
    dispatchers: DynamoDispatcherStore,
    log: DynamoMessageLog,
    alerts: SnsAlertPublisher,
    twilio: TwilioApi,
    secrets: SecretCache,
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
            twilio: clients.twilio(&settings.twilio_api_base)?,
            secrets: clients.secrets(settings.secret_cache),
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
    let texts = HandoverTexts {
        app,
        deadline: deadline_from_ms(event.context.deadline),
    };
    let heartbeat = Heartbeat {
        primary_dispatcher_id: &app.settings.primary_dispatcher_id,
        default_country: app.settings.default_country,
        dispatchers: &app.dispatchers,
        deliveries: &app.log,
        problems: &app.log,
        alerts: &app.alerts,
        handovers: Handovers {
            claims: &app.log,
            texts: &texts,
            default_country: app.settings.default_country,
        },
    };
    match heartbeat.run(unix_now()).await {
        Ok(summary) => Ok(summary),
        Err(e) => {
            tracing::error!(error = %e, "heartbeat run failed part-way; the next run retries");
            Err(e.to_string().into())
        }
    }
}

/// The handover's Twilio sender, made only when a text is due: the secret is read
/// then (through the cache), never on a run that sends nothing.
struct HandoverTexts<'a> {
    app: &'a HeartbeatApp,
    deadline: Option<std::time::Instant>,
}

#[async_trait::async_trait]
impl SenderSource for HandoverTexts<'_> {
    async fn sender(&self) -> Result<Box<dyn SmsSender + '_>, String> {
        let settings = &self.app.settings;
        let account = self
            .app
            .secrets
            .twilio_account(&settings.twilio_secret_id, settings.default_country)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Box::new(AccountSender {
            api: &self.app.twilio,
            account,
            deadline: self.deadline,
        }))
    }
}

/// A Twilio sender that owns the account it sends for.
struct AccountSender<'a> {
    api: &'a TwilioApi,
    account: TwilioAccount,
    deadline: Option<std::time::Instant>,
}

#[async_trait::async_trait]
impl SmsSender for AccountSender<'_> {
    async fn send(&self, sms: &OutgoingSms) -> Result<SentSms, SendError> {
        self.api
            .sender(&self.account, self.deadline)
            .send(sms)
            .await
    }
}
