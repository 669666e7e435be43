//! Cold-start benchmark of one function (`sms-inbound` or `sms-outbound`): for each run
//! a fresh Runtime API and a fresh process of the built binary (the release one under
//! `scripts/bench-cold-start.sh`), measuring init time, the first and a warm invocation,
//! and peak memory. The AWS fixture (moto) and the Twilio sandbox are shared by all runs.
//!
//! `bench_cold_start [--function sms-inbound|sms-outbound] [--runs N]` (function default
//! `sms-inbound`; runs `QDN_BENCH_RUNS`, default 10). `sms-inbound` gets signed driver
//! texts; `sms-outbound` gets dispatcher replies (an HS256 token for `sergio-main` over
//! the fixture's key, a fresh `Idempotency-Key` each). Prints a table and a summary and
//! writes the summary as JSON to `target/bench/cold-start-<function>.json`. It measures
//! only: nothing here asserts on timings.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use relay_tests::moto::TEST_JWT_KEY;
use relay_tests::stack::{
    PRIMARY_PHONE, Stack, driver_params, message_sid, seed_dispatcher, unix_now,
};
use relay_tests::tokens;
use relay_tests::{FunctionProcess, Invocation, RuntimeApi, binary_path, response_parts};
use serde_json::{Value, json};

const DRIVER: &str = "+16195550123";
const DISPATCHER: &str = "sergio-main";
const DEFAULT_RUNS: usize = 10;
const NOTE: &str = "moto (AWS) and the Twilio sandbox run locally, so invocation latency \
                    includes local emulator time; init time and peak memory are the \
                    function's own.";

/// The function under test, and the request each invocation makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Function {
    /// A signed driver text, answered `200` and forwarded to the primary.
    Inbound,
    /// A dispatcher's reply to the driver, answered `202`.
    Outbound,
}

impl Function {
    const ALL: [Function; 2] = [Function::Inbound, Function::Outbound];

    fn name(self) -> &'static str {
        match self {
            Function::Inbound => "sms-inbound",
            Function::Outbound => "sms-outbound",
        }
    }

    fn parse(name: &str) -> Result<Function, String> {
        Function::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| format!("unknown function {name:?} (sms-inbound or sms-outbound)"))
    }
}

/// What the command line asks for.
struct Options {
    function: Function,
    runs: usize,
}

