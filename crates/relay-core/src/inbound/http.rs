//! Lambda HTTP glue for `sms-inbound`: the application built once in `main`, the
//! request handler, and the one place errors become HTTP statuses.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};

use super::webhook::{InboundSms, Route, Webhook, WebhookError};
use super::{Handled, Relay, RelayError};
use crate::config::{ConfigError, Settings};
use crate::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use crate::ports::SendError;
use crate::secrets::{SecretReader, TwilioAccountCache};
use crate::signature::is_valid_signature;
use crate::sns::SnsAlertPublisher;
use crate::twilio::{RetryPolicy, TwilioApi};

/// Everything an invocation needs, built once per execution environment.
pub struct InboundApp {
    settings: Settings,
    dispatchers: DynamoDispatcherStore,
    log: DynamoMessageLog,
    alerts: SnsAlertPublisher,
    twilio: TwilioApi,
    account: TwilioAccountCache,
}

/// Why the function cannot serve at all; every invocation fails with it (logged).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the HTTP client for Twilio could not be built: {0}")]
    HttpClient(#[from] reqwest::Error),
}

impl InboundApp {
    /// Reads the configuration and builds the AWS and Twilio clients.
    pub async fn from_env() -> Result<Self, StartupError> {
        let settings = Settings::from_env()?;
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let twilio = TwilioApi::new(&settings.twilio_api_base, RetryPolicy::default())?;
        Ok(InboundApp {
            dispatchers: DynamoDispatcherStore::new(
                aws_sdk_dynamodb::Client::new(&aws),
                &settings.state_table,
            ),
            log: DynamoMessageLog::new(
                aws_sdk_dynamodb::Client::new(&aws),
                &settings.message_table,
            ),
            alerts: SnsAlertPublisher::new(
                aws_sdk_sns::Client::new(&aws),
                &settings.alert_topic_arn,
            ),
            account: TwilioAccountCache::new(
                SecretReader::new(aws_sdk_secretsmanager::Client::new(&aws)),
                &settings.twilio_secret_id,
                settings.default_country,
            ),
            twilio,
            settings,
        })
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
        let body = serde_json::json!({
            "error": self.code(),
            "message": self.to_string(),
            "field": self.field(),
        });
        if status.is_client_error() {
            tracing::warn!(status = status.as_u16(), error = self.code(), detail = %self, "request refused");
        }
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("static response parts are valid")
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
        Err(e) => {
            let variable = match e {
                StartupError::Config(c) => Some(c.variable()),
                StartupError::HttpClient(_) => None,
            };
            tracing::error!(variable, error = %e, "sms-inbound is misconfigured; failing the invocation");
            return Err(e.to_string().into());
        }
    };
    let account = match app.account.get().await {
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
        let tokens = account.webhook_tokens();
        let signed = std::iter::once(&hook.url)
            .chain(&hook.url_variants)
            .any(|url| is_valid_signature(&tokens, url, &hook.params, signature));
        if !signed {
            return Err(WebhookError::BadSignature.into());
        }
        match hook.route {
            Route::Inbound => {
                let sms = InboundSms::from_webhook(&hook)?;
                let sender = app.twilio.sender(&account, invocation_deadline(&req));
                let relay = Relay {
                    settings: &app.settings,
                    dispatchers: &app.dispatchers,
                    log: &app.log,
                    alerts: &app.alerts,
                    sender: &sender,
                };
                let handled = relay.relay(&sms, hook.status_callback_url(), now).await?;
                Ok(match handled {
                    Handled::Command { reply: Some(text) } => Some(text),
                    _ => None,
                })
            }
            Route::Status => {
                tracing::info!(
                    message_sid = hook.param("MessageSid").unwrap_or_default(),
                    message_status = hook.param("MessageStatus").unwrap_or_default(),
                    "status callback received"
                );
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

/// The Lambda invocation's deadline as an `Instant`, from the Runtime API's header.
fn invocation_deadline(req: &Request) -> Option<Instant> {
    let deadline_ms = req.lambda_context_ref()?.deadline;
    if deadline_ms == 0 {
        return None; // not given
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    let remaining = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(Instant::now() + remaining)
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

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
