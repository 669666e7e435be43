//! The AWS SDK operations the functions' code calls, found in its source: the static
//! half of the least-privilege tests, so that a call no scenario exercises cannot
//! slip past them.
//!
//! Which code: every workspace crate a function binary (named by `template.yaml`)
//! depends on, through normal dependencies, and the binary's own crate, as `cargo
//! metadata` resolves them: however the code is split into crates, nothing else ends
//! up in a function's zip. Test code (`#[cfg(test)]` items and modules, and anything
//! else gated on a `test` cfg) is left out.
//!
//! Which calls: a fluent builder call `.<operation>()` with no arguments, where
//! `<operation>` is one of the SDK crate's operations (the modules of its
//! `operation/`, e.g. `get_item`), in a file that names that SDK crate
//! (`aws_sdk_dynamodb`): a client's operations exist only where its crate is in use,
//! and this keeps lookalikes (`uri.query()`) out. Plus the kinds of items DynamoDB
//! transactions are built from (`TransactWriteItem::builder().put(...)`), which IAM
//! authorises one by one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

/// One AWS SDK crate the functions' code depends on.
#[derive(Debug, Clone)]
pub struct SdkCrate {
    /// The crate as code names it: `aws_sdk_dynamodb`.
    pub ident: String,
    /// Its service's IAM prefix: `dynamodb`.
    pub service: String,
    /// Its operations: fluent method name (`get_item`) to API name (`GetItem`).
    pub operations: BTreeMap<String, String>,
}

/// The functions' code and the SDK crates it uses.
#[derive(Debug, Clone)]
pub struct FunctionCode {
    /// The workspace packages scanned (the binaries' own and their dependencies).
    pub packages: Vec<String>,
    pub files: Vec<PathBuf>,
    pub sdks: Vec<SdkCrate>,
}

/// One SDK call site.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CallSite {
    pub file: PathBuf,
    pub line: usize,
}

/// What the scan found.
#[derive(Debug, Default)]
pub struct SdkUse {
    /// `(service, operation)` to where it is called.
    pub operations: BTreeMap<(String, String), Vec<CallSite>>,
    /// DynamoDB transaction items, as the IAM action each is authorised as, to where.
    pub transaction_items: BTreeMap<String, Vec<CallSite>>,
}

/// The workspace packages building `binaries`, their workspace dependencies, and the
/// AWS SDK crates those use, from `cargo metadata` (offline: the lock file decides).
pub fn function_code(binaries: &[String]) -> FunctionCode {
    let metadata = workspace_metadata();
    let packages: BTreeMap<&str, &Json> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().expect("package id"), p))
        .collect();
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Json::as_str)
        .collect();
    let normal_deps = normal_dependencies(&metadata);

    let builds_binary = |package: &Json| {
        package["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| {
                t["kind"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| k == "bin")
                    && binaries.iter().any(|b| t["name"] == b.as_str())
            })
    };
    let mut queue: Vec<&str> = members
        .iter()
        .copied()
        .filter(|id| builds_binary(packages[id]))
        .collect();
    let found: BTreeSet<&str> = queue
        .iter()
        .flat_map(|id| packages[id]["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["name"].as_str())
        .collect();
    for binary in binaries {
        assert!(
            found.contains(binary.as_str()),
            "no workspace package builds binary {binary} (template.yaml's BuildProperties.Binary)"
        );
    }
    let mut scanned = BTreeSet::new();
    let mut sdk_ids = BTreeSet::new();
    while let Some(id) = queue.pop() {
        if !scanned.insert(id) {
            continue;
        }
        for dep in normal_deps.get(id).into_iter().flatten() {
            if members.contains(dep) {
                queue.push(dep);
            } else if packages[dep]["name"]
                .as_str()
                .is_some_and(|name| name.starts_with("aws-sdk-"))
            {
                sdk_ids.insert(*dep);
            }
        }
    }

    let mut files = BTreeSet::new();
    for id in &scanned {
        for target in packages[id]["targets"].as_array().into_iter().flatten() {
            let shipped = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k == "lib" || k == "bin" || k == "rlib");
            if !shipped {
                continue;
            }
            let root = Path::new(target["src_path"].as_str().expect("src_path"));
            rust_files(
                root.parent().expect("a source root's directory"),
                &mut files,
            );
        }
    }
    let sdks = sdk_ids.iter().map(|id| sdk_crate(packages[id])).collect();
    FunctionCode {
        packages: scanned
            .iter()
            .map(|id| packages[id]["name"].as_str().unwrap_or(id).to_owned())
            .collect(),
        files: files.into_iter().collect(),
        sdks,
    }
}

