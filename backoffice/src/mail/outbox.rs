//! The mail outbox: mail is queued with [`enqueue`] in the transaction of the change that
//! causes it (a meeting scheduled, moved, cancelled), so that a change is never committed
//! without its mail nor its mail sent without the change; [`deliver_due`] sends it afterwards.
//!
//! Delivery is at least once: a mail is claimed with a lease, sent, then marked sent; a node
//! that dies in between leaves the lease to expire and the mail goes again. Each mail carries
//! the same `Message-ID` (made from its idempotency key) on every attempt, so a receiver can
//! drop a duplicate. A refusal the server calls permanent (5xx) fails the mail at once; anything
//! else (4xx, connection refused, timeout) is tried again with backoff, 30 s doubling up to 1 h,
//! until [`MAX_ATTEMPTS`].
//!
//! A mail may carry a personal room link (`secret`, a part of the body and of the `.ics`). The
//! link is never stored in clear: [`enqueue`] puts [`LINK_PLACEHOLDER`] in its place in the body
//! and the `.ics`, and keeps the link sealed under the installation's [`LinkKey`], which lives
//! outside the database; [`deliver_due`] opens the seal only to render the mail it sends. Once
//! the mail is sent, cancelled or failed for good, the seal is dropped and the placeholder
//! becomes a note of what happened to the link. A copy of the database thus never opens a room.
//!
//! **Invariant:** addresses and contents never reach a log or the audit log; tracing lines and
//! audit records carry only ids, kinds and counts.

use std::path::Path;
use std::time::{Duration, SystemTime};

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{
    Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use sqlx::{AnyConnection, Row};

use crate::mail::ical;
use crate::mail::link_key::LinkKey;
use crate::mediation::cases::CaseId;
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::{Db, StoreError, UnixMillis};

/// Attempts after which a mail that keeps failing for transient reasons is given up.
pub const MAX_ATTEMPTS: u32 = 8;
/// The wait after the first failed attempt; it doubles after each one.
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// How long a claimed mail stays with the worker that claimed it. Longer than any send (the
/// SMTP timeout below applies to each exchange): another worker takes it only after this, when
/// the first one has surely died.
const LEASE: Duration = Duration::from_secs(10 * 60);
/// The SMTP client's timeout for each exchange with the server.
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);
/// Where the personal link goes in the stored body and `.ics` of a mail waiting to be sent
/// (a macro, so that the SQL below can hold it as a literal).
macro_rules! link_placeholder {
    () => {
        "[[link-personale]]"
    };
}
/// Where the personal link goes in the stored body and `.ics` of a mail waiting to be sent.
pub const LINK_PLACEHOLDER: &str = link_placeholder!();
/// What replaces the personal link in the stored body of a mail that was sent.
pub const SENT_LINK_PLACEHOLDER: &str = "[link personale inviato]";
/// What replaces the personal link in the stored body of a mail that was cancelled.
pub const CANCELLED_LINK_PLACEHOLDER: &str = "[link personale annullato]";
/// What replaces the personal link in the stored body of a mail that failed for good: the
/// link is withdrawn with it, and the mail cannot be sent again.
pub const FAILED_LINK_PLACEHOLDER: &str = "[link personale non consegnato]";
/// What stands for the personal link in a server's reply kept in `last_error`.
const LINK_IN_REPLY: &str = "[link personale]";
/// The longest idempotency key accepted (it becomes the `Message-ID`).
const MAX_KEY_BYTES: usize = 200;
/// The longest server reply kept in `last_error`.
const MAX_ERROR_CHARS: usize = 500;

/// Why a mail is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// Convocazione: the invitation to a meeting.
    Invitation,
    /// A reminder before the meeting.
    Reminder,
    /// The meeting was moved.
    Rescheduled,
    /// The meeting was cancelled.
    Cancelled,
}

impl MailKind {
    /// Every kind.
    pub const ALL: [MailKind; 4] = [
        MailKind::Invitation,
        MailKind::Reminder,
        MailKind::Rescheduled,
        MailKind::Cancelled,
    ];

