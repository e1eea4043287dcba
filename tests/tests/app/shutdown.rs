//! Graceful shutdown: in-flight requests finish, new connections are refused, the database
//! is closed.

use std::time::Duration;

use accordo_tests::{both_backends, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

both_backends! {
    async fn an_in_flight_request_finishes_after_shutdown_begins(app: TestApp) {
        let mut app = app;
        let address = app.address.trim_start_matches("http://").to_owned();
        // A browser's CSRF cookie and token, so that the server reads the whole body.
        let login_page = app.browser().get("/login").await;
        let cookie = login_page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let html = login_page.text().await.unwrap();
        let token = html.split("name=\"csrf_token\" value=\"").nth(1).unwrap().split('"').next().unwrap();
        let body = format!("username=admin&password=sbagliata&csrf_token={token}");
        let mut stream = TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST /login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Cookie: {cookie}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body.as_bytes()[..10]).await.unwrap();
        // Let the server start reading the request before the shutdown begins.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let server = app.begin_shutdown();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(TcpStream::connect(&address).await.is_err(), "no new connections once shutting down");

        stream.write_all(&body.as_bytes()[10..]).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 401"), "the login was processed: {response}");
        assert!(response.contains("Nome utente o password non corretti."));

        let db = server.db.clone();
        server.wait().await.unwrap();
        assert!(db.pool().is_closed(), "the database is closed after the shutdown");
    }
}
