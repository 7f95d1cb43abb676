//! The browser app as the real binary serves it: the page at `/` with its security headers, every
//! file of `app/` under `/app/` byte for byte with the right media type, revalidation with
//! `ETag`, module imports that resolve, nothing fetched from another origin, and unknown files
//! answered 404 as problem documents.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("app")
}

/// Every file of the repository's `app/` folder, by its path under it.
fn app_files() -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read app/") {
            let path = entry.expect("an entry of app/").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let name = path.strip_prefix(root).unwrap().to_string_lossy();
                out.insert(name.replace('\\', "/"), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(&app_dir(), &app_dir(), &mut files);
    files
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

fn assert_security_headers(response: &reqwest::Response) {
    let url = response.url().path().to_owned();
    let csp = header(response, "content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{url}: {directive} in {csp:?}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{url}: {csp}"
    );
    assert_eq!(
        header(response, "x-content-type-options"),
        "nosniff",
        "{url}"
    );
    assert_eq!(header(response, "referrer-policy"), "no-referrer", "{url}");
    assert_eq!(header(response, "cache-control"), "no-cache", "{url}");
    assert!(
        header(response, "etag").starts_with('"'),
        "{url}: a strong ETag"
    );
}

/// Whether `html` has an attribute like ` onclick=`.
fn has_inline_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(at, _)| {
        let rest = &html[at + 3..];
        let name_len = rest.chars().take_while(char::is_ascii_lowercase).count();
        name_len > 0 && rest[name_len..].starts_with('=')
    })
}

