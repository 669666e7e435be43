//! End-to-end replies by text: the built `sms-inbound` under the Runtime API emulator,
//! AWS through moto, Twilio through the sandbox. A dispatcher answers a driver by
//! texting the QDN number back; each test plays it through the webhook as Twilio does.

use std::time::Duration;

use relay_tests::qdn::qdn;
use relay_tests::stack::{
    BACKUP_PHONE, HttpAnswer, PRIMARY_PHONE, QDN_NUMBER, Stack, reference_of, seed_dispatcher,
    unix_now,
};
use serde_json::{Value, json};

const DRIVER: &str = "+16195550123";
const OTHER_DRIVER: &str = "+16195550456";
/// The sandbox refuses to send to this number as unsubscribed (Twilio's 21610).
const UNSUBSCRIBED_DRIVER: &str = "+15005550004";

async fn seeded(prefix: &str, extra_env: &[(&str, &str)]) -> Stack {
    let stack = Stack::start_with(prefix, 1, extra_env).await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;
    stack
}

/// The text of the TwiML `<Message>` the dispatcher reads, unescaped.
fn message(answer: &HttpAnswer) -> String {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.headers["content-type"], "text/xml");
    let body = &answer.body;
    let start = body
        .find("<Message>")
        .unwrap_or_else(|| panic!("no <Message> in {body}"))
        + "<Message>".len();
    let end = body.find("</Message>").expect("a closing </Message>");
    body[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A driver's text relayed to the primary: its MessageSid and reference.
async fn driver_texts(stack: &Stack, driver: &str, body: &str) -> (String, String) {
    let before = stack.sent_to(PRIMARY_PHONE).len();
    let (sid, answer) = stack.text_from(driver, body).await;
    assert_eq!(answer.body, "<Response/>", "{answer:?}");
    let relayed = stack.sent_to(PRIMARY_PHONE);
    assert_eq!(relayed.len(), before + 1, "{relayed:?}");
    (sid, reference_of(&relayed[before].body))
}

async fn item(stack: &Stack, sid: &str) -> Value {
    stack.aws.message_log_item(sid).await
}

/// The "dispatcher answer" decision line of the invocation that handled `sid`.
async fn decision_line(stack: &Stack, sid: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(line) = stack
            .json_logs()
            .into_iter()
            .find(|l| l["message"] == "dispatcher answer" && l["message_sid"] == sid)
        {
            return line;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no decision line for {sid}:\n{}",
            stack.logs().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_answer_with_its_reference_reaches_the_driver_once_stamped_and_on_the_trail() {
    let stack = seeded("reply-ref", &[]).await;
    let (driver_sid, reference) = driver_texts(&stack, DRIVER, "Load ready at 5th").await;

    // Any case: the reference as a dispatcher thumbs it in.
    let answer_text = format!("{} On my way, 10 min", reference.to_lowercase());
    let (answer_sid, answer) = stack.text_from(PRIMARY_PHONE, &answer_text).await;
    let told = message(&answer);
    assert_eq!(told, format!("QDN relay: Sent to ***0123 ({reference})."));
    let to_driver = stack.sent_to(DRIVER);
    assert_eq!(to_driver.len(), 1, "{:?}", stack.sent());
    assert_eq!(to_driver[0].from.as_deref(), Some(QDN_NUMBER));
    let body = &to_driver[0].body;
    let (words, stamp) = body.split_once("\n-- sergio-main / ").expect("stamped");
    assert_eq!(words, "On my way, 10 min");
    assert_eq!(stamp.len(), "2026-12-02T10:00:00Z".len(), "{body}");
    assert!(stamp.ends_with('Z') && stamp.contains('T'), "{body}");

    // Twilio's redelivery of the dispatcher's text: the same answer back, no send.
    let again = stack
        .text_with_sid(&answer_sid, PRIMARY_PHONE, &answer_text)
        .await;
    assert_eq!(message(&again), told);
    assert_eq!(stack.sent_to(DRIVER).len(), 1, "answered once");

    // One decision line: dispatcher, reference, outcome, and never a body.
    let line = decision_line(&stack, &answer_sid).await;
    assert_eq!(line["answer_outcome"], "sent");
    assert_eq!(line["dispatcher"], "sergio-main");
    assert_eq!(line["reference"], reference.as_str());
    assert_eq!(line["driver"], "***0123");
    let all_logs = stack.logs().join("\n");
    assert!(!all_logs.contains("On my way"), "a body was logged");
    assert!(!all_logs.contains(DRIVER), "a number was logged unmasked");
    let sent = stack.metric("AnswersSent").await;
    assert_eq!(sent["AnswersSent"], 1);

    // The driver's trail: who answered, when, under which reference.
    let driver_item = item(&stack, &driver_sid).await;
    assert_eq!(driver_item["answers"][0]["answered_by"], "sergio-main");
    assert_eq!(driver_item["answers"][0]["reference"], reference.as_str());
    assert_eq!(
        driver_item["answers"][0]["message_sid"],
        to_driver[0].sid.as_str()
    );
    let trail = qdn(&stack.aws, &["trail", &driver_sid, "--json"])
        .await
        .json();
    let answered: Vec<&Value> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "answered")
        .collect();
    assert_eq!(answered.len(), 1, "{trail}");
    assert_eq!(
        answered[0]["detail"],
        format!(
            "sergio-main by text, reference {reference}, as {}",
            to_driver[0].sid
        )
    );
    assert!(answered[0]["at"].as_i64().is_some(), "{trail}");
    stack.stop().await;
}

#[tokio::test]
async fn a_bare_answer_goes_to_the_one_driver_waiting_and_two_texts_count_as_one() {
    let stack = seeded("reply-bare", &[]).await;
    driver_texts(&stack, DRIVER, "Load ready").await;
    driver_texts(&stack, DRIVER, "Still waiting at the gate").await;
    let (_, answer) = stack.text_from(PRIMARY_PHONE, "On my way").await;
    assert!(
        message(&answer).starts_with("QDN relay: Sent to ***0123 ("),
        "{answer:?}"
    );
    assert_eq!(stack.sent_to(DRIVER).len(), 1, "{:?}", stack.sent());
    stack.stop().await;
}

#[tokio::test]
async fn a_bare_answer_with_two_drivers_waiting_sends_nothing_and_lists_both() {
    let stack = seeded("reply-two", &[]).await;
    let (_, first) = driver_texts(&stack, DRIVER, "Load ready").await;
    let (_, second) = driver_texts(&stack, OTHER_DRIVER, "Where do I dump").await;
    let (_, answer) = stack.text_from(PRIMARY_PHONE, "On my way").await;
    let listing = message(&answer);
    assert!(
        listing.starts_with("QDN relay: Not sent: 2 drivers are waiting on this phone."),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("\n{first} ***0123 \"Load ready\" ")),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("\n{second} ***0456 \"Where do I dump\" ")),
        "{listing}"
    );
    assert!(listing.contains(" ago"), "{listing}");
    assert!(stack.sent_to(DRIVER).is_empty() && stack.sent_to(OTHER_DRIVER).is_empty());
    // Picking one by its reference sends to that driver only.
    let (_, picked) = stack
        .text_from(PRIMARY_PHONE, &format!("{second} Dump at the north gate"))
        .await;
    assert_eq!(
        message(&picked),
        format!("QDN relay: Sent to ***0456 ({second}).")
    );
    assert_eq!(stack.sent_to(OTHER_DRIVER).len(), 1);
    assert!(stack.sent_to(DRIVER).is_empty());
    let refused = stack.metric("AnswersRefused").await;
    assert_eq!(refused["AnswersRefused"], 1);
    stack.stop().await;
}