/// The host's target triple, as `cargo -vV` reports it.
/// Each package ID in `metadata` to the IDs of its normal (not dev, not build)
/// dependencies.
pub fn normal_dependencies(metadata: &Json) -> BTreeMap<&str, Vec<&str>> {
    metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve.nodes (not --no-deps)")
        .iter()
        .map(|node| {
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|kind| kind["kind"].is_null())
                })
                .filter_map(|dep| dep["pkg"].as_str())
                .collect();
            (node["id"].as_str().expect("node id"), deps)
        })
        .collect()
}

/// `cargo metadata` of the workspace: offline (the lock file decides), and only the
/// host's dependencies (other platforms' were never downloaded).
pub fn workspace_metadata() -> Json {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf();
    let host = host_triple(&cargo);
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host])
        .current_dir(&workspace)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo} metadata: {e}"));
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON")
}

fn host_triple(cargo: &str) -> String {
    let output = Command::new(cargo)
        .arg("-vV")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo} -vV: {e}"));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .unwrap_or_else(|| panic!("{cargo} -vV names no host"))
        .trim()
        .to_owned()
}

fn rust_files(dir: &Path, files: &mut BTreeSet<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.insert(path);
        }
    }
}

/// An SDK crate's operations, from its `src/operation/<name>.rs` modules.
fn sdk_crate(package: &Json) -> SdkCrate {
    let name = package["name"].as_str().expect("package name");
    let manifest = Path::new(package["manifest_path"].as_str().expect("manifest_path"));
    let operation_dir = manifest.parent().expect("crate dir").join("src/operation");
    let mut operations = BTreeMap::new();
    let entries = std::fs::read_dir(&operation_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", operation_dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let method = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("module name")
            .to_owned();
        let source = std::fs::read_to_string(&path).unwrap_or_default();
        let api_name = api_name_in(&source).unwrap_or_else(|| pascal_case(&method));
        operations.insert(method, api_name);
    }
    let service = name.trim_start_matches("aws-sdk-");
    SdkCrate {
        ident: name.replace('-', "_"),
        service: iam_prefix(service).to_owned(),
        operations,
    }
}

/// The operation's API name as the generated module writes it (`"rpc.method" =
/// "GetItem"`), which case conversion could get wrong.
fn api_name_in(source: &str) -> Option<String> {
    let start = source.find("\"rpc.method\" = \"")? + "\"rpc.method\" = \"".len();
    let end = source[start..].find('"')?;
    Some(source[start..start + end].to_owned())
}

/// `get_item` to `GetItem`.
pub fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect()
}

/// The IAM prefix of the service an `aws-sdk-<name>` crate calls: the same name for
/// every crate the functions use today; the known exceptions are listed.
fn iam_prefix(crate_service: &str) -> &str {
    match crate_service {
        "cloudwatchlogs" => "logs",
        "eventbridge" => "events",
        "sfn" => "states",
        other => other,
    }
}

/// Scans `code`'s files for calls of `code`'s SDK operations.
pub fn scan(code: &FunctionCode) -> SdkUse {
    let mut found = SdkUse::default();
    // Test-only modules declared out of line (`#[cfg(test)] mod tests;`) are whole files.
    let mut excluded = BTreeSet::new();
    let mut cleaned = Vec::new();
    for file in &code.files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (code_only, test_modules) = strip_test_items(&text);
        for module in test_modules {
            let dir = child_module_dir(file);
            excluded.insert(dir.join(format!("{module}.rs")));
            excluded.insert(dir.join(&module));
        }
        cleaned.push((file, code_only));
    }
    for (file, text) in cleaned {
        if excluded.iter().any(|gone| file.starts_with(gone)) {
            continue;
        }
        scan_source(file, &text, &code.sdks, &mut found);
    }
    found
}

