//! `dispatcher-heartbeat`: the EventBridge schedule's target, under the Lambda Runtime
//! API. Builds configuration and clients once, then runs the heartbeat per event.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use relay_lambda::emf::Metrics;
use relay_lambda::heartbeat::{HeartbeatApp, handle};

fn main() -> Result<(), Error> {
    relay_lambda::startup::run(serve)
}

async fn serve() -> Result<(), Error> {
    relay_lambda::telemetry::init();
    let app = HeartbeatApp::from_env().await;
    if let Err(e) = &app {
        // Keep running: every invocation fails with this, instead of a crash loop.
        tracing::error!(error = %e, "dispatcher-heartbeat configuration is invalid");
    }
    let app = &app;
    let metrics = &Metrics::install("dispatcher-heartbeat");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        metrics.measure(event.context.request_id.clone(), handle(app, event))
    }))
    .await
}
