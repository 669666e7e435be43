//! `template.yaml` keeps what operators rely on and cannot see from outside until it
//! is gone: the alarms on refused Twilio traffic and on throttled functions, the API's
//! access log (JSON, never a body), Twilio's routes throttled apart from the outbound
//! route, and acknowledgement as a deploy choice (`AckTimeoutSecs=off`: no timers, and
//! no right to arm them). Read as YAML, CloudFormation's tags kept, and deployed with
//! given parameter values (`relay_tests::template`).

use std::collections::BTreeSet;

use relay_tests::iam::{Permission, ResourceName, role_permissions};
use relay_tests::template::{
    Function, Intrinsic, Template, Value, allowed_pattern_accepts, field, intrinsic, literal,
    one_or_many, path, references,
};

/// The contract's Twilio routes: the messaging webhook and the status callback.
const TWILIO_ROUTES: [&str; 2] = ["/api/v1/sms/inbound", "/api/v1/sms/status"];

/// The one REST API: `(logical ID, its Properties)`.
fn api(template: &Template) -> (&str, &Value) {
    let apis = template.resources_of_type("AWS::Serverless::Api");
    assert_eq!(apis.len(), 1, "one REST API");
    let (id, api) = apis[0];
    (id, field(api, "Properties").expect("the API's Properties"))
}

/// The API's name and stage, as its metrics' `ApiName` and `Stage` dimensions.
fn api_name_and_stage(template: &Template) -> (String, String) {
    let (_, properties) = api(template);
    let text = |key| {
        field(properties, key)
            .and_then(literal)
            .unwrap_or_else(|| panic!("the API's {key} is not written out"))
            .to_owned()
    };
    (text("Name"), text("StageName"))
}

/// The logical ID of the topic every alarm notifies.
fn alert_topic(template: &Template) -> String {
    let topics = template.resources_of_type("AWS::SNS::Topic");
    assert_eq!(topics.len(), 1, "one alert topic");
    topics[0].0.to_owned()
}

fn alarms(template: &Template) -> Vec<(&str, &Value)> {
    template
        .resources_of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, alarm)| {
            (
                id,
                field(alarm, "Properties").expect("an alarm's Properties"),
            )
        })
        .collect()
}

/// An alarm's dimensions as `(name, value)`, values as written (`!Ref X` as `!Ref X`).
fn dimensions(alarm: &Value) -> BTreeSet<(String, String)> {
    field(alarm, "Dimensions")
        .map(one_or_many)
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let name = field(d, "Name").and_then(literal).unwrap_or("?").to_owned();
            let value = field(d, "Value").expect("a dimension's Value");
            let value = match (literal(value), intrinsic(value)) {
                (Some(text), _) => text.to_owned(),
                (None, Some(Intrinsic::Ref(id))) => format!("!Ref {id}"),
                (None, other) => format!("{other:?}"),
            };
            (name, value)
        })
        .collect()
}

fn metric_is(alarm: &Value, namespace: &str, metric: &str) -> bool {
    field(alarm, "Namespace").and_then(literal) == Some(namespace)
        && field(alarm, "MetricName").and_then(literal) == Some(metric)
}

/// The alarm fires on any datapoint above zero and notifies `topic` both ways.
fn assert_alarms_on_any_and_notifies(id: &str, alarm: &Value, topic: &str) {
    assert_eq!(
        field(alarm, "ComparisonOperator").and_then(literal),
        Some("GreaterThanThreshold"),
        "{id}"
    );
    assert_eq!(
        field(alarm, "Threshold").and_then(Value::as_f64),
        Some(0.0),
        "{id}"
    );
    for actions in ["AlarmActions", "OKActions"] {
        let notifies = field(alarm, actions)
            .map(one_or_many)
            .unwrap_or_default()
            .into_iter()
            .any(|a| intrinsic(a) == Some(Intrinsic::Ref(topic)));
        assert!(notifies, "{id}'s {actions} do not include !Ref {topic}");
    }
}