    /// The stable code stored in the database and used by the API.
    pub fn code(self) -> &'static str {
        match self {
            MailKind::Invitation => "invitation",
            MailKind::Reminder => "reminder",
            MailKind::Rescheduled => "rescheduled",
            MailKind::Cancelled => "cancelled",
        }
    }

    /// The kind a stored code stands for.
    pub fn parse(code: &str) -> Option<MailKind> {
        MailKind::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// How the interface names it.
    pub fn label_it(self) -> &'static str {
        match self {
            MailKind::Invitation => "Convocazione",
            MailKind::Reminder => "Promemoria",
            MailKind::Rescheduled => "Rinvio",
            MailKind::Cancelled => "Annullamento",
        }
    }
}

/// Where a mail is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its (first or next) attempt.
    Pending,
    /// Accepted by the mail server (or written to its file).
    Sent,
    /// Refused for good, or given up after [`MAX_ATTEMPTS`]; a clerk may [`retry`] it.
    Failed,
    /// Not to be sent any more (its meeting moved or was cancelled).
    Cancelled,
}

impl DeliveryState {
    /// Every state.
    pub const ALL: [DeliveryState; 4] = [
        DeliveryState::Pending,
        DeliveryState::Sent,
        DeliveryState::Failed,
        DeliveryState::Cancelled,
    ];

    /// The stable code stored in the database and used by the API.
    pub fn code(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    /// The state a stored code stands for.
    pub fn parse(code: &str) -> Option<DeliveryState> {
        DeliveryState::ALL
            .into_iter()
            .find(|state| state.code() == code)
    }

    /// How the interface names it.
    pub fn label_it(self) -> &'static str {
        match self {
            DeliveryState::Pending => "In coda",
            DeliveryState::Sent => "Consegnato al server di posta",
            DeliveryState::Failed => "Non consegnato",
            DeliveryState::Cancelled => "Annullato",
        }
    }
}

/// A mail to queue.
#[derive(Clone, Copy)]
pub struct NewMail<'a> {
    /// Names the mail for good, e.g. `meeting:<id>:v1:invitation:<party>`: a second mail with
    /// the same key is not queued, and the key becomes the `Message-ID`.
    pub idempotency_key: &'a str,
    pub organism_id: Option<&'a str>,
    pub case_id: Option<&'a CaseId>,
    pub meeting_id: Option<&'a str>,
    pub kind: MailKind,
    pub to_name: &'a str,
    pub to_email: &'a str,
    pub subject: &'a str,
    /// Plain text, UTF-8.
    pub body: &'a str,
    /// A part of `body` (the personal room link), also found in `ics`: it is stored only sealed,
    /// and the mail rendered with it when it is sent.
    pub secret: Option<&'a str>,
    /// An iCalendar text attached as `invito.ics`.
    pub ics: Option<&'a str>,
    /// The iCalendar method of `ics`: `REQUEST` or `CANCEL`.
    pub ics_method: Option<&'a str>,
    /// Not sent before this time (reminders are queued for later).
    pub not_before: UnixMillis,
}

impl std::fmt::Debug for NewMail<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Addresses, contents and the link stay out of debug output.
        f.debug_struct("NewMail")
            .field("idempotency_key", &self.idempotency_key)
            .field("kind", &self.kind)
            .field("not_before", &self.not_before)
            .finish_non_exhaustive()
    }
}

impl NewMail<'_> {
    fn check(&self) -> Result<(), StoreError> {
        let key = self.idempotency_key;
        if key.is_empty() || key.len() > MAX_KEY_BYTES || key.chars().any(char::is_control) {
            return Err(StoreError::Invalid("idempotency key"));
        }
        if self.to_email.parse::<Address>().is_err() {
            return Err(StoreError::Invalid("email address"));
        }
        if [self.to_name, self.subject]
            .iter()
            .any(|line| line.chars().any(char::is_control))
        {
            return Err(StoreError::Invalid("mail header"));
        }
        if let Some(secret) = self.secret {
            if secret.is_empty() || !self.body.contains(secret) {
                return Err(StoreError::Invalid("mail secret"));
            }
        }
        match (self.ics, self.ics_method) {
            (None, None) | (Some(_), Some("REQUEST" | "CANCEL")) => Ok(()),
            _ => Err(StoreError::Invalid("calendar attachment")),
        }
    }
}

