//! Per-test AWS resources in the emulator, named uniquely so tests run in parallel
//! against one shared moto without seeing each other's data.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};

use crate::dynamo_json::{from_item, to_attribute, to_item};

/// Twilio credentials stored in the fixture's Twilio secret.
pub const TEST_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const TEST_AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
/// Twilio's magic "valid sender" test number.
pub const TEST_FROM_NUMBER: &str = "+15005550006";
/// The HS256 key stored in the fixture's JWT secret.
pub const TEST_JWT_KEY: &str = "test-jwt-signing-key-0123456789abcdef";

/// One SNS alert as a subscriber receives it (the SNS envelope, not raw delivery).
#[derive(Debug, Clone)]
pub struct Alert {
    pub subject: Option<String>,
    /// The SNS `Message`, parsed as JSON (a JSON string if it was not JSON).
    pub message: Value,
    /// SNS `MessageAttributes`: name to `Value`.
    pub attributes: HashMap<String, String>,
}

/// A test's own tables, topic, alert queue and secrets, plus clients for them.
pub struct AwsFixture {
    pub endpoint: String,
    pub config: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The unique prefix of every resource name (`<prefix>-<random>`).
    pub name: String,
    pub state_table: String,
    pub message_table: String,
    pub topic_arn: String,
    /// An SQS queue subscribed to `topic_arn`; read it with [`AwsFixture::alerts`].
    pub alert_queue_url: String,
    /// Holds `{"account_sid", "auth_token", "from_number"}` from the `TEST_*` constants.
    pub twilio_secret_id: String,
    /// Holds [`TEST_JWT_KEY`].
    pub jwt_secret_id: String,
}

impl AwsFixture {
    /// Creates a fresh set of resources whose names start with `prefix`.
    pub async fn create(prefix: &str) -> AwsFixture {
        let endpoint = super::endpoint().await;
        let config = super::sdk_config(&endpoint).await;
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        let mut fixture = AwsFixture {
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sns: aws_sdk_sns::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
            state_table: format!("{name}-state"),
            message_table: format!("{name}-messages"),
            endpoint,
            config,
            name,
            topic_arn: String::new(),
            alert_queue_url: String::new(),
            twilio_secret_id: String::new(),
            jwt_secret_id: String::new(),
        };
        fixture
            .create_table(&fixture.state_table, "dispatcher_id")
            .await;
        fixture
            .create_table(&fixture.message_table, "message_sid")
            .await;
        fixture
            .enable_ttl(&fixture.message_table, "expires_at")
            .await;
        fixture.create_alert_topic().await;
        let twilio = json!({
            "account_sid": TEST_ACCOUNT_SID,
            "auth_token": TEST_AUTH_TOKEN,
            "from_number": TEST_FROM_NUMBER,
        });
        fixture.twilio_secret_id = fixture.put_secret("twilio", &twilio.to_string()).await;
        fixture.jwt_secret_id = fixture.put_secret("jwt", TEST_JWT_KEY).await;
        fixture
    }