/// A resource path as a stage's `MethodSettings` writes it: every `/` as `~1`, after
/// a `/` of its own (`/~1api~1v1~1sms~1inbound`).
fn method_settings_path(route: &str) -> String {
    format!("/{}", route.replace('/', "~1"))
}

/// The API's `MethodSettings` entry for `POST route`.
fn method_setting<'a>(properties: &'a Value, route: &str) -> Option<&'a Value> {
    let wanted = method_settings_path(route);
    field(properties, "MethodSettings")
        .map(one_or_many)
        .unwrap_or_default()
        .into_iter()
        .find(|s| {
            field(s, "ResourcePath").and_then(literal) == Some(wanted.as_str())
                && field(s, "HttpMethod").and_then(literal) == Some("POST")
        })
}

fn parameter_ref<'a>(setting: &'a Value, key: &str) -> Option<&'a str> {
    match field(setting, key).and_then(intrinsic) {
        Some(Intrinsic::Ref(parameter)) => Some(parameter),
        _ => None,
    }
}

#[test]
fn the_twilio_routes_are_the_inbound_functions_post_events() {
    let template = Template::load();
    let (api_id, _) = api(&template);
    let mut routes = BTreeSet::new();
    for function in template.functions() {
        let events = match field(&function.properties, "Events") {
            Some(Value::Mapping(events)) => events.values().cloned().collect(),
            _ => Vec::new(),
        };
        for event in events {
            if field(&event, "Type").and_then(literal) != Some("Api") {
                continue;
            }
            let properties = field(&event, "Properties").expect("an Api event's Properties");
            assert_eq!(
                field(properties, "RestApiId").and_then(intrinsic),
                Some(Intrinsic::Ref(api_id))
            );
            let route = field(properties, "Path").and_then(literal).unwrap_or("?");
            let method = field(properties, "Method").and_then(literal).unwrap_or("?");
            routes.insert((function.binary.clone(), method.to_owned(), route.to_owned()));
        }
    }
    for route in TWILIO_ROUTES {
        let served = (
            "sms-inbound".to_owned(),
            "post".to_owned(),
            route.to_owned(),
        );
        assert!(
            routes.contains(&served),
            "{route} is not sms-inbound's: {routes:?}"
        );
    }
}