/// Queues `mail` in the caller's transaction, its personal link sealed under `link_key`. A
/// mail with the same idempotency key is not queued again: `Ok(false)`.
pub async fn enqueue(
    conn: &mut AnyConnection,
    now: UnixMillis,
    link_key: &LinkKey,
    mail: &NewMail<'_>,
) -> Result<bool, StoreError> {
    mail.check()?;
    let (body, ics, sealed) = match mail.secret {
        // The `.ics` is unfolded first: a folded line may split the link.
        Some(link) => (
            mail.body.replace(link, LINK_PLACEHOLDER),
            mail.ics
                .map(|ics| ical::unfold(ics).replace(link, LINK_PLACEHOLDER)),
            Some(link_key.seal(link, mail.idempotency_key)),
        ),
        None => (mail.body.to_owned(), mail.ics.map(str::to_owned), None),
    };
    // ON CONFLICT rather than catching the unique violation: on PostgreSQL a failed statement
    // would abort the caller's transaction.
    let inserted = sqlx::query(
        "INSERT INTO outbox (id, idempotency_key, organism_id, case_id, meeting_id, kind, \
         to_name, to_email, subject, body, secret, ics, ics_method, state, attempts, \
         next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', 0, $14, $15) \
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(mail.idempotency_key)
    .bind(mail.organism_id)
    .bind(mail.case_id)
    .bind(mail.meeting_id)
    .bind(mail.kind.code())
    .bind(mail.to_name)
    .bind(mail.to_email)
    .bind(mail.subject)
    .bind(body)
    .bind(sealed)
    .bind(ics)
    .bind(mail.ics_method)
    .bind(mail.not_before.0)
    .bind(now.0)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// SQL that forgets the personal link of a mail: the placeholder in the body and the `.ics`
/// becomes `$1` and the seal is dropped. Shared by the statements that end a mail's life.
macro_rules! forget_link {
    () => {
        concat!(
            "body = REPLACE(body, '",
            link_placeholder!(),
            "', $1), ics = REPLACE(ics, '",
            link_placeholder!(),
            "', $1), secret = NULL"
        )
    };
}

/// Cancels the mails of `meeting_id` not sent yet, in the caller's transaction; returns how
/// many. A mail being sent at this very moment may still go out; it is then recorded as sent.
/// (`now` is taken for symmetry with [`enqueue`]; the outbox keeps no cancellation time.)
pub async fn cancel_pending(
    conn: &mut AnyConnection,
    meeting_id: &str,
    _now: UnixMillis,
) -> Result<u64, StoreError> {
    let cancelled = sqlx::query(concat!(
        "UPDATE outbox SET state = 'cancelled', ",
        forget_link!(),
        " WHERE meeting_id = $2 AND state = 'pending'"
    ))
    .bind(CANCELLED_LINK_PLACEHOLDER)
    .bind(meeting_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(cancelled)
}

/// A mail as the outbox page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: String,
    pub kind: MailKind,
    pub to_name: String,
    pub to_email: String,
    pub subject: String,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The last failure: the server's reply, or why it could not be reached.
    pub last_error: Option<String>,
    pub next_attempt_at: UnixMillis,
    pub sent_at: Option<UnixMillis>,
    pub created_at: UnixMillis,
    pub case_id: Option<CaseId>,
    pub meeting_id: Option<String>,
}

/// The newest `limit` mails of `organism_id` (`None`: the installation without organisms),
/// newest first; `case_id` keeps one case's.
pub async fn list(
    db: &Db,
    organism_id: Option<&str>,
    case_id: Option<&CaseId>,
    limit: u32,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, kind, to_name, to_email, subject, state, attempts, last_error, \
         next_attempt_at, sent_at, created_at, case_id, meeting_id FROM outbox \
         WHERE (organism_id = $1 OR ($1 IS NULL AND organism_id IS NULL)) \
         AND ($2 IS NULL OR case_id = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(organism_id)
    .bind(case_id)
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(entry).collect()
}

fn entry(row: &sqlx::any::AnyRow) -> Result<OutboxEntry, StoreError> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(OutboxEntry {
        id: row.try_get("id")?,
        kind: MailKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("kind {kind}")))?,
        to_name: row.try_get("to_name")?,
        to_email: row.try_get("to_email")?,
        subject: row.try_get("subject")?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("state {state}")))?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("attempts {attempts}")))?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: UnixMillis(row.try_get("next_attempt_at")?),
        sent_at: row.try_get::<Option<i64>, _>("sent_at")?.map(UnixMillis),
        created_at: UnixMillis(row.try_get("created_at")?),
        case_id: row.try_get("case_id")?,
        meeting_id: row.try_get("meeting_id")?,
    })
}

