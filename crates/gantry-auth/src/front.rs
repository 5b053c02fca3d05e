//! What every protected surface does before it knows who is calling: read the bearer token,
//! and slow down sources that keep presenting bad credentials.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{AuthError, AuthErrorCode};

/// The token of an `Authorization: Bearer <token>` header value; `Ok(None)` without a header.
///
/// Another scheme, an empty token or a value that is not text is `invalid_request`: the client
/// sent something, and silently treating it as anonymous would hide its mistake.
pub fn bearer(header: Option<&[u8]>) -> Result<Option<&str>, AuthError> {
    let Some(raw) = header else {
        return Ok(None);
    };
    let invalid = |why: &str| AuthError::new(AuthErrorCode::InvalidRequest, why.to_owned());
    let value = std::str::from_utf8(raw)
        .map_err(|_| invalid("the Authorization header is not valid text"))?
        .trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(invalid(
            "the Authorization header must use the Bearer scheme: Authorization: Bearer <token>",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(invalid(
            "the Authorization header has an empty bearer token",
        ));
    }
    Ok(Some(token))
}

/// Failed authentications per source address: after `max` failures within `window`, the
/// source is refused until the window has passed, without checking its credential.
///
/// The table is bounded: when it is full, entries whose window has passed are dropped, and if
/// none has, sources not in the table are refused until one has (failing closed: an attacker
/// with more addresses than the table can neither evict the ones being limited nor try
/// unlimited guesses from fresh ones).
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    capacity: usize,
    sources: Mutex<HashMap<IpAddr, Failures>>,
    /// How many sources the table holds, readable without the lock: every request with a
    /// credential is checked and every successful one asks to forget its source, and almost
    /// always there is nothing to find.
    tracked: AtomicUsize,
}

#[derive(Clone, Copy)]
struct Failures {
    since: Instant,
    count: u32,
}

impl FailureLimiter {
    /// At most `max` failures per source within `window`, tracking at most `capacity` sources.
    pub fn new(max: u32, window: Duration, capacity: usize) -> FailureLimiter {
        FailureLimiter {
            max,
            window,
            capacity,
            sources: Mutex::new(HashMap::new()),
            tracked: AtomicUsize::new(0),
        }
    }

    /// `Err(retry_after)` if `source` must wait before it may try again.
    pub fn check(&self, source: IpAddr) -> Result<(), Duration> {
        // Every authenticated request asks; while no source has failed there is nothing to
        // look up, and no lock for concurrent requests to queue on.
        if self.tracked.load(Ordering::Relaxed) == 0 && self.capacity > 0 {
            return Ok(());
        }
        let mut sources = self.sources.lock().expect("limiter lock");
        if sources.len() >= self.capacity && !sources.contains_key(&source) {
            let window = self.window;
            sources.retain(|_, f| f.since.elapsed() < window);
            self.tracked.store(sources.len(), Ordering::Relaxed);
            if sources.len() >= self.capacity {
                let oldest = sources.values().map(|f| f.since.elapsed()).max();
                return Err(window.saturating_sub(oldest.unwrap_or_default()));
            }
        }
        match sources.get(&source) {
            Some(f) if f.count >= self.max => {
                let elapsed = f.since.elapsed();
                if elapsed < self.window {
                    Err(self.window - elapsed)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Records a failed authentication from `source`.
    pub fn failed(&self, source: IpAddr) {
        let now = Instant::now();
        let mut sources = self.sources.lock().expect("limiter lock");
        if sources.len() >= self.capacity && !sources.contains_key(&source) {
            let window = self.window;
            sources.retain(|_, f| now.duration_since(f.since) < window);
            self.tracked.store(sources.len(), Ordering::Relaxed);
            if sources.len() >= self.capacity {
                return;
            }
        }
        let f = sources.entry(source).or_insert(Failures {
            since: now,
            count: 0,
        });
        if now.duration_since(f.since) >= self.window {
            *f = Failures {
                since: now,
                count: 0,
            };
        }
        f.count += 1;
        self.tracked.store(sources.len(), Ordering::Relaxed);
    }

    /// Forgets `source`'s failures (it authenticated).
    pub fn succeeded(&self, source: IpAddr) {
        if self.tracked.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut sources = self.sources.lock().expect("limiter lock");
        sources.remove(&source);
        self.tracked.store(sources.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_and_mistakes() {
        assert_eq!(bearer(None).unwrap(), None);
        assert_eq!(bearer(Some(b"Bearer abc")).unwrap(), Some("abc"));
        assert_eq!(bearer(Some(b"bearer  abc ")).unwrap(), Some("abc"));
        for bad in [
            &b"Basic dXNlcjpwdw=="[..],
            b"Bearer",
            b"Bearer   ",
            b"abc",
            b"\xff",
        ] {
            let e = bearer(Some(bad)).unwrap_err();
            assert_eq!(e.code, AuthErrorCode::InvalidRequest, "{bad:?}");
        }
    }

    #[test]
    fn a_source_is_refused_after_max_failures_and_others_are_not() {
        let l = FailureLimiter::new(3, Duration::from_secs(60), 100);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
            l.failed(a);
        }
        let wait = l.check(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        assert!(l.check(b).is_ok());
        l.succeeded(a);
        assert!(l.check(a).is_ok());
    }

    #[test]
    fn an_expired_window_starts_over() {
        let l = FailureLimiter::new(1, Duration::ZERO, 100);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        l.failed(a);
        assert!(l.check(a).is_ok(), "a zero window never limits");
    }

    #[test]
    fn a_full_table_does_not_grow() {
        let l = FailureLimiter::new(1, Duration::from_secs(60), 2);
        for i in 0..10u8 {
            l.failed(IpAddr::from([10, 0, 0, i]));
        }
        assert_eq!(l.sources.lock().unwrap().len(), 2);
        assert!(l.check(IpAddr::from([10, 0, 0, 0])).is_err());
        // A source the full table has no room for is refused too, not waved through.
        assert!(l.check(IpAddr::from([10, 0, 0, 9])).is_err());
    }
}
