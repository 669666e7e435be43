//! The built `qdn` operator CLI, run as ops run it: a cleared environment with only
//! what the test passes, so a developer's AWS configuration never leaks in.

use serde_json::Value;

use crate::{AwsFixture, binary_path};

/// One finished run of `qdn`.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// Exit `status`, with exactly one `qdn: ...` line on stderr and no panic.
    pub fn assert_fails(&self, status: i32) -> &str {
        assert_eq!(self.status, status, "{self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:?}");
        assert!(lines[0].starts_with("qdn: "), "{self:?}");
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("backtrace"),
            "{self:?}"
        );
        lines[0]
    }

    pub fn assert_ok(&self) -> &str {
        assert_eq!(self.status, 0, "{self:?}");
        &self.stdout
    }
}

/// The variables `qdn` reads, for `aws`'s resources and nothing else.
pub fn env_for(aws: &AwsFixture) -> Vec<(String, String)> {
    let nowhere = std::env::temp_dir().join("qdn-cli-tests-no-aws-config");
    let nowhere = nowhere.to_string_lossy().into_owned();
    [
        ("AWS_ENDPOINT_URL", aws.endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", nowhere.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", nowhere.as_str()),
        ("STATE_TABLE", aws.state_table.as_str()),
        ("MESSAGE_TABLE", aws.message_table.as_str()),
        ("TWILIO_SECRET_ID", aws.twilio_secret_id.as_str()),
        ("JWT_SECRET_ID", aws.jwt_secret_id.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Runs the built `qdn` with `args` and exactly `env` (plus `PATH` and `HOME`).
pub async fn qdn_with(env: &[(String, String)], args: &[&str]) -> Run {
    run_qdn(env, args, None).await
}

/// Runs the built `qdn` for `aws` with `args` and `input` on its standard input.
pub async fn qdn_fed(aws: &AwsFixture, args: &[&str], input: &str) -> Run {
    run_qdn(&env_for(aws), args, Some(input)).await
}

async fn run_qdn(env: &[(String, String)], args: &[&str], input: Option<&str>) -> Run {
    use tokio::io::AsyncWriteExt;
    let mut command = tokio::process::Command::new(binary_path("qdn"));
    command.env_clear();
    for name in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v))).args(args);
    let output = match input {
        None => command
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("qdn runs"),
        Some(input) => {
            let mut child = command
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("qdn runs");
            let mut stdin = child.stdin.take().expect("stdin is piped");
            stdin
                .write_all(input.as_bytes())
                .await
                .expect("qdn reads its input");
            drop(stdin);
            child.wait_with_output().await.expect("qdn runs")
        }
    };
    let run = Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    };
    if std::env::var_os("QDN_TEST_ECHO_LOGS").is_some() {
        eprintln!(
            "$ qdn {}\n{}{}[exit {}]",
            args.join(" "),
            run.stdout,
            run.stderr,
            run.status
        );
    }
    run
}

pub async fn qdn(aws: &AwsFixture, args: &[&str]) -> Run {
    qdn_with(&env_for(aws), args).await
}
