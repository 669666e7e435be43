//! The layers, as the workspace's dependency graph keeps them (the compiler then
//! enforces every arrow): the domain knows nothing of AWS, HTTP or an async runtime;
//! the use cases know no adapter; adapters know no use case; nothing depends on the
//! Lambda glue but the functions.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Every package's name to the names of its normal (not dev, not build) dependencies.
fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let metadata: Value = relay_tests::sdk_calls::workspace_metadata();
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    relay_tests::sdk_calls::normal_dependencies(&metadata)
        .into_iter()
        .map(|(id, deps)| {
            let deps = deps
                .iter()
                .filter_map(|dep| names.get(dep))
                .map(|n| n.to_string());
            (names[id].to_string(), deps.collect())
        })
        .collect()
}

/// Everything `package` depends on, directly or not.
fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, package: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![package.to_string()];
    while let Some(next) = todo.pop() {
        for dep in graph.get(&next).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

fn forbidden<'a>(deps: &'a BTreeSet<String>, prefixes: &[&str]) -> Vec<&'a String> {
    deps.iter()
        .filter(|dep| {
            prefixes.iter().any(|p| {
                dep.as_str() == *p
                    || dep.starts_with(&format!("{p}-"))
                    || dep.starts_with(&format!("{p}_"))
            })
        })
        .collect()
}

#[test]
fn the_domain_knows_no_aws_sdk_http_or_async_runtime() {
    let graph = dependency_graph();
    let deps = reaches(&graph, "relay-core");
    let found = forbidden(
        &deps,
        &[
            "aws-sdk",
            "aws-config",
            "aws-smithy",
            "tokio",
            "reqwest",
            "hyper",
            "http",
            "lambda",
            "relay",
        ],
    );
    assert!(found.is_empty(), "relay-core depends on {found:?}");
}

#[test]
fn the_use_cases_know_no_adapter_or_lambda() {
    let graph = dependency_graph();
    let deps = reaches(&graph, "relay-app");
    let found = forbidden(
        &deps,
        &[
            "aws-sdk",
            "aws-config",
            "aws-smithy",
            "reqwest",
            "hyper",
            "lambda",
            "relay-aws",
            "relay-lambda",
        ],
    );
    assert!(found.is_empty(), "relay-app depends on {found:?}");
    assert!(deps.contains("relay-core"));
}

#[test]
fn adapters_know_no_use_case_and_only_the_functions_know_the_glue() {
    let graph = dependency_graph();
    let aws = reaches(&graph, "relay-aws");
    assert!(
        !aws.contains("relay-app") && !aws.contains("relay-lambda"),
        "relay-aws depends on {aws:?}"
    );
    for (package, deps) in &graph {
        let is_function = [
            "sms-inbound",
            "sms-outbound",
            "dispatcher-heartbeat",
            "ack-timeout",
        ]
        .contains(&package.as_str());
        if deps.contains("relay-lambda") {
            assert!(is_function, "{package} depends on relay-lambda");
        }
        if is_function {
            assert!(
                deps.contains("relay-lambda"),
                "{package} is not built on relay-lambda"
            );
        }
    }
}
