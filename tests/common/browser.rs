//! A real headless Chromium for the end-to-end tests of the browser app, driven over WebDriver:
//! `fantoccini` talks to Debian's `chromedriver`, which starts `/usr/bin/chromium` (why this
//! pair: `docs/adr/0007-browser-tests.md`).
//!
//! Each [`Browser`] is one chromedriver on a free port of 127.0.0.1 with one Chromium and its
//! own fresh profile, so tests run in parallel without sharing anything. Dropping it (after a
//! panic too) kills chromedriver's whole process group, Chromium and its helpers included, and
//! removes the profile.
//!
//! When Chromium or chromedriver is missing, [`available`] fails the test under CI (`CI` set)
//! and otherwise prints a loud SKIPPED line, so that the test returns without testing anything
//! only where nobody relies on it.
//!
//! Every wait polls a condition in the page until a deadline, and a wait that fails says what
//! it waited for and what the page showed then (route, connection state, notice).

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WindowHandle};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::Server;

/// The browser, as Debian installs it.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Its WebDriver server, as Debian's `chromium-driver` installs it.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long any one expected state of a page may take to come (generous: the machine is shared).
pub const WAIT: Duration = Duration::from_secs(30);

/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(20);

/// How long chromedriver may take to answer its first status request.
const DRIVER_START: Duration = Duration::from_secs(20);

/// The window the screenshots are taken at.
const WINDOW: (u32, u32) = (1280, 860);

/// Whether the browser tests can run here. Missing programs fail the test when `CI` is set;
/// elsewhere this says loudly that `test` was skipped, and returns false.
pub fn available(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !std::path::Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {} missing; CI needs Chromium for the browser tests (.ci/install-test-deps \
         installs chromium and chromium-driver)",
        missing.join(" and ")
    );
    eprintln!(
        "\n==== SKIPPED {test}: {} not installed; the browser tests did NOT run \
         (apt-get install chromium chromium-driver) ====\n",
        missing.join(" and ")
    );
    false
}

/// A `--demo` server in a data directory of its own, for one browser test. Dropped in field
/// order: the server is killed before its directory is removed.
pub struct Demo {
    pub server: Server,
    pub dir: tempfile::TempDir,
}

impl Demo {
    /// Starts a `--demo` server with `extra` flags for `test`; `None` when the browser tests
    /// cannot run here (see [`available`]).
    pub fn start(test: &str, extra: &[&str]) -> Option<Demo> {
        if !available(test) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a data directory");
        let server = super::start_demo(&dir.path().join("data"), extra);
        Some(Demo { server, dir })
    }
}

/// A chromedriver process in its own process group, and the profile directory of the Chromium
/// it starts; both go away on drop.
struct Driver {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group holds chromedriver, Chromium and every helper process Chromium forked.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Starts chromedriver on a free port and waits until it answers; returns it and its URL.
async fn start_driver() -> (Child, String) {
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + DRIVER_START;
        let http = super::client();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                last_error = format!("chromedriver exited with {status} (port {port} taken?)");
                break;
            }
            if let Ok(answer) = http.get(format!("{url}/status")).send().await {
                if answer.status().is_success() {
                    return (child, url);
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromedriver did not answer on {url} within {DRIVER_START:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
    panic!("chromedriver did not start: {last_error}");
}

/// The capabilities that start headless Chromium with a fresh profile in `profile`.
fn capabilities(profile: &std::path::Path) -> Capabilities {
    let args = [
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        format!("--window-size={},{}", WINDOW.0, WINDOW.1),
        format!("--user-data-dir={}", profile.display()),
    ];
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
    });
    match caps {
        Value::Object(map) => map,
        _ => unreachable!("an object"),
    }
}

/// What the connection indicator shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub state: String,
    pub session_id: String,
}

/// One headless Chromium with its own chromedriver and profile.
pub struct Browser {
    pub client: Client,
    /// The server the relative paths of [`Browser::open`] go to.
    base_url: String,
    // Dropped after the client: kills the processes and removes the profile.
    _driver: Driver,
}

impl Browser {
    /// Starts a browser for pages of `server`.
    pub async fn launch(server: &Server) -> Browser {
        Browser::launch_for(&server.base_url).await
    }

