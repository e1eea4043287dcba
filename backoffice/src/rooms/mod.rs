//! Mediation rooms kept durable: the room store (snapshots of [`::rooms::Room`]), the personal
//! links that open them, who may use them (`access`), and the files shared in them.

pub mod access;
pub mod invites;
pub mod room_files;
pub mod room_store;
