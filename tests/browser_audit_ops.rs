//! The auditors' and operators' pages in a real headless Chromium, against the real binary: an
//! auditor opens the queue as of an earlier instant (and position) and sees what it was then,
//! and runs the chain verification; an admin sees the live sessions and kicks one, and the
//! kicked page says that an operator closed it.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::browser::*;
use common::seed::*;
use common::ws::{admin_token, sessions};
use common::*;
use serde_json::{json, Value};

/// The `(id, status)` pairs `#asof-queue` shows, in order.
async fn shown_as_of(browser: &Browser) -> Vec<(String, String)> {
    let shown = browser
        .js(
            "return [...document.querySelectorAll('#asof-queue [data-case-id]')]
                 .map(e => [e.dataset.caseId, e.dataset.status]);",
            vec![],
        )
        .await;
    serde_json::from_value(shown).expect("pairs")
}

/// Loads the as-of queue and waits until `#asof-queue` shows `expected`.
async fn load_as_of(browser: &Browser, what: &str, expected: &[(String, String)]) {
    browser.click("#asof-load").await;
    browser
        .wait_js(
            what,
            "const shown = [...document.querySelectorAll('#asof-queue [data-case-id]')]
                 .map(e => [e.dataset.caseId, e.dataset.status]);
             return JSON.stringify(shown) === JSON.stringify(arguments[0]);",
            vec![json!(expected)],
        )
        .await;
}

