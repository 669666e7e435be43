//! The rota: weekly shifts in one IANA time zone plus one-off overrides, and the one
//! answer to "who is primary at instant T" ([`duty_at`]) every caller uses.
//!
//! Shifts are local times: `daily 22:00-06:00` is 22:00-06:00 on the wall clock all
//! year, so a shift spanning a daylight-saving change is an hour longer or shorter in
//! real time. A local time that does not exist (in the hour skipped in spring) is
//! moved on by the skipped hour (02:30 is 03:30); one that happens twice (autumn) is
//! its first occurrence (jiff's "compatible" rule, as calendars do).
//!
//! The rota is text, the same in the file `qdn rota set` reads, in `qdn rota show` and
//! in the stored item (one parser, [`Rota::parse`], for all three):
//!
//! ```text
//! zone America/Los_Angeles
//! mon-fri 06:00-14:00 sergio-main
//! mon-fri 14:00-22:00 ana
//! daily   22:00-06:00 night-desk
//! sat,sun 06:00-22:00 weekend-desk
//! override 2026-12-24T18:00-08:00 2026-12-25T06:00-08:00 ana
//! ```

use std::collections::BTreeSet;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;

use crate::ids::DispatcherId;
use crate::stored::{Damage, Expected, Named, StoredItem, read_text, read_whole};

/// The rota's key in the state table: not a dispatcher ID (an ID never starts with
/// `#`), so it can never name a dispatcher's item.
pub const ROTA_KEY: &str = "#rota";
/// The stored item's attribute holding the rota's text.
pub const ROTA_ATTRIBUTE: &str = "rota";
/// When the rota was last written (Unix seconds), for people reading the item.
pub const UPDATED_AT_ATTRIBUTE: &str = "updated_at";

const MINUTES_PER_DAY: u32 = 1_440;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;
/// How far either side of an instant [`stint_at`] looks for a change of primary: a
/// week and a day covers any weekly rota.
const HORIZON_DAYS: i64 = 8;

const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Monday, "mon"),
    (Weekday::Tuesday, "tue"),
    (Weekday::Wednesday, "wed"),
    (Weekday::Thursday, "thu"),
    (Weekday::Friday, "fri"),
    (Weekday::Saturday, "sat"),
    (Weekday::Sunday, "sun"),
];

/// The days of the week a shift starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Days(u8);

impl Days {
    pub const EVERY_DAY: Days = Days(0b111_1111);

    fn day_index(name: &str) -> Option<u8> {
        WEEKDAYS
            .iter()
            .position(|(_, short)| name.eq_ignore_ascii_case(short))
            .map(|i| i as u8)
    }

    /// `mon`, `mon-fri` (a range may wrap: `fri-mon`), `sat,sun`, `daily`.
    pub fn parse(raw: &str) -> Option<Days> {
        if raw.eq_ignore_ascii_case("daily") {
            return Some(Days::EVERY_DAY);
        }
        let mut bits = 0u8;
        for part in raw.split(',') {
            match part.split_once('-') {
                Some((first, last)) => {
                    let (first, last) = (Self::day_index(first)?, Self::day_index(last)?);
                    let mut day = first;
                    loop {
                        bits |= 1 << day;
                        if day == last {
                            break;
                        }
                        day = (day + 1) % 7;
                    }
                }
                None => bits |= 1 << Self::day_index(part)?,
            }
        }
        Some(Days(bits))
    }

    fn contains_index(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }

    pub fn contains(self, weekday: Weekday) -> bool {
        self.contains_index(weekday.to_monday_zero_offset() as usize)
    }
}

impl fmt::Display for Days {
    /// Canonical: `daily`, one run as a range (`mon-fri`), else a list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Days::EVERY_DAY {
            return f.write_str("daily");
        }
        let days: Vec<usize> = (0..7).filter(|&i| self.contains_index(i)).collect();
        let run = days.windows(2).all(|w| w[1] == w[0] + 1);
        if days.len() >= 3 && run {
            return write!(
                f,
                "{}-{}",
                WEEKDAYS[days[0]].1,
                WEEKDAYS[days[days.len() - 1]].1
            );
        }
        let names: Vec<&str> = days.iter().map(|&i| WEEKDAYS[i].1).collect();
        f.write_str(&names.join(","))
    }
}

