//! Mediation rooms kept durable: the room store (snapshots of [`::rooms::Room`]), the personal
//! links that open them, and the files shared in them.

pub mod invites;
pub mod room_files;
pub mod room_store;
