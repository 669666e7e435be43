//! IAM as the least-privilege tests model it: what a function's role grants
//! (`template.yaml`), what the platform needs from that role, and what each AWS call
//! the local AWS recorded needs ([`crate::moto::AwsCall`]), all as [`Permission`]s: an
//! action on a resource named as the template names it.
//!
//! Resources are matched through the template, not by today's names: a call's table,
//! queue, topic or secret is the value of the environment variable the test gave the
//! function for it (`STATE_TABLE`, `ACK_QUEUE_URL`...), and the template says what that
//! variable is bound to for the function (`qdn-dispatcher-state`, `!Ref AckQueue`...);
//! a policy's resource is read from its ARN (`!Sub ...:table/qdn-dispatcher-state`,
//! `!GetAtt AckQueue.Arn`, `!Sub ...:secret:${TwilioSecretId}-??????`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::moto::AwsCall;
use crate::template::{
    Function, Intrinsic, Template, Value, field, intrinsic, literal, one_or_many, path,
};

/// What a permission is about, as the template names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ResourceName {
    /// A resource or parameter the template refers to: `!Ref AlertTopic`, `!GetAtt
    /// AckQueue.Arn`, `${TwilioSecretId}` in a secret's ARN.
    Ref(String),
    /// A name written out: a table's (`qdn-dispatcher-state`), in an ARN or as a
    /// variable's value.
    Named(String),
    /// Any resource: a call that names none (IAM's `*`).
    Any,
    /// What the model cannot name, as it is written (never matches a grant).
    Unresolved(String),
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceName::Ref(id) => write!(f, "{id}"),
            ResourceName::Named(name) => write!(f, "{name}"),
            ResourceName::Any => write!(f, "*"),
            ResourceName::Unresolved(what) => write!(f, "<unresolved: {what}>"),
        }
    }
}

/// An IAM action on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub action: String,
    pub resource: ResourceName,
}

impl Permission {
    pub fn new(action: impl Into<String>, resource: ResourceName) -> Permission {
        Permission {
            action: action.into(),
            resource,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.action, self.resource)
    }
}

/// The resource a policy statement's `Resource` entry names.
pub fn policy_resource(value: &Value) -> ResourceName {
    resource(value, |text| match text {
        "*" => ResourceName::Any,
        text => sub_resource(text),
    })
}

/// The resource an environment variable's value names.
pub fn variable_resource(value: &Value) -> ResourceName {
    resource(value, |name| ResourceName::Named(name.to_owned()))
}

/// The resource an intrinsic function names, or `literal_name`'s reading of a plain string.
fn resource(value: &Value, literal_name: impl Fn(&str) -> ResourceName) -> ResourceName {
    match intrinsic(value) {
        Some(Intrinsic::Ref(id)) | Some(Intrinsic::GetAtt(id, _)) => {
            ResourceName::Ref(id.to_owned())
        }
        Some(Intrinsic::Sub(text)) => sub_resource(text),
        Some(Intrinsic::Other(tag, inner)) => ResourceName::Unresolved(format!("{tag} {inner:?}")),
        None => match literal(value) {
            Some(text) => literal_name(text),
            None => ResourceName::Unresolved(format!("{value:?}")),
        },
    }
}

/// An ARN written with `!Sub`: a DynamoDB table's by its name, anything else by the
/// one template parameter or resource it interpolates (pseudo parameters aside).
fn sub_resource(text: &str) -> ResourceName {
    if let Some((_, table)) = text.rsplit_once(":table/")
        && !table.is_empty()
        && !table.contains(['$', '/', '*'])
    {
        return ResourceName::Named(table.to_owned());
    }
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 2..start + end];
        if !name.starts_with("AWS::") {
            names.push(name);
        }
        rest = &rest[start + end + 1..];
    }
    match names.as_slice() {
        [one] => ResourceName::Ref(one.split('.').next().unwrap_or(one).to_owned()),
        _ => ResourceName::Unresolved(text.to_owned()),
    }
}