#[test]
fn each_twilio_route_has_a_4xx_alarm_on_its_own_detailed_metrics() {
    let template = Template::load();
    let (_, properties) = api(&template);
    let (api_name, stage) = api_name_and_stage(&template);
    let topic = alert_topic(&template);
    for route in TWILIO_ROUTES {
        let setting = method_setting(properties, route)
            .unwrap_or_else(|| panic!("no MethodSettings entry for POST {route}"));
        assert_eq!(
            field(setting, "MetricsEnabled").and_then(Value::as_bool),
            Some(true),
            "POST {route}: per-method metrics are what the alarm watches"
        );
        let wanted: BTreeSet<(String, String)> = [
            ("ApiName", api_name.as_str()),
            ("Method", "POST"),
            ("Resource", route),
            ("Stage", stage.as_str()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        let matching: Vec<_> = alarms(&template)
            .into_iter()
            .filter(|(_, alarm)| {
                metric_is(alarm, "AWS/ApiGateway", "4XXError") && dimensions(alarm) == wanted
            })
            .collect();
        assert_eq!(matching.len(), 1, "one 4XXError alarm on POST {route}");
        let (id, alarm) = matching[0];
        assert_alarms_on_any_and_notifies(id, alarm, &topic);
        // Quiet nights have no requests: that must neither clear nor raise it.
        assert_eq!(
            field(alarm, "TreatMissingData").and_then(literal),
            Some("ignore"),
            "{id}"
        );
        assert_eq!(
            field(alarm, "Statistic").and_then(literal),
            Some("Sum"),
            "{id}"
        );
    }
}

#[test]
fn every_function_has_a_throttles_alarm() {
    let template = Template::load();
    let topic = alert_topic(&template);
    for function in template.functions() {
        let wanted: BTreeSet<(String, String)> = [(
            "FunctionName".to_owned(),
            format!("!Ref {}", function.logical_id),
        )]
        .into();
        let matching: Vec<_> = alarms(&template)
            .into_iter()
            .filter(|(_, alarm)| {
                metric_is(alarm, "AWS/Lambda", "Throttles") && dimensions(alarm) == wanted
            })
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "one Throttles alarm on {}",
            function.logical_id
        );
        let (id, alarm) = matching[0];
        assert_alarms_on_any_and_notifies(id, alarm, &topic);
    }
}

#[test]
fn the_access_log_is_json_with_status_route_and_request_id_and_never_a_body() {
    let template = Template::load();
    let (_, properties) = api(&template);
    let setting = field(properties, "AccessLogSetting").expect("the API has an access log");
    let format = field(setting, "Format")
        .and_then(literal)
        .expect("the access log's Format is written out");
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(format)
        .unwrap_or_else(|e| panic!("the access log format is not one JSON object ({e}): {format}"));
    let values: BTreeSet<&str> = fields.values().filter_map(|v| v.as_str()).collect();
    for wanted in [
        "$context.requestId",
        "$context.status",
        "$context.httpMethod",
        "$context.resourcePath",
        "$context.identity.sourceIp",
        "$context.responseLatency",
        "$context.error.responseType",
    ] {
        assert!(values.contains(wanted), "no {wanted} in {format}");
    }
    // Twilio's form carries the driver's number and text: no body, headers or query.
    let lower = format.to_lowercase();
    for never in [
        "$input",
        "body",
        "$context.requestoverride",
        "header",
        "querystring",
    ] {
        assert!(
            !lower.contains(never),
            "the access log has {never:?}: {format}"
        );
    }
    // Its own log group, kept as long as the functions' logs, deleted with the stack.
    let group = match field(setting, "DestinationArn").and_then(intrinsic) {
        Some(Intrinsic::GetAtt(group, "Arn")) => group,
        other => panic!("DestinationArn is not a log group's !GetAtt ...Arn: {other:?}"),
    };
    let group = template.resource(group);
    assert_eq!(
        field(group, "Type").and_then(literal),
        Some("AWS::Logs::LogGroup")
    );
    assert_eq!(
        path(group, &["Properties", "RetentionInDays"]).and_then(intrinsic),
        Some(Intrinsic::Ref("LogRetentionDays"))
    );
    assert_eq!(
        field(group, "DeletionPolicy").and_then(literal),
        Some("Delete")
    );
}

#[test]
fn access_logging_can_set_the_accounts_api_gateway_role_first() {
    let template = Template::load();
    let accounts = template.resources_of_type("AWS::ApiGateway::Account");
    assert_eq!(accounts.len(), 1, "the account-level logging role setting");
    let (account_id, account) = accounts[0];
    // Optional (one setting per account and region), and kept when the stack goes.
    let condition = field(account, "Condition")
        .and_then(literal)
        .expect("conditional");
    assert!(
        template.root()["Conditions"].get(condition).is_some(),
        "{condition}"
    );
    assert_eq!(
        field(account, "DeletionPolicy").and_then(literal),
        Some("Retain")
    );
    // The access log group (so the stage) is created after it, when it is created.
    let (_, properties) = api(&template);
    let group = match path(properties, &["AccessLogSetting", "DestinationArn"]).and_then(intrinsic)
    {
        Some(Intrinsic::GetAtt(group, _)) => group,
        other => panic!("{other:?}"),
    };
    let refers = field(template.resource(group), "Metadata")
        .map(references)
        .unwrap_or_default();
    assert!(
        refers.contains(&account_id),
        "{group} does not refer to {account_id} (it refers to {refers:?})"
    );
}

#[test]
fn the_twilio_routes_are_throttled_apart_from_the_outbound_route() {
    let template = Template::load();
    let (_, properties) = api(&template);
    let default = field(properties, "MethodSettings")
        .map(one_or_many)
        .unwrap_or_default()
        .into_iter()
        .find(|s| field(s, "ResourcePath").and_then(literal) == Some("/*"))
        .expect("stage-wide limits (/*/*) for the outbound route");
    let outbound = (
        parameter_ref(default, "ThrottlingRateLimit").expect("outbound rate is a parameter"),
        parameter_ref(default, "ThrottlingBurstLimit").expect("outbound burst is a parameter"),
    );
    for route in TWILIO_ROUTES {
        let setting = method_setting(properties, route)
            .unwrap_or_else(|| panic!("no MethodSettings entry for POST {route}"));
        let own = (
            parameter_ref(setting, "ThrottlingRateLimit").expect("rate is a parameter"),
            parameter_ref(setting, "ThrottlingBurstLimit").expect("burst is a parameter"),
        );
        assert!(
            own.0 != outbound.0 && own.1 != outbound.1,
            "POST {route} is throttled with the outbound route's parameters {outbound:?}"
        );
        for parameter in [own.0, own.1] {
            assert!(template.parameter(parameter).is_some(), "{parameter}");
        }
    }
}

#[test]
fn samconfig_lists_every_template_parameter_in_each_environment() {
    let template = Template::load();
    let Some(Value::Mapping(parameters)) = field(template.root(), "Parameters") else {
        panic!("template.yaml has no Parameters");
    };
    let declared: BTreeSet<&str> = parameters.keys().filter_map(literal).collect();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../samconfig.toml"))
        .expect("samconfig.toml");
    let config: toml_edit::DocumentMut = text.parse().expect("samconfig.toml is TOML");
    let environments = config.as_table();
    let mut checked = 0;
    for (environment, sections) in environments.iter() {
        let Some(overrides) = sections
            .get("deploy")
            .and_then(|deploy| deploy.get("parameters"))
            .and_then(|parameters| parameters.get("parameter_overrides"))
            .and_then(|overrides| overrides.as_array())
        else {
            continue;
        };
        checked += 1;
        let listed: BTreeSet<&str> = overrides
            .iter()
            .filter_map(|o| o.as_str())
            .filter_map(|o| o.split_once('=').map(|(name, _)| name))
            .collect();
        assert_eq!(
            listed, declared,
            "samconfig.toml [{environment}.deploy.parameters] parameter_overrides \
             (--parameter-overrides replaces the whole list)"
        );
    }
    assert!(checked >= 2, "the default and secondary environments");
}

/// The function built from `binary`.
fn function_of(template: &Template, binary: &str) -> Function {
    template
        .functions()
        .into_iter()
        .find(|f| f.binary == binary)
        .unwrap_or_else(|| panic!("template.yaml has no function built from {binary}"))
}

/// What `binary`'s role allows, as tests/iam.rs reads it.
fn grants(template: &Template, binary: &str) -> BTreeSet<Permission> {
    let function = function_of(template, binary);
    role_permissions(template, &function.role).unwrap_or_else(|e| panic!("{e}"))
}

fn grant(action: &str, resource: &str) -> Permission {
    Permission::new(action, ResourceName::Ref(resource.to_owned()))
}

fn refers_to<'a>(function: &'a Function, variable: &str) -> Option<Intrinsic<'a>> {
    function.environment.get(variable).and_then(intrinsic)
}

