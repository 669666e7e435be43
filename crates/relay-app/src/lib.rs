//! The relay's use cases, over the domain's ports: relaying a driver's text down the
//! cascade, status callbacks, moving a text on, acknowledgements, dispatchers' replies,
//! the heartbeat and the acknowledgement timer. In-memory adapters for fast tests are
//! behind the `test-util` feature, never in a function binary.

pub mod ack_timeout;
pub mod alerting;
pub mod answer;
pub mod clock;
pub mod config;
pub mod handover;
pub mod heartbeat;
#[cfg(feature = "test-util")]
pub mod memory;
pub mod metric;
pub mod outbound;
pub mod relay;
pub mod secret_cache;
