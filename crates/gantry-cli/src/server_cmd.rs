//! `gantry server list`: the configured servers with their live health, asked of a running
//! gateway's admin API (`GET /admin/api/v1/servers`) with a control-plane key.
//!
//! The gateway is found at `--url`, else `GANTRY_URL`, else the config's `public_url` or
//! `http://<listen>`; the key is `--key`, else `GANTRY_KEY`. Without a key the command lists
//! the configured servers from the config alone (status `unknown`) and says so on stderr.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// `gantry server ...`.
#[derive(clap::Subcommand)]
pub(crate) enum ServerCommand {
    /// The configured servers with their status, reason, last error, last check and
    /// restarts, from the running gateway.
    List {
        /// Config file (locates the gateway when --url and GANTRY_URL are not set).
        #[arg(long, short, default_value = "gantry.toml")]
        config: PathBuf,
        /// The gateway's base URL, e.g. http://127.0.0.1:8848 (or GANTRY_URL).
        #[arg(long)]
        url: Option<String>,
        /// A control-plane API key (or GANTRY_KEY).
        #[arg(long)]
        key: Option<String>,
        /// Print JSON (the admin API's server objects).
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(cmd: ServerCommand) -> anyhow::Result<()> {
    let ServerCommand::List {
        config,
        url,
        key,
        json,
    } = cmd;
    let loaded = gantry_config::load(&config);
    let key = key.or_else(|| std::env::var("GANTRY_KEY").ok().filter(|k| !k.is_empty()));
    let Some(key) = key else {
        let c = loaded?;
        eprintln!(
            "note: no control-plane key (--key or GANTRY_KEY): listing the servers of {} without their live status",
            config.display()
        );
        let servers: Vec<Value> = c
            .servers
            .values()
            .map(|s| {
                let transport = s.transport.kind();
                json!({"name": s.name, "transport": transport, "status": "unknown", "health": null})
            })
            .collect();
        return print(&servers, json);
    };
    let base = match url.or_else(|| std::env::var("GANTRY_URL").ok().filter(|u| !u.is_empty())) {
        Some(u) => u,
        None => loaded.map(|c| c.public_base()).with_context(|| {
            format!(
                "cannot find the gateway: pass --url or set GANTRY_URL, or fix {}",
                config.display()
            )
        })?,
    };
    let target = format!("{}/admin/api/v1/servers", base.trim_end_matches('/'));
    let (status, body) = get(&target, &key)
        .await
        .with_context(|| format!("cannot reach the gateway at {base}"))?;
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status != 200 {
        let why = doc
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
        bail!("GET {target} answered {status}: {why}");
    }
    let servers = doc
        .get("servers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    print(&servers, json)
}

fn print(servers: &[Value], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(servers)?);
        return Ok(());
    }
    let s = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let rows: Vec<[String; 7]> = servers
        .iter()
        .map(|v| {
            [
                s(v, "/name"),
                s(v, "/transport"),
                v.pointer("/health/status")
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| v["status"].as_str().unwrap_or("-"))
                    .to_owned(),
                s(v, "/health/reason"),
                s(v, "/health/last_error"),
                s(v, "/health/last_check_at"),
                v.pointer("/health/restarts")
                    .and_then(Value::as_u64)
                    .map_or("-".into(), |n| n.to_string()),
            ]
        })
        .collect();
    let head = [
        "NAME",
        "TRANSPORT",
        "STATUS",
        "REASON",
        "LAST ERROR",
        "LAST CHECK",
        "RESTARTS",
    ];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count()).min(60);
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let c: String = if c.chars().count() > 60 {
                c.chars().take(59).chain(['…']).collect()
            } else {
                c.clone()
            };
            let _ = write!(l, "{c:<w$}  ", w = width[i]);
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line(&mut out, &head.map(str::to_owned));
    for r in &rows {
        line(&mut out, r);
    }
    print!("{out}");
    Ok(())
}

/// A plain-HTTP GET with a bearer key (bounded), through hyper-util's client (the one the
/// OIDC key fetches use; the gateway's upstreams have their own).
async fn get(url: &str, key: &str) -> anyhow::Result<(u16, Bytes)> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("{url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("only http:// gateway URLs are supported (got {url:?})");
    }
    let req = http::Request::get(uri)
        .header(http::header::AUTHORIZATION, format!("Bearer {key}"))
        .header(http::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let exchange = async {
        let resp = client.request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(15), exchange)
        .await
        .context("no answer within 15 s")?
}
