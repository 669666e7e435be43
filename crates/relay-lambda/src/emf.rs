//! The metrics recorder: `metrics_cloudwatch_embedded` writes what an invocation
//! recorded (through `relay_app::metric`) as Embedded Metric Format lines on stdout,
//! once per invocation, tagged with the Lambda request ID.

use std::future::Future;
use std::time::Instant;

use metrics_cloudwatch_embedded::Collector;
use relay_app::metric::{NAMESPACE, SERVICE};

/// The installed recorder, if there is one: built once in a function's `main`.
pub struct Metrics {
    collector: Option<&'static Collector>,
    function: &'static str,
}

impl Metrics {
    /// Installs the process-wide recorder for `function`. A failure (a recorder is
    /// already installed) is logged and leaves metrics off; it never stops the function.
    pub fn install(function: &'static str) -> Metrics {
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .with_dimension("Service", SERVICE)
            .init();
        if let Ok(collector) = collector {
            metrics::describe_histogram!("HandlingTime", metrics::Unit::Milliseconds, "");
            metrics::describe_histogram!("DeliveryTime", metrics::Unit::Seconds, "");
            metrics::describe_counter!("MessagesRelayed", metrics::Unit::Count, "");
            Metrics {
                collector: Some(collector),
                function,
            }
        } else {
            tracing::error!(function, "metrics recorder not installed; no metrics");
            Metrics {
                collector: None,
                function,
            }
        }
    }

    /// Runs one invocation's `work`, records its `HandlingTime` (by `Function`), and
    /// writes every metric recorded meanwhile as EMF lines carrying `RequestId`.
    pub async fn measure<F: Future>(&self, request_id: String, work: F) -> F::Output {
        let started = Instant::now();
        let output = work.await;
        let Some(collector) = self.collector else {
            return output;
        };
        metrics::histogram!("HandlingTime", "Function" => self.function)
            .record(started.elapsed().as_secs_f64() * 1000.0);
        let written = collector
            .set_property("RequestId", request_id)
            .flush(std::io::stdout().lock());
        if let Err(error) = written {
            tracing::error!(%error, "metrics could not be written");
        }
        output
    }
}

/// The Lambda request ID of an API Gateway request (empty outside Lambda).
pub fn request_id(req: &lambda_http::Request) -> String {
    use lambda_http::RequestExt;
    req.lambda_context_ref()
        .map(|context| context.request_id.clone())
        .unwrap_or_default()
}