#[test]
fn the_condition_evaluator_reads_both_forms_and_every_function_the_template_uses() {
    let template = Template::parse(
        r#"
Parameters:
  Mode: {Type: String, Default: "a"}
  Count: {Type: Number, Default: 3}
Conditions:
  IsA: !Equals [!Ref Mode, "a"]
  NotA: !Not [!Condition IsA]
  Three: {"Fn::Equals": [{"Ref": Count}, "3"]}
  Both: !And [!Condition IsA, !Condition Three]
  Either: !Or [!Condition NotA, {"Condition": Three}]
Resources:
  Always:
    Type: X
    Properties:
      Short: !If [IsA, yes, no]
      Long: {"Fn::If": [NotA, yes, no]}
      Gone: !If [IsA, !Ref AWS::NoValue, kept]
      List: [one, !If [Both, !Ref AWS::NoValue, two], !If [Either, three, !Ref AWS::NoValue]]
      Nested: !Sub ["${X}", {X: !If [IsA, !Ref Always, other]}]
  OnlyWhenNotA:
    Type: X
    Condition: NotA
"#,
    );
    let holds = |name, parameters: &[(&str, &str)]| template.condition(name, parameters);
    assert!(holds("IsA", &[]) && !holds("NotA", &[]) && holds("Three", &[]));
    assert!(holds("Both", &[]) && holds("Either", &[]));
    assert!(!holds("Both", &[("Count", "4")]) && !holds("Either", &[("Count", "4")]));
    assert!(holds("NotA", &[("Mode", "b")]) && holds("Either", &[("Mode", "b")]));

    let defaults = template.resolved(&[]);
    let always = path(defaults.root(), &["Resources", "Always", "Properties"]).unwrap();
    assert_eq!(field(always, "Short").and_then(literal), Some("yes"));
    assert_eq!(field(always, "Long").and_then(literal), Some("no"));
    assert!(
        field(always, "Gone").is_none(),
        "AWS::NoValue leaves the key out"
    );
    let list: Vec<_> = one_or_many(field(always, "List").unwrap())
        .into_iter()
        .filter_map(literal)
        .collect();
    assert_eq!(list, ["one", "three"]);
    assert!(references(field(always, "Nested").unwrap()).contains(&"Always"));
    assert!(
        defaults
            .resources()
            .iter()
            .all(|(id, _)| *id != "OnlyWhenNotA"),
        "a resource whose condition is false is not deployed"
    );

    let b = template.resolved(&[("Mode", "b"), ("Count", "4")]);
    let always = path(b.root(), &["Resources", "Always", "Properties"]).unwrap();
    assert_eq!(field(always, "Gone").and_then(literal), Some("kept"));
    let list: Vec<_> = one_or_many(field(always, "List").unwrap())
        .into_iter()
        .filter_map(literal)
        .collect();
    assert_eq!(list, ["one", "two", "three"]);
    assert!(b.resources().iter().any(|(id, _)| *id == "OnlyWhenNotA"));
}

