//! End-to-end scenarios against the real server, each on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test fails loudly on anything unexpected

mod app {
    mod accounts;
    mod agenda;
    mod api_errors;
    mod api_tokens;
    mod architecture;
    mod bad_input;
    mod browser;
    mod case_pages;
    mod case_record;
    mod cases;
    mod cluster;
    mod csrf;
    mod health;
    mod http_limits;
    mod internal_errors;
    mod links_at_rest;
    mod listings;
    mod login_security;
    mod logs;
    mod media;
    mod mediators;
    mod openapi;
    mod outbox;
    mod people;
    mod response_headers;
    mod room_files;
    mod room_store;
    mod rooms;
    mod scheduling;
    mod schema_parity;
    mod shutdown;
    mod staff_socket;
}
