//! The browser app: `GET /` answers its page, `GET /app/{file}` its modules, styles and icons.
//!
//! The files of the repository's `app/` folder are embedded in the executable when it is built
//! (`include_dir`, see `docs/adr/0010-embedded-browser-app.md`), so the binary is all a user
//! runs and the app served is always the one the server was built with.
//!
//! Every answer carries a strict `Content-Security-Policy` (scripts, styles, images and
//! connections from this origin only, no inline code, no framing), `nosniff` and
//! `no-referrer`. Files are revalidated on each use (`Cache-Control: no-cache`) against a
//! strong `ETag`, so an upgraded server is picked up at once and an unchanged file costs a 304.
//! An unknown file answers 404 as a problem document, like every other unknown resource.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{guard, web, HttpRequest, HttpResponse};
use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};

use super::problem::ApiError;

/// The `app/` folder, as it was when the binary was built.
static APP: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/app");

/// The page every route of the app starts from (routes are in the URL's fragment).
const INDEX: &str = "index.html";

/// Nothing from another origin, nothing inline, never in a frame. `'self'` in `connect-src`
/// covers WebSockets to the same host and port (`ws:` from an `http:` page, `wss:` from an
/// `https:` one) in current browsers (CSP Level 3).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes(cfg: &mut web::ServiceConfig) {
    let read = || guard::Any(guard::Get()).or(guard::Head());
    cfg.route("/", web::route().guard(read()).to(index))
        .route("/app/{file:.*}", web::route().guard(read()).to(asset));
}

async fn index(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    serve(&req, INDEX)
}

async fn asset(req: HttpRequest, file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    serve(&req, &file)
}

fn serve(req: &HttpRequest, path: &str) -> Result<HttpResponse, ApiError> {
    let Some(file) = APP.get_file(path) else {
        return Err(ApiError::not_found(format!("the app has no file {path:?}")));
    };
    let etag = etag_of(path);
    let unchanged = etag.is_some_and(|tag| not_modified(req, tag));
    let mut answer = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    answer
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"))
        .insert_header(("Cross-Origin-Resource-Policy", "same-origin"));
    if let Some(tag) = etag {
        answer.insert_header((header::ETAG, tag));
    }
    if unchanged {
        return Ok(answer.finish());
    }
    Ok(answer
        .insert_header((header::CONTENT_TYPE, content_type(path)))
        .body(file.contents()))
}

/// Whether the client's `If-None-Match` names this version of the file.
fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v: &HeaderValue| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// A strong validator per file: the first 16 bytes of its SHA-256, computed once.
fn etag_of(path: &str) -> Option<&'static str> {
    static TAGS: OnceLock<HashMap<String, String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = HashMap::new();
        collect_tags(&APP, &mut tags);
        tags
    })
    .get(path)
    .map(String::as_str)
}

fn collect_tags(dir: &Dir<'static>, tags: &mut HashMap<String, String>) {
    for file in dir.files() {
        let digest = Sha256::digest(file.contents());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        tags.insert(
            file.path().to_string_lossy().into_owned(),
            format!("\"{hex}\""),
        );
    }
    for sub in dir.dirs() {
        collect_tags(sub, tags);
    }
}

/// The media type of an app file, from its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("woff2") => "font/woff2",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_the_client_module_are_embedded() {
        assert!(APP.get_file(INDEX).is_some());
        assert!(APP.get_file("client.js").is_some());
        assert!(APP.get_file("../Cargo.toml").is_none());
    }

    #[test]
    fn every_embedded_file_has_a_known_type_and_a_tag() {
        let mut tags = HashMap::new();
        collect_tags(&APP, &mut tags);
        for path in tags.keys() {
            assert_ne!(content_type(path), "application/octet-stream", "{path}");
            assert!(etag_of(path).is_some(), "{path}");
        }
    }

    #[test]
    fn the_policy_allows_nothing_inline_or_from_elsewhere() {
        for directive in [
            "default-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!CONTENT_SECURITY_POLICY.contains("http"));
    }
}
