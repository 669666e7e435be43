//! The built `dispatcher-heartbeat` under a Runtime API of its own, on a stack's AWS
//! fixture and Twilio sandbox, invoked with EventBridge's scheduled event
//! (`events/heartbeat-schedule.json`).

use serde_json::Value;

use crate::stack::Stack;
use crate::{FunctionProcess, Invocation, RuntimeApi, settle_invocation};

pub fn schedule_event() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/heartbeat-schedule.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A heartbeat process of its own, on the stack's AWS fixture.
pub struct HeartbeatProcess {
    pub runtime: RuntimeApi,
    pub function: FunctionProcess,
}

impl HeartbeatProcess {
    pub async fn start(stack: &Stack, extra_env: &[(&str, &str)]) -> Self {
        let runtime = RuntimeApi::start().await;
        let mut env = stack.aws.function_env();
        // The handover text goes to the stack's Twilio sandbox.
        env.push(("TWILIO_API_BASE".into(), stack.twilio.base_url()));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let function = FunctionProcess::spawn("dispatcher-heartbeat", &runtime, &env);
        HeartbeatProcess { runtime, function }
    }

    /// One scheduled run; its summary.
    pub async fn run(&self) -> Value {
        let (request_id, invocation) = self.runtime.invoke_with_id(schedule_event()).await;
        settle_invocation(std::slice::from_ref(&self.function), &request_id).await;
        match invocation {
            Invocation::Response(summary) => summary,
            Invocation::Error(error) => panic!(
                "heartbeat run failed: {error}\n{}",
                self.function.logs().join("\n")
            ),
        }
    }

    pub async fn stop(self) {
        self.function.stop().await;
    }
}
