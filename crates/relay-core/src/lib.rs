//! The QDN SMS relay's domain: the routing and signature core every function shares.
//!
//! Phone numbers and IDs that validate on parse, the dispatcher item and its decoder,
//! the cascade decision and the walk down its tiers, claims, the references
//! every relayed text carries, replies by text, acknowledgements, delivery statuses, alerts, configuration problems, Twilio's webhook
//! signature, dispatchers' tokens, and the ports (traits) the use cases call. Nothing
//! here knows AWS, HTTP or an async runtime: the compiler keeps it so (see
//! `Cargo.toml`).

pub mod ack;
pub mod alert;
pub mod auth;
pub mod cascade;
pub mod claim;
pub mod conversation;
pub mod delivery;
pub mod dispatcher;
pub mod fate;
pub mod ids;
pub mod message_items;
pub mod phone;
pub mod ports;
pub mod problem;
pub mod reference;
pub mod reply;
pub mod roster;
pub mod rota;
pub mod secret;
pub mod signature;
pub mod sms;
pub mod stored;
pub mod walk;
