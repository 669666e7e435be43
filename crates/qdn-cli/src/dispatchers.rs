//! `qdn dispatchers list | show | put | check`.

use relay_app::heartbeat::{assess, configuration_problems};
use relay_core::cascade::names_dispatcher;
use relay_core::dispatcher::{
    DEFAULT_MESSAGE_LOG_TTL_SECS, DispatcherAttribute, DispatcherRecord, Flag, UnreadableDispatcher,
};
use relay_core::ids::DispatcherId;
use relay_core::phone::{CountryCode, PhoneNumber};
use relay_core::ports::{DeliveryHealth, DispatcherStore};
use relay_core::problem::ConfigProblem;
use relay_core::roster::{Roster, RotaItem};
use relay_core::rota::Duty;
use relay_core::stored::MAX_TTL_SECS;
use serde_json::{Value, json};

use crate::cli::{DispatchersCommand, PutArgs};
use crate::context::{self, CommandResult, Done, Failure, Settings};
use crate::format::{age, duration, iso, out, out_json, parse_duration, render, table, unix_now};
use crate::store::{DispatcherPatch, Field, PutOutcome, new_item_fields};
use crate::who::{rota_state, why};

pub async fn run(settings: &Settings, command: DispatchersCommand) -> CommandResult {
    match command {
        DispatchersCommand::List => list(settings).await,
        DispatchersCommand::Show { id } => show(settings, &id).await,
        DispatchersCommand::Put(args) => put(settings, args).await,
        DispatchersCommand::Check => check(settings).await,
    }
}

/// A number of the item as stored, and what it normalises to.
struct Number<'a> {
    stored: Option<&'a str>,
    normalised: Result<Option<PhoneNumber>, &'static str>,
    /// A backup or tertiary naming another dispatcher item instead of a number.
    names: Option<DispatcherId>,
}

impl<'a> Number<'a> {
    fn of(raw: Option<&'a str>, country: CountryCode) -> Self {
        let stored = raw.filter(|r| !r.trim().is_empty());
        let normalised = match stored {
            None => Ok(None),
            Some(raw) => PhoneNumber::parse(raw, country)
                .map(Some)
                .map_err(|e| e.reason()),
        };
        Number {
            stored,
            normalised,
            names: None,
        }
    }

    /// A backup or tertiary: a number, or a dispatcher's ID.
    fn tier(raw: Option<&'a str>, country: CountryCode) -> Self {
        match raw.and_then(names_dispatcher) {
            Some(id) => Number {
                stored: raw,
                normalised: Ok(None),
                names: Some(id),
            },
            None => Number::of(raw, country),
        }
    }

    /// The E.164 number, `-` when unset, `invalid "<as stored>"` when it does not
    /// normalise.
    fn short(&self) -> String {
        if let Some(id) = &self.names {
            return format!("{id} (dispatcher)");
        }
        match (&self.normalised, self.stored) {
            (Ok(Some(number)), _) => number.to_string(),
            (Ok(None), _) | (Err(_), None) => "-".into(),
            (Err(_), Some(raw)) => format!("invalid {raw:?}"),
        }
    }

    /// As [`Number::short`], saying how it was stored when that differs, or why it
    /// does not normalise.
    fn long(&self) -> String {
        match (&self.normalised, self.stored) {
            (Ok(Some(number)), Some(raw)) if raw != number.as_str() => {
                format!("{number} (stored as {raw:?})")
            }
            (Err(reason), Some(raw)) => format!("invalid {raw:?} ({reason})"),
            _ => self.short(),
        }
    }

    fn json(&self) -> Value {
        if let Some(id) = &self.names {
            return json!({"stored": self.stored, "dispatcher": id.as_str()});
        }
        match (&self.normalised, self.stored) {
            (_, None) => Value::Null,
            (Ok(number), Some(raw)) => json!({
                "stored": raw,
                "e164": number.as_ref().map(PhoneNumber::as_str),
            }),
            (Err(reason), Some(raw)) => json!({"stored": raw, "e164": null, "error": reason}),
        }
    }
}

