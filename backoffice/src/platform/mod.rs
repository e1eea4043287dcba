//! What every area stands on: the database, accounts, sessions and API tokens, permissions, the audit log,
//! the bodies (organismi), installation settings, the file store, and time as Italy reads it.

pub mod access;
pub mod accounts;
pub mod api_tokens;
pub mod audit;
pub mod dates;
pub mod db;
pub mod files;
pub mod names;
pub mod organisms;
pub(crate) mod password;
pub mod permission;
pub mod rome_time;
pub mod sessions;
pub mod settings;
