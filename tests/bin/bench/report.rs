//! What the runs add up to: a summary per function and TLS mode, printed as Markdown
//! tables (one per function, the bare function beside it) and written as JSON.

use std::collections::HashMap;

use serde::Serialize;

use crate::bench::load::LoadSummary;
use crate::bench::proxy::{Connection, Service};
use crate::bench::scenario::{Function, Run, Timed};
use crate::bench::stats::{mb, median, mib, ms, percentile, round1, round2};
use crate::bench::steps::{count, describe, round_trips};

/// Budgets of issue 10 the report measures against (never asserted).
pub const INIT_RATIO_BUDGET: f64 = 2.0;
pub const ZIP_BUDGET_BYTES: u64 = 4_000_000;
pub const ROUND_TRIP_BUDGET: f64 = 3.0;
/// CPU per message of `sms-inbound` and `sms-outbound`, warm, against the bare
/// function's CPU per invocation in the same run: at 128 MB CPU is the wait.
pub const CPU_RATIO_BUDGET: f64 = 2.5;

/// A count over invocations: its median and range.
#[derive(Clone, Debug, Serialize)]
pub struct Count {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Count {
    fn of(values: impl IntoIterator<Item = usize>) -> Option<Count> {
        let values: Vec<f64> = values.into_iter().map(|v| v as f64).collect();
        Some(Count {
            median: median(&values)?,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    fn show(&self) -> String {
        if self.min == self.max {
            format!("{}", self.median)
        } else {
            format!("{} ({}–{})", self.median, self.min, self.max)
        }
    }
}

/// Requests of one kind of invocation (init, first or warm), over all runs.
#[derive(Clone, Debug, Serialize)]
pub struct Calls {
    pub aws: Count,
    pub twilio: Count,
    pub connections: Count,
    pub round_trips: Count,
    /// The most frequent step list, and in how many of the invocations it was seen.
    pub steps: String,
    pub steps_seen: usize,
    pub invocations: usize,
    /// TLS handshakes' median duration at the proxy, where there were any.
    pub tls_handshake_ms: Option<f64>,
    /// Handshakes that failed (a client that did not trust the CA).
    pub failed_handshakes: usize,
    /// Each operation's median time at the proxy (request in to answer out), in the
    /// order first seen: mostly the emulator's own time.
    pub operation_ms: Vec<(String, f64)>,
}

impl Calls {
    fn of<'a>(invocations: impl IntoIterator<Item = &'a Timed>) -> Option<Calls> {
        let invocations: Vec<&Timed> = invocations.into_iter().collect();
        let step_lists: Vec<String> = invocations
            .iter()
            .map(|t| describe(&round_trips(&t.exchanges)))
            .collect();
        let (steps, steps_seen) = most_frequent(&step_lists)?;
        let handshakes: Vec<f64> = invocations
            .iter()
            .flat_map(|t| &t.connections)
            .filter_map(|c| c.handshake.map(ms))
            .collect();
        Some(Calls {
            aws: Count::of(
                invocations
                    .iter()
                    .map(|t| count(&t.exchanges, Service::Aws)),
            )?,
            twilio: Count::of(
                invocations
                    .iter()
                    .map(|t| count(&t.exchanges, Service::Twilio)),
            )?,
            connections: Count::of(invocations.iter().map(|t| t.connections.len()))?,
            round_trips: Count::of(invocations.iter().map(|t| round_trips(&t.exchanges).len()))?,
            steps,
            steps_seen,
            invocations: invocations.len(),
            tls_handshake_ms: median(&handshakes).map(round2),
            failed_handshakes: invocations
                .iter()
                .flat_map(|t| &t.connections)
                .filter(|c| c.failed.is_some())
                .count(),
            operation_ms: operation_medians(&invocations),
        })
    }
}

fn operation_medians(invocations: &[&Timed]) -> Vec<(String, f64)> {
    let mut names: Vec<String> = Vec::new();
    let mut times: HashMap<String, Vec<f64>> = HashMap::new();
    for exchange in invocations.iter().flat_map(|t| &t.exchanges) {
        if !names.contains(&exchange.operation) {
            names.push(exchange.operation.clone());
        }
        times
            .entry(exchange.operation.clone())
            .or_default()
            .push(ms(exchange.end - exchange.start));
    }
    names
        .into_iter()
        .map(|name| {
            let median = median(&times[&name]).unwrap_or(f64::NAN);
            (name, round2(median))
        })
        .collect()
}

/// One function in one TLS mode, over all its runs.
#[derive(Clone, Debug, Serialize)]
pub struct ModeSummary {
    pub tls: bool,
    pub runs: usize,
    pub init_ms_median: f64,
    pub init_ms_min: f64,
    pub init_ms_max: f64,
    /// Each run's init and first invocation, in run order.
    pub init_ms_samples: Vec<f64>,
    pub first_ms_samples: Vec<f64>,
    pub first_ms_median: f64,
    /// Init without its last phase, the prefetch (the network waits the issue asks to
    /// be done in init, which the bare function has none of), per run: what the init
    /// budget is judged on. Equal to init for a function without a prefetch.
    pub init_before_prefetch_ms_median: f64,
    /// Init plus the first invocation, per run: what the message that woke the
    /// function waited for, so work moved between the two shows as no gain.
    pub cold_message_ms_median: f64,
    pub warm_ms_p50: f64,
    pub warm_ms_p99: f64,
    pub warm_invocations: usize,
    pub peak_rss_mib_median: Option<f64>,
    /// The TLS handshake of each process's first connection (median over the runs),
    /// and of all its later ones: the first pays for one-time TLS setup in the process.
    pub first_handshake_ms: Option<f64>,
    pub other_handshakes_ms: Option<f64>,
    /// Median per phase of the `"init phases"` line; `None` when no run wrote one.
    pub init_phases_ms: Option<Vec<(String, f64)>>,
    /// User + system CPU from spawn to the first poll, median over the runs.
    pub init_cpu_ms_median: Option<f64>,
    /// CPU (user + system) of every warm invocation of every run, divided by their
    /// number.
    pub warm_cpu_ms_per_invocation: Option<f64>,
    pub init_calls: Calls,
    pub first_calls: Calls,
    pub warm_calls: Option<Calls>,
}

impl ModeSummary {
    pub fn of(tls: bool, runs: &[Run]) -> Option<ModeSummary> {
        let init: Vec<f64> = runs.iter().map(|r| ms(r.init)).collect();
        let first: Vec<f64> = runs.iter().map(|r| ms(r.first.took)).collect();
        let before_prefetch: Vec<f64> = runs
            .iter()
            .map(|r| ms(r.init) - prefetch_ms(r).unwrap_or(0.0))
            .collect();
        let cold_message: Vec<f64> = init.iter().zip(&first).map(|(i, f)| i + f).collect();
        let warm: Vec<f64> = runs
            .iter()
            .flat_map(|r| &r.warm)
            .map(|t| ms(t.took))
            .collect();
        let rss: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.peak_rss_kib)
            .map(|kib| kib as f64 / 1024.0)
            .collect();
        let (mut firsts, mut others) = (Vec::new(), Vec::new());
        for run in runs {
            let mut connections: Vec<&Connection> = run
                .init_connections
                .iter()
                .chain(&run.first.connections)
                .chain(run.warm.iter().flat_map(|t| &t.connections))
                .collect();
            connections.sort_by_key(|c| c.accepted);
            let mut handshakes = connections.iter().filter_map(|c| c.handshake.map(ms));
            firsts.extend(handshakes.next());
            others.extend(handshakes);
        }
        let init_cpu: Vec<f64> = runs.iter().filter_map(|r| r.init_cpu).map(ms).collect();
        let measured: Vec<&Run> = runs.iter().filter(|r| r.warm_cpu.is_some()).collect();
        let warm_cpu_total: f64 = measured.iter().filter_map(|r| r.warm_cpu).map(ms).sum();
        let warm_measured: usize = measured.iter().map(|r| r.warm.len()).sum();
        let init_as_timed: Vec<Timed> = runs
            .iter()
            .map(|r| Timed {
                took: r.init,
                exchanges: r.init_exchanges.clone(),
                connections: r.init_connections.clone(),
            })
            .collect();
        Some(ModeSummary {
            tls,
            runs: runs.len(),
            init_ms_median: round2(median(&init)?),
            init_ms_min: round2(init.iter().copied().fold(f64::INFINITY, f64::min)),
            init_ms_max: round2(init.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
            init_ms_samples: init.iter().copied().map(round2).collect(),
            first_ms_samples: first.iter().copied().map(round2).collect(),
            first_ms_median: round2(median(&first)?),
            init_before_prefetch_ms_median: round2(median(&before_prefetch)?),
            cold_message_ms_median: round2(median(&cold_message)?),
            warm_ms_p50: round2(percentile(&warm, 50.0).unwrap_or(f64::NAN)),
            warm_ms_p99: round2(percentile(&warm, 99.0).unwrap_or(f64::NAN)),
            warm_invocations: warm.len(),
            peak_rss_mib_median: median(&rss).map(round1),
            first_handshake_ms: median(&firsts).map(round2),
            other_handshakes_ms: median(&others).map(round2),
            init_phases_ms: phase_medians(runs),
            init_cpu_ms_median: median(&init_cpu).map(round2),
            warm_cpu_ms_per_invocation: (warm_measured > 0)
                .then(|| round2(warm_cpu_total / warm_measured as f64)),
            init_calls: Calls::of(&init_as_timed)?,
            first_calls: Calls::of(runs.iter().map(|r| &r.first))?,
            warm_calls: Calls::of(runs.iter().flat_map(|r| &r.warm)),
        })
    }
}

/// The run's `prefetch_ms` init phase, if it logged one.
fn prefetch_ms(run: &Run) -> Option<f64> {
    run.init_phases
        .as_ref()?
        .iter()
        .find(|(name, _)| name == "prefetch_ms")
        .map(|(_, value)| *value)
}

/// Each phase's median over the runs that logged it, in the order first seen.
fn phase_medians(runs: &[Run]) -> Option<Vec<(String, f64)>> {
    let mut names: Vec<String> = Vec::new();
    let mut values: HashMap<String, Vec<f64>> = HashMap::new();
    for phases in runs.iter().filter_map(|r| r.init_phases.as_ref()) {
        for (name, value) in phases {
            if !names.contains(name) {
                names.push(name.clone());
            }
            values.entry(name.clone()).or_default().push(*value);
        }
    }
    if names.is_empty() {
        return None;
    }
    Some(
        names
            .into_iter()
            .map(|name| {
                let median = median(&values[&name]).unwrap_or(f64::NAN);
                (name, round2(median))
            })
            .collect(),
    )
}

fn most_frequent(values: &[String]) -> Option<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for value in values {
        match counts.iter_mut().find(|(v, _)| v == value) {
            Some((_, n)) => *n += 1,
            None => counts.push((value.clone(), 1)),
        }
    }
    // The first seen wins a tie.
    counts.into_iter().rev().max_by_key(|(_, n)| *n)
}

/// One function: its sizes and a summary per TLS mode.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionSummary {
    pub function: String,
    pub invocation: String,
    pub binary_bytes_x86_64: Option<u64>,
    /// `bootstrap.zip` as `cargo lambda build --release --arm64 --output-format zip`
    /// makes it; `None` when it was not built.
    pub zip_bytes_arm64: Option<u64>,
    pub plain: Option<ModeSummary>,
    pub tls: Option<ModeSummary>,
    /// Runs that failed, with why.
    pub errors: Vec<String>,
}

impl FunctionSummary {
    fn mode(&self, tls: bool) -> Option<&ModeSummary> {
        if tls {
            self.tls.as_ref()
        } else {
            self.plain.as_ref()
        }
    }

