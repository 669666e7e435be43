//! `qdn who`: who is primary now, why, since and until when, and who is next; the
//! same answer `rota set`, `rota override` and `dispatchers` print.

use relay_core::cascade::{Unavailability, primary_unavailability};
use relay_core::ids::DispatcherId;
use relay_core::ports::DispatcherStore;
use relay_core::roster::{Roster, RotaItem};
use relay_core::rota::{DutySource, Rota, Stint};
use serde_json::{Value, json};

use crate::context::{self, CommandResult, Done, Settings};
use crate::format::{age, out, out_json, render, table, unix_now};

pub async fn run(settings: &Settings) -> CommandResult {
    let max_age = settings.heartbeat_max_age_secs()?;
    let aws = context::aws_config().await;
    let roster = context::dispatcher_store(&aws, settings).roster().await?;
    let answer = Answer::of(&roster, settings, unix_now(), max_age);
    if settings.json {
        out_json(&answer.json());
    } else {
        out(&answer.text());
    }
    Ok(Done::Ok)
}

/// Times as the rota's zone shows them (UTC when there is no usable rota).
pub struct Clock {
    rota: Rota,
}

impl Clock {
    pub fn of(roster: &Roster) -> Clock {
        Clock::for_rota(roster.rota())
    }

    pub fn for_rota(rota: Option<&Rota>) -> Clock {
        let rota = match rota {
            Some(rota) => rota.clone(),
            None => Rota::empty("UTC").expect("UTC is always a known zone"),
        };
        Clock { rota }
    }

    /// `Wed 2 Dec 06:00 PST`.
    pub fn wall(&self, at: i64) -> String {
        self.rota.wall_clock(at)
    }

    /// RFC 3339 with the zone's offset: `2026-12-02T06:00:00-08:00`.
    pub fn rfc3339(&self, at: i64) -> String {
        match jiff::Timestamp::from_second(at) {
            Ok(t) => t
                .to_zoned_datetime(self.rota.zone().clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
            Err(_) => at.to_string(),
        }
    }
}

/// The rota item's state: `absent`, `stored` or `unreadable`.
pub fn rota_state(roster: &Roster) -> &'static str {
    match &roster.rota {
        RotaItem::Absent => "absent",
        RotaItem::Stored(_) => "stored",
        RotaItem::Unreadable(_) => "unreadable",
    }
}

/// The shift (`mon-fri 06:00-14:00`) a duty comes from, if it comes from one.
pub fn shift_of(roster: &Roster, source: &DutySource) -> Option<String> {
    match source {
        DutySource::Shift { index, .. } => roster
            .rota()
            .and_then(|rota| rota.shifts.get(*index))
            .map(|s| format!("{} {}-{}", s.days, s.from, s.to)),
        _ => None,
    }
}

/// Why a dispatcher is primary, as people read it: `shift mon-fri 06:00-14:00`,
/// `override`, `PRIMARY_DISPATCHER_ID, as there is no rota`.
pub fn why(roster: &Roster, source: &DutySource) -> String {
    match source {
        DutySource::Shift { .. } => match shift_of(roster, source) {
            Some(shift) => format!("shift {shift}"),
            None => "shift".into(),
        },
        DutySource::Override { .. } => "override".into(),
        DutySource::Fallback => match &roster.rota {
            RotaItem::Absent => "PRIMARY_DISPATCHER_ID, as there is no rota".into(),
            RotaItem::Unreadable(_) => "PRIMARY_DISPATCHER_ID, as the rota is unreadable".into(),
            RotaItem::Stored(_) => "PRIMARY_DISPATCHER_ID, as no shift covers it".into(),
        },
    }
}

/// Whether the cascade would use a dispatcher now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Available,
    NoItem,
    Unavailable(Unavailability),
}

impl Standing {
    fn of(roster: &Roster, id: &DispatcherId, now: i64, max_age: i64) -> Standing {
        match roster.record(id) {
            None => Standing::NoItem,
            Some(record) => match primary_unavailability(record, now, max_age) {
                None => Standing::Available,
                Some(why) => Standing::Unavailable(why),
            },
        }
    }
}

/// One stretch of one dispatcher as primary, with what people need to read it.
struct Turn {
    stint: Stint,
    standing: Standing,
}

/// Who is primary now and next, from one read of the state table.
pub struct Answer<'a> {
    roster: &'a Roster,
    settings: &'a Settings,
    now: i64,
    clock: Clock,
    current: Turn,
    next: Option<Turn>,
}

impl<'a> Answer<'a> {
    pub fn of(roster: &'a Roster, settings: &'a Settings, now: i64, max_age: i64) -> Self {
        let fallback = &settings.primary_dispatcher_id;
        let turn = |stint: Stint| Turn {
            standing: Standing::of(roster, &stint.duty.dispatcher, now, max_age),
            stint,
        };
        let stint = roster.stint_at(fallback, now);
        let next = stint
            .until
            .map(|until| turn(roster.stint_at(fallback, until)));
        Answer {
            roster,
            settings,
            now,
            clock: Clock::of(roster),
            current: turn(stint),
            next,
        }
    }

    /// The primary now.
    pub fn primary(&self) -> &DispatcherId {
        &self.current.stint.duty.dispatcher
    }