    /// The environment a function needs to use these resources (add `TWILIO_API_BASE`
    /// and the like yourself).
    pub fn function_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", &self.endpoint),
            ("STATE_TABLE", &self.state_table),
            ("MESSAGE_TABLE", &self.message_table),
            ("ALERT_TOPIC_ARN", &self.topic_arn),
            ("TWILIO_SECRET_ID", &self.twilio_secret_id),
            ("JWT_SECRET_ID", &self.jwt_secret_id),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }

    /// Creates secret `<name>-<name_suffix>` and returns its ARN.
    pub async fn put_secret(&self, name_suffix: &str, secret_string: &str) -> String {
        let out = self
            .secrets
            .create_secret()
            .name(format!("{}-{name_suffix}", self.name))
            .secret_string(secret_string)
            .send()
            .await
            .expect("create secret");
        out.arn().expect("secret ARN").to_owned()
    }

    /// Adds a new current version to a secret; the old one becomes `AWSPREVIOUS`.
    pub async fn rotate_secret(&self, secret_id: &str, secret_string: &str) {
        self.secrets
            .put_secret_value()
            .secret_id(secret_id)
            .secret_string(secret_string)
            .send()
            .await
            .expect("put secret value");
    }

    /// Writes a dispatcher item given as a flat JSON object.
    pub async fn put_dispatcher(&self, item: Value) {
        self.dynamodb
            .put_item()
            .table_name(&self.state_table)
            .set_item(Some(to_item(&item)))
            .send()
            .await
            .expect("put dispatcher");
    }

    /// Reads a dispatcher item (consistently) as a flat JSON object.
    pub async fn get_dispatcher(&self, id: &str) -> Option<Value> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.state_table)
            .key("dispatcher_id", to_attribute(&json!(id)))
            .consistent_read(true)
            .send()
            .await
            .expect("get dispatcher");
        out.item().map(from_item)
    }

    /// Every item of the message table, as flat JSON objects.
    pub async fn message_log_items(&self) -> Vec<Value> {
        self.scan(&self.message_table).await
    }

    /// Every item of a table, as flat JSON objects.
    pub async fn scan(&self, table: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .dynamodb
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(out.items().iter().map(from_item));
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
    }

    /// Drains the alert queue: every alert published since the last call, oldest
    /// first. moto delivers SNS to SQS inside `Publish`, so this is complete once the
    /// publisher has answered; two empty receives in a row end the drain.
    pub async fn alerts(&self) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let mut empty_in_a_row = 0;
        while empty_in_a_row < 2 {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.alert_queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0) // a long poll would hold moto's global lock
                .send()
                .await
                .expect("receive alerts");
            let messages = out.messages();
            if messages.is_empty() {
                empty_in_a_row += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            empty_in_a_row = 0;
            for message in messages {
                alerts.push(parse_alert(message.body().unwrap_or_default()));
                let handle = message.receipt_handle().expect("receipt handle");
                self.sqs
                    .delete_message()
                    .queue_url(&self.alert_queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete alert");
            }
        }
        alerts
    }

    async fn create_table(&self, table: &str, key: &str) {
        self.dynamodb
            .create_table()
            .table_name(table)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(key)
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create table {table}: {e:?}"));
    }

    async fn enable_ttl(&self, table: &str, attribute: &str) {
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(attribute)
            .build()
            .unwrap();
        self.dynamodb
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(spec)
            .send()
            .await
            .expect("enable TTL");
    }

    /// The topic, and a queue subscribed to it with the SNS envelope (not raw delivery)
    /// so that `Subject` and `MessageAttributes` reach the test.
    async fn create_alert_topic(&mut self) {
        let topic = self
            .sns
            .create_topic()
            .name(format!("{}-alerts", self.name))
            .send()
            .await
            .expect("create topic");
        self.topic_arn = topic.topic_arn().expect("topic ARN").to_owned();

        let queue = self
            .sqs
            .create_queue()
            .queue_name(format!("{}-alerts", self.name))
            .send()
            .await
            .expect("create queue");
        self.alert_queue_url = queue.queue_url().expect("queue URL").to_owned();
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.alert_queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .expect("queue ARN")
            .clone();

        self.sns
            .subscribe()
            .topic_arn(&self.topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe queue to topic");
    }
}

fn parse_alert(body: &str) -> Alert {
    let envelope: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("alert is not an SNS envelope ({e}): {body}"));
    let raw_message = envelope["Message"].as_str().unwrap_or_default();
    let message =
        serde_json::from_str(raw_message).unwrap_or_else(|_| Value::String(raw_message.to_owned()));
    let attributes = envelope["MessageAttributes"]
        .as_object()
        .map(|attrs| {
            attrs
                .iter()
                .map(|(name, a)| {
                    let value = a["Value"].as_str().unwrap_or_default().to_owned();
                    (name.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    Alert {
        subject: envelope["Subject"].as_str().map(str::to_owned),
        message,
        attributes,
    }
}
