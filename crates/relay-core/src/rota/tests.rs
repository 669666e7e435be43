use super::*;
use proptest::prelude::*;

fn id(raw: &str) -> DispatcherId {
    DispatcherId::parse(raw).unwrap()
}

fn at(raw: &str) -> i64 {
    raw.parse::<Timestamp>().unwrap().as_second()
}

fn primary(rota: &Rota, instant: &str) -> String {
    duty_at(Some(rota), &id("fallback"), at(instant))
        .dispatcher
        .as_str()
        .to_string()
}

const LA_DAY_AND_NIGHT: &str =
    "zone America/Los_Angeles\ndaily 06:00-22:00 day\ndaily 22:00-06:00 night\n";

#[test]
fn a_night_shift_is_local_time_on_both_change_nights() {
    let rota = Rota::parse(LA_DAY_AND_NIGHT).unwrap();
    // Spring: Sat 7 Mar 22:00 PST (06:00Z) to Sun 8 Mar 06:00 PDT (13:00Z): 7 hours.
    assert_eq!(primary(&rota, "2026-03-08T05:59:59Z"), "day");
    assert_eq!(primary(&rota, "2026-03-08T06:00:00Z"), "night");
    assert_eq!(primary(&rota, "2026-03-08T12:59:59Z"), "night");
    assert_eq!(primary(&rota, "2026-03-08T13:00:00Z"), "day");
    // Autumn: Sat 31 Oct 22:00 PDT (05:00Z) to Sun 1 Nov 06:00 PST (14:00Z): 9 hours.
    assert_eq!(primary(&rota, "2026-11-01T04:59:59Z"), "day");
    assert_eq!(primary(&rota, "2026-11-01T05:00:00Z"), "night");
    assert_eq!(primary(&rota, "2026-11-01T13:59:59Z"), "night");
    assert_eq!(primary(&rota, "2026-11-01T14:00:00Z"), "day");
    let stint = stint_at(Some(&rota), &id("fallback"), at("2026-11-01T09:00:00Z"));
    assert_eq!(stint.since, Some(at("2026-11-01T05:00:00Z")));
    assert_eq!(stint.until, Some(at("2026-11-01T14:00:00Z")));
    assert_eq!(
        handover_text(&rota, &stint),
        "You are on QDN dispatch until 06:00 PST. Reply OFF to hand over."
    );
}

#[test]
fn a_shift_starting_in_the_skipped_or_repeated_hour_starts_at_the_calendars_instant() {
    let rota = Rota::parse(
        "zone America/Los_Angeles\ndaily 00:00-00:00 day\nsun 02:30-04:00 spring\nsun 01:30-03:00 autumn\n",
    )
    .unwrap();
    // 8 Mar: the 01:30-03:00 shift runs 01:30 PST (09:30Z) to 03:00 PDT (10:00Z), an
    // hour of real time. 02:30 does not exist: the clock moves it on by the skipped
    // hour, so that shift starts at 03:30 PDT (10:30Z) and ends at 04:00 PDT.
    assert_eq!(primary(&rota, "2026-03-08T09:29:59Z"), "day");
    assert_eq!(primary(&rota, "2026-03-08T09:30:00Z"), "autumn");
    assert_eq!(primary(&rota, "2026-03-08T09:59:59Z"), "autumn");
    assert_eq!(primary(&rota, "2026-03-08T10:00:00Z"), "day");
    assert_eq!(primary(&rota, "2026-03-08T10:30:00Z"), "spring");
    assert_eq!(primary(&rota, "2026-03-08T10:59:59Z"), "spring");
    assert_eq!(primary(&rota, "2026-03-08T11:00:00Z"), "day");
    // 1 Nov: 01:30 happens twice; the shift starts at the first (PDT, 08:30Z) and ends
    // at 03:00 PST (11:00Z); the spring shift, 02:30-04:00 PST, starts later and wins.
    assert_eq!(primary(&rota, "2026-11-01T08:29:59Z"), "day");
    assert_eq!(primary(&rota, "2026-11-01T08:30:00Z"), "autumn");
    assert_eq!(primary(&rota, "2026-11-01T10:29:59Z"), "autumn");
    assert_eq!(primary(&rota, "2026-11-01T10:30:00Z"), "spring");
    assert_eq!(primary(&rota, "2026-11-01T12:00:00Z"), "day");
}