/// A wall-clock time, in minutes after midnight; `24:00` only as a shift's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u32);

impl ClockTime {
    fn parse(raw: &str, end: bool) -> Option<ClockTime> {
        let (hours, minutes) = raw.split_once(':')?;
        if hours.is_empty() || hours.len() > 2 || minutes.len() != 2 {
            return None;
        }
        let hours: u32 = hours.parse().ok()?;
        let minutes: u32 = minutes.parse().ok()?;
        let total = hours * 60 + minutes;
        let ok = minutes < 60 && (total < MINUTES_PER_DAY || (end && total == MINUTES_PER_DAY));
        ok.then_some(ClockTime(total))
    }

    pub fn minutes(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// One weekly shift: on each of `days`, from `from` to `to` local time (`to` at or
/// before `from` ends the next day; `from == to` is 24 hours).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Shift {
    pub days: Days,
    pub from: ClockTime,
    pub to: ClockTime,
    pub dispatcher: DispatcherId,
}

impl Shift {
    fn duration_minutes(&self) -> u32 {
        if self.to > self.from {
            self.to.0 - self.from.0
        } else {
            self.to.0 + MINUTES_PER_DAY - self.from.0
        }
    }
}

impl fmt::Display for Shift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}-{} {}",
            self.days, self.from, self.to, self.dispatcher
        )
    }
}

/// A one-off stretch that wins over the shifts: `[from, to)` in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Override {
    pub from: i64,
    pub to: i64,
    pub dispatcher: DispatcherId,
}

/// What is wrong with one line of a rota.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RotaSyntax {
    #[error("no `zone` line (e.g. `zone America/Los_Angeles`)")]
    NoZone,
    #[error("a second `zone` line: a rota has one time zone")]
    SecondZone,
    #[error("unknown time zone {0:?} (an IANA name such as America/Los_Angeles)")]
    UnknownZone(String),
    #[error("{0:?} is not days of the week (mon, mon-fri, sat,sun or daily)")]
    Days(String),
    #[error("{0:?} is not a shift's hours (HH:MM-HH:MM, e.g. 22:00-06:00)")]
    Hours(String),
    #[error(
        "{0:?} is not a time (2026-12-24T18:00 in the rota's zone, or with an offset: 2026-12-24T18:00-08:00)"
    )]
    Instant(String),
    #[error("the override ends before it starts")]
    EndsBeforeStart,
    #[error("{0:?} is not a dispatcher ID (letters, digits, '-', '_' or '.')")]
    Dispatcher(String),
    #[error("expected `{expected}`")]
    Fields { expected: &'static str },
}

/// A rota that does not parse: where and why. Never holds more of the line than the
/// word at fault.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{}{problem}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct RotaError {
    pub line: Option<usize>,
    pub problem: RotaSyntax,
}

const SHIFT_FIELDS: &str = "DAYS HH:MM-HH:MM DISPATCHER";
const OVERRIDE_FIELDS: &str = "override FROM TO DISPATCHER";

/// Shifts and overrides in one time zone.
#[derive(Debug, Clone)]
pub struct Rota {
    zone_name: String,
    zone: TimeZone,
    pub shifts: Vec<Shift>,
    pub overrides: Vec<Override>,
}

impl PartialEq for Rota {
    fn eq(&self, other: &Self) -> bool {
        self.zone_name == other.zone_name
            && self.shifts == other.shifts
            && self.overrides == other.overrides
    }
}

impl Eq for Rota {}

/// One shift on one date: `[start, end)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Occurrence {
    index: usize,
    start: i64,
    end: i64,
}

