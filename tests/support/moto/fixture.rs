//! Per-test AWS resources in the emulator, named uniquely so tests run in parallel
//! against one shared moto without seeing each other's data.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use serde_json::{Value, json};

use crate::dynamo_json::{from_item, to_attribute, to_item};

/// Twilio credentials stored in the fixture's Twilio secret.
pub const TEST_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const TEST_AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
/// Twilio's magic "valid sender" test number.
pub const TEST_FROM_NUMBER: &str = "+15005550006";
/// The HS256 key stored in the fixture's JWT secret.
pub const TEST_JWT_KEY: &str = "test-jwt-signing-key-0123456789abcdef";
/// What the message table's indexes project besides their keys (as in `template.yaml`):
/// everything a listing shows, never the driver's words.
pub const MESSAGE_LISTING_ATTRIBUTES: [&str; 16] = [
    "record_type",
    "state",
    "from_number",
    "to_number",
    "routing_decision",
    "dispatcher_id",
    "forwarded_sid",
    "delivery_status",
    "ack_state",
    "answers",
    "escalated_at",
    "redeliveries",
    "failure",
    "fate",
    "unresolved_day",
    "expires_at",
];

/// `maxReceiveCount` of the ack queue's redrive policy (as in `template.yaml`).
pub const ACK_MAX_RECEIVE_COUNT: u32 = 5;

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
    /// The acknowledgement timers' queue, `<name>-ack`, redriving to `ack_dlq_url`
    /// after [`ACK_MAX_RECEIVE_COUNT`] receives. Functions see it only through
    /// [`AwsFixture::ack_env`]; read it with [`AwsFixture::receive_ack_timers`].
    pub ack_queue_url: String,
    pub ack_queue_arn: String,
    /// The ack queue's dead-letter queue, `<name>-ack-dlq`.
    pub ack_dlq_url: String,
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
            ack_queue_url: String::new(),
            ack_queue_arn: String::new(),
            ack_dlq_url: String::new(),
            twilio_secret_id: String::new(),
            jwt_secret_id: String::new(),
        };
        fixture
            .create_table(&fixture.state_table, "dispatcher_id")
            .await;
        fixture.create_message_table().await;
        fixture
            .enable_ttl(&fixture.message_table, "expires_at")
            .await;
        fixture.create_alert_topic().await;
        fixture.create_ack_queue().await;
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
    /// and the like yourself). Acknowledgements stay off: add [`AwsFixture::ack_env`]
    /// to turn them on.
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

    /// `ACK_QUEUE_URL` (the ack queue) and `ACK_TIMEOUT_SECS`: with these, a function
    /// schedules an acknowledgement timer for every relayed text.
    pub fn ack_env(&self, timeout_secs: u64) -> Vec<(String, String)> {
        vec![
            ("ACK_QUEUE_URL".to_owned(), self.ack_queue_url.clone()),
            ("ACK_TIMEOUT_SECS".to_owned(), timeout_secs.to_string()),
        ]
    }

    /// Receives from the ack queue as Lambda's SQS event source does (up to 10
    /// messages, every system attribute, visibility timeout 30 s), polling every 50 ms
    /// until at least one message arrives or `wait` passes; what arrived (empty if
    /// nothing did). A delayed timer arrives only once its delay is over.
    ///
    /// Nothing is deleted: the messages stay in flight, and come back after the
    /// visibility timeout, unless the test deletes them with
    /// [`AwsFixture::delete_ack_timers`] (as Lambda does when `ack-timeout` succeeds and
    /// does not name them in `batchItemFailures`). Turn them into the event with
    /// [`crate::sqs_events::sqs_event_from_messages`] and `ack_queue_arn`.
    pub async fn receive_ack_timers(&self, wait: Duration) -> Vec<Message> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.ack_queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(30)
                .wait_time_seconds(0) // a long poll would hold moto's global lock
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive ack timers");
            let messages = out.messages.unwrap_or_default();
            if !messages.is_empty() || tokio::time::Instant::now() >= until {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Deletes received timers by their receipt handles: what Lambda does with the
    /// records of a batch that `ack-timeout` did not report as failures.
    pub async fn delete_ack_timers(&self, messages: &[Message]) {
        for message in messages {
            let handle = message.receipt_handle().expect("a received message");
            self.sqs
                .delete_message()
                .queue_url(&self.ack_queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .expect("delete ack timer");
        }
    }

    /// The ack queue's `(ApproximateNumberOfMessages, ...NotVisible, ...Delayed)`:
    /// timers ready to receive, received but not deleted (in flight), and still in their
    /// delay. A timer just scheduled with `ACK_TIMEOUT_SECS` shows as `(0, 0, 1)`.
    pub async fn ack_queue_depth(&self) -> (u64, u64, u64) {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.ack_queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .expect("ack queue attributes");
        let attributes = out.attributes.unwrap_or_default();
        let count = |name: QueueAttributeName| -> u64 {
            let value = attributes
                .get(&name)
                .unwrap_or_else(|| panic!("no {name} in {attributes:?}"));
            value
                .parse()
                .unwrap_or_else(|e| panic!("{name} = {value:?}: {e}"))
        };
        (
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        )
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

    /// Writes the rota item (`#rota`) with `text`, as `qdn rota set` or a person in
    /// the console would.
    pub async fn put_rota(&self, text: &str) {
        self.put_dispatcher(serde_json::json!({"dispatcher_id": "#rota", "rota": text}))
            .await;
    }

    /// Writes `item` with `raw` attributes set as given: the DynamoDB types a person
    /// can type in the console (`1e12` as a Number, `"true"` as a String, a list).
    pub async fn put_dispatcher_with(
        &self,
        item: Value,
        raw: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) {
        let mut item = to_item(&item);
        for (name, value) in raw {
            item.insert(name.to_string(), value.clone());
        }
        self.dynamodb
            .put_item()
            .table_name(&self.state_table)
            .set_item(Some(item))
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

    /// The message-log item keyed `sid`; panics (failing the test) when there is none.
    pub async fn message_log_item(&self, sid: &str) -> Value {
        self.message_log_items()
            .await
            .into_iter()
            .find(|item| item["message_sid"] == sid)
            .unwrap_or_else(|| panic!("no message-log item {sid}"))
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

    /// The message table as `template.yaml` declares it: keyed by `message_sid`,
    /// with the time-ordered indexes `by_day` and (sparse) `unresolved_by_day`.
    async fn create_message_table(&self) {
        let attribute = |name: &str, kind: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(kind)
                .build()
                .unwrap()
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .unwrap()
        };
        let index = |name: &str, day: &str| {
            let projection = Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(
                    MESSAGE_LISTING_ATTRIBUTES
                        .iter()
                        .map(|a| a.to_string())
                        .collect(),
                ))
                .build();
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(day, KeyType::Hash))
                .key_schema(key("received_at", KeyType::Range))
                .projection(projection)
                .build()
                .unwrap()
        };
        self.dynamodb
            .create_table()
            .table_name(&self.message_table)
            .attribute_definitions(attribute("message_sid", ScalarAttributeType::S))
            .attribute_definitions(attribute("msg_day", ScalarAttributeType::S))
            .attribute_definitions(attribute("unresolved_day", ScalarAttributeType::S))
            .attribute_definitions(attribute("received_at", ScalarAttributeType::N))
            .key_schema(key("message_sid", KeyType::Hash))
            .global_secondary_indexes(index("by_day", "msg_day"))
            .global_secondary_indexes(index("unresolved_by_day", "unresolved_day"))
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create table {}: {e:?}", self.message_table));
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
        let queue_arn = self.queue_arn(&self.alert_queue_url).await;

        self.sns
            .subscribe()
            .topic_arn(&self.topic_arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .expect("subscribe queue to topic");
    }

    /// The ack queue `<name>-ack` and its dead-letter queue `<name>-ack-dlq`, as
    /// `template.yaml` declares them (redrive after [`ACK_MAX_RECEIVE_COUNT`] receives).
    async fn create_ack_queue(&mut self) {
        self.ack_dlq_url = self
            .create_queue(&format!("{}-ack-dlq", self.name), None)
            .await;
        let dlq_arn = self.queue_arn(&self.ack_dlq_url).await;
        let redrive = json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": ACK_MAX_RECEIVE_COUNT,
        });
        self.ack_queue_url = self
            .create_queue(&format!("{}-ack", self.name), Some(redrive.to_string()))
            .await;
        self.ack_queue_arn = self.queue_arn(&self.ack_queue_url).await;
    }

    async fn create_queue(&self, name: &str, redrive_policy: Option<String>) -> String {
        let mut request = self.sqs.create_queue().queue_name(name);
        if let Some(policy) = redrive_policy {
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
        }
        let out = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("create queue {name}: {e:?}"));
        out.queue_url().expect("queue URL").to_owned()
    }

    async fn queue_arn(&self, queue_url: &str) -> String {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes");
        attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .expect("queue ARN")
            .clone()
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