/// Puts a failed mail of `organism_id` back in the queue, due now, with a fresh count of
/// attempts (the clerk fixed the address or the server). [`StoreError::NotFound`] when the
/// organism has no such mail, [`StoreError::Invalid`] when it has not failed or when its
/// personal link was withdrawn as it failed (the meeting must be scheduled again).
pub async fn retry(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism_id: Option<&str>,
    id: &str,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    let found = sqlx::query(
        "SELECT kind, state, attempts, body FROM outbox WHERE id = $1 \
         AND (organism_id = $2 OR ($2 IS NULL AND organism_id IS NULL))",
    )
    .bind(id)
    .bind(organism_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    let kind: String = found.try_get("kind")?;
    let attempts: i64 = found.try_get("attempts")?;
    let body: String = found.try_get("body")?;
    if body.contains(FAILED_LINK_PLACEHOLDER) {
        return Err(StoreError::Invalid(
            "mail link: the personal link of a failed mail is withdrawn; schedule the meeting \
             again to send a new one",
        ));
    }
    let requeued = sqlx::query(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1, \
         lease_until = NULL WHERE id = $2 AND state = 'failed'",
    )
    .bind(now.0)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if requeued != 1 {
        return Err(StoreError::Invalid(
            "mail state: only a failed mail can be retried",
        ));
    }
    let record = NewRecord {
        action: Action::MailRequeued,
        entity_type: "outbox",
        entity_id: id,
        changes: vec![
            Change::set(Field::Kind, kind),
            Change::changed(Field::State, "failed", "pending"),
            Change::changed(Field::Attempts, attempts.to_string(), "0"),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await?;
    Ok(())
}

/// Why a [`Mailer`] cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("invalid sender `{0}`: expected an address such as `Accordo <noreply@example.org>`")]
    Sender(String),
    #[error("invalid SMTP URL: {0}")]
    SmtpUrl(String),
}

/// Checks that `from` is a mailbox mail can be sent from (`Name <address>` or an address).
pub fn check_sender(from: &str) -> Result<(), MailerError> {
    parse_sender(from).map(|_| ())
}

fn parse_sender(from: &str) -> Result<Mailbox, MailerError> {
    from.parse::<Mailbox>()
        .map_err(|_| MailerError::Sender(from.to_owned()))
}

/// Checks an SMTP URL (`smtp://host:port`, `smtp://user:pass@host:587?tls=required`,
/// `smtps://host`) without connecting. The error never repeats the URL (it may hold a
/// password).
pub fn check_smtp_url(url: &str) -> Result<(), MailerError> {
    smtp_builder(url).map(|_| ())
}

fn smtp_builder(
    url: &str,
) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, MailerError> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|error| MailerError::SmtpUrl(error.to_string()))
}

