//! Properties of the parsers at the relay's edges (phone numbers, IDs, dispatcher
//! keywords, Twilio signatures, inbound texts, stored dispatcher items), over the
//! public API only.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};

use relay_core::ids::{AccountSid, DispatcherId, MessageSid, MessagingServiceSid};
use relay_core::phone::{CountryCode, PhoneNumber, mask};
use relay_core::signature::{compute_signature, is_valid_signature};
use relay_core::sms::{Command, Form, InboundSms, MAX_MEDIA, forwarded_text};

/// Twilio's limit for one message body, in characters.
const TWILIO_MAX_CHARS: usize = 1600;

// ---------------------------------------------------------------------------------
// Strategies and helpers

/// NANP, or any code of one to three digits.
fn country() -> impl Strategy<Value = CountryCode> {
    prop_oneof![
        Just(CountryCode::NANP),
        (1u16..=999).prop_map(|code| CountryCode::parse(&code.to_string()).unwrap()),
    ]
}

/// Anything, or something that looks like a phone number.
fn phone_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\s{0,2}(\\+|00)?[0-9 ().\\-/\u{a0}]{0,24}\\s{0,2}",
        "\\+?[0-9]{6,17}",
    ]
}

/// Whitespace as `str::split_whitespace` knows it (Unicode `White_Space`).
fn space(min: usize) -> impl Strategy<Value = String> {
    vec(
        select(&[" ", "\t", "\n", "\r\n", "\u{a0}", "\u{2003}", "\u{3000}"][..]),
        min..min + 3,
    )
    .prop_map(|parts| parts.concat())
}

/// Per-character choices of whether to swap ASCII case (cycled over the text).
fn case_flips() -> impl Strategy<Value = Vec<bool>> {
    vec(any::<bool>(), 1..16)
}

fn flip_case(text: &str, flips: &[bool]) -> String {
    text.chars()
        .zip(flips.iter().cycle())
        .map(|(c, &flip)| match (flip, c.is_ascii_lowercase()) {
            (false, _) => c,
            (true, true) => c.to_ascii_uppercase(),
            (true, false) => c.to_ascii_lowercase(),
        })
        .collect()
}

