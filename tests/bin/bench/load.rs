//! Under load: `instances` `sms-inbound` processes polling one Runtime API emulator (as
//! concurrent Lambda execution environments), `messages` signed driver texts with
//! distinct `MessageSid`s, `concurrency` of them in flight. Reports throughput, the
//! per-message latency, errors, and whether each text was forwarded exactly once
//! (counted in the Twilio sandbox's record). moto and the sandbox are reached directly,
//! without the counting proxies. The texts go in rounds on fresh tables (see
//! [`MOTO_NOTE`]).

use std::time::{Duration, Instant};

use futures::StreamExt;
use relay_tests::stack::{PRIMARY_PHONE, seed_dispatcher, unix_now};
use relay_tests::{FunctionProcess, Invocation, RuntimeApi, response_parts};
use serde::Serialize;

use crate::bench::scenario::{Lab, inbound_event};
use crate::bench::stats::{ms, percentile, round1, round2};

pub const MOTO_NOTE: &str = "moto serves one request at a time (tests/moto_server.py), so \
                             throughput is bounded by the emulator, not by the function. moto's \
                             TransactWriteItems also deep-copies the table it writes, so a \
                             message costs more the more the table holds: the texts go in \
                             rounds, each on fresh tables (moto reset) with fresh instances, \
                             and only the rounds' submissions are timed.";

#[derive(Clone, Debug, Serialize)]
pub struct LoadSummary {
    pub messages: usize,
    pub instances: usize,
    pub concurrency: usize,
    /// Rounds of `round_size` texts, each on fresh tables with fresh instances.
    pub rounds: usize,
    pub round_size: usize,
    /// The rounds' submission time, summed.
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
            (
                "rounds × texts (fresh tables and instances each)",
                format!("{} × {}", self.rounds, self.round_size),
            ),
            ("time s, the rounds' sum", self.seconds.to_string()),
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

/// Runs the load test on `lab`'s moto and sandbox, in rounds of `round_size` texts.
pub async fn run(
    lab: &mut Lab,
    messages: usize,
    instances: usize,
    concurrency: usize,
    round_size: usize,
) -> Result<LoadSummary, String> {
    let mut tally = Tally {
        latencies: Vec::with_capacity(messages),
        errors: Vec::new(),
        per_text: vec![0; messages],
        strays: 0,
        forwards: 0,
        seconds: 0.0,
    };
    let mut rounds = 0;
    for first in (0..messages).step_by(round_size) {
        lab.fresh_fixture().await?;
        round(
            lab,
            first..(first + round_size).min(messages),
            instances,
            concurrency,
            &mut tally,
        )
        .await;
        rounds += 1;
    }
    let Tally {
        latencies,
        errors,
        per_text,
        strays,
        forwards,
        seconds,
    } = tally;
    Ok(LoadSummary {
        messages,
        instances,
        concurrency,
        rounds,
        round_size,
        seconds: round2(seconds),
        messages_per_second: round1(messages as f64 / seconds),
        p50_ms: round2(percentile(&latencies, 50.0).unwrap_or(f64::NAN)),
        p99_ms: round2(percentile(&latencies, 99.0).unwrap_or(f64::NAN)),
        errors: errors.len(),
        error_examples: errors.into_iter().take(3).collect(),
        forwards,
        mismatches: per_text.iter().filter(|n| **n != 1).count() + strays,
        note: MOTO_NOTE.to_owned(),
    })
}

/// What the rounds add up to.
struct Tally {
    latencies: Vec<f64>,
    errors: Vec<String>,
    /// Forwards to the primary per text.
    per_text: Vec<usize>,
    /// Forwards that are not one of the texts, or not to the primary.
    strays: usize,
    forwards: usize,
    /// Time spent submitting and answering, summed over the rounds.
    seconds: f64,
}

/// One round: fresh instances on a fresh Runtime API, texts `indexes` submitted
/// `concurrency` at a time; only the submissions are timed.
async fn round(
    lab: &Lab,
    indexes: std::ops::Range<usize>,
    instances: usize,
    concurrency: usize,
    tally: &mut Tally,
) {
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

    let events: Vec<_> = indexes
        .clone()
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
    tally.seconds += started.elapsed().as_secs_f64();
    for process in processes {
        process.stop().await;
    }

    for (took, result) in outcomes {
        tally.latencies.push(ms(took));
        if let Err(e) = result {
            tally.errors.push(e);
        }
    }
    for message in stack.sent() {
        match text_index(&message.body) {
            Some(i) if indexes.contains(&i) && message.to == PRIMARY_PHONE => {
                tally.per_text[i] += 1;
                tally.forwards += 1;
            }
            _ => tally.strays += 1,
        }
    }
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
