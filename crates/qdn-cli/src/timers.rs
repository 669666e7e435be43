//! `qdn timers dead | redrive`: the acknowledgement timers ack-timeout failed on five
//! times, parked in ACK_DEAD_LETTER_QUEUE_URL.
//!
//! Both walk the dead-letter queue in batches of ten. SQS has no "peek": a receive
//! hides each message for [`HOLD_SECS`], so a walk ends when a receive comes back
//! empty (everything is held by us) or hands us a message a second time (its hold ran
//! out: we have been round the whole queue). `dead` then hands every message back at
//! once (visibility 0), so a listing takes nothing; were `qdn` killed half-way, they
//! come back by themselves after [`HOLD_SECS`]. Each receive counts in a message's
//! `ApproximateReceiveCount`, so every listing adds one to RECEIVES.
//!
//! `redrive` sends each timer's exact body to ACK_QUEUE_URL without delay and only
//! then deletes it from the dead-letter queue: a timer is never dropped, at worst
//! (a failed delete) it is in both queues, and a second copy of a timer is harmless
//! (ack-timeout escalates a text only from `awaiting`, by a conditional write).

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use relay_core::ack::AckTimer;
use serde_json::{Value, json};

use crate::cli::TimersCommand;
use crate::context::{self, CommandResult, Done, Failure, Settings, concise};
use crate::format::{age, out, out_json, render, table, unix_now};

/// How long a received message stays hidden while `qdn` holds it: long enough to walk
/// a big queue (and to send and delete a batch) before the first ones come back.
const HOLD_SECS: i32 = 30;

/// The most SQS hands out per receive.
const BATCH_SIZE: i32 = 10;

/// The long poll of each receive unless `QDN_SQS_WAIT_SECS` says otherwise.
const DEFAULT_WAIT_SECS: i32 = 1;

pub async fn run(settings: &Settings, command: TimersCommand) -> CommandResult {
    match command {
        TimersCommand::Dead => dead(settings).await,
        TimersCommand::Redrive => redrive(settings).await,
    }
}

/// `QDN_SQS_WAIT_SECS` (0 to 20, default 1): each receive's long poll. On SQS a short
/// poll (0) samples some of its servers and may answer empty while a small queue
/// still holds messages, so the empty receive that ends a walk must be a long poll.
/// An emulator that serves one request at a time and answers exactly (the tests'
/// moto) is better polled with 0.
fn wait_secs() -> Result<i32, Failure> {
    let Some(raw) = std::env::var("QDN_SQS_WAIT_SECS")
        .ok()
        .filter(|raw| !raw.trim().is_empty())
    else {
        return Ok(DEFAULT_WAIT_SECS);
    };
    parse_wait_secs(&raw).map_err(Failure::usage)
}

fn parse_wait_secs(raw: &str) -> Result<i32, String> {
    raw.trim()
        .parse::<i32>()
        .ok()
        .filter(|secs| (0..=20).contains(secs))
        .ok_or_else(|| {
            format!("QDN_SQS_WAIT_SECS: {raw:?} is not a whole number of seconds from 0 to 20")
        })
}

/// A failed AWS call as one line: `SQS ReceiveMessage on <queue> failed: <why>`.
fn aws_failure<E>(what: &str, error: E) -> Failure
where
    E: std::error::Error + 'static,
{
    let detail = DisplayErrorContext(error).to_string();
    Failure::aws(format!("{what} failed: {}", concise(&detail)))
}

/// One message of the dead-letter queue, as received.
#[derive(Debug, Clone, PartialEq)]
struct Parked {
    id: String,
    receipt_handle: String,
    body: String,
    /// `ApproximateReceiveCount`, this receive included.
    receive_count: Option<u32>,
}

impl Parked {
    fn of(message: &Message) -> Parked {
        let receive_count = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|count| count.parse().ok());
        Parked {
            id: message.message_id().unwrap_or_default().to_string(),
            receipt_handle: message.receipt_handle().unwrap_or_default().to_string(),
            body: message.body().unwrap_or_default().to_string(),
            receive_count,
        }
    }
}

