//! The events Lambda's SQS event source hands a function (`ack-timeout`): a batch of
//! records, shaped as AWS sends them (`sam local generate-event sqs receive-message`,
//! and the sample event of "Using Lambda with Amazon SQS"):
//!
//! ```json
//! {"Records": [{"messageId": "059f36b4-...", "receiptHandle": "AQEB...", "body": "...",
//!   "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1545082649183",
//!     "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1545082649185"},
//!   "messageAttributes": {}, "md5OfBody": "...", "eventSource": "aws:sqs",
//!   "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:my-queue", "awsRegion": "us-east-1"}]}
//! ```
//!
//! [`sqs_event`] builds one from [`SqsRecordSpec`]s; [`sqs_event_from_messages`] from
//! the messages a test received from a queue in moto, as the event source would.

use aws_sdk_sqs::types::{Message, MessageAttributeValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

/// The region every event names (the fixture's).
pub const REGION: &str = "us-east-1";
/// The `SenderId` of [`SqsRecordSpec::new`]: the one in AWS's sample event.
pub const SAMPLE_SENDER_ID: &str = "AIDAIENQZJOLO23YVJ4VO";

/// The four system attributes every record of a standard queue carries.
const RECORD_ATTRIBUTES: [&str; 4] = [
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
];

/// One record of an SQS event. [`SqsRecordSpec::new`] fills in a fresh message ID and
/// receipt handle, a first receive now, sent now; change any field before building.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsRecordSpec {
    /// `eventSourceARN`: the queue the record came from.
    pub queue_arn: String,
    pub body: String,
    /// `messageId`: the UUID SQS gave the message, and what `batchItemFailures` names.
    pub message_id: String,
    pub receipt_handle: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery, more on a redelivery.
    pub receive_count: u32,
    /// `SentTimestamp`, epoch milliseconds.
    pub sent_timestamp_ms: u64,
    /// `ApproximateFirstReceiveTimestamp`, epoch milliseconds.
    pub first_receive_timestamp_ms: u64,
    pub sender_id: String,
}

impl SqsRecordSpec {
    /// A first delivery of `body` from `queue_arn`, sent and received now.
    pub fn new(queue_arn: &str, body: impl Into<String>) -> SqsRecordSpec {
        let now = now_ms();
        SqsRecordSpec {
            queue_arn: queue_arn.to_owned(),
            body: body.into(),
            message_id: uuid(),
            receipt_handle: receipt_handle(),
            receive_count: 1,
            sent_timestamp_ms: now,
            first_receive_timestamp_ms: now,
            sender_id: SAMPLE_SENDER_ID.to_owned(),
        }
    }

    pub fn message_id(mut self, message_id: impl Into<String>) -> SqsRecordSpec {
        self.message_id = message_id.into();
        self
    }

    pub fn receive_count(mut self, receive_count: u32) -> SqsRecordSpec {
        self.receive_count = receive_count;
        self
    }

    /// The message was sent `delay_ms` before it was first received (`SentTimestamp`
    /// moves back; a timer sent with `DelaySeconds = 30` is `sent_before_ms(30_000)`).
    pub fn sent_before_ms(mut self, delay_ms: u64) -> SqsRecordSpec {
        self.sent_timestamp_ms = self.first_receive_timestamp_ms.saturating_sub(delay_ms);
        self
    }
}

/// The Lambda SQS event holding `records`, in order, each with `md5OfBody` computed
/// and no message attributes.
pub fn sqs_event(records: &[SqsRecordSpec]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            record(
                &r.queue_arn,
                &r.message_id,
                &r.receipt_handle,
                &r.body,
                json!({
                    "ApproximateReceiveCount": r.receive_count.to_string(),
                    "SentTimestamp": r.sent_timestamp_ms.to_string(),
                    "SenderId": r.sender_id,
                    "ApproximateFirstReceiveTimestamp": r.first_receive_timestamp_ms.to_string(),
                }),
                json!({}),
                None,
            )
        })
        .collect();
    json!({ "Records": records })
}

