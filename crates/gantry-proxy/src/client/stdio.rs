//! The stdio front: one session, newline-delimited JSON-RPC on stdin and stdout, for clients
//! that can only start a process (`gantry stdio --endpoint <name>`). Logs go to stderr.

use std::sync::Arc;

use gantry_core::jsonrpc::error_without_id;
use gantry_core::{Message, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::Gateway;
use crate::endpoint::Endpoint;
use crate::session::CLIENT_QUEUE;

/// Serves one client on stdin/stdout until stdin closes.
pub async fn serve(gw: Arc<Gateway>, ep: Arc<Endpoint>) -> std::io::Result<()> {
    let session = gw.open_session(&ep);
    let (tx, mut rx) = mpsc::channel::<Message>(CLIENT_QUEUE);
    // Errors for lines whose id could not be read carry `"id": null`, which is no `Message`.
    let (raw_tx, mut raw_rx) = mpsc::channel::<Vec<u8>>(CLIENT_QUEUE);
    session.set_outbox(Some(tx.clone()));
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        loop {
            let mut line = tokio::select! {
                Some(msg) = rx.recv() => msg.to_vec(),
                Some(raw) = raw_rx.recv() => raw,
                else => break,
            };
            line.push(b'\n');
            if out.write_all(&line).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        match Message::from_slice(line.as_bytes()) {
            Ok(msg) => gw.accept(&session, msg, Some(tx.clone())),
            Err(e) => {
                let reply = match e.id {
                    Some(id) => Message::Response(Response::err(id, e.error)).to_vec(),
                    None => error_without_id(&e.error),
                };
                let _ = raw_tx.send(reply).await;
            }
        }
    }
    gw.close_session(session.id());
    drop(tx);
    drop(raw_tx);
    let _ = writer.await;
    Ok(())
}
