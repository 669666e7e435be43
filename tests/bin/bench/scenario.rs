//! The functions under test, what each invocation hands them, and one cold start:
//! a fresh Runtime API and a fresh process, init (spawn to the first `/next` poll),
//! the first invocation, warm invocations, peak memory, and the requests each made.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use relay_tests::moto::TEST_JWT_KEY;
use relay_tests::stack::{
    BACKUP_PHONE, PRIMARY_PHONE, Stack, driver_params, message_sid, seed_dispatcher, unix_now,
};
use relay_tests::{
    AwsFixture, FunctionProcess, Invocation, RuntimeApi, response_parts, sqs_event_from_messages,
    tokens,
};
use serde_json::{Value, json};

use crate::bench::proxy::{Connection, Exchange, Proxy, Service};
use crate::bench::tls::LocalCa;

pub const DRIVER: &str = "+16195550123";
const DISPATCHER: &str = "sergio-main";
/// The acknowledgement window the ack-timeout scenario's texts are relayed with.
const ACK_WINDOW_SECS: u64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    /// `bench-hello`, the bare `lambda_runtime` function.
    Hello,
    Inbound,
    Outbound,
    Heartbeat,
    AckTimeout,
}

impl Function {
    pub const RELAY: [Function; 4] = [
        Function::Inbound,
        Function::Outbound,
        Function::Heartbeat,
        Function::AckTimeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Function::Hello => "bench-hello",
            Function::Inbound => "sms-inbound",
            Function::Outbound => "sms-outbound",
            Function::Heartbeat => "dispatcher-heartbeat",
            Function::AckTimeout => "ack-timeout",
        }
    }

    pub fn parse(name: &str) -> Result<Function, String> {
        Function::RELAY
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown function {name:?} (sms-inbound, sms-outbound, dispatcher-heartbeat \
                     or ack-timeout)"
                )
            })
    }

    /// What each invocation is, for the report.
    pub fn invocation(self) -> &'static str {
        match self {
            Function::Hello => "any event, answered `{\"statusCode\": 200}`",
            Function::Inbound => {
                "a signed driver text (REST proxy event), answered 200 and forwarded to the \
                 available primary"
            }
            Function::Outbound => {
                "a dispatcher's reply to the driver (HS256 token, fresh Idempotency-Key), \
                 answered 202 and sent"
            }
            Function::Heartbeat => {
                "EventBridge's scheduled event (`events/heartbeat-schedule.json`), one \
                 dispatcher in the table"
            }
            Function::AckTimeout => {
                "one due acknowledgement timer (an SQS event as `events/ack-timer-sqs.json`, \
                 received from the ack queue) for an unacknowledged text: escalated to the backup"
            }
        }
    }

    /// Who each invocation texts through Twilio, if anyone.
    fn recipient(self) -> Option<&'static str> {
        match self {
            Function::Inbound => Some(PRIMARY_PHONE),
            Function::Outbound => Some(DRIVER),
            Function::AckTimeout => Some(BACKUP_PHONE),
            Function::Hello | Function::Heartbeat => None,
        }
    }
}

/// One invocation: how long it took, and what it asked of AWS and Twilio.
#[derive(Clone, Debug)]
pub struct Timed {
    pub took: Duration,
    pub exchanges: Vec<Exchange>,
    pub connections: Vec<Connection>,
}

/// One cold start and the warm invocations after it.
#[derive(Clone, Debug)]
pub struct Run {
    pub init: Duration,
    /// Requests made during init (before the first poll).
    pub init_exchanges: Vec<Exchange>,
    pub init_connections: Vec<Connection>,
    pub first: Timed,
    pub warm: Vec<Timed>,
    /// `VmHWM` in KiB, where `/proc` has it.
    pub peak_rss_kib: Option<u64>,
    /// CPU time of the process from spawn to its first poll (init, prefetch included),
    /// and over all the warm invocations together, where `/proc` has it.
    pub init_cpu: Option<Duration>,
    pub warm_cpu: Option<Duration>,
    /// The `*_ms` fields of the function's `"init phases"` log line, if it wrote one.
    pub init_phases: Option<Vec<(String, f64)>>,
}

struct Endpoints {
    aws: Proxy,
    twilio: Proxy,
}

/// The shared part of every run: moto and the sandbox, and the counting proxies in
/// front of them (plain, and TLS with its CA). Each run gets fresh AWS resources
/// ([`Lab::fresh_fixture`]).
pub struct Lab {
    pub stack: Stack,
    plain: Endpoints,
    tls: Option<(Endpoints, PathBuf)>,
}