/// The Lambda SQS event the event source makes of `messages` received from the queue
/// `queue_arn`: one record per message, in order, with its `messageId`,
/// `receiptHandle` (so that deleting by it works), `body`, `md5OfBody` (SQS's, or
/// computed if absent), system attributes (as strings) and message attributes.
///
/// Panics unless each message carries the four system attributes of a record: receive
/// them with `MessageSystemAttributeNames=All`, as [`crate::AwsFixture::receive_ack_timers`]
/// does.
pub fn sqs_event_from_messages(queue_arn: &str, messages: &[Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let body = m.body().unwrap_or_default();
            let system = m.attributes().cloned().unwrap_or_default();
            let attributes: Map<String, Value> = system
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
                .collect();
            for name in RECORD_ATTRIBUTES {
                assert!(
                    attributes.contains_key(name),
                    "message {:?} has no {name}: receive with MessageSystemAttributeNames=All",
                    m.message_id()
                );
            }
            let message_attributes: Map<String, Value> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.clone(), message_attribute(value)))
                .collect();
            let mut record = record(
                queue_arn,
                m.message_id().expect("a received message has an ID"),
                m.receipt_handle()
                    .expect("a received message has a receipt handle"),
                body,
                Value::Object(attributes),
                Value::Object(message_attributes),
                m.md5_of_message_attributes(),
            );
            if let Some(md5) = m.md5_of_body() {
                record["md5OfBody"] = json!(md5);
            }
            record
        })
        .collect();
    json!({ "Records": records })
}

