//! Lambda HTTP glue for `sms-inbound`: the application built once in `main`, the
//! request handler, and the one place errors become HTTP statuses.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use super::acks::Acks;
use super::status::{StatusCallbacks, StatusUpdate};
use super::webhook::{InboundSms, Route, Webhook, WebhookError};
use super::{Handled, Relay, RelayError};
use crate::api::{
    StartupError, error_body, fail_invocation, invocation_deadline, json_response, unix_now,
};
use crate::config::InboundSettings;
use crate::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use crate::ports::DispatcherStore;
use crate::ports::SendError;
use crate::secrets::{SecretCache, SecretError, SecretsManagerSource, TwilioAccount};
use crate::sns::SnsAlertPublisher;
use crate::sqs::SqsTimerQueue;
use crate::startup::{InitClock, prefetch_failed};
use crate::transport::Transport;
use crate::twilio::{RetryPolicy, TwilioApi};

/// Everything an invocation needs, built once per execution environment.
pub struct InboundApp {
    settings: InboundSettings,
    dispatchers: DynamoDispatcherStore,
    log: DynamoMessageLog,
    alerts: SnsAlertPublisher,
    twilio: TwilioApi,
    secrets: SecretCache,
    /// Set when acknowledgement is on.
    timers: Option<SqsTimerQueue>,
}

impl InboundApp {
    /// Reads the configuration, builds the AWS and Twilio clients, and prefetches what
    /// the first message needs.
    pub async fn from_env() -> Result<Self, StartupError> {
        let mut clock = InitClock::start();
        let settings = InboundSettings::from_env()?;
        clock.config_read();
        let transport = Transport::from_env()?;
        clock.tls_configured();
        let aws = transport.aws_config().await?;
        clock.sdk_config_loaded();
        let twilio = TwilioApi::new(
            transport.reqwest(),
            &settings.twilio_api_base,
            RetryPolicy::default(),
        )?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
        let source = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(&aws));
        let app = InboundApp {
            dispatchers: DynamoDispatcherStore::new(dynamodb.clone(), &settings.tables.state_table),
            log: DynamoMessageLog::new(dynamodb, &settings.tables.message_table),
            alerts: SnsAlertPublisher::new(
                aws_sdk_sns::Client::new(&aws),
                &settings.alert_topic_arn,
            ),
            secrets: SecretCache::new(Box::new(source), settings.secret_cache),
            timers: settings
                .ack
                .as_ref()
                .map(|ack| SqsTimerQueue::new(aws_sdk_sqs::Client::new(&aws), &ack.queue_url)),
            twilio,
            settings,
        };
        clock.clients_built();
        clock.prefetch(app.prefetch()).await;
        clock.finish("sms-inbound");
        Ok(app)
    }

    /// What every first message waits for, at once: the Twilio secret (into the
    /// cache), the primary's item (opening the DynamoDB connection) and a connection to
    /// Twilio's API.
    async fn prefetch(&self) {
        let secret = async {
            if let Err(e) = self.twilio_account().await {
                prefetch_failed("twilio_secret", &e);
            }
        };
        let dynamodb = async {
            if let Err(e) = self
                .dispatchers
                .get(&self.settings.primary_dispatcher_id)
                .await
            {
                prefetch_failed("dynamodb", &e);
            }
        };
        let twilio = async {
            if let Err(e) = self.twilio.warm().await {
                prefetch_failed("twilio_connection", &e);
            }
        };
        tokio::join!(secret, dynamodb, twilio);
    }
}

impl InboundApp {
    fn acks(&self) -> Option<Acks<'_>> {
        match (&self.settings.ack, &self.timers) {
            (Some(settings), Some(timers)) => Some(Acks {
                settings,
                store: &self.log,
                timers,
            }),
            _ => None,
        }
    }

    async fn twilio_account(&self) -> Result<TwilioAccount, SecretError> {
        let secret_id = &self.settings.twilio_secret_id;
        let versions = self.secrets.get(secret_id).await?;
        TwilioAccount::from_versions(secret_id, &versions, self.settings.default_country)
    }

    async fn refreshed_twilio_account(&self) -> Option<TwilioAccount> {
        let secret_id = &self.settings.twilio_secret_id;
        let versions = self.secrets.refresh_after_failure(secret_id).await?;
        TwilioAccount::from_versions(secret_id, &versions, self.settings.default_country)
            .inspect_err(
                |e| tracing::error!(secret_id, error = %e, "the re-read Twilio secret is unusable"),
            )
            .ok()
    }
}

