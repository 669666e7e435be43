//! `qdn redeliver <MessageSid>`: sends a text that reached nobody down the cascade
//! again, through the relay's own use case (`Relay::redeliver`) and adapters, with
//! the configuration `sms-inbound` reads. The CLI adds only what an operator reads.

use relay_app::config::InboundSettings;
use relay_app::relay::acks::Acks;
use relay_app::relay::redelivery::Redelivered;
use relay_app::relay::replies::Replies;
use relay_app::relay::{Relay, RelayPorts};
use relay_aws::dynamo::{DynamoDispatcherStore, DynamoMessageLog};
use relay_aws::sns::SnsAlertPublisher;
use relay_aws::sqs::SqsTimerQueue;
use relay_aws::twilio::{RetryPolicy, TwilioApi};
use relay_core::ids::MessageSid;
use serde_json::json;

use crate::cli::{GlobalArgs, RedeliverArgs};
use crate::context::{self, CommandResult, Done, Failure, Settings};
use crate::format::{out, out_json, unix_now};

pub async fn run(settings: &Settings, global: &GlobalArgs, args: RedeliverArgs) -> CommandResult {
    let sid = MessageSid::parse(args.message_sid.trim())
        .map_err(|e| Failure::usage(format!("{:?}: {e}", args.message_sid.trim())))?;
    let inbound = inbound_settings(settings, global)?;
    let aws = context::aws_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let dispatchers = DynamoDispatcherStore::new(dynamodb.clone(), &inbound.tables.state_table);
    let log = DynamoMessageLog::new(dynamodb, &inbound.tables.message_table);
    let alerts = SnsAlertPublisher::new(aws_sdk_sns::Client::new(&aws), &inbound.alert_topic_arn);
    let timers = inbound
        .ack
        .as_ref()
        .map(|ack| SqsTimerQueue::new(aws_sdk_sqs::Client::new(&aws), &ack.queue_url));
    let secrets = context::secret_cache(&aws)?;
    let account = secrets
        .twilio_account(&inbound.twilio_secret_id, inbound.default_country)
        .await?;
    let twilio = TwilioApi::new(
        reqwest::Client::builder(),
        &inbound.twilio_api_base,
        RetryPolicy::default(),
    )
    .map_err(|e| Failure::aws(format!("cannot build the Twilio client: {e}")))?;
    let sender = twilio.sender(&account, None);
    let relay = Relay {
        settings: &inbound,
        ports: RelayPorts {
            dispatchers: &dispatchers,
            claims: &log,
            log: &log,
            deliveries: &log,
            alerts: &alerts,
            sender: &sender,
            replies: Replies {
                store: &log,
                window_secs: inbound.reply_window_secs,
            },
            acks: match (&inbound.ack, &timers) {
                (Some(settings), Some(timers)) => Some(Acks {
                    settings,
                    store: &log,
                    timers,
                }),
                _ => None,
            },
        },
        outbound_log: &log,
    };
    let outcome = relay
        .redeliver(&sid, unix_now())
        .await
        .map_err(|e| Failure::aws(format!("{sid} was not sent again: {}", e.detail())))?;
    report(settings, &sid, outcome)
}

/// Says what happened; the exit status follows the contract: 1 for a text someone
/// got (or one not to be sent now), 2 for a text that reached nobody again.
fn report(settings: &Settings, sid: &MessageSid, outcome: Redelivered) -> CommandResult {
    match outcome {
        Redelivered::Sent {
            tier,
            forwarded_sid,
            was,
        } => {
            if settings.json {
                out_json(&json!({
                    "message_sid": sid.as_str(),
                    "redelivered": true,
                    "was": was.as_str(),
                    "tier": tier.as_str(),
                    "forwarded_sid": forwarded_sid.as_str(),
                }));
            } else {
                out(&format!(
                    "{sid} ({was}) sent again to the {tier} as {forwarded_sid}; `qdn trail {sid}` follows it"
                ));
            }
            Ok(Done::Ok)
        }
        Redelivered::ReachedNobody { reason } => Err(Failure::aws(format!(
            "{sid} reached nobody again: {reason}; it stays listed by `qdn messages --undelivered`"
        ))),
        // Every refusal sends nothing and is the operator's to read: exit 1.
        Redelivered::Refused(refusal) => Err(Failure::not_found(format!(
            "{sid} not sent again: {refusal}"
        ))),
    }
}

/// `sms-inbound`'s configuration, read as the function reads it, with the CLI's
/// global flags over their variables.
fn inbound_settings(settings: &Settings, global: &GlobalArgs) -> Result<InboundSettings, Failure> {
    let env = |name: &str| std::env::var(name).ok();
    InboundSettings::from_lookup(|name| match name {
        "STATE_TABLE" => Some(settings.state_table.clone()),
        "MESSAGE_TABLE" => Some(settings.message_table.clone()),
        "TWILIO_SECRET_ID" => settings.twilio_secret_id().ok().map(str::to_string),
        "PRIMARY_DISPATCHER_ID" => Some(settings.primary_dispatcher_id.to_string()),
        "DEFAULT_COUNTRY_CODE" => global.default_country_code.clone().or_else(|| env(name)),
        "ACK_QUEUE_URL" => settings.ack_queue_url().map(str::to_string),
        other => env(other),
    })
    .map_err(|e| Failure::usage(e.to_string()))
}
