//! `qdn rota show | set FILE | override ID --from T --to T`: the rota item (`#rota`)
//! of the state table, in the one text format `relay_core::rota` reads and writes.

use aws_sdk_dynamodb::types::AttributeValue;
use relay_core::ids::DispatcherId;
use relay_core::ports::DispatcherStore;
use relay_core::problem::ConfigProblem;
use relay_core::roster::{Roster, RotaItem};
use relay_core::rota::{Override, Rota, RotaProblem, StoredRota, check_rota};
use serde_json::{Value, json};

use crate::cli::{OverrideArgs, RotaCommand};
use crate::context::{self, CommandResult, Done, Failure, Settings};
use crate::dispatchers::{lookup_id, problem_json};
use crate::format::{age, out, out_json, parse_duration, unix_now};
use crate::who::{Answer, Clock};

/// The zone of a rota `qdn rota override` creates when there is none.
const NEW_ROTA_ZONE: &str = "UTC";

/// How many times `override` reads and writes again when someone else changed the
/// rota between its read and its write.
const OVERRIDE_ATTEMPTS: usize = 3;

pub async fn run(settings: &Settings, command: RotaCommand) -> CommandResult {
    match command {
        RotaCommand::Show => show(settings).await,
        RotaCommand::Set { file } => set(settings, &file).await,
        RotaCommand::Override(args) => add_override(settings, args).await,
    }
}

/// `rota.txt line 3: ...`, or `rota.txt: ...` for the file as a whole.
fn at_line(name: &str, line: Option<usize>, message: impl std::fmt::Display) -> String {
    match line {
        Some(line) => format!("{name} line {line}: {message}"),
        None => format!("{name}: {message}"),
    }
}

/// A warning: one line on stderr, the command carrying on.
fn warn(message: &str) {
    eprintln!("qdn: warning: {}", crate::format::one_line(message));
}

/// The rota as stored, with what `show` and `who` need.
fn stored_json(
    settings: &Settings,
    rota: Option<&Rota>,
    state: &str,
    text: Option<&str>,
    updated_at: Option<i64>,
    past_overrides: usize,
    problems: &[ConfigProblem],
) -> Value {
    let clock = Clock::for_rota(rota);
    let shifts: Vec<Value> = rota
        .map(|r| r.shifts.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|s| {
            json!({
                "days": s.days.to_string(),
                "from": s.from.to_string(),
                "to": s.to.to_string(),
                "dispatcher": s.dispatcher.as_str(),
            })
        })
        .collect();
    let overrides: Vec<Value> = rota
        .map(|r| r.overrides.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|o| {
            json!({
                "from": clock.rfc3339(o.from),
                "to": clock.rfc3339(o.to),
                "from_unix": o.from,
                "to_unix": o.to,
                "dispatcher": o.dispatcher.as_str(),
            })
        })
        .collect();
    json!({
        "table": settings.state_table,
        "rota": state,
        "primary_dispatcher_id": settings.primary_dispatcher_id.as_str(),
        "zone": rota.map(Rota::zone_name),
        "shifts": shifts,
        "overrides": overrides,
        "past_overrides": past_overrides,
        "text": text,
        "updated_at": updated_at,
        "problems": problems.iter().map(problem_json).collect::<Vec<_>>(),
    })
}