/// The message IDs a walk has received, to know when it has been round the queue.
#[derive(Debug, Default)]
struct Seen(HashSet<String>);

impl Seen {
    /// The batch's messages not received before, and whether the batch held one that
    /// was (its hold ran out: the walk has been round the queue and must stop).
    fn sort_out(&mut self, batch: Vec<Parked>) -> (Vec<Parked>, bool) {
        let mut round = false;
        let fresh = batch
            .into_iter()
            .filter(|parked| {
                let new = self.0.insert(parked.id.clone());
                round |= !new;
                new
            })
            .collect();
        (fresh, round)
    }
}

/// The dead-letter queue, and how `qdn` receives from it.
struct DeadLetters {
    sqs: aws_sdk_sqs::Client,
    url: String,
    wait_secs: i32,
}

impl DeadLetters {
    /// Up to ten messages, each now hidden for [`HOLD_SECS`].
    async fn receive(&self) -> Result<Vec<Parked>, Failure> {
        let output = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(BATCH_SIZE)
            .visibility_timeout(HOLD_SECS)
            .wait_time_seconds(self.wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| aws_failure(&format!("SQS ReceiveMessage on {}", self.url), e))?;
        Ok(output.messages().iter().map(Parked::of).collect())
    }

    /// Every message of the queue, each received once (all held by us until
    /// [`DeadLetters::release`]).
    async fn receive_all(&self) -> Result<Vec<Parked>, Failure> {
        let mut seen = Seen::default();
        let mut all = Vec::new();
        loop {
            let batch = self.receive().await?;
            if batch.is_empty() {
                return Ok(all);
            }
            let (fresh, round) = seen.sort_out(batch);
            all.extend(fresh);
            if round {
                return Ok(all);
            }
        }
    }

    /// Makes held messages visible again now, rather than when their hold runs out.
    async fn release(&self, parked: &[Parked]) -> Result<(), Failure> {
        for message in parked {
            self.sqs
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(&message.receipt_handle)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(|e| {
                    let what = format!("SQS ChangeMessageVisibility on {}", self.url);
                    let failure = aws_failure(&what, e);
                    Failure::aws(format!(
                        "{}; the messages stay hidden for up to {HOLD_SECS}s",
                        failure.message
                    ))
                })?;
        }
        Ok(())
    }

    async fn delete(&self, parked: &Parked) -> Result<(), Failure> {
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&parked.receipt_handle)
            .send()
            .await
            .map_err(|e| aws_failure(&format!("SQS DeleteMessage on {}", self.url), e))?;
        Ok(())
    }
}

/// What the message log says of a timer's text now: its inbound item's states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TextNow {
    state: Option<String>,
    ack_state: Option<String>,
    delivery_status: Option<String>,
}

