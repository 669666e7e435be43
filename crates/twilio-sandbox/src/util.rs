//! SIDs and Twilio-style dates.

/// `prefix` followed by 32 random lowercase hex digits, like every Twilio SID.
pub(crate) fn new_sid(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

/// Whether `s` is `prefix` followed by 32 hex digits.
pub(crate) fn is_sid(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Now, formatted as Twilio's RFC 2822 dates: `Mon, 23 Nov 2026 23:59:26 +0000`.
pub(crate) fn rfc2822_now() -> String {
    format_rfc2822(jiff::Timestamp::now())
}

/// Formats seconds since the Unix epoch (UTC) as RFC 2822.
#[cfg(test)]
pub(crate) fn rfc2822(unix_secs: i64) -> String {
    format_rfc2822(jiff::Timestamp::from_second(unix_secs).expect("in jiff's range"))
}

fn format_rfc2822(t: jiff::Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc2822() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc2822(1_795_478_366), "Mon, 23 Nov 2026 23:59:26 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn sids() {
        let sid = new_sid("SM");
        assert!(is_sid(&sid, "SM"), "{sid}");
        assert_eq!(sid, sid.to_lowercase().replacen("sm", "SM", 1));
        assert!(!is_sid("MG123", "MG"));
        assert!(!is_sid(&new_sid("SM"), "MG"));
    }
}
