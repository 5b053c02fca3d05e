//! Every refusal class with locally generated keys, against an in-memory provider.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gantry_config::ControlPlaneGrant;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use serde_json::json;

use super::*;
use crate::{AuthErrorCode, AuthFuture, BoxFuture, Planes, Source};

const ISSUER: &str = "https://idp.example.com/realms/acme";
const JWKS: &str = "https://idp.example.com/realms/acme/certs";
const RESOURCE: &str = "https://gantry.example.com/mcp/tools";

// === test keys ===

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

struct TestKey {
    kid: String,
    signer: Signer,
}

impl TestKey {
    fn rsa(kid: &str, n: u8) -> TestKey {
        let der: &[u8] = if n == 1 {
            include_bytes!("testdata/rsa1.der")
        } else {
            include_bytes!("testdata/rsa2.der")
        };
        TestKey {
            kid: kid.into(),
            signer: Signer::Rsa(RsaKeyPair::from_der(der).unwrap()),
        }
    }

    fn ec(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pk8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        TestKey {
            kid: kid.into(),
            signer: Signer::Ec(EcdsaKeyPair::from_pkcs8(alg, pk8.as_ref(), &rng).unwrap()),
        }
    }

    fn ed(kid: &str) -> TestKey {
        let pk8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        TestKey {
            kid: kid.into(),
            signer: Signer::Ed(Ed25519KeyPair::from_pkcs8(pk8.as_ref()).unwrap()),
        }
    }