/// The contract: acknowledgement is on when `ACK_QUEUE_URL` is set, and the deploy
/// chooses it. `off`: `sms-inbound` has neither variable nor the right to arm a timer;
/// a window: both, and the grant. Either way the queue, its dead letters, `ack-timeout`
/// and their alarms stay, so timers armed before a switch to `off` drain.
#[test]
fn ack_timeout_secs_off_leaves_sms_inbound_without_timers_or_the_right_to_arm_them() {
    let as_written = Template::as_written();
    assert_eq!(
        path(
            as_written.root(),
            &["Parameters", "AckTimeoutSecs", "Default"]
        )
        .and_then(literal),
        Some("30"),
        "the default stays 30 s: a redeploy changes nothing"
    );
    let send = grant("sqs:SendMessage", "AckQueue");
    for (value, on) in [("off", false), ("30", true), ("900", true)] {
        let template = Template::load_with(&[("AckTimeoutSecs", value)]);
        let inbound = function_of(&template, "sms-inbound");
        if on {
            assert_eq!(
                refers_to(&inbound, "ACK_QUEUE_URL"),
                Some(Intrinsic::Ref("AckQueue")),
                "AckTimeoutSecs={value}"
            );
            assert_eq!(
                refers_to(&inbound, "ACK_TIMEOUT_SECS"),
                Some(Intrinsic::Ref("AckTimeoutSecs")),
                "AckTimeoutSecs={value}"
            );
            assert!(
                grants(&template, "sms-inbound").contains(&send),
                "AckTimeoutSecs={value}: sms-inbound arms timers"
            );
        } else {
            for variable in ["ACK_QUEUE_URL", "ACK_TIMEOUT_SECS"] {
                assert!(
                    !inbound.environment.contains_key(variable),
                    "AckTimeoutSecs=off: sms-inbound has {variable} = {:?}",
                    inbound.environment[variable]
                );
            }
            let sqs: Vec<_> = grants(&template, "sms-inbound")
                .into_iter()
                .filter(|p| p.action.starts_with("sqs:"))
                .collect();
            assert!(
                sqs.is_empty(),
                "AckTimeoutSecs=off: sms-inbound may {sqs:?}"
            );
        }

        // What drains the timers already armed stays, whatever the choice.
        for id in ["AckQueue", "AckDeadLetterQueue", "AckDeadLetterAlarm"] {
            template.resource(id);
        }
        let timeout = function_of(&template, "ack-timeout");
        assert_eq!(
            refers_to(&timeout, "ACK_QUEUE_URL"),
            Some(Intrinsic::Ref("AckQueue")),
            "AckTimeoutSecs={value}: ack-timeout re-arms timers"
        );
        // Never "off" as a number of seconds: the function would refuse to start.
        match timeout.environment.get("ACK_TIMEOUT_SECS") {
            None => assert!(!on, "AckTimeoutSecs={value}: ack-timeout has no window"),
            Some(window) => {
                assert!(on, "AckTimeoutSecs=off reaches ack-timeout as {window:?}");
                assert_eq!(intrinsic(window), Some(Intrinsic::Ref("AckTimeoutSecs")));
            }
        }
        let timeout_grants = grants(&template, "ack-timeout");
        for action in [
            "sqs:SendMessage",
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ] {
            assert!(
                timeout_grants.contains(&grant(action, "AckQueue")),
                "AckTimeoutSecs={value}: ack-timeout may not {action}"
            );
        }
        let events = field(&timeout.properties, "Events")
            .map(references)
            .unwrap_or_default();
        assert!(
            events.contains(&"AckQueue"),
            "ack-timeout's event source is the queue"
        );
        let alarmed: BTreeSet<String> = alarms(&template)
            .into_iter()
            .flat_map(|(_, alarm)| dimensions(alarm))
            .map(|(_, value)| value)
            .collect();
        assert!(
            alarmed.contains(&format!("!Ref {}", timeout.logical_id)),
            "AckTimeoutSecs={value}: ack-timeout's alarms"
        );
    }
}

