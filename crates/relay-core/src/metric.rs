//! CloudWatch metrics, written to stdout in the Embedded Metric Format (EMF): Lambda's
//! log agent turns each such line into metric data, so no `PutMetricData` call (and no
//! IAM permission, and no latency) is added to an invocation.
//!
//! The recording side is the `metrics` facade; `metrics_cloudwatch_embedded` is the
//! recorder and writes the EMF lines. [`Metrics::measure`] wraps each invocation:
//! it times it and writes what the invocation recorded, once, tagged with the Lambda
//! request ID. Without an installed recorder (unit tests, the CLI) every call here is
//! a no-op.
//!
//! Every metric is in [`NAMESPACE`] with the dimension `Service` = [`SERVICE`], plus
//! the one label named below where there is one. The names are the ones
//! `template.yaml`'s dashboard and alarms read.

use std::future::Future;
use std::time::Instant;

use metrics_cloudwatch_embedded::Collector;

use crate::alert::AlertKind;
use crate::cascade::{CascadeCause, Tier};

pub const NAMESPACE: &str = "QDN/SmsRelay";
/// The value of the `Service` dimension every metric carries.
pub const SERVICE: &str = "qdn-sms-relay";

/// A driver's text forwarded for the first time, by the tier that got it (`Tier`).
pub fn relayed(tier: Tier) {
    metrics::counter!("MessagesRelayed", "Tier" => tier.as_str()).increment(1);
}

/// A text moved on to a later tier after its delivery failed or nobody acknowledged
/// it, by the tier that got it (`Tier`).
pub fn moved_on(tier: Tier) {
    metrics::counter!("TextsMovedOn", "Tier" => tier.as_str()).increment(1);
}

/// A text that went to a later tier than the primary: `Cascades` in all, and
/// `CascadesByReason` by why the first tier was passed over (`Reason`).
pub fn cascaded(cause: Option<CascadeCause>) {
    metrics::counter!("Cascades").increment(1);
    if let Some(cause) = cause {
        metrics::counter!("CascadesByReason", "Reason" => cause.as_str()).increment(1);
    }
}

/// Twilio reported a forwarded text `undelivered` or `failed`.
pub fn delivery_failed() {
    metrics::counter!("DeliveryFailures").increment(1);
}

/// Seconds from forwarding a text to Twilio's `delivered` callback for it.
pub fn delivered_after(secs: i64) {
    metrics::histogram!("DeliveryTime").record(secs.max(0) as f64);
}

/// An ops alert raised (published or not), by kind (`Kind`); an `undeliverable` one
/// also counts in `Undeliverable`.
pub fn alerted(kind: AlertKind) {
    metrics::counter!("Alerts", "Kind" => kind.as_str()).increment(1);
    if kind == AlertKind::Undeliverable {
        metrics::counter!("Undeliverable").increment(1);
    }
}

/// A dispatcher's reply sent through `sms-outbound`.
pub fn outbound_sent() {
    metrics::counter!("OutboundSent").increment(1);
}

/// A dispatcher's reply refused or failed, by the answer's error code (`Error`).
pub fn outbound_failed(code: &'static str) {
    metrics::counter!("OutboundFailed", "Error" => code).increment(1);
}

/// The heartbeat's view after a run: how many dispatchers are available, and whether
/// the primary is (1) or not (0). One value per run, recorded as a histogram rather
/// than a gauge: the recorder writes a gauge on every flush, so a run that failed
/// before it knew would repeat the last run's value; a histogram writes only what this
/// run recorded, and a failed run leaves a gap (the heartbeat-errors alarm's case).
pub fn dispatchers_available(count: usize, primary_available: bool) {
    metrics::histogram!("DispatchersAvailable").record(count as f64);
    metrics::histogram!("PrimaryAvailable").record(if primary_available { 1.0 } else { 0.0 });
}

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
