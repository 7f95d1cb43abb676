//! The browser app's session in a real headless Chromium, against the real binary: signing in
//! connects and shows the queue; without a token, or with a forged one, the app shows the
//! sign-in page; signing out forgets the tokens and closes the socket; the connection stays up
//! across many heartbeats and across the expiry of its access token (renewed in band); and a
//! sixth tab of one user is told that too many sessions are open. Signing in works from the
//! keyboard alone, with the focus visible.
//!
//! The hooks these tests use (ids, data attributes, routes, the `sessionStorage` key) are the
//! stable ones `docs/app.md` lists.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::browser::*;
use common::seed::*;
use common::ws::{admin_token, sessions};
use common::*;
use fantoccini::key::Key;
use serde_json::json;

/// The key under which the app keeps its tokens.
const SESSION_KEY: &str = "adjudicator.session";

/// Seconds since the epoch, now.
fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// The ids of the live WebSocket sessions of `username`, as the operators' endpoint lists them.
async fn live_sessions_of(server: &Server, admin: &str, username: &str) -> Vec<String> {
    sessions(server, admin)
        .await
        .iter()
        .filter(|s| s["username"] == username)
        .map(|s| s["id"].as_str().expect("a session id").to_owned())
        .collect()
}

/// A `--demo` server with `extra` flags for `test`, and a browser signed in there as `reviewer`,
/// with its WebSocket session id; `None` when the browser tests are skipped here.
async fn signed_in_reviewer(test: &str, extra: &[&str]) -> Option<(Demo, Browser, String)> {
    let demo = Demo::start(test, extra)?;
    let browser = Browser::launch(&demo.server).await;
    let session_id = browser
        .sign_in("reviewer", &demo_password("reviewer"))
        .await;
    Some((demo, browser, session_id))
}