impl TextNow {
    fn of(item: &HashMap<String, AttributeValue>) -> TextNow {
        let text = |name: &str| {
            item.get(name)
                .and_then(|value| value.as_s().ok())
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        TextNow {
            state: text("state"),
            ack_state: text("ack_state"),
            delivery_status: text("delivery_status"),
        }
    }
}

/// A text's fate in a few words: `ack awaiting, forwarded, delivered`; `gone
/// (expired)` once the log's TTL removed its item.
fn fate(text: Option<&TextNow>) -> String {
    let Some(text) = text else {
        return "gone (expired)".into();
    };
    let parts: Vec<String> = [
        text.ack_state.as_ref().map(|ack| format!("ack {ack}")),
        text.state.clone(),
        text.delivery_status.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "no state recorded".into()
    } else {
        parts.join(", ")
    }
}

/// The message log's inbound item `sid`, if it still exists.
async fn text_now(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    sid: &str,
) -> Result<Option<TextNow>, Failure> {
    let output = dynamodb
        .get_item()
        .table_name(table)
        .key("message_sid", AttributeValue::S(sid.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| aws_failure(&format!("DynamoDB GetItem on {table}"), e))?;
    Ok(output.item().map(TextNow::of))
}

/// One row of `dead`: a timer and its text, or a body that is not a timer.
#[derive(Debug, Clone, PartialEq)]
enum Row {
    Timer {
        parked: Parked,
        timer: AckTimer,
        /// `None`: the text's item is gone.
        text: Option<TextNow>,
    },
    NotATimer {
        parked: Parked,
        error: String,
    },
}

/// Why a body is not a timer, for the table: `not a timer: missing field ...`.
fn not_a_timer(error: &str) -> String {
    // AckTimer::parse already says "not an acknowledgement timer: <serde's reason>".
    let reason = error
        .strip_prefix("not an acknowledgement timer: ")
        .unwrap_or(error);
    format!("not a timer: {reason}")
}

/// A message ID short enough for a table column; its first eight characters are
/// unique enough among a dead-letter queue's few messages (`--json` has it whole).
fn short_id(id: &str) -> &str {
    id.char_indices().nth(8).map_or(id, |(at, _)| &id[..at])
}

/// The messages as rows, each timer with its text (one lookup per text), timers by
/// when their text was sent, then what is not a timer.
async fn rows(
    settings: &Settings,
    aws: &aws_config::SdkConfig,
    parked: Vec<Parked>,
) -> Result<Vec<Row>, Failure> {
    let dynamodb = aws_sdk_dynamodb::Client::new(aws);
    let mut texts: HashMap<String, Option<TextNow>> = HashMap::new();
    let mut rows = Vec::new();
    for parked in parked {
        let timer = match AckTimer::parse(&parked.body) {
            Ok(timer) => timer,
            Err(error) => {
                rows.push(Row::NotATimer { parked, error });
                continue;
            }
        };
        let sid = timer.inbound_sid.as_str().to_string();
        if !texts.contains_key(&sid) {
            let text = text_now(&dynamodb, &settings.message_table, &sid).await?;
            texts.insert(sid.clone(), text);
        }
        let text = texts[&sid].clone();
        rows.push(Row::Timer {
            parked,
            timer,
            text,
        });
    }
    rows.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    Ok(rows)
}

fn sort_key(row: &Row) -> (bool, i64, &str) {
    match row {
        Row::Timer { parked, timer, .. } => (false, timer.sent_at, &parked.id),
        Row::NotATimer { parked, .. } => (true, 0, &parked.id),
    }
}

/// The listing as an aligned table.
fn dead_table(rows: &[Row], now: i64) -> String {
    let mut t = table(&[
        "TIMER",
        "MESSAGE",
        "REFERENCE",
        "SENT",
        "RECEIVES",
        "TEXT NOW",
    ]);
    for row in rows {
        let cells = match row {
            Row::Timer {
                parked,
                timer,
                text,
            } => [
                short_id(&parked.id).to_string(),
                timer.inbound_sid.to_string(),
                timer.ack_ref.to_string(),
                age(now, Some(timer.sent_at)),
                receives(parked),
                fate(text.as_ref()),
            ],
            Row::NotATimer { parked, error } => [
                short_id(&parked.id).to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
                receives(parked),
                not_a_timer(error),
            ],
        };
        t.add_row(cells.to_vec());
    }
    render(&mut t)
}

fn receives(parked: &Parked) -> String {
    parked
        .receive_count
        .map_or_else(|| "?".into(), |count| count.to_string())
}

/// The listing for `--json`.
fn dead_json(rows: &[Row]) -> Value {
    let timers: Vec<Value> = rows
        .iter()
        .map(|row| match row {
            Row::Timer {
                parked,
                timer,
                text,
            } => {
                let field = |pick: fn(&TextNow) -> &Option<String>| {
                    text.as_ref().and_then(|t| pick(t).clone())
                };
                json!({
                    "sqs_message_id": parked.id,
                    "message_sid": timer.inbound_sid.as_str(),
                    "forwarded_sid": timer.forwarded_sid.as_str(),
                    "reference": timer.ack_ref.as_str(),
                    "sent_at": timer.sent_at,
                    "receive_count": parked.receive_count,
                    "fate": fate(text.as_ref()),
                    "in_message_log": text.is_some(),
                    "state": field(|t| &t.state),
                    "ack_state": field(|t| &t.ack_state),
                    "delivery_status": field(|t| &t.delivery_status),
                })
            }
            Row::NotATimer { parked, error } => json!({
                "sqs_message_id": parked.id,
                "receive_count": parked.receive_count,
                "error": error,
            }),
        })
        .collect();
    json!({ "timers": timers })
}

fn dead_letters(aws: &aws_config::SdkConfig, url: &str) -> Result<DeadLetters, Failure> {
    Ok(DeadLetters {
        sqs: aws_sdk_sqs::Client::new(aws),
        url: url.to_string(),
        wait_secs: wait_secs()?,
    })
}

async fn dead(settings: &Settings) -> CommandResult {
    let url = settings.ack_dead_letter_queue_url()?;
    let aws = context::aws_config().await;
    let queue = dead_letters(&aws, url)?;
    let parked = queue.receive_all().await?;
    // Handed back before anything else can fail; a failed hand-back is reported after
    // the listing, which is still right.
    let released = queue.release(&parked).await;
    let rows = rows(settings, &aws, parked).await?;
    if settings.json {
        out_json(&dead_json(&rows));
    } else if rows.is_empty() {
        out("no dead-lettered timers");
    } else {
        out(&dead_table(&rows, unix_now()));
    }
    released?;
    Ok(Done::Ok)
}

/// The queue's name (the last part of its URL), for sentences.
fn queue_name(url: &str) -> &str {
    url.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or(url)
}

/// `1 timer`, `2 timers`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The line `redrive` prints for a timer it put back.
fn moved_line(parked: &Parked, timer: &AckTimer, now: i64) -> String {
    format!(
        "put back {}: {} reference {} (sent {})",
        short_id(&parked.id),
        timer.inbound_sid,
        timer.ack_ref,
        age(now, Some(timer.sent_at))
    )
}

/// The line `redrive` prints for a message it left in the dead-letter queue.
fn left_line(parked: &Parked, error: &str) -> String {
    format!("left {}: {}", short_id(&parked.id), not_a_timer(error))
}

/// What `redrive` says at the end.
fn redrive_summary(moved: usize, left: usize, target: &str, dlq: &str) -> String {
    if moved == 0 && left == 0 {
        return "no dead-lettered timers".into();
    }
    let mut text = format!(
        "{} put back on {}",
        count(moved, "timer"),
        queue_name(target)
    );
    if left > 0 {
        text.push_str(&format!(
            "\n{} left in {}: not a timer (see `qdn timers dead`)",
            count(left, "message"),
            queue_name(dlq)
        ));
    }
    text
}

/// Sends a timer's exact body to the timer queue, to be handled now.
async fn put_back(sqs: &aws_sdk_sqs::Client, target: &str, parked: &Parked) -> Result<(), Failure> {
    sqs.send_message()
        .queue_url(target)
        .message_body(&parked.body)
        // The queue's own delay, if it has one, must not hold a timer already late.
        .delay_seconds(0)
        .send()
        .await
        .map_err(|e| aws_failure(&format!("SQS SendMessage to {target}"), e))?;
    Ok(())
}

/// Moves one timer: back on the timer queue first, then off the dead-letter queue.
async fn move_timer(queue: &DeadLetters, target: &str, parked: &Parked) -> Result<(), Failure> {
    put_back(&queue.sqs, target, parked).await.map_err(|f| {
        Failure::aws(format!(
            "{}; timer {} stays in the dead-letter queue",
            f.message, parked.id
        ))
    })?;
    queue.delete(parked).await.map_err(|f| {
        Failure::aws(format!(
            "{}; timer {} is back on the timer queue but also still in the dead-letter \
             queue (a second copy is harmless)",
            f.message, parked.id
        ))
    })
}

/// A failure half-way, saying how far `redrive` got.
fn after_moving(failure: Failure, moved: usize) -> Failure {
    if moved == 0 {
        return failure;
    }
    Failure::aws(format!(
        "{} ({} put back before this)",
        failure.message,
        count(moved, "timer")
    ))
}

async fn redrive(settings: &Settings) -> CommandResult {
    let target = settings.ack_queue_url().ok_or_else(|| {
        Failure::usage(
            "ACK_QUEUE_URL is not set (or give --ack-queue-url): the timer queue to put the timers back on",
        )
    })?;
    let url = settings.ack_dead_letter_queue_url()?;
    let aws = context::aws_config().await;
    let queue = dead_letters(&aws, url)?;
    let mut seen = Seen::default();
    let mut moved: Vec<(Parked, AckTimer)> = Vec::new();
    let mut left: Vec<(Parked, String)> = Vec::new();
    loop {
        let batch = queue
            .receive()
            .await
            .map_err(|f| after_moving(f, moved.len()))?;
        if batch.is_empty() {
            break;
        }
        let (fresh, round) = seen.sort_out(batch);
        for parked in fresh {
            match AckTimer::parse(&parked.body) {
                Ok(timer) => {
                    move_timer(&queue, target, &parked)
                        .await
                        .map_err(|f| after_moving(f, moved.len()))?;
                    if !settings.json {
                        out(&moved_line(&parked, &timer, unix_now()));
                    }
                    moved.push((parked, timer));
                }
                Err(error) => {
                    if !settings.json {
                        out(&left_line(&parked, &error));
                    }
                    left.push((parked, error));
                }
            }
        }
        if round {
            break;
        }
    }
    // Hand back what stays, so `qdn timers dead` shows it at once.
    let held: Vec<Parked> = left.iter().map(|(parked, _)| parked.clone()).collect();
    let released = queue.release(&held).await;
    if settings.json {
        out_json(&redrive_json(target, &moved, &left));
    } else {
        out(&redrive_summary(moved.len(), left.len(), target, url));
    }
    released?;
    Ok(if left.is_empty() {
        Done::Ok
    } else {
        Done::Problems
    })
}

fn redrive_json(target: &str, moved: &[(Parked, AckTimer)], left: &[(Parked, String)]) -> Value {
    json!({
        "queue": target,
        "moved": moved.iter().map(|(parked, timer)| json!({
            "sqs_message_id": parked.id,
            "message_sid": timer.inbound_sid.as_str(),
            "forwarded_sid": timer.forwarded_sid.as_str(),
            "reference": timer.ack_ref.as_str(),
            "sent_at": timer.sent_at,
        })).collect::<Vec<_>>(),
        "left": left.iter().map(|(parked, error)| json!({
            "sqs_message_id": parked.id,
            "error": error,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INBOUND: &str = "SM0123456789abcdef0123456789abcdef";
    const FORWARD: &str = "SMfedcba9876543210fedcba9876543210";

    fn parked(id: &str, body: &str, receive_count: Option<u32>) -> Parked {
        Parked {
            id: id.into(),
            receipt_handle: format!("handle-{id}"),
            body: body.into(),
            receive_count,
        }
    }

    fn timer(sent_at: i64) -> AckTimer {
        AckTimer::parse(
            &json!({
                "inbound_sid": INBOUND,
                "forwarded_sid": FORWARD,
                "ack_ref": "K7Q",
                "sent_at": sent_at,
            })
            .to_string(),
        )
        .unwrap()
    }

    fn awaiting() -> TextNow {
        TextNow {
            state: Some("forwarded".into()),
            ack_state: Some("awaiting".into()),
            delivery_status: Some("delivered".into()),
        }
    }

    #[test]
    fn a_received_message_keeps_its_id_handle_body_and_count() {
        let message = Message::builder()
            .message_id("3f2a9c1e-0000-4000-8000-000000000001")
            .receipt_handle("rh")
            .body("{}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "6")
            .build();
        let parked = Parked::of(&message);
        assert_eq!(parked.id, "3f2a9c1e-0000-4000-8000-000000000001");
        assert_eq!(parked.receipt_handle, "rh");
        assert_eq!(parked.body, "{}");
        assert_eq!(parked.receive_count, Some(6));
        assert_eq!(Parked::of(&Message::builder().build()).receive_count, None);
    }

    #[test]
    fn a_walk_stops_once_a_message_comes_round_again() {
        let mut seen = Seen::default();
        let (fresh, round) = seen.sort_out(vec![parked("a", "", None), parked("b", "", None)]);
        assert_eq!(fresh.len(), 2);
        assert!(!round);
        let (fresh, round) = seen.sort_out(vec![parked("c", "", None), parked("a", "", None)]);
        assert_eq!(fresh, vec![parked("c", "", None)], "only what is new");
        assert!(round, "a came round again");
    }

    #[test]
    fn a_text_item_gives_its_states() {
        let item = HashMap::from([
            ("message_sid".to_string(), AttributeValue::S(INBOUND.into())),
            ("state".to_string(), AttributeValue::S("forwarded".into())),
            (
                "ack_state".to_string(),
                AttributeValue::S("awaiting".into()),
            ),
            ("delivery_status".to_string(), AttributeValue::N("7".into())),
        ]);
        let text = TextNow::of(&item);
        assert_eq!(text.state.as_deref(), Some("forwarded"));
        assert_eq!(text.ack_state.as_deref(), Some("awaiting"));
        assert_eq!(text.delivery_status, None, "not a string: not shown");
    }

    #[test]
    fn a_fate_says_what_is_known() {
        assert_eq!(
            fate(Some(&awaiting())),
            "ack awaiting, forwarded, delivered"
        );
        let forwarded = TextNow {
            state: Some("forwarded".into()),
            ..TextNow::default()
        };
        assert_eq!(fate(Some(&forwarded)), "forwarded");
        assert_eq!(fate(Some(&TextNow::default())), "no state recorded");
        assert_eq!(fate(None), "gone (expired)");
    }

    #[test]
    fn what_is_not_a_timer_says_why_once() {
        let error = AckTimer::parse("junk").unwrap_err();
        let shown = not_a_timer(&error);
        assert!(shown.starts_with("not a timer: "), "{shown}");
        assert!(!shown.contains("acknowledgement timer"), "{shown}");
        assert_eq!(not_a_timer("odd"), "not a timer: odd");
    }

    #[test]
    fn ids_are_shortened_for_the_table() {
        assert_eq!(short_id("3f2a9c1e-0000-4000-8000-000000000001"), "3f2a9c1e");
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn wait_seconds_parse_from_0_to_20() {
        assert_eq!(parse_wait_secs("0"), Ok(0));
        assert_eq!(parse_wait_secs(" 20 "), Ok(20));
        for bad in ["21", "-1", "1.5", "x"] {
            assert!(parse_wait_secs(bad).is_err(), "{bad:?} was accepted");
        }
    }

    fn listing() -> Vec<Row> {
        vec![
            Row::Timer {
                parked: parked("3f2a9c1e-aaaa", "", Some(6)),
                timer: timer(1_000_000 - 720),
                text: Some(awaiting()),
            },
            Row::Timer {
                parked: parked("5b00aa11-bbbb", "", None),
                timer: timer(1_000_000 - 3 * 86_400),
                text: None,
            },
            Row::NotATimer {
                parked: parked("7b1d0e44-cccc", "junk", Some(7)),
                error: AckTimer::parse("junk").unwrap_err(),
            },
        ]
    }

    #[test]
    fn the_listing_is_an_aligned_table() {
        let text = dead_table(&listing(), 1_000_000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("TIMER     MESSAGE"), "{text}");
        assert!(lines[0].ends_with("RECEIVES  TEXT NOW"), "{text}");
        assert!(
            lines[1].starts_with(&format!("3f2a9c1e  {INBOUND}  K7Q        12m ago")),
            "{text}"
        );
        assert!(
            lines[1].ends_with("6         ack awaiting, forwarded, delivered"),
            "{text}"
        );
        assert!(
            lines[2].contains("3d ago") && lines[2].ends_with("?         gone (expired)"),
            "{text}"
        );
        assert!(lines[3].starts_with("7b1d0e44  -"), "{text}");
        assert!(lines[3].contains("7         not a timer: "), "{text}");
        // Every row's TEXT NOW starts where its header does.
        let fate_at = lines[0].find("TEXT NOW").unwrap();
        for (line, fate) in lines[1..].iter().zip(["ack ", "gone", "not a timer"]) {
            assert!(line[fate_at..].starts_with(fate), "{text}");
        }
    }

    #[test]
    fn the_listing_as_json() {
        let doc = dead_json(&listing());
        let timers = doc["timers"].as_array().unwrap();
        assert_eq!(timers.len(), 3);
        assert_eq!(timers[0]["sqs_message_id"], "3f2a9c1e-aaaa");
        assert_eq!(timers[0]["message_sid"], INBOUND);
        assert_eq!(timers[0]["forwarded_sid"], FORWARD);
        assert_eq!(timers[0]["reference"], "K7Q");
        assert_eq!(timers[0]["sent_at"], 1_000_000 - 720);
        assert_eq!(timers[0]["receive_count"], 6);
        assert_eq!(timers[0]["ack_state"], "awaiting");
        assert_eq!(timers[0]["state"], "forwarded");
        assert_eq!(timers[0]["delivery_status"], "delivered");
        assert_eq!(timers[0]["fate"], "ack awaiting, forwarded, delivered");
        assert_eq!(timers[1]["in_message_log"], false);
        assert_eq!(timers[1]["state"], Value::Null);
        assert_eq!(timers[1]["receive_count"], Value::Null);
        assert!(timers[2]["error"].as_str().unwrap().contains("timer"));
        assert_eq!(timers[2].get("message_sid"), None);
        assert_eq!(dead_json(&[]), json!({"timers": []}));
    }

    #[test]
    fn redrive_says_what_it_moved_and_what_it_left() {
        let now = 1_000_000;
        let p = parked("3f2a9c1e-aaaa", "", None);
        assert_eq!(
            moved_line(&p, &timer(now - 90), now),
            format!("put back 3f2a9c1e: {INBOUND} reference K7Q (sent 1m ago)")
        );
        assert_eq!(
            left_line(&p, "not an acknowledgement timer: expected value"),
            "left 3f2a9c1e: not a timer: expected value"
        );
        let target = "https://sqs.us-east-1.amazonaws.com/123456789012/qdn-ack-timers";
        let dlq = "https://sqs.us-east-1.amazonaws.com/123456789012/qdn-ack-timers-dlq";
        assert_eq!(
            redrive_summary(2, 0, target, dlq),
            "2 timers put back on qdn-ack-timers"
        );
        assert_eq!(
            redrive_summary(1, 1, target, dlq),
            "1 timer put back on qdn-ack-timers\n\
             1 message left in qdn-ack-timers-dlq: not a timer (see `qdn timers dead`)"
        );
        assert_eq!(
            redrive_summary(0, 0, target, dlq),
            "no dead-lettered timers"
        );
    }

    #[test]
    fn queues_are_named_by_the_end_of_their_url() {
        assert_eq!(
            queue_name("http://127.0.0.1:5000/123456789012/t-1-ack/"),
            "t-1-ack"
        );
        assert_eq!(queue_name("qdn-ack-timers"), "qdn-ack-timers");
        assert_eq!(queue_name("/"), "/");
    }

    #[test]
    fn a_failure_half_way_says_how_far_redrive_got() {
        let failure = after_moving(Failure::aws("SQS SendMessage to q failed: x"), 2);
        assert_eq!(failure.status, 2);
        assert_eq!(
            failure.message,
            "SQS SendMessage to q failed: x (2 timers put back before this)"
        );
        assert_eq!(after_moving(Failure::aws("m"), 0).message, "m");
    }
}