    fn modes(&self) -> Vec<&ModeSummary> {
        [&self.plain, &self.tls]
            .into_iter()
            .filter_map(Option::as_ref)
            .collect()
    }
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub machine: String,
    pub date: String,
    pub runs: usize,
    pub warm: usize,
    pub bare: FunctionSummary,
    pub functions: Vec<FunctionSummary>,
    pub load: Option<LoadSummary>,
    pub notes: Vec<String>,
}

impl Report {
    /// The Markdown docs/benchmark.md quotes: the machine, one table per function, the load.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Machine: {}; {}. Per function and TLS mode: {} cold starts, each followed by \
             {} warm invocations.\n",
            self.machine, self.date, self.runs, self.warm,
        );
        for function in &self.functions {
            out += "\n";
            out += &self.function_table(function);
        }
        if let Some(load) = &self.load {
            out += "\n";
            out += &load.markdown();
        }
        out
    }

    /// The table of one function: a column per TLS mode for it and for the bare
    /// function, a row per measure, then its step lists.
    fn function_table(&self, f: &FunctionSummary) -> String {
        let bare = &self.bare;
        let tls_modes: Vec<bool> = bare.modes().iter().map(|m| m.tls).collect();
        let mut rows: Vec<Vec<String>> = Vec::new();
        // One cell per mode for `s`, made by `cell` ("failed" where no run succeeded).
        let cells = |s: &FunctionSummary, cell: &dyn Fn(&ModeSummary) -> String| {
            tls_modes
                .iter()
                .map(|tls| s.mode(*tls).map_or("failed".to_owned(), cell))
                .collect::<Vec<_>>()
        };
        let mut row = |measure: &str,
                       cell: &dyn Fn(&FunctionSummary, &ModeSummary) -> String,
                       bare_cell: Option<&dyn Fn(&ModeSummary) -> String>,
                       budget: String| {
            let mut cols = vec![measure.to_owned()];
            cols.extend(cells(f, &|m| cell(f, m)));
            match bare_cell {
                Some(bare_cell) => cols.extend(cells(bare, bare_cell)),
                None => cols.extend(cells(bare, &|m| cell(bare, m))),
            }
            cols.push(budget);
            rows.push(cols);
        };

        let init = |_: &FunctionSummary, m: &ModeSummary| {
            format!("{} ({}–{})", m.init_ms_median, m.init_ms_min, m.init_ms_max)
        };
        row("init ms, median (min–max)", &init, None, String::new());
        let ratio = |m: &ModeSummary| {
            bare.mode(m.tls)
                .map(|b| m.init_ms_median / b.init_ms_median)
        };
        let has_prefetch = f
            .modes()
            .iter()
            .any(|m| m.init_before_prefetch_ms_median < m.init_ms_median);
        row(
            "init ÷ bare init",
            &|_, m| ratio(m).map_or("n/a".into(), |r| format!("{r:.2}×")),
            Some(&|_| "1×".into()),
            if has_prefetch {
                "prefetch included".into()
            } else {
                String::new()
            },
        );
        row(
            "init before the prefetch ms, median",
            &|_, m| m.init_before_prefetch_ms_median.to_string(),
            Some(&|m| m.init_ms_median.to_string()),
            String::new(),
        );
        let own_ratio = |m: &ModeSummary| {
            bare.mode(m.tls)
                .map(|b| m.init_before_prefetch_ms_median / b.init_ms_median)
        };
        let over = f
            .modes()
            .iter()
            .filter_map(|m| own_ratio(m))
            .any(|r| r > INIT_RATIO_BUDGET);
        row(
            "init before the prefetch ÷ bare init",
            &|_, m| own_ratio(m).map_or("n/a".into(), |r| format!("{r:.2}×")),
            Some(&|_| "1×".into()),
            format!(
                "≤ {INIT_RATIO_BUDGET}×: {}",
                if over { "over" } else { "within" }
            ),
        );
        let mut phases: Vec<String> = Vec::new();
        for (name, _) in f
            .modes()
            .iter()
            .filter_map(|m| m.init_phases_ms.as_ref())
            .flatten()
        {
            if !phases.contains(name) {
                phases.push(name.clone());
            }
        }
        if phases.is_empty() {
            row(
                "init phases ms, median",
                &|_, _| "n/a".into(),
                Some(&|_| "n/a".into()),
                String::new(),
            );
        }
        for phase in &phases {
            row(
                &format!("init phase `{phase}`, median"),
                &|_, m| {
                    m.init_phases_ms
                        .as_ref()
                        .and_then(|p| p.iter().find(|(n, _)| n == phase))
                        .map_or("n/a".into(), |(_, v)| v.to_string())
                },
                Some(&|_| "n/a".into()),
                String::new(),
            );
        }
        row(
            "first invocation ms, median",
            &|_, m| m.first_ms_median.to_string(),
            None,
            String::new(),
        );
        row(
            "init + first invocation ms, median",
            &|_, m| m.cold_message_ms_median.to_string(),
            None,
            String::new(),
        );
        row(
            "warm invocation ms, p50 / p99",
            &|_, m| format!("{} / {}", m.warm_ms_p50, m.warm_ms_p99),
            None,
            String::new(),
        );
        row(
            "init CPU ms (user + system), median",
            &|_, m| opt(m.init_cpu_ms_median),
            None,
            "prefetch included".into(),
        );
        row(
            "CPU per warm invocation ms (user + system)",
            &|_, m| opt(m.warm_cpu_ms_per_invocation),
            None,
            String::new(),
        );
        let cpu_ratio = |m: &ModeSummary| {
            let bare = bare.mode(m.tls)?.warm_cpu_ms_per_invocation?;
            Some(m.warm_cpu_ms_per_invocation? / bare)
        };
        let cpu_budgeted = matches!(f.function.as_str(), "sms-inbound" | "sms-outbound");
        let cpu_over = f
            .modes()
            .iter()
            .filter_map(|m| cpu_ratio(m))
            .any(|r| r > CPU_RATIO_BUDGET);
        row(
            "CPU per warm invocation ÷ bare's",
            &|_, m| cpu_ratio(m).map_or("n/a".into(), |r| format!("{r:.2}×")),
            Some(&|_| "1×".into()),
            if cpu_budgeted {
                format!(
                    "≤ {CPU_RATIO_BUDGET}×: {}",
                    if cpu_over { "over" } else { "within" }
                )
            } else {
                String::new()
            },
        );
        row(
            "peak RSS MiB, median",
            &|_, m| opt(m.peak_rss_mib_median),
            None,
            String::new(),
        );
        let zip_verdict = match f.zip_bytes_arm64 {
            Some(b) if b <= ZIP_BUDGET_BYTES => ": within",
            Some(_) => ": over",
            None => "",
        };
        row(
            "zip MB (10⁶ bytes), arm64",
            &|s, _| {
                s.zip_bytes_arm64
                    .map_or("not built".into(), |b| format!("{:.2}", mb(b)))
            },
            None,
            format!("≤ {} MB{zip_verdict}", ZIP_BUDGET_BYTES / 1_000_000),
        );
        row(
            "binary MiB, x86_64 release",
            &|s, _| {
                s.binary_bytes_x86_64
                    .map_or("n/a".into(), |b| format!("{:.1}", mib(b)))
            },
            None,
            String::new(),
        );
        let calls = |pick: fn(&Calls) -> String| {
            move |_: &FunctionSummary, m: &ModeSummary| {
                let warm = m.warm_calls.as_ref().map_or("n/a".into(), pick);
                format!(
                    "{} · {} · {}",
                    pick(&m.init_calls),
                    pick(&m.first_calls),
                    warm
                )
            }
        };
        row(
            "AWS calls: init · first · warm",
            &calls(|c| c.aws.show()),
            None,
            String::new(),
        );
        row(
            "Twilio calls: init · first · warm",
            &calls(|c| c.twilio.show()),
            None,
            String::new(),
        );
        row(
            "connections opened: init · first · warm",
            &calls(|c| c.connections.show()),
            None,
            String::new(),
        );
        if tls_modes.contains(&true) {
            row(
                "TLS handshake ms at the proxy, median: the process's first · the others",
                &|_, m| {
                    if m.tls {
                        let failed = m.init_calls.failed_handshakes
                            + m.first_calls.failed_handshakes
                            + m.warm_calls.as_ref().map_or(0, |c| c.failed_handshakes);
                        let failed = match failed {
                            0 => String::new(),
                            n => format!(" ({n} failed)"),
                        };
                        format!(
                            "{} · {}{failed}",
                            opt(m.first_handshake_ms),
                            opt(m.other_handshakes_ms)
                        )
                    } else {
                        "–".into()
                    }
                },
                None,
                String::new(),
            );
        }
        let budgeted = matches!(f.function.as_str(), "sms-inbound" | "sms-outbound");
        // The median: a request sent together with another can reach the proxy only
        // after the other was answered (it had to open a connection, or its task ran
        // late), and then counts as a step of its own.
        let worst_warm_trips = f
            .modes()
            .iter()
            .filter_map(|m| m.warm_calls.as_ref())
            .map(|c| c.round_trips.median)
            .fold(0.0, f64::max);
        row(
            "sequential round trips: init · first · warm",
            &calls(|c| c.round_trips.show()),
            None,
            if budgeted {
                let verdict = if worst_warm_trips <= ROUND_TRIP_BUDGET {
                    "within"
                } else {
                    "over"
                };
                format!("≤ {ROUND_TRIP_BUDGET} per message (warm, median): {verdict}")
            } else {
                String::new()
            },
        );

        let mode_name = |tls: &bool| if *tls { "TLS" } else { "no TLS" };
        let mut header = vec!["measure".to_owned()];
        for name in [&f.function, &bare.function] {
            header.extend(
                tls_modes
                    .iter()
                    .map(|tls| format!("`{name}` {}", mode_name(tls))),
            );
        }
        header.push("budget".into());
        let mut out = format!(
            "#### `{}`\n\nEach invocation: {}.\n\n",
            f.function, f.invocation
        );
        out += &format!("| {} |\n", header.join(" | "));
        out += &format!("|{}\n", " --- |".repeat(header.len()));
        for cols in rows {
            out += &format!("| {} |\n", cols.join(" | "));
        }
        // The step lists: the same requests go out with or without TLS.
        if let Some(m) = f.plain.as_ref().or(f.tls.as_ref()) {
            out += &format!(
                "\nSequential steps ({}; the most frequent list, and how often it was seen):\n",
                if m.tls { "TLS" } else { "no TLS" }
            );
            for (label, calls) in [
                ("init", Some(&m.init_calls)),
                ("first invocation", Some(&m.first_calls)),
                ("warm invocation", m.warm_calls.as_ref()),
            ] {
                if let Some(c) = calls {
                    out += &format!(
                        "- {label}: `{}` ({} of {})\n",
                        c.steps, c.steps_seen, c.invocations
                    );
                }
            }
            if let Some(c) = m.warm_calls.as_ref().filter(|c| !c.operation_ms.is_empty()) {
                let times: Vec<String> = c
                    .operation_ms
                    .iter()
                    .map(|(name, ms)| format!("{name} {ms}"))
                    .collect();
                out += &format!(
                    "\nEach operation's median time at the proxy, warm, ms (mostly the \
                     emulator's): {}.\n",
                    times.join(", ")
                );
            }
        }
        for error in &f.errors {
            out += &format!("\nfailed run: {}\n", error.lines().next().unwrap_or(""));
        }
        out
    }
}

fn opt(value: Option<f64>) -> String {
    value.map_or("n/a".into(), |v| v.to_string())
}

/// A function's summary from its runs per mode.
pub fn summarise(
    function: Function,
    binary_bytes: Option<u64>,
    zip_bytes: Option<u64>,
    plain: &[Run],
    tls: &[Run],
    errors: Vec<String>,
) -> FunctionSummary {
    FunctionSummary {
        function: function.name().to_owned(),
        invocation: function.invocation().to_owned(),
        binary_bytes_x86_64: binary_bytes,
        zip_bytes_arm64: zip_bytes,
        plain: ModeSummary::of(false, plain),
        tls: ModeSummary::of(true, tls),
        errors,
    }
}
