//! `template.yaml` as YAML, CloudFormation's short-form tags kept: `!Ref X`, `!GetAtt
//! X.Arn`, `!Sub "..."` come back as [`Intrinsic`]s, so tests can say what a property
//! refers to, not only what text it holds.
//!
//! `serde_norway`'s `as_str`, `get` and indexing look through tags (`!Ref X` reads as
//! the string `X`): [`literal`] is the one that does not.
//!
//! [`Template::load`] is the template as a deploy with every parameter at its default
//! makes it (what tests/iam.rs measures): its `Conditions` evaluated, each `Fn::If`
//! replaced by the branch they choose, `AWS::NoValue` left out, resources and outputs
//! whose condition is false gone. [`Template::load_with`] is the same for other
//! parameter values, [`Template::as_written`] the file itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

pub use serde_norway::Value;
pub use serde_norway::value::Tag;

/// The repository's `template.yaml`, parsed.
pub struct Template {
    root: Value,
}

/// A CloudFormation intrinsic function in short form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intrinsic<'a> {
    /// `!Ref name`: a parameter, a resource or a pseudo parameter.
    Ref(&'a str),
    /// `!GetAtt resource.attribute` (or the list form).
    GetAtt(&'a str, &'a str),
    /// `!Sub "text"` (or the list form's text).
    Sub(&'a str),
    /// Any other tag (`!If`, `!Equals`, ...), or one of those in another form.
    Other(&'a Tag, &'a Value),
}

/// The value's intrinsic function, if it is one.
pub fn intrinsic(value: &Value) -> Option<Intrinsic<'_>> {
    let Value::Tagged(tagged) = value else {
        return None;
    };
    let (tag, inner) = (&tagged.tag, &tagged.value);
    let other = Intrinsic::Other(tag, inner);
    Some(if *tag == "Ref" {
        match inner {
            Value::String(name) => Intrinsic::Ref(name),
            _ => other,
        }
    } else if *tag == "GetAtt" {
        match inner {
            Value::String(path) => match path.split_once('.') {
                Some((resource, attribute)) => Intrinsic::GetAtt(resource, attribute),
                None => Intrinsic::GetAtt(path, ""),
            },
            Value::Sequence(parts) => match parts.as_slice() {
                [resource, attribute] => match (literal(resource), literal(attribute)) {
                    (Some(resource), Some(attribute)) => Intrinsic::GetAtt(resource, attribute),
                    _ => other,
                },
                _ => other,
            },
            _ => other,
        }
    } else if *tag == "Sub" {
        match inner {
            Value::String(text) => Intrinsic::Sub(text),
            // The list form: the text, then its variables.
            Value::Sequence(parts) => match parts.first().and_then(literal) {
                Some(text) => Intrinsic::Sub(text),
                None => other,
            },
            _ => other,
        }
    } else {
        other
    })
}

/// The string itself when the value is a plain (untagged) string.
pub fn literal(value: &Value) -> Option<&str> {
    match value {
        Value::String(text) => Some(text),
        _ => None,
    }
}

/// A value that is one item or a list of items, as a list (IAM's `Action` and
/// `Resource`, an alarm's `AlarmActions`...).
pub fn one_or_many(value: &Value) -> Vec<&Value> {
    match value {
        Value::Sequence(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Every resource or parameter `value` refers to (`!Ref`, `!GetAtt`), at any depth,
/// `!If` branches included.
pub fn references(value: &Value) -> Vec<&str> {
    match (intrinsic(value), value) {
        (Some(Intrinsic::Ref(id)), _) | (Some(Intrinsic::GetAtt(id, _)), _) => vec![id],
        (Some(_), Value::Tagged(tagged)) => references(&tagged.value),
        (_, Value::Sequence(items)) => items.iter().flat_map(references).collect(),
        (_, Value::Mapping(map)) => map.values().flat_map(references).collect(),
        _ => Vec::new(),
    }
}

/// A mapping's `key` entry, without looking through a tag on `value` itself.
pub fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Mapping(map) => map.get(key),
        _ => None,
    }
}

/// A path of mapping keys, e.g. `path(resource, &["Properties", "Environment"])`.
pub fn path<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(value, |value, key| field(value, key))
}

