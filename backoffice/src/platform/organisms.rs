//! The bodies an installation serves: organismi di mediazione, OCC, bar councils.

use sqlx::Row;

use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::{Db, StoreError, UnixMillis};

/// A body (organismo) that runs its work on this installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organism {
    pub id: String,
    pub name: String,
    /// `organismo_mediazione`, `occ` or `consiglio_ordine`.
    pub kind: String,
    pub is_demo: bool,
}

/// Creates the demo organism when the installation has none; returns the first organism.
pub async fn ensure_demo(db: &Db, now: UnixMillis) -> Result<Organism, StoreError> {
    if let Some(first) = first(db).await? {
        return Ok(first);
    }
    let id = uuid::Uuid::now_v7().to_string();
    let name = "Organismo di mediazione dimostrativo";
    let kind = "organismo_mediazione";
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO organisms (id, name, kind, is_demo, created_at) VALUES ($1, $2, $3, 1, $4)",
    )
    .bind(id.as_str())
    .bind(name)
    .bind(kind)
    .bind(now.0)
    .execute(&mut *tx)
    .await?;
    let record = NewRecord {
        action: Action::OrganismCreated,
        entity_type: "organism",
        entity_id: &id,
        changes: vec![
            Change::set(Field::Name, name),
            Change::set(Field::Kind, kind),
        ],
    };
    audit::record(&mut tx, &Actor::system(), now, record).await?;
    tx.commit().await?;
    first(db).await?.ok_or(StoreError::NotFound)
}

async fn first(db: &Db) -> Result<Option<Organism>, StoreError> {
    let row = sqlx::query(
        "SELECT id, name, kind, is_demo FROM organisms ORDER BY created_at, id LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| {
        Ok(Organism {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            kind: row.try_get("kind")?,
            is_demo: row.try_get::<i64, _>("is_demo")? != 0,
        })
    })
    .transpose()
}