/// Where mail goes: an SMTP server, or `.eml` files in a directory (development, tests, and
/// installations that hand files to another program).
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Files(_) => "files",
        };
        f.debug_struct("Mailer")
            .field("transport", &transport)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Writes each mail as one RFC 5322 `.eml` file into `dir` (which must exist).
    pub fn files(dir: &Path, from: &str) -> Result<Mailer, MailerError> {
        Ok(Mailer {
            transport: Transport::Files(AsyncFileTransport::new(dir)),
            from: parse_sender(from)?,
        })
    }

    /// Sends through the SMTP server of `url` (see [`check_smtp_url`]); connections are pooled.
    /// Needs a Tokio runtime (the pool keeps a task).
    pub fn smtp(url: &str, from: &str) -> Result<Mailer, MailerError> {
        let from = parse_sender(from)?;
        let transport = smtp_builder(url)?.timeout(Some(SMTP_TIMEOUT)).build();
        Ok(Mailer {
            transport: Transport::Smtp(transport),
            from,
        })
    }

    async fn send(
        &self,
        mail: &StoredMail,
        link: Option<&str>,
        now: UnixMillis,
    ) -> Result<(), SendFailure> {
        let message = self
            .message(mail, link, now)
            .map_err(|error| SendFailure::Refused(format!("Messaggio non valido: {error}.")))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(smtp_failure),
            Transport::Files(files) => files.send(message).await.map(|_| ()).map_err(|error| {
                SendFailure::Unreachable(format!(
                    "Impossibile scrivere il file del messaggio ({error})."
                ))
            }),
        }
    }

    /// The mail as it goes out: with `link` in place of its placeholder.
    fn message(
        &self,
        mail: &StoredMail,
        link: Option<&str>,
        now: UnixMillis,
    ) -> Result<Message, String> {
        let address: Address = mail.to_email.parse().map_err(|_| "indirizzo non valido")?;
        let date = SystemTime::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(now.0).map_err(|_| "data non valida")?);
        let builder = Message::builder()
            .message_id(Some(message_id(&mail.idempotency_key)))
            .from(self.from.clone())
            .to(Mailbox::new(
                Some(mail.to_name.clone()).filter(|name| !name.trim().is_empty()),
                address,
            ))
            .subject(mail.subject.clone())
            .date(date);
        let (body, ics) = match link {
            Some(link) => (
                mail.body.replace(LINK_PLACEHOLDER, link),
                mail.ics
                    .as_deref()
                    .map(|ics| ical::refold(&ics.replace(LINK_PLACEHOLDER, link))),
            ),
            None => (mail.body.clone(), mail.ics.clone()),
        };
        let text = SinglePart::plain(body);
        let built = match (ics, &mail.ics_method) {
            (Some(ics), Some(method)) => {
                let content_type =
                    ContentType::parse(&format!("text/calendar; method={method}; charset=UTF-8"))
                        .map_err(|error| error.to_string())?;
                let invitation = Attachment::new("invito.ics".to_owned()).body(ics, content_type);
                builder.multipart(MultiPart::mixed().singlepart(text).singlepart(invitation))
            }
            _ => builder.singlepart(text),
        };
        built.map_err(|error| error.to_string())
    }
}

/// `<KEY@accordo.invalid>`, the key written with the characters a Message-ID allows: letters,
/// digits, `-` and `_` as they are, `:` as `.` (where a dot is allowed), any other byte as
/// `=XX`. The mapping is one to one, so two keys never share a Message-ID.
fn message_id(key: &str) -> String {
    let mut left = String::with_capacity(key.len() + 16);
    let bytes = key.as_bytes();
    for (position, byte) in bytes.iter().enumerate() {
        let dot_allowed = position > 0 && position + 1 < bytes.len() && !left.ends_with('.');
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => left.push(char::from(*byte)),
            b':' if dot_allowed => left.push('.'),
            other => left.push_str(&format!("={other:02X}")),
        }
    }
    format!("<{left}@accordo.invalid>")
}

