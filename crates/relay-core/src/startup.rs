//! A function's init, before its first poll of the Runtime API: timed phase by phase
//! (one `init phases` log line), and ended by the work the first invocation would
//! otherwise wait for (reading the Twilio secret, opening connections), done in
//! parallel. Lambda runs init at full CPU, outside the first message's time.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest a prefetch may hold up init; past it, the first invocation does the
/// rest itself.
pub const PREFETCH_LIMIT: Duration = Duration::from_secs(3);

/// Times init's phases; [`InitClock::finish`] logs them.
pub struct InitClock {
    started: Instant,
    last: Instant,
    config: Option<Duration>,
    sdk_config: Option<Duration>,
    clients: Option<Duration>,
    prefetch: Option<Duration>,
}

impl InitClock {
    pub fn start() -> InitClock {
        let now = Instant::now();
        InitClock {
            started: now,
            last: now,
            config: None,
            sdk_config: None,
            clients: None,
            prefetch: None,
        }
    }

    fn lap(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let lap = now - self.last;
        self.last = now;
        Some(lap)
    }

    /// The function's own configuration has been read.
    pub fn config_read(&mut self) {
        self.config = self.lap();
    }

    /// The AWS SDK's shared configuration (region, credentials) has been loaded.
    pub fn sdk_config_loaded(&mut self) {
        self.sdk_config = self.lap();
    }

    /// The AWS and Twilio clients have been built.
    pub fn clients_built(&mut self) {
        self.clients = self.lap();
    }

    /// Runs `prefetch` (bounded by [`PREFETCH_LIMIT`]) as init's last phase.
    pub async fn prefetch(&mut self, prefetch: impl Future<Output = ()>) {
        if tokio::time::timeout(PREFETCH_LIMIT, prefetch)
            .await
            .is_err()
        {
            tracing::warn!(
                limit_ms = PREFETCH_LIMIT.as_millis() as u64,
                "prefetch cut short; the first invocation finishes it"
            );
        }
        self.prefetch = self.lap();
    }

    /// Logs every phase, in milliseconds.
    pub fn finish(self, function: &'static str) {
        let ms = |phase: Option<Duration>| phase.map(|d| d.as_secs_f64() * 1000.0);
        tracing::info!(
            function,
            config_ms = ms(self.config),
            sdk_config_ms = ms(self.sdk_config),
            clients_ms = ms(self.clients),
            prefetch_ms = ms(self.prefetch),
            init_ms = ms(Some(self.started.elapsed())),
            "init phases"
        );
    }
}

/// Logs a prefetch step that failed: not fatal, the first invocation tries again
/// (and fails, naming the problem, if it persists).
pub fn prefetch_failed(step: &'static str, error: &dyn std::fmt::Display) {
    tracing::warn!(step, %error, "prefetch step failed; the first invocation retries it");
}

/// The system's CA bundle on Lambda's Amazon Linux 2023, then on Debian.
const CA_BUNDLES: [&str; 2] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// Points `SSL_CERT_FILE` at the system's CA bundle when nothing else chose the trust
/// roots (`SSL_CERT_FILE` / `SSL_CERT_DIR` unset): the TLS stacks (the AWS SDK's and
/// reqwest's, both rustls) then read that one file instead of also every file in the
/// certificate directory, hundreds on Debian, most of a function's init. A bundle that
/// does not exist is never named.
///
/// [`run`] calls it before the async runtime starts: it sets an environment variable,
/// which is only sound while the process has one thread.
fn prefer_ca_bundle() {
    let chosen = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    if chosen {
        return;
    }
    if let Some(bundle) = CA_BUNDLES.iter().find(|path| Path::new(path).is_file()) {
        // SAFETY: `run` calls this before building the runtime: no other thread exists
        // to read the environment concurrently.
        unsafe { std::env::set_var("SSL_CERT_FILE", bundle) };
    }
}

/// A function's whole `main`: chooses the CA bundle while the process still has one
/// thread, then runs `serve` on a multi-threaded runtime.
pub fn run<Serve, Served>(serve: Serve) -> Result<(), lambda_runtime::Error>
where
    Serve: FnOnce() -> Served,
    Served: Future<Output = Result<(), lambda_runtime::Error>>,
{
    prefer_ca_bundle();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve())
}
