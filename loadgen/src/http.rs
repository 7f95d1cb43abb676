//! The server's HTTP API as the scenarios use it: the target address, logins, and the few
//! calls that make updates (submit, claim, decide) or read a little (stats), each returning the
//! event position the server answered with.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::{json, Value};

/// The server under test: `http://host:port`, resolved once.
#[derive(Clone, Debug)]
pub struct Target {
    /// `http://host:port`, no trailing slash.
    pub base: String,
    /// `host:port` as written, for the `Host` header.
    pub authority: String,
    /// The address every TCP connection goes to.
    pub addr: SocketAddr,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self> {
        let u = reqwest::Url::parse(url).with_context(|| format!("--url {url:?}"))?;
        if u.scheme() != "http" {
            bail!("--url must be http:// (this load generator speaks no TLS)");
        }
        let host = u.host_str().ok_or_else(|| anyhow!("--url has no host"))?;
        let port = u.port_or_known_default().unwrap_or(80);
        let authority = format!("{host}:{port}");
        let addr = authority
            .to_socket_addrs()
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .ok_or_else(|| anyhow!("{authority} resolves to no address"))?;
        Ok(Target {
            base: format!("http://{authority}"),
            authority,
            addr,
        })
    }
}

/// `name` or `name:password`; a bare name means the demo password `<name>-demo`.
#[derive(Clone, Debug)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl std::str::FromStr for Credential {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (username, password) = match s.split_once(':') {
            Some((u, p)) => (u.to_owned(), p.to_owned()),
            None => (s.to_owned(), format!("{s}-demo")),
        };
        if username.is_empty() {
            return Err("empty username".into());
        }
        Ok(Credential { username, password })
    }
}

/// An HTTP client of the server, with the tokens it logged in with.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    pub target: Target,
}

impl Api {
    pub fn new(target: Target) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(Api { client, target })
    }

    /// `POST /api/v1/auth/login` → the access token.
    pub async fn login(&self, who: &Credential) -> Result<String> {
        let body = self
            .post(
                "/api/v1/auth/login",
                None,
                &json!({"username": who.username, "password": who.password}),
            )
            .await
            .with_context(|| format!("login as {}", who.username))?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("login as {}: no access_token", who.username))
    }

    /// One access token per credential.
    pub async fn login_all(&self, who: &[Credential]) -> Result<Vec<String>> {
        let mut tokens = Vec::with_capacity(who.len());
        for c in who {
            tokens.push(self.login(c).await?);
        }
        if tokens.is_empty() {
            bail!("--users names nobody");
        }
        Ok(tokens)
    }

    /// POSTs JSON; a non-2xx answer is an error naming the status and the problem's code.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Value> {
        let mut req = self
            .client
            .post(format!("{}{path}", self.target.base))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        answer(req.send().await, path).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Result<Value> {
        let req = self
            .client
            .get(format!("{}{path}", self.target.base))
            .bearer_auth(token);
        answer(req.send().await, path).await
    }

    /// Submits a synthetic case; returns its id and the position of its `case_submitted`.
    pub async fn submit_case(&self, classifier: &str, n: usize) -> Result<(String, u64)> {
        let case = self
            .post(
                "/api/v1/cases",
                Some(classifier),
                &json!({
                    "subject_ref": format!("loadgen-{n}"),
                    "excerpt": "Synthetic case from adjudicator-loadgen: the subject said they knew the \
                                shipment was mislabelled and sent it anyway.",
                    "assessment": {"culpability": "knowingly", "confidence": 0.7, "rationale": "stated knowledge"},
                    "priority": "normal",
                }),
            )
            .await?;
        Ok((string(&case, "id")?, position(&case)?))
    }

    /// Claims a case; returns the position of its `case_claimed`.
    pub async fn claim(&self, reviewer: &str, id: &str) -> Result<u64> {
        let case = self
            .post(
                &format!("/api/v1/cases/{id}/claim"),
                Some(reviewer),
                &json!({}),
            )
            .await?;
        position(&case)
    }

    /// Confirms a claimed case; returns the position of its `case_decided`.
    pub async fn decide(&self, reviewer: &str, id: &str) -> Result<u64> {
        let case = self
            .post(
                &format!("/api/v1/cases/{id}/decision"),
                Some(reviewer),
                &json!({"decision": "confirm", "notes": "loadgen"}),
            )
            .await?;
        position(&case)
    }

    /// `GET /api/v1/stats` → the position the read models are at.
    pub async fn head(&self, token: &str) -> Result<u64> {
        position(&self.get("/api/v1/stats", token).await?)
    }
}

async fn answer(sent: reqwest::Result<reqwest::Response>, path: &str) -> Result<Value> {
    let resp = sent.with_context(|| format!("{path}: no answer"))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .with_context(|| format!("{path}: body"))?;
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{path}: HTTP {} {}",
            status.as_u16(),
            value["code"].as_str().unwrap_or("")
        );
    }
    Ok(value)
}

fn string(v: &Value, key: &str) -> Result<String> {
    v[key]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("answer has no {key}"))
}

fn position(v: &Value) -> Result<u64> {
    v["position"]
        .as_u64()
        .ok_or_else(|| anyhow!("answer has no position"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_default_to_the_demo_password() {
        let c: Credential = "reviewer".parse().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("reviewer", "reviewer-demo")
        );
        let c: Credential = "ops:a:long:secret".parse().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("ops", "a:long:secret")
        );
        assert!("".parse::<Credential>().is_err());
    }

    #[test]
    fn only_plain_http_targets() {
        let t = Target::parse("http://127.0.0.1:18080/").unwrap();
        assert_eq!(t.base, "http://127.0.0.1:18080");
        assert_eq!(t.authority, "127.0.0.1:18080");
        assert!(Target::parse("https://127.0.0.1:1").is_err());
    }
}
