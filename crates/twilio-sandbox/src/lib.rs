//! A local stand-in for Twilio's REST Messages API.
//!
//! It answers `POST`/`GET` on `/2010-04-01/Accounts/{AccountSid}/Messages…` the way
//! Twilio does where a client can observe it (Basic auth, validation order, error
//! codes and shapes, magic test numbers), records what it is sent, and can be told
//! to misbehave ([`Fault`]). It builds, signed, the status callbacks Twilio would post
//! about a message ([`Sandbox::status_callback`]) without posting them, so a harness can
//! deliver them however its function under test is reached. Unauthenticated `/_sandbox/*` endpoints expose the
//! records and controls over HTTP.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use twilio_sandbox::{Fault, Sandbox, SandboxConfig};
//! let sandbox = Sandbox::start(SandboxConfig::default()).await?;
//! sandbox.inject(Fault::status(500).times(2));
//! let base = sandbox.base_url(); // use as TWILIO_API_BASE
//! # let _ = base; Ok(()) }
//! ```

mod api;
mod callback;
mod control;
mod error;
mod state;
mod types;
mod util;
mod validate;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use callback::{FAILED_ERROR_CODE, StatusCallback, UNDELIVERED_ERROR_CODE, webhook_signature};
pub use types::{
    Account, DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, Fault, RecordedRequest, SandboxConfig,
    SentMessage,
};

use error::TwilioError;
use state::Shared;

/// A running sandbox server; dropping it shuts the server down.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Shared,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Sandbox {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: SandboxConfig) -> std::io::Result<Sandbox> {
        Self::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts on `addr` (port 0 picks a free port).
    pub async fn start_on(config: SandboxConfig, addr: SocketAddr) -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(config.accounts);
        let app = router(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Sandbox {
            addr,
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The address the server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port`, what a client uses as `TWILIO_API_BASE`.
    pub fn base_url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            self.addr.ip()
        };
        format!("http://{}", SocketAddr::new(host, self.addr.port()))
    }

    /// Accepted messages, in order.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.shared.messages()
    }

    /// Every Messages POST attempt, accepted or not, with what was answered.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Moves accepted message `message_sid` to `status` (`queued`, `sent`, `delivered`,
    /// `undelivered`, `failed`, ...) with `error_code`, and returns the status callback
    /// Twilio would post about it: `None` for an unknown SID or a message sent without a
    /// `StatusCallback` (whose status still changes).
    ///
    /// The form is Twilio's for SMS: `ErrorCode` (only when given), `SmsSid`,
    /// `SmsStatus`, `MessageStatus`, `To`, `From` (or `MessagingServiceSid` for a message
    /// sent through a Messaging Service), `MessageSid`, `AccountSid`, `ApiVersion`. It is
    /// signed with the auth token of the first configured account with the message's
    /// account SID.
    pub fn status_callback(
        &self,
        message_sid: &str,
        status: &str,
        error_code: Option<u32>,
    ) -> Option<StatusCallback> {
        let message = self.shared.set_status(message_sid, status, error_code)?;
        let url = message.status_callback.clone()?;
        let auth_token = &self
            .shared
            .accounts
            .iter()
            .find(|a| a.account_sid == message.account_sid)
            .expect("an accepted message's account is configured")
            .auth_token;
        let params = callback::callback_params(&message, status, error_code);
        let signature = webhook_signature(auth_token, &url, &params);
        Some(StatusCallback {
            url,
            params,
            signature,
        })
    }

    /// The status callbacks Twilio posts over a message's life, in order, ending in
    /// `final_status` (`delivered`, `undelivered` or `failed`), which the message is left
    /// in. As Twilio does, there is none for the message's initial status: a message
    /// sent with `From` (created `queued`) gets `sent` then `final_status`; one sent
    /// through a Messaging Service (created `accepted`) gets `queued` first. A `failed`
    /// message was never `sent`. `undelivered` and `failed` carry `error_code`, by
    /// default [`UNDELIVERED_ERROR_CODE`] (30003) and [`FAILED_ERROR_CODE`] (30008).
    /// Empty for an unknown SID or a message sent without a `StatusCallback`.
    pub fn status_callbacks_for_life(
        &self,
        message_sid: &str,
        final_status: &str,
        error_code: Option<u32>,
    ) -> Vec<StatusCallback> {
        let Some(message) = self
            .shared
            .messages()
            .into_iter()
            .find(|m| m.sid == message_sid)
        else {
            return Vec::new();
        };
        let error_code = error_code.or_else(|| callback::default_error_code(final_status));
        callback::life_statuses(&message, final_status)
            .into_iter()
            .map(|status| (status, None))
            .chain([(final_status, error_code)])
            .filter_map(|(status, code)| self.status_callback(message_sid, status, code))
            .collect()
    }

    /// Queues a fault; same as `POST /_sandbox/faults`.
    pub fn inject(&self, fault: Fault) {
        self.shared.push_fault(fault);
    }

    /// Clears messages, requests and faults.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// All routes over one sandbox's state.
fn router(shared: Shared) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(api::create_message),
        )
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages/{file}",
            get(api::fetch_message),
        )
        .route("/_sandbox/messages", get(control::messages))
        .route("/_sandbox/requests", get(control::requests))
        .route("/_sandbox/faults", post(control::add_fault))
        .route("/_sandbox/reset", post(control::reset))
        .route("/_sandbox/health", get(control::health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(log_request))
        .with_state(shared)
}

async fn not_found(uri: Uri) -> TwilioError {
    TwilioError::not_found(uri.path())
}

async fn method_not_allowed() -> TwilioError {
    TwilioError::new(405, 20004, "Method not allowed")
}

/// Logs each request at info: method, path, status, elapsed time.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await.into_response();
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "twilio-sandbox request"
    );
    response
}