#[test]
fn an_override_wins_over_the_shifts_and_the_latest_starting_override_wins() {
    let rota = Rota::parse(
        "zone America/Los_Angeles\ndaily 06:00-22:00 day\ndaily 22:00-06:00 night\n\
         override 2026-12-24T18:00 2026-12-25T06:00 ana\n\
         override 2026-12-24T20:00-08:00 2026-12-24T21:00-08:00 bo\n",
    )
    .unwrap();
    assert_eq!(primary(&rota, "2026-12-25T01:59:59Z"), "day"); // 17:59 PST
    assert_eq!(primary(&rota, "2026-12-25T02:00:00Z"), "ana");
    assert_eq!(primary(&rota, "2026-12-25T04:30:00Z"), "bo");
    assert_eq!(primary(&rota, "2026-12-25T05:00:00Z"), "ana");
    assert_eq!(primary(&rota, "2026-12-25T13:59:59Z"), "ana");
    assert_eq!(primary(&rota, "2026-12-25T14:00:00Z"), "day");
    let duty = duty_at(Some(&rota), &id("fallback"), at("2026-12-25T03:00:00Z"));
    assert_eq!(
        duty.source,
        DutySource::Override {
            from: at("2026-12-25T02:00:00Z"),
            to: at("2026-12-25T14:00:00Z")
        }
    );
    // The day shift's stint ends when the override starts.
    let stint = stint_at(Some(&rota), &id("fallback"), at("2026-12-24T20:00:00Z"));
    assert_eq!(stint.until, Some(at("2026-12-25T02:00:00Z")));
}

#[test]
fn a_shift_over_midnight_belongs_to_the_day_it_starts() {
    let rota = Rota::parse("zone UTC\nfri 22:00-06:00 night\ndaily 06:00-22:00 day\n").unwrap();
    // Friday 4 Dec 2026 22:00 to Saturday 06:00.
    assert_eq!(primary(&rota, "2026-12-05T03:00:00Z"), "night");
    // Thursday night is not covered: the fallback has it.
    assert_eq!(primary(&rota, "2026-12-04T03:00:00Z"), "fallback");
    let duty = duty_at(Some(&rota), &id("fallback"), at("2026-12-04T03:00:00Z"));
    assert_eq!(duty.source, DutySource::Fallback);
}

#[test]
fn without_a_rota_the_fallback_is_primary_and_has_no_stint() {
    let stint = stint_at(None, &id("sergio-main"), 1_800_000_000);
    assert_eq!(stint.duty.dispatcher.as_str(), "sergio-main");
    assert_eq!(stint.duty.source, DutySource::Fallback);
    assert_eq!((stint.since, stint.until), (None, None));
}

#[test]
fn back_to_back_shifts_of_one_dispatcher_are_one_stint() {
    let rota = Rota::parse(
        "zone UTC\ndaily 06:00-14:00 ana\ndaily 14:00-22:00 ana\ndaily 22:00-06:00 bo\n",
    )
    .unwrap();
    let stint = stint_at(Some(&rota), &id("fallback"), at("2026-12-02T15:00:00Z"));
    assert_eq!(stint.since, Some(at("2026-12-02T06:00:00Z")));
    assert_eq!(stint.until, Some(at("2026-12-02T22:00:00Z")));
    let everyone = Rota::parse("zone UTC\ndaily 00:00-00:00 ana\n").unwrap();
    let stint = stint_at(Some(&everyone), &id("fallback"), at("2026-12-02T15:00:00Z"));
    assert_eq!((stint.since, stint.until), (None, None));
}

#[test]
fn a_long_stint_names_the_day_it_ends() {
    let rota =
        Rota::parse("zone Europe/London\nmon 09:00-09:00 ana\ntue-sun 09:00-09:00 bo\n").unwrap();
    let stint = stint_at(Some(&rota), &id("fallback"), at("2026-12-08T10:00:00Z"));
    assert_eq!(stint.duty.dispatcher.as_str(), "bo");
    assert_eq!(
        handover_text(&rota, &stint),
        "You are on QDN dispatch until Mon 14 Dec 09:00 GMT. Reply OFF to hand over."
    );
}