/// One `AWS::Serverless::Function`, as the tests need it.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the workspace binary SAM builds for it.
    pub binary: String,
    /// The logical ID of its role (`Role: !GetAtt <role>.Arn`).
    pub role: String,
    /// `Globals.Function.Environment.Variables` with its own on top.
    pub environment: BTreeMap<String, Value>,
    pub properties: Value,
}

impl Template {
    /// The repository's `template.yaml` as deployed with every parameter's default.
    pub fn load() -> Template {
        Template::load_with(&[])
    }

    /// The repository's `template.yaml` as deployed with `parameters` (name, value),
    /// every other parameter at its default.
    pub fn load_with(parameters: &[(&str, &str)]) -> Template {
        Template::as_written().resolved(parameters)
    }

    /// The repository's `template.yaml` as written: conditions and `Fn::If` kept.
    pub fn as_written() -> Template {
        let path = template_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Template::parse(&text)
    }

    /// `text` as written.
    pub fn parse(text: &str) -> Template {
        let root: Value = serde_norway::from_str(text)
            .unwrap_or_else(|e| panic!("template.yaml is not YAML: {e}"));
        Template { root }
    }

    /// Every parameter's value: `parameters` (name, value) over the defaults, as the
    /// strings CloudFormation compares (`30`, `true`). Panics on a name the template
    /// does not declare, and on a parameter with neither.
    pub fn parameter_values(&self, parameters: &[(&str, &str)]) -> BTreeMap<String, String> {
        let declared = match field(&self.root, "Parameters") {
            Some(Value::Mapping(declared)) => declared.clone(),
            _ => Default::default(),
        };
        for (name, _) in parameters {
            assert!(
                declared.contains_key(*name),
                "template.yaml declares no parameter {name}"
            );
        }
        declared
            .iter()
            .map(|(name, parameter)| {
                let name = literal(name).expect("parameter names are strings");
                let value = match parameters.iter().find(|(given, _)| *given == name) {
                    Some((_, value)) => (*value).to_owned(),
                    None => field(parameter, "Default")
                        .and_then(scalar)
                        .unwrap_or_else(|| panic!("parameter {name} has no Default: give it")),
                };
                (name.to_owned(), value)
            })
            .collect()
    }

    /// Whether condition `name` holds with `parameters` over the defaults.
    pub fn condition(&self, name: &str, parameters: &[(&str, &str)]) -> bool {
        Conditions::new(&self.root, self.parameter_values(parameters)).holds(name)
    }

    /// This template as deployed with `parameters` over the defaults (see the module's
    /// documentation). The `Conditions` section and each resource's `Condition` key stay,
    /// so what is conditional can still be seen.
    pub fn resolved(&self, parameters: &[(&str, &str)]) -> Template {
        let conditions = Conditions::new(&self.root, self.parameter_values(parameters));
        let mut root = self.root.clone();
        if let Value::Mapping(sections) = &mut root {
            for section in ["Resources", "Outputs"] {
                if let Some(Value::Mapping(entries)) = sections.get_mut(section) {
                    entries.retain(
                        |_, entry| match field(entry, "Condition").and_then(literal) {
                            Some(condition) => conditions.holds(condition),
                            None => true,
                        },
                    );
                }
            }
            for (key, value) in sections.iter_mut() {
                // Conditions are what decides, not what is decided.
                if literal(key) != Some("Conditions") {
                    *value = conditions
                        .resolve(value)
                        .unwrap_or_else(|| panic!("a whole section {key:?} is AWS::NoValue"));
                }
            }
        }
        Template { root }
    }

    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Every resource, `(logical ID, resource)`, in template order.
    pub fn resources(&self) -> Vec<(&str, &Value)> {
        let Some(Value::Mapping(resources)) = field(&self.root, "Resources") else {
            panic!("template.yaml has no Resources mapping");
        };
        resources
            .iter()
            .map(|(id, resource)| {
                let id = literal(id).unwrap_or_else(|| panic!("resource ID {id:?}"));
                (id, resource)
            })
            .collect()
    }