/// Where `file`'s child modules live: beside it for `lib.rs` / `main.rs` / `mod.rs`,
/// else in the directory named after it.
fn child_module_dir(file: &Path) -> PathBuf {
    let dir = file.parent().expect("a file's directory");
    match file.file_stem().and_then(|s| s.to_str()) {
        Some("lib" | "main" | "mod") | None => dir.to_path_buf(),
        Some(stem) => dir.join(stem),
    }
}

/// Adds the SDK calls in one file's code (comments, strings and test items already
/// blanked out) to `found`.
pub fn scan_source(file: &Path, code: &str, sdks: &[SdkCrate], found: &mut SdkUse) {
    let site = |offset: usize| CallSite {
        file: file.to_path_buf(),
        line: code[..offset].matches('\n').count() + 1,
    };
    for sdk in sdks {
        if !mentions_ident(code, &sdk.ident) {
            continue;
        }
        for (offset, method) in method_calls(code) {
            if !method.no_arguments {
                continue;
            }
            if let Some(operation) = sdk.operations.get(method.name) {
                found
                    .operations
                    .entry((sdk.service.clone(), operation.clone()))
                    .or_default()
                    .push(site(offset));
            }
        }
        if sdk.service == "dynamodb" {
            for (offset, kind) in transaction_item_kinds(code) {
                found
                    .transaction_items
                    .entry(kind)
                    .or_default()
                    .push(site(offset));
            }
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn mentions_ident(code: &str, ident: &str) -> bool {
    code.match_indices(ident).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + ident.len()..].chars().next();
        !before.is_some_and(is_ident_char) && !after.is_some_and(is_ident_char)
    })
}

/// A method call: `.name(`, and whether its argument list is empty.
struct MethodCall<'a> {
    name: &'a str,
    no_arguments: bool,
}

/// Every `.name(...)` in `code`, with the offset of its `.`.
fn method_calls(code: &str) -> Vec<(usize, MethodCall<'_>)> {
    let mut calls = Vec::new();
    for (dot, _) in code.match_indices('.') {
        let rest_trimmed = code[dot + 1..].trim_start();
        let name_len = rest_trimmed
            .find(|c: char| !is_ident_char(c))
            .unwrap_or(rest_trimmed.len());
        if name_len == 0 || rest_trimmed.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let name = &rest_trimmed[..name_len];
        let after = rest_trimmed[name_len..].trim_start();
        let Some(arguments) = after.strip_prefix('(') else {
            continue;
        };
        let no_arguments = arguments.trim_start().starts_with(')');
        calls.push((dot, MethodCall { name, no_arguments }));
    }
    calls
}

/// Every `TransactWriteItem::builder().<kind>(` in `code`, as the IAM action the
/// item is authorised as.
fn transaction_item_kinds(code: &str) -> Vec<(usize, String)> {
    let mut kinds = Vec::new();
    let builder = "TransactWriteItem::builder()";
    for (at, _) in code.match_indices(builder) {
        if code[..at].chars().next_back().is_some_and(is_ident_char) {
            continue;
        }
        let rest = code[at + builder.len()..].trim_start();
        let Some(rest) = rest.strip_prefix('.') else {
            continue;
        };
        let rest = rest.trim_start();
        let len = rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len());
        let kind = match &rest[..len] {
            "put" => "Put",
            "update" => "Update",
            "delete" => "Delete",
            "condition_check" => "ConditionCheck",
            _ => continue,
        };
        kinds.push((at, crate::iam::transaction_item_action(kind)));
    }
    kinds
}

/// `source` with every comment, string and character literal replaced by spaces
/// (newlines kept, and one space per character, so positions and lines still hold).
pub fn strip_comments_and_strings(source: &str) -> String {
    strip(source, true)
}