impl Rota {
    /// A rota with no shifts and no overrides in `zone`.
    pub fn empty(zone: &str) -> Result<Rota, RotaSyntax> {
        let tz = TimeZone::get(zone)
            .map_err(|_| RotaSyntax::UnknownZone(zone.chars().take(64).collect()))?;
        Ok(Rota {
            zone_name: zone.to_string(),
            zone: tz,
            shifts: Vec::new(),
            overrides: Vec::new(),
        })
    }

    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// Reads a rota's text. `#` starts a comment; blank lines are ignored; words are
    /// separated by spaces or tabs. Total: any text gives a rota or an error.
    pub fn parse(text: &str) -> Result<Rota, RotaError> {
        let mut rota: Option<Rota> = None;
        // Overrides may come before the zone line; their local times wait for it.
        let mut pending: Vec<(usize, Vec<&str>)> = Vec::new();
        let mut shifts = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line_no = number + 1;
            let at = |problem| RotaError {
                line: Some(line_no),
                problem,
            };
            let content = line.split('#').next().unwrap_or("");
            let words: Vec<&str> = content.split_whitespace().collect();
            match words.as_slice() {
                [] => {}
                [keyword, rest @ ..] if keyword.eq_ignore_ascii_case("zone") => {
                    let [zone] = rest else {
                        return Err(at(RotaSyntax::Fields {
                            expected: "zone AREA/CITY",
                        }));
                    };
                    if rota.is_some() {
                        return Err(at(RotaSyntax::SecondZone));
                    }
                    rota = Some(Rota::empty(zone).map_err(at)?);
                }
                [keyword, ..] if keyword.eq_ignore_ascii_case("override") => {
                    if words.len() != 4 {
                        return Err(at(RotaSyntax::Fields {
                            expected: OVERRIDE_FIELDS,
                        }));
                    }
                    pending.push((line_no, words));
                }
                [days, hours, dispatcher] => {
                    let days = Days::parse(days).ok_or_else(|| at(RotaSyntax::Days(word(days))))?;
                    let (from, to) = hours
                        .split_once('-')
                        .and_then(|(from, to)| {
                            Some((ClockTime::parse(from, false)?, ClockTime::parse(to, true)?))
                        })
                        .ok_or_else(|| at(RotaSyntax::Hours(word(hours))))?;
                    let dispatcher = parse_dispatcher(dispatcher).map_err(at)?;
                    shifts.push(Shift {
                        days,
                        from,
                        to,
                        dispatcher,
                    });
                }
                _ => {
                    return Err(at(RotaSyntax::Fields {
                        expected: SHIFT_FIELDS,
                    }));
                }
            }
        }
        let mut rota = rota.ok_or(RotaError {
            line: None,
            problem: RotaSyntax::NoZone,
        })?;
        rota.shifts = shifts;
        for (line_no, words) in pending {
            let at = |problem| RotaError {
                line: Some(line_no),
                problem,
            };
            let from = rota.parse_instant(words[1]).map_err(at)?;
            let to = rota.parse_instant(words[2]).map_err(at)?;
            if to <= from {
                return Err(at(RotaSyntax::EndsBeforeStart));
            }
            let dispatcher = parse_dispatcher(words[3]).map_err(at)?;
            rota.overrides.push(Override {
                from,
                to,
                dispatcher,
            });
        }
        Ok(rota)
    }

    /// `2026-12-24T18:00` (or with a space) in the rota's zone, or an instant with an
    /// offset or `Z`.
    pub fn parse_instant(&self, raw: &str) -> Result<i64, RotaSyntax> {
        let bad = || RotaSyntax::Instant(word(raw));
        if let Ok(instant) = raw.parse::<Timestamp>() {
            return Ok(instant.as_second());
        }
        let local: jiff::civil::DateTime = raw.replacen(' ', "T", 1).parse().map_err(|_| bad())?;
        self.zone
            .to_timestamp(local)
            .map(|t| t.as_second())
            .map_err(|_| bad())
    }

    /// The rota's text, as [`Rota::parse`] reads it back.
    pub fn render(&self) -> String {
        let mut out = format!("zone {}\n", self.zone_name);
        for shift in &self.shifts {
            out.push_str(&format!("{shift}\n"));
        }
        for o in &self.overrides {
            out.push_str(&format!(
                "override {} {} {}\n",
                self.local_text(o.from),
                self.local_text(o.to),
                o.dispatcher
            ));
        }
        out
    }

    /// An instant as local time with its offset: `2026-12-24T18:00-08:00`.
    pub fn local_text(&self, at: i64) -> String {
        match Timestamp::from_second(at) {
            Ok(t) => {
                let zoned = t.to_zoned_datetime(self.zone.clone());
                let format = if zoned.second() == 0 {
                    "%Y-%m-%dT%H:%M%:z"
                } else {
                    "%Y-%m-%dT%H:%M:%S%:z"
                };
                zoned.strftime(format).to_string()
            }
            Err(_) => at.to_string(),
        }
    }

    /// An instant as people read it in the rota's zone: `Wed 2 Dec 06:00 PST`.
    pub fn wall_clock(&self, at: i64) -> String {
        self.strftime(at, "%a %-d %b %H:%M %Z")
    }

    /// An instant's time of day and zone abbreviation: `06:00 PST`.
    pub fn time_of_day(&self, at: i64) -> String {
        self.strftime(at, "%H:%M %Z")
    }

    fn strftime(&self, at: i64, format: &str) -> String {
        match Timestamp::from_second(at) {
            Ok(t) => t
                .to_zoned_datetime(self.zone.clone())
                .strftime(format)
                .to_string(),
            Err(_) => at.to_string(),
        }
    }

    fn local_date(&self, at: i64) -> Option<Date> {
        let t = Timestamp::from_second(at).ok()?;
        Some(t.to_zoned_datetime(self.zone.clone()).date())
    }

    /// The instant of `minutes` after local midnight of `date` (past 24:00 runs into
    /// the next days).
    fn local_instant(&self, date: Date, minutes: u32) -> Option<i64> {
        let days = i64::from(minutes / MINUTES_PER_DAY);
        let minutes = minutes % MINUTES_PER_DAY;
        let date = date.checked_add(jiff::Span::new().days(days)).ok()?;
        let time = Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).ok()?;
        let instant = self.zone.to_timestamp(date.to_datetime(time)).ok()?;
        Some(instant.as_second())
    }

    /// Every shift starting on a local date from `first` to `last`, in date order.
    fn occurrences(&self, first: Date, last: Date) -> Vec<Occurrence> {
        let mut found = Vec::new();
        let mut date = first;
        while date <= last {
            for (index, shift) in self.shifts.iter().enumerate() {
                if !shift.days.contains(date.weekday()) {
                    continue;
                }
                let start = self.local_instant(date, shift.from.0);
                let end = self.local_instant(date, shift.from.0 + shift.duration_minutes());
                if let (Some(start), Some(end)) = (start, end) {
                    found.push(Occurrence { index, start, end });
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        found
    }

    fn dates_around(&self, at: i64, before: i64, after: i64) -> Option<(Date, Date)> {
        let date = self.local_date(at)?;
        let first = date.checked_sub(jiff::Span::new().days(before)).ok()?;
        let last = date.checked_add(jiff::Span::new().days(after)).ok()?;
        Some((first, last))
    }

    /// Every dispatcher the rota names: its shifts' and the overrides not yet over.
    pub fn named_dispatchers(&self, now: i64) -> BTreeSet<&DispatcherId> {
        self.shifts
            .iter()
            .map(|s| &s.dispatcher)
            .chain(
                self.overrides
                    .iter()
                    .filter(|o| o.to > now)
                    .map(|o| &o.dispatcher),
            )
            .collect()
    }

    /// The overrides still to come or running at `now`: what a rewrite keeps.
    pub fn drop_overrides_before(&mut self, now: i64) {
        self.overrides.retain(|o| o.to > now);
    }
}

fn word(raw: &str) -> String {
    raw.chars().take(64).collect()
}

fn parse_dispatcher(raw: &str) -> Result<DispatcherId, RotaSyntax> {
    DispatcherId::parse(raw).map_err(|_| RotaSyntax::Dispatcher(word(raw)))
}

/// Why a dispatcher is primary at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DutySource {
    Override {
        from: i64,
        to: i64,
    },
    /// The rota's shift at `index`, on one date.
    Shift {
        index: usize,
        start: i64,
        end: i64,
    },
    /// No rota, or none of it covers the instant: `PRIMARY_DISPATCHER_ID`.
    Fallback,
}

impl DutySource {
    pub fn name(&self) -> &'static str {
        match self {
            DutySource::Override { .. } => "override",
            DutySource::Shift { .. } => "shift",
            DutySource::Fallback => "fallback",
        }
    }
}