/// One item as `list` and `show` present it.
struct View<'a> {
    record: &'a DispatcherRecord,
    phone: Number<'a>,
    backup: Number<'a>,
    tertiary: Number<'a>,
    problems: Vec<ConfigProblem>,
    /// Whether the dispatcher is primary now (by the rota, or as the fallback).
    primary: bool,
    primary_source: &'static str,
}

impl<'a> View<'a> {
    fn of(record: &'a DispatcherRecord, settings: &Settings, primary_now: &Duty) -> Self {
        let country = settings.default_country;
        let phone = Number::of(record.phone.as_deref(), country);
        let usable = phone.normalised.clone().ok().flatten();
        // The heartbeat's own judgement of the item's configuration.
        let problems = assess(record, usable.as_ref(), DeliveryHealth::default(), country).problems;
        View {
            record,
            backup: Number::tier(record.backup_dispatcher.as_deref(), country),
            tertiary: Number::tier(record.tertiary_contact.as_deref(), country),
            phone,
            problems,
            primary: record.dispatcher_id == primary_now.dispatcher,
            primary_source: primary_now.source.name(),
        }
    }

    fn json(&self, now: i64) -> Value {
        let r = self.record;
        json!({
            "dispatcher_id": r.dispatcher_id.as_str(),
            "primary": self.primary,
            "primary_source": self.primary.then_some(self.primary_source),
            "phone": self.phone.json(),
            "available": r.is_marked_available(),
            "on_duty": r.is_on_duty(),
            "last_heartbeat": r.last_heartbeat,
            "heartbeat_age_secs": r.last_heartbeat.map(|at| now.saturating_sub(at)),
            "backup_dispatcher": self.backup.json(),
            "tertiary_contact": self.tertiary.json(),
            "message_log_ttl": r.message_log_ttl,
            "problems": self.problems.iter().map(problem_json).collect::<Vec<_>>(),
        })
    }
}

/// A problem for `--json`: its parts, its stable key and its sentence.
pub fn problem_json(problem: &ConfigProblem) -> Value {
    json!({
        "dispatcher_id": problem.dispatcher(),
        "attribute": problem.attribute_name(),
        "kind": problem.kind(),
        "key": problem.key().as_str(),
        "problem": problem.to_string(),
    })
}

