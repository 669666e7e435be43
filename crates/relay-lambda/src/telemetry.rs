//! JSON logs, one object per line with the event's fields at the top level, so
//! CloudWatch Logs Insights can query `routing_decision`, `message_sid` and friends.
//! Every line written during an invocation carries the Lambda request ID: the
//! runtime's `Lambda runtime invoke` span (with its `requestId`) heads the line's
//! `spans` list.

use tracing_subscriber::filter::LevelFilter;

/// Installs the subscriber. `RUST_LOG` or `AWS_LAMBDA_LOG_LEVEL` sets the level
/// (`error`, `warn`, `info`, `debug`, `trace`; default `info`): one level for every
/// module, which is what Lambda's log-level setting means. Message bodies and full
/// phone numbers are never logged at info.
pub fn init() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| std::env::var("AWS_LAMBDA_LOG_LEVEL").ok());
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .with_max_level(log_level(level.as_deref()))
        .with_writer(std::io::stdout)
        .try_init();
}

/// The level a `RUST_LOG` / `AWS_LAMBDA_LOG_LEVEL` value names (any case); `info` for
/// anything else, so a typo never silences the logs.
fn log_level(raw: Option<&str>) -> LevelFilter {
    raw.map(str::trim)
        .and_then(|raw| raw.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn levels_are_read_in_any_case_and_default_to_info() {
        assert_eq!(log_level(Some("DEBUG")), LevelFilter::DEBUG);
        assert_eq!(log_level(Some("warn")), LevelFilter::WARN);
        assert_eq!(log_level(Some(" error ")), LevelFilter::ERROR);
        assert_eq!(log_level(None), LevelFilter::INFO);
        assert_eq!(log_level(Some("verbose")), LevelFilter::INFO);
    }

    proptest! {
        #[test]
        fn any_value_gives_a_level_and_never_panics(raw in ".{0,20}") {
            let _ = log_level(Some(&raw));
        }
    }
}