    fn why(&self, source: &DutySource) -> String {
        why(self.roster, source)
    }

    /// `sergio-main (shift daily 09:00-17:00)`: the primary now and why, in words.
    pub fn primary_line(&self) -> String {
        format!(
            "{} ({})",
            self.primary(),
            self.why(&self.current.stint.duty.source)
        )
    }

    /// A time as a row shows it: the wall clock and how far off it is.
    fn when(&self, at: i64) -> String {
        format!("{} ({})", self.clock.wall(at), age(self.now, Some(at)))
    }

    /// What to know about a dispatcher the cascade would not use as it stands.
    fn standing_note(&self, next: bool, id: &DispatcherId, standing: &Standing) -> Option<String> {
        let fallback = &self.settings.primary_dispatcher_id;
        let who = if next {
            "the next primary"
        } else {
            "the primary now"
        };
        match standing {
            Standing::Available => None,
            Standing::NoItem if id != fallback && self.roster.record(fallback).is_some() => {
                Some(format!(
                    "NOTE: {who}, {id}, has no dispatcher item in {}: texts go to PRIMARY_DISPATCHER_ID ({fallback}) instead",
                    self.settings.state_table
                ))
            }
            Standing::NoItem => Some(format!(
                "NOTE: {who}, {id}, has no dispatcher item in {}, nor has PRIMARY_DISPATCHER_ID ({fallback}): texts cannot be relayed",
                self.settings.state_table
            )),
            Standing::Unavailable(why) if next => Some(format!(
                "NOTE: {who} is not available now ({}): unless that changes, the cascade will pass over them to the backup",
                why.said_of(id.as_str())
            )),
            Standing::Unavailable(why) => Some(format!(
                "NOTE: {who} is not available ({}): the cascade passes over them to the backup",
                why.said_of(id.as_str())
            )),
        }
    }

    /// The notes on the primary now and next; empty when both would be used.
    pub fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .standing_note(false, self.primary(), &self.current.standing)
            .into_iter()
            .collect();
        if let Some(next) = &self.next {
            notes.extend(self.standing_note(true, &next.stint.duty.dispatcher, &next.standing));
        }
        if let RotaItem::Unreadable(why) = &self.roster.rota {
            notes.push(format!(
                "NOTE: the stored rota is unreadable ({why}): PRIMARY_DISPATCHER_ID is primary until it is mended"
            ));
        }
        notes
    }

    pub fn text(&self) -> String {
        let rota = self.roster.rota();
        let stint = &self.current.stint;
        let mut t = table(&[]);
        let mut row = |name: &str, value: String| {
            t.add_row(vec![name.to_string(), value]);
        };
        row("primary now", self.primary_line());
        if rota.is_none() {
            row("until", "no end: there is no usable rota".into());
        } else {
            row(
                "since",
                match stint.since {
                    Some(since) => self.when(since),
                    None => "more than 8 days ago".into(),
                },
            );
            row(
                "until",
                match stint.until {
                    Some(until) => self.when(until),
                    None => "no change within 8 days".into(),
                },
            );
            row(
                "next",
                match &self.next {
                    Some(next) => {
                        let until = match next.stint.until {
                            Some(until) => format!("until {}", self.clock.wall(until)),
                            None => "with no change within 8 days".into(),
                        };
                        format!(
                            "{} ({}), {until}",
                            next.stint.duty.dispatcher,
                            self.why(&next.stint.duty.source)
                        )
                    }
                    None => "no one else within 8 days".into(),
                },
            );
        }
        let zone = match rota {
            Some(rota) => rota.zone_name().to_string(),
            None => "UTC (no rota)".into(),
        };
        row("times in", zone);
        let mut text = render(&mut t);
        for note in self.notes() {
            text.push('\n');
            text.push_str(&note);
        }
        text
    }

    fn turn_json(&self, turn: &Turn) -> Value {
        let stint = &turn.stint;
        let time = |at: Option<i64>| at.map(|at| self.clock.rfc3339(at));
        let (available, unavailable_because) = match &turn.standing {
            Standing::Available => (true, None),
            Standing::NoItem => (false, Some("no dispatcher item".to_string())),
            Standing::Unavailable(why) => {
                (false, Some(why.said_of(stint.duty.dispatcher.as_str())))
            }
        };
        json!({
            "dispatcher": stint.duty.dispatcher.as_str(),
            "source": stint.duty.source.name(),
            "shift": shift_of(self.roster, &stint.duty.source),
            "why": self.why(&stint.duty.source),
            "since": time(stint.since),
            "since_unix": stint.since,
            "until": time(stint.until),
            "until_unix": stint.until,
            "has_item": turn.standing != Standing::NoItem,
            "available": available,
            "unavailable_because": unavailable_because,
        })
    }

    pub fn json(&self) -> Value {
        json!({
            "table": self.settings.state_table,
            "zone": self.roster.rota().map(Rota::zone_name),
            "rota": rota_state(self.roster),
            "primary_dispatcher_id": self.settings.primary_dispatcher_id.as_str(),
            "at": self.clock.rfc3339(self.now),
            "at_unix": self.now,
            "now": self.turn_json(&self.current),
            "next": self.next.as_ref().map(|next| self.turn_json(next)),
            "notes": self.notes(),
        })
    }
}