/// Everything role `role` allows, or why it cannot be judged (a managed policy, a
/// `Deny`, `NotAction`, a wildcard action).
pub fn role_permissions(template: &Template, role: &str) -> Result<BTreeSet<Permission>, String> {
    let resource = template.resource(role);
    let kind = field(resource, "Type").and_then(literal);
    if kind != Some("AWS::IAM::Role") {
        return Err(format!("{role} is not an AWS::IAM::Role ({kind:?})"));
    }
    let properties = field(resource, "Properties").ok_or(format!("{role} has no Properties"))?;
    if field(properties, "ManagedPolicyArns").is_some() {
        return Err(format!(
            "{role} attaches managed policies: what they grant is not in template.yaml"
        ));
    }
    let mut granted = BTreeSet::new();
    let policies = field(properties, "Policies")
        .map(one_or_many)
        .unwrap_or_default();
    for policy in policies {
        let statements = path(policy, &["PolicyDocument", "Statement"])
            .map(one_or_many)
            .unwrap_or_default();
        for statement in statements {
            let sid = field(statement, "Sid").and_then(literal).unwrap_or("?");
            if field(statement, "Effect").and_then(literal) != Some("Allow") {
                return Err(format!("{role} statement {sid}: only Allow is modelled"));
            }
            if field(statement, "NotAction").is_some() || field(statement, "NotResource").is_some()
            {
                return Err(format!("{role} statement {sid}: NotAction / NotResource"));
            }
            let actions = field(statement, "Action")
                .map(one_or_many)
                .unwrap_or_default();
            let resources: Vec<ResourceName> = field(statement, "Resource")
                .map(one_or_many)
                .unwrap_or_default()
                .into_iter()
                .map(policy_resource)
                .collect();
            for action in actions {
                let action =
                    literal(action).ok_or(format!("{role} statement {sid}: action {action:?}"))?;
                if action.contains('*') {
                    return Err(format!("{role} statement {sid}: wildcard action {action}"));
                }
                for resource in &resources {
                    granted.insert(Permission::new(action, resource.clone()));
                }
            }
        }
    }
    Ok(granted)
}

/// What Lambda itself does with a function's role, whatever its code calls: the log
/// agent writes to the function's log group (`LoggingConfig.LogGroup`), and an SQS
/// event source polls its queue (Lambda's documented execution-role permissions for
/// SQS: ReceiveMessage, DeleteMessage, GetQueueAttributes).
pub fn platform_permissions(function: &Function) -> BTreeSet<Permission> {
    let mut needed = BTreeSet::new();
    if let Some(group) = path(&function.properties, &["LoggingConfig", "LogGroup"]) {
        let group = variable_resource(group);
        for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
            needed.insert(Permission::new(action, group.clone()));
        }
    }
    let events = match field(&function.properties, "Events") {
        Some(Value::Mapping(events)) => events.values().collect(),
        _ => Vec::new(),
    };
    for event in events {
        if field(event, "Type").and_then(literal) != Some("SQS") {
            continue;
        }
        if let Some(queue) = path(event, &["Properties", "Queue"]) {
            let queue = policy_resource(queue);
            for action in [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ] {
                needed.insert(Permission::new(action, queue.clone()));
            }
        }
    }
    needed
}

/// The IAM action a DynamoDB transaction item of `kind` is authorised as: IAM has no
/// `dynamodb:TransactWriteItems` (or `TransactGetItems`) action; each item is checked
/// as the single-item call it stands for.
pub fn transaction_item_action(kind: &str) -> String {
    let action = match kind {
        "Put" => "PutItem",
        "Update" => "UpdateItem",
        "Delete" => "DeleteItem",
        "ConditionCheck" => "ConditionCheckItem",
        "Get" => "GetItem",
        other => return format!("dynamodb:<transaction item {other}>"),
    };
    format!("dynamodb:{action}")
}

/// The IAM actions one recorded call needs, each with the resource the request named.
pub fn required_actions(call: &AwsCall) -> Vec<(String, Option<String>)> {
    let transaction = call.service == "dynamodb"
        && matches!(
            call.operation.as_str(),
            "TransactWriteItems" | "TransactGetItems"
        );
    call.targets
        .iter()
        .map(|target| {
            let action = match (&target.kind, transaction) {
                (Some(kind), true) => transaction_item_action(kind),
                _ => format!("{}:{}", call.service, call.operation),
            };
            (action, target.resource.clone())
        })
        .collect()
}

