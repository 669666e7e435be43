//! The cold-start and footprint benchmark, docs/benchmark.md (run it with
//! `scripts/bench-cold-start.sh`, which builds what it measures first).
//!
//! Every relay function (`sms-inbound`, `sms-outbound`, `dispatcher-heartbeat`,
//! `ack-timeout`) and the bare `bench-hello` go through the same harness, interleaved
//! run by run so that a busy moment of the machine hits them alike: per run a fresh
//! Runtime API emulator and a fresh process of the built binary; init is spawn to the
//! first `/next` poll; then the first invocation and `--warm` more; peak memory
//! (`VmHWM`); the function's own `"init phases"` log line if it writes one. Each run is
//! made without TLS and with it: AWS (moto) and Twilio (the sandbox) are reached
//! through counting proxies, plain HTTP or TLS with a throwaway CA the function trusts
//! through `SSL_CERT_FILE`. The proxies record every request, so each invocation's AWS
//! and Twilio calls and its sequential round trips (groups of overlapping requests)
//! are reported with the operations of each step.
//!
//! Then the load test (`bench::load`), and the sizes: the x86_64 release binaries and
//! the arm64 `bootstrap.zip` that `cargo lambda build --release --arm64 --output-format
//! zip` made. Prints Markdown tables (one per function, the bare function beside it),
//! and writes everything as JSON to `target/bench/bench.json`. It measures only:
//! nothing here asserts on timings or budgets.

mod bench {
    pub mod cli;
    pub mod load;
    pub mod proxy;
    pub mod report;
    pub mod scenario;
    pub mod stats;
    pub mod steps;
    pub mod tls;
}

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use bench::cli::{Options, USAGE};
use bench::report::{Report, summarise};
use bench::scenario::{Function, Lab, Run};
use bench::stats::ms;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::from_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("bench_cold_start: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let target = target_dir();
    let target = std::fs::canonicalize(&target).unwrap_or(target);
    let out_dir = target.join("bench");
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("bench_cold_start: {}: {e}", out_dir.display());
        return ExitCode::FAILURE;
    }
    let modes = options.tls.modes();
    let mut lab = match Lab::start(modes.contains(&true), &out_dir).await {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("bench_cold_start: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut functions = vec![Function::Hello];
    functions.extend(&options.functions);
    let mut runs: HashMap<(Function, bool), Vec<Run>> = HashMap::new();
    let mut errors: HashMap<Function, Vec<String>> = HashMap::new();
    for n in 1..=options.runs {
        for &function in &functions {
            for &tls in &modes {
                let mode = if tls { "TLS" } else { "no TLS" };
                match lab.cold_start(function, tls, options.warm).await {
                    Ok(run) => {
                        eprintln!(
                            "run {n:>3} {:<21} {mode:<6} init {:>7.2} ms  first {:>7.2} ms  \
                             warm median {:>6.2} ms  RSS {}",
                            function.name(),
                            ms(run.init),
                            ms(run.first.took),
                            bench::stats::median(
                                &run.warm.iter().map(|t| ms(t.took)).collect::<Vec<_>>()
                            )
                            .unwrap_or(f64::NAN),
                            run.peak_rss_kib
                                .map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
                        );
                        runs.entry((function, tls)).or_default().push(run);
                    }
                    Err(e) => {
                        eprintln!("run {n:>3} {} {mode}: FAILED: {e}", function.name());
                        errors
                            .entry(function)
                            .or_default()
                            .push(format!("run {n} ({mode}): {e}"));
                    }
                }
            }
        }
    }

    let load = if options.load > 0 {
        eprintln!(
            "load: {} texts through {} sms-inbound instances, {} in flight...",
            options.load, options.instances, options.concurrency
        );
        match bench::load::run(
            &mut lab,
            options.load,
            options.instances,
            options.concurrency,
            options.load_round,
        )
        .await
        {
            Ok(load) => Some(load),
            Err(e) => {
                eprintln!("load: FAILED: {e}");
                errors
                    .entry(Function::Inbound)
                    .or_default()
                    .push(format!("load: {e}"));
                None
            }
        }
    } else {
        None
    };
    lab.stop().await;

    let summary = |function: Function| {
        let get = |tls| runs.get(&(function, tls)).cloned().unwrap_or_default();
        summarise(
            function,
            file_size(&relay_tests::binary_path(function.name())),
            options
                .arm64_built
                .then(|| {
                    file_size(
                        &target
                            .join("lambda")
                            .join(function.name())
                            .join("bootstrap.zip"),
                    )
                })
                .flatten(),
            &get(false),
            &get(true),
            errors.get(&function).cloned().unwrap_or_default(),
        )
    };
    let report = Report {
        machine: machine(),
        date: jiff::Timestamp::now()
            .strftime("%Y-%m-%d %H:%M UTC")
            .to_string(),
        runs: options.runs,
        warm: options.warm,
        bare: summary(Function::Hello),
        functions: options.functions.iter().map(|f| summary(*f)).collect(),
        load,
        notes: vec![
            "init is spawn to the first Runtime API /next poll; invocation times are the \
             Runtime API's, from queuing the event to the function's answer, and include \
             moto's and the sandbox's time (and the counting proxies')."
                .into(),
        ],
    };
    println!("{}", report.markdown());
    for note in &report.notes {
        println!("Note: {note}");
    }
    let json_path = out_dir.join("bench.json");
    let json = serde_json::to_string_pretty(&report).expect("the report serialises");
    if let Err(e) = std::fs::write(&json_path, json + "\n") {
        eprintln!("bench_cold_start: {}: {e}", json_path.display());
        return ExitCode::FAILURE;
    }
    println!("\nWritten to {}", json_path.display());
    let failed = errors.values().map(Vec::len).sum::<usize>();
    let load_ok = report
        .load
        .as_ref()
        .is_none_or(|l| l.errors == 0 && l.mismatches == 0);
    if failed > 0 || !load_ok {
        eprintln!("bench_cold_start: {failed} runs failed; load test clean: {load_ok}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `$CARGO_TARGET_DIR`, or `<repo>/target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
}

fn file_size(path: &std::path::Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// `N cores (nproc), ARCH, CPU model`.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{cores} cores (nproc), {} (uname -m), {cpu}",
        std::env::consts::ARCH
    )
}
