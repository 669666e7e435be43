//! `template.yaml` as YAML, CloudFormation's short-form tags kept: `!Ref X`, `!GetAtt
//! X.Arn`, `!Sub "..."` come back as [`Intrinsic`]s, so tests can say what a property
//! refers to, not only what text it holds.
//!
//! `serde_norway`'s `as_str`, `get` and indexing look through tags (`!Ref X` reads as
//! the string `X`): [`literal`] is the one that does not.

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// The repository's `template.yaml`.
    pub fn load() -> Template {
        let path = template_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Template::parse(&text)
    }

    pub fn parse(text: &str) -> Template {
        let root: Value = serde_norway::from_str(text)
            .unwrap_or_else(|e| panic!("template.yaml is not YAML: {e}"));
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

fn template_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the repository")
        .join("template.yaml")
}
