//! Authentication and user administration over real HTTP against the real binary: logins,
//! refreshes and their reuse, logouts that survive a restart, every way a token is refused
//! (with the protocol's `code` for each), disabled users, password changes, and the users API.

mod common;

use std::time::Duration;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use uuid::Uuid;

const LOGIN: &str = "/api/v1/auth/login";
const REFRESH: &str = "/api/v1/auth/refresh";
const LOGOUT: &str = "/api/v1/auth/logout";
const ME: &str = "/api/v1/me";

fn text(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
        .to_owned()
}

async fn refresh(server: &Server, refresh_token: &str) -> reqwest::Response {
    post(
        server,
        REFRESH,
        None,
        &json!({ "refresh_token": refresh_token }),
    )
    .await
}

async fn me_refused(server: &Server, token: &str, status: u16, code: &str) {
    assert_problem(get(server, ME, Some(token)).await, status, code).await;
}

fn sign_hs256(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .expect("sign a token")
}

#[tokio::test]
async fn logins_refreshes_and_reuse_and_the_per_user_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = start_demo(&data, &["--login-failures-per-user", "3"]);

    // A good login: the protocol's shape, and an access token that opens the API.
    let pair = login_pair(&server, "reviewer", &demo_password("reviewer")).await;
    let keys: Vec<&String> = pair.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        4,
        "access_token, refresh_token, token_type, expires_in: {pair}"
    );
    let expires_in = pair["expires_in"].as_u64().unwrap();
    assert!(
        (899..=900).contains(&expires_in),
        "15 minutes by default: {expires_in}"
    );
    let (header, claims) = jwt_parts(&text(&pair, "access_token"));
    assert_eq!(header["alg"], "HS256");
    for claim in ["sub", "jti", "iat", "exp", "iss", "aud", "typ", "roles"] {
        assert!(!claims[claim].is_null(), "{claim} in {claims}");
    }
    assert_eq!(claims["typ"], "access");
    assert_eq!(claims["roles"], json!(["reviewer"]));
    let user = me(&server, &text(&pair, "access_token")).await;
    assert_eq!(user["username"], "reviewer");
    assert_eq!(user["display_name"], "Rita Reviewer");
    assert_eq!(user["roles"], json!(["reviewer"]));
    assert_eq!(user["id"], claims["sub"]);

    // A wrong password and an unknown user get the very same answer.
    let wrong = post(
        &server,
        LOGIN,
        None,
        &json!({"username": "reviewer", "password": "not-the-password"}),
    )
    .await;
    let unknown = post(
        &server,
        LOGIN,
        None,
        &json!({"username": "nobody", "password": "not-the-password"}),
    )
    .await;
    let (wrong_status, unknown_status) = (wrong.status(), unknown.status());
    let (wrong_type, unknown_type) = (content_type(&wrong), content_type(&unknown));
    let wrong_body = wrong.text().await.unwrap();
    let unknown_body = unknown.text().await.unwrap();
    assert_eq!(wrong_status, 401);
    assert_eq!(
        (wrong_status, &wrong_type, &wrong_body),
        (unknown_status, &unknown_type, &unknown_body),
        "a wrong password and an unknown user are answered alike"
    );
    assert_eq!(wrong_type, "application/problem+json");
    let body: Value = serde_json::from_str(&wrong_body).unwrap();
    assert_eq!(body["code"], "invalid_credentials");
    assert!(!wrong_body.contains("nobody") && !wrong_body.contains("not-the-password"));

    // Bodies that are not a login.
    let missing = post(&server, LOGIN, None, &json!({"username": "reviewer"})).await;
    assert_eq!(assert_invalid(missing).await, ["password"]);
    let broken = client()
        .post(server.url(LOGIN))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_problem(broken, 400, "bad_json").await;

    // Three failures for one username: the fourth attempt is refused before the password is
    // even looked at, the right password included, with Retry-After. Other users can log in.
    for _ in 0..3 {
        let r = post(
            &server,
            LOGIN,
            None,
            &json!({"username": "senior", "password": "guess-guess-guess"}),
        )
        .await;
        assert_problem(r, 401, "invalid_credentials").await;
    }
    for password in ["guess-guess-guess".to_owned(), demo_password("senior")] {
        let r = post(
            &server,
            LOGIN,
            None,
            &json!({"username": "senior", "password": password}),
        )
        .await;
        let retry_after: u64 = r
            .headers()
            .get("retry-after")
            .expect("429 carries Retry-After")
            .to_str()
            .unwrap()
            .parse()
            .expect("Retry-After in seconds");
        assert!(
            (1..=15 * 60).contains(&retry_after),
            "within the login window: {retry_after}"
        );
        assert_problem(r, 429, "rate_limited").await;
    }
    login(&server, "auditor", &demo_password("auditor")).await;

    // Refresh: a new pair; the old access token keeps working until something revokes it.
    let old_access = text(&pair, "access_token");
    let old_refresh = text(&pair, "refresh_token");
    let refreshed = assert_json(refresh(&server, &old_refresh).await, 200).await;
    assert_eq!(refreshed["token_type"], "Bearer");
    assert!(refreshed["expires_in"].is_u64());
    let new_access = text(&refreshed, "access_token");
    let new_refresh = text(&refreshed, "refresh_token");
    assert_ne!(new_access, old_access);
    assert_ne!(new_refresh, old_refresh);
    assert_eq!(
        jwt_parts(&new_access).1["fam"],
        claims["fam"],
        "one login, one family"
    );
    me(&server, &new_access).await;
    me(&server, &old_access).await;
    // A second, unrelated login of the same user.
    let other_login = login(&server, "reviewer", &demo_password("reviewer")).await;

    // The used refresh token again: reuse. The whole family is revoked, the new pair included.
    assert_problem(refresh(&server, &old_refresh).await, 401, "token_reused").await;
    me_refused(&server, &new_access, 401, "token_revoked").await;
    me_refused(&server, &old_access, 401, "token_revoked").await;
    assert_problem(refresh(&server, &new_refresh).await, 401, "token_revoked").await;
    // ... and only that family.
    me(&server, &other_login).await;

    // The refresh endpoint takes refresh tokens only, and checks them like any token.
    assert_problem(
        refresh(&server, &other_login).await,
        401,
        "token_wrong_type",
    )
    .await;
    assert_problem(refresh(&server, "garbage").await, 401, "token_malformed").await;
    assert_problem(refresh(&server, "").await, 401, "token_missing").await;
}

