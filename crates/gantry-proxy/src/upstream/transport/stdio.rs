//! A server run as a child process, speaking newline-delimited JSON-RPC on stdin/stdout.
//!
//! The child gets its own process group so that shutting it down also ends whatever it
//! started (`npx` → `node`, `uvx` → `python`). Its stderr is free-form logging and goes to
//! Gantry's log; stdout must carry only messages, and lines that are not JSON-RPC are logged
//! and skipped rather than taken as a reason to drop the server.

use std::process::Stdio;
use std::time::Duration;

use gantry_config::StdioConfig;
use gantry_core::Message;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdin, Command};
use tokio::sync::{Mutex, watch};

use super::{EventSender, TransportContext, TransportError, TransportEvent};

/// How long a child gets to exit after its stdin closes, and again after SIGTERM.
const GRACE: Duration = Duration::from_secs(2);

/// A running stdio server.
pub(crate) struct StdioTransport {
    stdin: Mutex<Option<ChildStdin>>,
    pgid: Pid,
    /// `Some(status)` once the child has exited and been reaped.
    exited: watch::Receiver<Option<String>>,
}

// === impl StdioTransport ===

impl StdioTransport {
    /// Starts the process and the tasks that read its stdout and stderr.
    pub(crate) fn spawn(
        cfg: &StdioConfig,
        max_message_bytes: usize,
        ctx: &TransportContext,
        events: EventSender,
    ) -> Result<StdioTransport, TransportError> {
        let mut cmd = Command::new(&cfg.command);
        cmd.args(&cfg.args)
            .envs(cfg.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = &cfg.cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| TransportError::Connect(format!("cannot start {:?}: {e}", cfg.command)))?;
        let pid = child
            .id()
            .ok_or_else(|| TransportError::Connect(format!("{:?} exited at once", cfg.command)))?;
        let pgid = Pid::from_raw(pid as i32);
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        let (exit_tx, exited) = watch::channel(None);
        tokio::spawn(async move {
            let status = match child.wait().await {
                Ok(s) => s.to_string(),
                Err(e) => format!("unknown status ({e})"),
            };
            let _ = exit_tx.send(Some(status));
        });
        tokio::spawn(log_stderr(ctx.server.clone(), stderr));
        tokio::spawn(read_stdout(
            ctx.server.clone(),
            stdout,
            max_message_bytes,
            events,
            exited.clone(),
        ));
        tracing::debug!(server = %ctx.server, pid, "started stdio server");
        Ok(StdioTransport {
            stdin: Mutex::new(stdin),
            pgid,
            exited,
        })
    }

    /// Writes one message as a line.
    pub(crate) async fn send(&self, msg: &Message) -> Result<(), TransportError> {
        let mut line = msg.to_vec();
        line.push(b'\n');
        let mut guard = self.stdin.lock().await;
        let stdin = guard
            .as_mut()
            .ok_or_else(|| TransportError::Closed("stdin is closed".into()))?;
        let res = async {
            stdin.write_all(&line).await?;
            stdin.flush().await
        }
        .await;
        res.map_err(|e| TransportError::Closed(format!("cannot write to the process: {e}")))
    }

    /// Ends the process group: close stdin, then SIGTERM, then SIGKILL, waiting `GRACE` for
    /// an exit after each step.
    pub(crate) async fn close(&self) {
        drop(self.stdin.lock().await.take());
        if self.wait_exit(GRACE).await {
            // The leader is gone; make sure nothing it started lingers.
            let _ = killpg(self.pgid, Signal::SIGKILL);
            return;
        }
        let _ = killpg(self.pgid, Signal::SIGTERM);
        if !self.wait_exit(GRACE).await {
            tracing::warn!(pgid = %self.pgid, "stdio server ignored SIGTERM; killing its process group");
        }
        let _ = killpg(self.pgid, Signal::SIGKILL);
        self.wait_exit(GRACE).await;
    }

    async fn wait_exit(&self, limit: Duration) -> bool {
        let mut rx = self.exited.clone();
        tokio::time::timeout(limit, rx.wait_for(Option::is_some))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl Drop for StdioTransport {
    fn drop(&mut self) {
        // Dropped without close(): nothing of the group may outlive us.
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
}

/// Copies the child's stderr into Gantry's log, line by line.
async fn log_stderr(server: std::sync::Arc<str>, stderr: impl AsyncRead + Unpin) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "gantry::upstream::stderr", server = %server, "{line}");
    }
}

/// Reads messages from stdout until it closes, then reports why.
async fn read_stdout(
    server: std::sync::Arc<str>,
    stdout: impl AsyncRead + Unpin,
    max: usize,
    events: EventSender,
    mut exited: watch::Receiver<Option<String>>,
) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::with_capacity(4096);
    let reason = loop {
        match read_line_bounded(&mut reader, &mut line, max).await {
            Ok(LineRead::Eof) => break None,
            Ok(LineRead::TooLong) => {
                tracing::warn!(server = %server, max, "dropped a stdout line longer than max_message_bytes");
                continue;
            }
            Ok(LineRead::Line) => {}
            Err(e) => break Some(format!("reading stdout failed: {e}")),
        }
        let bytes = line.trim_ascii();
        if bytes.is_empty() {
            continue;
        }
        match Message::from_slice(bytes) {
            Ok(msg) => {
                if events
                    .send(TransportEvent::Message { msg, related: None })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
                tracing::warn!(server = %server, error = %e, line = %shown, "ignored a stdout line that is not a JSON-RPC message");
            }
        }
    };
    let reason = match reason {
        Some(r) => r,
        None => {
            let status = tokio::time::timeout(GRACE, exited.wait_for(Option::is_some))
                .await
                .ok()
                .and_then(|r| r.ok().and_then(|s| s.clone()));
            match status {
                Some(s) => format!("process exited ({s})"),
                None => "process closed its stdout".to_owned(),
            }
        }
    };
    let _ = events.send(TransportEvent::Closed { reason }).await;
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads up to the next `\n` into `buf` without ever holding more than `max` bytes.
async fn read_line_bounded<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if buf.is_empty() && !too_long {
                LineRead::Eof
            } else if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
        let (take, done) = match memchr(chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + take > max + 1 {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        reader.consume(take);
        if done {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}