/// The MD5 of `body` as SQS reports it (`MD5OfBody`, lowercase hex).
pub fn md5_hex(body: &str) -> String {
    Md5::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn record(
    queue_arn: &str,
    message_id: &str,
    receipt_handle: &str,
    body: &str,
    attributes: Value,
    message_attributes: Value,
    md5_of_message_attributes: Option<&str>,
) -> Value {
    let mut record = json!({
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": md5_hex(body),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    });
    if let Some(md5) = md5_of_message_attributes {
        record["md5OfMessageAttributes"] = json!(md5);
    }
    record
}

/// A message attribute as the event carries it: camelCase, lists always present.
fn message_attribute(value: &MessageAttributeValue) -> Value {
    let mut attribute = json!({
        "stringListValues": value.string_list_values(),
        "binaryListValues": value
            .binary_list_values()
            .iter()
            .map(|b| BASE64.encode(b.as_ref()))
            .collect::<Vec<_>>(),
        "dataType": value.data_type(),
    });
    if let Some(s) = value.string_value() {
        attribute["stringValue"] = json!(s);
    }
    if let Some(b) = value.binary_value() {
        attribute["binaryValue"] = json!(BASE64.encode(b.as_ref()));
    }
    attribute
}

fn now_ms() -> u64 {
    u64::try_from(jiff::Timestamp::now().as_millisecond()).expect("after 1970")
}

/// A random version-4 UUID, as SQS's message IDs are.
fn uuid() -> String {
    let r: u128 = rand::random();
    let r = (r & !(0xf_u128 << 76)) | (0x4 << 76); // version 4
    let r = (r & !(0x3_u128 << 62)) | (0x2 << 62); // RFC 4122 variant
    let h = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// An opaque receipt handle in SQS's style (`AQEB` then base64).
fn receipt_handle() -> String {
    let bytes: [u8; 96] = std::array::from_fn(|_| rand::random());
    format!("AQEB{}", BASE64.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsEvent;
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    use aws_sdk_sqs::types::builders::MessageBuilder;

    const ARN: &str = "arn:aws:sqs:us-east-1:123456789012:qdn-ack";

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        v.sort();
        v
    }

    const RECORD_KEYS: [&str; 9] = [
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    ];

    /// RFC 1321's test suite, and the body of AWS's sample event.
    #[test]
    fn md5_vectors() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
        assert_eq!(md5_hex("test"), "098f6bcd4621d373cade4e832627b4f6");
    }

    #[test]
    fn sqs_event_has_the_aws_shape_and_a_record_per_spec() {
        let first = SqsRecordSpec::new(ARN, "test")
            .message_id("059f36b4-87a3-44ab-83d2-661975830a7d")
            .sent_before_ms(30_000);
        let second = SqsRecordSpec::new(ARN, r#"{"ack_ref":"K7Q"}"#).receive_count(3);
        let event = sqs_event(&[first.clone(), second.clone()]);

        assert_eq!(keys(&event), ["Records"]);
        let records = event["Records"].as_array().unwrap();
        assert_eq!(records.len(), 2);
        for (record, spec) in records.iter().zip([&first, &second]) {
            assert_eq!(keys(record), sorted(&RECORD_KEYS));
            assert_eq!(keys(&record["attributes"]), sorted(&RECORD_ATTRIBUTES));
            assert_eq!(record["messageId"], spec.message_id.as_str());
            assert_eq!(record["receiptHandle"], spec.receipt_handle.as_str());
            assert_eq!(record["body"], spec.body.as_str());
            assert_eq!(record["md5OfBody"], md5_hex(&spec.body).as_str());
            assert_eq!(record["messageAttributes"], json!({}));
            assert_eq!(record["eventSource"], "aws:sqs");
            assert_eq!(record["eventSourceARN"], ARN);
            assert_eq!(record["awsRegion"], "us-east-1");
            for name in RECORD_ATTRIBUTES {
                assert!(record["attributes"][name].is_string(), "{name}: {record}");
            }
        }
        assert_eq!(records[0]["md5OfBody"], "098f6bcd4621d373cade4e832627b4f6");
        assert_eq!(records[0]["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(records[1]["attributes"]["ApproximateReceiveCount"], "3");
        let sent: u64 = records[0]["attributes"]["SentTimestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let first_receive: u64 = records[0]["attributes"]["ApproximateFirstReceiveTimestamp"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(first_receive - sent, 30_000);

        // Fresh IDs: a UUID v4 each, and distinct receipt handles.
        assert_ne!(second.message_id, SqsRecordSpec::new(ARN, "").message_id);
        let id = &second.message_id;
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!("89ab".contains(&id[19..20]), "{id}");
        assert!(second.receipt_handle.starts_with("AQEB"));
        assert_ne!(first.receipt_handle, second.receipt_handle);
    }

    #[test]
    fn sqs_event_is_what_lambda_events_deserializes() {
        let spec = SqsRecordSpec::new(ARN, "hello").receive_count(2);
        let event: SqsEvent =
            serde_json::from_value(sqs_event(std::slice::from_ref(&spec))).unwrap();
        let record = &event.records[0];
        assert_eq!(record.message_id.as_deref(), Some(spec.message_id.as_str()));
        assert_eq!(record.body.as_deref(), Some("hello"));
        assert_eq!(
            record.md5_of_body.as_deref(),
            Some(md5_hex("hello").as_str())
        );
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(record.event_source_arn.as_deref(), Some(ARN));
        assert_eq!(record.aws_region.as_deref(), Some("us-east-1"));
        assert_eq!(record.attributes["ApproximateReceiveCount"], "2");
        assert!(record.message_attributes.is_empty());
    }

    /// A message as a receive with every system attribute answers it.
    fn received(id: &str, body: &str) -> MessageBuilder {
        let mut message = Message::builder()
            .message_id(id)
            .receipt_handle(format!("handle-{id}"))
            .body(body);
        for (name, value) in [
            (MessageSystemAttributeName::ApproximateReceiveCount, "2"),
            (MessageSystemAttributeName::SentTimestamp, "1795478400123"),
            (
                MessageSystemAttributeName::SenderId,
                "AIDAIENQZJOLO23YVJ4VO",
            ),
            (
                MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
                "1795478430145",
            ),
        ] {
            message = message.attributes(name, value);
        }
        message
    }

    #[test]
    fn sqs_event_from_messages_maps_each_message_to_a_record() {
        let third = received("id-3", "third")
            .message_attributes(
                "kind",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("timer")
                    .build()
                    .unwrap(),
            )
            .message_attributes(
                "raw",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(b"\x00\x01".to_vec()))
                    .build()
                    .unwrap(),
            )
            .md5_of_message_attributes("0123456789abcdef0123456789abcdef")
            .build();
        let messages = [
            received("id-1", "first").md5_of_body("moto's md5").build(),
            received("id-2", "").build(),
            third,
        ];
        let event = sqs_event_from_messages(ARN, &messages);
        let records = event["Records"].as_array().unwrap();
        assert_eq!(records.len(), 3);

        let first = &records[0];
        assert_eq!(keys(first), sorted(&RECORD_KEYS));
        assert_eq!(first["messageId"], "id-1");
        assert_eq!(first["receiptHandle"], "handle-id-1");
        assert_eq!(first["body"], "first");
        assert_eq!(first["md5OfBody"], "moto's md5", "SQS's MD5 is passed on");
        assert_eq!(
            first["attributes"],
            json!({
                "ApproximateReceiveCount": "2",
                "SentTimestamp": "1795478400123",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1795478430145",
            })
        );
        assert_eq!(first["eventSource"], "aws:sqs");
        assert_eq!(first["eventSourceARN"], ARN);
        assert_eq!(first["awsRegion"], "us-east-1");
        assert_eq!(first["messageAttributes"], json!({}));

        assert_eq!(records[1]["body"], "");
        assert_eq!(
            records[1]["md5OfBody"], "d41d8cd98f00b204e9800998ecf8427e",
            "computed when SQS gave none"
        );

        let third = &records[2];
        assert_eq!(
            third["md5OfMessageAttributes"],
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            third["messageAttributes"]["kind"],
            json!({"stringValue": "timer", "stringListValues": [], "binaryListValues": [], "dataType": "String"})
        );
        assert_eq!(third["messageAttributes"]["raw"]["binaryValue"], "AAE=");

        let parsed: SqsEvent = serde_json::from_value(event.clone()).unwrap();
        assert_eq!(parsed.records.len(), 3);
        assert_eq!(
            parsed.records[2].message_attributes["kind"]
                .data_type
                .as_deref(),
            Some("String")
        );
    }

    #[test]
    #[should_panic(expected = "MessageSystemAttributeNames=All")]
    fn sqs_event_from_messages_refuses_messages_without_attributes() {
        let bare = Message::builder()
            .message_id("x")
            .receipt_handle("h")
            .body("b")
            .build();
        sqs_event_from_messages(ARN, &[bare]);
    }

    fn event_file(name: &str) -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The hand-written sample events keep the builder's shape, carry correct MD5s and
    /// deserialize into `ack-timeout`'s event type; the timers are the documented JSON.
    #[test]
    fn sample_event_files_match_the_builder() {
        let built = sqs_event(&[SqsRecordSpec::new(ARN, "x")]);
        let built = &built["Records"][0];
        for (file, records) in [
            ("ack-timer-sqs.json", 1),
            ("ack-timer-sqs-malformed.json", 2),
        ] {
            let event = event_file(file);
            assert_eq!(keys(&event), ["Records"], "{file}");
            let list = event["Records"].as_array().unwrap();
            assert_eq!(list.len(), records, "{file}");
            for record in list {
                assert_eq!(keys(record), keys(built), "{file}");
                assert_eq!(
                    keys(&record["attributes"]),
                    keys(&built["attributes"]),
                    "{file}"
                );
                let body = record["body"].as_str().unwrap();
                assert_eq!(record["md5OfBody"], md5_hex(body).as_str(), "{file}");
                assert_eq!(record["eventSource"], "aws:sqs");
                assert_eq!(record["awsRegion"], "us-east-1");
            }
            let parsed: SqsEvent = serde_json::from_value(event.clone()).unwrap();
            assert_eq!(parsed.records.len(), records);
        }

        let timer = |record: &Value| -> Option<Value> {
            serde_json::from_str(record["body"].as_str().unwrap()).ok()
        };
        let sid = |v: &Value| {
            let s = v.as_str().unwrap();
            s.len() == 34 && s.starts_with("SM") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
        };
        let good = event_file("ack-timer-sqs.json");
        let body = timer(&good["Records"][0]).expect("the timer body is JSON");
        assert_eq!(
            keys(&body),
            sorted(&["inbound_sid", "forwarded_sid", "ack_ref", "sent_at"])
        );
        assert!(
            sid(&body["inbound_sid"]) && sid(&body["forwarded_sid"]),
            "{body}"
        );
        assert_eq!(body["ack_ref"], "K7Q");
        assert!(body["sent_at"].is_u64());

        let malformed = event_file("ack-timer-sqs-malformed.json");
        let records = malformed["Records"].as_array().unwrap();
        assert_eq!(
            timer(&records[0]),
            Some(body),
            "the first record is the good timer"
        );
        assert_eq!(
            timer(&records[1]),
            None,
            "the second record's body is not JSON"
        );
        assert_ne!(records[0]["messageId"], records[1]["messageId"]);
    }
}