#[tokio::test]
async fn logout_revokes_the_login_and_a_restart_does_not_forget_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let password = admin_password(&data);
    let pair = login_pair(&server, "admin", &password).await;
    let other = login_pair(&server, "admin", &password).await;
    let access = text(&pair, "access_token");
    let refresh_token = text(&pair, "refresh_token");

    assert_problem(
        client().post(server.url(LOGOUT)).send().await.unwrap(),
        401,
        "token_missing",
    )
    .await;
    let out = client()
        .post(server.url(LOGOUT))
        .bearer_auth(&access)
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.text().await.unwrap().is_empty(), "204 has no body");

    me_refused(&server, &access, 401, "token_revoked").await;
    assert_problem(refresh(&server, &refresh_token).await, 401, "token_revoked").await;
    // A logout ends one login, not the user's others.
    me(&server, &text(&other, "access_token")).await;
    // Logging out again with the revoked token is refused like any other use of it.
    let again = client()
        .post(server.url(LOGOUT))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_problem(again, 401, "token_revoked").await;

    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM stops the server cleanly: {status}"
    );
    let server = Server::start(&data, &[]);
    me_refused(&server, &access, 401, "token_revoked").await;
    assert_problem(refresh(&server, &refresh_token).await, 401, "token_revoked").await;
    me(&server, &text(&other, "access_token")).await;
    assert_eq!(admin_password(&data), password, "a restart keeps the admin");
    let fresh = login(&server, "admin", &password).await;
    assert_eq!(me(&server, &fresh).await["username"], "admin");
}