    /// The resources of CloudFormation type `kind`.
    pub fn resources_of_type(&self, kind: &str) -> Vec<(&str, &Value)> {
        self.resources()
            .into_iter()
            .filter(|(_, resource)| field(resource, "Type").and_then(literal) == Some(kind))
            .collect()
    }

    /// The resource `id`; panics naming it when there is none.
    pub fn resource(&self, id: &str) -> &Value {
        self.resources()
            .into_iter()
            .find(|(found, _)| *found == id)
            .map(|(_, resource)| resource)
            .unwrap_or_else(|| panic!("template.yaml has no resource {id}"))
    }

    /// The parameter `name`, if declared.
    pub fn parameter(&self, name: &str) -> Option<&Value> {
        path(&self.root, &["Parameters", name])
    }

    /// Every `AWS::Serverless::Function`.
    pub fn functions(&self) -> Vec<Function> {
        let globals = path(
            &self.root,
            &["Globals", "Function", "Environment", "Variables"],
        );
        self.resources_of_type("AWS::Serverless::Function")
            .into_iter()
            .map(|(id, resource)| {
                let properties = field(resource, "Properties")
                    .unwrap_or_else(|| panic!("{id} has no Properties"))
                    .clone();
                let binary = path(resource, &["Metadata", "BuildProperties", "Binary"])
                    .and_then(literal)
                    .unwrap_or_else(|| panic!("{id} names no Metadata.BuildProperties.Binary"))
                    .to_owned();
                let role = match field(&properties, "Role").and_then(intrinsic) {
                    Some(Intrinsic::GetAtt(role, "Arn")) => role.to_owned(),
                    other => panic!("{id}'s Role is not !GetAtt <role>.Arn: {other:?}"),
                };
                let mut environment = BTreeMap::new();
                let own = path(&properties, &["Environment", "Variables"]);
                for variables in [globals, own].into_iter().flatten() {
                    if let Value::Mapping(variables) = variables {
                        for (name, value) in variables {
                            let name = literal(name).expect("variable names are strings");
                            environment.insert(name.to_owned(), value.clone());
                        }
                    }
                }
                Function {
                    logical_id: id.to_owned(),
                    binary,
                    role,
                    environment,
                    properties,
                }
            })
            .collect()
    }
}

/// An intrinsic function in either form: `!If [...]` or `{"Fn::If": [...]}` gives
/// `("If", [...])`; `!Ref X` or `{"Ref": X}` gives `("Ref", X)`, and so for
/// `Condition`.
fn function(value: &Value) -> Option<(&str, &Value)> {
    match value {
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            Some((
                ["If", "Equals", "Not", "And", "Or", "Ref", "Condition"]
                    .into_iter()
                    .find(|known| *known == name)?,
                &tagged.value,
            ))
        }
        Value::Mapping(map) if map.len() == 1 => {
            let (key, inner) = map.iter().next()?;
            let key = literal(key)?;
            let name = match key {
                "Ref" | "Condition" => key,
                _ => key.strip_prefix("Fn::")?,
            };
            Some((name, inner))
        }
        _ => None,
    }
}

/// A scalar as the string CloudFormation compares: `30`, `true`, the text itself.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// The template's `Conditions`, evaluated against parameter values: `Fn::Equals`,
/// `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`, and `Ref` of a parameter (or of a
/// pseudo parameter given as one, e.g. `("AWS::Region", "us-east-1")`).
struct Conditions<'a> {
    declared: Option<&'a Value>,
    parameters: BTreeMap<String, String>,
}

