//! Runs a built function binary as Lambda would: a child process polling a
//! [`RuntimeApi`], with a Lambda-like environment and its output captured.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::runtime_api::RuntimeApi;

/// Parent variables a function may see; everything else (notably every `AWS_*`) is
/// dropped so the test alone decides the function's configuration.
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "LLVM_PROFILE_FILE",
];

/// The access key ID a function process signs its AWS calls with: its binary's name,
/// so the local AWS (`tests/moto_server.py`, which records every call it serves)
/// attributes each call to the function that made it. The emulator accepts any key.
pub fn access_key_id(function: &str) -> String {
    function.to_owned()
}

/// Where `cargo build` put binary `name`: `$CARGO_TARGET_DIR` (or `<repo>/target`),
/// then `debug/`, or `$QDN_FUNCTION_PROFILE/` (e.g. `release`).
pub fn binary_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    let profile = match std::env::var("QDN_FUNCTION_PROFILE").as_deref() {
        Ok("") | Ok("dev") | Ok("debug") | Err(_) => "debug".to_owned(),
        Ok(other) => other.to_owned(),
    };
    let path = target.join(profile).join(name);
    assert!(
        path.is_file(),
        "function binary {} is missing: run `cargo build -p {name}` first",
        path.display()
    );
    path
}

/// A running function process. Killed when dropped.
pub struct FunctionProcess {
    name: String,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl FunctionProcess {
    /// Starts binary `name` polling `runtime`, with Lambda's standard variables, test
    /// credentials whose access key ID is [`access_key_id`]`(name)`, and `env` on top
    /// (which may override any of them).
    pub fn spawn(name: &str, runtime: &RuntimeApi, env: &[(String, String)]) -> FunctionProcess {
        let mut command = Command::new(binary_path(name));
        command.env_clear();
        for key in INHERITED {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        let lambda_env = [
            ("AWS_LAMBDA_RUNTIME_API", runtime.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", access_key_id(name)),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ];
        command.envs(lambda_env);
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start function {name}: {e}"));

        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let readers = vec![
            capture(name, stdout, Arc::clone(&logs)),
            capture(name, stderr, Arc::clone(&logs)),
        ];
        FunctionProcess {
            name: name.to_owned(),
            child,
            logs,
            readers,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Every line the function wrote so far, stdout and stderr interleaved.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The lines that are JSON objects (the structured log records).
    pub fn json_logs(&self) -> Vec<Value> {
        self.logs()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// The Embedded Metric Format documents (metric lines) written so far.
    pub fn metric_documents(&self) -> Vec<Value> {
        self.json_logs()
            .into_iter()
            .filter(|line| line.get("_aws").is_some())
            .collect()
    }

    /// Waits until an EMF document carrying `metric` has been written, and returns it.
    pub async fn wait_for_metric(&self, metric: &str, timeout: Duration) -> Option<Value> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let found = self
                .metric_documents()
                .into_iter()
                .find(|doc| doc.get(metric).is_some());
            if found.is_some() || tokio::time::Instant::now() >= until {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until this process's output of invocation `request_id` has been read
    /// whole: its last line is the metrics flush tagged with the request ID (stdout is
    /// one stream, read in order). `false` when no such line came by `timeout` (the
    /// invocation ran elsewhere, or never reached the handler).
    pub async fn wait_for_invocation_output(&self, request_id: &str, timeout: Duration) -> bool {
        let tag = format!("\"RequestId\":\"{request_id}\"");
        self.wait_for_log(|l| l.contains("\"_aws\"") && l.contains(&tag), timeout)
            .await
            .is_some()
    }

    /// Waits until a line matching `matches` has been captured (output is read
    /// asynchronously, so it may trail the invocation's response slightly).
    pub async fn wait_for_log(
        &self,
        matches: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(line) = self.logs().into_iter().find(|l| matches(l)) {
                return Some(line);
            }
            if tokio::time::Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The exit status, if the process has already exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("query function process")
    }

    /// Kills the process and waits until it and its output readers are done.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
    }
}

/// Reads `stream` line by line into `logs`, echoing to stderr when
/// `QDN_TEST_ECHO_LOGS` is set.
fn capture(
    name: &str,
    stream: impl AsyncRead + Unpin + Send + 'static,
    logs: Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    let echo = std::env::var_os("QDN_TEST_ECHO_LOGS").is_some();
    let name = name.to_owned();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if echo {
                eprintln!("[{name}] {line}");
            }
            logs.lock().unwrap().push(line);
        }
    })
}

/// Waits until one of `functions` has written the whole output of invocation
/// `request_id` (see [`FunctionProcess::wait_for_invocation_output`]), so that what a
/// test reads of the logs afterwards is complete for it. Gives up quietly after 10 s:
/// a test that needs a line then fails on that line, naming it.
pub async fn settle_invocation(functions: &[FunctionProcess], request_id: &str) {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        for function in functions {
            if function
                .wait_for_invocation_output(request_id, Duration::ZERO)
                .await
            {
                return;
            }
        }
        if tokio::time::Instant::now() >= until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The Lambda request ID a log line carries: a log record's in its first span, an EMF
/// document's in its `RequestId` property.
pub fn request_id_of(line: &Value) -> Option<&str> {
    line["spans"][0]["requestId"]
        .as_str()
        .or_else(|| line["RequestId"].as_str())
}

/// Checks one EMF document's shape: namespace `QDN/SmsRelay`, one dimension set that
/// is `Service` plus `labels`, with their values; `metric` declared and valued.
pub fn assert_metric(doc: &Value, metric: &str, labels: &[(&str, &str)]) {
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "QDN/SmsRelay", "{doc}");
    let mut dimensions = vec!["Service".to_string()];
    dimensions.extend(labels.iter().map(|(name, _)| name.to_string()));
    assert_eq!(
        directive["Dimensions"][0],
        serde_json::json!(dimensions),
        "{doc}"
    );
    assert_eq!(doc["Service"], "qdn-sms-relay", "{doc}");
    for (name, value) in labels {
        assert_eq!(doc[*name], *value, "{doc}");
    }
    let declared = directive["Metrics"]
        .as_array()
        .is_some_and(|metrics| metrics.iter().any(|m| m["Name"] == metric));
    assert!(declared, "{metric} not declared: {doc}");
    assert!(doc[metric].is_number() || doc[metric].is_array(), "{doc}");
    assert!(doc["_aws"]["Timestamp"].is_u64(), "{doc}");
}
