//! Which node serves which room, when several nodes share one database.
//!
//! Without Redis everything is local: this node serves every room. With Redis, one node owns
//! each live room: it claims the key `accordo:room:{id}:owner` (value `NODE_ID URL`) with an
//! expiry and renews it while the room is live. A connection that reaches another node is told
//! to reconnect to the owner's URL (`bye` `redirect`): redirect rather than relay, so media and
//! signaling of a room stay on one node and no node forwards another's traffic. When a node
//! dies, its keys expire and the next node a client reaches claims the room and loads it from
//! the database, where every change was stored before it was delivered.

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
    /// This node: serve it.
    Mine,
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
    /// Who should serve `room`; claims it for this node when nobody holds it.
    pub async fn claim(&self, room: RoomId) -> Result<Claim, ClusterError> {
        match self {
            Ownership::Local => Ok(Claim::Mine),
            Ownership::Redis(redis) => redis.claim(room).await,
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
    ttl: Duration,
}

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

impl RedisOwnership {
    /// Connects to Redis at `url`; this node is reached at `node_url`; claims last `ttl`
    /// unless renewed.
    pub async fn connect(url: &str, node_url: &str, ttl: Duration) -> Result<Self, ClusterError> {
        let client = redis::Client::open(url)?;
        let connection = ConnectionManager::new(client).await?;
        let mut id = [0_u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let node_id: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
        Ok(Self {
            connection,
            value: format!("{node_id} {node_url}"),
            ttl,
        })
    }

    fn ttl_millis(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }

    async fn claim(&self, room: RoomId) -> Result<Claim, ClusterError> {
        let mut connection = self.connection.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(key(room))
            .arg(&self.value)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl_millis())
            .query_async(&mut connection)
            .await?;
        if set.is_some() {
            return Ok(Claim::Mine);
        }
        let owner: Option<String> = redis::cmd("GET")
            .arg(key(room))
            .query_async(&mut connection)
            .await?;
        match owner {
            Some(owner) if owner == self.value => Ok(Claim::Mine),
            Some(owner) => Ok(Claim::Elsewhere(
                owner
                    .split_once(' ')
                    .map(|(_, url)| url.to_owned())
                    .unwrap_or(owner),
            )),
            // Expired between the two calls: try once more.
            None => Box::pin(self.claim(room)).await,
        }
    }

    async fn renew(&self, rooms: &[RoomId]) -> Result<Vec<RoomId>, ClusterError> {
        let mut connection = self.connection.clone();
        let script = redis::Script::new(RENEW);
        let mut lost = Vec::new();
        for room in rooms {
            let renewed: i64 = script
                .key(key(*room))
                .arg(&self.value)
                .arg(self.ttl_millis())
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
