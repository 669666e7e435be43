//! Rotas built around the real current instant, so no test depends on the time of day
//! it runs at and none sleeps until a boundary.

/// `HH:MM` of a minute of the day, wrapping round midnight.
fn clock(minute: i64) -> String {
    let minute = minute.rem_euclid(1_440);
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// A rota in `zone` (one without daylight saving, so "a minute ago" is exact) whose
/// daily shift for `on_now` began `minutes_ago` minutes ago and lasts `hours`, the
/// rest of the day being `rest`'s. Its text, and when `on_now`'s shift ends (Unix).
pub fn shift_began_minutes_ago(
    zone: &str,
    on_now: &str,
    rest: &str,
    minutes_ago: i64,
    hours: i64,
) -> (String, i64) {
    let now = jiff::Timestamp::now();
    let local = now.in_tz(zone).expect("a known zone");
    let minute_of_day = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let start = minute_of_day - minutes_ago;
    let end = start + hours * 60;
    let text = format!(
        "# built around now ({now})\nzone {zone}\ndaily {}-{} {on_now}\ndaily {}-{} {rest}\n",
        clock(start),
        clock(end),
        clock(end),
        clock(start)
    );
    let ends_at = now.as_second() - i64::from(local.second()) - minutes_ago * 60 + hours * 3_600;
    (text, ends_at)
}

/// An override line for `dispatcher` from `from` to `to` (Unix seconds), as RFC 3339.
pub fn override_line(dispatcher: &str, from: i64, to: i64) -> String {
    let at = |secs| jiff::Timestamp::from_second(secs).expect("in range");
    format!("override {} {} {dispatcher}\n", at(from), at(to))
}
