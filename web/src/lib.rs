//! Accordo's composition root: the `accordo` binary's configuration, command line, HTTP
//! server, back-office pages and JSON API.
//!
//! # Layout
//! - [`config`]: the one configuration struct, from TOML and `ACCORDO_*` variables.
//! - [`cli`]: `serve`, `migrate`, `admin …`, `config check`.
//! - [`server`]: start-up (migrations, demo organism, first admin), routes, graceful stop.
//! - [`auth`]: session cookies, the user extractors, login, logout, password change.
//! - [`csrf`]: the CSRF middleware that guards every state-changing request.
//! - [`pages`]: server-rendered pages (askama templates in `templates/`) and the JSON API.
//! - [`rooms_api`]: the JSON API that opens a case's online room and invites people; the
//!   room WebSocket (`/ws/v1`) is served by `signaling`.
//! - [`outbox_api`]: the worker that delivers queued mail, the outbox's JSON API and its page
//!   (`/posta`).
//! - [`agenda_pages`]: the agenda by day, week and month.
//! - [`people_pages`]: the people registry as a page (search, register, merge).
//! - [`mediator_pages`]: the register of mediators as a page.
//! - [`case_pages`]: the segreteria's case pages (list, registration, the case page).
//! - [`cases_api`]: the case record over JSON and online meetings scheduled from the case.
//! - [`openapi`]: the OpenAPI document of the JSON API (`web/openapi.json`), served at
//!   `/api/v1/openapi.json` and checked against the router by `tests/tests/app/openapi.rs`.
//! - [`error`]: how failures become pages (HTML) or JSON bodies.
//! - [`telemetry`]: logs, request ids, Prometheus metrics.
//! - [`tls`]: rustls from certificate files or a generated development certificate.

pub mod agenda_api;
pub mod agenda_pages;
pub mod auth;
pub mod calendar;
pub mod case_documents_api;
pub mod case_pages;
pub mod cases_api;
pub mod cli;
pub mod config;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod mediator_pages;
pub mod mediators_api;
pub mod openapi;
pub mod outbox_api;
pub mod pages;
pub mod people_api;
pub mod people_pages;
pub mod room_files_api;
pub mod room_page;
pub mod rooms_api;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tls;