impl<'a> Conditions<'a> {
    fn new(root: &'a Value, parameters: BTreeMap<String, String>) -> Conditions<'a> {
        Conditions {
            declared: field(root, "Conditions"),
            parameters,
        }
    }

    fn holds(&self, name: &str) -> bool {
        let expression = self
            .declared
            .and_then(|declared| field(declared, name))
            .unwrap_or_else(|| panic!("template.yaml declares no condition {name}"));
        self.evaluate(expression)
    }

    fn arguments<'v>(what: &str, arguments: &'v Value, count: Option<usize>) -> Vec<&'v Value> {
        let Value::Sequence(items) = arguments else {
            panic!("Fn::{what} takes a list: {arguments:?}");
        };
        if let Some(count) = count {
            assert_eq!(items.len(), count, "Fn::{what}: {arguments:?}");
        }
        items.iter().collect()
    }

    fn evaluate(&self, expression: &Value) -> bool {
        match function(expression) {
            Some(("Condition", name)) => {
                self.holds(literal(name).expect("a condition's name is a string"))
            }
            Some(("Not", arguments)) => {
                !self.evaluate(Self::arguments("Not", arguments, Some(1))[0])
            }
            Some(("And", arguments)) => Self::arguments("And", arguments, None)
                .into_iter()
                .all(|a| self.evaluate(a)),
            Some(("Or", arguments)) => Self::arguments("Or", arguments, None)
                .into_iter()
                .any(|a| self.evaluate(a)),
            Some(("Equals", arguments)) => {
                let pair = Self::arguments("Equals", arguments, Some(2));
                self.value(pair[0]) == self.value(pair[1])
            }
            _ => panic!("not a condition this evaluator knows: {expression:?}"),
        }
    }

    /// A value compared by `Fn::Equals`.
    fn value(&self, value: &Value) -> String {
        match function(value) {
            Some(("Ref", name)) => {
                let name = literal(name).expect("!Ref names a string");
                self.parameters
                    .get(name)
                    .unwrap_or_else(|| panic!("!Ref {name} in a condition: no such parameter"))
                    .clone()
            }
            _ => scalar(value).unwrap_or_else(|| panic!("cannot compare {value:?}")),
        }
    }

    /// `value` with each `Fn::If` replaced by its chosen branch, at any depth, and
    /// `!Ref AWS::NoValue` left out of mappings and lists; `None` when it is itself
    /// `AWS::NoValue`.
    fn resolve(&self, value: &Value) -> Option<Value> {
        match function(value) {
            Some(("If", arguments)) => {
                let branches = Self::arguments("If", arguments, Some(3));
                let condition = literal(branches[0]).expect("Fn::If names its condition");
                let chosen = if self.holds(condition) {
                    branches[1]
                } else {
                    branches[2]
                };
                return self.resolve(chosen);
            }
            Some(("Ref", name)) if literal(name) == Some("AWS::NoValue") => return None,
            _ => {}
        }
        Some(match value {
            Value::Tagged(tagged) => Value::Tagged(Box::new(serde_norway::value::TaggedValue {
                tag: tagged.tag.clone(),
                value: self.resolve(&tagged.value).unwrap_or(Value::Null),
            })),
            Value::Sequence(items) => {
                Value::Sequence(items.iter().filter_map(|item| self.resolve(item)).collect())
            }
            Value::Mapping(map) => Value::Mapping(
                map.iter()
                    .filter_map(|(key, value)| Some((key.clone(), self.resolve(value)?)))
                    .collect(),
            ),
            other => other.clone(),
        })
    }
}

/// Whether CloudFormation's `AllowedPattern` `pattern` accepts each of `values` (the
/// whole value must match), read by a real regular-expression engine: Python's `re`
/// (the interpreter the tests use for moto: `QDN_PYTHON`, else `.venv/bin/python`),
/// which reads the patterns this template uses as CloudFormation's Java engine does.
pub fn allowed_pattern_accepts(pattern: &str, values: &[&str]) -> Vec<bool> {
    let python = std::env::var_os("QDN_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    let script = "import json, re, sys\n\
                  pattern, values = json.loads(sys.argv[1]), json.loads(sys.argv[2])\n\
                  print(json.dumps([re.fullmatch(pattern, v) is not None for v in values]))";
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(serde_json::to_string(pattern).expect("JSON"))
        .arg(serde_json::to_string(values).expect("JSON"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): scripts/python-env.sh creates it, or set QDN_PYTHON",
                python.display()
            )
        });
    assert!(
        output.status.success(),
        "{} could not read the pattern {pattern:?}: {}",
        python.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON list of booleans")
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .to_path_buf()
}

fn template_path() -> PathBuf {
    repo_root().join("template.yaml")
}