/// `AckTimeoutSecs` is `off` or what the functions accept as `ACK_TIMEOUT_SECS`
/// (1 to 900 s, an SQS delay's range), nothing else: a value the pattern let through
/// and the function refused would stop every text at start-up.
#[test]
fn ack_timeout_secs_allows_off_or_a_whole_number_of_seconds_from_1_to_900() {
    let template = Template::as_written();
    let parameter = template
        .parameter("AckTimeoutSecs")
        .expect("AckTimeoutSecs");
    assert_eq!(field(parameter, "Type").and_then(literal), Some("String"));
    let pattern = field(parameter, "AllowedPattern")
        .and_then(literal)
        .expect("AckTimeoutSecs has an AllowedPattern");
    let accepted = ["off", "30", "1", "900", "99", "100", "899"];
    let refused = [
        "0", "-1", "abc", "", "901", "1000", "030", "OFF", "Off", " 30", "30 ", "30s", "1.5",
        "off30",
    ];
    let values: Vec<&str> = accepted.iter().chain(&refused).copied().collect();
    let verdicts = allowed_pattern_accepts(pattern, &values);
    for (value, accepts) in values.iter().zip(verdicts) {
        assert_eq!(
            accepts,
            accepted.contains(value),
            "AllowedPattern {pattern} on {value:?}"
        );
    }
    // Every number the functions accept, and none above.
    let numbers: Vec<String> = (0..=1000).map(|n| n.to_string()).collect();
    let numbers: Vec<&str> = numbers.iter().map(String::as_str).collect();
    let verdicts = allowed_pattern_accepts(pattern, &numbers);
    for (n, accepts) in verdicts.into_iter().enumerate() {
        assert_eq!(
            accepts,
            (1..=900).contains(&n),
            "AllowedPattern {pattern} on {n}"
        );
    }
    // The default passes its own pattern, and "off" is what the condition tests.
    assert!(template.condition("AcknowledgementOn", &[]));
    assert!(!template.condition("AcknowledgementOn", &[("AckTimeoutSecs", "off")]));
}

