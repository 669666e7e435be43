//! Lambda HTTP glue for `sms-outbound`: the application built once in `main` and the
//! request handler.

use std::time::{Duration, Instant};

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};

use relay_app::answer::error_body;
use relay_app::clock::unix_now;
use relay_app::config::OutboundSettings;
use relay_app::metric;
use relay_app::outbound::{Outbound, OutboundError, Reply};
use relay_app::secret_cache::SecretCache;
use relay_aws::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use relay_aws::twilio::TwilioApi;
use relay_core::auth::{AuthError, BearerToken, JwtKeys, verify};
use relay_core::claim::{IdempotencyKey, StoredResponse};
use relay_core::dispatcher::DispatcherRecord;
use relay_core::ids::DispatcherId;
use relay_core::ports::DispatcherStore;
use relay_core::reply::OutboundRequest;
use relay_core::secret::{SecretError, TwilioAccount};

use crate::api::{StartupError, fail_invocation, invocation_deadline, json_response};
use crate::clients::Clients;
use crate::startup::prefetch_step;

pub const OUTBOUND_PATH: &str = "/api/v1/sms/outbound";

/// The dispatcher item init reads only to open the DynamoDB connection (it need not
/// exist).
const CONNECTION_PROBE_ID: &str = "connection-probe";

/// Everything an invocation needs, built once per execution environment.
pub struct OutboundApp {
    settings: OutboundSettings,
    dispatchers: DynamoDispatcherStore,
    log: DynamoMessageLog,
    twilio: TwilioApi,
    secrets: SecretCache,
}

impl OutboundApp {
    /// Reads the configuration, builds the AWS and Twilio clients, and prefetches what
    /// the first reply needs.
    pub async fn from_env() -> Result<Self, StartupError> {
        let (settings, mut clients) = Clients::start(OutboundSettings::from_env).await?;
        let app = OutboundApp {
            twilio: clients.twilio(&settings.twilio_api_base)?,
            dispatchers: clients.dispatchers(&settings.tables),
            log: clients.message_log(&settings.tables),
            secrets: clients.secrets(settings.secret_cache),
            settings,
        };
        clients.built();
        clients.clock.prefetch(app.prefetch()).await;
        clients.finish("sms-outbound");
        Ok(app)
    }

    /// What every first reply waits for, at once: both secrets (into the cache), a
    /// DynamoDB connection and a connection to Twilio's API.
    async fn prefetch(&self) {
        // Any item opens the connection; the reply's own dispatcher is not known yet.
        let probe = async {
            match DispatcherId::parse(CONNECTION_PROBE_ID) {
                Ok(id) => self.dispatchers.get(&id).await.map(|_| ()),
                Err(_) => Ok(()),
            }
        };
        tokio::join!(
            prefetch_step("jwt_secret", self.jwt_keys()),
            prefetch_step("twilio_secret", self.twilio_account()),
            prefetch_step("dynamodb", probe),
            prefetch_step("twilio_connection", self.twilio.warm()),
        );
    }

    async fn jwt_keys(&self) -> Result<JwtKeys, SecretError> {
        let secret_id = &self.settings.jwt_secret_id;
        JwtKeys::from_versions(secret_id, &*self.secrets.get(secret_id).await?)
    }

    async fn twilio_account(&self) -> Result<TwilioAccount, SecretError> {
        self.secrets
            .twilio_account(
                &self.settings.twilio_secret_id,
                self.settings.default_country,
            )
            .await
    }

    /// The dispatcher the token names. A signature that does not verify may be a
    /// token signed after a rotation we have not seen: the secret is re-read (at most
    /// once a minute, so forged tokens cannot hammer Secrets Manager) and tried again.
    async fn authenticate(
        &self,
        token: &BearerToken,
        keys: JwtKeys,
    ) -> Result<DispatcherId, AuthError> {
        match verify(token, &keys) {
            Err(AuthError::BadSignature) => {
                let secret_id = &self.settings.jwt_secret_id;
                let Some(versions) = self.secrets.refresh_after_failure(secret_id).await else {
                    return Err(AuthError::BadSignature);
                };
                match JwtKeys::from_versions(secret_id, &versions) {
                    Ok(fresh) => verify(token, &fresh),
                    Err(e) => {
                        tracing::error!(secret_id, error = %e, "the re-read JWT secret is unusable");
                        Err(AuthError::BadSignature)
                    }
                }
            }
            other => other,
        }
    }

