//! `bench-upstream`: a deliberately minimal MCP server, for benchmarking only.
//!
//! The budgets in DESIGN.md §8 are ratios "gateway vs direct to the same upstream", so the
//! upstream must be cheap and predictable: if it cost as much as the gateway, every ratio would
//! flatter the gateway. It is written straight on hyper 1 + tokio (no MCP SDK, no schema
//! validation, a single-threaded runtime) and answers with pre-rendered JSON where it can.
//!
//! It speaks both eras on Streamable HTTP at `/mcp` (and any `/mcp/<path>`, so one process
//! can stand for many servers):
//! - legacy (2024-11-05 … 2025-11-25): `initialize` mints an `Mcp-Session-Id`, later requests
//!   must carry it (400 without, 404 unknown), `GET` is 405, `DELETE` ends the session;
//! - 2026-07-28 stateless: `server/discover`, per-request `_meta` version, `Mcp-Method` /
//!   `Mcp-Name` checked against the body (-32020), `resultType: "complete"` on results.
//!
//! With `--stdio` it speaks the legacy era as newline-delimited JSON-RPC on stdin/stdout.
//! `GET /stats` reports how many requests and `tools/call`s it served, so the bench can check
//! that one client call causes exactly one upstream request.

mod http;
mod mcp;
mod stdio;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

/// A minimal MCP server for the Gantry benchmark.
#[derive(Parser)]
#[command(name = "bench-upstream", version, about)]
struct Cli {
    /// Address to serve Streamable HTTP on (`/mcp`, `/mcp/<any>`, `/healthz`, `/stats`).
    #[arg(long, default_value = "127.0.0.1:3300")]
    listen: SocketAddr,
    /// Speak the legacy era on stdin/stdout instead of HTTP.
    #[arg(long)]
    stdio: bool,
    /// Extra dummy tools `tool_0` … `tool_{N-1}` besides `echo` and `payload`.
    #[arg(long, default_value_t = 0)]
    tools: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let server = Arc::new(mcp::Server::new(cli.tools));
    let result = if cli.stdio {
        stdio::serve(&server)
    } else {
        http::serve(server, cli.listen)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-upstream: {e:#}");
            ExitCode::FAILURE
        }
    }
}