/// The primary at one instant, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duty {
    pub dispatcher: DispatcherId,
    pub source: DutySource,
}

/// Who is primary at `at`: the override covering it (the latest-starting one when
/// several do), else the shift covering it (the latest-starting, then the first
/// listed), else `fallback`. The one answer every function and `qdn` use.
pub fn duty_at(rota: Option<&Rota>, fallback: &DispatcherId, at: i64) -> Duty {
    let fallback = || Duty {
        dispatcher: fallback.clone(),
        source: DutySource::Fallback,
    };
    let Some(rota) = rota else {
        return fallback();
    };
    let covering_override = rota
        .overrides
        .iter()
        .enumerate()
        .filter(|(_, o)| o.from <= at && at < o.to)
        .max_by_key(|(index, o)| (o.from, *index));
    if let Some((_, o)) = covering_override {
        return Duty {
            dispatcher: o.dispatcher.clone(),
            source: DutySource::Override {
                from: o.from,
                to: o.to,
            },
        };
    }
    // A shift lasts at most a day, so only yesterday's and today's can cover `at`.
    let Some((first, last)) = rota.dates_around(at, 1, 0) else {
        return fallback();
    };
    let shift = rota
        .occurrences(first, last)
        .into_iter()
        .filter(|o| o.start <= at && at < o.end)
        .max_by_key(|o| (o.start, std::cmp::Reverse(o.index)));
    match shift {
        Some(o) => Duty {
            dispatcher: rota.shifts[o.index].dispatcher.clone(),
            source: DutySource::Shift {
                index: o.index,
                start: o.start,
                end: o.end,
            },
        },
        None => fallback(),
    }
}