#[tokio::test]
async fn forged_mangled_and_misused_tokens_are_refused_each_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let pair = login_pair(&server, "admin", &admin_password(&data)).await;
    let access = text(&pair, "access_token");
    let secret = jwt_secret(&data);
    let (_, claims) = jwt_parts(&access);

    // The forging itself is right: the same claims signed with the server's key pass.
    let resigned = sign_hs256(&claims, &secret);
    assert_eq!(me(&server, &resigned).await["username"], "admin");

    // Missing, or not a bearer token.
    assert_problem(get(&server, ME, None).await, 401, "token_missing").await;
    let basic = client()
        .get(server.url(ME))
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_problem(basic, 401, "token_missing").await;

    // Not a JWT at all.
    for garbage in [
        "garbage",
        "a.b",
        "a.b.c",
        "....",
        "eyJhbGciOiJIUzI1NiJ9.e30",
    ] {
        me_refused(&server, garbage, 401, "token_malformed").await;
    }
    // Well signed, but the claims are not ours.
    let mut no_sub = claims.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    me_refused(
        &server,
        &sign_hs256(&no_sub, &secret),
        401,
        "token_malformed",
    )
    .await;

    // Signed with another key.
    let other_key = b"another-key-another-key-another-key-0123456789";
    me_refused(
        &server,
        &sign_hs256(&claims, other_key),
        401,
        "token_invalid_signature",
    )
    .await;
    // Our token with its signature cut off or changed.
    let (signing_input, signature) = access.rsplit_once('.').unwrap();
    me_refused(
        &server,
        &format!("{signing_input}."),
        401,
        "token_invalid_signature",
    )
    .await;
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    me_refused(
        &server,
        &format!("{signing_input}.{flipped}{}", &signature[1..]),
        401,
        "token_invalid_signature",
    )
    .await;

    // `alg: none`, crafted by hand: header, claims, empty signature. The algorithm is fixed by
    // configuration, so this is a token not signed by us: `token_invalid_signature`.
    let none = format!(
        "{}.{}.",
        b64_json(&json!({"alg": "none", "typ": "JWT"})),
        b64_json(&claims)
    );
    me_refused(&server, &none, 401, "token_invalid_signature").await;
    // Another HMAC algorithm, even with our key, is refused too.
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(&secret),
    )
    .unwrap();
    me_refused(&server, &hs512, 401, "token_invalid_signature").await;

    // Our key, but another issuer or audience.
    for (claim, value) in [("iss", "someone-else"), ("aud", "someone-else")] {
        let mut forged = claims.clone();
        forged[claim] = json!(value);
        me_refused(
            &server,
            &sign_hs256(&forged, &secret),
            401,
            "token_invalid_signature",
        )
        .await;
    }

    // Expired (forged here; a real expiry is tested with a short TTL below).
    let mut expired = claims.clone();
    expired["exp"] = json!(claims["iat"].as_i64().unwrap() - 1);
    me_refused(
        &server,
        &sign_hs256(&expired, &secret),
        401,
        "token_expired",
    )
    .await;

    // A refresh token where an access token is needed.
    me_refused(
        &server,
        &text(&pair, "refresh_token"),
        401,
        "token_wrong_type",
    )
    .await;

    // Correctly signed, for a user that does not exist.
    let mut stranger = claims.clone();
    stranger["sub"] = json!(Uuid::now_v7());
    stranger["jti"] = json!(Uuid::now_v7());
    me_refused(
        &server,
        &sign_hs256(&stranger, &secret),
        401,
        "user_unknown",
    )
    .await;
    // The same answer on every protected route.
    let r = get(
        &server,
        "/api/v1/cases",
        Some(&sign_hs256(&stranger, &secret)),
    )
    .await;
    assert_problem(r, 401, "user_unknown").await;
    let r = get(&server, "/api/v1/users", Some("garbage")).await;
    assert_problem(r, 401, "token_malformed").await;
}

