//! SNS adapter for ops alerts.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use tracing::instrument;

use relay_core::alert::Alert;
use relay_core::ports::{AlertError, AlertPublisher};

#[derive(Debug, Clone)]
pub struct SnsAlertPublisher {
    client: Client,
    topic_arn: String,
}

impl SnsAlertPublisher {
    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        SnsAlertPublisher {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl AlertPublisher for SnsAlertPublisher {
    #[instrument(level = "debug", skip_all, fields(alert_type = alert.kind.as_str()))]
    async fn publish(&self, alert: &Alert) -> Result<(), AlertError> {
        let type_attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(alert.kind.as_str())
            .build()
            .map_err(|e| AlertError {
                kind: alert.kind,
                detail: e.to_string(),
            })?;
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(alert.subject())
            .message(alert.message_json())
            .message_attributes("type", type_attribute)
            .send()
            .await
            .map_err(|e| AlertError {
                kind: alert.kind,
                detail: DisplayErrorContext(e).to_string(),
            })?;
        Ok(())
    }
}
