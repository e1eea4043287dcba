//! Installation-wide values kept in the database, so that every node shares them.

use rand::RngCore;

use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::{Db, StoreError, UnixMillis};

/// The 256-bit secret named `name` (for signing tokens), created at first use. Concurrent
/// first uses on several nodes agree on one value.
pub async fn secret(db: &Db, name: &str, now: UnixMillis) -> Result<Vec<u8>, StoreError> {
    let key = format!("secret.{name}");
    if let Some(stored) = stored_secret(db, &key).await? {
        return Ok(stored);
    }
    let mut fresh = [0_u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut fresh);
    let mut tx = db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key.as_str())
    .bind(hex::encode(fresh))
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 1 {
        let record = NewRecord {
            action: Action::SettingCreated,
            entity_type: "setting",
            entity_id: &key,
            changes: vec![Change::set(Field::Value, "***")],
        };
        audit::record(&mut tx, &Actor::system(), now, record).await?;
    }
    tx.commit().await?;
    stored_secret(db, &key).await?.ok_or(StoreError::NotFound)
}

async fn stored_secret(db: &Db, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let value: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(db.pool())
        .await?;
    value
        .map(|hex_value| {
            hex::decode(&hex_value).map_err(|_| StoreError::Corrupt(format!("setting {key}")))
        })
        .transpose()
}
