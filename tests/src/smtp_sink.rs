//! A small SMTP server for the tests (RFC 5321, as much as a mail client needs): it keeps every
//! message it accepts, and can be told to refuse a recipient for good (`550`) or for the next
//! few attempts (`451`). Real TCP on 127.0.0.1, so the client under test does everything it
//! would do with a real server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// A message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub mail_from: String,
    /// The envelope recipients (`RCPT TO`) that were accepted.
    pub rcpt_to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, without the final `.` line.
    pub data: String,
}

/// How the sink answers `RCPT TO` for one recipient.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// `550 5.1.1`, always.
    Refuse,
    /// `451 4.3.0` for this many more attempts, then accepted.
    Defer(u32),
}

#[derive(Default)]
struct Shared {
    received: Vec<ReceivedMail>,
    rules: HashMap<String, Rule>,
}

/// The running server; it stops when dropped.
pub struct SmtpSink {
    address: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    arrived: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP sink");
        let address = listener.local_addr().expect("sink address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let arrived = Arc::new(Notify::new());
        let task = tokio::spawn({
            let (shared, arrived) = (shared.clone(), arrived.clone());
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let session = Session {
                        shared: shared.clone(),
                        arrived: arrived.clone(),
                    };
                    tokio::spawn(async move {
                        // A client that hangs up mid-session just ends it.
                        let _ = session.serve(stream).await;
                    });
                }
            }
        });
        SmtpSink {
            address,
            shared,
            arrived,
            task,
        }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// A URL where nothing listens (the port was just bound and released): a server that is
    /// down.
    pub async fn closed_url() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        format!("smtp://{address}")
    }

    /// From now on `RCPT TO:<recipient>` is refused for good (`550 5.1.1`).
    pub fn refuse(&self, recipient: &str) {
        self.lock()
            .rules
            .insert(recipient.to_ascii_lowercase(), Rule::Refuse);
    }

    /// The next `attempts` `RCPT TO:<recipient>` are refused for now (`451 4.3.0`).
    pub fn defer(&self, recipient: &str, attempts: u32) {
        self.lock()
            .rules
            .insert(recipient.to_ascii_lowercase(), Rule::Defer(attempts));
    }

    /// Every message accepted so far, in order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.lock().received.clone()
    }

    /// Waits until at least `count` messages have arrived (panics after `patience`).
    pub async fn wait_for(&self, count: usize, patience: Duration) -> Vec<ReceivedMail> {
        let waited = tokio::time::timeout(patience, async {
            loop {
                let arrived = self.arrived.notified();
                let received = self.received();
                if received.len() >= count {
                    return received;
                }
                arrived.await;
            }
        })
        .await;
        waited.unwrap_or_else(|_| {
            panic!(
                "{count} messages expected, {} arrived",
                self.received().len()
            )
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A panic in one session must not hide what the others received.
fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Session {
    shared: Arc<Mutex<Shared>>,
    arrived: Arc<Notify>,
}

/// The address inside `<…>` of a `MAIL FROM:` or `RCPT TO:` argument.
fn angle_address(argument: &str) -> Option<String> {
    let start = argument.find('<')? + 1;
    let end = argument[start..].find('>')? + start;
    Some(argument[start..end].to_owned())
}

impl Session {
    async fn serve(self, stream: TcpStream) -> std::io::Result<()> {
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        writer
            .write_all(b"220 accordo-sink ESMTP ready\r\n")
            .await?;
        let mut mail_from: Option<String> = None;
        let mut rcpt_to: Vec<String> = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end_matches(['\r', '\n']);
            let verb = command
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            let upper = command.to_ascii_uppercase();
            let reply: String = match verb.as_str() {
                "EHLO" => {
                    "250-accordo-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n"
                        .to_owned()
                }
                "HELO" => "250 accordo-sink\r\n".to_owned(),
                "MAIL" if upper.starts_with("MAIL FROM:") => match angle_address(command) {
                    Some(from) => {
                        mail_from = Some(from);
                        rcpt_to.clear();
                        "250 2.1.0 OK\r\n".to_owned()
                    }
                    None => "501 5.1.7 Bad sender address syntax\r\n".to_owned(),
                },
                "RCPT" if upper.starts_with("RCPT TO:") => match angle_address(command) {
                    _ if mail_from.is_none() => "503 5.5.1 MAIL first\r\n".to_owned(),
                    Some(to) => self.recipient(to, &mut rcpt_to),
                    None => "501 5.1.3 Bad recipient address syntax\r\n".to_owned(),
                },
                "DATA" if mail_from.is_none() || rcpt_to.is_empty() => {
                    "503 5.5.1 No valid recipients\r\n".to_owned()
                }
                "DATA" => {
                    writer
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let data = read_data(&mut reader).await?;
                    let number = {
                        let mut shared = lock(&self.shared);
                        shared.received.push(ReceivedMail {
                            mail_from: mail_from.take().unwrap_or_default(),
                            rcpt_to: std::mem::take(&mut rcpt_to),
                            data,
                        });
                        shared.received.len()
                    };
                    self.arrived.notify_waiters();
                    format!("250 2.0.0 OK queued as {number}\r\n")
                }
                "RSET" => {
                    mail_from = None;
                    rcpt_to.clear();
                    "250 2.0.0 OK\r\n".to_owned()
                }
                "NOOP" => "250 2.0.0 OK\r\n".to_owned(),
                "QUIT" => {
                    writer.write_all(b"221 2.0.0 Bye\r\n").await?;
                    return writer.shutdown().await;
                }
                _ => "502 5.5.2 Command not recognised\r\n".to_owned(),
            };
            writer.write_all(reply.as_bytes()).await?;
        }
    }

    fn recipient(&self, to: String, accepted: &mut Vec<String>) -> String {
        let mut shared = lock(&self.shared);
        let rule = shared.rules.get_mut(&to.to_ascii_lowercase());
        match rule {
            Some(Rule::Refuse) => {
                format!("550 5.1.1 <{to}>: Recipient address rejected: User unknown\r\n")
            }
            Some(Rule::Defer(remaining)) if *remaining > 0 => {
                *remaining -= 1;
                format!("451 4.3.0 <{to}>: Temporary local problem, try again later\r\n")
            }
            _ => {
                accepted.push(to);
                "250 2.1.5 OK\r\n".to_owned()
            }
        }
    }
}

/// Reads the lines after `DATA` up to the lone `.`, undoing dot-stuffing (RFC 5321 4.5.2).
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == ".\r\n" || line == ".\n" {
            return Ok(data);
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
    }
}