fn is_keyword(word: &str) -> bool {
    ["on", "off", "ack"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

/// URLs as Twilio may sign them: scheme, optional user info, host, optional (possibly
/// empty) port, path, optional query.
fn url() -> impl Strategy<Value = String> {
    (
        select(&["https", "http", "HTTPS"][..]),
        prop_oneof![Just(String::new()), Just("user:pw@".to_string())],
        "[a-z]{1,8}\\.example|\\[::1\\]",
        prop_oneof![
            Just(String::new()),
            Just(":".to_string()),
            "[0-9]{1,5}".prop_map(|p| format!(":{p}")),
        ],
        "(/[a-zA-Z0-9._~%-]{0,6}){0,3}",
        prop_oneof![Just(String::new()), "\\?[a-z0-9=&:/+%]{0,16}"],
    )
        .prop_map(|(scheme, user, host, port, path, query)| {
            format!("{scheme}://{user}{host}{port}{path}{query}")
        })
}

/// Twilio-like POST parameters: short names, any values.
fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    vec(("[A-Za-z][A-Za-z0-9]{0,9}", any::<String>()), 0..8)
}

// ---------------------------------------------------------------------------------
// Phone numbers

proptest! {
    /// Whatever `PhoneNumber::parse` accepts is E.164 (`+`, 8 to 15 digits, no leading
    /// zero, eleven digits if it starts with 1), and parsing its own output (under any
    /// default country, and through serde) gives the same number back.
    #[test]
    fn phone_parse_accepts_only_e164_and_is_idempotent(
        raw in phone_like(),
        default in country(),
        other in country(),
    ) {
        let _ = CountryCode::parse(&raw);
        if let Ok(number) = PhoneNumber::parse(&raw, default) {
            let s = number.as_str();
            let digits = s.strip_prefix('+').expect("starts with +");
            prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{s}");
            prop_assert!((8..=15).contains(&digits.len()), "{s}");
            prop_assert!(!digits.starts_with('0'), "{s}");
            prop_assert!(!digits.starts_with('1') || digits.len() == 11, "{s}");
            prop_assert_eq!(number.to_string(), s);
            prop_assert_eq!(PhoneNumber::parse(s, other), Ok(number.clone()));
            let json = serde_json::to_string(&number).unwrap();
            prop_assert_eq!(serde_json::from_str::<PhoneNumber>(&json).unwrap(), number);
        }
    }

    /// A NANP number written with any separators (spaces, dashes, dots, parentheses,
    /// slashes, no-break spaces) between its digits, with or without `1`, `+1` or `001`
    /// in front and surrounded by space, parses to the same E.164 number. With `+1` or
    /// `001` the default country does not matter.
    #[test]
    fn nanp_with_separators_parses_to_the_same_number(
        area in "[2-9][0-9]{2}",
        exchange in "[2-9][0-9]{2}",
        line in "[0-9]{4}",
        prefix in select(&["", "1", "+1", "+ 1", "001", "+1 ", "1-"][..]),
        separators in vec("[ .()/\u{a0}-]{0,2}", 10),
        lead in "[ \t]{0,2}",
        trail in "[ \t]{0,2}",
        default in country(),
    ) {
        let digits = format!("{area}{exchange}{line}");
        let mut written = format!("{lead}{prefix}");
        for (digit, separator) in digits.chars().zip(&separators) {
            written.push_str(separator);
            written.push(digit);
        }
        written.push_str(&trail);
        let international = prefix.starts_with('+') || prefix.starts_with("00");
        let default = if international { default } else { CountryCode::NANP };
        let parsed = PhoneNumber::parse(&written, default).map(String::from);
        prop_assert_eq!(parsed, Ok(format!("+1{digits}")), "{:?}", written);
    }

    /// `mask` shows `***` and at most the last four characters, never more digits.
    #[test]
    fn mask_reveals_at_most_the_last_four(raw in phone_like()) {
        let masked = mask(&raw);
        let shown = masked.strip_prefix("***").expect("starts with ***");
        let chars: Vec<char> = raw.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        prop_assert_eq!(shown, tail.as_str());
        prop_assert!(masked.chars().filter(char::is_ascii_digit).count() <= 4);
        if let Ok(number) = PhoneNumber::parse(&raw, CountryCode::NANP) {
            let s = number.as_str();
            prop_assert_eq!(number.masked(), format!("***{}", &s[s.len() - 4..]));
        }
    }
}

// ---------------------------------------------------------------------------------
// Dispatcher keywords

proptest! {
    /// `Command::parse` never panics, and any word after ACK it returns is 1 to 20
    /// upper-case ASCII letters, digits or `-`.
    #[test]
    fn command_parse_is_total(text in any::<String>()) {
        if let Some(Command::Ack { reference: Some(reference) }) = Command::parse(&text) {
            prop_assert!((1..=20).contains(&reference.len()));
            prop_assert!(reference
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == '-'));
        }
    }

    /// ON, OFF, ACK and ACK <reference> parse in any ASCII case with any whitespace
    /// around and between the words; the reference comes back upper-cased.
    #[test]
    fn keywords_parse_in_any_case_and_spacing(
        keyword in select(&["on", "off", "ack"][..]),
        reference in proptest::option::of("[a-zA-Z0-9-]{1,20}"),
        flips in case_flips(),
        lead in space(0),
        between in space(1),
        trail in space(0),
    ) {
        let reference = reference.filter(|_| keyword == "ack");
        let expected = match keyword {
            "on" => Command::On,
            "off" => Command::Off,
            _ => Command::Ack { reference: reference.as_ref().map(|r| r.to_ascii_uppercase()) },
        };
        let mut text = format!("{lead}{keyword}");
        if let Some(reference) = &reference {
            text.push_str(&between);
            text.push_str(reference);
        }
        text.push_str(&trail);
        let text = flip_case(&text, &flips);
        prop_assert_eq!(Command::parse(&text), Some(expected), "{:?}", text);
    }

    /// Changing the ASCII case of a text or the whitespace around it never changes
    /// what it parses to (keyword or not).
    #[test]
    fn case_and_surrounding_space_do_not_matter(
        words in vec(
            prop_oneof![
                select(&["on", "OFF", "Ack", "onn", "of", "ack!", "k7q", "ON."][..])
                    .prop_map(str::to_string),
                "[a-zA-Z0-9]{1,14}",
                "\\PC{1,4}",
            ],
            0..4,
        ),
        flips in case_flips(),
        lead in space(0),
        trail in space(0),
    ) {
        let text = words.join(" ");
        let varied = format!("{lead}{}{trail}", flip_case(&text, &flips));
        prop_assert_eq!(Command::parse(&varied), Command::parse(&text), "{:?}", varied);
    }

    /// A text whose first word is not a keyword is not a command.
    #[test]
    fn texts_not_starting_with_a_keyword_are_not_commands(
        first in "\\S{1,12}".prop_filter("not a keyword", |w| !is_keyword(w)),
        rest in any::<String>(),
        lead in space(0),
        between in space(1),
    ) {
        let text = format!("{lead}{first}{between}{rest}");
        prop_assert_eq!(Command::parse(&text), None, "{:?}", text);
        prop_assert_eq!(Command::parse(&first), None);
    }

    /// ON or OFF with anything after it, ACK with more than one word after it, and ACK
    /// with a reference that is too long or not alphanumeric, are not commands.
    #[test]
    fn keywords_with_the_wrong_arguments_are_not_commands(
        extra in "[a-zA-Z0-9]{1,8}",
        more in "\\S{1,8}",
        long_reference in "[a-zA-Z0-9-]{21,30}",
        odd_reference in "[a-zA-Z0-9]{0,5}[!-,./:-@\\[-`{-~\u{e9}\u{663}][a-zA-Z0-9]{0,5}",
        between in space(1),
    ) {
        for text in [
            format!("ON{between}{extra}"),
            format!("off{between}{extra}"),
            format!("ACK{between}{extra}{between}{more}"),
            format!("ack{between}{long_reference}"),
            format!("Ack{between}{odd_reference}"),
        ] {
            prop_assert_eq!(Command::parse(&text), None, "{:?}", text);
        }
    }
}

