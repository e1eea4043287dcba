use thiserror::Error;

/// What can go wrong in the back office. Database details stay in `Database`, which `web`
/// logs and never shows to a client.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL scheme `{0}` (expected sqlite:// or postgres://)")]
    UnsupportedDatabase(String),
    #[error("file store error: {0}")]
    FileStore(#[from] object_store::Error),
    #[error("invalid file store location: {0}")]
    FileStoreLocation(String),
    #[error("not found")]
    NotFound,
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    /// A value given to the back office that it refuses to store (a malformed case reference,
    /// an id or a time the database cannot hold).
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("password hashing failed")]
    PasswordHash,
    /// A room was saved or taken over under a newer claim (a higher epoch) than the one given:
    /// another node serves it now, and nothing was written.
    #[error("the room is served under a newer claim")]
    Fenced,
}

/// True when `error` is a unique-constraint violation, on either backend.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db_error| db_error.is_unique_violation())
}

/// True when `error` is a foreign-key violation (a row names another that does not exist), on
/// either backend.
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|db_error| db_error.is_foreign_key_violation())
}
