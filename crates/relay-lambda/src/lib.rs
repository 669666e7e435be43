//! The Lambda glue of the four functions: configuration and clients built once per
//! execution environment, API Gateway requests and other events turned into use-case
//! calls and back (the one place errors become statuses), init timed by phase, JSON
//! logs and EMF metrics per invocation.

pub mod ack_timeout;
pub mod api;
pub mod clients;
pub mod emf;
pub mod heartbeat;
pub mod inbound;
pub mod outbound;
pub mod startup;
pub mod telemetry;
pub mod webhook;
