//! Support for the relay's end-to-end tests: the built function binaries run under a
//! Lambda Runtime API emulator, AWS is moto's server, Twilio is the local sandbox.
//!
//! - [`moto`]: one moto server per test process, and per-test AWS resources.
//! - [`runtime_api`]: the Lambda Runtime API that `lambda_runtime` programs poll.
//! - [`function`]: spawn a built function binary under that API, capture its logs.
//! - [`events`]: API Gateway / function-URL events, Twilio signatures, responses.
//! - [`dynamo_json`]: flat JSON to DynamoDB attribute values and back.
//! - [`sqs_events`]: the SQS events Lambda's event source hands `ack-timeout`.
//! - [`template`]: `template.yaml` parsed, CloudFormation's tags kept.
//! - [`iam`]: what IAM authorises for a recorded call, and what a role grants.
//! - [`sdk_calls`]: the AWS SDK operations the functions' code calls.

pub mod acks;
pub mod dynamo_json;
pub mod events;
pub mod function;
pub mod heartbeat;
pub mod iam;
pub mod moto;
pub mod qdn;
pub mod rota;
pub mod runtime_api;
pub mod sdk_calls;
pub mod sqs_events;
pub mod stack;
pub mod template;
pub mod tokens;

/// The Twilio stand-in, re-exported so tests say `relay_tests::twilio_sandbox::Sandbox`.
pub use twilio_sandbox;

pub use events::{
    function_url_event, http_api_v2_event, response_parts, rest_proxy_event, twilio_form,
    twilio_signature,
};
pub use function::{FunctionProcess, assert_metric, binary_path, request_id_of, settle_invocation};
pub use moto::{Alert, AwsFixture, sdk_config};
pub use runtime_api::{Invocation, RuntimeApi};
pub use sqs_events::{SqsRecordSpec, sqs_event, sqs_event_from_messages};
pub use stack::{HttpAnswer, Stack};

/// Polls `condition` every 20 ms until it holds or `timeout` passes; whether it held.
/// Tests wait for what they expect this way, never with a fixed sleep.
pub async fn eventually(timeout: std::time::Duration, condition: impl Fn() -> bool) -> bool {
    let until = tokio::time::Instant::now() + timeout;
    while !condition() {
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    true
}
