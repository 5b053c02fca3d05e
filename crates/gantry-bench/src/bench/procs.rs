//! The processes under test: starting them (pinned to a core when `taskset` exists), waiting
//! until they answer (by polling, never by a fixed sleep), reading their memory and CPU time
//! from `/proc`, and stopping them.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::client::Conn;

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(10);

/// Where things run.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Cores {
    /// Processes under test are started with `taskset -c <core>`.
    pub(crate) pinned: bool,
    /// Core of the load generator (this process), when pinned.
    pub(crate) loadgen_core: Option<u32>,
    /// Core shared by the upstreams and Gantry, when pinned.
    pub(crate) servers_core: Option<u32>,
    /// Cores online.
    pub(crate) online: usize,
    /// One sentence for the report.
    pub(crate) description: String,
}

/// Pins this process to core 0 and plans core 1 for the servers, as DESIGN.md §8 describes,
/// when `taskset` exists and there are two cores. Call before any thread is started.
pub(crate) fn plan_cores(allow: bool) -> Cores {
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let have_taskset = Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let why_not = if !allow {
        Some("pinning disabled (--no-pin)")
    } else if !have_taskset {
        Some("taskset not found")
    } else if online < 2 {
        Some("fewer than 2 cores available")
    } else {
        None
    };
    if let Some(why) = why_not {
        return Cores {
            pinned: false,
            loadgen_core: None,
            servers_core: None,
            online,
            description: format!(
                "not pinned ({why}): load generator, upstreams and Gantry share all {online} core(s)"
            ),
        };
    }
    let pinned_self = Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    Cores {
        pinned: true,
        loadgen_core: pinned_self.then_some(0),
        servers_core: Some(1),
        online,
        description: if pinned_self {
            "load generator pinned to core 0; bench-upstream and Gantry (and Gantry's stdio child) share core 1 (taskset)".into()
        } else {
            "bench-upstream and Gantry share core 1 (taskset); the load generator could not be pinned and floats".into()
        },
    }
}

/// A process the bench started. Dropping it stops it (SIGTERM, then SIGKILL).
pub(crate) struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Starts `program args`, on `cores.servers_core` when pinned; stdout and stderr go to
    /// `<dir>/<name>.log`.
    pub(crate) fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        cores: &Cores,
        dir: &Path,
    ) -> anyhow::Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = match cores.servers_core {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(core.to_string()).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args).stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({})", program.display()))?;
        Ok(Proc {
            name: name.to_owned(),
            child: Some(child),
            log,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// An error with the end of the log when the process has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            bail!("{} was stopped", self.name);
        };
        if let Some(status) = child.try_wait()? {
            bail!(
                "{} exited ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// The last lines of the process's output.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Polls `GET /healthz` on `addr` until it answers 200.
    pub(crate) async fn wait_healthy(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            self.check_alive()?;
            if let Ok(mut c) = Conn::connect(addr).await
                && let Ok((status, _)) = c.get("/healthz").await
                && status.is_success()
            {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!(
                    "{} did not answer /healthz on {addr} within {timeout:?}; last lines:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Resident memory (`VmRSS`) in KiB.
    pub(crate) fn rss_kib(&self) -> anyhow::Result<u64> {
        rss_kib_of(self.pid()).with_context(|| format!("no VmRSS for {} in /proc", self.name))
    }

    /// Stops the process: SIGTERM, up to 5 s to exit, then SIGKILL.
    pub(crate) fn stop(&mut self) {
        let _ = self.signal(nix::sys::signal::Signal::SIGTERM);
        let Some(mut child) = self.child.take() else {
            return;
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// User + system CPU time of `pid` (0 = this process) so far, in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let path = if pid == 0 {
        "/proc/self/stat".to_owned()
    } else {
        format!("/proc/{pid}/stat")
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces:
    // state(3) … utime(14) stime(15).
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that fails, the Linux default).
pub(crate) fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100)
}

/// A loopback port that was free a moment ago (the process told to use it binds it soon
/// after; a clash shows up as a failed start, not as wrong figures).
pub(crate) fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?)
}

impl Proc {
    /// Whether the process is still ours to signal (started, not reaped).
    pub(crate) fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Sends `signal` to the process (not its group); never to a reaped one.
    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        if !self.running() {
            bail!("{} has exited", self.name);
        }
        let pid = i32::try_from(self.pid()).context("pid out of range")?;
        if pid <= 0 {
            bail!("{} has no pid", self.name);
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
            .with_context(|| format!("cannot signal {} ({signal})", self.name))
    }

    /// SIGKILL and reap at once (SIGKILL cannot be ignored, so the wait is short).
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The exit status, once the process has exited (it is reaped then, and forgotten:
    /// nothing is signalled under its pid any more).
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }
}

/// What `/proc/<pid>/stat` says about a process.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ProcInfo {
    pub(crate) pid: u32,
    pub(crate) ppid: u32,
    pub(crate) pgid: u32,
    /// `R`, `S`, `Z`, …
    pub(crate) state: char,
    /// Start time in clock ticks after boot: a pid with another start time is another process.
    pub(crate) start: u64,
    /// The command line, space-separated.
    pub(crate) cmd: String,
}

/// One process, if it exists.
pub(crate) fn proc_info(pid: u32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid pgrp … starttime(22)
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Some(ProcInfo {
        pid,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgid: f.get(2)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
        cmd,
    })
}

/// Every process visible in `/proc`.
pub(crate) fn all_processes() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(proc_info)
        .collect()
}

/// The descendants of `pid` (children, their children, …), found by parent pid.
pub(crate) fn descendants(pid: u32) -> Vec<ProcInfo> {
    if pid == 0 {
        return Vec::new();
    }
    let all = all_processes();
    let mut out: Vec<ProcInfo> = Vec::new();
    let mut parents = vec![pid];
    while let Some(p) = parents.pop() {
        for c in all.iter().filter(|c| c.ppid == p) {
            if !out.iter().any(|o| o.pid == c.pid) {
                parents.push(c.pid);
                out.push(c.clone());
            }
        }
    }
    out
}

/// The value of environment variable `key` in process `pid` (readable for our own user's
/// processes; a zombie has none).
pub(crate) fn env_of(pid: u32, key: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|&c| c == 0).find_map(|e| {
        let v = e.strip_prefix(key.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(v).into_owned())
    })
}

/// Resident memory (`VmRSS`) of `pid` in KiB.
pub(crate) fn rss_kib_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_child_by_parent_and_marker() {
        let mut child = Command::new("sleep")
            .arg("5")
            .env("GANTRY_SOAK_TEST_MARK", "m-1")
            .spawn()
            .expect("sleep");
        let pid = child.id();
        let mine = descendants(std::process::id());
        let found = mine.iter().find(|p| p.pid == pid).cloned();
        let marker = env_of(pid, "GANTRY_SOAK_TEST_MARK");
        let _ = child.kill();
        let _ = child.wait();
        let found = found.expect("the child is a descendant");
        assert_eq!(found.ppid, std::process::id());
        assert!(found.cmd.starts_with("sleep 5"), "{}", found.cmd);
        assert_eq!(marker.as_deref(), Some("m-1"));
        assert!(descendants(0).is_empty());
        // Reaped: gone, or at least not the same process any more.
        assert!(proc_info(pid).is_none_or(|p| p.start != found.start));
    }
}