#[tokio::test]
async fn only_a_phone_the_text_went_to_may_answer_it_and_unknown_references_send_nothing() {
    let stack = seeded("reply-other", &[]).await;
    let (_, reference) = driver_texts(&stack, DRIVER, "Load ready").await;
    // The backup never got this text: its answer sends nothing.
    let (_, answer) = stack
        .text_from(BACKUP_PHONE, &format!("{reference} On my way"))
        .await;
    assert_eq!(
        message(&answer),
        format!(
            "QDN relay: Not sent: {reference} is not a text sent to this phone in the last 2h (unknown, expired, or another phone's)."
        )
    );
    // A reference in our shape that was never issued to the primary.
    let unknown = if reference == "Z9Z" { "Y8Y" } else { "Z9Z" };
    let (_, answer) = stack
        .text_from(PRIMARY_PHONE, &format!("{unknown} On my way"))
        .await;
    assert!(
        message(&answer).starts_with(&format!("QDN relay: Not sent: {unknown} is not a text")),
        "{answer:?}"
    );
    // The backup's "Running 10 min late" is no driver's text: it reaches nobody.
    let (_, answer) = stack.text_from(BACKUP_PHONE, "Running 10 min late").await;
    assert!(
        message(&answer).starts_with("QDN relay: Not sent: no driver's text came to this phone"),
        "{answer:?}"
    );
    assert_eq!(
        stack.sent().len(),
        1,
        "only the driver's text: {:?}",
        stack.sent()
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_reference_past_the_reply_window_sends_nothing() {
    let stack = seeded("reply-expired", &[("REPLY_WINDOW_SECS", "2")]).await;
    let (_, reference) = driver_texts(&stack, DRIVER, "Load ready").await;
    let sent_at = item(&stack, &stack.sent_to(PRIMARY_PHONE)[0].sid).await["sent_at"]
        .as_i64()
        .expect("the forward item's sent_at");
    // Wait for the clock to pass the window (a condition on time, with a deadline).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while unix_now() < sent_at + 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the clock stands still"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, answer) = stack
        .text_from(PRIMARY_PHONE, &format!("{reference} On my way"))
        .await;
    assert_eq!(
        message(&answer),
        format!(
            "QDN relay: Not sent: {reference} is not a text sent to this phone in the last 2s (unknown, expired, or another phone's)."
        )
    );
    assert!(stack.sent_to(DRIVER).is_empty());
    stack.stop().await;
}

#[tokio::test]
async fn an_answer_is_the_dispatchers_check_in() {
    let stack = Stack::start_with("reply-checkin", 1, &[]).await;
    let mut seed = seed_dispatcher(unix_now());
    let earlier = unix_now() - 200;
    seed["last_heartbeat"] = json!(earlier);
    stack.aws.put_dispatcher(seed).await;
    let (_, reference) = driver_texts(&stack, DRIVER, "Load ready").await;
    let before = unix_now();
    stack
        .text_from(PRIMARY_PHONE, &format!("{reference} On my way"))
        .await;
    let primary = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    let checked_in = primary["last_heartbeat"].as_i64().unwrap();
    assert!(checked_in >= before, "{primary}");
    stack.stop().await;
}

#[tokio::test]
async fn twilio_refusing_the_drivers_number_is_told_to_the_dispatcher_and_not_retried() {
    let stack = seeded("reply-refused", &[]).await;
    let (answered, reference) = driver_texts(&stack, UNSUBSCRIBED_DRIVER, "Load ready").await;
    let (answer_sid, answer) = stack
        .text_from(PRIMARY_PHONE, &format!("{reference} On my way"))
        .await;
    assert_eq!(
        message(&answer),
        format!(
            "QDN relay: Not sent to ***0004 ({reference}): the driver has unsubscribed (replied STOP) from this number (Twilio 21610). Call the driver instead."
        )
    );
    assert_eq!(
        stack.sent().len(),
        1,
        "nothing more sent: {:?}",
        stack.sent()
    );
    let line = decision_line(&stack, &answer_sid).await;
    assert_eq!(line["answer_outcome"], "twilio_refused");
    assert!(item(&stack, &answered).await.get("answers").is_none());
    stack.stop().await;
}