/// A dispatcher's unbroken time as primary around an instant: `since` when they
/// became primary, `until` when someone else does (`None` when that is not within
/// [`HORIZON_DAYS`], e.g. one dispatcher covers the whole week).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stint {
    pub duty: Duty,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// The stint of whoever is primary at `at`. Back-to-back shifts of one dispatcher are
/// one stint; an override in the middle of a shift ends it and starts another.
pub fn stint_at(rota: Option<&Rota>, fallback: &DispatcherId, at: i64) -> Stint {
    let duty = duty_at(rota, fallback, at);
    let Some(rota) = rota else {
        return Stint {
            duty,
            since: None,
            until: None,
        };
    };
    let horizon = HORIZON_DAYS * 86_400;
    let mut boundaries: Vec<i64> = rota.overrides.iter().flat_map(|o| [o.from, o.to]).collect();
    if let Some((first, last)) = rota.dates_around(at, HORIZON_DAYS + 1, HORIZON_DAYS) {
        boundaries.extend(
            rota.occurrences(first, last)
                .into_iter()
                .flat_map(|o| [o.start, o.end]),
        );
    }
    boundaries.retain(|b| (at - horizon..=at + horizon).contains(b));
    boundaries.sort_unstable();
    boundaries.dedup();
    let primary_at = |t: i64| duty_at(Some(rota), fallback, t).dispatcher;
    let until = boundaries
        .iter()
        .copied()
        .filter(|&b| b > at)
        .find(|&b| primary_at(b) != duty.dispatcher);
    let since = boundaries
        .iter()
        .rev()
        .copied()
        .filter(|&b| b <= at)
        .find(|&b| primary_at(b - 1) != duty.dispatcher);
    Stint { duty, since, until }
}

/// The text the incoming primary gets when their stint starts.
pub fn handover_text(rota: &Rota, stint: &Stint) -> String {
    match stint.until {
        Some(until) => {
            let soon = stint.since.is_none_or(|since| until - since <= 86_400);
            let when = if soon {
                rota.time_of_day(until)
            } else {
                rota.wall_clock(until)
            };
            format!("You are on QDN dispatch until {when}. Reply OFF to hand over.")
        }
        None => "You are on QDN dispatch. Reply OFF to hand over.".to_string(),
    }
}

