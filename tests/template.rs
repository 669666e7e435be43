//! `template.yaml` keeps what operators rely on and cannot see from outside until it
//! is gone: the alarms on refused Twilio traffic and on throttled functions, the API's
//! access log (JSON, never a body), and Twilio's routes throttled apart from the
//! outbound route. Read as YAML, CloudFormation's tags kept (`relay_tests::template`).

use std::collections::BTreeSet;

use relay_tests::template::{
    Intrinsic, Template, Value, field, intrinsic, literal, one_or_many, path, references,
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