/// Every way a request can fail, mapped to a status in [`ApiError::status`].
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error(transparent)]
    Webhook(#[from] WebhookError),
    #[error(transparent)]
    Relay(#[from] RelayError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Webhook(e) => match e {
                WebhookError::NotFound(_) => StatusCode::NOT_FOUND,
                WebhookError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
                WebhookError::NotAForm(_)
                | WebhookError::MissingField(_)
                | WebhookError::InvalidField { .. } => StatusCode::BAD_REQUEST,
                WebhookError::MissingSignature | WebhookError::BadSignature => {
                    StatusCode::FORBIDDEN
                }
            },
            // 5xx so Twilio's fallback URL takes the message over.
            ApiError::Relay(e) => match e {
                RelayError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                RelayError::PrimaryMissing(_) | RelayError::NoTierReachable(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                RelayError::Twilio(SendError::OutcomeUnknown { .. }) => StatusCode::GATEWAY_TIMEOUT,
                RelayError::Twilio(_) => StatusCode::BAD_GATEWAY,
            },
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Webhook(e) => match e {
                WebhookError::NotFound(_) => "not_found",
                WebhookError::MethodNotAllowed(_) => "method_not_allowed",
                WebhookError::NotAForm(_) => "not_a_form",
                WebhookError::MissingField(_) => "missing_field",
                WebhookError::InvalidField { .. } => "invalid_field",
                WebhookError::MissingSignature => "missing_signature",
                WebhookError::BadSignature => "bad_signature",
            },
            ApiError::Relay(e) => match e {
                RelayError::Store(_) => "store_unavailable",
                RelayError::PrimaryMissing(_) => "primary_dispatcher_missing",
                RelayError::NoTierReachable(_) => "no_tier_reachable",
                RelayError::Twilio(SendError::OutcomeUnknown { .. }) => "twilio_outcome_unknown",
                RelayError::Twilio(_) => "twilio_unavailable",
            },
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            ApiError::Webhook(WebhookError::MissingField(field))
            | ApiError::Webhook(WebhookError::InvalidField { field, .. }) => Some(field),
            _ => None,
        }
    }

    fn into_response(self) -> Response<Body> {
        let status = self.status();
        let body = error_body(self.code(), &self.to_string(), self.field(), None);
        match &self {
            _ if status.is_client_error() => {
                tracing::warn!(status = status.as_u16(), error = self.code(), detail = %self, "request refused")
            }
            ApiError::Relay(e) => {
                tracing::error!(status = status.as_u16(), error = self.code(), detail = %e.detail(), "request failed")
            }
            ApiError::Webhook(_) => {}
        }
        json_response(status, &body.to_string())
    }
}

/// Handles one API Gateway (REST or HTTP API) or function-URL request.
///
/// A broken configuration or an unreadable Twilio secret fails the invocation itself
/// (logged, naming the variable or secret), which API Gateway answers with a 5xx.
pub async fn handle(
    app: &Result<InboundApp, StartupError>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let app = match app {
        Ok(app) => app,
        Err(e) => return Err(fail_invocation("sms-inbound", e)),
    };
    let mut account = match app.twilio_account().await {
        Ok(account) => account,
        Err(e) => {
            tracing::error!(secret_id = %app.settings.twilio_secret_id, error = %e, "Twilio secret unreadable; failing the invocation");
            return Err(e.into());
        }
    };
    let now = unix_now();
    let outcome = async {
        let hook = Webhook::from_request(&req, app.settings.public_base_url.as_deref())?;
        let signature = hook
            .signature
            .as_deref()
            .ok_or(WebhookError::MissingSignature)?;
        if !hook.is_signed_by(&account, signature) {
            // Maybe the token was rotated since we cached it: re-read the secret (at
            // most once a minute, so forged webhooks cannot hammer Secrets Manager).
            match app.refreshed_twilio_account().await {
                Some(fresh) if hook.is_signed_by(&fresh, signature) => account = fresh,
                _ => return Err(WebhookError::BadSignature.into()),
            }
        }
        match hook.route {
            Route::Inbound => {
                let sms = InboundSms::from_webhook(&hook)?;
                let sender = app.twilio.sender(&account, invocation_deadline(&req));
                let relay = Relay {
                    settings: &app.settings,
                    dispatchers: &app.dispatchers,
                    claims: &app.log,
                    log: &app.log,
                    deliveries: &app.log,
                    alerts: &app.alerts,
                    sender: &sender,
                    acks: app.acks(),
                };
                let handled = relay.relay(&sms, hook.status_callback_url(), now).await?;
                Ok(match handled {
                    Handled::Command { reply: Some(text) } => Some(text),
                    _ => None,
                })
            }
            Route::Status => {
                let Some(update) = StatusUpdate::from_webhook(&hook)? else {
                    return Ok(None);
                };
                let sender = app.twilio.sender(&account, invocation_deadline(&req));
                let callbacks = StatusCallbacks {
                    settings: &app.settings,
                    dispatchers: &app.dispatchers,
                    claims: &app.log,
                    log: &app.log,
                    deliveries: &app.log,
                    alerts: &app.alerts,
                    sender: &sender,
                    acks: app.acks(),
                };
                callbacks.handle(&update, now).await?;
                Ok(None)
            }
        }
    }
    .await;
    // The TwiML answer: empty (no reply to a driver), or a dispatcher's confirmation.
    Ok(match outcome {
        Ok(Some(text)) => twiml(&format!(
            "<Response><Message>{}</Message></Response>",
            xml_escape(&text)
        )),
        Ok(None) => twiml("<Response/>"),
        Err(e) => ApiError::into_response(e),
    })
}

fn twiml(xml: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/xml")
        .body(Body::from(xml.to_string()))
        .expect("static response parts are valid")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
