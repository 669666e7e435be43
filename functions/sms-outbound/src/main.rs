//! `sms-outbound`: dispatchers answer drivers through `POST /api/v1/sms/outbound`,
//! under the Lambda Runtime API. Builds configuration and clients once, then serves
//! invocations.

use lambda_http::{Error, service_fn};
use relay_lambda::emf::{self, Metrics};
use relay_lambda::outbound::{OutboundApp, handle};

fn main() -> Result<(), Error> {
    relay_lambda::startup::run(serve)
}

async fn serve() -> Result<(), Error> {
    relay_lambda::telemetry::init();
    let app = OutboundApp::from_env().await;
    if let Err(e) = &app {
        // Keep running: every invocation fails with this, instead of a crash loop.
        tracing::error!(error = %e, "sms-outbound configuration is invalid");
    }
    let app = &app;
    let metrics = &Metrics::install("sms-outbound");
    lambda_http::run(service_fn(move |req| {
        metrics.measure(emf::request_id(&req), handle(app, req))
    }))
    .await
}