impl Lab {
    pub async fn start(with_tls: bool, dir: &std::path::Path) -> Result<Lab, String> {
        let stack = Stack::start_function("sms-inbound", "bench", 0, &[]).await;
        let proxies = |tls: Option<std::sync::Arc<rustls::ServerConfig>>| {
            let aws = stack.aws.endpoint.clone();
            let twilio = stack.twilio.base_url();
            async move {
                let start = |service, upstream: String, tls| async move {
                    Proxy::start(service, &upstream, tls)
                        .await
                        .map_err(|e| format!("proxy: {e}"))
                };
                Ok::<_, String>(Endpoints {
                    aws: start(Service::Aws, aws, tls.clone()).await?,
                    twilio: start(Service::Twilio, twilio, tls).await?,
                })
            }
        };
        let plain = proxies(None).await?;
        let tls = if with_tls {
            let ca = LocalCa::generate(dir)?;
            Some((proxies(Some(ca.server)).await?, ca.trust_bundle))
        } else {
            None
        };
        Ok(Lab { stack, plain, tls })
    }

    /// Resets moto and makes fresh AWS resources. moto keeps every object it ever made
    /// (for its dashboard), and its `TransactWriteItems` deep-copies each table it
    /// writes (to roll back on failure): without a reset every run would be slower than
    /// the one before, and a long run would exhaust memory.
    pub async fn fresh_fixture(&mut self) -> Result<(), String> {
        let reset = format!("{}/moto-api/reset", self.stack.aws.endpoint);
        let answer = reqwest::Client::new()
            .post(&reset)
            .send()
            .await
            .map_err(|e| format!("{reset}: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!("{reset}: {}", answer.status()));
        }
        self.stack.aws = AwsFixture::create("bench").await;
        Ok(())
    }

    fn endpoints(&self, tls: bool) -> &Endpoints {
        match (&self.tls, tls) {
            (Some((endpoints, _)), true) => endpoints,
            _ => &self.plain,
        }
    }

    /// The function's environment: the fixture's resources, AWS and Twilio through the
    /// proxies (TLS ones with `SSL_CERT_FILE` naming the CA when `tls`).
    fn function_env(&self, function: Function, tls: bool) -> Vec<(String, String)> {
        let endpoints = self.endpoints(tls);
        let mut env: Vec<(String, String)> = self
            .stack
            .aws
            .function_env()
            .into_iter()
            .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
            .collect();
        env.push(("AWS_ENDPOINT_URL".into(), endpoints.aws.url()));
        env.push(("TWILIO_API_BASE".into(), endpoints.twilio.url()));
        if let (true, Some((_, trust_bundle))) = (tls, &self.tls) {
            env.push(("SSL_CERT_FILE".into(), trust_bundle.display().to_string()));
        }
        if function == Function::AckTimeout {
            env.extend(self.stack.aws.ack_env(ACK_WINDOW_SECS));
        }
        env
    }

    /// One cold start of `function` and `warm` invocations after the first.
    pub async fn cold_start(
        &mut self,
        function: Function,
        tls: bool,
        warm: usize,
    ) -> Result<Run, String> {
        if function != Function::Hello {
            self.fresh_fixture().await?;
        }
        self.stack
            .aws
            .put_dispatcher(seed_dispatcher(unix_now()))
            .await;
        let events = self.events(function, warm + 1).await?;
        self.stack.twilio.reset();
        let runtime = RuntimeApi::start().await;
        let env = self.function_env(function, tls);
        let endpoints = self.endpoints(tls);

        let spawned = Instant::now();
        let process = FunctionProcess::spawn(function.name(), &runtime, &env);
        let first_poll = runtime.wait_first_poll().await;
        let init = first_poll - spawned;
        let init_cpu = process
            .pid()
            .and_then(cpu_time)
            .map(|sample| sample.total());
        let init_exchanges = window(endpoints, spawned, first_poll);
        let init_connections = connections(endpoints, spawned, first_poll);

        let mut timed = Vec::with_capacity(events.len());
        let mut warm_cpu_from = None;
        for (n, event) in events.into_iter().enumerate() {
            if n == 1 {
                warm_cpu_from = match process.pid() {
                    Some(pid) => settled_cpu_time(pid).await,
                    None => None,
                };
            }
            let started = Instant::now();
            let outcome = runtime.invoke(event).await;
            let took = started.elapsed();
            if let Err(e) = check(function, &outcome) {
                let logs = process.logs().join("\n");
                process.stop().await;
                return Err(format!("{e}\nfunction logs:\n{logs}"));
            }
            let ended = Instant::now();
            timed.push(Timed {
                took,
                exchanges: window(endpoints, started, ended),
                connections: connections(endpoints, started, ended),
            });
        }

        // The runtime has the answer when the function posts it; the function's own
        // bookkeeping after that (its log line's flush) belongs to the invocation.
        let settled = match process.pid() {
            Some(pid) => settled_cpu_time(pid).await,
            None => None,
        };
        let warm_cpu = match (warm_cpu_from, settled) {
            (Some(from), Some(to)) => Some(to.since(&from)),
            _ => None,
        };
        let peak_rss_kib = process.pid().and_then(vm_hwm_kib);
        // Output is read asynchronously: give the init line a moment to arrive.
        let _ = process
            .wait_for_log(|l| l.contains("init phases"), Duration::from_millis(200))
            .await;
        let init_phases = init_phases(&process.logs());
        process.stop().await;

        if let Some(recipient) = function.recipient() {
            let sent = self.stack.sent_to(recipient).len();
            let all = self.stack.sent().len();
            if (sent, all) != (timed.len(), timed.len()) {
                return Err(format!(
                    "expected {} texts to {recipient}; the sandbox got {all} ({sent} to \
                     {recipient})",
                    timed.len()
                ));
            }
        }
        let mut timed = timed.into_iter();
        let first = timed.next().expect("at least one invocation");
        Ok(Run {
            init,
            init_exchanges,
            init_connections,
            first,
            warm: timed.collect(),
            peak_rss_kib,
            init_phases,
            init_cpu,
            warm_cpu,
        })
    }

    /// `count` events for `function`, made before its process starts.
    async fn events(&mut self, function: Function, count: usize) -> Result<Vec<Value>, String> {
        match function {
            Function::Hello => Ok(vec![json!({}); count]),
            Function::Inbound => Ok((0..count)
                .map(|i| inbound_event(&self.stack, &format!("Load {i} ready at 5th & Main")))
                .collect()),
            Function::Outbound => Ok((0..count)
                .map(|i| outbound_event(&self.stack, &format!("Gate code is 44{i:02}")))
                .collect()),
            Function::Heartbeat => {
                let event = heartbeat_event()?;
                Ok(vec![event; count])
            }
            Function::AckTimeout => self.ack_timers(count).await,
        }
    }

    /// `count` due acknowledgement timers, one event each: `count` texts relayed by an
    /// `sms-inbound` with acknowledgement on (reaching moto and the sandbox directly,
    /// not through the proxies), their timers received from the ack queue once due,
    /// and deleted there as Lambda's event source would.
    async fn ack_timers(&mut self, count: usize) -> Result<Vec<Value>, String> {
        let runtime = RuntimeApi::start().await;
        let mut env = self.stack.aws.function_env();
        env.push(("TWILIO_API_BASE".into(), self.stack.twilio.base_url()));
        env.extend(self.stack.aws.ack_env(ACK_WINDOW_SECS));
        let relay = FunctionProcess::spawn("sms-inbound", &runtime, &env);
        let mut wanted = HashSet::new();
        for i in 0..count {
            let (sid, event) = inbound_event_sid(&self.stack, &format!("Load {i} is heavy"));
            match runtime.invoke(event).await {
                Invocation::Response(response) if response_parts(&response).0 == 200 => {}
                other => {
                    relay.stop().await;
                    return Err(format!("relaying a text for a timer: {other:?}"));
                }
            }
            wanted.insert(sid);
        }
        relay.stop().await;
        let aws = &self.stack.aws;
        let mut events = Vec::with_capacity(count);
        let until = Instant::now() + Duration::from_secs(60);
        while events.len() < count {
            if Instant::now() > until {
                return Err(format!("only {} of {count} timers came due", events.len()));
            }
            let messages = aws.receive_ack_timers(Duration::from_secs(5)).await;
            aws.delete_ack_timers(&messages).await;
            for message in messages {
                let body: Value =
                    serde_json::from_str(message.body().unwrap_or_default()).unwrap_or_default();
                // Earlier runs' escalations schedule timers of their own: not ours.
                if body["inbound_sid"]
                    .as_str()
                    .is_some_and(|s| wanted.remove(s))
                {
                    events.push(sqs_event_from_messages(&aws.ack_queue_arn, &[message]));
                }
            }
        }
        Ok(events)
    }

    pub async fn stop(self) {
        self.stack.stop().await;
    }
}

fn window(endpoints: &Endpoints, from: Instant, to: Instant) -> Vec<Exchange> {
    let mut exchanges = endpoints.aws.exchanges_between(from, to);
    exchanges.extend(endpoints.twilio.exchanges_between(from, to));
    exchanges
}

fn connections(endpoints: &Endpoints, from: Instant, to: Instant) -> Vec<Connection> {
    let mut connections = endpoints.aws.connections_between(from, to);
    connections.extend(endpoints.twilio.connections_between(from, to));
    connections
}

/// A signed driver text from [`DRIVER`] with a fresh `MessageSid`.
pub fn inbound_event(stack: &Stack, body: &str) -> Value {
    inbound_event_sid(stack, body).1
}

pub fn inbound_event_sid(stack: &Stack, body: &str) -> (String, Value) {
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, body);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let event = stack.inbound_event(&params);
    (sid, event)
}