#[tokio::test]
async fn an_access_token_expires_and_the_refresh_token_outlives_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--access-token-ttl", "2s"]);
    let pair = login_pair(&server, "admin", &admin_password(&data)).await;
    let expires_in = pair["expires_in"].as_u64().unwrap();
    assert!((1..=2).contains(&expires_in), "{expires_in}");
    let access = text(&pair, "access_token");
    let (_, claims) = jwt_parts(&access);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((2..=3).contains(&lifetime), "exp - iat = {lifetime}");

    // Valid now; refused as expired once `exp` has passed.
    let s = &server;
    let token = access.as_str();
    let refused = eventually(
        "the access token to expire",
        Duration::from_secs(15),
        || async move {
            let r = get(s, ME, Some(token)).await;
            (r.status() != 200).then_some(r)
        },
    )
    .await;
    assert_problem(refused, 401, "token_expired").await;

    // The refresh token lives on (7 days by default) and buys a working pair.
    let refreshed = assert_json(refresh(&server, &text(&pair, "refresh_token")).await, 200).await;
    me(&server, &text(&refreshed, "access_token")).await;
}

#[tokio::test]
async fn an_rs256_server_refuses_an_hs256_token_keyed_with_its_public_key() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/api");
    let public = format!("{fixtures}/rs256-public.pem");
    let dir = tempfile::tempdir().unwrap();
    // A private key must be private (git keeps no 0600): a copy with that mode.
    let private = dir.path().join("rs256-private.pem");
    std::fs::copy(format!("{fixtures}/rs256-private.pem"), &private).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(
        &private,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let private = private.to_str().unwrap().to_owned();
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &[
            "--jwt-algorithm",
            "RS256",
            "--jwt-public-key-file",
            &public,
            "--jwt-private-key-file",
            &private,
        ],
    );
    let access = login(&server, "admin", &admin_password(&data)).await;
    let (header, claims) = jwt_parts(&access);
    assert_eq!(header["alg"], "RS256");
    me(&server, &access).await;

    // The classic confusion: HS256 "signed" with the public key's PEM bytes as the HMAC key.
    let public_pem = std::fs::read(&public).unwrap();
    let confused = sign_hs256(&claims, &public_pem);
    me_refused(&server, &confused, 401, "token_invalid_signature").await;
    // Also with the PEM without its trailing newline, as some libraries read it.
    let trimmed = String::from_utf8(public_pem).unwrap();
    let confused = sign_hs256(&claims, trimmed.trim_end().as_bytes());
    me_refused(&server, &confused, 401, "token_invalid_signature").await;
    // And `alg: none`.
    let none = format!(
        "{}.{}.",
        b64_json(&json!({"alg": "none", "typ": "JWT"})),
        b64_json(&claims)
    );
    me_refused(&server, &none, 401, "token_invalid_signature").await;
}

