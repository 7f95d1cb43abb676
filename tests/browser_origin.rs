//! The browser app keeps to its own origin, in a real headless Chromium against the real
//! binary: `/` answers with a strict `Content-Security-Policy`, every page (sign-in, queue,
//! case, audit, operations) loads every resource from the server's own origin, and the browser
//! reports no violation of the policy while the pages render.

mod common;

use common::browser::*;
use common::seed::*;
use common::*;
use serde_json::{json, Value};

/// Starts collecting the page's CSP violations in `window.e2eViolations`.
const WATCH_VIOLATIONS: &str = r#"
    window.e2eViolations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
        window.e2eViolations.push(e.violatedDirective + ' ' + e.blockedURI));
    return true;"#;

/// Every URL the page loaded (its own document and each resource), and the CSP violations seen
/// since [`WATCH_VIOLATIONS`], as `{"origin", "urls", "violations"}`.
const LOADED: &str = r#"
    const urls = [...performance.getEntriesByType('navigation'),
                  ...performance.getEntriesByType('resource')].map(e => e.name);
    return {origin: location.origin, urls, violations: window.e2eViolations || []};"#;

/// Asserts that everything `page` loaded came from the page's own origin, and that it loaded
/// its modules from there; returns how many URLs it loaded.
async fn assert_same_origin(browser: &Browser, page: &str) -> usize {
    let loaded: Value = browser.js(LOADED, vec![]).await;
    let origin = loaded["origin"].as_str().expect("an origin");
    let urls: Vec<&str> = loaded["urls"]
        .as_array()
        .expect("urls")
        .iter()
        .map(|u| u.as_str().expect("a URL"))
        .collect();
    assert!(
        urls.iter()
            .any(|u| u.contains("/app/") && u.ends_with(".js")),
        "{page}: the app's modules are among what it loaded: {urls:?}"
    );
    for url in &urls {
        assert!(
            url.starts_with(&format!("{origin}/")) || *url == origin,
            "{page} loaded {url} from another origin than {origin}"
        );
    }
    assert_eq!(
        loaded["violations"],
        json!([]),
        "{page}: the browser reported CSP violations"
    );
    urls.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_only_from_its_own_origin_under_a_strict_csp() {
    let Some(demo) = Demo::start(
        "every_page_loads_only_from_its_own_origin_under_a_strict_csp",
        &[],
    ) else {
        return;
    };
    let server = &demo.server;

    // The policy, as `/` sends it.
    let answer = get(server, "/", None).await;
    assert_eq!(answer.status().as_u16(), 200);
    let csp = answer
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("a Content-Security-Policy on /")
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    for loose in [
        "'unsafe-inline'",
        "'unsafe-eval'",
        "*",
        "http:",
        "https:",
        "data:",
    ] {
        let scripts = csp
            .split(';')
            .map(str::trim)
            .filter(|d| d.starts_with("default-src") || d.starts_with("script-src"));
        for directive in scripts {
            assert!(!directive.contains(loose), "{directive} allows {loose}");
        }
    }

    let browser = Browser::launch(server).await;
    let mut loaded = 0;

    // Sign-in.
    browser.open("/").await;
    browser.wait_for("#signin-form").await;
    browser.js(WATCH_VIOLATIONS, vec![]).await;
    browser.wait_for("#signin-username").await;
    loaded += assert_same_origin(&browser, "the sign-in page").await;

    // Queue and case, as a reviewer.
    browser
        .sign_in("reviewer", &demo_password("reviewer"))
        .await;
    browser.js(WATCH_VIOLATIONS, vec![]).await;
    browser.wait_for("#queue-list > [data-case-id]").await;
    loaded += assert_same_origin(&browser, "the queue").await;
    let reviewer = login(server, "reviewer", &demo_password("reviewer")).await;
    let first = queue_ids(server, &reviewer).await.remove(0);
    browser.open(&format!("/#/case/{first}")).await;
    browser.wait_for("#case-timeline li[data-event-type]").await;
    loaded += assert_same_origin(&browser, "a case").await;
    browser.click("#sign-out").await;
    browser.wait_for("#signin-form").await;

    // Audit and operations, as the admin.
    browser
        .sign_in("admin", &admin_password(&server.data_dir))
        .await;
    browser.js(WATCH_VIOLATIONS, vec![]).await;
    browser
        .wait_for("#ops-page #sessions tr[data-session-id]")
        .await;
    loaded += assert_same_origin(&browser, "operations").await;
    browser.click("a[data-nav=\"audit\"]").await;
    browser.wait_for("#audit-page").await;
    browser.click("#verify-run").await;
    browser.wait_attr("#verify-result", "data-ok", "true").await;
    let stats = assert_json(get(server, "/api/v1/stats", Some(&reviewer)).await, 200).await;
    browser
        .set_value("#asof-position", &stats["position"].to_string())
        .await;
    browser.click("#asof-load").await;
    browser.wait_for("#asof-queue [data-case-id]").await;
    loaded += assert_same_origin(&browser, "the audit").await;
    eprintln!("{loaded} URLs loaded over five pages, all from the server's origin");
}