/// A dispatcher's reply to [`DRIVER`]: a fresh token and `Idempotency-Key`.
fn outbound_event(stack: &Stack, body: &str) -> Value {
    let token = tokens::hs256(
        TEST_JWT_KEY.as_bytes(),
        &tokens::claims(DISPATCHER, unix_now() + 600),
    );
    let request = json!({"to": DRIVER, "body": body, "job_ref": "JOB-1042"}).to_string();
    let key = format!("bench-{:016x}", rand::random::<u64>());
    stack.outbound_event(Some(&token), &request, Some(&key))
}

fn heartbeat_event() -> Result<Value, String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/heartbeat-schedule.json"
    );
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

/// Whether `outcome` is the answer `function` gives when all went well.
fn check(function: Function, outcome: &Invocation) -> Result<(), String> {
    let response = match outcome {
        Invocation::Response(response) => response,
        Invocation::Error(error) => return Err(format!("invocation failed: {error}")),
    };
    let ok = match function {
        Function::Hello => response["statusCode"] == 200,
        Function::Inbound => response_parts(response).0 == 200,
        Function::Outbound => response_parts(response).0 == 202,
        Function::Heartbeat => response.is_object(),
        Function::AckTimeout => response["batchItemFailures"] == json!([]),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{} answered {response}", function.name()))
    }
}

