//! End-to-end: the built `sms-inbound` binary under the Lambda Runtime API, AWS in moto,
//! Twilio in the sandbox. Each test has its own tables, topic, sandbox and process.

use relay_tests::stack::{
    BACKUP_PHONE, InboundStack, PRIMARY_PHONE, QDN_NUMBER, TERTIARY_PHONE, seed_dispatcher,
    unix_now,
};
use serde_json::json;

const DRIVER: &str = "+16195550123";

#[tokio::test]
async fn available_primary_receives_the_text() {
    let stack = InboundStack::start("primary").await;
    stack.aws.put_dispatcher(seed_dispatcher(unix_now())).await;

    let (sid, answer) = stack.text_from(DRIVER, "Load ready at 5th & Main").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.headers["content-type"], "text/xml");
    assert_eq!(answer.body, "<Response/>");
    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, PRIMARY_PHONE);
    assert_eq!(sent[0].from.as_deref(), Some(QDN_NUMBER));
    assert_eq!(sent[0].body, format!("QDN driver {DRIVER}: Load ready at 5th & Main"));
    assert!(stack.aws.alerts().await.is_empty());
    let primary = stack.aws.get_dispatcher("sergio-main").await.unwrap();
    assert_eq!(primary["available"], json!(true));
    let _ = sid;
    stack.stop().await;
}

#[tokio::test]
async fn unavailable_primary_cascades_to_backup() {
    let stack = InboundStack::start("backup").await;
    let mut seed = seed_dispatcher(unix_now());
    seed["available"] = json!(false);
    stack.aws.put_dispatcher(seed).await;

    let (_, answer) = stack.text_from(DRIVER, "Where do I dump?").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    let sent = stack.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, BACKUP_PHONE);
    let alerts = stack.aws.alerts().await;
    assert!(alerts.iter().any(|a| a.message["type"] == "cascade"), "{alerts:?}");
    stack.stop().await;
}

#[tokio::test]
async fn no_backup_cascades_to_tertiary() {
    let stack = InboundStack::start("tertiary").await;
    let mut seed = seed_dispatcher(unix_now());
    seed["available"] = json!(false);
    seed.as_object_mut().unwrap().remove("backup_dispatcher");
    stack.aws.put_dispatcher(seed).await;

    let (_, answer) = stack.text_from(DRIVER, "Anyone there?").await;

    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.sent_to(TERTIARY_PHONE).len(), 1, "{:?}", stack.sent());
    assert_eq!(stack.sent().len(), 1);
    stack.stop().await;
}