/// Why one attempt did not deliver; each holds what the clerk reads: the server's reply, or
/// why it could not be reached.
enum SendFailure {
    /// Refused for good (an SMTP 5xx reply, a message the client cannot send): trying again
    /// will not help.
    Refused(String),
    /// Refused for now (an SMTP 4xx reply).
    Deferred(String),
    /// No answer (connection refused, timeout, TLS): the next mails would fare no better.
    Unreachable(String),
}

impl SendFailure {
    /// The same failure with its reason changed by `change`.
    fn map(self, change: impl FnOnce(String) -> String) -> SendFailure {
        match self {
            SendFailure::Refused(reason) => SendFailure::Refused(change(reason)),
            SendFailure::Deferred(reason) => SendFailure::Deferred(change(reason)),
            SendFailure::Unreachable(reason) => SendFailure::Unreachable(change(reason)),
        }
    }
}

fn smtp_failure(error: lettre::transport::smtp::Error) -> SendFailure {
    use std::error::Error as _;
    let reason = |text: String| text.chars().take(MAX_ERROR_CHARS).collect::<String>();
    let reply = match (error.status(), error.source()) {
        (Some(code), Some(text)) => Some(reason(format!("{code} {text}"))),
        (Some(code), None) => Some(code.to_string()),
        (None, _) => None,
    };
    match reply {
        Some(reply) if error.is_permanent() => SendFailure::Refused(reply),
        Some(reply) => SendFailure::Deferred(reply),
        None if error.is_client() => {
            SendFailure::Refused(reason(format!("Messaggio non inviabile ({error}).")))
        }
        None if error.is_timeout() => {
            SendFailure::Unreachable("Il server di posta non ha risposto in tempo.".to_owned())
        }
        None => SendFailure::Unreachable(reason(format!(
            "Server di posta non raggiungibile ({error})."
        ))),
    }
}

/// A claimed mail, as it is sent.
struct StoredMail {
    id: String,
    idempotency_key: String,
    kind: String,
    to_name: String,
    to_email: String,
    subject: String,
    body: String,
    /// The personal link, sealed.
    secret: Option<String>,
    ics: Option<String>,
    ics_method: Option<String>,
    attempts: u32,
}

/// What one [`deliver_due`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Delivered to the server (or written).
    pub sent: u32,
    /// Failed for now; to be tried again later.
    pub retried: u32,
    /// Failed for good.
    pub failed: u32,
}