    fn jwk(&self) -> Value {
        let b = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
        match &self.signer {
            Signer::Rsa(k) => {
                let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "n": b(&c.n), "e": b(&c.e)})
            }
            Signer::Ec(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "x": b(&p[1..33]), "y": b(&p[33..])})
            }
            Signer::Ed(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "x": b(k.public_key().as_ref())})
            }
        }
    }

    fn default_alg(&self) -> &'static str {
        match self.signer {
            Signer::Rsa(_) => "RS256",
            Signer::Ec(_) => "ES256",
            Signer::Ed(_) => "EdDSA",
        }
    }

    /// A token signed by this key with its default algorithm and its kid.
    fn sign(&self, claims: &Value) -> String {
        self.sign_with(
            &json!({"alg": self.default_alg(), "kid": self.kid, "typ": "at+jwt"}),
            claims,
        )
    }

    fn sign_with(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let sig = match &self.signer {
            Signer::Rsa(k) => {
                let pad: &dyn signature::RsaEncoding = match header["alg"].as_str() {
                    Some("PS256") => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(pad, &rng, input.as_bytes(), &mut sig).unwrap();
                sig
            }
            Signer::Ec(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
            Signer::Ed(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

// === an in-memory provider ===

#[derive(Default)]
struct FakeFetch {
    docs: Mutex<HashMap<String, Value>>,
    gets: Mutex<Vec<String>>,
}

impl FakeFetch {
    fn provider(keys: &[&TestKey]) -> Arc<FakeFetch> {
        let f = FakeFetch::default();
        f.set(
            &format!("{ISSUER}/.well-known/openid-configuration"),
            json!({"issuer": ISSUER, "jwks_uri": JWKS}),
        );
        f.set(JWKS, jwks(keys));
        Arc::new(f)
    }

    fn set(&self, url: &str, doc: Value) {
        self.docs.lock().unwrap().insert(url.into(), doc);
    }

    fn gets_of(&self, url: &str) -> usize {
        self.gets
            .lock()
            .unwrap()
            .iter()
            .filter(|u| *u == url)
            .count()
    }
}

impl Fetch for FakeFetch {
    fn get_json<'a>(&'a self, url: &'a str, _: Duration) -> BoxFuture<'a, Result<Value, String>> {
        self.gets.lock().unwrap().push(url.into());
        let doc = self.docs.lock().unwrap().get(url).cloned();
        Box::pin(async move { doc.ok_or_else(|| format!("{url}: connection refused")) })
    }
}

fn config() -> OidcConfig {
    OidcConfig {
        issuer: ISSUER.into(),
        audience: Vec::new(),
        user_claim: "sub".into(),
        teams_claim: "groups".into(),
        scopes_claim: "scope".into(),
        required_scopes: Vec::new(),
        leeway: Duration::from_secs(60),
        control_plane: Vec::new(),
        jwks_refresh_min_interval: Duration::from_secs(30),
        http_timeout: Duration::from_secs(1),
    }
}

async fn ready(cfg: OidcConfig, fetch: &Arc<FakeFetch>) -> OidcAuthenticator {
    let a = OidcAuthenticator::with_fetch(&[cfg], fetch.clone()).unwrap();
    assert!(
        a.wait_ready(Duration::from_secs(5)).await,
        "{:?}",
        a.status()
    );
    a
}

fn claims() -> Value {
    let now = unix_now();
    json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": RESOURCE,
        "exp": now + 300,
        "iat": now,
        "scope": "openid mcp:tools",
        "groups": ["eng", "ops"],
    })
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

async fn check(a: &OidcAuthenticator, token: &str) -> Result<Identity, AuthError> {
    let r = a
        .authenticate(token, AuthContext { resource: RESOURCE })
        .await
        .expect("a JWT is recognised")
        .map(Arc::unwrap_or_clone);
    if let Err(e) = &r {
        let sig = token
            .rsplit('.')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("-");
        assert!(
            !e.description.contains(token) && !e.description.contains(sig),
            "the description must not contain the token: {}",
            e.description
        );
    }
    r
}

async fn refused(a: &OidcAuthenticator, token: &str) -> String {
    let e = check(a, token).await.unwrap_err();
    assert_eq!(e.code, AuthErrorCode::InvalidToken, "{}", e.description);
    e.description
}

// === tests ===

#[tokio::test]
async fn tokens_signed_by_each_key_type_are_accepted_and_mapped() {
    let (rsa, ec, ed) = (TestKey::rsa("r1", 1), TestKey::ec("e1"), TestKey::ed("d1"));
    let fetch = FakeFetch::provider(&[&rsa, &ec, &ed]);
    let a = ready(config(), &fetch).await;
    let ps256 = rsa.sign_with(&json!({"alg": "PS256", "kid": "r1"}), &claims());
    for token in [
        rsa.sign(&claims()),
        ec.sign(&claims()),
        ed.sign(&claims()),
        ps256,
    ] {
        let id = check(&a, &token).await.unwrap();
        assert_eq!(
            id,
            Identity {
                subject: "alice".into(),
                teams: vec!["eng".into(), "ops".into()],
                scopes: vec!["openid".into(), "mcp:tools".into()],
                planes: Planes::DATA,
                source: Source::Jwt {
                    issuer: ISSUER.into()
                },
            }
        );
    }
    // A token without kid is checked against every key of its algorithm.
    let no_kid = ec.sign_with(&json!({"alg": "ES256"}), &claims());
    assert_eq!(check(&a, &no_kid).await.unwrap().subject, "alice");
    assert_eq!(a.status()[0].keys, 3);
}

#[tokio::test]
async fn other_tokens_are_not_ours() {
    let fetch = FakeFetch::provider(&[&TestKey::ec("e1")]);
    let a = ready(config(), &fetch).await;
    for token in [
        "gantry_k1_abcdef",
        "abc.def",
        "a.b.c",
        "eyJ.x.y.z",
        "eyJhbGciOi$.e.e",
    ] {
        let got = a
            .authenticate(token, AuthContext { resource: RESOURCE })
            .await;
        assert!(got.is_none(), "{token}");
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused_with_the_time() {
    let ec = TestKey::ec("e1");
    let fetch = FakeFetch::provider(&[&ec]);
    let a = ready(config(), &fetch).await;
    let now = unix_now();
    let d = refused(&a, &ec.sign(&with(claims(), "exp", json!(now - 120)))).await;
    assert_eq!(
        d,
        format!("the token expired at {}", claims::rfc3339(now - 120))
    );
    // Within the leeway it still passes.
    check(&a, &ec.sign(&with(claims(), "exp", json!(now - 30))))
        .await
        .unwrap();
    let d = refused(&a, &ec.sign(&with(claims(), "nbf", json!(now + 600)))).await;
    assert_eq!(
        d,
        format!(
            "the token is not valid before {}",
            claims::rfc3339(now + 600)
        )
    );
    let d = refused(&a, &ec.sign(&with(claims(), "iat", json!(now + 600)))).await;
    assert!(d.starts_with("the token was issued in the future"), "{d}");
    let mut no_exp = claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    let d = refused(&a, &ec.sign(&no_exp)).await;
    assert!(d.contains("has no exp"), "{d}");
}

#[tokio::test]
async fn malformed_tokens_are_refused() {
    let ec = TestKey::ec("e1");
    let fetch = FakeFetch::provider(&[&ec]);
    let a = ready(config(), &fetch).await;
    let good = ec.sign(&claims());
    let (h, rest) = good.split_once('.').unwrap();
    let (_, s) = rest.split_once('.').unwrap();
    let cases = [
        (
            format!("{h}.bm90IGpzb24.{s}"),
            "the token's payload is not a JSON object",
        ),
        (
            format!("{h}.e.{s}"),
            "the token's payload is not valid base64url",
        ),
        (
            format!("{h}.{}.", URL_SAFE_NO_PAD.encode(claims().to_string())),
            "the token has no signature",
        ),
        (
            format!("eyJ9.{}.{s}", URL_SAFE_NO_PAD.encode("{}")),
            "the token's header is not a JSON object",
        ),
        (
            format!("eyJhb.{}.{s}", URL_SAFE_NO_PAD.encode("{}")),
            "the token's header is not valid base64url",
        ),
        (
            format!("{h}.e30.{s}x"),
            "the token's signature is not valid base64url",
        ),
        (
            format!("{}.e30.{s}", URL_SAFE_NO_PAD.encode(r#"{"kid":"e1"}"#)),
            "the token's header has no alg",
        ),
        (
            format!(
                "{}.e30.{s}",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","crit":["exp"]}"#)
            ),
            "the token's header marks extensions",
        ),
        (
            format!("{}.e30.{s}", URL_SAFE_NO_PAD.encode(r#"{"alg":"XS1"}"#)),
            "alg \"XS1\" is not supported",
        ),
        (
            format!("{}.e30.{s}", URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256"}"#)),
            "the token has no issuer (iss)",
        ),
    ];
    for (token, want) in cases {
        let d = refused(&a, &token).await;
        assert!(d.starts_with(want), "{want:?} vs {d:?}");
    }
    let huge = format!("{h}.{}.{s}", "A".repeat(20_000));
    assert!(refused(&a, &huge).await.contains("at most 16384"));
}

#[tokio::test]
async fn unsigned_and_hmac_tokens_are_refused_by_algorithm() {
    let rsa = TestKey::rsa("r1", 1);
    let fetch = FakeFetch::provider(&[&rsa]);
    let a = ready(config(), &fetch).await;
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());
    for header in [r#"{"alg":"none"}"#, r#"{"alg":"None","kid":"r1"}"#] {
        let token = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(header));
        assert_eq!(
            refused(&a, &token).await,
            "alg none is not accepted: the token is unsigned"
        );
    }
    // HS256 keyed with the provider's public key (the algorithm-confusion attack).
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"r1"}"#);
    let input = format!("{header}.{body}");
    let secret = rsa.jwk().to_string();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    let d = refused(&a, &token).await;
    assert!(d.starts_with("alg HS256 is not accepted"), "{d}");
}

#[tokio::test]
async fn wrong_signatures_and_tampered_tokens_are_refused() {
    let (r1, r2) = (TestKey::rsa("r1", 1), TestKey::rsa("r2", 2));
    let fetch = FakeFetch::provider(&[&r1]);
    let a = ready(config(), &fetch).await;
    // Signed by another key, claiming to be r1.
    let forged = TestKey {
        kid: "r1".into(),
        signer: r2.signer,
    };
    assert_eq!(
        refused(&a, &forged.sign(&claims())).await,
        "signature does not verify with key kid=\"r1\""
    );
    // A genuine token whose payload was changed.
    let good = r1.sign(&claims());
    let parts: Vec<&str> = good.split('.').collect();
    let admin = with(claims(), "sub", json!("admin"));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(admin.to_string()),
        parts[2]
    );
    assert_eq!(
        refused(&a, &tampered).await,
        "signature does not verify with key kid=\"r1\""
    );
    // The header's alg must suit the key: an RSA key does not verify ES256.
    let ec_claiming_r1 = TestKey {
        kid: "r1".into(),
        signer: TestKey::ec("x").signer,
    };
    let d = refused(&a, &ec_claiming_r1.sign(&claims())).await;
    assert!(d.contains("cannot verify alg ES256"), "{d}");
}

#[tokio::test]
async fn wrong_audience_and_wrong_issuer_are_refused() {
    let ec = TestKey::ec("e1");
    let fetch = FakeFetch::provider(&[&ec]);
    let a = ready(config(), &fetch).await;
    let other = json!(["https://gantry.example.com/mcp/other", "account"]);
    assert_eq!(
        refused(&a, &ec.sign(&with(claims(), "aud", other))).await,
        format!(
            "the token's audience [\"https://gantry.example.com/mcp/other\", \"account\"] does \
             not include {RESOURCE}"
        )
    );
    let mut no_aud = claims();
    no_aud.as_object_mut().unwrap().remove("aud");
    assert!(
        refused(&a, &ec.sign(&no_aud))
            .await
            .contains("has no audience")
    );
    // An array naming the resource is fine.
    let both = json!(["account", RESOURCE]);
    check(&a, &ec.sign(&with(claims(), "aud", both)))
        .await
        .unwrap();
    let d = refused(
        &a,
        &ec.sign(&with(claims(), "iss", json!("https://evil.example.com"))),
    )
    .await;
    assert_eq!(
        d,
        format!(
            "the token's issuer \"https://evil.example.com\" is not an accepted OpenID provider \
             (accepted: {ISSUER})"
        )
    );
}

#[tokio::test]
async fn a_configured_audience_replaces_the_resource() {
    let ec = TestKey::ec("e1");
    let fetch = FakeFetch::provider(&[&ec]);
    let cfg = OidcConfig {
        audience: vec!["api://gantry".into(), "gantry".into()],
        ..config()
    };
    let a = ready(cfg, &fetch).await;
    check(&a, &ec.sign(&with(claims(), "aud", json!("gantry"))))
        .await
        .unwrap();
    let d = refused(&a, &ec.sign(&claims())).await;
    assert!(
        d.ends_with("does not include one of api://gantry, gantry"),
        "{d}"
    );
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_keys_at_most_once_per_interval() {
    let (old, new) = (TestKey::rsa("2026-10", 1), TestKey::ec("2026-11"));
    let fetch = FakeFetch::provider(&[&old]);
    let a = ready(config(), &fetch).await;
    assert_eq!(fetch.gets_of(JWKS), 1);
    let before = old.sign(&claims());
    check(&a, &before).await.unwrap();
    // The provider rotates: a token signed by the new key makes Gantry fetch the JWKS again.
    fetch.set(JWKS, jwks(&[&new]));
    check(&a, &new.sign(&claims())).await.unwrap();
    assert_eq!(fetch.gets_of(JWKS), 2);
    // The withdrawn key is gone: even a token verified with it before is refused now.
    let d = refused(&a, &before).await;
    assert!(d.starts_with("no signing key kid=\"2026-10\""), "{d}");
    assert!(d.contains("fetched 0s ago"), "{d}");
    // Made-up key ids within the interval cause no fetch at all.
    for i in 0..20 {
        let k = TestKey::ec(&format!("made-up-{i}"));
        let d = refused(&a, &k.sign(&claims())).await;
        assert!(d.starts_with("no signing key kid="), "{d}");
    }
    assert_eq!(fetch.gets_of(JWKS), 2);
}

#[tokio::test]
async fn an_unknown_kid_after_the_interval_fetches_again() {
    let (old, new) = (TestKey::ec("a"), TestKey::ec("b"));
    let fetch = FakeFetch::provider(&[&old]);
    let cfg = OidcConfig {
        jwks_refresh_min_interval: Duration::ZERO,
        ..config()
    };
    let a = ready(cfg, &fetch).await;
    assert!(
        refused(&a, &new.sign(&claims()))
            .await
            .contains("fetched just now")
    );
    fetch.set(JWKS, jwks(&[&old, &new]));
    check(&a, &new.sign(&claims())).await.unwrap();
    check(&a, &old.sign(&claims())).await.unwrap();
    assert_eq!(fetch.gets_of(JWKS), 3);
}

#[tokio::test]
async fn a_missing_required_scope_is_insufficient_scope() {
    let ec = TestKey::ec("e1");
    let fetch = FakeFetch::provider(&[&ec]);
    let cfg = OidcConfig {
        required_scopes: vec!["mcp:tools".into(), "mcp:admin".into()],
        ..config()
    };
    let a = ready(cfg, &fetch).await;
    let token = ec.sign(&claims());
    let e = check(&a, &token).await.unwrap_err();
    // Presented again (its signature now remembered), it is refused the same way.
    assert_eq!(check(&a, &token).await.unwrap_err(), e);
    assert_eq!(e.code, AuthErrorCode::InsufficientScope);
    assert_eq!(e.code.status(), 403);
    assert_eq!(e.scope.as_deref(), Some("mcp:tools mcp:admin"));
    assert_eq!(
        e.description,
        format!("the token lacks the scope mcp:admin required by {ISSUER}")
    );
    // `scp` as an array (Azure AD, Okta) is read when `scope` is absent.
    let mut scp = claims();
    scp.as_object_mut().unwrap().remove("scope");
    scp["scp"] = json!(["mcp:tools", "mcp:admin"]);
    check(&a, &ec.sign(&scp)).await.unwrap();
}

#[tokio::test]
async fn claims_map_to_user_teams_and_the_control_plane() {
    let ec = TestKey::ec("e1");
    let fetch = FakeFetch::provider(&[&ec]);
    let cfg = OidcConfig {
        user_claim: "email".into(),
        teams_claim: "realm_access.roles".into(),
        control_plane: vec![
            ControlPlaneGrant::Scope("gantry:admin".into()),
            ControlPlaneGrant::Claim {
                claim: "role".into(),
                value: "gantry-admin".into(),
            },
        ],
        ..config()
    };
    let a = ready(cfg, &fetch).await;
    let c = with(claims(), "email", json!("alice@example.com"));
    let c = with(c, "realm_access", json!({"roles": ["eng"]}));
    let id = check(&a, &ec.sign(&c)).await.unwrap();
    assert_eq!(id.subject, "alice@example.com");
    assert_eq!(id.teams, ["eng"]);
    assert_eq!(id.planes, Planes::DATA);
    let admin = with(c.clone(), "scope", json!("mcp:tools gantry:admin"));
    assert_eq!(
        check(&a, &ec.sign(&admin)).await.unwrap().planes,
        Planes::BOTH
    );
    let admin = with(c.clone(), "role", json!("gantry-admin"));
    assert_eq!(
        check(&a, &ec.sign(&admin)).await.unwrap().planes,
        Planes::BOTH
    );
    // A single team as a string.
    let one = with(c, "realm_access", json!({"roles": "ops"}));
    assert_eq!(check(&a, &ec.sign(&one)).await.unwrap().teams, ["ops"]);
    let d = refused(&a, &ec.sign(&claims())).await;
    assert!(
        d.starts_with("the token has no \"email\" claim naming the user"),
        "{d}"
    );
}

#[tokio::test]
async fn an_unreachable_provider_refuses_its_tokens_with_the_reason_and_recovers() {
    let ec = TestKey::ec("e1");
    let fetch = Arc::new(FakeFetch::default());
    let a = OidcAuthenticator::with_fetch(&[config()], fetch.clone()).unwrap();
    assert!(!a.wait_ready(Duration::from_millis(200)).await);
    let d = refused(&a, &ec.sign(&claims())).await;
    assert_eq!(
        d,
        format!(
            "the OpenID provider {ISSUER} could not be reached: \
             {ISSUER}/.well-known/openid-configuration: connection refused"
        )
    );
    // It comes up: the background task retries (after 1 s) and tokens are accepted.
    fetch.set(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        json!({"issuer": ISSUER, "jwks_uri": JWKS}),
    );
    fetch.set(JWKS, jwks(&[&ec]));
    assert!(a.wait_ready(Duration::from_secs(5)).await);
    check(&a, &ec.sign(&claims())).await.unwrap();
}

#[tokio::test]
async fn the_discovery_document_must_name_the_issuer_exactly() {
    let ec = TestKey::ec("e1");
    let fetch = FakeFetch::provider(&[&ec]);
    fetch.set(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        json!({"issuer": format!("{ISSUER}/"), "jwks_uri": JWKS}),
    );
    let a = OidcAuthenticator::with_fetch(&[config()], fetch.clone()).unwrap();
    assert!(!a.wait_ready(Duration::from_millis(200)).await);
    let e = a.status()[0].error.clone().unwrap();
    assert!(
        e.contains(&format!("names issuer \"{ISSUER}/\", not \"{ISSUER}\"")),
        "{e}"
    );
    fetch.set(
        &format!("{ISSUER}/.well-known/openid-configuration"),
        json!({"issuer": ISSUER, "jwks_uri": "http://idp.example.com/certs"}),
    );
    // The background task retries after 1 s; wait (bounded) for its verdict on the new
    // document.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let e = loop {
        let e = a.status()[0].error.clone().unwrap();
        if !e.contains("names issuer") || tokio::time::Instant::now() >= deadline {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(e.contains("plain http"), "{e}");
}

#[test]
fn dates_are_rfc3339() {
    assert_eq!(claims::rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(claims::rfc3339(1_795_255_200), "2026-11-21T10:00:00Z");
    assert_eq!(claims::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(claims::rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
}

#[test]
fn jwks_skips_keys_it_cannot_use() {
    let doc = json!({"keys": [
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "RSA", "alg": "HS256", "n": "AQAB", "e": "AQAB"},
        {"kty": "RSA", "kid": "ok", "n": "AQAB", "e": "AQAB"},
    ]});
    let (set, skipped) = jwks::KeySet::parse(&doc).unwrap();
    assert_eq!((set.keys.len(), skipped), (1, 5));
    assert!(jwks::KeySet::parse(&json!({})).is_err());
}

#[tokio::test]
async fn a_verified_token_is_remembered_but_time_and_audience_are_checked_on_every_use() {
    let ec = TestKey::ec("e1");
    let fetch = FakeFetch::provider(&[&ec]);
    let cfg = OidcConfig {
        leeway: Duration::ZERO,
        ..config()
    };
    let a = ready(cfg, &fetch).await;
    let now = unix_now();
    let token = ec.sign(&with(claims(), "exp", json!(now + 1)));
    for _ in 0..3 {
        check(&a, &token).await.unwrap();
    }
    assert_eq!(a.verified.len(), 1);
    // Its identity is mapped once and shared by every use.
    let ctx = AuthContext { resource: RESOURCE };
    let first = a.authenticate(&token, ctx).await.unwrap().unwrap();
    let again = a.authenticate(&token, ctx).await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    // A remembered token, like anything that is not a JWT, is answered without waiting.
    assert!(matches!(a.authenticate(&token, ctx), AuthFuture::Ready(_)));
    assert!(matches!(
        a.authenticate("gantry_abc_def", ctx),
        AuthFuture::Ready(_)
    ));
    let other = a
        .authenticate(
            &token,
            AuthContext {
                resource: "https://gantry.example.com/mcp/other",
            },
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        other
            .description
            .contains("does not include https://gantry.example.com/mcp/other")
    );
    // Refused tokens are not remembered.
    let _ = refused(&a, &ec.sign(&with(claims(), "exp", json!(now - 10)))).await;
    assert_eq!(a.verified.len(), 1);
    while unix_now() <= now + 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused(&a, &token)
            .await
            .starts_with("the token expired at")
    );
}

/// `cargo test --release -p gantry-auth --lib -- --ignored --nocapture verification_cost`
#[tokio::test]
#[ignore = "timing report, run by hand in release"]
async fn verification_cost() {
    let (rsa, ec) = (TestKey::rsa("r1", 1), TestKey::ec("e1"));
    let fetch = FakeFetch::provider(&[&rsa, &ec]);
    let a = ready(config(), &fetch).await;
    let ctx = AuthContext { resource: RESOURCE };
    for key in [&rsa, &ec] {
        let n = 2000;
        let tokens: Vec<String> = (0..n)
            .map(|i| key.sign(&with(claims(), "jti", json!(i))))
            .collect();
        let start = Instant::now();
        for t in &tokens {
            a.authenticate(t, ctx).await.unwrap().unwrap();
        }
        let first = start.elapsed() / n;
        let start = Instant::now();
        for t in &tokens {
            a.authenticate(t, ctx).await.unwrap().unwrap();
        }
        let again = start.elapsed() / n;
        println!(
            "{}: first use {first:?} per token, remembered {again:?}",
            key.default_alg()
        );
    }
}
