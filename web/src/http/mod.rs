//! The shared kit of every area: what a handler needs besides the back office.

pub mod auth;
pub mod client_ip;
pub mod cookies;
pub mod csrf;
pub mod csrf_key;
pub mod error;
pub mod extract;
pub mod input;
pub mod limits;
pub mod render;
pub mod routes;
