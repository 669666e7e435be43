//! `ack-timeout`: the acknowledgement queue's consumer, under the Lambda Runtime API.
//! Builds configuration and clients once, then handles SQS batches.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use relay_lambda::ack_timeout::{AckTimeoutApp, handle};
use relay_lambda::emf::Metrics;

fn main() -> Result<(), Error> {
    relay_lambda::startup::run(serve)
}

async fn serve() -> Result<(), Error> {
    relay_lambda::telemetry::init();
    let app = AckTimeoutApp::from_env().await;
    if let Err(e) = &app {
        // Keep running: every invocation fails with this, instead of a crash loop.
        tracing::error!(error = %e, "ack-timeout configuration is invalid");
    }
    let app = &app;
    let metrics = &Metrics::install("ack-timeout");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<_>| {
        metrics.measure(event.context.request_id.clone(), handle(app, event))
    }))
    .await
}