/// The wait before the attempt after `attempts` failed ones: 30 s, doubling, at most 1 h.
fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// Sends up to `limit` due mails (pending, due by `now`, not held by another worker) through
/// `mailer`, their personal links opened with `link_key`, and records each outcome with its
/// audit record. A link that does not open (the key changed) fails its mail for good. Two workers (two nodes) never send
/// the same mail at the same time: each mail is claimed first with a lease, by an update that
/// only one of them can win.
pub async fn deliver_due(
    db: &Db,
    mailer: &Mailer,
    link_key: &LinkKey,
    now: UnixMillis,
    limit: u32,
) -> Result<DeliveryReport, StoreError> {
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= $1 \
         AND (lease_until IS NULL OR lease_until < $1) \
         ORDER BY next_attempt_at, created_at LIMIT $2",
    )
    .bind(now.0)
    .bind(i64::from(limit))
    .fetch_all(db.pool())
    .await?;
    let lease_until = now.plus(LEASE);
    let mut report = DeliveryReport::default();
    for id in due {
        let Some(mail) = claim(db, &id, now, lease_until).await? else {
            continue;
        };
        let link = match &mail.secret {
            Some(sealed) => match link_key.open(sealed, &mail.idempotency_key) {
                Ok(link) => Some(link),
                Err(_) => {
                    tracing::warn!(mail = %mail.id, "personal link of a mail does not open");
                    let reason = "Il link personale non si può ricostruire: la chiave dei link \
                                  (link_key) è cambiata. Occorre fissare di nuovo l'incontro.";
                    record_failed(db, &mail, now, lease_until, reason).await?;
                    report.failed += 1;
                    continue;
                }
            },
            None => None,
        };
        let outcome = mailer.send(&mail, link.as_deref(), now).await;
        // A server that quotes the message back must not leave the link in `last_error`.
        let scrub = |reason: String| match &link {
            Some(link) => reason.replace(link.as_str(), LINK_IN_REPLY),
            None => reason,
        };
        let (reason, permanent, stop_round) = match outcome.map_err(|failure| failure.map(scrub)) {
            Ok(()) => {
                record_sent(db, &mail, now, lease_until).await?;
                report.sent += 1;
                continue;
            }
            Err(SendFailure::Refused(reason)) => (reason, true, false),
            Err(SendFailure::Deferred(reason)) => (reason, false, false),
            Err(SendFailure::Unreachable(reason)) => (reason, false, true),
        };
        let attempts = mail.attempts + 1;
        if permanent || attempts >= MAX_ATTEMPTS {
            record_failed(db, &mail, now, lease_until, &reason).await?;
            report.failed += 1;
        } else {
            let next = now.plus(backoff(attempts));
            record_retry(db, &mail, now, lease_until, next, &reason).await?;
            report.retried += 1;
        }
        if stop_round {
            // The server is down: the other due mails wait for the next round untouched, rather
            // than each spending a timeout now.
            break;
        }
    }
    if report != DeliveryReport::default() {
        tracing::info!(
            sent = report.sent,
            retried = report.retried,
            failed = report.failed,
            "outbox delivery"
        );
    }
    Ok(report)
}

/// Takes `id` for this worker until `lease_until`, unless another worker holds it or it is not
/// pending any more; returns its contents when taken.
async fn claim(
    db: &Db,
    id: &str,
    now: UnixMillis,
    lease_until: UnixMillis,
) -> Result<Option<StoredMail>, StoreError> {
    let claimed = sqlx::query(
        "UPDATE outbox SET lease_until = $1 WHERE id = $2 AND state = 'pending' \
         AND (lease_until IS NULL OR lease_until < $3)",
    )
    .bind(lease_until.0)
    .bind(id)
    .bind(now.0)
    .execute(db.pool())
    .await?
    .rows_affected();
    if claimed != 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id, idempotency_key, kind, to_name, to_email, subject, body, secret, ics, \
         ics_method, attempts FROM outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_one(db.pool())
    .await?;
    let attempts: i64 = row.try_get("attempts")?;
    Ok(Some(StoredMail {
        id: row.try_get("id")?,
        idempotency_key: row.try_get("idempotency_key")?,
        kind: row.try_get("kind")?,
        to_name: row.try_get("to_name")?,
        to_email: row.try_get("to_email")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        secret: row.try_get("secret")?,
        ics: row.try_get("ics")?,
        ics_method: row.try_get("ics_method")?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("attempts {attempts}")))?,
    }))
}

/// Writes an outcome (`update`, bound to the lease as its last parameter) and its audit
/// record in one transaction, if this worker still holds the lease.
async fn record_outcome<'q>(
    db: &Db,
    mail: &StoredMail,
    now: UnixMillis,
    update: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    action: Action,
    mut changes: Vec<Change>,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    let updated = update.execute(&mut *tx).await?.rows_affected();
    if updated != 1 {
        // The lease ran out during the send and another worker took the mail: it will record
        // its own outcome (the mail may go twice; its Message-ID lets the receiver notice).
        tracing::warn!(mail = %mail.id, "outbox lease lost during delivery");
        return Ok(());
    }
    changes.insert(0, Change::set(Field::Kind, mail.kind.clone()));
    let record = NewRecord {
        action,
        entity_type: "outbox",
        entity_id: &mail.id,
        changes,
    };
    audit::record(&mut tx, &Actor::system(), now, record).await?;
    tx.commit().await?;
    Ok(())
}