/// Watches the connection indicator for `period`, every few milliseconds, and fails the test
/// the first time it is not `connected` with `session_id`.
async fn stays_connected(browser: &Browser, session_id: &str, period: Duration, why: &str) {
    let start = Instant::now();
    let mut looks = 0;
    while start.elapsed() < period {
        let seen = browser.connection().await;
        assert_eq!(
            seen,
            Connection {
                state: "connected".into(),
                session_id: session_id.into(),
            },
            "{why}: after {:?} ({looks} looks) the indicator changed; the page: {}",
            start.elapsed(),
            browser.describe().await
        );
        looks += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(looks >= 10, "looked only {looks} times in {period:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_login_connects_and_shows_the_queue() {
    let Some((demo, browser, session_id)) =
        signed_in_reviewer("a_valid_login_connects_and_shows_the_queue", &[]).await
    else {
        return;
    };
    let server = &demo.server;
    browser.wait_for("#queue-page").await;
    let hash = browser.js("return location.hash;", vec![]).await;
    assert_eq!(hash, "#/queue", "a reviewer lands on the queue");
    let user = browser.text("#current-user").await.unwrap_or_default();
    assert!(user.contains("reviewer") || user.contains("Rita"), "{user}");

    // The session the indicator names is the server's, for this user.
    let admin = admin_token(server).await;
    assert_eq!(
        live_sessions_of(server, &admin, "reviewer").await,
        vec![session_id.clone()]
    );

    // The queue shows the server's queue, in its order, with its statistics.
    let token = login(server, "reviewer", &demo_password("reviewer")).await;
    let expected = queue_ids(server, &token).await;
    assert!(expected.len() >= 10, "the demo queue: {expected:?}");
    let shown = browser
        .wait_js(
            "the demo queue in #queue-list",
            r#"const ids = [...document.querySelectorAll('#queue-list > [data-case-id]')]
                   .map(e => e.dataset.caseId);
               return ids.length === arguments[0] ? ids : null;"#,
            vec![json!(expected.len())],
        )
        .await;
    assert_eq!(shown, json!(expected), "the queue in the server's order");
    let stats = assert_json(get(server, "/api/v1/stats", Some(&token)).await, 200).await;
    for stat in ["pending", "in_review", "escalated", "decided"] {
        let css = format!("#stats [data-stat=\"{stat}\"]");
        let want = stats[stat].to_string();
        browser.wait_text(&css, &want).await;
    }
    let rtt = browser.attr("#connection", "data-rtt-ms").await;
    browser.screenshot("queue").await;

    // Readable on a phone: nothing wider than a 360 px screen.
    browser.resize(360, 780).await;
    let overflow = browser
        .js(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await;
    browser.screenshot("queue-360px").await;
    assert!(
        overflow.as_i64().is_some_and(|o| o <= 0),
        "the queue at 360 px scrolls sideways by {overflow} px"
    );
    eprintln!("connected as {session_id}; rtt {rtt:?} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_app_shows_the_sign_in_page() {
    let Some(demo) = Demo::start("without_a_token_the_app_shows_the_sign_in_page", &[]) else {
        return;
    };
    let server = &demo.server;
    let browser = Browser::launch(server).await;

    for path in ["/", "/#/queue", "/#/audit"] {
        browser.open(path).await;
        browser.wait_for("#signin-page form#signin-form").await;
        browser
            .wait_js(
                &format!("{path} to go to #/signin"),
                "return location.hash === '#/signin';",
                vec![],
            )
            .await;
        for gone in ["#queue-page", "#audit-page"] {
            assert!(
                !browser.exists(gone).await,
                "{gone} on {path} without a token"
            );
        }
        assert_eq!(browser.session_storage(SESSION_KEY).await, None);
        assert_ne!(browser.connection().await.state, "connected");
    }
    // Nothing about tokens anywhere else either.
    let elsewhere = browser
        .js("return [localStorage.length, document.cookie];", vec![])
        .await;
    assert_eq!(elsewhere, json!([0, ""]));
    let admin = admin_token(server).await;
    assert!(sessions(server, &admin).await.is_empty());
    browser.wait_for("#signin-username").await;
    browser.screenshot("signin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_token_is_refused_and_the_app_returns_to_sign_in() {
    let Some(demo) = Demo::start(
        "a_forged_token_is_refused_and_the_app_returns_to_sign_in",
        &[],
    ) else {
        return;
    };
    let server = &demo.server;
    let browser = Browser::launch(server).await;

    // A real token of the reviewer, whose claims are then raised to admin: the signature no
    // longer matches.
    let pair = login_pair(server, "reviewer", &demo_password("reviewer")).await;
    let real = pair["access_token"].as_str().unwrap();
    let (header, mut claims) = jwt_parts(real);
    claims["roles"] = json!(["admin"]);
    let signature = real.rsplit('.').next().unwrap();
    let forged = format!("{}.{}.{signature}", b64_json(&header), b64_json(&claims));
    let (_, forged_refresh_claims) = jwt_parts(pair["refresh_token"].as_str().unwrap());
    let forged_refresh = format!(
        "{}.{}.{signature}",
        b64_json(&header),
        b64_json(&forged_refresh_claims)
    );
    let planted = json!({"access_token": forged, "refresh_token": forged_refresh}).to_string();

    browser.open("/").await;
    browser.wait_for("#signin-page").await;
    browser
        .js(
            "sessionStorage.setItem(arguments[0], arguments[1]);",
            vec![json!(SESSION_KEY), json!(planted)],
        )
        .await;
    browser.open("/").await;

    browser.wait_for("#signin-page #signin-error").await;
    let error = browser.text("#signin-error").await.unwrap_or_default();
    assert!(
        !error.is_empty(),
        "#signin-error says why; the page: {}",
        browser.describe().await
    );
    browser
        .wait_js("#/signin", "return location.hash === '#/signin';", vec![])
        .await;
    assert!(!browser.exists("#queue-page").await);
    assert_ne!(browser.connection().await.state, "connected");
    let admin = admin_token(server).await;
    assert!(
        live_sessions_of(server, &admin, "reviewer")
            .await
            .is_empty(),
        "no session was opened with the forged token"
    );
    eprintln!("the forged token was refused: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_forgets_the_tokens_and_closes_the_socket() {
    let Some((demo, browser, session_id)) =
        signed_in_reviewer("signing_out_forgets_the_tokens_and_closes_the_socket", &[]).await
    else {
        return;
    };
    let server = &demo.server;
    let admin = admin_token(server).await;
    let stored = browser
        .stored_session()
        .await
        .expect("the tokens are in sessionStorage while signed in");
    let access = stored["access_token"].as_str().expect("access_token");
    assert!(stored["refresh_token"].is_string(), "{stored}");
    me(server, access).await;
    assert_eq!(
        live_sessions_of(server, &admin, "reviewer").await,
        vec![session_id.clone()]
    );

    browser.click("#sign-out").await;
    browser.wait_for("#signin-page").await;
    assert_eq!(browser.session_storage(SESSION_KEY).await, None);
    let elsewhere = browser
        .js("return [localStorage.length, document.cookie];", vec![])
        .await;
    assert_eq!(elsewhere, json!([0, ""]), "no token kept anywhere else");

    // The socket is closed: the server no longer lists the session, and the token is revoked.
    eventually("the session to be gone", Duration::from_secs(5), || async {
        live_sessions_of(server, &admin, "reviewer")
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let refused = get(server, "/api/v1/me", Some(access)).await;
    assert_eq!(
        refused.status().as_u16(),
        401,
        "the access token was revoked"
    );
    let refresh = json!({"refresh_token": stored["refresh_token"]});
    let refused = post(server, "/api/v1/auth/refresh", None, &refresh).await;
    assert_eq!(
        refused.status().as_u16(),
        401,
        "the refresh token was revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_stays_up_across_many_heartbeats() {
    // A session silent for 3 intervals (3 s) is closed: only the app's pings keep it.
    let Some((demo, browser, session_id)) = signed_in_reviewer(
        "the_connection_stays_up_across_many_heartbeats",
        &["--heartbeat-interval", "1s"],
    )
    .await
    else {
        return;
    };
    let server = &demo.server;
    stays_connected(
        &browser,
        &session_id,
        Duration::from_millis(6_500),
        "six heartbeat intervals",
    )
    .await;
    let rtt = browser
        .wait_js(
            "#connection[data-rtt-ms] to show a round trip",
            "const v = document.querySelector('#connection').dataset.rttMs;
             return v !== undefined && v !== '' && !isNaN(Number(v)) ? v : null;",
            vec![],
        )
        .await;
    let admin = admin_token(server).await;
    assert_eq!(
        live_sessions_of(server, &admin, "reviewer").await,
        vec![session_id]
    );
    eprintln!("connected through 6 heartbeats; last rtt {rtt} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_token_that_expires_is_renewed_in_band_and_the_session_stays() {
    let Some((demo, browser, session_id)) = signed_in_reviewer(
        "an_access_token_that_expires_is_renewed_in_band_and_the_session_stays",
        &["--access-token-ttl", "10s"],
    )
    .await
    else {
        return;
    };
    let server = &demo.server;
    let first = browser.stored_session().await.expect("the tokens");
    let first_access = first["access_token"].as_str().unwrap().to_owned();
    let (_, claims) = jwt_parts(&first_access);
    let exp = claims["exp"].as_f64().expect("exp");

    // The server would close the session at `exp` with 4401 token_expired had the app not sent
    // a newer token in band: watch until two seconds past it.
    // (On a slow machine most of the token's life may have gone into signing in: still look a
    // moment, the point is the state past `exp`.)
    let until = (exp + 2.0 - now_secs()).max(0.5);
    stays_connected(
        &browser,
        &session_id,
        Duration::from_secs_f64(until),
        "past the first access token's expiry",
    )
    .await;

    let renewed = browser.stored_session().await.expect("the tokens");
    let access = renewed["access_token"].as_str().unwrap();
    assert_ne!(access, first_access, "the app renewed its access token");
    let (_, renewed_claims) = jwt_parts(access);
    assert!(renewed_claims["exp"].as_f64().unwrap() > exp);
    me(server, access).await;
    let admin = admin_token(server).await;
    assert_eq!(
        live_sessions_of(server, &admin, "reviewer").await,
        vec![session_id]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sixth_tab_of_the_same_user_is_told_too_many_sessions_are_open() {
    let Some(demo) = Demo::start(
        "a_sixth_tab_of_the_same_user_is_told_too_many_sessions_are_open",
        &[],
    ) else {
        return;
    };
    let server = &demo.server;
    let browser = Browser::launch(server).await;
    let admin = admin_token(server).await;
    let password = demo_password("reviewer");

    let mut tabs = vec![(browser.current_tab().await, String::new())];
    tabs[0].1 = browser.sign_in("reviewer", &password).await;
    for _ in 1..5 {
        let tab = browser.new_tab().await;
        let session = browser.sign_in("reviewer", &password).await;
        tabs.push((tab, session));
    }
    let mut open: Vec<String> = tabs.iter().map(|(_, s)| s.clone()).collect();
    open.sort();
    let mut listed = live_sessions_of(server, &admin, "reviewer").await;
    listed.sort();
    assert_eq!(listed, open, "five tabs, five sessions");

    browser.new_tab().await;
    browser.open("/").await;
    browser.submit_sign_in("reviewer", &password).await;
    browser
        .wait_for("#notice[data-reason=\"too_many_connections\"]")
        .await;
    let notice = browser.text("#notice").await.unwrap_or_default();
    assert!(
        notice.to_lowercase().contains("too many"),
        "the notice says it in words: {notice:?}"
    );
    assert_eq!(
        browser.attr("#notice", "role").await.as_deref(),
        Some("alert")
    );
    assert_ne!(browser.connection().await.state, "connected");
    browser.screenshot("too-many-sessions").await;

    // The first five are untouched.
    for (tab, session) in &tabs {
        browser.switch_to(tab.clone()).await;
        assert_eq!(
            browser.connection().await,
            Connection {
                state: "connected".into(),
                session_id: session.clone(),
            }
        );
    }
    let mut listed = live_sessions_of(server, &admin, "reviewer").await;
    listed.sort();
    assert_eq!(listed, open);
    eprintln!("sixth tab: {notice}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_works_from_the_keyboard_alone_with_a_visible_focus() {
    let Some(demo) = Demo::start(
        "signing_in_works_from_the_keyboard_alone_with_a_visible_focus",
        &[],
    ) else {
        return;
    };
    let browser = Browser::launch(&demo.server).await;
    browser.open("/").await;
    browser.wait_for("#signin-form").await;
    browser
        .wait_js(
            "the focus on #signin-username",
            "return document.activeElement && document.activeElement.id === 'signin-username';",
            vec![],
        )
        .await;
    browser.type_keys("reviewer").await;
    browser.type_keys(&Key::Tab.to_string()).await;
    assert_eq!(browser.focused_id().await, "signin-password");
    // The field that has the focus shows it: an outline or a ring (box shadow).
    let marked = browser
        .js(
            "const s = getComputedStyle(document.activeElement);
             return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                 || s.boxShadow !== 'none';",
            vec![],
        )
        .await;
    assert_eq!(marked, json!(true), "the focused field is visibly marked");
    browser.type_keys(&demo_password("reviewer")).await;
    browser.type_keys(&Key::Enter.to_string()).await;
    browser.wait_connected().await;
    browser.wait_for("#queue-page").await;
}