struct Run {
    init: Duration,
    first_invoke: Duration,
    warm_invoke: Duration,
    /// `VmHWM` in KiB, where `/proc` has it.
    peak_rss_kib: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Options { function, runs } = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("bench_cold_start: {e}");
            eprintln!("usage: bench_cold_start [--function sms-inbound|sms-outbound] [--runs N]");
            return ExitCode::from(2);
        }
    };
    let binary = binary_path(function.name());
    let binary = std::fs::canonicalize(&binary).unwrap_or(binary);
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    println!("function: {}", function.name());
    println!("binary: {} ({:.1} MiB)", binary.display(), mib(size));
    println!("note: {NOTE}");
    println!();

    // The AWS fixture and the sandbox, without any function process yet.
    let mut stack = Stack::start_function(function.name(), "bench", 0, &[]).await;
    println!(
        "{:>4} {:>10} {:>16} {:>15} {:>14}",
        "run", "init ms", "1st invoke ms", "warm invoke ms", "peak RSS MiB"
    );
    let mut results = Vec::new();
    for n in 1..=runs {
        let run = match measure(&mut stack, function).await {
            Ok(run) => run,
            Err(e) => {
                eprintln!("bench_cold_start: run {n}: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "{n:>4} {:>10.1} {:>16.1} {:>15.1} {:>14}",
            ms(run.init),
            ms(run.first_invoke),
            ms(run.warm_invoke),
            run.peak_rss_kib
                .map_or("n/a".into(), |kib| format!("{:.1}", kib as f64 / 1024.0)),
        );
        results.push(run);
    }
    stack.stop().await;

    let summary = summarise(function, &binary, size, &results);
    print_summary(&summary);
    match write_json(function, &summary) {
        Ok(path) => println!("summary written to {}", path.display()),
        Err(e) => {
            eprintln!("bench_cold_start: cannot write the summary: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// `--function NAME` (default `sms-inbound`); `--runs N`, else `QDN_BENCH_RUNS`, else
/// 10. Both also as `--flag=value`.
fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut runs = std::env::var("QDN_BENCH_RUNS").ok();
    let mut function = Function::Inbound;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--runs" => runs = Some(value()?),
            "--function" => function = Function::parse(&value()?)?,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    let runs = match runs {
        None => DEFAULT_RUNS,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("runs must be a positive number, not {n:?}")),
        },
    };
    Ok(Options { function, runs })
}

/// One cold start: fresh Runtime API and process, two requests, then the process's
/// high-water mark, then stop it.
async fn measure(stack: &mut Stack, function: Function) -> Result<Run, String> {
    stack.twilio.reset();
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    stack.runtime = RuntimeApi::start().await;
    let mut env = stack.aws.function_env();
    env.push(("TWILIO_API_BASE".into(), stack.twilio.base_url()));

    let spawned = Instant::now();
    let process = FunctionProcess::spawn(function.name(), &stack.runtime, &env);
    let init = stack.runtime.wait_first_poll().await - spawned;
    stack.functions.push(process);

    let (first_invoke, warm_invoke, recipient) = match function {
        Function::Inbound => (
            timed_text(stack, "Load ready at 5th & Main").await?,
            timed_text(stack, "Second load ready").await?,
            PRIMARY_PHONE,
        ),
        Function::Outbound => (
            timed_reply(stack, "Gate code is 4412").await?,
            timed_reply(stack, "Use the north entrance").await?,
            DRIVER,
        ),
    };
    let to_recipient = stack.sent_to(recipient).len();
    let sent = stack.sent().len();
    if (to_recipient, sent) != (2, 2) {
        return Err(format!(
            "expected 2 texts to {recipient}, the sandbox got {sent} ({to_recipient} to {recipient})"
        ));
    }

    let process = stack.functions.pop().expect("pushed above");
    let peak_rss_kib = process.pid().and_then(vm_hwm_kib);
    process.stop().await;
    Ok(Run {
        init,
        first_invoke,
        warm_invoke,
        peak_rss_kib,
    })
}

/// Sends one signed driver text and returns how long the invocation took.
async fn timed_text(stack: &Stack, body: &str) -> Result<Duration, String> {
    let sid = message_sid();
    let params = driver_params(&sid, DRIVER, body);
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let event = stack.inbound_event(&params);
    timed_invoke(stack, event, 200).await
}

/// Sends one dispatcher reply to the driver (a fresh token and `Idempotency-Key`) and
/// returns how long the invocation took.
async fn timed_reply(stack: &Stack, body: &str) -> Result<Duration, String> {
    let token = tokens::hs256(
        TEST_JWT_KEY.as_bytes(),
        &tokens::claims(DISPATCHER, unix_now() + 600),
    );
    let request = json!({"to": DRIVER, "body": body, "job_ref": "JOB-1042"}).to_string();
    let key = format!("bench-{:016x}", rand::random::<u64>());
    let event = stack.outbound_event(Some(&token), &request, Some(&key));
    timed_invoke(stack, event, 202).await
}

/// Invokes `event` and returns how long it took, if the function answered `expected`.
async fn timed_invoke(stack: &Stack, event: Value, expected: u16) -> Result<Duration, String> {
    let started = Instant::now();
    let outcome = stack.runtime.invoke(event).await;
    let took = started.elapsed();
    match outcome {
        Invocation::Response(response) => match response_parts(&response) {
            (status, _, _) if status == expected => Ok(took),
            (status, _, body) => Err(format!("function answered {status}: {body}")),
        },
        Invocation::Error(error) => Err(format!("invocation failed: {error}")),
    }
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn summarise(function: Function, binary: &std::path::Path, size: u64, runs: &[Run]) -> Value {
    let stats = |values: Vec<f64>| -> Value {
        match min_median_max(values) {
            Some((min, median, max)) => json!({
                "min": round1(min), "median": round1(median), "max": round1(max)
            }),
            None => Value::Null,
        }
    };
    let rss: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.peak_rss_kib)
        .map(|kib| kib as f64)
        .collect();
    json!({
        "function": function.name(),
        "binary": binary.display().to_string(),
        "profile": std::env::var("QDN_FUNCTION_PROFILE").unwrap_or_else(|_| "debug".into()),
        "binary_size_bytes": size,
        "runs": runs.len(),
        "init_ms": stats(runs.iter().map(|r| ms(r.init)).collect()),
        "first_invocation_ms": stats(runs.iter().map(|r| ms(r.first_invoke)).collect()),
        "warm_invocation_ms": stats(runs.iter().map(|r| ms(r.warm_invoke)).collect()),
        "peak_rss_kib": stats(rss),
        "note": NOTE,
    })
}

fn print_summary(summary: &Value) {
    println!();
    println!(
        "{} summary over {} runs ({}, {} bytes = {:.1} MiB):",
        summary["function"].as_str().unwrap_or("?"),
        summary["runs"],
        summary["profile"].as_str().unwrap_or("?"),
        summary["binary_size_bytes"],
        mib(summary["binary_size_bytes"].as_u64().unwrap_or(0)),
    );
    println!("{:<22} {:>10} {:>10} {:>10}", "", "min", "median", "max");
    for (label, key, scale) in [
        ("init ms", "init_ms", 1.0),
        ("first invocation ms", "first_invocation_ms", 1.0),
        ("warm invocation ms", "warm_invocation_ms", 1.0),
        ("peak RSS MiB", "peak_rss_kib", 1024.0),
    ] {
        let stat = |name: &str| summary[key][name].as_f64().map(|v| v / scale);
        match (stat("min"), stat("median"), stat("max")) {
            (Some(min), Some(median), Some(max)) => {
                println!("{label:<22} {min:>10.1} {median:>10.1} {max:>10.1}")
            }
            _ => println!("{label:<22} {:>10}", "n/a"),
        }
    }
    println!("note: {NOTE}");
}

/// `$CARGO_TARGET_DIR` (or `<repo>/target`) `/bench/cold-start-<function>.json`.
fn write_json(function: Function, summary: &Value) -> std::io::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("cold-start-{}.json", function.name()));
    let text = serde_json::to_string_pretty(summary).expect("JSON serialises");
    std::fs::write(&path, text + "\n")?;
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

fn min_median_max(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some((values[0], median, values[n - 1]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