/// What the recorded calls show, per function.
#[derive(Debug, Default)]
pub struct Observed {
    /// Function binary to the permissions its calls needed.
    pub permissions: BTreeMap<String, BTreeSet<Permission>>,
    /// Every `(service, operation)` any function called.
    pub operations: BTreeSet<(String, String)>,
    /// The IAM actions of every transaction item any function wrote or read.
    pub transaction_items: BTreeSet<String>,
    /// Calls that could not be attributed to a template resource, and why.
    pub problems: Vec<String>,
}

/// Attributes `calls` to `functions` by access key ID ([`crate::function::access_key_id`]
/// of the binary). `variables` maps each concrete resource the tests gave the
/// functions (a table name, queue URL, topic or secret ARN) to the environment
/// variable they gave it in; the function's template environment then names it.
pub fn observe(
    calls: &[AwsCall],
    functions: &[Function],
    variables: &BTreeMap<String, String>,
) -> Observed {
    let mut observed = Observed::default();
    for function in functions {
        observed
            .permissions
            .insert(function.binary.clone(), BTreeSet::new());
    }
    for call in calls {
        let Some(function) = functions
            .iter()
            .find(|f| crate::function::access_key_id(&f.binary) == call.access_key)
        else {
            continue;
        };
        observed
            .operations
            .insert((call.service.clone(), call.operation.clone()));
        let transaction = call.service == "dynamodb" && call.operation.starts_with("Transact");
        for (action, resource) in required_actions(call) {
            if transaction {
                observed.transaction_items.insert(action.clone());
            }
            let resource = match resource {
                None => ResourceName::Any,
                Some(concrete) => match variables.get(&concrete) {
                    None => ResourceName::Unresolved(concrete),
                    Some(variable) => match function.environment.get(variable) {
                        Some(value) => variable_resource(value),
                        None => {
                            observed.problems.push(format!(
                                "{} called {action} on what it was given as {variable}, which \
                                 template.yaml does not set for {}",
                                function.binary, function.logical_id
                            ));
                            ResourceName::Unresolved(format!("{variable} (not in template.yaml)"))
                        }
                    },
                },
            };
            observed
                .permissions
                .get_mut(&function.binary)
                .expect("every function has an entry")
                .insert(Permission::new(action, resource));
        }
    }
    observed
}

/// The permissions in `left` that are not in `right`, one per line.
pub fn missing_from(left: &BTreeSet<Permission>, right: &BTreeSet<Permission>) -> Vec<String> {
    left.difference(right).map(|p| format!("    {p}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn policy_resources_are_named_as_the_template_names_them() {
        let cases = [
            (
                "!Sub arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/qdn-message-log",
                ResourceName::Named("qdn-message-log".into()),
            ),
            (
                "!Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${JwtSecretId}-??????",
                ResourceName::Ref("JwtSecretId".into()),
            ),
            ("!GetAtt AckQueue.Arn", ResourceName::Ref("AckQueue".into())),
            ("!Ref AlertTopic", ResourceName::Ref("AlertTopic".into())),
            ("'*'", ResourceName::Any),
        ];
        for (text, expected) in cases {
            assert_eq!(policy_resource(&yaml(text)), expected, "{text}");
        }
        assert!(matches!(
            policy_resource(&yaml("!Sub arn:aws:s3:::${A}/${B}")),
            ResourceName::Unresolved(_)
        ));
    }

    #[test]
    fn transaction_items_are_authorised_as_their_single_item_actions() {
        let call: AwsCall = serde_json::from_value(serde_json::json!({
            "access_key": "sms-inbound", "service": "dynamodb", "operation": "TransactWriteItems",
            "targets": [
                {"kind": "Update", "resource": "t"}, {"kind": "Put", "resource": "t"},
                {"kind": "ConditionCheck", "resource": "u"}, {"kind": "Delete", "resource": "u"}
            ]
        }))
        .unwrap();
        let actions: Vec<String> = required_actions(&call)
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        assert_eq!(
            actions,
            [
                "dynamodb:UpdateItem",
                "dynamodb:PutItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem"
            ]
        );
        let single: AwsCall = serde_json::from_value(serde_json::json!({
            "access_key": "k", "service": "sns", "operation": "Publish",
            "targets": [{"kind": null, "resource": "arn"}]
        }))
        .unwrap();
        assert_eq!(
            required_actions(&single),
            [("sns:Publish".to_string(), Some("arn".to_string()))]
        );
    }
}