/// `ESCALATION_REPEATS` is ack-timeout's alone (it is what escalates); the reply
/// window reaches both functions that relay texts a dispatcher can answer.
#[test]
fn escalation_repeats_is_ack_timeouts_and_the_reply_window_both_relaying_functions() {
    let as_written = Template::as_written();
    let repeats = as_written
        .parameter("EscalationRepeats")
        .expect("EscalationRepeats");
    assert_eq!(field(repeats, "Type").and_then(literal), Some("Number"));
    for (key, value) in [("Default", 0.0), ("MinValue", 0.0), ("MaxValue", 5.0)] {
        assert_eq!(
            field(repeats, key).and_then(Value::as_f64),
            Some(value),
            "EscalationRepeats {key}"
        );
    }
    for value in ["off", "30"] {
        let template = Template::load_with(&[("AckTimeoutSecs", value)]);
        for function in template.functions() {
            let binary = function.binary.as_str();
            for (variable, parameter, wanted) in [
                (
                    "ESCALATION_REPEATS",
                    "EscalationRepeats",
                    &["ack-timeout"][..],
                ),
                (
                    "REPLY_WINDOW_SECS",
                    "ReplyWindowSecs",
                    &["sms-inbound", "ack-timeout"][..],
                ),
            ] {
                let set = refers_to(&function, variable);
                if wanted.contains(&binary) {
                    assert_eq!(
                        set,
                        Some(Intrinsic::Ref(parameter)),
                        "AckTimeoutSecs={value}: {binary}'s {variable}"
                    );
                } else {
                    assert!(
                        !function.environment.contains_key(variable),
                        "{binary} has {variable}"
                    );
                }
            }
        }
    }
}

/// The heartbeat texts the incoming primary when a shift starts: it needs the Twilio
/// secret and API as the other functions that text have them, and the claim that makes
/// the handover once per shift (`ClaimStore for DynamoMessageLog`: `PutItem` to take
/// it, `UpdateItem` to finish it, `DeleteItem` to give it back).
#[test]
fn the_heartbeat_can_send_the_handover_text() {
    let template = Template::load();
    let heartbeat = function_of(&template, "dispatcher-heartbeat");
    assert_eq!(
        refers_to(&heartbeat, "TWILIO_SECRET_ID"),
        Some(Intrinsic::Ref("TwilioSecretId"))
    );
    for function in template.functions() {
        if let Some(base) = function.environment.get("TWILIO_API_BASE") {
            assert_eq!(
                literal(base),
                Some("https://api.twilio.com"),
                "{}'s TWILIO_API_BASE",
                function.binary
            );
        }
    }
    assert!(
        heartbeat.environment.contains_key("TWILIO_API_BASE"),
        "declared, so env.json can point a local run at the sandbox"
    );
    let granted = grants(&template, "dispatcher-heartbeat");
    assert!(
        granted.contains(&grant("secretsmanager:GetSecretValue", "TwilioSecretId")),
        "the heartbeat may not read the Twilio secret: {granted:#?}"
    );
    // The same secret, written as the other texting functions' roles write it.
    let secret_arn = |binary: &str| {
        let role = template.resource(&function_of(&template, binary).role);
        path(role, &["Properties", "Policies"])
            .map(one_or_many)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|p| {
                path(p, &["PolicyDocument", "Statement"])
                    .map(one_or_many)
                    .unwrap_or_default()
            })
            .filter(|s| field(s, "Sid").and_then(literal) == Some("TwilioSecret"))
            .filter_map(|s| field(s, "Resource").and_then(intrinsic))
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
    };
    let inbound = secret_arn("sms-inbound");
    assert!(!inbound.is_empty(), "sms-inbound's TwilioSecret statement");
    assert_eq!(secret_arn("dispatcher-heartbeat"), inbound);
    assert_eq!(secret_arn("ack-timeout"), inbound);
    for action in [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ] {
        let claim = Permission::new(action, ResourceName::Named("qdn-message-log".into()));
        assert!(
            granted.contains(&claim),
            "the heartbeat's handover claim: {claim}"
        );
    }
}

