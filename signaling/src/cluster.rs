//! Which node serves which room, when several nodes share one database.
//!
//! Without Redis everything is local: this node serves every room. With Redis, one node owns
//! each live room: it claims the key `accordo:room:{id}:owner` (value `NODE_ID URL`) with an
//! expiry and renews it while the room is live. A connection that reaches another node is told
//! to reconnect to the owner's URL (`bye` `redirect`): redirect rather than relay, so media and
//! signaling of a room stay on one node and no node forwards another's traffic.
//!
//! Each node also keeps a heartbeat, `accordo:node:{NODE_ID}:alive`, with a short expiry
//! (a fifth of a claim's) renewed four times as often. A claim whose node has no heartbeat is
//! taken over at once: when a node dies, the next node a client reaches claims its rooms within
//! a heartbeat, without waiting for the claims to expire, and loads them from the database,
//! where every change was stored before it was delivered.
//!
//! **Invariant:** every claim takes a new epoch (fencing token) for the room, higher than any
//! before it (`accordo:room:{id}:epoch`, never below the epoch stored with the room). The owner
//! saves the room under its epoch and the database refuses a save under an older one, so a node
//! that lost its claim without noticing (cut off from Redis, paused) cannot overwrite the new
//! owner's state.

use std::time::Duration;

use rand::RngCore;
use redis::aio::ConnectionManager;
use rooms::RoomId;

/// Why the cluster could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Who serves a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node, under this epoch: serve it, and save it under the epoch.
    Mine { epoch: u64 },
    /// Another node, reachable at this URL.
    Elsewhere(String),
}

/// How rooms are shared among nodes.
#[derive(Clone)]
pub enum Ownership {
    /// One node: every room is served here.
    Local,
    /// Several nodes coordinated through Redis.
    Redis(RedisOwnership),
}

impl Ownership {
    /// Who should serve `room`; claims it for this node, under an epoch above `stored_epoch`
    /// (the one stored with the room), when nobody holds it or its holder's heartbeat is gone.
    pub async fn claim(&self, room: RoomId, stored_epoch: u64) -> Result<Claim, ClusterError> {
        match self {
            Ownership::Local => Ok(Claim::Mine {
                epoch: stored_epoch.saturating_add(1),
            }),
            Ownership::Redis(redis) => redis.claim(room, stored_epoch).await,
        }
    }

    /// Tells the other nodes this one is alive (several nodes only).
    pub async fn heartbeat(&self) -> Result<(), ClusterError> {
        match self {
            Ownership::Local => Ok(()),
            Ownership::Redis(redis) => redis.heartbeat().await,
        }
    }

    /// How often the heartbeat must be renewed; `None` when there is none.
    pub fn heartbeat_every(&self) -> Option<Duration> {
        match self {
            Ownership::Local => None,
            Ownership::Redis(redis) => Some(redis.heartbeat_ttl() / 4),
        }
    }

    /// Renews this node's claims on `rooms`; returns the rooms it no longer owns.
    pub async fn renew(&self, rooms: &[RoomId]) -> Result<Vec<RoomId>, ClusterError> {
        match self {
            Ownership::Local => Ok(Vec::new()),
            Ownership::Redis(redis) => redis.renew(rooms).await,
        }
    }

    /// Gives up this node's claims on `rooms` (on a clean stop), so that another node can
    /// take them at once.
    pub async fn release(&self, rooms: &[RoomId]) -> Result<(), ClusterError> {
        match self {
            Ownership::Local => Ok(()),
            Ownership::Redis(redis) => redis.release(rooms).await,
        }
    }

    /// How often claims must be renewed; `None` when there is nothing to renew.
    pub fn renew_every(&self) -> Option<Duration> {
        match self {
            Ownership::Local => None,
            Ownership::Redis(redis) => Some(redis.ttl / 3),
        }
    }
}