#[test]
fn checks_find_gaps_overlaps_and_missing_dispatchers() {
    let rota = Rota::parse(
        "zone UTC\nmon-fri 06:00-14:00 ana\nmon 13:00-15:00 bo\nmon-fri 14:00-06:00 cy\n\
         override 2026-01-01T00:00Z 2026-01-02T00:00Z gone\n\
         override 2026-12-24T00:00Z 2026-12-25T00:00Z dee\n",
    )
    .unwrap();
    let known = |d: &DispatcherId| d.as_str() != "cy" && d.as_str() != "dee";
    let problems = check_rota(&rota, &known, at("2026-12-02T00:00:00Z"));
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "the rota names dispatcher cy, which has no item",
            "the rota names dispatcher dee, which has no item",
            "shifts \"mon-fri 06:00-14:00 ana\" and \"mon 13:00-15:00 bo\" overlap from mon 13:00 (the later-starting one is primary there)",
            "shifts \"mon 13:00-15:00 bo\" and \"mon-fri 14:00-06:00 cy\" overlap from mon 14:00 (the later-starting one is primary there)",
            "no shift covers sat 06:00 to mon 06:00: the fallback primary (PRIMARY_DISPATCHER_ID) is primary then",
        ]
    );
    let keys: Vec<String> = problems.iter().map(RotaProblem::key_part).collect();
    assert_eq!(keys[0], "cy/missing");
    assert_eq!(keys[4], "gap/sat 06:00/mon 06:00");
    // A week covered end to end, across Sunday midnight, has no gap.
    let full = Rota::parse("zone UTC\ndaily 22:00-22:00 ana\n").unwrap();
    assert!(check_rota(&full, &|_| true, 0).is_empty());
    // Overrides alone leave the rest to the fallback by design.
    let overrides =
        Rota::parse("zone UTC\noverride 2026-12-24T00:00Z 2026-12-25T00:00Z ana\n").unwrap();
    assert!(check_rota(&overrides, &|_| true, 0).is_empty());
}

#[test]
fn parse_errors_name_the_line_and_the_word() {
    let cases = [
        (
            "daily 06:00-22:00 ana\n",
            "no `zone` line (e.g. `zone America/Los_Angeles`)",
        ),
        (
            "zone Mars/Olympus\n",
            "line 1: unknown time zone \"Mars/Olympus\" (an IANA name such as America/Los_Angeles)",
        ),
        (
            "zone UTC\nzone UTC\n",
            "line 2: a second `zone` line: a rota has one time zone",
        ),
        (
            "zone UTC\nweekdays 06:00-22:00 ana\n",
            "line 2: \"weekdays\" is not days of the week (mon, mon-fri, sat,sun or daily)",
        ),
        (
            "zone UTC\nmon 6-22 ana\n",
            "line 2: \"6-22\" is not a shift's hours (HH:MM-HH:MM, e.g. 22:00-06:00)",
        ),
        (
            "zone UTC\nmon 24:00-06:00 ana\n",
            "line 2: \"24:00-06:00\" is not a shift's hours (HH:MM-HH:MM, e.g. 22:00-06:00)",
        ),
        (
            "zone UTC\nmon 06:00-22:00 ana bo # two names\n",
            "line 2: expected `DAYS HH:MM-HH:MM DISPATCHER`",
        ),
        (
            "zone UTC\nmon 06:00-22:00 a/b\n",
            "line 2: \"a/b\" is not a dispatcher ID (letters, digits, '-', '_' or '.')",
        ),
        (
            "zone UTC\noverride tomorrow 2026-12-25T00:00 ana\n",
            "line 2: \"tomorrow\" is not a time (2026-12-24T18:00 in the rota's zone, or with an offset: 2026-12-24T18:00-08:00)",
        ),
        (
            "zone UTC\noverride 2026-12-25T00:00 2026-12-24T00:00 ana\n",
            "line 2: the override ends before it starts",
        ),
        (
            "zone UTC\noverride 2026-12-25T00:00 ana\n",
            "line 2: expected `override FROM TO DISPATCHER`",
        ),
    ];
    for (text, expected) in cases {
        let error = Rota::parse(text).unwrap_err();
        assert_eq!(error.to_string(), expected, "{text:?}");
    }
}

#[test]
fn comments_blank_lines_and_any_case_are_read() {
    let rota = Rota::parse(
        "# the QDN rota\n\nZONE America/New_York   # east coast\nMON-FRI\t06:00-14:00\tana\nFri-Mon 22:00-06:00 bo\nsat,SUN 06:00-22:00 cy\n",
    )
    .unwrap();
    assert_eq!(
        rota.render(),
        "zone America/New_York\nmon-fri 06:00-14:00 ana\nmon,fri,sat,sun 22:00-06:00 bo\nsat,sun 06:00-22:00 cy\n"
    );
}

#[test]
fn the_stored_item_is_read_by_one_decoder_that_names_its_damage() {
    use crate::stored::{Stored, StoredType};
    struct Item(Option<Stored<'static>>);
    impl StoredItem for Item {
        fn attribute(&self, name: &str) -> Option<Stored<'_>> {
            (name == ROTA_ATTRIBUTE).then_some(self.0).flatten()
        }
    }
    let ok = decode_rota(&Item(Some(Stored::Text(
        "zone UTC\ndaily 00:00-00:00 ana\n",
    ))))
    .unwrap();
    assert_eq!(ok.rota.shifts.len(), 1);
    let missing = decode_rota(&Item(None)).unwrap_err();
    assert_eq!(missing.to_string(), "rota is not set");
    let wrong = decode_rota(&Item(Some(Stored::Other(StoredType::List)))).unwrap_err();
    assert_eq!(RotaProblem::Unreadable(wrong).key_part(), "rota/wrong_type");
    let syntax = decode_rota(&Item(Some(Stored::Text("zone UTC\nmon x ana\n")))).unwrap_err();
    assert_eq!(
        RotaProblem::Unreadable(syntax.clone()).key_part(),
        "rota/unreadable"
    );
    assert!(syntax.to_string().starts_with("rota: line 2:"), "{syntax}");
}

