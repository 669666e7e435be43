//! `bench-hello`: the bare Lambda function the benchmark measures beside the relay's
//! functions (`scripts/bench-cold-start.sh`). A `lambda_runtime` handler on tokio that
//! answers every event with `{"statusCode": 200}`: no configuration, no clients, no
//! logging, so its init is the floor every function starts from.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({"statusCode": 200}))
    }))
    .await
}