// ---------------------------------------------------------------------------------
// IDs

/// `parse` never panics, and what it accepts shows, displays, serialises and parses
/// back as exactly the input.
macro_rules! check_round_trip {
    ($ty:ty, $raw:expr) => {{
        let raw: &str = $raw;
        if let Ok(id) = <$ty>::parse(raw) {
            prop_assert_eq!(id.as_str(), raw);
            prop_assert_eq!(id.to_string(), raw);
            prop_assert_eq!(<$ty>::parse(id.as_str()), Ok(id.clone()));
            prop_assert_eq!(String::from(id.clone()), raw);
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<$ty>(&json).unwrap(), id);
        }
    }};
}

fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(SM|MM|AC|MG|sm|XX)[0-9a-fA-Fg]{30,34}",
        "[A-Za-z0-9._ -]{0,70}",
    ]
}

fn is_sid(raw: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| {
        raw.strip_prefix(p)
            .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

proptest! {
    /// Every ID parser is total, round-trips what it accepts, and accepts exactly its
    /// documented shape.
    #[test]
    fn id_parsers_round_trip_and_accept_their_shape(raw in id_like()) {
        check_round_trip!(DispatcherId, &raw);
        check_round_trip!(MessageSid, &raw);
        check_round_trip!(AccountSid, &raw);
        check_round_trip!(MessagingServiceSid, &raw);
        let dispatcher_shape = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        prop_assert_eq!(DispatcherId::parse(&raw).is_ok(), dispatcher_shape);
        prop_assert_eq!(MessageSid::parse(&raw).is_ok(), is_sid(&raw, &["SM", "MM"]));
        prop_assert_eq!(AccountSid::parse(&raw).is_ok(), is_sid(&raw, &["AC"]));
        prop_assert_eq!(MessagingServiceSid::parse(&raw).is_ok(), is_sid(&raw, &["MG"]));
    }

    /// Well-formed IDs are accepted; one character too many, or a character outside
    /// the alphabet, is refused.
    #[test]
    fn well_formed_ids_are_accepted_and_damaged_ones_refused(
        dispatcher in "[A-Za-z0-9._-]{1,64}",
        hex in "[0-9a-fA-F]{32}",
        bad in "[^A-Za-z0-9._-]",
        at in any::<Index>(),
    ) {
        let too_long = format!("{dispatcher}{}", "x".repeat(65));
        let mut damaged = dispatcher.clone();
        damaged.insert_str(at.index(dispatcher.len() + 1), &bad);
        prop_assert!(DispatcherId::parse(&dispatcher).is_ok());
        prop_assert!(DispatcherId::parse(&damaged).is_err(), "{:?}", damaged);
        prop_assert!(DispatcherId::parse(&too_long).is_err());

        let sid = |prefix: &str| format!("{prefix}{hex}");
        prop_assert!(MessageSid::parse(&sid("SM")).is_ok());
        prop_assert!(MessageSid::parse(&sid("MM")).is_ok());
        prop_assert!(AccountSid::parse(&sid("AC")).is_ok());
        prop_assert!(MessagingServiceSid::parse(&sid("MG")).is_ok());
        prop_assert!(AccountSid::parse(&sid("SM")).is_err());
        prop_assert!(MessagingServiceSid::parse(&sid("AC")).is_err());
        prop_assert!(MessageSid::parse(&sid("sm")).is_err());
        prop_assert!(MessageSid::parse(&(sid("SM") + "0")).is_err());
        prop_assert!(MessageSid::parse(&sid("SM")[..33]).is_err());
    }
}

// ---------------------------------------------------------------------------------
// Twilio signatures

fn distinct(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut pairs = params.to_vec();
    pairs.sort();
    pairs.dedup();
    pairs
}

proptest! {
    /// A signature computed over a URL and parameters is accepted for that URL and the
    /// same parameters in any order.
    #[test]
    fn signature_does_not_depend_on_parameter_order(
        token in "\\PC{0,40}",
        url in url(),
        (params, shuffled) in params().prop_flat_map(|p| (Just(p.clone()), Just(p).prop_shuffle())),
    ) {
        let signature = compute_signature(&token, &url, &params);
        prop_assert!(
            is_valid_signature(&[&token], &url, &shuffled, &signature),
            "url {:?}, signature {}", url, signature
        );
    }

    /// Changing any one parameter's value, or the token, invalidates the signature.
    /// (Twilio signs each distinct name/value pair once, so a change that only turns one
    /// copy of a repeated pair into another pair already present is not a change.)
    #[test]
    fn signature_breaks_when_a_value_changes(
        token in "\\PC{0,40}",
        other_token in "\\PC{0,40}",
        url in url(),
        params in params().prop_filter("some parameter", |p| !p.is_empty()),
        which in any::<Index>(),
        new_value in any::<String>(),
    ) {
        let signature = compute_signature(&token, &url, &params);
        let mut changed = params.clone();
        let i = which.index(changed.len());
        prop_assume!(changed[i].1 != new_value);
        changed[i].1 = new_value;
        prop_assume!(distinct(&changed) != distinct(&params));
        prop_assert!(!is_valid_signature(&[&token], &url, &changed, &signature));
        prop_assume!(other_token != token);
        prop_assert!(!is_valid_signature(&[&other_token], &url, &params, &signature));
    }
}

// ---------------------------------------------------------------------------------
// Inbound texts

proptest! {
    /// Reading an inbound SMS from any parameters never panics, and what it accepts is
    /// consistent with them: a valid SID, non-empty From and To, and as many http(s)
    /// media URLs as NumMedia says, at most ten. The forwarded text never passes
    /// Twilio's limit.
    #[test]
    fn inbound_sms_is_read_consistently(
        params in vec(
            (
                prop_oneof![
                    select(&["MessageSid", "From", "To", "Body", "NumMedia"][..])
                        .prop_map(str::to_string),
                    (0..12u8).prop_map(|i| format!("MediaUrl{i}")),
                    "[A-Za-z]{1,8}",
                ],
                prop_oneof![
                    any::<String>(),
                    "\\s?SM[0-9a-f]{32}\\s?",
                    "\\s?[0-9]{1,2}\\s?",
                    "\\s?https?://[a-z]{1,5}/[a-z]{0,5}",
                    "\\PC{1600,1700}",
                ],
            ),
            0..12,
        ),
    ) {
        let form = Form(&params);
        let Ok(sms) = InboundSms::from_form(&params) else {
            return Ok(());
        };
        prop_assert_eq!(sms.sid.as_str(), form.param("MessageSid").unwrap().trim());
        prop_assert!(!sms.from.trim().is_empty() && !sms.to.trim().is_empty());
        let num_media: usize = form
            .param("NumMedia")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map_or(0, |n| n.parse().unwrap());
        prop_assert!(num_media <= MAX_MEDIA);
        prop_assert_eq!(sms.media_urls.len(), num_media);
        prop_assert!(sms
            .media_urls
            .iter()
            .all(|u| u.starts_with("https://") || u.starts_with("http://")));
        let (text, truncated) = forwarded_text(&sms, 0);
        prop_assert!(text.chars().count() <= TWILIO_MAX_CHARS);
        if !truncated {
            let head = format!("QDN driver {}: ", sms.from);
            prop_assert!(text.starts_with(&head));
        }
    }
}
