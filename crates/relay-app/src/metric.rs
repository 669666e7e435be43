//! CloudWatch metrics, written to stdout in the Embedded Metric Format (EMF): Lambda's
//! log agent turns each such line into metric data, so no `PutMetricData` call (and no
//! IAM permission, and no latency) is added to an invocation.
//!
//! This is the recording side, the `metrics` facade; the Lambda glue
//! (`relay_lambda::emf`) installs the recorder and writes the EMF lines once per
//! invocation, tagged with the Lambda request ID. Without an installed recorder (unit
//! tests, the CLI) every call here is a no-op.
//!
//! Every metric is in [`NAMESPACE`] with the dimension `Service` = [`SERVICE`], plus
//! the one label named below where there is one. The names are the ones
//! `template.yaml`'s dashboard and alarms read.

use relay_core::alert::AlertKind;
use relay_core::cascade::{CascadeCause, Tier};

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

/// A dispatcher's answer by text sent to the driver.
pub fn answer_sent() {
    metrics::counter!("AnswersSent").increment(1);
}

/// A dispatcher's answer by text not sent, by why (`Reason`: `ambiguous`,
/// `unknown_reference`, `twilio_refused`, …; [`AnswerOutcome::name`]).
///
/// [`AnswerOutcome::name`]: relay_core::conversation::AnswerOutcome::name
pub fn answer_refused(reason: &'static str) {
    metrics::counter!("AnswersRefused", "Reason" => reason).increment(1);
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
