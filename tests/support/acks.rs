//! `sms-inbound` with acknowledgement on (a one-second window) and `ack-timeout`
//! under its own Runtime API, handed the timer queue's messages as Lambda's SQS
//! event source would: for the tests of acknowledgements and of what became of texts.

use std::time::Duration;

use serde_json::Value;

use crate::stack::{Stack, seed_dispatcher, unix_now};
use crate::{FunctionProcess, Invocation, RuntimeApi, settle_invocation, sqs_event_from_messages};

pub const WINDOW_SECS: u64 = 1;

/// `ack-timeout` on its own Runtime API, on the stack's fixture and sandbox.
pub struct Timeouts {
    pub runtime: RuntimeApi,
    pub functions: Vec<FunctionProcess>,
}

impl Timeouts {
    pub async fn start(stack: &Stack, instances: usize) -> Self {
        Self::start_with(stack, instances, &[]).await
    }

    /// With `extra` variables (ESCALATION_REPEATS) set before it starts.
    pub async fn start_with(stack: &Stack, instances: usize, extra: &[(&str, &str)]) -> Self {
        let runtime = RuntimeApi::start().await;
        let mut env = stack.aws.function_env();
        env.push(("TWILIO_API_BASE".into(), stack.twilio.base_url()));
        env.extend(stack.aws.ack_env(WINDOW_SECS));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let functions = (0..instances)
            .map(|_| FunctionProcess::spawn("ack-timeout", &runtime, &env))
            .collect();
        Timeouts { runtime, functions }
    }

    /// Hands `event` to ack-timeout; its batch response.
    pub async fn invoke(&self, event: Value) -> Value {
        let (request_id, invocation) = self.runtime.invoke_with_id(event).await;
        settle_invocation(&self.functions, &request_id).await;
        match invocation {
            Invocation::Response(response) => response,
            Invocation::Error(e) => panic!("ack-timeout failed: {e}\n{}", self.logs()),
        }
    }

    pub fn logs(&self) -> String {
        self.functions
            .iter()
            .flat_map(|f| f.logs())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn stop(self) {
        for f in self.functions {
            f.stop().await;
        }
    }
}

/// An inbound stack with acknowledgement on, the seed dispatcher changed by
/// `change`, and ack-timeout beside it.
pub async fn start(prefix: &str, change: impl FnOnce(&mut Value)) -> (Stack, Timeouts) {
    let stack = Stack::start_function("sms-inbound", prefix, 0, &[]).await;
    let mut env: Vec<(String, String)> = stack.aws.function_env();
    env.push(("TWILIO_API_BASE".into(), stack.twilio.base_url()));
    env.extend(stack.aws.ack_env(WINDOW_SECS));
    let mut stack = stack;
    stack
        .functions
        .push(FunctionProcess::spawn("sms-inbound", &stack.runtime, &env));
    let mut seed = seed_dispatcher(unix_now());
    change(&mut seed);
    stack.aws.put_dispatcher(seed).await;
    let timeouts = Timeouts::start(&stack, 1).await;
    (stack, timeouts)
}

/// Waits for the due timers, hands them to ack-timeout as one batch, and deletes them
/// (as Lambda does after a batch without failures). Returns the batch response.
pub async fn fire_due_timers(stack: &Stack, timeouts: &Timeouts) -> Value {
    let messages = stack.aws.receive_ack_timers(Duration::from_secs(5)).await;
    assert!(!messages.is_empty(), "no timer came due");
    let response = timeouts
        .invoke(sqs_event_from_messages(&stack.aws.ack_queue_arn, &messages))
        .await;
    stack.aws.delete_ack_timers(&messages).await;
    response
}