/// Room ownership in Redis.
#[derive(Clone)]
pub struct RedisOwnership {
    connection: ConnectionManager,
    /// `NODE_ID URL`: the id tells this node's claims from another's at the same URL (a
    /// restarted node), the URL is where clients are redirected.
    value: String,
    /// This node's heartbeat key.
    heartbeat_key: String,
    ttl: Duration,
}

/// Claims a room (`KEYS[1]`, its epoch counter `KEYS[2]`) for this node (`ARGV[1]`, for
/// `ARGV[2]` ms) unless another node holds it and that node's heartbeat is alive; a claim
/// bumps the epoch, never below `ARGV[3]`. Returns the new epoch, or the holder's value.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then
  local node = string.match(owner, '^%S+')
  if redis.call('EXISTS', 'accordo:node:' .. node .. ':alive') == 1 then
    return owner
  end
end
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
if counter < tonumber(ARGV[3]) then
  redis.call('SET', KEYS[2], ARGV[3])
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return epoch";

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

fn key(room: RoomId) -> String {
    format!("accordo:room:{}:owner", room.get())
}

fn epoch_key(room: RoomId) -> String {
    format!("accordo:room:{}:epoch", room.get())
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl RedisOwnership {
    /// Connects to Redis at `url`; this node is reached at `node_url`; claims last `ttl`
    /// unless renewed, the node's heartbeat a fifth of it. The first heartbeat is sent here,
    /// before the node claims anything.
    pub async fn connect(url: &str, node_url: &str, ttl: Duration) -> Result<Self, ClusterError> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client).await?;
        let mut id = [0_u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let node_id: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
        let ownership = Self {
            connection,
            value: format!("{node_id} {node_url}"),
            heartbeat_key: format!("accordo:node:{node_id}:alive"),
            ttl,
        };
        ownership.heartbeat().await?;
        Ok(ownership)
    }

    fn heartbeat_ttl(&self) -> Duration {
        self.ttl / 5
    }

    async fn heartbeat(&self) -> Result<(), ClusterError> {
        let mut connection = self.connection.clone();
        let () = redis::cmd("SET")
            .arg(&self.heartbeat_key)
            .arg(1)
            .arg("PX")
            .arg(millis(self.heartbeat_ttl()))
            .query_async(&mut connection)
            .await?;
        Ok(())
    }

    async fn claim(&self, room: RoomId, stored_epoch: u64) -> Result<Claim, ClusterError> {
        let mut connection = self.connection.clone();
        let claimed: redis::Value = redis::Script::new(CLAIM)
            .key(key(room))
            .key(epoch_key(room))
            .arg(&self.value)
            .arg(millis(self.ttl))
            .arg(stored_epoch)
            .invoke_async(&mut connection)
            .await?;
        if let redis::Value::Int(epoch) = claimed {
            let epoch = u64::try_from(epoch).map_err(|_| {
                redis::RedisError::from((redis::ErrorKind::TypeError, "negative room epoch"))
            })?;
            return Ok(Claim::Mine { epoch });
        }
        let owner: String = redis::from_redis_value(&claimed)?;
        Ok(Claim::Elsewhere(
            owner
                .split_once(' ')
                .map(|(_, url)| url.to_owned())
                .unwrap_or(owner),
        ))
    }

    async fn renew(&self, rooms: &[RoomId]) -> Result<Vec<RoomId>, ClusterError> {
        let mut connection = self.connection.clone();
        let script = redis::Script::new(RENEW);
        let mut lost = Vec::new();
        for room in rooms {
            let renewed: i64 = script
                .key(key(*room))
                .arg(&self.value)
                .arg(millis(self.ttl))
                .invoke_async(&mut connection)
                .await?;
            if renewed == 0 {
                lost.push(*room);
            }
        }
        Ok(lost)
    }

    async fn release(&self, rooms: &[RoomId]) -> Result<(), ClusterError> {
        let mut connection = self.connection.clone();
        let script = redis::Script::new(RELEASE);
        for room in rooms {
            let _: i64 = script
                .key(key(*room))
                .arg(&self.value)
                .invoke_async(&mut connection)
                .await?;
        }
        Ok(())
    }
}
