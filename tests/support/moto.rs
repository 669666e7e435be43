//! The local AWS: one moto server per test process (`tests/moto_server.py`), SDK
//! configuration pointing at it, and per-test resources ([`AwsFixture`]).
//!
//! Set `QDN_AWS_ENDPOINT` to use an already running emulator instead, and
//! `QDN_PYTHON` to pick the interpreter (default `<repo>/.venv/bin/python`).
//!
//! The server records every AWS call it serves: [`recorded_calls`].

mod fixture;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

pub use fixture::{
    ACK_MAX_RECEIVE_COUNT, Alert, AwsFixture, MESSAGE_LISTING_ATTRIBUTES, TEST_ACCOUNT_SID,
    TEST_AUTH_TOKEN, TEST_FROM_NUMBER, TEST_JWT_KEY,
};

const READY_PREFIX: &str = "moto listening on ";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The running server. Kept in a static that is never dropped: the open stdin pipe is
/// what keeps moto alive, and it closes (so moto exits) when this process ends.
struct MotoServer {
    endpoint: String,
    _child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

static SERVER: OnceLock<MotoServer> = OnceLock::new();

/// The AWS endpoint for this test process: `QDN_AWS_ENDPOINT` if set, else a moto
/// server started on first use and shared by every test in the process.
pub async fn endpoint() -> String {
    if let Ok(endpoint) = std::env::var("QDN_AWS_ENDPOINT") {
        return endpoint;
    }
    // Starting blocks (a process and a pipe read); keep it off the async workers.
    let started = tokio::task::spawn_blocking(|| SERVER.get_or_init(start).endpoint.clone()).await;
    started.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// SDK configuration for the emulator: us-east-1, static `testing` credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// One AWS call the emulator served, as IAM would authorise it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct AwsCall {
    /// The access key ID the request was signed with: a function's name
    /// ([`crate::function::access_key_id`]), `testing` for the tests' own clients.
    pub access_key: String,
    /// The SigV4 credential scope's service (`dynamodb`, `sns`, `sqs`, `secretsmanager`).
    pub service: String,
    /// The API operation (`GetItem`, `TransactWriteItems`, `Publish`...).
    pub operation: String,
    /// What the request names: one entry per inner item of a DynamoDB transaction or
    /// batch, else the one table, queue URL, topic ARN or secret ID (if any).
    pub targets: Vec<CallTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct CallTarget {
    /// A transaction item's kind (`Put`, `Update`, `Delete`, `ConditionCheck`, `Get`);
    /// `None` for anything else.
    pub kind: Option<String>,
    pub resource: Option<String>,
}

/// Every call the emulator at `endpoint` has served so far, oldest first. Only
/// `tests/moto_server.py` records them (not an emulator named by `QDN_AWS_ENDPOINT`).
pub async fn recorded_calls(endpoint: &str) -> Vec<AwsCall> {
    let url = format!("{}/_qdn/calls", endpoint.trim_end_matches('/'));
    let response = reqwest::get(&url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        response.status().is_success(),
        "GET {url}: {} (only tests/moto_server.py records calls)",
        response.status()
    );
    response
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not the calls' JSON: {e}"))
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .to_path_buf()
}

fn python() -> PathBuf {
    std::env::var_os("QDN_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

fn start() -> MotoServer {
    let python = python();
    let script = repo_root().join("tests/moto_server.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg("0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start moto with {} ({e}); create the venv: \
                 python3 -m venv .venv && .venv/bin/pip install 'moto[server]', \
                 or set QDN_PYTHON / QDN_AWS_ENDPOINT",
                python.display()
            )
        });
    let stderr = collect_stderr(child.stderr.take().expect("stderr is piped"));

    let (ready_tx, ready_rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix(READY_PREFIX) {
                let _ = ready_tx.send(url.trim().to_owned());
                break;
            }
        }
        // Keep draining so moto never blocks on a full pipe.
        for _ in lines {}
    });

    let endpoint = ready_rx.recv_timeout(START_TIMEOUT).unwrap_or_else(|_| {
        let _ = child.kill();
        thread::sleep(Duration::from_millis(200));
        panic!(
            "moto did not become ready within {START_TIMEOUT:?} (interpreter {}, script {}); \
             its stderr:\n{}",
            python.display(),
            script.display(),
            stderr.lock().unwrap().join("\n")
        )
    });
    let stdin = child.stdin.take().expect("stdin is piped");
    MotoServer {
        endpoint,
        _child: Mutex::new(child),
        _stdin: Mutex::new(stdin),
    }
}

/// Collects moto's stderr (for a startup failure message), echoing it when
/// `QDN_TEST_ECHO_LOGS` is set.
fn collect_stderr(stderr: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let echo = std::env::var_os("QDN_TEST_ECHO_LOGS").is_some();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("[moto] {line}");
            }
            let mut sink = sink.lock().unwrap();
            if sink.len() < 200 {
                sink.push(line);
            }
        }
    });
    lines
}