async fn record_sent(
    db: &Db,
    mail: &StoredMail,
    now: UnixMillis,
    lease_until: UnixMillis,
) -> Result<(), StoreError> {
    let attempts = mail.attempts + 1;
    // Recorded as sent even if the meeting was cancelled meanwhile: the mail did go out.
    let update = sqlx::query(concat!(
        "UPDATE outbox SET state = 'sent', ",
        forget_link!(),
        ", sent_at = $2, attempts = $3, lease_until = NULL, last_error = NULL \
         WHERE id = $4 AND lease_until = $5"
    ))
    .bind(SENT_LINK_PLACEHOLDER)
    .bind(now.0)
    .bind(i64::from(attempts))
    .bind(&mail.id)
    .bind(lease_until.0);
    let changes = vec![Change::set(Field::Attempts, attempts.to_string())];
    record_outcome(db, mail, now, update, Action::MailSent, changes).await
}

async fn record_failed(
    db: &Db,
    mail: &StoredMail,
    now: UnixMillis,
    lease_until: UnixMillis,
    reason: &str,
) -> Result<(), StoreError> {
    let attempts = mail.attempts + 1;
    // The link goes with the failure: kept sealed, it would wait for a retry that may never come.
    let update = sqlx::query(concat!(
        "UPDATE outbox SET state = 'failed', ",
        forget_link!(),
        ", attempts = $2, last_error = $3, lease_until = NULL \
         WHERE id = $4 AND lease_until = $5 AND state = 'pending'"
    ))
    .bind(FAILED_LINK_PLACEHOLDER)
    .bind(i64::from(attempts))
    .bind(reason)
    .bind(&mail.id)
    .bind(lease_until.0);
    tracing::warn!(mail = %mail.id, kind = %mail.kind, attempts, "mail not delivered");
    let changes = vec![Change::set(Field::Attempts, attempts.to_string())];
    record_outcome(db, mail, now, update, Action::MailFailed, changes).await
}

async fn record_retry(
    db: &Db,
    mail: &StoredMail,
    now: UnixMillis,
    lease_until: UnixMillis,
    next_attempt_at: UnixMillis,
    reason: &str,
) -> Result<(), StoreError> {
    let attempts = mail.attempts + 1;
    let update = sqlx::query(
        "UPDATE outbox SET attempts = $1, last_error = $2, next_attempt_at = $3, \
         lease_until = NULL WHERE id = $4 AND lease_until = $5 AND state = 'pending'",
    )
    .bind(i64::from(attempts))
    .bind(reason)
    .bind(next_attempt_at.0)
    .bind(&mail.id)
    .bind(lease_until.0);
    let changes = vec![
        Change::set(Field::Attempts, attempts.to_string()),
        Change::set(Field::NextAttemptAt, next_attempt_at.0.to_string()),
    ];
    record_outcome(db, mail, now, update, Action::MailRetry, changes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.code()), Some(kind));
        }
        for state in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse(state.code()), Some(state));
        }
        assert_eq!(MailKind::parse("newsletter"), None);
        assert_eq!(DeliveryState::parse("bounced"), None);
    }

    #[test]
    fn backoff_doubles_from_thirty_seconds_up_to_an_hour() {
        let waits: Vec<u64> = (1..=9)
            .map(|attempts| backoff(attempts).as_secs())
            .collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }

    #[test]
    fn message_ids_keep_keys_apart() {
        assert_eq!(
            message_id("meeting:0191a:v1:invitation:party-2"),
            "<meeting.0191a.v1.invitation.party-2@accordo.invalid>"
        );
        // A dot cannot start, end or follow a dot; other characters are escaped.
        assert_eq!(message_id(":a::b:"), "<=3Aa.=3Ab=3A@accordo.invalid>");
        assert_eq!(
            message_id("a.b=c è"),
            "<a=2Eb=3Dc=20=C3=A8@accordo.invalid>"
        );
        assert_ne!(message_id("a:b"), message_id("a=3Ab"));
    }
}