#[tokio::test]
async fn disabling_a_user_and_changing_a_password_void_older_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let admin = login(&server, "admin", &admin_password(&data)).await;
    let old_password = "correct horse battery staple";
    let created = post(
        &server,
        "/api/v1/users",
        Some(&admin),
        &json!({"username": "dana", "password": old_password, "display_name": "Dana",
                "roles": ["reviewer"]}),
    )
    .await;
    let dana = assert_json(created, 201).await;
    let path = format!("/api/v1/users/{}", text(&dana, "id"));
    let first = login(&server, "dana", old_password).await;
    me(&server, &first).await;

    // Disabled: the token is forbidden (403), and the password no longer logs in.
    let disabled = assert_json(
        patch(&server, &path, &admin, &json!({"disabled": true})).await,
        200,
    )
    .await;
    assert_eq!(disabled["disabled"], true);
    me_refused(&server, &first, 403, "user_disabled").await;
    let r = post(
        &server,
        LOGIN,
        None,
        &json!({"username": "dana", "password": old_password}),
    )
    .await;
    assert_problem(r, 401, "invalid_credentials").await;
    // Disabling twice changes nothing.
    let again = assert_json(
        patch(&server, &path, &admin, &json!({"disabled": true})).await,
        200,
    )
    .await;
    assert_eq!(again, disabled);

    // Enabled again: the old token stays void; a new login works.
    let enabled = assert_json(
        patch(&server, &path, &admin, &json!({"disabled": false})).await,
        200,
    )
    .await;
    assert_eq!(enabled["disabled"], false);
    me_refused(&server, &first, 401, "token_revoked").await;
    let second = login(&server, "dana", old_password).await;
    assert_eq!(me(&server, &second).await["username"], "dana");

    // A new password: tokens issued before it are revoked; the old password fails, the new
    // one logs in.
    let new_password = "a much better passphrase";
    let short = patch(&server, &path, &admin, &json!({"password": "too-short"})).await;
    assert_eq!(assert_invalid(short).await, ["password"]);
    me(&server, &second).await;
    let changed = assert_json(
        patch(&server, &path, &admin, &json!({"password": new_password})).await,
        200,
    )
    .await;
    assert!(changed.get("password").is_none() && changed.get("password_hash").is_none());
    me_refused(&server, &second, 401, "token_revoked").await;
    let r = post(
        &server,
        LOGIN,
        None,
        &json!({"username": "dana", "password": old_password}),
    )
    .await;
    assert_problem(r, 401, "invalid_credentials").await;
    let third = login(&server, "dana", new_password).await;
    me(&server, &third).await;

    // PATCH needs something to change, a known user, and an admin.
    assert_eq!(
        assert_invalid(patch(&server, &path, &admin, &json!({})).await).await,
        ["body"]
    );
    let nobody = format!("/api/v1/users/{}", Uuid::now_v7());
    let r = patch(&server, &nobody, &admin, &json!({"disabled": true})).await;
    assert_problem(r, 404, "not_found").await;
    let r = patch(
        &server,
        "/api/v1/users/not-a-uuid",
        &admin,
        &json!({"disabled": true}),
    )
    .await;
    assert_problem(r, 404, "not_found").await;
    let r = patch(&server, &path, &third, &json!({"disabled": true})).await;
    assert_problem(r, 403, "forbidden").await;
}

