//! Raising an ops alert: counted, then published; a failure to publish never stops the
//! message that caused it.

use relay_core::alert::Alert;
use relay_core::ports::AlertPublisher;

use crate::metric;

/// Publishes `alert`; a failure to publish is logged, never fatal to the message.
pub async fn publish_or_log(publisher: &dyn AlertPublisher, alert: &Alert) {
    // Counted whether or not SNS takes it: the alarms on these metrics are the second
    // way an operator hears of it.
    metric::alerted(alert.kind);
    if let Err(e) = publisher.publish(alert).await {
        tracing::error!(alert_type = alert.kind.as_str(), message_sid = ?alert.message_sid, error = %e, "alert could not be published");
    }
}
