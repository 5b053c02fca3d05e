//! A server run as a child process, speaking newline-delimited JSON-RPC on stdin/stdout.
//!
//! The child gets its own process group so that shutting it down also ends whatever it
//! started (`npx` → `node`, `uvx` → `python`). Its stderr is free-form logging and goes to
//! Gantry's log; stdout must carry only messages, and lines that are not JSON-RPC are logged
//! and skipped rather than taken as a reason to drop the server.

use std::process::Stdio;
use std::time::Duration;

use gantry_config::StdioConfig;
use gantry_core::protocol::code;
use gantry_core::{Id, Message, RpcError};
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
    let mut ignored: u64 = 0;
    let reason = loop {
        match read_line_bounded(&mut reader, &mut line, max).await {
            Ok(LineRead::Eof) => break None,
            Ok(LineRead::TooLong) => {
                // `line` holds the start of the line: if it is a response, its caller learns
                // why at once instead of waiting for the timeout.
                let id = response_id(&line);
                tracing::warn!(server = %server, max, ?id, "dropped a stdout line longer than max_message_bytes");
                if let Some(id) = id {
                    let error = RpcError::new(
                        code::INTERNAL_ERROR,
                        format!(
                            "server {server} sent a response larger than max_message_bytes \
                             ({max} bytes); it was dropped"
                        ),
                    );
                    if events
                        .send(TransportEvent::Failed { id, error })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
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
                // Logged, but not without bound: a server printing garbage in a loop must
                // not flood the log.
                ignored += 1;
                if ignored <= 10 || ignored.is_power_of_two() {
                    let shown =
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
                    tracing::warn!(server = %server, error = %e, line = %shown, ignored, "ignored a stdout line that is not a JSON-RPC message");
                }
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

/// The numeric id of a JSON-RPC response, read from the start of its line (`"id"` is
/// usually among the first keys); `None` when it is not found there or the line is a request.
fn response_id(head: &[u8]) -> Option<Id> {
    let text = std::str::from_utf8(head)
        .unwrap_or_else(|e| std::str::from_utf8(&head[..e.valid_up_to()]).expect("valid prefix"));
    if !text.trim_start().starts_with('{') || text.contains("\"method\"") {
        return None;
    }
    let at = text.find("\"id\"")? + 4;
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '-')
        .unwrap_or(rest.len());
    // The number must be complete (something follows it in the line).
    if end == rest.len() {
        return None;
    }
    rest[..end].parse::<i64>().ok().map(Id::Num)
}

/// How much of a too-long line is kept, to find its id.
const HEAD: usize = 256;

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
                // Keep the head only.
                let room = HEAD.saturating_sub(buf.len());
                buf.extend_from_slice(&chunk[..take.min(room)]);
                buf.truncate(HEAD);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_of_a_response_is_found_at_the_start_of_its_line() {
        assert_eq!(
            response_id(br#"{"jsonrpc":"2.0","id":42,"result":{"content":[{"text":"xxxx"#),
            Some(Id::Num(42))
        );
        assert_eq!(
            response_id(br#"{"id" : 7 , "jsonrpc":"2.0","result"#),
            Some(Id::Num(7))
        );
        // A request from the server, an id cut off, no id, not JSON.
        assert_eq!(
            response_id(br#"{"jsonrpc":"2.0","id":3,"method":"sampling/createMessage""#),
            None
        );
        assert_eq!(response_id(br#"{"jsonrpc":"2.0","id":12"#), None);
        assert_eq!(response_id(br#"{"jsonrpc":"2.0","result":{"a":"#), None);
        assert_eq!(response_id(b"garbage \"id\": 5,"), None);
        assert_eq!(response_id(&[0xff, 0xfe, b'{']), None);
    }

    #[tokio::test]
    async fn a_too_long_line_keeps_its_head_and_the_next_line_is_read() {
        let mut text = br#"{"jsonrpc":"2.0","id":9,"result":""#.to_vec();
        text.extend(std::iter::repeat_n(b'x', 10_000));
        text.extend_from_slice(b"\"}\n{\"ok\":1}\n");
        let mut reader = BufReader::with_capacity(64, &text[..]);
        let mut line = Vec::new();
        assert!(matches!(
            read_line_bounded(&mut reader, &mut line, 1000)
                .await
                .unwrap(),
            LineRead::TooLong
        ));
        assert_eq!(line.len(), HEAD);
        assert_eq!(response_id(&line), Some(Id::Num(9)));
        assert!(matches!(
            read_line_bounded(&mut reader, &mut line, 1000)
                .await
                .unwrap(),
            LineRead::Line
        ));
        assert_eq!(line, b"{\"ok\":1}\n");
    }
}