#[tokio::test]
async fn the_page_is_served_at_the_root_with_a_strict_policy_and_no_inline_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let http = client();

    let page = http.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_security_headers(&page);
    let html = page.text().await.unwrap();
    assert_eq!(
        html.as_bytes(),
        &app_files()["index.html"][..],
        "/ is app/index.html"
    );
    assert!(html.contains(r#"<script type="module" src="/app/main.js"></script>"#));
    // The policy forbids inline code: the page must not need any.
    let scripts = html.matches("<script").count();
    let sourced = html.matches("<script type=\"module\" src=\"/app/").count();
    assert_eq!(scripts, sourced, "every script has a src under /app/");
    assert!(!html.contains("<style"), "no inline style element");
    assert!(!html.contains(" style="), "no style attribute");
    assert!(!has_inline_handler(&html), "no inline event handler");
    assert!(!html.contains("javascript:"), "no javascript: URL");
    for hook in [
        r#"id="connection""#,
        r#"id="notice""#,
        r#"id="nav""#,
        r#"id="current-user""#,
        r#"id="sign-out""#,
        r#"data-nav="queue""#,
        r#"data-nav="audit""#,
        r#"data-nav="ops""#,
    ] {
        assert!(html.contains(hook), "the page carries {hook}");
    }

    let head = http.head(server.url("/")).send().await.unwrap();
    assert_eq!(head.status(), 200, "HEAD / answers too");
}

#[tokio::test]
async fn every_file_of_the_app_folder_is_served_as_built_with_its_media_type() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let http = client();
    let files = app_files();
    assert!(files.contains_key("client.js"), "the client module exists");
    for (name, bytes) in &files {
        let answer = http
            .get(server.url(&format!("/app/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "/app/{name}");
        let expected = match name.rsplit_once('.').map(|(_, e)| e) {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("html") => "text/html; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => {
                panic!("app/{name}: add its media type here and in src/http/app.rs ({other:?})")
            }
        };
        assert_eq!(header(&answer, "content-type"), expected, "/app/{name}");
        assert_security_headers(&answer);
        let body = answer.bytes().await.unwrap();
        assert_eq!(&body[..], &bytes[..], "/app/{name} is the file in app/");
    }
}

#[tokio::test]
async fn an_unchanged_file_is_revalidated_with_its_etag() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let http = client();
    let first = http.get(server.url("/app/client.js")).send().await.unwrap();
    let etag = header(&first, "etag");
    assert!(!etag.is_empty());
    let again = http
        .get(server.url("/app/client.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let other = http
        .get(server.url("/app/client.js"))
        .header("if-none-match", "\"another-version\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200, "a stale tag gets the file");
    let page = http.get(server.url("/")).send().await.unwrap();
    assert_ne!(header(&page, "etag"), etag, "each file has its own tag");
}

#[tokio::test]
async fn unknown_app_paths_answer_404_problem_documents() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let http = client();
    for path in [
        "/app/no-such-file.js",
        "/app/",
        "/app/pages",
        "/app/%2e%2e/Cargo.toml",
        "/app/..%2fCargo.toml",
        "/index.html",
    ] {
        let answer = http.get(server.url(path)).send().await.unwrap();
        assert_problem(answer, 404, "not_found").await;
    }
    let post = http.post(server.url("/")).send().await.unwrap();
    assert_problem(post, 404, "not_found").await;
}

/// `import … from './x.js'` and `import('./x.js')` targets of a module, resolved to `/app/…`.
fn imports_of(module: &str, source: &str) -> Vec<String> {
    let base: Vec<&str> = module.split('/').collect();
    let mut found = Vec::new();
    for quote in ['\'', '"'] {
        for marker in [format!("from {quote}"), format!("import({quote}")] {
            for (at, _) in source.match_indices(&marker) {
                let rest = &source[at + marker.len()..];
                let Some(end) = rest.find(quote) else {
                    continue;
                };
                let target = &rest[..end];
                if !target.starts_with('.') {
                    continue;
                }
                let mut parts: Vec<&str> = base[..base.len() - 1].to_vec();
                for p in target.split('/') {
                    match p {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        p => parts.push(p),
                    }
                }
                found.push(format!("/app/{}", parts.join("/")));
            }
        }
    }
    found
}

#[tokio::test]
async fn every_module_import_resolves_and_nothing_points_to_another_origin() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let http = client();
    let files = app_files();
    let mut checked = 0;
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        // The only absolute URL allowed is the SVG namespace, which is a name, not a request.
        for (at, _) in text.match_indices("://") {
            let (mut from, mut to) = (at.saturating_sub(12), (at + 30).min(text.len()));
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            while !text.is_char_boundary(to) {
                to += 1;
            }
            let around = &text[from..to];
            assert!(
                around.contains("http://www.w3.org/2000/svg"),
                "app/{name} names another origin: …{around}…"
            );
        }
        assert!(
            !text.contains("localStorage") && !text.contains("document.cookie"),
            "app/{name}: tokens live in sessionStorage only (docs/security.md)"
        );
        if !name.ends_with(".js") {
            continue;
        }
        assert!(
            !text.contains("?token="),
            "app/{name}: the token never goes in a URL"
        );
        for target in imports_of(name, &text) {
            let answer = http.get(server.url(&target)).send().await.unwrap();
            assert_eq!(answer.status(), 200, "{target}, imported by app/{name}");
            assert_eq!(
                header(&answer, "content-type"),
                "text/javascript; charset=utf-8",
                "{target}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "the app's modules import each other ({checked} imports)"
    );
}

/// The upgrade's HTTP status for a WebSocket request with `Origin: origin` (101 = upgraded).
async fn upgrade_status(server: &Server, origin: &str) -> u16 {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Error;
    let url = format!(
        "{}/api/v1/ws",
        server.base_url.replacen("http://", "ws://", 1)
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("the upgrade failed: {e}"),
    }
}

#[tokio::test]
async fn the_app_may_open_a_websocket_when_other_origins_are_configured() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("data"),
        &["--allowed-origins", "https://review.example.org"],
    );
    // The page the server itself serves: its origin is the server's own.
    assert_eq!(upgrade_status(&server, &server.base_url).await, 101);
    assert_eq!(
        upgrade_status(&server, "https://review.example.org").await,
        101
    );
    assert_eq!(upgrade_status(&server, "http://evil.example").await, 403);
    let lookalike = server
        .base_url
        .replacen("127.0.0.1", "127.0.0.1.evil.example", 1);
    assert_eq!(upgrade_status(&server, &lookalike).await, 403);
}