/// `source` with its comments blanked, its literals kept.
fn strip_comments(source: &str) -> String {
    strip(source, false)
}

fn strip(source: &str, literals_too: bool) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let comment = |c: char| if c == '\n' { '\n' } else { ' ' };
    let blank = |c: char| if !literals_too || c == '\n' { c } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(comment(chars[i]));
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(comment(chars[i]));
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&chars, i) {
            // r"...", r#"..."#, br"..." : up to the quote followed by as many #.
            let open = i + 1 + usize::from(chars[i] == 'b') + hashes + 1;
            for &c in &chars[i..open] {
                out.push(blank(c));
            }
            i = open;
            while i < chars.len() {
                let closes = chars[i] == '"'
                    && chars.len() > i + hashes
                    && chars[i + 1..=i + hashes].iter().all(|&h| h == '#');
                if closes {
                    for &c in &chars[i..=i + hashes] {
                        out.push(blank(c));
                    }
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(blank(c));
            i += 1;
            while i < chars.len() {
                match chars[i] {
                    '\\' => {
                        out.push(blank('\\'));
                        if let Some(&escaped) = chars.get(i + 1) {
                            out.push(blank(escaped));
                        }
                        i += 2;
                    }
                    '"' => {
                        out.push(blank('"'));
                        i += 1;
                        break;
                    }
                    other => {
                        out.push(blank(other));
                        i += 1;
                    }
                }
            }
        } else if c == '\'' && char_literal_len(&chars, i).is_some() {
            let len = char_literal_len(&chars, i).unwrap_or(1);
            for &c in &chars[i..i + len] {
                out.push(blank(c));
            }
            i += len;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `i`, a raw string's start (`r"`, `r#"`, `br"`...) not inside an identifier:
/// how many `#` it has.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    if i > 0 && is_ident_char(chars[i - 1]) {
        return None;
    }
    let mut j = i;
    if chars.get(j) == Some(&'b') {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = chars[j..].iter().take_while(|&&c| c == '#').count();
    (chars.get(j + hashes) == Some(&'"')).then_some(hashes)
}

/// At `i` (a `'`), the length of a character literal (`'a'`, `'\n'`, `'\u{1F600}'`),
/// or `None` for a lifetime (`'a`).
fn char_literal_len(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i + 1)? {
        '\\' => {
            let close = chars[i + 2..].iter().take(12).position(|&c| c == '\'')?;
            Some(close + 3)
        }
        _ => (chars.get(i + 2) == Some(&'\'')).then_some(3),
    }
}

/// `source`'s code (comments, strings and character literals blanked) with every item
/// gated on a test cfg blanked too: `test`, or a feature only tests enable (its name
/// says `test`, like `test-util`). Also the names of such modules declared out of
/// line (`#[cfg(test)] mod tests;`), whose files are test code as well.
pub fn strip_test_items(source: &str) -> (String, Vec<String>) {
    // Both keep every character's position: attributes are read with their strings,
    // items are delimited without them (a brace in a string is no block).
    let with_strings: Vec<char> = strip_comments(source).chars().collect();
    let mut out: Vec<char> = strip_comments_and_strings(source).chars().collect();
    let mut modules = Vec::new();
    let mut i = 0;
    while i < out.len() {
        if !starts_with_at(&out, i, "#[cfg(") {
            i += 1;
            continue;
        }
        let Some(attribute_end) = matching(&out, i + 1, '[', ']') else {
            break;
        };
        let predicate: String = with_strings[i + 6..attribute_end].iter().collect();
        let only_for_tests = mentions_ident(&predicate, "test")
            || predicate
                .split('"')
                .skip(1)
                .step_by(2)
                .any(|feature| feature.contains("test"));
        if !only_for_tests {
            i = attribute_end + 1;
            continue;
        }
        // The item: up to its block's end, or its `;` if it has no block.
        let mut j = attribute_end + 1;
        let mut end = out.len();
        while j < out.len() {
            match out[j] {
                '{' => {
                    end = matching(&out, j, '{', '}').map_or(out.len(), |k| k + 1);
                    break;
                }
                ';' => {
                    let item: String = out[attribute_end + 1..j].iter().collect();
                    let words: Vec<&str> = item.split_whitespace().collect();
                    if let Some(at) = words.iter().position(|w| *w == "mod")
                        && let Some(name) = words.get(at + 1)
                    {
                        modules.push((*name).to_owned());
                    }
                    end = j + 1;
                    break;
                }
                _ => j += 1,
            }
        }
        for c in &mut out[i..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = end;
    }
    (out.into_iter().collect(), modules)
}

fn starts_with_at(chars: &[char], at: usize, text: &str) -> bool {
    text.chars()
        .enumerate()
        .all(|(k, c)| chars.get(at + k) == Some(&c))
}

/// The index of the bracket closing the one at `open`.
fn matching(chars: &[char], open: usize, left: char, right: char) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &c) in chars.iter().enumerate().skip(open) {
        if c == left {
            depth += 1;
        } else if c == right {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dynamodb() -> SdkCrate {
        SdkCrate {
            ident: "aws_sdk_dynamodb".into(),
            service: "dynamodb".into(),
            operations: [
                ("get_item", "GetItem"),
                ("query", "Query"),
                ("put_item", "PutItem"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect(),
        }
    }

    fn found_in(source: &str) -> SdkUse {
        let (code, _) = strip_test_items(source);
        let mut found = SdkUse::default();
        scan_source(Path::new("x.rs"), &code, &[dynamodb()], &mut found);
        found
    }

    #[test]
    fn fluent_calls_are_found_and_comments_strings_tests_and_lookalikes_are_not() {
        let source = r##"
            use aws_sdk_dynamodb::Client;
            fn a(c: &Client) { c
                .get_item()
                .send(); }
            fn helper(&self) { self.get_item(key) } // .put_item()
            /* c.put_item() */ const S: &str = ".put_item()"; const R: &str = r#".put_item()"#;
            fn uri(u: &Uri) { let _ = u.query(); let c = 'x'; let l: &'static str = ""; }
            #[cfg(test)]
            mod tests { fn t(c: &Client) { c.put_item().send(); } }
        "##;
        let found = found_in(source);
        let operations: Vec<_> = found.operations.keys().map(|(_, op)| op.as_str()).collect();
        // `query` is a DynamoDB operation, and `u.query()` looks like one: a file that
        // uses the SDK is taken at its word.
        assert_eq!(operations, ["GetItem", "Query"]);
        assert_eq!(
            found.operations[&("dynamodb".into(), "GetItem".into())][0].line,
            4
        );
    }

    #[test]
    fn a_file_that_does_not_name_the_sdk_calls_none_of_its_operations() {
        let found = found_in("fn uri(u: &Uri) { let _ = u.query(); }");
        assert!(found.operations.is_empty());
    }

    #[test]
    fn transaction_items_are_found_by_kind() {
        let found = found_in(
            "use aws_sdk_dynamodb::types::TransactWriteItem; fn t() { \
             TransactWriteItem::builder().update(u).build(); \
             TransactWriteItem::builder()\n  .condition_check(c).build(); }",
        );
        let kinds: Vec<_> = found.transaction_items.keys().map(String::as_str).collect();
        assert_eq!(
            kinds,
            ["dynamodb:ConditionCheckItem", "dynamodb:UpdateItem"]
        );
    }

    #[test]
    fn out_of_line_test_modules_are_named() {
        let (_, modules) =
            strip_test_items("#[cfg(test)]\nmod tests;\n#[cfg(feature = \"x\")]\nmod y;");
        assert_eq!(modules, ["tests"]);
        let (_, modules) = strip_test_items("#[cfg(feature = \"test-util\")]\npub mod memory;");
        assert_eq!(modules, ["memory"]);
    }

    #[test]
    fn snake_case_operations_become_api_names() {
        assert_eq!(pascal_case("transact_write_items"), "TransactWriteItems");
        assert_eq!(pascal_case("get_secret_value"), "GetSecretValue");
    }
}