/// The next whole second after now, in seconds since the epoch.
fn next_whole_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_sees_the_queue_as_of_an_earlier_instant() {
    let Some(demo) = Demo::start("an_auditor_sees_the_queue_as_of_an_earlier_instant", &[]) else {
        return;
    };
    let server = &demo.server;
    let auditor = login(server, "auditor", &demo_password("auditor")).await;
    let reviewer = login(server, "reviewer", &demo_password("reviewer")).await;
    let classifier = classifier_token(server).await;
    let before = submit(server, &classifier, "E2E-ASOF-BEFORE", "urgent").await;
    let before_id = id_of(&before);
    let head_then = before["position"].as_u64().expect("position");

    // The instant: a whole second after every event so far, and before every event after it
    // (datetime-local inputs hold whole seconds).
    let instant = next_whole_second();
    eventually(
        "the clock to pass the instant",
        std::time::Duration::from_secs(3),
        || async {
            (SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis()
                > u128::from(instant) * 1000 + 20)
                .then_some(())
        },
    )
    .await;
    let rfc3339 = events::Timestamp::from_micros(instant as i64 * 1_000_000).to_rfc3339();
    let input_value = &rfc3339[..19];
    let then = queue_as_of(server, &auditor, &rfc3339).await;
    assert!(then.contains(&(before_id.clone(), "pending".to_owned())));

    // After it: the case is claimed and decided, and another one arrives.
    claim(server, &reviewer, &before_id).await;
    let body = json!({"decision": "confirm", "notes": "Matches the excerpt."});
    let path = format!("/api/v1/cases/{before_id}/decision");
    assert_json(post(server, &path, Some(&reviewer), &body).await, 200).await;
    let after = submit(server, &classifier, "E2E-ASOF-AFTER", "urgent").await;
    let after_id = id_of(&after);
    let now = queue_as_of(server, &auditor, &after["position"].to_string()).await;
    assert_ne!(now, then, "the queue changed after the instant");
    assert_eq!(
        queue_as_of(server, &auditor, &rfc3339).await,
        then,
        "the server's answer for the instant did not change"
    );

    let browser = Browser::launch(server).await;
    browser.sign_in("auditor", &demo_password("auditor")).await;
    browser.wait_for("#audit-page").await;
    assert_eq!(
        browser.js("return location.hash;", vec![]).await,
        "#/audit",
        "an auditor lands on the audit page"
    );

    // As of the instant: the case still pending, the later one not there.
    browser.set_value("#asof-datetime", input_value).await;
    load_as_of(&browser, "the queue as of the instant", &then).await;
    let shown = shown_as_of(&browser).await;
    assert!(shown.contains(&(before_id.clone(), "pending".to_owned())));
    assert!(!shown.iter().any(|(id, _)| *id == after_id));
    let label = browser.text("#asof-label").await.unwrap_or_default();
    assert!(!label.is_empty(), "#asof-label names what is shown");

    // As of a position: the same, by the other input.
    let at_position = queue_as_of(server, &auditor, &head_then.to_string()).await;
    assert_eq!(at_position, then);
    browser
        .set_value("#asof-position", &head_then.to_string())
        .await;
    load_as_of(&browser, "the queue as of the position", &at_position).await;

    // The decided case's history, oldest first.
    browser.fill("#audit-case-id", &before_id).await;
    browser.click("#audit-case-load").await;
    let types = browser
        .wait_js(
            "the case's history in #audit-history",
            "const t = [...document.querySelectorAll('#audit-history li[data-event-type]')]
                 .map(e => e.dataset.eventType);
             return t.length >= 3 ? t : null;",
            vec![],
        )
        .await;
    assert_eq!(
        types,
        json!(["case_submitted", "case_claimed", "case_decided"])
    );

    // The chain verifies.
    browser.click("#verify-run").await;
    browser.wait_attr("#verify-result", "data-ok", "true").await;
    assert!(
        browser.attr("#export-download", "href").await.is_some(),
        "the export can be downloaded"
    );
    browser.resize(1280, 1400).await;
    browser.js("window.scrollTo(0, 0);", vec![]).await;
    browser.screenshot("audit").await;
    eprintln!("as of {rfc3339}: {} cases; label {label:?}", then.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_kicks_a_session_and_the_page_says_an_operator_closed_it() {
    let Some(demo) = Demo::start(
        "an_admin_kicks_a_session_and_the_page_says_an_operator_closed_it",
        &[],
    ) else {
        return;
    };
    let server = &demo.server;
    let admin_password = admin_password(&server.data_dir);
    let (reviewer, operator) = tokio::join!(Browser::launch(server), Browser::launch(server));

    let kicked = reviewer
        .sign_in("reviewer", &demo_password("reviewer"))
        .await;
    operator.sign_in("admin", &admin_password).await;
    operator.wait_for("#ops-page").await;
    assert_eq!(
        operator.js("return location.hash;", vec![]).await,
        "#/ops",
        "an admin who reviews nothing lands on the operations page"
    );

    let row = format!("#sessions tr[data-session-id=\"{kicked}\"]");
    operator.wait_for(&row).await;
    let own = operator.connection().await.session_id;
    operator
        .wait_for(&format!("#sessions tr[data-session-id=\"{own}\"]"))
        .await;
    operator
        .wait_js(
            "#ops-metrics [data-metric=sessions] to count both sessions",
            "const e = document.querySelector('#ops-metrics [data-metric=\"sessions\"]');
             return !!e && Number(e.textContent.replace(/[^0-9.]/g, '')) >= 2;",
            vec![],
        )
        .await;
    operator.wait_for("#limits").await;
    for metric in ["messages_per_second", "projection_lag", "append_p99"] {
        operator
            .wait_js(
                &format!("#ops-metrics [data-metric={metric}] to show a number"),
                "const e = document.querySelector(
                     `#ops-metrics [data-metric=\"${arguments[0]}\"]`);
                 return !!e && /[0-9]/.test(e.textContent);",
                vec![json!(metric)],
            )
            .await;
    }
    operator.screenshot("operations").await;

    operator
        .click(&format!("{row} button[data-action=\"kick\"]"))
        .await;
    reviewer.wait_for("#notice[data-reason=\"kicked\"]").await;
    let notice = reviewer.text("#notice").await.unwrap_or_default();
    assert!(
        notice.to_lowercase().contains("operator"),
        "the notice says an operator closed it: {notice:?}"
    );
    // Closed for good (4403): the page does not come back by itself.
    reviewer
        .wait_attr("#connection", "data-state", "offline")
        .await;
    operator.wait_gone(&row).await;
    let token = admin_token(server).await;
    let live: Vec<Value> = sessions(server, &token).await;
    assert!(!live.iter().any(|s| s["id"] == kicked.as_str()), "{live:?}");
    eprintln!("kicked: {notice}");
}
