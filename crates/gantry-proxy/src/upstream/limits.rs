//! Bounds on the calls in flight: per server (`max_in_flight`, over all its lanes) and for
//! the whole gateway (so that a graceful shutdown can wait for the calls still running).
//!
//! A call past a server's bound is refused at once with [`code::UPSTREAM_BUSY`] and nothing
//! is sent to the server: there is no queue to grow. While the gateway drains (after
//! SIGTERM) new calls are refused with [`code::UPSTREAM_UNAVAILABLE`] and the calls in flight
//! finish. Cost on the hot path: two atomic increments and two decrements per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gantry_core::RpcError;
use gantry_core::protocol::code;
use tokio::sync::Notify;

/// The gateway-wide count of calls in flight, and whether the gateway is draining.
#[derive(Default)]
pub struct Drain {
    in_flight: AtomicUsize,
    draining: AtomicBool,
    /// Woken when `in_flight` drops to 0.
    idle: Notify,
}

impl Drain {
    /// Calls in flight to any server.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Stops taking new calls and waits up to `grace` for those in flight to finish; returns
    /// how many were still in flight when it stopped waiting.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.draining.store(true, Ordering::Release);
        let wait = async {
            loop {
                let idle = self.idle.notified();
                tokio::pin!(idle);
                idle.as_mut().enable();
                if self.in_flight() == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(grace, wait).await;
        self.in_flight()
    }

    /// Whether the gateway stopped taking new calls.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// The bound of one server, shared by its lanes.
pub(crate) struct Limiter {
    server: Arc<str>,
    max: usize,
    count: AtomicUsize,
    drain: Arc<Drain>,
}

impl Limiter {
    pub(crate) fn new(server: Arc<str>, max: usize, drain: Arc<Drain>) -> Arc<Limiter> {
        Arc::new(Limiter {
            server,
            max: max.max(1),
            count: AtomicUsize::new(0),
            drain,
        })
    }

    /// Calls in flight to this server.
    pub(crate) fn in_flight(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// A place for one call, or the error to answer at once.
    pub(crate) fn acquire(self: &Arc<Self>) -> Result<Permit, RpcError> {
        if self.drain.is_draining() {
            return Err(RpcError::new(
                code::UPSTREAM_UNAVAILABLE,
                format!(
                    "server {} takes no new calls: the gateway is shutting down",
                    self.server
                ),
            ));
        }
        let before = self.count.fetch_add(1, Ordering::AcqRel);
        if before >= self.max {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return Err(RpcError::new(
                code::UPSTREAM_BUSY,
                format!(
                    "server {} is busy: {} calls in flight (max_in_flight = {}); nothing was sent, retry later",
                    self.server, before, self.max
                ),
            ));
        }
        self.drain.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok(Permit {
            limiter: self.clone(),
        })
    }
}

/// One call's place; dropping it frees the place.
pub(crate) struct Permit {
    limiter: Arc<Limiter>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.count.fetch_sub(1, Ordering::AcqRel);
        let drain = &self.limiter.drain;
        if drain.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            drain.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_bound_calls_are_refused_and_places_come_back() {
        let drain = Arc::new(Drain::default());
        let l = Limiter::new("s".into(), 2, drain.clone());
        let a = l.acquire().unwrap();
        let b = l.acquire().unwrap();
        let Err(e) = l.acquire() else {
            panic!("a third call must be refused")
        };
        assert_eq!(e.code, code::UPSTREAM_BUSY);
        assert_eq!(
            e.message,
            "server s is busy: 2 calls in flight (max_in_flight = 2); nothing was sent, retry later"
        );
        assert_eq!(l.in_flight(), 2);
        assert_eq!(drain.in_flight(), 2);
        drop(a);
        let c = l.acquire().unwrap();
        drop((b, c));
        assert_eq!(l.in_flight(), 0);
        assert_eq!(drain.in_flight(), 0);
    }

    #[tokio::test]
    async fn drain_waits_for_calls_in_flight_and_refuses_new_ones() {
        let drain = Arc::new(Drain::default());
        let l = Limiter::new("s".into(), 8, drain.clone());
        let p = l.acquire().unwrap();
        let waiter = tokio::spawn({
            let drain = drain.clone();
            async move { drain.drain(Duration::from_secs(30)).await }
        });
        tokio::time::timeout(Duration::from_secs(5), async {
            while !drain.is_draining() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        let Err(e) = l.acquire() else {
            panic!("no new calls while draining")
        };
        assert_eq!(e.code, code::UPSTREAM_UNAVAILABLE);
        assert!(e.message.contains("shutting down"), "{}", e.message);
        drop(p);
        let left = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(left, 0);
    }

    #[tokio::test]
    async fn drain_gives_up_after_the_grace_period() {
        let drain = Arc::new(Drain::default());
        let l = Limiter::new("s".into(), 8, drain.clone());
        let _p = l.acquire().unwrap();
        let left = drain.drain(Duration::from_millis(20)).await;
        assert_eq!(left, 1);
    }
}
