//! Under load: `instances` `sms-inbound` processes polling one Runtime API emulator (as
//! concurrent Lambda execution environments), `messages` signed driver texts with
//! distinct `MessageSid`s, `concurrency` of them in flight. Reports throughput, the
//! per-message latency, errors, and whether each text was forwarded exactly once
//! (counted in the Twilio sandbox's record). moto and the sandbox are reached directly,
//! without the counting proxies.

use std::time::{Duration, Instant};

use futures::StreamExt;
use relay_tests::stack::{PRIMARY_PHONE, seed_dispatcher, unix_now};
use relay_tests::{FunctionProcess, Invocation, RuntimeApi, response_parts};
use serde::Serialize;

use crate::bench::scenario::{Lab, inbound_event};
use crate::bench::stats::{ms, percentile, round1, round2};

pub const MOTO_NOTE: &str = "moto serves one request at a time (tests/moto_server.py), so \
                             throughput is bounded by the emulator, not by the function.";

#[derive(Clone, Debug, Serialize)]
pub struct LoadSummary {
    pub messages: usize,
    pub instances: usize,
    pub concurrency: usize,
    pub seconds: f64,
    pub messages_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Invocations that failed or did not answer 200.
    pub errors: usize,
    pub error_examples: Vec<String>,
    /// Texts the sandbox accepted for the primary.
    pub forwards: usize,
    /// Texts not forwarded exactly once, plus forwards that are not one of the texts
    /// or went to someone other than the primary: 0 when all is well.
    pub mismatches: usize,
    pub note: String,
}

impl LoadSummary {
    pub fn markdown(&self) -> String {
        let rows = [
            ("texts (distinct MessageSids)", self.messages.to_string()),
            (
                "`sms-inbound` instances on one Runtime API",
                self.instances.to_string(),
            ),
            ("in flight", self.concurrency.to_string()),
            ("wall time s", self.seconds.to_string()),
            ("throughput, texts/s", self.messages_per_second.to_string()),
            (
                "per text ms, p50 / p99",
                format!("{} / {}", self.p50_ms, self.p99_ms),
            ),
            ("errors", self.errors.to_string()),
            ("forwards to the primary", self.forwards.to_string()),
            (
                "texts not forwarded exactly once (expected 0)",
                self.mismatches.to_string(),
            ),
        ];
        let mut out = String::from("#### Under load: `sms-inbound`\n\n");
        out += &format!(
            "{} A text's time runs from queuing its event at the Runtime API to the answer, \
             so it includes waiting for a free instance ({} in flight, {} instances).\n\n\
             | measure | value |\n| --- | --- |\n",
            self.note, self.concurrency, self.instances
        );
        for (measure, value) in rows {
            out += &format!("| {measure} | {value} |\n");
        }
        for example in &self.error_examples {
            out += &format!("\nerror: {example}\n");
        }
        out
    }
}

/// Runs the load test on `lab`'s fixture and sandbox.
pub async fn run(
    lab: &Lab,
    messages: usize,
    instances: usize,
    concurrency: usize,
) -> Result<LoadSummary, String> {
    let stack = &lab.stack;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    stack.twilio.reset();
    let runtime = RuntimeApi::start().await;
    let mut env = stack.aws.function_env();
    env.push(("TWILIO_API_BASE".into(), stack.twilio.base_url()));
    let processes: Vec<FunctionProcess> = (0..instances)
        .map(|_| FunctionProcess::spawn("sms-inbound", &runtime, &env))
        .collect();
    runtime
        .wait_for_pollers(instances, Duration::from_secs(30))
        .await;

    let events: Vec<_> = (0..messages)
        .map(|i| inbound_event(stack, &text(i)))
        .collect();
    let started = Instant::now();
    let outcomes: Vec<(Duration, Result<(), String>)> = futures::stream::iter(events)
        .map(|event| {
            let runtime = &runtime;
            async move {
                let sent = Instant::now();
                let outcome = runtime.invoke(event).await;
                let took = sent.elapsed();
                let result = match outcome {
                    Invocation::Response(response) => match response_parts(&response) {
                        (200, _, _) => Ok(()),
                        (status, _, body) => Err(format!("answered {status}: {body}")),
                    },
                    Invocation::Error(error) => Err(format!("failed: {error}")),
                };
                (took, result)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    for process in processes {
        process.stop().await;
    }

    let latencies: Vec<f64> = outcomes.iter().map(|(took, _)| ms(*took)).collect();
    let errors: Vec<&String> = outcomes
        .iter()
        .filter_map(|(_, r)| r.as_ref().err())
        .collect();
    let sent = stack.sent();
    let mut per_text = vec![0usize; messages];
    let mut strays = 0;
    for message in &sent {
        match text_index(&message.body) {
            Some(i) if i < messages && message.to == PRIMARY_PHONE => per_text[i] += 1,
            _ => strays += 1,
        }
    }
    let forwards = sent.iter().filter(|m| m.to == PRIMARY_PHONE).count();
    Ok(LoadSummary {
        messages,
        instances,
        concurrency,
        seconds: round2(seconds),
        messages_per_second: round1(messages as f64 / seconds),
        p50_ms: round2(percentile(&latencies, 50.0).unwrap_or(f64::NAN)),
        p99_ms: round2(percentile(&latencies, 99.0).unwrap_or(f64::NAN)),
        errors: errors.len(),
        error_examples: errors.iter().take(3).map(|e| e.to_string()).collect(),
        forwards,
        mismatches: per_text.iter().filter(|n| **n != 1).count() + strays,
        note: MOTO_NOTE.to_owned(),
    })
}

fn text(i: usize) -> String {
    format!("Load test {i:05} ready")
}

/// The `i` of [`text`] within a forwarded body (`QDN driver +1...: Load test 00042 ready`).
fn text_index(body: &str) -> Option<usize> {
    let (_, rest) = body.split_once("Load test ")?;
    rest.get(..5)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_texts_name_their_index() {
        assert_eq!(
            text_index(&format!("QDN driver +16195550123: {}", text(42))),
            Some(42)
        );
        assert_eq!(text_index("QDN driver +16195550123: hello"), None);
    }
}
