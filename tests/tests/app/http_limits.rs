//! Slow and silent clients cannot hold connections: a header sent halfway or byte by byte, a
//! connection that never speaks, an idle kept-alive connection and a stalled body are all
//! cut within their limits, and connections beyond the caps are closed as they arrive. Raw TCP
//! sockets, with limits of a second or two so that the tests stay quick.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use accordo_tests::{spawn_app_with, Backend, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Longer than any limit below: a connection still open after it was not cut.
const PATIENCE: Duration = Duration::from_secs(6);

async fn app_with_limits(header_secs: u64, idle_secs: u64, request_secs: u64) -> TestApp {
    spawn_app_with(Backend::Sqlite, |config| {
        config.http_header_timeout_secs = header_secs;
        config.http_idle_timeout_secs = idle_secs;
        config.http_request_timeout_secs = request_secs;
    })
    .await
}

fn server_address(app: &TestApp) -> SocketAddr {
    app.address
        .trim_start_matches("http://")
        .parse()
        .expect("a plain HTTP address")
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(server_address(app)).await.unwrap()
}

/// Reads until the server closes the connection; what it said and when it closed, or `None`
/// if it was still open after [`PATIENCE`].
async fn until_closed(stream: &mut TcpStream) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        match tokio::time::timeout_at((started + PATIENCE).into(), stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => {
                return Some((
                    String::from_utf8_lossy(&received).into_owned(),
                    started.elapsed(),
                ))
            }
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

fn assert_cut_between(closed: Option<(String, Duration)>, at_least: f64, at_most: f64) -> String {
    let (said, after) = closed.expect("the server closed the connection");
    let after = after.as_secs_f64();
    assert!(
        (at_least..at_most).contains(&after),
        "closed after {after:.2} s, expected between {at_least} and {at_most} s"
    );
    said
}

#[tokio::test]
async fn a_header_sent_halfway_is_cut_after_the_header_timeout() {
    let app = app_with_limits(1, 30, 30).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: accordo\r\n")
        .await
        .unwrap();
    assert_cut_between(until_closed(&mut stream).await, 0.8, 3.0);
}

#[tokio::test]
async fn a_header_sent_byte_by_byte_is_cut_after_the_header_timeout() {
    let app = app_with_limits(1, 30, 30).await;
    let stream = connect(&app).await;
    let (mut reader, mut writer) = stream.into_split();
    // A byte every 200 ms keeps the connection busy but never finishes the header.
    let drip = tokio::spawn(async move {
        for byte in b"GET /healthz HTTP/1.1\r\nHost: accordo\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa" {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let started = Instant::now();
    let mut buffer = [0_u8; 1024];
    let closed = loop {
        match tokio::time::timeout(PATIENCE, reader.read(&mut buffer)).await {
            Err(_) => break None,
            Ok(Ok(0) | Err(_)) => break Some((String::new(), started.elapsed())),
            Ok(Ok(_)) => {}
        }
    };
    drip.abort();
    assert_cut_between(closed, 0.8, 3.0);
}

#[tokio::test]
async fn a_connection_that_never_speaks_is_cut_after_the_header_timeout() {
    let app = app_with_limits(1, 30, 30).await;
    let mut stream = connect(&app).await;
    assert_cut_between(until_closed(&mut stream).await, 0.8, 3.0);
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_cut() {
    let app = app_with_limits(1, 30, 30).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: accordo\r\n\r\n")
        .await
        .unwrap();
    let said = assert_cut_between(until_closed(&mut stream).await, 0.8, 3.0);
    assert!(said.starts_with("HTTP/1.1 200"), "{said}");
    assert!(said.ends_with("ok"), "the answer came first: {said}");
}

#[tokio::test]
async fn a_connection_where_nothing_moves_is_cut_after_the_idle_timeout() {
    // The header timeout is longer here, so the idle clock is what cuts.
    let app = app_with_limits(5, 1, 30).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    assert_cut_between(until_closed(&mut stream).await, 0.8, 3.0);
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_after_the_request_timeout() {
    let app = app_with_limits(5, 30, 1).await;
    let mut stream = connect(&app).await;
    // A form post whose body stops after 10 of its 100 bytes (with a CSRF cookie, so that the
    // body is read).
    stream
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: accordo\r\nCookie: accordo_csrf=00\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
              username=a",
        )
        .await
        .unwrap();
    let said = assert_cut_between(until_closed(&mut stream).await, 0.8, 3.0);
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(said.contains("Tempo scaduto"), "{said}");
}

/// A kept-alive connection from `source` that has been answered once, or `None` when the
/// server closed it instead.
async fn answered_connection(app: &TestApp, source: Ipv4Addr) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
    let mut stream = socket.connect(server_address(app)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: accordo\r\n\r\n")
        .await
        .ok()?;
    let mut buffer = [0_u8; 4096];
    let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
        .await
        .expect("an answer or a close");
    match read {
        Ok(read) if read > 0 => {
            assert!(buffer.starts_with(b"HTTP/1.1 200"));
            Some(stream)
        }
        _ => None,
    }
}

#[tokio::test]
async fn connections_beyond_the_caps_are_closed_as_they_arrive() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.http_max_connections = 3;
        config.http_max_connections_per_address = 2;
    })
    .await;
    let first = Ipv4Addr::new(127, 0, 0, 1);
    let second = Ipv4Addr::new(127, 0, 0, 2);

    let one = answered_connection(&app, first)
        .await
        .expect("first served");
    let _two = answered_connection(&app, first)
        .await
        .expect("second served");
    assert!(
        answered_connection(&app, first).await.is_none(),
        "a third connection from one address is closed"
    );
    let _three = answered_connection(&app, second)
        .await
        .expect("another address is served");
    assert!(
        answered_connection(&app, second).await.is_none(),
        "a fourth connection in all is closed"
    );

    // A closed connection gives its place back.
    drop(one);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(answered_connection(&app, first).await.is_some());
}
