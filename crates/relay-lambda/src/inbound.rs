//! Lambda HTTP glue for `sms-inbound`: the application built once in `main`, the
//! request handler, and the one place errors become HTTP statuses.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use relay_app::answer::error_body;
use relay_app::clock::unix_now;
use relay_app::config::InboundSettings;
use relay_app::relay::acks::{AckError, Acks};
use relay_app::relay::replies::{ReferenceError, Replies};
use relay_app::relay::status::StatusCallbacks;
use relay_app::relay::{Relay, RelayError, RelayPorts};
use relay_app::secret_cache::SecretCache;
use relay_aws::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use relay_aws::sns::SnsAlertPublisher;
use relay_aws::sqs::SqsTimerQueue;
use relay_aws::twilio::TwilioApi;
use relay_core::delivery::StatusUpdate;
use relay_core::ports::{DispatcherStore, SendError, SmsSender};
use relay_core::secret::{SecretError, TwilioAccount};
use relay_core::sms::FieldError;

use crate::api::{StartupError, fail_invocation, invocation_deadline, json_response};
use crate::clients::Clients;
use crate::startup::prefetch_step;
use crate::webhook::{Route, Webhook, WebhookError};

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
        let (settings, mut clients) = Clients::start(InboundSettings::from_env).await?;
        let app = InboundApp {
            dispatchers: clients.dispatchers(&settings.tables),
            log: clients.message_log(&settings.tables),
            alerts: clients.alerts(&settings.alert_topic_arn),
            secrets: clients.secrets(settings.secret_cache),
            timers: settings
                .ack
                .as_ref()
                .map(|ack| clients.timers(&ack.queue_url)),
            twilio: clients.twilio(&settings.twilio_api_base)?,
            settings,
        };
        clients.built();
        clients.clock.prefetch(app.prefetch()).await;
        clients.finish("sms-inbound");
        Ok(app)
    }

    /// What every first message waits for, at once: the Twilio secret (into the
    /// cache), the state table's read (opening the DynamoDB connection) and a
    /// connection to Twilio's API.
    async fn prefetch(&self) {
        tokio::join!(
            prefetch_step("twilio_secret", self.twilio_account()),
            prefetch_step("dynamodb", self.dispatchers.roster()),
            prefetch_step("twilio_connection", self.twilio.warm()),
        );
    }
}

impl InboundApp {
    /// What the relay and the status callbacks use, with this invocation's sender.
    fn ports<'a>(&'a self, sender: &'a dyn SmsSender) -> RelayPorts<'a> {
        RelayPorts {
            dispatchers: &self.dispatchers,
            claims: &self.log,
            log: &self.log,
            deliveries: &self.log,
            alerts: &self.alerts,
            sender,
            replies: Replies {
                store: &self.log,
                window_secs: self.settings.reply_window_secs,
            },
            acks: self.acks(),
        }
    }

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
        self.secrets
            .twilio_account(
                &self.settings.twilio_secret_id,
                self.settings.default_country,
            )
            .await
    }

    async fn refreshed_twilio_account(&self) -> Option<TwilioAccount> {
        self.secrets
            .refreshed_twilio_account(
                &self.settings.twilio_secret_id,
                self.settings.default_country,
            )
            .await
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
                WebhookError::NotAForm(_) | WebhookError::Field(_) => StatusCode::BAD_REQUEST,
                WebhookError::MissingSignature | WebhookError::BadSignature => {
                    StatusCode::FORBIDDEN
                }
            },
            // 5xx so Twilio's fallback URL takes the message over.
            ApiError::Relay(e) => match e {
                RelayError::Store(_)
                | RelayError::Ack(AckError::Store(_) | AckError::Timer(_))
                | RelayError::Reference(ReferenceError::Store(_)) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
                RelayError::Reference(ReferenceError::NoFreeReference { .. }) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
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
                WebhookError::Field(FieldError::Missing(_)) => "missing_field",
                WebhookError::Field(FieldError::Invalid { .. }) => "invalid_field",
                WebhookError::MissingSignature => "missing_signature",
                WebhookError::BadSignature => "bad_signature",
            },
            ApiError::Relay(e) => match e {
                RelayError::Store(_)
                | RelayError::Ack(AckError::Store(_))
                | RelayError::Reference(ReferenceError::Store(_)) => "store_unavailable",
                RelayError::Reference(ReferenceError::NoFreeReference { .. }) => {
                    "no_free_reference"
                }
                RelayError::Ack(AckError::Timer(_)) => "timer_unavailable",
                RelayError::PrimaryMissing(_) => "primary_dispatcher_missing",
                RelayError::NoTierReachable(_) => "no_tier_reachable",
                RelayError::Twilio(SendError::OutcomeUnknown { .. }) => "twilio_outcome_unknown",
                RelayError::Twilio(_) => "twilio_unavailable",
            },
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            ApiError::Webhook(WebhookError::Field(
                FieldError::Missing(field) | FieldError::Invalid { field, .. },
            )) => Some(field),
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
                let sms = hook.inbound_sms()?;
                let sender = app.twilio.sender(&account, invocation_deadline(&req));
                let relay = Relay {
                    settings: &app.settings,
                    ports: app.ports(&sender),
                    outbound_log: &app.log,
                };
                let handled = relay.relay(&sms, hook.status_callback_url(), now).await?;
                Ok(handled.reply())
            }
            Route::Status => {
                let Some(update) =
                    StatusUpdate::from_form(&hook.params).map_err(WebhookError::from)?
                else {
                    return Ok(None);
                };
                let sender = app.twilio.sender(&account, invocation_deadline(&req));
                let callbacks = StatusCallbacks {
                    settings: &app.settings,
                    ports: app.ports(&sender),
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
