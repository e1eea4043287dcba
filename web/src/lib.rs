//! Accordo's composition root: the `accordo` binary's configuration, command line, HTTP
//! server, back-office pages and JSON API.
//!
//! # Layout
//! - [`config`]: the one configuration struct, from TOML and `ACCORDO_*` variables.
//! - [`cli`]: `serve`, `migrate`, `admin …`, `config check`.
//! - [`server`]: start-up (migrations, demo organism, first admin), the router that merges
//!   every area's routes, graceful stop.
//! - [`telemetry`]: logs, request ids, Prometheus metrics. [`tls`]: rustls.
//! - `http`: the shared kit every area uses: rendering and the Italian form extractor, the
//!   navigation bar, the JSON extractors, the session extractors, CSRF, the one table from
//!   back-office errors to HTTP answers, and [`server::Route`]s that know themselves.
//! - One folder per area, each with its `routes()`, handlers and templates
//!   (`templates/<area>/`): `account` (login, password, dashboard), `admin` (users,
//!   permissions, audit log), `cases` (record, participants, documents, meetings), `people`,
//!   `mediators` (with the calendar feed), `agenda` (agenda and offices), `rooms` (room API,
//!   room page and WebSocket, room files), `outbox` (the mail worker and its page).
//!
//! Areas are private: they use `http` and `state`, and another area only where the thing is
//! that area's (the case page appoints a mediator through `mediators::api`).

pub mod cli;
pub mod config;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tls;

mod account;
mod admin;
mod agenda;
mod cases;
mod http;
mod mediators;
mod openapi;
mod outbox;
mod people;
mod rooms;