    async fn dispatcher(&self, id: &DispatcherId) -> Result<DispatcherRecord, OutboundError> {
        self.dispatchers
            .get(id)
            .await?
            .ok_or(OutboundError::Auth(AuthError::UnknownDispatcher))
    }
}

/// Handles one API Gateway (REST or HTTP API) or function-URL request.
///
/// A broken configuration or an unreadable secret fails the invocation itself
/// (logged, naming the variable or secret), which API Gateway answers with a 5xx.
pub async fn handle(
    app: &Result<OutboundApp, StartupError>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let app = match app {
        Ok(app) => app,
        Err(e) => return Err(fail_invocation("sms-outbound", e)),
    };
    let raw_path = req.raw_http_path();
    let path = if raw_path.is_empty() {
        req.uri().path()
    } else {
        raw_path
    };
    // A suffix, because a custom domain's base path may stand in front of it.
    if !path.ends_with(OUTBOUND_PATH) {
        return Ok(plain_error(StatusCode::NOT_FOUND, "not_found", path));
    }
    if req.method() != lambda_http::http::Method::POST {
        let method = req.method().to_string();
        return Ok(plain_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &method,
        ));
    }
    let now = unix_now();
    let outcome: Result<Reply, Failure> = async {
        let keys = app.jwt_keys().await.map_err(Failure::Secret)?;
        let token = BearerToken::from_header(header(&req, "authorization"))?;
        let dispatcher_id = app.authenticate(&token, keys).await?;
        let parsed = OutboundRequest::parse(req.body().as_ref(), app.settings.default_country)
            .map_err(OutboundError::from)
            .and_then(|request| {
                let key = header(&req, "idempotency-key")
                    .map(IdempotencyKey::parse)
                    .transpose()?;
                Ok((request, key))
            });
        let (request, key) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => {
                // An unknown dispatcher is answered before a bad body.
                app.dispatcher(&dispatcher_id).await?;
                return Err(error.into());
            }
        };
        // Read only for a request that will be sent: a refused one never needs it.
        let account = app.twilio_account().await.map_err(Failure::Secret)?;
        let deadline = invocation_deadline(&req);
        let sender = app.twilio.sender(&account, deadline);
        let outbound = Outbound {
            dispatchers: &app.dispatchers,
            claims: &app.log,
            log: &app.log,
            sender: &sender,
            wait_for_first: wait_for_first(deadline),
        };
        Ok(outbound
            .send(&dispatcher_id, &request, key.as_ref(), now)
            .await?)
    }
    .await;
    Ok(match outcome {
        Err(Failure::Secret(e)) => {
            // Not the caller's fault, and no answer would be right: fail the invocation
            // (API Gateway answers 5xx), naming the secret.
            tracing::error!(error = %e, "a secret is unreadable; failing the invocation");
            return Err(e.into());
        }
        Err(Failure::Refused(error)) => {
            metric::outbound_failed(error.code());
            let response = error.response();
            let status = error.status();
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), error = error.code(), detail = ?error, "request failed");
            } else {
                tracing::warn!(status = status.as_u16(), error = error.code(), detail = %error, "request refused");
            }
            answer(&response, false)
        }
        Ok(Reply::Fresh(response)) => answer(&response, false),
        Ok(Reply::Replayed(response)) => {
            tracing::info!(
                status = response.status,
                "replaying the first answer to this Idempotency-Key"
            );
            answer(&response, true)
        }
    })
}

/// How long a retry may wait for the first request with its key to answer: most of
/// the invocation, so the retry can replay the answer rather than say "in flight".
fn wait_for_first(deadline: Option<Instant>) -> Duration {
    const MOST: Duration = Duration::from_secs(10);
    const MARGIN: Duration = Duration::from_secs(2);
    match deadline {
        Some(deadline) => deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(MARGIN)
            .min(MOST),
        None => MOST,
    }
}

/// Why a request got no answer of its own: a secret the function cannot read fails
/// the invocation; anything else is answered.
enum Failure {
    Secret(SecretError),
    Refused(OutboundError),
}

impl<E: Into<OutboundError>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::Refused(error.into())
    }
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn answer(response: &StoredResponse, replayed: bool) -> Response<Body> {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut http = json_response(status, &response.body);
    if replayed {
        http.headers_mut().insert(
            "idempotent-replayed",
            "true".parse().expect("a valid header value"),
        );
    }
    http
}

fn plain_error(status: StatusCode, code: &str, what: &str) -> Response<Body> {
    let body = error_body(code, &format!("{code}: {what}"), None, None);
    json_response(status, &body.to_string())
}
