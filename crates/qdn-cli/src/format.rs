//! Pure formatting and parsing: durations, heartbeat ages, times, tables, stdout.

use std::io::Write;

use comfy_table::{Table, presets};

/// The longest token `qdn token` issues: a token outliving a month is a standing
/// credential, which a dispatcher's shift token should never be.
pub const MAX_TOKEN_TTL_SECS: u64 = 30 * 86_400;

/// Parses `90s`, `30m`, `12h`, `1d` (or bare seconds, `3600`) into seconds; more
/// than zero.
pub fn parse_duration(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => raw.split_at(at),
        None => (raw, "s"),
    };
    let multiplier = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{raw:?} is not a duration like 90s, 30m, 12h or 1d"
            ));
        }
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 90s, 30m, 12h or 1d"))?;
    let secs = count
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{raw:?} is too long"))?;
    if secs == 0 {
        return Err("the duration must be more than zero".into());
    }
    Ok(secs)
}

/// A duration as people say it: the largest whole unit (`90s` stays `90s`, `3600` is
/// `1h`, `5400` is `90m`).
pub fn duration(secs: u64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// How long ago `then` was, as people read it: `45s ago`, `4m ago`, `2h ago`, `3d
/// ago`, `never` (no heartbeat), or `in 5m` (a clock ahead of ours).
pub fn age(now: i64, then: Option<i64>) -> String {
    let Some(then) = then else {
        return "never".into();
    };
    let delta = now.saturating_sub(then);
    let (secs, ahead) = if delta < 0 {
        (delta.unsigned_abs(), true)
    } else {
        (delta as u64, false)
    };
    let amount = if secs < 60 {
        format!("{secs}s")
    } else if secs < 3_600 {
        format!("{}m", secs / 60)
    } else if secs < 86_400 {
        format!("{}h", secs / 3_600)
    } else {
        format!("{}d", secs / 86_400)
    };
    if ahead {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// Unix seconds as ISO 8601 UTC (`2026-11-24T05:46:20Z`).
pub fn iso(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("@{unix}"))
}

/// The current time, in Unix seconds.
pub fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// An aligned, borderless table with upper-case headers: no colours, no wrapping.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    if !header.is_empty() {
        table.set_header(header.to_vec());
    }
    table
}

/// The table as text: columns two spaces apart, no trailing spaces.
pub fn render(table: &mut Table) -> String {
    let columns = table.column_count();
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i + 1 == columns { 0 } else { 2 }));
    }
    table
        .lines()
        .map(|line| line.trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes to stdout; a closed pipe (`qdn ... | head`) is not an error.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|_| {
            if text.ends_with('\n') {
                Ok(())
            } else {
                stdout.write_all(b"\n")
            }
        })
        .and_then(|_| stdout.flush());
}

/// One JSON document on stdout.
pub fn out_json(value: &serde_json::Value) {
    out(&serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

/// Any message as one line: newlines and runs of blanks become single spaces.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_unit() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert_eq!(parse_duration("3600"), Ok(3_600));
        assert_eq!(parse_duration(" 2h "), Ok(7_200));
    }

    #[test]
    fn bad_durations_are_refused() {
        for bad in [
            "", "h", "0", "0s", "12x", "1.5h", "-1h", "12hours", "1h30m", "h12",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("999999999999999999d").is_err(), "overflow");
    }

    #[test]
    fn durations_print_in_their_largest_whole_unit() {
        assert_eq!(duration(90), "90s");
        assert_eq!(duration(3_600), "1h");
        assert_eq!(duration(5_400), "90m");
        assert_eq!(duration(86_400), "1d");
        assert_eq!(duration(43_200), "12h");
        assert_eq!(duration(59), "59s");
    }

    #[test]
    fn ages_read_as_people_say_them() {
        let now = 1_000_000;
        assert_eq!(age(now, None), "never");
        assert_eq!(age(now, Some(now)), "0s ago");
        assert_eq!(age(now, Some(now - 59)), "59s ago");
        assert_eq!(age(now, Some(now - 60)), "1m ago");
        assert_eq!(age(now, Some(now - 4 * 60 - 59)), "4m ago");
        assert_eq!(age(now, Some(now - 3_599)), "59m ago");
        assert_eq!(age(now, Some(now - 2 * 3_600)), "2h ago");
        assert_eq!(age(now, Some(now - 86_399)), "23h ago");
        assert_eq!(age(now, Some(now - 3 * 86_400 - 5)), "3d ago");
        assert_eq!(age(now, Some(now + 300)), "in 5m");
        // Absurd values do not overflow.
        assert_eq!(
            age(i64::MAX, Some(i64::MIN)),
            format!("{}d ago", i64::MAX / 86_400)
        );
        assert_eq!(
            age(i64::MIN, Some(i64::MAX)),
            format!("in {}d", i64::MAX / 86_400)
        );
    }

    #[test]
    fn times_are_iso_8601_utc() {
        assert_eq!(iso(1_712_345_678), "2024-04-05T19:34:38Z");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn tables_align_without_trailing_space() {
        let mut t = table(&["ID", "PHONE"]);
        t.add_row(vec!["sergio-main", "+18585550100"]);
        t.add_row(vec!["x", "-"]);
        let text = render(&mut t);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "ID           PHONE");
        assert_eq!(lines[1], "sergio-main  +18585550100");
        assert_eq!(lines[2], "x            -");
    }

    #[test]
    fn messages_become_one_line() {
        assert_eq!(one_line("a\n  b\r\n\tc "), "a b c");
    }
}