#[tokio::test]
async fn admins_manage_users_and_nobody_else_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let admin = login(&server, "admin", &admin_password(&data)).await;
    let me_admin = me(&server, &admin).await;
    assert_eq!(me_admin["username"], "admin");
    assert_eq!(me_admin["roles"], json!(["admin"]));
    for key in ["id", "username", "display_name", "roles"] {
        assert!(!me_admin[key].is_null(), "{key} in {me_admin}");
    }

    let body = json!({"username": "erin.k-2", "password": "twelve chars", "display_name": "Erin K",
                      "roles": ["reviewer", "auditor"]});
    let response = post(&server, "/api/v1/users", Some(&admin), &body).await;
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let erin = assert_json(response, 201).await;
    assert_eq!(erin["username"], "erin.k-2");
    assert_eq!(erin["display_name"], "Erin K");
    assert_eq!(erin["roles"], json!(["reviewer", "auditor"]));
    assert_eq!(erin["disabled"], false);
    assert!(erin.get("password").is_none() && erin.get("password_hash").is_none());
    let id = text(&erin, "id");
    Uuid::parse_str(&id).unwrap();
    assert_eq!(location, Some(format!("/api/v1/users/{id}")));

    // The same username again.
    let r = post(&server, "/api/v1/users", Some(&admin), &body).await;
    assert_problem(r, 409, "already_exists").await;

    // Field rules: each bad field is named.
    let mut short = body.clone();
    short["username"] = json!("frank");
    short["password"] = json!("elevenchars");
    let r = post(&server, "/api/v1/users", Some(&admin), &short).await;
    assert_eq!(assert_invalid(r).await, ["password"]);
    let mut capitals = body.clone();
    capitals["username"] = json!("Frank");
    let r = post(&server, "/api/v1/users", Some(&admin), &capitals).await;
    assert_eq!(assert_invalid(r).await, ["username"]);
    let mut two = body.clone();
    two["username"] = json!("fr");
    two["display_name"] = json!("x".repeat(129));
    two["roles"] = json!([]);
    let r = post(&server, "/api/v1/users", Some(&admin), &two).await;
    assert_eq!(
        assert_invalid(r).await,
        ["username", "display_name", "roles"]
    );
    let mut unknown_role = body.clone();
    unknown_role["username"] = json!("frank");
    unknown_role["roles"] = json!(["wizard"]);
    let r = post(&server, "/api/v1/users", Some(&admin), &unknown_role).await;
    let fields = assert_invalid(r).await;
    assert_eq!(fields.len(), 1);
    assert!(fields[0].starts_with("roles"), "{fields:?}");
    let mut extra = body.clone();
    extra["username"] = json!("frank");
    extra["is_admin"] = json!(true);
    let r = post(&server, "/api/v1/users", Some(&admin), &extra).await;
    assert_eq!(assert_invalid(r).await, ["is_admin"]);
    let r = post(
        &server,
        "/api/v1/users",
        Some(&admin),
        &json!({"username": "frank", "password": "twelve chars"}),
    )
    .await;
    assert_eq!(assert_invalid(r).await, ["roles"]);

    // The list, by username.
    let list = assert_json(get(&server, "/api/v1/users", Some(&admin)).await, 200).await;
    let users = list["users"].as_array().expect("users");
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "erin.k-2"]);
    assert_eq!(users[1], erin);
    assert!(!list.to_string().contains("argon2"));

    // Someone who is not an admin.
    let token = login(&server, "erin.k-2", "twelve chars").await;
    let mine = me(&server, &token).await;
    assert_eq!(mine["id"], json!(id));
    assert_eq!(mine["roles"], json!(["reviewer", "auditor"]));
    let r = get(&server, "/api/v1/users", Some(&token)).await;
    assert_problem(r, 403, "forbidden").await;
    let mut other = body.clone();
    other["username"] = json!("frank");
    let r = post(&server, "/api/v1/users", Some(&token), &other).await;
    assert_problem(r, 403, "forbidden").await;
    let r = patch(
        &server,
        &format!("/api/v1/users/{id}"),
        &token,
        &json!({"roles": ["admin"]}),
    )
    .await;
    assert_problem(r, 403, "forbidden").await;
    assert_eq!(
        me(&server, &token).await["roles"],
        json!(["reviewer", "auditor"])
    );

    // A role change by the admin applies at once: the access token issued with the old roles
    // is void, and the login's refresh gives a pair with the new ones.
    let pair = login_pair(&server, "erin.k-2", "twelve chars").await;
    let token = text(&pair, "access_token");
    let changed = assert_json(
        patch(
            &server,
            &format!("/api/v1/users/{id}"),
            &admin,
            &json!({"roles": ["classifier"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(changed["roles"], json!(["classifier"]));
    me_refused(&server, &token, 401, "token_revoked").await;
    let refreshed = assert_json(refresh(&server, &text(&pair, "refresh_token")).await, 200).await;
    let token = text(&refreshed, "access_token");
    assert_eq!(jwt_parts(&token).1["roles"], json!(["classifier"]));
    assert_eq!(me(&server, &token).await["roles"], json!(["classifier"]));
}