/// A stored flag as people read it; `absent` is what an absent attribute means.
fn flag_text(flag: Flag, absent: &str) -> String {
    match flag {
        Flag::Set(value) => yes_no(value).into(),
        Flag::Absent => absent.into(),
        Flag::Damaged => "no (not a boolean: see the problems)".into(),
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

/// The key of an item that did not parse, as it may be shown.
fn unreadable_key(item: &UnreadableDispatcher) -> String {
    item.key.clone().unwrap_or_else(|| "?".into())
}

/// Who is primary now, for `--json`.
fn duty_json(duty: &Duty) -> Value {
    json!({"dispatcher": duty.dispatcher.as_str(), "source": duty.source.name()})
}

/// A line saying the primary now has no item, when it has none.
fn primary_without_item(roster: &Roster, duty: &Duty, settings: &Settings) -> Option<String> {
    roster.record(&duty.dispatcher).is_none().then(|| {
        format!(
            "the primary now, {} ({}), has no dispatcher item in {} (see `qdn who`)",
            duty.dispatcher,
            why(roster, &duty.source),
            settings.state_table
        )
    })
}

async fn list(settings: &Settings) -> CommandResult {
    let aws = context::aws_config().await;
    let store = context::dispatcher_store(&aws, settings);
    let roster = store.roster().await?;
    let now = unix_now();
    let duty = roster.duty_at(&settings.primary_dispatcher_id, now);
    let mut items = roster.items.clone();
    items.sort_by_key(|item| match item {
        Ok(record) => record.dispatcher_id.as_str().to_string(),
        Err(e) => unreadable_key(e),
    });
    if settings.json {
        let listed: Vec<Value> = items
            .iter()
            .map(|item| match item {
                Ok(record) => View::of(record, settings, &duty).json(now),
                Err(e) => json!({
                    "dispatcher_id": unreadable_key(e),
                    "problems": [problem_json(&ConfigProblem::Unreadable(e.clone()))],
                }),
            })
            .collect();
        out_json(&json!({
            "table": settings.state_table,
            "primary_now": duty_json(&duty),
            "rota": rota_state(&roster),
            "dispatchers": listed,
        }));
        return Ok(Done::Ok);
    }
    let missing = primary_without_item(&roster, &duty, settings);
    if items.is_empty() {
        let mut text = format!("no dispatcher items in {}", settings.state_table);
        if let Some(missing) = missing {
            text.push_str(&format!(
                "
{missing}"
            ));
        }
        out(&text);
        return Ok(Done::Ok);
    }
    let mut t = table(&[
        "ID",
        "PRIMARY NOW",
        "PHONE",
        "AVAILABLE",
        "ON DUTY",
        "HEARTBEAT",
        "BACKUP",
        "TERTIARY",
    ]);
    let mut notes = Vec::new();
    for item in &items {
        match item {
            Ok(record) => {
                let view = View::of(record, settings, &duty);
                let primary = match view.primary {
                    true => format!("yes ({})", view.primary_source),
                    false => "no".into(),
                };
                t.add_row(vec![
                    record.dispatcher_id.to_string(),
                    primary,
                    view.phone.short(),
                    flag_text(record.available, "no"),
                    flag_text(record.on_duty, "yes"),
                    age(now, record.last_heartbeat),
                    view.backup.short(),
                    view.tertiary.short(),
                ]);
                notes.extend(view.problems.iter().map(ToString::to_string));
            }
            Err(e) => {
                t.add_row(vec![unreadable_key(e), "(unreadable item)".into()]);
                notes.push(ConfigProblem::Unreadable(e.clone()).to_string());
            }
        }
    }
    let mut text = render(&mut t);
    if let Some(missing) = missing {
        text.push_str(&format!("\n{missing}"));
    }
    if !notes.is_empty() {
        text.push_str(&format!(
            "\n\n{} problem(s) (see `qdn dispatchers check`):",
            notes.len()
        ));
        for note in notes {
            text.push_str(&format!("\n  {note}"));
        }
    }
    out(&text);
    Ok(Done::Ok)
}

/// The ID of an item to look up: one that cannot be an ID has no item (exit 1).
pub fn lookup_id(raw: &str, settings: &Settings) -> Result<DispatcherId, Failure> {
    DispatcherId::parse(raw).map_err(|e| {
        Failure::not_found(format!(
            "no dispatcher item {raw:?} in {}: {e}",
            settings.state_table
        ))
    })
}

pub fn no_such_dispatcher(id: &DispatcherId, settings: &Settings) -> Failure {
    Failure::not_found(format!(
        "no dispatcher item {:?} in {}",
        id.as_str(),
        settings.state_table
    ))
}

async fn show(settings: &Settings, raw_id: &str) -> CommandResult {
    let id = lookup_id(raw_id, settings)?;
    let aws = context::aws_config().await;
    let store = context::dispatcher_store(&aws, settings);
    // The whole table at once: the item, and the rota that says who is primary now.
    let roster = store.roster().await?;
    let record = roster
        .record(&id)
        .ok_or_else(|| no_such_dispatcher(&id, settings))?;
    let now = unix_now();
    let duty = roster.duty_at(&settings.primary_dispatcher_id, now);
    let view = View::of(record, settings, &duty);
    if settings.json {
        out_json(&view.json(now));
        return Ok(Done::Ok);
    }
    let mut t = table(&[]);
    let id_text = if view.primary {
        format!("{id} (primary now: {})", why(&roster, &duty.source))
    } else {
        format!("{id} (not primary now: {} is)", duty.dispatcher)
    };
    let on_duty = flag_text(record.on_duty, "yes (not set: on duty by default)");
    let damaged = |attribute| record.damage(attribute).is_some();
    let heartbeat = match record.last_heartbeat {
        Some(at) => format!("{} ({})", iso(at), age(now, Some(at))),
        None if damaged(DispatcherAttribute::LastHeartbeat) => {
            "unreadable: counts as stale (see the problems)".into()
        }
        None => "never".into(),
    };
    let default_ttl = format!(
        "{DEFAULT_MESSAGE_LOG_TTL_SECS} = {} by default",
        duration(DEFAULT_MESSAGE_LOG_TTL_SECS)
    );
    let ttl = match record.message_log_ttl {
        Some(ttl) => format!("{ttl} ({})", duration(ttl)),
        None if damaged(DispatcherAttribute::MessageLogTtl) => {
            format!("unusable, so {default_ttl} (see the problems)")
        }
        None => format!("not set ({default_ttl})"),
    };
    let problems = match view.problems.len() {
        0 => "none".to_string(),
        n => format!("{n} (below)"),
    };
    for (name, value) in [
        ("dispatcher_id", id_text),
        ("phone", view.phone.long()),
        ("available", flag_text(record.available, "no (not set)")),
        ("on_duty", on_duty),
        ("last_heartbeat", heartbeat),
        ("backup_dispatcher", view.backup.long()),
        ("tertiary_contact", view.tertiary.long()),
        ("message_log_ttl", ttl),
        ("problems", problems),
    ] {
        t.add_row(vec![name.to_string(), value]);
    }
    let mut text = render(&mut t);
    for problem in &view.problems {
        text.push_str(&format!("\nPROBLEM: {problem}"));
    }
    out(&text);
    Ok(Done::Ok)
}

/// A backup or tertiary given to `put`: a dispatcher's ID (it starts with a letter, a
/// number never does) as given, else a number normalised.
fn flag_tier(
    flag: &str,
    raw: Option<&str>,
    country: CountryCode,
) -> Result<Option<String>, Failure> {
    match raw.and_then(names_dispatcher) {
        Some(id) => Ok(Some(id.to_string())),
        None => flag_number(flag, raw, country),
    }
}

/// Normalises a number given to `put`, naming the flag when it does not.
fn flag_number(
    flag: &str,
    raw: Option<&str>,
    country: CountryCode,
) -> Result<Option<String>, Failure> {
    raw.map(|raw| {
        PhoneNumber::parse(raw, country)
            .map(String::from)
            .map_err(|e| Failure::usage(format!("--{flag}: {e}")))
    })
    .transpose()
}

/// Everything `put` would write, checked before anything is read or written.
fn patch_from(args: &PutArgs, country: CountryCode) -> Result<DispatcherPatch, Failure> {
    let message_log_ttl = match &args.ttl {
        None => None,
        Some(raw) => {
            let secs = parse_duration(raw).map_err(|e| Failure::usage(format!("--ttl: {e}")))?;
            if secs == 0 || secs > MAX_TTL_SECS.unsigned_abs() {
                return Err(Failure::usage(format!(
                    "--ttl: {secs} seconds is not from 1 second to 366 days ({MAX_TTL_SECS} seconds)"
                )));
            }
            Some(secs)
        }
    };
    let patch = DispatcherPatch {
        phone: flag_number("phone", args.phone.as_deref(), country)?,
        backup_dispatcher: flag_tier("backup", args.backup.as_deref(), country)?,
        tertiary_contact: flag_tier("tertiary", args.tertiary.as_deref(), country)?,
        message_log_ttl,
        on_duty: args.on_duty,
    };
    if patch.is_empty() {
        return Err(Failure::usage(
            "nothing to write: give at least one of --phone, --backup, --tertiary, --ttl, --on-duty",
        ));
    }
    Ok(patch)
}

/// A field as `put` shows it.
fn field_json(field: &Field) -> Value {
    match field {
        Field::Text(text) => json!(text),
        Field::Seconds(secs) => json!(secs),
        Field::Flag(flag) => json!(flag),
        Field::Time(at) => json!(at),
    }
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn put(settings: &Settings, args: PutArgs) -> CommandResult {
    let id = DispatcherId::parse(&args.id).map_err(|e| Failure::usage(e.to_string()))?;
    let patch = patch_from(&args, settings.default_country)?;
    let aws = context::aws_config().await;
    let store = context::dispatcher_store(&aws, settings);
    // What was there, to say what changed; an unreadable item exists all the same.
    let before = match store.get(&id).await {
        Ok(Some(record)) => Some(record),
        Ok(None) => None,
        Err(e) => return Err(e.into()),
    };
    if before.is_none() && patch.phone.is_none() {
        return Err(Failure::usage(format!(
            "there is no dispatcher item {:?} in {}: creating one needs --phone",
            id.as_str(),
            settings.state_table
        )));
    }
    let now = unix_now();
    let outcome = context::operator_store(&aws, settings)
        .put_fields(&id, &patch, now)
        .await?;
    let mut written = patch.fields();
    if outcome == PutOutcome::Created {
        written.extend(new_item_fields(now));
    }
    let verb = match outcome {
        PutOutcome::Created => "created",
        PutOutcome::Updated => "updated",
    };
    if settings.json {
        let set: serde_json::Map<String, Value> = written
            .iter()
            .map(|(attribute, value)| (attribute.to_string(), field_json(value)))
            .collect();
        out_json(&json!({
            "dispatcher_id": id.as_str(),
            "outcome": verb,
            "set": set,
        }));
        return Ok(Done::Ok);
    }
    let old = |attribute| match (&before, outcome) {
        (Some(record), PutOutcome::Updated) => shown(&stored_field(record, attribute)),
        _ => "-".into(),
    };
    let mut t = table(&["FIELD", "BEFORE", "AFTER"]);
    for (attribute, value) in &written {
        let after = match value {
            Field::Time(at) => iso(*at),
            other => shown(&field_json(other)),
        };
        t.add_row(vec![attribute.to_string(), old(*attribute), after]);
    }
    let scope = match outcome {
        PutOutcome::Created => "a new item, available now",
        PutOutcome::Updated => "only these fields; the others are unchanged",
    };
    out(&format!(
        "{verb} dispatcher item {id} in {} ({scope}):\n{}",
        settings.state_table,
        render(&mut t)
    ));
    Ok(Done::Ok)
}

/// A field `put` writes, as the item held it (its safe value when it was damaged).
fn stored_field(record: &DispatcherRecord, attribute: DispatcherAttribute) -> Value {
    let flag = |flag: Flag| match flag {
        Flag::Set(value) => json!(value),
        Flag::Absent => Value::Null,
        Flag::Damaged => json!("(damaged)"),
    };
    match attribute {
        DispatcherAttribute::Phone => json!(record.phone),
        DispatcherAttribute::BackupDispatcher => json!(record.backup_dispatcher),
        DispatcherAttribute::TertiaryContact => json!(record.tertiary_contact),
        DispatcherAttribute::MessageLogTtl => json!(record.message_log_ttl),
        DispatcherAttribute::OnDuty => flag(record.on_duty),
        DispatcherAttribute::Available => flag(record.available),
        DispatcherAttribute::LastHeartbeat => json!(record.last_heartbeat),
        DispatcherAttribute::DispatcherId => json!(record.dispatcher_id.as_str()),
    }
}

async fn check(settings: &Settings) -> CommandResult {
    let aws = context::aws_config().await;
    let store = context::dispatcher_store(&aws, settings);
    let roster = store.roster().await?;
    let now = unix_now();
    let fallback = &settings.primary_dispatcher_id;
    let problems = configuration_problems(&roster, fallback, settings.default_country, now);
    let duty = roster.duty_at(fallback, now);
    let items = &roster.items;
    let checked = match &roster.rota {
        RotaItem::Absent => format!(
            "{} dispatcher item(s) in {} checked, and there is no rota",
            items.len(),
            settings.state_table
        ),
        RotaItem::Unreadable(_) => format!(
            "{} dispatcher item(s) and the rota in {} checked",
            items.len(),
            settings.state_table
        ),
        RotaItem::Stored(stored) => format!(
            "{} dispatcher item(s) and the rota ({}, {} shift(s), {} override(s) to come) in {} checked",
            items.len(),
            stored.rota.zone_name(),
            stored.rota.shifts.len(),
            stored.rota.overrides.iter().filter(|o| o.to > now).count(),
            settings.state_table
        ),
    };
    if settings.json {
        out_json(&json!({
            "table": settings.state_table,
            "primary_dispatcher_id": fallback.as_str(),
            "primary_now": duty_json(&duty),
            "rota": rota_state(&roster),
            "checked": items.len(),
            "problems": problems.iter().map(problem_json).collect::<Vec<_>>(),
        }));
    } else if problems.is_empty() {
        let primary = match &roster.rota {
            RotaItem::Absent => format!("PRIMARY_DISPATCHER_ID {fallback} is primary at all times"),
            _ => format!("primary now {} ({})", duty.dispatcher, duty.source.name()),
        };
        out(&format!("no problems: {checked}; {primary}"));
    } else {
        let mut text: String = problems.iter().map(|p| format!("PROBLEM: {p}\n")).collect();
        let rota = match &roster.rota {
            RotaItem::Absent => String::new(),
            _ => " and the rota".into(),
        };
        text.push_str(&format!(
            "{} problem(s) in {} dispatcher item(s){rota} of {}; primary now {} ({})",
            problems.len(),
            items.len(),
            settings.state_table,
            duty.dispatcher,
            duty.source.name()
        ));
        out(&text);
    }
    Ok(if problems.is_empty() {
        Done::Ok
    } else {
        Done::Problems
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::PutArgs;

    fn args(phone: Option<&str>, backup: Option<&str>, ttl: Option<&str>) -> PutArgs {
        PutArgs {
            id: "maria-backup".into(),
            phone: phone.map(String::from),
            backup: backup.map(String::from),
            tertiary: None,
            ttl: ttl.map(String::from),
            on_duty: None,
        }
    }

    #[test]
    fn put_writes_numbers_normalised() {
        let patch = patch_from(
            &args(Some("858-335-4807"), None, Some("1d")),
            CountryCode::NANP,
        )
        .unwrap();
        assert_eq!(patch.phone.as_deref(), Some("+18583354807"));
        assert_eq!(patch.backup_dispatcher, None);
        assert_eq!(patch.message_log_ttl, Some(86_400));
    }

    #[test]
    fn put_names_the_flag_of_a_bad_number() {
        let err = patch_from(
            &args(Some("858-335-4807"), Some("555-01"), None),
            CountryCode::NANP,
        )
        .unwrap_err();
        assert_eq!(err.status, 2);
        assert!(err.message.starts_with("--backup: "), "{}", err.message);
        let err = patch_from(&args(None, None, Some("400d")), CountryCode::NANP).unwrap_err();
        assert!(err.message.starts_with("--ttl: "), "{}", err.message);
        let err = patch_from(&args(None, None, None), CountryCode::NANP).unwrap_err();
        assert!(err.message.contains("nothing to write"), "{}", err.message);
    }

    #[test]
    fn a_tier_naming_a_dispatcher_is_shown_and_written_as_its_id() {
        let named = Number::tier(Some("night-desk"), CountryCode::NANP);
        assert_eq!(named.short(), "night-desk (dispatcher)");
        assert_eq!(named.json()["dispatcher"], "night-desk");
        let number = Number::tier(Some("858-335-4807"), CountryCode::NANP);
        assert_eq!(number.short(), "+18583354807");
        let put = |raw| flag_tier("backup", Some(raw), CountryCode::NANP);
        assert_eq!(put("night-desk").unwrap().as_deref(), Some("night-desk"));
        assert_eq!(
            put("858-335-4807").unwrap().as_deref(),
            Some("+18583354807")
        );
        assert!(put("12").is_err(), "a number must still normalise");
    }

    #[test]
    fn numbers_show_normalised_or_flagged() {
        let good = Number::of(Some("858-335-4807"), CountryCode::NANP);
        assert_eq!(good.short(), "+18583354807");
        assert_eq!(good.long(), "+18583354807 (stored as \"858-335-4807\")");
        let bad = Number::of(Some("555-01"), CountryCode::NANP);
        assert_eq!(bad.short(), "invalid \"555-01\"");
        assert!(bad.long().contains("wrong number of digits"));
        assert_eq!(Number::of(None, CountryCode::NANP).short(), "-");
        assert_eq!(Number::of(Some("  "), CountryCode::NANP).short(), "-");
    }
}
