//! The live queue in a real headless Chromium, against the real binary: a case submitted over
//! the API appears in an open queue within a second; when reviewer A decides a case in one
//! browser, reviewer B's queue in another drops it within a second (and A's case page shows its
//! history); and a page open while the server is stopped and started again on the same port
//! shows that it is reconnecting, comes back by itself, and shows every case submitted while it
//! was away, none twice. The decision form shows the server's validation errors next to the
//! field, and a 409 `version_conflict` with the case as it is now and a retry that goes through.
//!
//! Latencies are stamped inside the page by a `MutationObserver` (see [`WATCH_QUEUE`]) with the
//! page's clock, which is the test's clock (one machine), so they measure the app, not the
//! WebDriver round trips of the polling.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::browser::*;
use common::seed::*;
use common::*;
use serde_json::{json, Value};

/// The queue shown within this of a change.
const PUSH_BOUND_MS: f64 = 1_000.0;

/// Installs in the page a watcher of `#queue-list`: `window.e2eQueue.appeared[id]` is when a
/// case first showed, `window.e2eQueue.gone[id]` when a case in `window.e2eQueue.watchGone`
/// first was no longer shown (milliseconds since the epoch). It survives re-renders of the
/// list, since it watches the whole document.
const WATCH_QUEUE: &str = r#"
    if (!window.e2eQueue) {
        const state = {appeared: {}, gone: {}, watchGone: []};
        const stamp = () => {
            const now = Date.now();
            const shown = new Set([...document.querySelectorAll('#queue-list > [data-case-id]')]
                .map(e => e.dataset.caseId));
            for (const id of shown) if (!(id in state.appeared)) state.appeared[id] = now;
            for (const id of state.watchGone)
                if (!shown.has(id) && !(id in state.gone)) state.gone[id] = now;
        };
        new MutationObserver(stamp).observe(document.documentElement,
            {childList: true, subtree: true, attributes: true});
        stamp();
        window.e2eQueue = state;
    }
    if (arguments[0]) window.e2eQueue.watchGone.push(arguments[0]);
    return true;"#;

/// Milliseconds since the epoch, now.
fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
        * 1000.0
}

/// An RFC 3339 time as milliseconds since the epoch.
fn time_ms(value: &Value) -> f64 {
    assert_time(value) as f64 / 1000.0
}

/// The case ids `#queue-list` shows, in order.
async fn shown_ids(browser: &Browser) -> Vec<String> {
    let ids = browser
        .js(
            "return [...document.querySelectorAll('#queue-list > [data-case-id]')]
                 .map(e => e.dataset.caseId);",
            vec![],
        )
        .await;
    serde_json::from_value(ids).expect("a list of ids")
}

/// Waits until the page has stamped `kind` (`appeared` or `gone`) for `id`, and returns when.
async fn stamped(browser: &Browser, kind: &str, id: &str, within: Duration) -> f64 {
    browser
        .wait_js_within(
            &format!("case {id} {kind} in #queue-list"),
            within,
            "return window.e2eQueue[arguments[0]][arguments[1]] || null;",
            vec![json!(kind), json!(id)],
        )
        .await
        .as_f64()
        .expect("a time")
}