async fn show(settings: &Settings) -> CommandResult {
    let aws = context::aws_config().await;
    let roster = context::dispatcher_store(&aws, settings).roster().await?;
    let now = unix_now();
    let fallback = &settings.primary_dispatcher_id;
    match &roster.rota {
        RotaItem::Absent => {
            if settings.json {
                out_json(&stored_json(settings, None, "absent", None, None, 0, &[]));
            } else {
                out(&format!(
                    "no rota in {}: PRIMARY_DISPATCHER_ID ({fallback}) is primary at all times (write one with `qdn rota set FILE`)",
                    settings.state_table
                ));
            }
            Ok(Done::Ok)
        }
        RotaItem::Unreadable(why) => {
            let problem = ConfigProblem::Rota(RotaProblem::Unreadable(why.clone()));
            // The text as stored, to mend it from.
            let raw = match context::operator_store(&aws, settings).raw_rota().await? {
                Some(AttributeValue::S(text)) => Some(text),
                _ => None,
            };
            if settings.json {
                let problems = [problem];
                out_json(&stored_json(
                    settings,
                    None,
                    "unreadable",
                    raw.as_deref(),
                    None,
                    0,
                    &problems,
                ));
            } else {
                let mut text = format!(
                    "PROBLEM: {problem}\nPRIMARY_DISPATCHER_ID ({fallback}) is primary until `qdn rota set FILE` replaces it"
                );
                if let Some(raw) = raw {
                    text.push_str(":\nthe stored text, as it is:\n");
                    text.push_str(&raw);
                }
                out(&text);
            }
            Ok(Done::Problems)
        }
        RotaItem::Stored(stored) => {
            let exists = |id: &DispatcherId| roster.record(id).is_some();
            let problems = check_rota(&stored.rota, &exists, now);
            let mut shown = stored.rota.clone();
            let past = shown.overrides.iter().filter(|o| o.to <= now).count();
            shown.drop_overrides_before(now);
            let text = shown.render();
            if settings.json {
                let problems: Vec<ConfigProblem> =
                    problems.into_iter().map(ConfigProblem::Rota).collect();
                out_json(&stored_json(
                    settings,
                    Some(&shown),
                    "stored",
                    Some(&text),
                    stored.updated_at,
                    past,
                    &problems,
                ));
                return Ok(Done::Ok);
            }
            let clock = Clock::for_rota(Some(&shown));
            let written = match stored.updated_at {
                Some(at) => format!("written {} ({})", clock.wall(at), age(now, Some(at))),
                None => "when it was written is not recorded".into(),
            };
            let mut lines = vec![format!(
                "# the rota of {}, zone {}: {written}",
                settings.state_table,
                shown.zone_name()
            )];
            if past > 0 {
                lines.push(format!(
                    "# {past} override(s) already over are stored and not shown (the next `qdn rota set` or `qdn rota override` drops them)"
                ));
            }
            lines.push(text.trim_end().to_string());
            lines.extend(problems.iter().map(|p| format!("# PROBLEM: {p}")));
            out(&lines.join("\n"));
            Ok(Done::Ok)
        }
    }
}

/// The line of each shift and override of a rota's text, in the order
/// [`Rota::parse`] keeps them (it parsed, so every other line is blank, a comment or
/// the zone).
struct EntryLines {
    shifts: Vec<usize>,
    overrides: Vec<usize>,
}

impl EntryLines {
    fn of(text: &str) -> Self {
        let mut lines = EntryLines {
            shifts: Vec::new(),
            overrides: Vec::new(),
        };
        for (index, line) in text.lines().enumerate() {
            let content = line.split('#').next().unwrap_or("");
            match content.split_whitespace().next() {
                None => {}
                Some(word) if word.eq_ignore_ascii_case("zone") => {}
                Some(word) if word.eq_ignore_ascii_case("override") => {
                    lines.overrides.push(index + 1)
                }
                Some(_) => lines.shifts.push(index + 1),
            }
        }
        lines
    }

    /// The first line naming `id`: a shift's, else a running or future override's.
    fn naming(&self, rota: &Rota, id: &DispatcherId, now: i64) -> Option<usize> {
        let shift = rota.shifts.iter().position(|s| s.dispatcher == *id);
        if let Some(index) = shift {
            return self.shifts.get(index).copied();
        }
        rota.overrides
            .iter()
            .position(|o| o.dispatcher == *id && o.to > now)
            .and_then(|index| self.overrides.get(index).copied())
    }
}

/// The file `rota set` reads, and the name its errors give it.
fn read_rota_file(file: &str) -> Result<(String, String), Failure> {
    if file == "-" {
        let text = std::io::read_to_string(std::io::stdin())
            .map_err(|e| Failure::usage(format!("cannot read the rota from stdin: {e}")))?;
        return Ok(("stdin".into(), text));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("cannot read {file}: {e}")))?;
    Ok((file.to_string(), text))
}