/// A time in the week, in minutes after Monday 00:00 local: `mon 06:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WeekTime(u32);

impl fmt::Display for WeekTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let minutes = self.0 % MINUTES_PER_WEEK;
        let day = (minutes / MINUTES_PER_DAY) as usize;
        write!(
            f,
            "{} {}",
            WEEKDAYS[day].1,
            ClockTime(minutes % MINUTES_PER_DAY)
        )
    }
}

/// Why the stored rota cannot be used (the fallback primary is used meanwhile).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RotaUnreadable {
    /// The `rota` attribute is missing or not a string.
    Attribute(Damage),
    Syntax(RotaError),
}

impl fmt::Display for RotaUnreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotaUnreadable::Attribute(damage) => Named(ROTA_ATTRIBUTE, damage).fmt(f),
            RotaUnreadable::Syntax(error) => write!(f, "{ROTA_ATTRIBUTE}: {error}"),
        }
    }
}

/// A configuration problem of the rota.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RotaProblem {
    Unreadable(RotaUnreadable),
    /// A shift or a running or future override names a dispatcher with no item.
    MissingDispatcher(DispatcherId),
    /// Two shifts cover the same local time (the later-starting one wins there).
    Overlap {
        first: String,
        second: String,
        from: WeekTime,
    },
    /// No shift covers this part of the week: the fallback primary has it.
    Gap {
        from: WeekTime,
        to: WeekTime,
    },
}

impl RotaProblem {
    /// The problem's identity (without the rota key): stable however it is worded.
    pub fn key_part(&self) -> String {
        match self {
            RotaProblem::Unreadable(RotaUnreadable::Attribute(damage)) => {
                format!("{ROTA_ATTRIBUTE}/{}", damage.kind())
            }
            RotaProblem::Unreadable(RotaUnreadable::Syntax(_)) => {
                format!("{ROTA_ATTRIBUTE}/unreadable")
            }
            RotaProblem::MissingDispatcher(id) => format!("{id}/missing"),
            RotaProblem::Overlap { first, second, .. } => format!("overlap/{first}/{second}"),
            RotaProblem::Gap { from, to } => format!("gap/{from}/{to}"),
        }
    }

    /// A stable name of the kind of problem.
    pub fn kind(&self) -> &'static str {
        match self {
            RotaProblem::Unreadable(RotaUnreadable::Attribute(damage)) => damage.kind(),
            RotaProblem::Unreadable(RotaUnreadable::Syntax(_)) => "unreadable",
            RotaProblem::MissingDispatcher(_) => "rota_dispatcher_missing",
            RotaProblem::Overlap { .. } => "rota_overlap",
            RotaProblem::Gap { .. } => "rota_gap",
        }
    }
}

impl fmt::Display for RotaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RotaProblem::Unreadable(why) => {
                write!(f, "{why}; the rota is not used until it is mended")
            }
            RotaProblem::MissingDispatcher(id) => {
                write!(f, "the rota names dispatcher {id}, which has no item")
            }
            RotaProblem::Overlap {
                first,
                second,
                from,
            } => write!(
                f,
                "shifts \"{first}\" and \"{second}\" overlap from {from} (the later-starting one is primary there)"
            ),
            RotaProblem::Gap { from, to } => write!(
                f,
                "no shift covers {from} to {to}: the fallback primary (PRIMARY_DISPATCHER_ID) is primary then"
            ),
        }
    }
}

