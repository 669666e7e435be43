//! `sms-inbound`: Twilio's messaging webhook and status callback, under the Lambda
//! Runtime API. Builds configuration and clients once, then serves invocations.

use lambda_http::{Error, service_fn};
use relay_lambda::emf::{self, Metrics};
use relay_lambda::inbound::{InboundApp, handle};

fn main() -> Result<(), Error> {
    relay_lambda::startup::run(serve)
}

async fn serve() -> Result<(), Error> {
    relay_lambda::telemetry::init();
    let app = InboundApp::from_env().await;
    if let Err(e) = &app {
        // Keep running: every invocation fails with this, instead of a crash loop.
        tracing::error!(error = %e, "sms-inbound configuration is invalid");
    }
    let app = &app;
    let metrics = &Metrics::install("sms-inbound");
    lambda_http::run(service_fn(move |req| {
        metrics.measure(emf::request_id(&req), handle(app, req))
    }))
    .await
}
