//! The benchmark's command line.

use crate::bench::scenario::Function;

pub const USAGE: &str = "usage: bench_cold_start [--runs N] [--warm N] [--function NAME]... \
[--tls | --no-tls] [--load N] [--load-round N] [--instances K] [--concurrency C] [--no-arm64]
  --runs N         cold starts per function and TLS mode (default 10, or QDN_BENCH_RUNS)
  --warm N         warm invocations after each first one (default 50)
  --function NAME  sms-inbound, sms-outbound, dispatcher-heartbeat or ack-timeout; repeat
                   for several (default all four; the bare bench-hello is always measured)
  --tls            only with TLS in front of moto and the sandbox
  --no-tls         only without TLS (default: both)
  --load N         inbound texts for the load test (default 2000; 0 skips it)
  --load-round N   texts per round of the load test, each on fresh tables (default 250)
  --instances K    sms-inbound processes polling one Runtime API under load (default 4)
  --concurrency C  invocations in flight under load (default 16)
  --no-arm64       the arm64 zips were not built this time: say \"not built\"";

/// Which TLS modes to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsModes {
    Both,
    PlainOnly,
    TlsOnly,
}

impl TlsModes {
    /// `false` (plain HTTP) and/or `true` (TLS), in that order.
    pub fn modes(self) -> Vec<bool> {
        match self {
            TlsModes::Both => vec![false, true],
            TlsModes::PlainOnly => vec![false],
            TlsModes::TlsOnly => vec![true],
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub runs: usize,
    pub warm: usize,
    pub functions: Vec<Function>,
    pub tls: TlsModes,
    pub load: usize,
    pub load_round: usize,
    pub instances: usize,
    pub concurrency: usize,
    pub arm64_built: bool,
}

impl Options {
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            runs: match std::env::var("QDN_BENCH_RUNS") {
                Ok(n) => positive("QDN_BENCH_RUNS", &n)?,
                Err(_) => 10,
            },
            warm: 50,
            functions: Vec::new(),
            tls: TlsModes::Both,
            load: 2000,
            load_round: 250,
            instances: 4,
            concurrency: 16,
            arm64_built: true,
        };
        let mut args = args.into_iter();
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
                "--runs" => options.runs = positive(&flag, &value()?)?,
                "--warm" => options.warm = positive(&flag, &value()?)?,
                "--function" => options.functions.push(Function::parse(&value()?)?),
                "--tls" => options.tls = TlsModes::TlsOnly,
                "--no-tls" => options.tls = TlsModes::PlainOnly,
                "--load" => options.load = number(&flag, &value()?)?,
                "--load-round" => options.load_round = positive(&flag, &value()?)?,
                "--instances" => options.instances = positive(&flag, &value()?)?,
                "--concurrency" => options.concurrency = positive(&flag, &value()?)?,
                "--no-arm64" => options.arm64_built = false,
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        if options.functions.is_empty() {
            options.functions = Function::RELAY.to_vec();
        }
        options.functions.dedup();
        Ok(options)
    }
}

fn number(flag: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} must be a number, not {value:?}"))
}

fn positive(flag: &str, value: &str) -> Result<usize, String> {
    match number(flag, value)? {
        0 => Err(format!("{flag} must be positive")),
        n => Ok(n),
    }
}