const ZONES: [&str; 5] = [
    "UTC",
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
];

fn any_shift() -> impl Strategy<Value = Shift> {
    (1u8..128, 0u32..1440, 0u32..=1440, "[a-z][a-z0-9-]{0,10}").prop_map(
        |(days, from, to, dispatcher)| Shift {
            days: Days(days),
            from: ClockTime(from),
            to: ClockTime(to),
            dispatcher: id(&dispatcher),
        },
    )
}

fn any_rota() -> impl Strategy<Value = Rota> {
    (
        0..ZONES.len(),
        proptest::collection::vec(any_shift(), 0..6),
        proptest::collection::vec(
            (
                1_700_000_000i64..1_900_000_000,
                1i64..2_000_000,
                "[a-z][a-z0-9_.]{0,8}",
            ),
            0..4,
        ),
    )
        .prop_map(|(zone, shifts, overrides)| {
            let mut rota = Rota::empty(ZONES[zone]).unwrap();
            rota.shifts = shifts;
            rota.overrides = overrides
                .into_iter()
                .map(|(from, length, dispatcher)| Override {
                    from,
                    to: from + length,
                    dispatcher: id(&dispatcher),
                })
                .collect();
            rota
        })
}

proptest! {
    #[test]
    fn a_rota_reads_back_as_it_was_written(rota in any_rota()) {
        prop_assert_eq!(Rota::parse(&rota.render()).unwrap(), rota);
    }

    #[test]
    fn any_text_parses_or_says_why_never_panics(text in "(zone|override|mon|daily|[0-9:T+-]{1,8}|[a-z/_]{1,12}|#| |\t|\n){0,40}") {
        let _ = Rota::parse(&text).map(|r| r.render());
    }

    #[test]
    fn the_primary_is_a_dispatcher_whose_shift_or_override_covers_the_instant(
        rota in any_rota(),
        instant in 1_700_000_000i64..1_900_000_000,
    ) {
        let fallback = id("fallback");
        let duty = duty_at(Some(&rota), &fallback, instant);
        match duty.source {
            DutySource::Override { from, to } => {
                prop_assert!(from <= instant && instant < to);
                prop_assert!(rota.overrides.iter().any(|o| o.dispatcher == duty.dispatcher));
            }
            DutySource::Shift { index, start, end } => {
                prop_assert!(start <= instant && instant < end);
                prop_assert_eq!(&rota.shifts[index].dispatcher, &duty.dispatcher);
                prop_assert!(rota.overrides.iter().all(|o| !(o.from <= instant && instant < o.to)));
            }
            DutySource::Fallback => prop_assert_eq!(&duty.dispatcher, &fallback),
        }
        let stint = stint_at(Some(&rota), &fallback, instant);
        if let Some(since) = stint.since {
            prop_assert!(since <= instant);
            prop_assert_eq!(&duty_at(Some(&rota), &fallback, since).dispatcher, &duty.dispatcher);
        }
        if let Some(until) = stint.until {
            prop_assert!(until > instant);
            prop_assert_ne!(&duty_at(Some(&rota), &fallback, until).dispatcher, &duty.dispatcher);
        }
    }

    #[test]
    fn a_week_without_gaps_reports_none_and_every_gap_is_uncovered(rota in any_rota()) {
        for problem in check_rota(&rota, &|_| true, 0) {
            if let RotaProblem::Gap { from, to } = problem {
                prop_assert!(from.0 < to.0, "{} to {}", from, to);
                // The middle of a gap is covered by no shift's stretch of the week.
                let middle = (from.0 + to.0) / 2 % MINUTES_PER_WEEK;
                for shift in &rota.shifts {
                    for day in 0..7usize {
                        if shift.days.contains_index(day) {
                            let start = day as u32 * MINUTES_PER_DAY + shift.from.0;
                            let end = start + shift.duration_minutes();
                            let covered = (start..end).contains(&middle)
                                || (start..end).contains(&(middle + MINUTES_PER_WEEK));
                            prop_assert!(!covered);
                        }
                    }
                }
            }
        }
    }
}