/// What `rota set` makes of a file: the rota to store, or why not (exit 2, naming the
/// line), and the warnings to print once it is written. Pure.
fn checked_rota(
    name: &str,
    raw: &str,
    roster: &Roster,
    settings: &Settings,
    now: i64,
) -> Result<(Rota, Vec<String>), Failure> {
    let parsed = Rota::parse(raw).map_err(|e| Failure::usage(at_line(name, e.line, e.problem)))?;
    let lines = EntryLines::of(raw);
    let fallback = &settings.primary_dispatcher_id;
    let exists = |id: &DispatcherId| roster.record(id).is_some();
    let mut refusals: Vec<(Option<usize>, String)> = Vec::new();
    let mut warnings = Vec::new();
    for problem in check_rota(&parsed, &exists, now) {
        match problem {
            RotaProblem::MissingDispatcher(id) => refusals.push((
                lines.naming(&parsed, &id, now),
                format!(
                    "dispatcher {id} has no item in {} (create it first: `qdn dispatchers put {id} --phone N`)",
                    settings.state_table
                ),
            )),
            RotaProblem::Overlap {
                first,
                second,
                from,
            } => {
                let line_of = |index: Option<usize>| index.and_then(|i| lines.shifts.get(i).copied());
                let first_line = line_of(parsed.shifts.iter().position(|s| s.to_string() == first));
                let second_line =
                    line_of(parsed.shifts.iter().rposition(|s| s.to_string() == second));
                let other = match first_line {
                    Some(line) => format!("line {line}'s \"{first}\""),
                    None => format!("\"{first}\""),
                };
                refusals.push((
                    second_line,
                    format!(
                        "shift \"{second}\" overlaps {other} from {from}: one shift at a time (use an override for a one-off)"
                    ),
                ));
            }
            RotaProblem::Gap { from, to } => warnings.push(format!(
                "{name}: no shift covers {from} to {to}: PRIMARY_DISPATCHER_ID ({fallback}) is primary then, and the heartbeat reports the gap"
            )),
            RotaProblem::Unreadable(why) => refusals.push((None, why.to_string())),
        }
    }
    if !refusals.is_empty() {
        refusals.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
        let more = refusals.len() - 1;
        let (line, message) = refusals.swap_remove(0);
        let mut message = at_line(name, line, message);
        if more > 0 {
            message.push_str(&format!(" (and {more} more problem(s))"));
        }
        message.push_str("; nothing written");
        return Err(Failure::usage(message));
    }
    for (index, o) in parsed.overrides.iter().enumerate() {
        if o.to <= now {
            warnings.push(at_line(
                name,
                lines.overrides.get(index).copied(),
                format!(
                    "the override for {} ended {}: not kept",
                    o.dispatcher,
                    parsed.local_text(o.to)
                ),
            ));
        }
    }
    if parsed.shifts.is_empty() {
        warnings.push(format!(
            "{name} has no shifts: PRIMARY_DISPATCHER_ID ({fallback}) is primary outside the overrides"
        ));
    }
    let mut rota = parsed;
    rota.drop_overrides_before(now);
    Ok((rota, warnings))
}

/// The roster as it is once `rota` is stored.
fn with_stored(roster: &Roster, rota: Rota, text: String, now: i64) -> Roster {
    roster.clone().with_rota(RotaItem::Stored(StoredRota {
        rota,
        text,
        updated_at: Some(now),
    }))
}

async fn set(settings: &Settings, file: &str) -> CommandResult {
    let (name, raw) = read_rota_file(file)?;
    // A file that does not parse is refused before anything is read from AWS.
    Rota::parse(&raw).map_err(|e| Failure::usage(at_line(&name, e.line, e.problem)))?;
    let max_age = settings.heartbeat_max_age_secs()?;
    let aws = context::aws_config().await;
    let store = context::dispatcher_store(&aws, settings);
    let roster = store.roster().await?;
    let now = unix_now();
    let (rota, warnings) = checked_rota(&name, &raw, &roster, settings, now)?;
    let text = rota.render();
    let written = match &roster.rota {
        RotaItem::Absent => store.put_rota(&text, None, now).await?,
        RotaItem::Stored(stored) => store.put_rota(&text, Some(&stored.text), now).await?,
        RotaItem::Unreadable(_) => {
            let operator = context::operator_store(&aws, settings);
            match operator.raw_rota().await? {
                Some(AttributeValue::S(old)) => store.put_rota(&text, Some(&old), now).await?,
                _ => operator.replace_rota_without_text(&text, now).await?,
            }
        }
    };
    if !written {
        return Err(Failure::aws(
            "the rota changed while it was being replaced; nothing written: run again",
        ));
    }
    for warning in &warnings {
        warn(warning);
    }
    let summary = format!(
        "rota of {} replaced from {name}: zone {}, {} shift(s), {} override(s)",
        settings.state_table,
        rota.zone_name(),
        rota.shifts.len(),
        rota.overrides.len()
    );
    let (zone, shifts, overrides) = (
        rota.zone_name().to_string(),
        rota.shifts.len(),
        rota.overrides.len(),
    );
    let after = with_stored(&roster, rota, text.clone(), now);
    let answer = Answer::of(&after, settings, now, max_age);
    if settings.json {
        out_json(&json!({
            "table": settings.state_table,
            "zone": zone,
            "shifts": shifts,
            "overrides": overrides,
            "text": text,
            "updated_at": now,
            "warnings": warnings,
            "who": answer.json(),
        }));
    } else {
        out(&format!("{summary}\n{}", answer.text()));
    }
    Ok(Done::Ok)
}