/// The rota's configuration problems: dispatchers it names that `exists` does not
/// know, overlapping shifts, and gaps in the week (only when there are shifts: a
/// rota of overrides alone leaves the rest to the fallback by design). Pure.
pub fn check_rota(
    rota: &Rota,
    exists: &dyn Fn(&DispatcherId) -> bool,
    now: i64,
) -> Vec<RotaProblem> {
    let mut problems: Vec<RotaProblem> = rota
        .named_dispatchers(now)
        .into_iter()
        .filter(|id| !exists(id))
        .map(|id| RotaProblem::MissingDispatcher(id.clone()))
        .collect();
    // Each shift's stretches of the week, as minutes after Monday 00:00 (an end past
    // the week's wraps round to Monday).
    let stretches: Vec<(usize, u32, u32)> = rota
        .shifts
        .iter()
        .enumerate()
        .flat_map(|(index, shift)| {
            (0..7usize)
                .filter(move |&day| shift.days.contains_index(day))
                .map(move |day| {
                    let start = day as u32 * MINUTES_PER_DAY + shift.from.0;
                    (index, start, start + shift.duration_minutes())
                })
        })
        .collect();
    let mut reported = BTreeSet::new();
    for (i, &(a, a_start, a_end)) in stretches.iter().enumerate() {
        for &(b, b_start, b_end) in &stretches[i + 1..] {
            if a == b || reported.contains(&(a.min(b), a.max(b))) {
                continue;
            }
            let overlap = [0, MINUTES_PER_WEEK]
                .into_iter()
                .flat_map(|shift| {
                    [
                        (a_start + shift, a_end + shift, b_start, b_end),
                        (a_start, a_end, b_start + shift, b_end + shift),
                    ]
                })
                .find_map(|(s1, e1, s2, e2)| (s1.max(s2) < e1.min(e2)).then(|| s1.max(s2)));
            if let Some(from) = overlap {
                reported.insert((a.min(b), a.max(b)));
                problems.push(RotaProblem::Overlap {
                    first: rota.shifts[a.min(b)].to_string(),
                    second: rota.shifts[a.max(b)].to_string(),
                    from: WeekTime(from % MINUTES_PER_WEEK),
                });
            }
        }
    }
    if !rota.shifts.is_empty() {
        problems.extend(gaps(&stretches));
    }
    problems
}

/// The parts of the week no stretch covers, round the week's end.
fn gaps(stretches: &[(usize, u32, u32)]) -> Vec<RotaProblem> {
    let mut pieces: Vec<(u32, u32)> = Vec::new();
    for &(_, start, end) in stretches {
        if end <= MINUTES_PER_WEEK {
            pieces.push((start, end));
        } else {
            pieces.push((start, MINUTES_PER_WEEK));
            pieces.push((0, end - MINUTES_PER_WEEK));
        }
    }
    pieces.sort_unstable();
    let mut uncovered = Vec::new();
    let mut covered_to = 0;
    for (start, end) in pieces {
        if start > covered_to {
            uncovered.push((covered_to, start));
        }
        covered_to = covered_to.max(end);
    }
    if covered_to < MINUTES_PER_WEEK {
        uncovered.push((covered_to, MINUTES_PER_WEEK));
    }
    // One gap across Sunday midnight, not two.
    if uncovered.len() >= 2
        && uncovered[0].0 == 0
        && uncovered[uncovered.len() - 1].1 == MINUTES_PER_WEEK
    {
        let (_, first_end) = uncovered.remove(0);
        let last = uncovered.len() - 1;
        uncovered[last].1 = MINUTES_PER_WEEK + first_end;
    }
    uncovered
        .into_iter()
        .map(|(from, to)| RotaProblem::Gap {
            from: WeekTime(from),
            to: WeekTime(to),
        })
        .collect()
}

/// The rota item as stored, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRota {
    pub rota: Rota,
    /// The text as stored: a rewrite is conditional on it being unchanged.
    pub text: String,
    pub updated_at: Option<i64>,
}

/// The rota item's one decoder. Total: any item gives a rota or says why not.
pub fn decode_rota(item: &dyn StoredItem) -> Result<StoredRota, RotaUnreadable> {
    let text = match read_text(item, ROTA_ATTRIBUTE, Expected::Text) {
        Ok(Some(text)) => text,
        Ok(None) => return Err(RotaUnreadable::Attribute(Damage::Missing)),
        Err(damage) => return Err(RotaUnreadable::Attribute(damage)),
    };
    let rota = Rota::parse(text).map_err(RotaUnreadable::Syntax)?;
    let updated_at = read_whole(
        item,
        UPDATED_AT_ATTRIBUTE,
        Expected::UnixTime,
        0..=crate::stored::MAX_UNIX_TIME,
    )
    .ok()
    .flatten();
    Ok(StoredRota {
        rota,
        text: text.to_string(),
        updated_at,
    })
}

#[cfg(test)]
mod tests;
