//! The QDN SMS relay's domain and its adapters.
//!
//! Pure parts (phone numbers, IDs, the dispatcher record, the cascade decision, Twilio
//! signatures, configuration) sit beside narrow ports (`ports`) and their AWS and
//! Twilio adapters. The Lambda binaries in `functions/` only wire these together.

pub mod ack;
pub mod ack_timeout;
pub mod alert;
pub mod api;
pub mod auth;
pub mod cascade;
pub mod claim;
pub mod config;
pub mod delivery;
pub mod dispatcher;
pub mod dynamo;
pub mod heartbeat;
pub mod ids;
pub mod inbound;
#[cfg(feature = "test-util")]
pub mod memory;
pub mod message_items;
pub mod metric;
pub mod outbound;
pub mod phone;
pub mod ports;
pub mod problem;
pub mod secrets;
pub mod signature;
pub mod sns;
pub mod sqs;
pub mod startup;
pub mod stored;
pub mod telemetry;
pub mod trail;
pub mod transport;
pub mod twilio;
pub mod walk;