/// A time given to `override`: `now`, `+2h` from now, local in the rota's zone, or
/// RFC 3339.
fn parse_when(flag: &str, raw: &str, rota: &Rota, now: i64) -> Result<i64, Failure> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    if let Some(rest) = raw.strip_prefix('+') {
        let secs = parse_duration(rest).map_err(|e| Failure::usage(format!("--{flag}: {e}")))?;
        return i64::try_from(secs)
            .ok()
            .and_then(|secs| now.checked_add(secs))
            .ok_or_else(|| Failure::usage(format!("--{flag}: {raw:?} is too far off")));
    }
    rota.parse_instant(raw).map_err(|_| {
        Failure::usage(format!(
            "--{flag}: {:?} is not a time: give now, +30m, +2h or +1d, a local time in the rota's zone ({}) such as 2026-12-24T18:00, or RFC 3339 such as 2026-12-24T18:00-08:00",
            raw.chars().take(64).collect::<String>(),
            rota.zone_name()
        ))
    })
}

async fn add_override(settings: &Settings, args: OverrideArgs) -> CommandResult {
    let id = lookup_id(&args.id, settings)?;
    let max_age = settings.heartbeat_max_age_secs()?;
    let aws = context::aws_config().await;
    let store = context::dispatcher_store(&aws, settings);
    let fallback = &settings.primary_dispatcher_id;
    for _ in 0..OVERRIDE_ATTEMPTS {
        let roster = store.roster().await?;
        if roster.record(&id).is_none() {
            return Err(Failure::not_found(format!(
                "unknown dispatcher {id}: no dispatcher item {:?} in {}; nothing written",
                id.as_str(),
                settings.state_table
            )));
        }
        let now = unix_now();
        let (mut rota, expected) = match &roster.rota {
            RotaItem::Absent => (
                Rota::empty(NEW_ROTA_ZONE).map_err(|e| Failure::usage(e.to_string()))?,
                None,
            ),
            RotaItem::Stored(stored) => (stored.rota.clone(), Some(stored.text.clone())),
            RotaItem::Unreadable(why) => {
                return Err(Failure::usage(format!(
                    "the stored rota is unreadable ({why}): replace it with `qdn rota set FILE` first; nothing written"
                )));
            }
        };
        let clock = Clock::for_rota(Some(&rota));
        let from = parse_when("from", &args.from, &rota, now)?;
        let to = parse_when("to", &args.to, &rota, now)?;
        if to <= from {
            return Err(Failure::usage(format!(
                "--to ({}) must be after --from ({}); nothing written",
                rota.local_text(to),
                rota.local_text(from)
            )));
        }
        if to <= now {
            return Err(Failure::usage(format!(
                "--to ({}) is already past: an override must end in the future; nothing written",
                rota.local_text(to)
            )));
        }
        let past = rota.overrides.iter().filter(|o| o.to <= now).count();
        rota.drop_overrides_before(now);
        let mut warnings = Vec::new();
        if past > 0 {
            warnings.push(format!(
                "{past} override(s) already over dropped from the rota"
            ));
        }
        for o in rota.overrides.iter().filter(|o| o.from < to && from < o.to) {
            let winner = if o.from > from { &o.dispatcher } else { &id };
            warnings.push(format!(
                "it overlaps the override for {} from {} to {}: {winner} is primary where they overlap (the later-starting one)",
                o.dispatcher,
                clock.wall(o.from),
                clock.wall(o.to)
            ));
        }
        let added = Override {
            from,
            to,
            dispatcher: id.clone(),
        };
        rota.overrides.push(added);
        // In time order, for people reading it; the later-starting still wins, and
        // of two starting together the one added last (a stable sort keeps it last).
        rota.overrides.sort_by_key(|o| o.from);
        let text = rota.render();
        if !store.put_rota(&text, expected.as_deref(), now).await? {
            continue;
        }
        for warning in &warnings {
            warn(warning);
        }
        let line = format!(
            "override {} {} {id}",
            rota.local_text(from),
            rota.local_text(to)
        );
        let created = expected.is_none();
        let zone = rota.zone_name().to_string();
        let after = with_stored(&roster, rota, text, now);
        let answer = Answer::of(&after, settings, now, max_age);
        if settings.json {
            out_json(&json!({
                "table": settings.state_table,
                "override": {
                    "dispatcher": id.as_str(),
                    "from": clock.rfc3339(from),
                    "to": clock.rfc3339(to),
                    "from_unix": from,
                    "to_unix": to,
                },
                "zone": zone,
                "created_rota": created,
                "warnings": warnings,
                "who": answer.json(),
            }));
            return Ok(Done::Ok);
        }
        let mut text = format!(
            "override added to the rota of {}: {id} is primary from {} to {}\n  {line}\n",
            settings.state_table,
            clock.wall(from),
            clock.wall(to)
        );
        if created {
            text.push_str(&format!(
                "there was no rota: created one in zone {NEW_ROTA_ZONE} with no shifts, so PRIMARY_DISPATCHER_ID ({fallback}) is primary outside overrides\n"
            ));
        }
        text.push_str(&answer.text());
        out(&text);
        return Ok(Done::Ok);
    }
    Err(Failure::aws(format!(
        "the rota changed while the override was being added ({OVERRIDE_ATTEMPTS} times); nothing written: run again"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_lines_follow_the_parser() {
        let text = "# a comment\nzone UTC\n\nmon 06:00-14:00 a # note\noverride 2026-01-01T00:00 2026-01-02T00:00 b\n  daily 14:00-06:00 c\n";
        let lines = EntryLines::of(text);
        assert_eq!(lines.shifts, vec![4, 6]);
        assert_eq!(lines.overrides, vec![5]);
        let rota = Rota::parse(text).unwrap();
        let id = |s| DispatcherId::parse(s).unwrap();
        assert_eq!(lines.naming(&rota, &id("c"), 0), Some(6));
        assert_eq!(lines.naming(&rota, &id("b"), 0), Some(5));
        assert_eq!(lines.naming(&rota, &id("b"), i64::MAX), None, "over");
    }

    #[test]
    fn times_are_now_relative_local_or_rfc_3339() {
        let rota = Rota::parse("zone America/Los_Angeles\n").unwrap();
        let now = 1_798_000_000;
        assert_eq!(parse_when("to", "now", &rota, now).unwrap(), now);
        assert_eq!(parse_when("to", "+2h", &rota, now).unwrap(), now + 7_200);
        assert_eq!(parse_when("to", "+30m", &rota, now).unwrap(), now + 1_800);
        assert_eq!(parse_when("to", "+1d", &rota, now).unwrap(), now + 86_400);
        // 18:00 PST is 02:00 UTC the next day.
        let utc = "2026-12-25T02:00:00Z".parse::<jiff::Timestamp>().unwrap();
        for local in [
            "2026-12-24T18:00",
            "2026-12-24 18:00",
            "2026-12-24T18:00-08:00",
            "2026-12-25T02:00Z",
        ] {
            assert_eq!(
                parse_when("to", local, &rota, now).unwrap(),
                utc.as_second(),
                "{local}"
            );
        }
        for bad in ["+", "+2x", "tomorrow", "", "2026-13-01T00:00"] {
            let err = parse_when("to", bad, &rota, now).unwrap_err();
            assert_eq!(err.status, 2);
            assert!(err.message.starts_with("--to: "), "{}", err.message);
        }
    }
}