/// CPU time (user + system) each thread of the process has run, by thread ID: the
/// first field of `/proc/PID/task/TID/schedstat`, in nanoseconds. `/proc/PID/stat`'s
/// `utime + stime` count 10 ms ticks, too coarse for a sub-millisecond invocation.
fn cpu_by_thread(pid: u32) -> Option<HashMap<u32, u64>> {
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread that ended meanwhile has no file any more: it ran before, if at all.
        let Ok(schedstat) = std::fs::read_to_string(entry.path().join("schedstat")) else {
            continue;
        };
        if let Some(ns) = schedstat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
        {
            threads.insert(tid, ns);
        }
    }
    Some(threads)
}

/// The process's CPU time so far (its live threads').
fn cpu_time(pid: u32) -> Option<CpuSample> {
    cpu_by_thread(pid).map(CpuSample)
}

/// What each thread had run at one moment.
#[derive(Clone, Debug)]
struct CpuSample(HashMap<u32, u64>);

impl CpuSample {
    fn total(&self) -> Duration {
        Duration::from_nanos(self.0.values().sum())
    }

    /// The CPU run between `earlier` and this sample: each live thread's growth (a
    /// thread started since counts whole; one that ended since is lost, and tokio's
    /// threads live as long as the process).
    fn since(&self, earlier: &CpuSample) -> Duration {
        Duration::from_nanos(
            self.0
                .iter()
                .map(|(tid, ns)| ns.saturating_sub(earlier.0.get(tid).copied().unwrap_or(0)))
                .sum(),
        )
    }
}

/// The process's CPU once it has gone idle waiting for its next event: read until two
/// reads 20 ms apart agree within 20 µs (at most a second), so work after the last
/// answer counts.
async fn settled_cpu_time(pid: u32) -> Option<CpuSample> {
    let mut last = cpu_time(pid)?;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = cpu_time(pid)?;
        if now.since(&last) < Duration::from_micros(20) {
            return Some(now);
        }
        last = now;
    }
    Some(last)
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Every numeric `*_ms` field of the first log line whose message is `init phases`,
/// in the order the line has them.
fn init_phases(lines: &[String]) -> Option<Vec<(String, f64)>> {
    let (raw, line) = lines.iter().find_map(|raw| {
        let line: Value = serde_json::from_str(raw).ok()?;
        let found = line["message"] == "init phases" || line["fields"]["message"] == "init phases";
        found.then_some((raw, line))
    })?;
    let fields = match line.get("fields") {
        Some(fields) if fields.is_object() => fields,
        _ => &line,
    };
    let mut phases: Vec<(String, f64)> = fields
        .as_object()?
        .iter()
        .filter(|(name, _)| name.ends_with("_ms"))
        .filter_map(|(name, value)| Some((name.clone(), value.as_f64()?)))
        .collect();
    // serde_json's map is sorted by name: restore the line's own order.
    phases.sort_by_key(|(name, _)| raw.find(&format!("\"{name}\"")));
    Some(phases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_phases_are_read_generically() {
        let lines = [
            json!({"message": "other", "config_ms": 1}).to_string(),
            r#"{"message":"init phases","level":"INFO","sdk_config_ms":2,"config_ms":0.4,"note":"x","init_ms":"soon"}"#.to_string(),
        ];
        assert_eq!(
            init_phases(&lines),
            Some(vec![
                ("sdk_config_ms".into(), 2.0),
                ("config_ms".into(), 0.4)
            ])
        );
        assert_eq!(init_phases(&lines[..1]), None);
    }
}
