//! Limits on password guessing, for the login form and the password change.
//!
//! Two limits: attempts per client address (one address cannot try many accounts), and failures
//! per account **and** address: after [`FAILURES_BEFORE_LOCK`] failures in a row the pair is
//! locked for a minute, then for twice as long after each further failure, up to
//! [`LONGEST_LOCK`]. An attacker from one address thus locks only themselves out, never the
//! real user from theirs. A success clears the pair's count.
//!
//! The counts live in this node's memory, or in Redis when `redis_url` is set so that every
//! node sees them (under a namespace of the installation's own, so that installations sharing
//! a Redis do not mix). Accounts are keyed by the SHA-256 of the typed username: neither store
//! holds usernames.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backoffice::UnixMillis;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

/// Failures in a row, per account and address, before the first lock.
pub const FAILURES_BEFORE_LOCK: u32 = 5;
/// The first lock.
const FIRST_LOCK: Duration = Duration::from_secs(60);
/// The longest lock, however many failures.
pub const LONGEST_LOCK: Duration = Duration::from_secs(15 * 60);
/// Attempts one address may make per [`ADDRESS_WINDOW`].
const ATTEMPTS_PER_ADDRESS: u32 = 20;
const ADDRESS_WINDOW: Duration = Duration::from_secs(10 * 60);
/// A count of failures is forgotten after this long without a new one.
const FAILURES_REMEMBERED: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a pair stays locked after its `failures`-th failure in a row, if at all.
fn lock_after(failures: u32) -> Option<Duration> {
    let doublings = failures.checked_sub(FAILURES_BEFORE_LOCK)?;
    let lock = FIRST_LOCK.saturating_mul(2_u32.saturating_pow(doublings.min(16)));
    Some(lock.min(LONGEST_LOCK))
}

/// The account part of a key: the typed username, normalised and hashed.
fn account_key(username: &str) -> String {
    hex::encode(Sha256::digest(username.trim().to_lowercase().as_bytes()))
}

/// A throttle that cannot be asked (Redis is down): the attempt is refused.
#[derive(Debug, thiserror::Error)]
#[error("login throttle unavailable: {0}")]
pub struct ThrottleUnavailable(#[from] redis::RedisError);

/// Where the counts live.
pub enum LoginThrottle {
    Memory(Mutex<MemoryCounts>),
    Redis {
        connection: ConnectionManager,
        /// The start of every key of this installation.
        namespace: String,
    },
}

/// The in-memory counts of one node.
#[derive(Default)]
pub struct MemoryCounts {
    per_address: HashMap<IpAddr, Vec<Instant>>,
    failures: HashMap<(String, IpAddr), Failures>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: UnixMillis,
    last: UnixMillis,
}

impl LoginThrottle {
    pub fn in_memory() -> Self {
        Self::Memory(Mutex::new(MemoryCounts::default()))
    }

    /// Shares the counts through Redis, under keys that start with `accordo:login:NAMESPACE:`.
    pub async fn redis(url: &str, namespace: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        Ok(Self::Redis {
            connection: client.get_connection_manager().await?,
            namespace: format!("accordo:login:{namespace}"),
        })
    }

    fn memory(counts: &Mutex<MemoryCounts>) -> std::sync::MutexGuard<'_, MemoryCounts> {
        // A poisoned lock only means another request panicked while counting; the counts
        // are still usable.
        counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts an attempt from `ip`; `Some(seconds to wait)` when over the limit.
    pub async fn attempt_from(&self, ip: IpAddr) -> Result<Option<u64>, ThrottleUnavailable> {
        match self {
            Self::Memory(counts) => {
                let now = Instant::now();
                let mut counts = Self::memory(counts);
                counts.per_address.retain(|_, times| {
                    times.retain(|time| now.duration_since(*time) < ADDRESS_WINDOW);
                    !times.is_empty()
                });
                let times = counts.per_address.entry(ip).or_default();
                if times.len() >= ATTEMPTS_PER_ADDRESS as usize {
                    let oldest = times.first().copied().unwrap_or(now);
                    let wait = ADDRESS_WINDOW.saturating_sub(now.duration_since(oldest));
                    return Ok(Some(wait.as_secs().max(1)));
                }
                times.push(now);
                Ok(None)
            }
            Self::Redis {
                connection,
                namespace,
            } => {
                let mut connection = connection.clone();
                let key = format!("{namespace}:address:{ip}");
                // The first attempt of a window creates the counter with the window's expiry
                // (`INCR` keeps it), so that the window does not slide with every attempt.
                let (count, ttl_ms): (u32, i64) = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&key)
                    .arg(0)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ADDRESS_WINDOW))
                    .ignore()
                    .incr(&key, 1)
                    .pttl(&key)
                    .query_async(&mut connection)
                    .await?;
                if count > ATTEMPTS_PER_ADDRESS {
                    let wait = u64::try_from(ttl_ms).unwrap_or(0).div_ceil(1000);
                    return Ok(Some(wait.max(1)));
                }
                Ok(None)
            }
        }
    }

    /// Until when `username` is locked for `ip`, if it is at `now`.
    pub async fn is_locked(
        &self,
        username: &str,
        ip: IpAddr,
        now: UnixMillis,
    ) -> Result<Option<UnixMillis>, ThrottleUnavailable> {
        let account = account_key(username);
        let locked_until = match self {
            Self::Memory(counts) => Self::memory(counts)
                .failures
                .get(&(account, ip))
                .map(|failures| failures.locked_until),
            Self::Redis {
                connection,
                namespace,
            } => {
                let mut connection = connection.clone();
                let until: Option<i64> = connection
                    .hget(failures_key(namespace, &account, ip), "locked_until")
                    .await?;
                until.map(UnixMillis)
            }
        };
        Ok(locked_until.filter(|until| *until > now))
    }

    /// Counts a failure of `username` from `ip`; returns the end of the lock it starts, if any.
    pub async fn failed(
        &self,
        username: &str,
        ip: IpAddr,
        now: UnixMillis,
    ) -> Result<Option<UnixMillis>, ThrottleUnavailable> {
        let account = account_key(username);
        match self {
            Self::Memory(counts) => {
                let mut counts = Self::memory(counts);
                let forgotten = UnixMillis(now.0.saturating_sub(millis(FAILURES_REMEMBERED)));
                counts
                    .failures
                    .retain(|_, failures| failures.last > forgotten);
                let failures = counts.failures.entry((account, ip)).or_insert(Failures {
                    count: 0,
                    locked_until: now,
                    last: now,
                });
                failures.count = failures.count.saturating_add(1);
                failures.last = now;
                let lock = lock_after(failures.count).map(|lock| now.plus(lock));
                if let Some(until) = lock {
                    failures.locked_until = until;
                }
                Ok(lock)
            }
            Self::Redis {
                connection,
                namespace,
            } => {
                let mut connection = connection.clone();
                let key = failures_key(namespace, &account, ip);
                let (count,): (u32,) = redis::pipe()
                    .atomic()
                    .hincr(&key, "count", 1)
                    .pexpire(&key, millis(FAILURES_REMEMBERED))
                    .ignore()
                    .query_async(&mut connection)
                    .await?;
                let lock = lock_after(count).map(|lock| now.plus(lock));
                if let Some(until) = lock {
                    let () = connection.hset(&key, "locked_until", until.0).await?;
                }
                Ok(lock)
            }
        }
    }

    /// Clears the failures of `username` from `ip` after a success.
    pub async fn succeeded(&self, username: &str, ip: IpAddr) -> Result<(), ThrottleUnavailable> {
        let account = account_key(username);
        match self {
            Self::Memory(counts) => {
                Self::memory(counts).failures.remove(&(account, ip));
            }
            Self::Redis {
                connection,
                namespace,
            } => {
                let mut connection = connection.clone();
                let () = connection
                    .del(failures_key(namespace, &account, ip))
                    .await?;
            }
        }
        Ok(())
    }
}

