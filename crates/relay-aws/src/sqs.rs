//! SQS: acknowledgement timers, as messages delayed by the acknowledgement window.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use tracing::instrument;

use relay_core::ack::AckTimer;
use relay_core::ports::{TimerError, TimerQueue};

/// SQS allows a message to wait at most 15 minutes.
pub const MAX_DELAY_SECS: u64 = 900;

#[derive(Debug, Clone)]
pub struct SqsTimerQueue {
    client: Client,
    queue_url: String,
}

impl SqsTimerQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsTimerQueue {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl TimerQueue for SqsTimerQueue {
    #[instrument(level = "debug", skip_all, fields(message_sid = %timer.inbound_sid, ack_ref = %timer.ack_ref))]
    async fn schedule(&self, timer: &AckTimer, delay_secs: u64) -> Result<(), TimerError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(timer.to_json())
            .delay_seconds(delay_secs.min(MAX_DELAY_SECS) as i32)
            .send()
            .await
            .map_err(|e| TimerError::Unavailable {
                queue: self.queue_url.clone(),
                detail: DisplayErrorContext(e).to_string(),
            })?;
        Ok(())
    }
}