    /// Starts a browser for pages under `base_url`.
    pub async fn launch_for(base_url: &str) -> Browser {
        let profile = tempfile::Builder::new()
            .prefix("adjudicator-chromium-")
            .tempdir()
            .expect("a profile directory");
        let (child, url) = start_driver().await;
        let driver = Driver {
            child,
            _profile: profile,
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(driver._profile.path()))
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("a Chromium session from chromedriver: {e}"));
        Browser {
            client,
            base_url: base_url.to_owned(),
            _driver: driver,
        }
    }

    /// The URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Loads `path` (e.g. `/` or `/#/audit`) of the server in the current tab.
    pub async fn open(&self, path: &str) {
        let url = self.url(path);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("load {url}: {e}"));
    }

    /// Runs `script` (a function body: `arguments[i]` are `args`, `return` gives the value).
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// What the page shows now, for the message of a failed wait.
    pub async fn describe(&self) -> String {
        let script = r#"
            const c = document.querySelector('#connection');
            const n = document.querySelector('#notice');
            const roots = ['signin', 'queue', 'case', 'audit', 'ops']
                .map(p => document.querySelector('#' + p + '-page') ? p : null).filter(Boolean);
            return JSON.stringify({
                url: location.href,
                pages: roots,
                connection: c ? {state: c.dataset.state, session: c.dataset.sessionId,
                                 text: c.textContent.trim()} : null,
                notice: n ? {reason: n.dataset.reason, text: n.textContent.trim()} : null,
                body: document.body ? document.body.innerText.slice(0, 600) : null,
            });"#;
        match self.client.execute(script, vec![]).await {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => format!("(the page could not be read: {e})"),
        }
    }

    /// Polls `script` until it returns something other than `null`, `undefined` or `false`,
    /// and returns that; fails the test after `within`, naming `what`.
    pub async fn wait_js_within(
        &self,
        what: &str,
        within: Duration,
        script: &str,
        args: Vec<Value>,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            // A script may fail while a page is being replaced: that is "not yet".
            if let Ok(value) = self.client.execute(script, args.clone()).await {
                if !matches!(value, Value::Null | Value::Bool(false)) {
                    return value;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {within:?} waiting for {what}; the page: {}",
                    self.describe().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// [`Browser::wait_js_within`] with the usual deadline.
    pub async fn wait_js(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        self.wait_js_within(what, WAIT, script, args).await
    }

    /// Waits until an element matching `css` is in the page and shown.
    pub async fn wait_for(&self, css: &str) {
        self.wait_for_within(css, WAIT).await;
    }

    /// Waits until an element matching `css` is in the page and shown, within `within`.
    pub async fn wait_for_within(&self, css: &str, within: Duration) {
        let script = r#"
            const e = document.querySelector(arguments[0]);
            return !!e && e.getClientRects().length > 0;"#;
        self.wait_js_within(css, within, script, vec![json!(css)])
            .await;
    }

    /// Waits until no element matches `css`, or none that matches is shown.
    pub async fn wait_gone(&self, css: &str) {
        let script = r#"
            return [...document.querySelectorAll(arguments[0])]
                .every(e => e.getClientRects().length === 0);"#;
        self.wait_js(&format!("{css} to go"), script, vec![json!(css)])
            .await;
    }

    /// Whether an element matching `css` is in the page (shown or not).
    pub async fn exists(&self, css: &str) -> bool {
        self.js(
            "return document.querySelector(arguments[0]) !== null;",
            vec![json!(css)],
        )
        .await
            == Value::Bool(true)
    }

    /// The attribute `name` of the first element matching `css` (`None` if either is missing).
    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let script = r#"
            const e = document.querySelector(arguments[0]);
            return e ? e.getAttribute(arguments[1]) : null;"#;
        match self.js(script, vec![json!(css), json!(name)]).await {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Waits until the attribute `name` of the element matching `css` is `value`.
    pub async fn wait_attr(&self, css: &str, name: &str, value: &str) {
        let script = r#"
            const e = document.querySelector(arguments[0]);
            return !!e && e.getAttribute(arguments[1]) === arguments[2];"#;
        self.wait_js(
            &format!("{css}[{name}={value:?}]"),
            script,
            vec![json!(css), json!(name), json!(value)],
        )
        .await;
    }

    /// Waits until the text of the element matching `css`, trimmed, is `text`.
    pub async fn wait_text(&self, css: &str, text: &str) {
        let script = r#"
            const e = document.querySelector(arguments[0]);
            return !!e && e.textContent.trim() === arguments[1];"#;
        self.wait_js(
            &format!("{css} to say {text:?}"),
            script,
            vec![json!(css), json!(text)],
        )
        .await;
    }

    /// The visible text of the first element matching `css` (`None` if there is none).
    pub async fn text(&self, css: &str) -> Option<String> {
        let script = r#"
            const e = document.querySelector(arguments[0]);
            return e ? e.innerText : null;"#;
        match self.js(script, vec![json!(css)]).await {
            Value::String(s) => Some(s.trim().to_owned()),
            _ => None,
        }
    }

    /// The element matching `css`, once it is shown.
    pub async fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.wait_for(css).await;
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    /// Clicks the element matching `css`, once it is shown.
    pub async fn click(&self, css: &str) {
        self.element(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `value` into the (emptied) field matching `css`, once it is shown.
    pub async fn fill(&self, css: &str, value: &str) {
        let element = self.element(css).await;
        element
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        element
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// Types `keys` (text, or [`fantoccini::key::Key`]s as text) into whatever has the focus,
    /// as a person at the keyboard would.
    pub async fn type_keys(&self, keys: &str) {
        self.client
            .active_element()
            .await
            .unwrap_or_else(|e| panic!("the focused element: {e}"))
            .send_keys(keys)
            .await
            .unwrap_or_else(|e| panic!("type {keys:?}: {e}"));
    }

    /// The id of the element that has the focus (empty when it has none).
    pub async fn focused_id(&self) -> String {
        let id = self
            .js(
                "return document.activeElement ? document.activeElement.id : '';",
                vec![],
            )
            .await;
        id.as_str().unwrap_or_default().to_owned()
    }

    /// Sets a field's value the way a person's input would (an `input` and a `change` event):
    /// for inputs such as `datetime-local` whose typing depends on the locale.
    pub async fn set_value(&self, css: &str, value: &str) {
        self.wait_for(css).await;
        let script = r#"
            const e = document.querySelector(arguments[0]);
            e.focus();
            e.value = arguments[1];
            e.dispatchEvent(new Event('input', {bubbles: true}));
            e.dispatchEvent(new Event('change', {bubbles: true}));
            return e.value;"#;
        let set = self.js(script, vec![json!(css), json!(value)]).await;
        // A `datetime-local` input drops zero seconds ("…T08:23:00" reads back "…T08:23").
        let same = set == json!(value)
            || value
                .strip_suffix(":00")
                .is_some_and(|short| set == json!(short));
        assert!(same, "{css} took the value {value:?} as {set}");
    }

    /// Chooses the option `value` of the `select` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.element(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("choose {value} in {css}: {e}"));
    }

    /// What the connection indicator shows now.
    pub async fn connection(&self) -> Connection {
        let script = r#"
            const c = document.querySelector('#connection');
            return c ? [c.dataset.state || '', c.dataset.sessionId || ''] : ['', ''];"#;
        let value = self.js(script, vec![]).await;
        Connection {
            state: value[0].as_str().unwrap_or_default().to_owned(),
            session_id: value[1].as_str().unwrap_or_default().to_owned(),
        }
    }

    /// Waits until the indicator says `connected` with a session id, and returns the id.
    pub async fn wait_connected(&self) -> String {
        let script = r#"
            const c = document.querySelector('#connection');
            return c && c.dataset.state === 'connected' && c.dataset.sessionId
                ? c.dataset.sessionId : null;"#;
        self.wait_js("#connection[data-state=connected]", script, vec![])
            .await
            .as_str()
            .expect("a session id")
            .to_owned()
    }

    /// Signs in through the form from `/` and waits for the connection; returns the WebSocket
    /// session id the indicator shows.
    pub async fn sign_in(&self, username: &str, password: &str) -> String {
        self.open("/").await;
        self.submit_sign_in(username, password).await;
        self.wait_connected().await
    }

    /// Fills in and sends the sign-in form of the page as it stands (it must be on `#/signin`).
    pub async fn submit_sign_in(&self, username: &str, password: &str) {
        self.wait_for("#signin-page form#signin-form").await;
        self.fill("#signin-username", username).await;
        self.fill("#signin-password", password).await;
        self.click("#signin-submit").await;
    }

    /// The item `key` of the page's `sessionStorage`.
    pub async fn session_storage(&self, key: &str) -> Option<String> {
        match self
            .js(
                "return sessionStorage.getItem(arguments[0]);",
                vec![json!(key)],
            )
            .await
        {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The tokens the app keeps in `sessionStorage`, parsed.
    pub async fn stored_session(&self) -> Option<Value> {
        let text = self.session_storage("adjudicator.session").await?;
        Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")))
    }

    /// Opens a new tab, switches to it and returns its handle.
    pub async fn new_tab(&self) -> WindowHandle {
        let created = self
            .client
            .new_window(true)
            .await
            .unwrap_or_else(|e| panic!("a new tab: {e}"));
        self.switch_to(created.handle.clone()).await;
        created.handle
    }

    /// Makes `tab` the current one.
    pub async fn switch_to(&self, tab: WindowHandle) {
        self.client
            .switch_to_window(tab)
            .await
            .unwrap_or_else(|e| panic!("switch tabs: {e}"));
    }

    /// The current tab's handle.
    pub async fn current_tab(&self) -> WindowHandle {
        self.client
            .window()
            .await
            .unwrap_or_else(|e| panic!("the current tab: {e}"))
    }

    /// Saves what the current tab shows as `docs/screenshots/<page>.png`; returns the path.
    pub async fn screenshot(&self, page: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("a screenshot: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).expect("create docs/screenshots");
        let path = dir.join(format!("{page}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Resizes the window (e.g. to a phone's 360 px).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("resize to {width}x{height}: {e}"));
    }
}