/// The indexes `qdn messages` queries, as the tests' tables have them (the fixture's
/// `create_message_table`), on either shape of the message table; `by-day-only` is
/// the first step of upgrading a stack deployed before them.
#[test]
fn the_message_table_has_the_time_ordered_indexes_the_fixture_has() {
    use relay_tests::moto::MESSAGE_LISTING_ATTRIBUTES;
    let indexes = |template: &Template, table: &str| -> Vec<(String, String, Vec<String>)> {
        let resource = template.resource(table);
        let listed = path(resource, &["Properties", "GlobalSecondaryIndexes"])
            .map(one_or_many)
            .unwrap_or_default();
        listed
            .into_iter()
            .map(|index| {
                let name = field(index, "IndexName")
                    .and_then(literal)
                    .unwrap()
                    .to_string();
                let keys: Vec<&str> = one_or_many(field(index, "KeySchema").unwrap())
                    .into_iter()
                    .map(|key| field(key, "AttributeName").and_then(literal).unwrap())
                    .collect();
                let projected =
                    one_or_many(path(index, &["Projection", "NonKeyAttributes"]).unwrap())
                        .into_iter()
                        .map(|a| literal(a).unwrap().to_string())
                        .collect();
                (name, keys.join(" "), projected)
            })
            .collect()
    };
    let listing: Vec<String> = MESSAGE_LISTING_ATTRIBUTES
        .iter()
        .map(|a| a.to_string())
        .collect();
    for (replica, table) in [
        ("", "MessageLogTable"),
        ("eu-west-1", "MessageLogGlobalTable"),
    ] {
        let template = Template::load_with(&[("ReplicaRegion", replica)]);
        assert_eq!(
            indexes(&template, table),
            [
                (
                    "by_day".to_string(),
                    "msg_day received_at".to_string(),
                    listing.clone()
                ),
                (
                    "unresolved_by_day".to_string(),
                    "unresolved_day received_at".to_string(),
                    listing.clone()
                ),
            ],
            "{table}"
        );
        assert!(
            !listing.contains(&"relay_body".to_string()),
            "an index never holds the driver's words"
        );
        let first_step = Template::load_with(&[
            ("ReplicaRegion", replica),
            ("MessageListIndexes", "by-day-only"),
        ]);
        let names: Vec<String> = indexes(&first_step, table)
            .into_iter()
            .map(|i| i.0)
            .collect();
        assert_eq!(names, ["by_day"], "{table}");
        let defined = path(
            first_step.resource(table),
            &["Properties", "AttributeDefinitions"],
        )
        .map(one_or_many)
        .unwrap();
        assert!(
            defined
                .iter()
                .all(|d| field(d, "AttributeName").and_then(literal) != Some("unresolved_day")),
            "no definition without its index: {table}"
        );
    }
}
