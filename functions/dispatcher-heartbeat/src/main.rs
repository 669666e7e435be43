//! `dispatcher-heartbeat`: the EventBridge schedule's target, under the Lambda Runtime
//! API. Builds configuration and clients once, then runs the heartbeat per event.

use lambda_runtime::{Error, service_fn};
use relay_core::heartbeat::http::{HeartbeatApp, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    relay_core::telemetry::init();
    let app = HeartbeatApp::from_env().await;
    if let Err(e) = &app {
        // Keep running: every invocation fails with this, instead of a crash loop.
        tracing::error!(error = %e, "dispatcher-heartbeat configuration is invalid");
    }
    let app = &app;
    lambda_runtime::run(service_fn(move |event| handle(app, event))).await
}
