//! JSON logs, one object per line with the event's fields at the top level, so
//! CloudWatch Logs Insights can query `routing_decision`, `message_sid` and friends.
//! Every line written during an invocation carries the Lambda request ID: the
//! runtime's `Lambda runtime invoke` span (with its `requestId`) heads the line's
//! `spans` list.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber. `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL` sets the level
/// (default `info`). Message bodies and full phone numbers are never logged at info.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok())
        .map(|level| level.to_ascii_lowercase())
        .and_then(|level| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}
