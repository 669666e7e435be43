//! The adapters: the domain's ports over DynamoDB, SNS, SQS and Secrets Manager (the
//! AWS SDK) and Twilio's Messages API (reqwest), all on one TLS configuration
//! ([`transport`]). Adapters never call each other.

pub mod dynamo;
pub mod secrets_manager;
pub mod sns;
pub mod sqs;
pub mod transport;
pub mod twilio;
