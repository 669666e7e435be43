//! A function's init, before its first poll of the Runtime API: timed phase by phase
//! (one `init phases` log line), and ended by the work the first invocation would
//! otherwise wait for (reading the Twilio secret, opening connections), done in
//! parallel. Lambda runs init at full CPU, outside the first message's time.

use std::future::Future;
use std::time::{Duration, Instant};

/// The longest a prefetch may hold up init; past it, the first invocation does the
/// rest itself.
pub const PREFETCH_LIMIT: Duration = Duration::from_secs(3);

/// Times init's phases; [`InitClock::finish`] logs them.
pub struct InitClock {
    started: Instant,
    last: Instant,
    config: Option<Duration>,
    tls: Option<Duration>,
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
            tls: None,
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

    /// The trust roots have been read and the shared TLS configuration built.
    pub fn tls_configured(&mut self) {
        self.tls = self.lap();
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
            tls_ms = ms(self.tls),
            sdk_config_ms = ms(self.sdk_config),
            clients_ms = ms(self.clients),
            prefetch_ms = ms(self.prefetch),
            init_ms = ms(Some(self.started.elapsed())),
            "init phases"
        );
    }
}

/// Runs one step of a prefetch. A failure is logged, never fatal: the first
/// invocation tries again (and fails, naming the problem, if it persists).
pub async fn prefetch_step<T, E: std::fmt::Display>(
    step: &'static str,
    work: impl Future<Output = Result<T, E>>,
) {
    if let Err(error) = work.await {
        tracing::warn!(step, %error, "prefetch step failed; the first invocation retries it");
    }
}

/// A function's whole `main`: runs `serve` on a current-thread runtime. Lambda hands
/// an environment one event at a time, and at 128 MB a fraction of one vCPU: worker
/// threads would only add wake-ups between threads (futexes) to each message's CPU.
/// Concurrency within an invocation (`join!`) needs no second thread.
pub fn run<Serve, Served>(serve: Serve) -> Result<(), lambda_runtime::Error>
where
    Serve: FnOnce() -> Served,
    Served: Future<Output = Result<(), lambda_runtime::Error>>,
{
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve())
}