/// Waits until `#queue-list` shows exactly `expected`, in that order.
async fn wait_queue(browser: &Browser, what: &str, expected: &[String]) {
    browser
        .wait_js(
            what,
            "const ids = [...document.querySelectorAll('#queue-list > [data-case-id]')]
                 .map(e => e.dataset.caseId);
             return JSON.stringify(ids) === JSON.stringify(arguments[0]);",
            vec![json!(expected)],
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_submitted_over_the_api_appears_in_an_open_queue_within_a_second() {
    let Some(demo) = Demo::start(
        "a_case_submitted_over_the_api_appears_in_an_open_queue_within_a_second",
        &[],
    ) else {
        return;
    };
    let server = &demo.server;
    let browser = Browser::launch(server).await;
    let classifier = classifier_token(server).await;
    let reviewer = login(server, "reviewer", &demo_password("reviewer")).await;

    browser
        .sign_in("reviewer", &demo_password("reviewer"))
        .await;
    wait_queue(
        &browser,
        "the demo queue",
        &queue_ids(server, &reviewer).await,
    )
    .await;
    browser.js(WATCH_QUEUE, vec![Value::Null]).await;
    assert_eq!(
        browser
            .attr("#queue-announcer", "aria-live")
            .await
            .as_deref(),
        Some("polite")
    );

    let mut latencies = Vec::new();
    for (n, priority) in ["urgent", "normal", "low"].into_iter().enumerate() {
        let subject = format!("E2E-PUSH-{n}");
        let sent = now_ms();
        let case = submit(server, &classifier, &subject, priority).await;
        let id = id_of(&case);
        let shown = stamped(&browser, "appeared", &id, WAIT).await;
        latencies.push(shown - sent);
        let item = format!("#queue-list > [data-case-id=\"{id}\"]");
        assert_eq!(
            browser.attr(&item, "data-status").await.as_deref(),
            Some("pending")
        );
        // Where the server's order puts it.
        wait_queue(
            &browser,
            "the server's order",
            &queue_ids(server, &reviewer).await,
        )
        .await;
        // Announced to screen readers, by its subject.
        browser
            .wait_js(
                &format!("#queue-announcer to name {subject}"),
                "return document.querySelector('#queue-announcer').textContent
                     .includes(arguments[0]);",
                vec![json!(subject)],
            )
            .await;
    }
    let stats = assert_json(get(server, "/api/v1/stats", Some(&reviewer)).await, 200).await;
    browser
        .wait_text(
            "#stats [data-stat=\"pending\"]",
            &stats["pending"].to_string(),
        )
        .await;
    eprintln!("submitted → shown in the queue: {latencies:.0?} ms");
    for latency in latencies {
        assert!(
            latency <= PUSH_BOUND_MS,
            "a submitted case took {latency:.0} ms to show"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_reviewer_a_decides_a_case_reviewer_b_queue_drops_it_within_a_second() {
    let Some(demo) = Demo::start(
        "when_reviewer_a_decides_a_case_reviewer_b_queue_drops_it_within_a_second",
        &[],
    ) else {
        return;
    };
    let server = &demo.server;
    let admin = common::ws::admin_token(server).await;
    let b_password = "reviewer-bee-password";
    create_user(server, &admin, "bea", b_password, &["reviewer"]).await;
    let classifier = classifier_token(server).await;
    let case = submit(server, &classifier, "E2E-DECIDE-1", "urgent").await;
    let id = id_of(&case);
    let item = format!("#queue-list > [data-case-id=\"{id}\"]");

    let (a, b) = tokio::join!(Browser::launch(server), Browser::launch(server));
    a.sign_in("reviewer", &demo_password("reviewer")).await;
    b.sign_in("bea", b_password).await;
    a.wait_for(&item).await;
    b.wait_for(&item).await;
    b.js(WATCH_QUEUE, vec![json!(id)]).await;

    // A claims the case, then decides it through the form.
    a.click(&format!("{item} [data-action=\"claim\"]")).await;
    a.wait_attr(&item, "data-status", "in_review").await;
    b.wait_attr(&item, "data-status", "in_review").await;
    a.click(&format!("{item} [data-action=\"decide\"]")).await;
    a.wait_attr("form#decision-form", "data-case-id", &id).await;
    a.select("#decision", "amend").await;
    a.select("#final-culpability", "knowingly").await;
    a.fill(
        "#notes",
        "He knew the brakes had failed: knowing, not reckless.",
    )
    .await;
    a.click("#decision-submit").await;

    let gone = stamped(&b, "gone", &id, WAIT).await;
    let reviewer = login(server, "reviewer", &demo_password("reviewer")).await;
    let decided = common::seed::case(server, &reviewer, &id).await;
    assert_eq!(decided["adjudication_status"], "decided", "{decided}");
    assert_eq!(decided["decision"], "amend", "{decided}");
    assert_eq!(decided["final_culpability"], "knowingly", "{decided}");
    let latency = gone - time_ms(&decided["decided_at"]);
    eprintln!("decided by A → gone from B's queue: {latency:.0} ms");
    assert!(
        latency <= PUSH_BOUND_MS,
        "B's queue dropped the decided case after {latency:.0} ms"
    );
    a.wait_gone(&item).await;

    // A's case page: the case and its history, oldest first.
    a.open(&format!("/#/case/{id}")).await;
    a.wait_attr("#case-page", "data-case-id", &id).await;
    a.wait_js(
        "#case-status = decided",
        "const e = document.querySelector('#case-status');
         return !!e && e.textContent.toLowerCase().includes('decided');",
        vec![],
    )
    .await;
    let timeline = a
        .wait_js(
            "three events in #case-timeline",
            "const items = [...document.querySelectorAll('#case-timeline li[data-event-type]')]
                 .map(e => [e.dataset.eventType, Number(e.dataset.position)]);
             return items.length >= 3 ? items : null;",
            vec![],
        )
        .await;
    let types: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap())
        .collect();
    assert_eq!(types, ["case_submitted", "case_claimed", "case_decided"]);
    let positions: Vec<u64> = timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[1].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(positions[2], decided["position"].as_u64().unwrap());
    a.screenshot("case").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_the_page_reconnects_and_shows_every_case_missed_once() {
    let test = "after_a_server_restart_the_page_reconnects_and_shows_every_case_missed_once";
    let Some(Demo { server, dir }) = Demo::start(test, &[]) else {
        return;
    };
    let data = dir.path().join("data");
    let listen = server.base_url.trim_start_matches("http://").to_owned();
    let browser = Browser::launch(&server).await;
    let first_session = browser
        .sign_in("reviewer", &demo_password("reviewer"))
        .await;
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    wait_queue(
        &browser,
        "the demo queue",
        &queue_ids(&server, &reviewer).await,
    )
    .await;

    // The server stops: the page says it is reconnecting, with the countdown to its next try.
    assert!(server.terminate().success(), "a clean stop on SIGTERM");
    browser
        .wait_js(
            "#connection[data-state=reconnecting] with #connection-retry",
            "const c = document.querySelector('#connection');
             const r = document.querySelector('#connection-retry');
             return c.dataset.state === 'reconnecting' && !!r && r.textContent.trim() !== '';",
            vec![],
        )
        .await;
    let away_text = browser.text("#connection").await.unwrap_or_default();

    // While the page is away, on the same store (served elsewhere for a moment): three cases
    // arrive and one waiting case is decided.
    let mut submitted = Vec::new();
    let decided_away;
    {
        // Anywhere but the page's port (port 0 could, rarely, hand that one out again).
        let elsewhere = loop {
            let candidate = start_demo(&data, &[]);
            if candidate.base_url.trim_start_matches("http://") != listen {
                break candidate;
            }
            assert!(candidate.terminate().success());
        };
        let classifier = classifier_token(&elsewhere).await;
        for n in 0..3 {
            let case = submit(&elsewhere, &classifier, &format!("E2E-AWAY-{n}"), "urgent").await;
            submitted.push(id_of(&case));
        }
        let reviewer = login(&elsewhere, "reviewer", &demo_password("reviewer")).await;
        let pending = assert_json(
            get(
                &elsewhere,
                "/api/v1/cases?status=pending&limit=50",
                Some(&reviewer),
            )
            .await,
            200,
        )
        .await;
        let waiting = pending["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .find(|id| !submitted.contains(id))
            .expect("a demo case waiting");
        claim(&elsewhere, &reviewer, &waiting).await;
        let body =
            json!({"decision": "reject", "notes": "Hearsay; decided while the page was away."});
        let path = format!("/api/v1/cases/{waiting}/decision");
        assert_json(post(&elsewhere, &path, Some(&reviewer), &body).await, 200).await;
        decided_away = waiting;
        assert!(elsewhere.terminate().success());
    }
    assert_ne!(
        browser.connection().await.state,
        "connected",
        "the page was away all along"
    );

    // The server starts again on the same port; two more cases come at once, while the page
    // may or may not be back yet.
    let server = Server::start_at(&data, &listen, &["--demo"]);
    let classifier = classifier_token(&server).await;
    for n in 0..2 {
        let case = submit(&server, &classifier, &format!("E2E-BACK-{n}"), "high").await;
        submitted.push(id_of(&case));
    }

    // Back by itself (its backoff is capped at 30 s), as a new session.
    let second_session = browser
        .wait_js_within(
            "the page to reconnect by itself",
            Duration::from_secs(45),
            "const c = document.querySelector('#connection');
             return c.dataset.state === 'connected' && c.dataset.sessionId
                 ? c.dataset.sessionId : null;",
            vec![],
        )
        .await;
    assert_ne!(second_session, json!(first_session));

    // Every case submitted while away is shown once, the decided one is gone, and the list is
    // the server's queue, in its order.
    let reviewer = login(&server, "reviewer", &demo_password("reviewer")).await;
    let expected = queue_ids(&server, &reviewer).await;
    for id in &submitted {
        assert!(expected.contains(id), "{id} is in the server's queue");
    }
    assert!(!expected.contains(&decided_away));
    wait_queue(&browser, "the queue after the restart", &expected).await;
    let shown = shown_ids(&browser).await;
    let mut unique = shown.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), shown.len(), "no case shown twice: {shown:?}");
    let total = browser.text("#queue-total").await.unwrap_or_default();
    assert!(
        total.contains(&expected.len().to_string()),
        "#queue-total {total:?} shows {}",
        expected.len()
    );
    eprintln!("away: {away_text:?}; back as {second_session}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_form_shows_the_server_errors_and_retries_after_a_conflict() {
    let Some(demo) = Demo::start(
        "the_decision_form_shows_the_server_errors_and_retries_after_a_conflict",
        &[],
    ) else {
        return;
    };
    let server = &demo.server;
    let classifier = classifier_token(server).await;
    let id = id_of(&submit(server, &classifier, "E2E-FORM-1", "urgent").await);
    let item = format!("#queue-list > [data-case-id=\"{id}\"]");
    let browser = Browser::launch(server).await;
    browser
        .sign_in("reviewer", &demo_password("reviewer"))
        .await;
    browser
        .click(&format!("{item} [data-action=\"claim\"]"))
        .await;
    browser.wait_attr(&item, "data-status", "in_review").await;
    browser
        .click(&format!("{item} [data-action=\"decide\"]"))
        .await;
    browser
        .wait_attr("form#decision-form", "data-case-id", &id)
        .await;

    // A rejection without notes: the server's 422 is shown next to the notes.
    browser.select("#decision", "reject").await;
    browser.fill("#notes", "").await;
    browser.click("#decision-submit").await;
    let error = browser
        .wait_js(
            "[data-error-for=notes] to say what is wrong",
            "const e = document.querySelector('[data-error-for=\"notes\"]');
             return e && e.textContent.trim() ? e.textContent.trim() : null;",
            vec![],
        )
        .await;
    let reviewer = login(server, "reviewer", &demo_password("reviewer")).await;
    let unchanged = common::seed::case(server, &reviewer, &id).await;
    assert_eq!(unchanged["adjudication_status"], "in_review");

    // The case changes behind the open form (the claim is renewed elsewhere): the decision
    // answers 409, the page shows the case as it is now, and a retry goes through.
    let renewed = claim(server, &reviewer, &id).await;
    assert!(renewed["version"].as_u64() > unchanged["version"].as_u64());
    browser
        .fill("#notes", "The excerpt is hearsay; no basis for any level.")
        .await;
    browser.click("#decision-submit").await;
    browser.wait_for("#conflict").await;
    let shown = browser.text("#conflict").await.unwrap_or_default();
    assert!(
        shown.contains(&renewed["version"].to_string()),
        "#conflict shows the current case (version {}): {shown:?}",
        renewed["version"]
    );
    browser.click("#conflict-retry").await;
    browser.wait_gone(&item).await;
    let decided = common::seed::case(server, &reviewer, &id).await;
    assert_eq!(decided["adjudication_status"], "decided", "{decided}");
    assert_eq!(decided["decision"], "reject", "{decided}");
    eprintln!("422 shown as {error}; 409 shown, then retried");
}