fn failures_key(namespace: &str, account: &str, ip: IpAddr) -> String {
    format!("{namespace}:failures:{account}:{ip}")
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_from_one_minute_to_fifteen() {
        assert_eq!(lock_after(4), None);
        assert_eq!(lock_after(5), Some(Duration::from_secs(60)));
        assert_eq!(lock_after(6), Some(Duration::from_secs(120)));
        assert_eq!(lock_after(8), Some(Duration::from_secs(480)));
        assert_eq!(lock_after(9), Some(LONGEST_LOCK));
        assert_eq!(lock_after(u32::MAX), Some(LONGEST_LOCK));
    }

    #[tokio::test]
    async fn a_lock_holds_for_one_account_and_address_only() {
        let throttle = LoginThrottle::in_memory();
        let attacker = IpAddr::from([10, 0, 0, 1]);
        let owner = IpAddr::from([10, 0, 0, 2]);
        let now = UnixMillis(1_000_000);
        for _ in 1..FAILURES_BEFORE_LOCK {
            assert_eq!(throttle.failed("Mario", attacker, now).await.unwrap(), None);
        }
        let until = throttle.failed("mario", attacker, now).await.unwrap();
        assert_eq!(until, Some(now.plus(FIRST_LOCK)));
        assert_eq!(
            throttle.is_locked("mario", attacker, now).await.unwrap(),
            until
        );
        assert_eq!(throttle.is_locked("mario", owner, now).await.unwrap(), None);
        assert_eq!(
            throttle.is_locked("anna", attacker, now).await.unwrap(),
            None
        );
        let later = now.plus(FIRST_LOCK);
        assert_eq!(
            throttle.is_locked("mario", attacker, later).await.unwrap(),
            None
        );
        throttle.succeeded("mario", attacker).await.unwrap();
        assert_eq!(throttle.failed("mario", attacker, now).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_limit_applies_per_address() {
        let throttle = LoginThrottle::in_memory();
        let a = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..ATTEMPTS_PER_ADDRESS {
            assert_eq!(throttle.attempt_from(a).await.unwrap(), None);
        }
        assert!(throttle.attempt_from(a).await.unwrap().is_some());
        let b = IpAddr::from([10, 0, 0, 2]);
        assert_eq!(throttle.attempt_from(b).await.unwrap(), None);
    }
}
