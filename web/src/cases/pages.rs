//! The segreteria's case pages, server-rendered: the list of cases with the registration
//! form, and one page per case from which the whole day's work is done (details, parties and
//! their lawyers, the mediator's appointment, online meetings and their invitations, accounts,
//! history). Every form posts and redirects back; a refusal shows the page again with the
//! reason and the typed values. JavaScript only adds the duplicate check as one types.
//!
//! Permissions are those of the JSON API (`cases::api`, `cases::meetings`), checked by the same functions.

use askama::Template;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use backoffice::mail::outbox::{self, OutboxEntry};
use backoffice::mediation::agenda;
use backoffice::mediation::case_documents;
use backoffice::mediation::case_record::{
    self, CaseKind, Details, Direction, Outcome, Participant, PartyRole, Scope, Side,
};
use backoffice::mediation::cases::CaseId;
use backoffice::mediation::mediators;
use backoffice::mediation::scheduling::Invited;
use backoffice::people::{self, PersonError};
use backoffice::platform::access::Permission;
use backoffice::platform::audit::{Change, Field};
use backoffice::platform::rome_time;
use backoffice::rooms::room_files::{UploadError, MAX_ROOM_FILE_BYTES};
use backoffice::UnixMillis;
use serde::Deserialize;

use super::api::{self, DetailsBody, ParticipantBody};
use super::meetings;
use super::scope::{own_case, scope};
use crate::http::auth::CurrentUser;
use crate::http::csrf::CsrfToken;
use crate::http::error::capitalised;
use crate::http::error::AppError;
use crate::http::render::{audit_label, render, Nav, PageForm};
use crate::mediators::api::{appoint_on_case, Appointment};
use crate::people::pages::PersonForm;
use crate::state::AppState;

/// Euro cents as an Italian reads an amount: `12.500,00 €`.
pub fn euro(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let units = (cents / 100).to_string();
    let mut grouped = String::with_capacity(units.len() + units.len() / 3);
    for (i, digit) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push('.');
        }
        grouped.push(digit);
    }
    format!("{sign}{grouped},{:02} €", cents % 100)
}

/// An amount typed in euro (`12500`, `12.500,50`, `12500.5`) in cents; `None` if it is not one.
pub fn parse_euro(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('€').trim().replace(' ', "");
    if text.is_empty() {
        return None;
    }
    // With a comma, dots group thousands; without, a dot may be the decimal mark.
    let (units, decimals) = match text.rsplit_once(',') {
        Some((units, decimals)) => (units.replace('.', ""), decimals.to_owned()),
        None => match text.rsplit_once('.') {
            Some((units, decimals)) if decimals.len() <= 2 => {
                (units.to_owned(), decimals.to_owned())
            }
            _ => (text.replace('.', ""), String::new()),
        },
    };
    if units.is_empty()
        || decimals.len() > 2
        || !units
            .bytes()
            .chain(decimals.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let decimals: i64 = if decimals.is_empty() {
        0
    } else {
        format!("{decimals:0<2}").parse().ok()?
    };
    units.checked_mul(100)?.checked_add(decimals)
}

/// `(code, label)` pairs for a select.
type Options = Vec<(&'static str, &'static str)>;

fn subject_options() -> Options {
    mediators::SUBJECTS.to_vec()
}

fn kind_options() -> Options {
    CaseKind::ALL
        .iter()
        .map(|k| (k.code(), k.label()))
        .collect()
}

struct CaseRow {
    id: CaseId,
    reference: String,
    title: String,
    kind: &'static str,
    subject: String,
    mediator: String,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "cases/cases.html")]
struct CasesPage {
    nav: Nav,
    cases: Vec<CaseRow>,
    may_register: bool,
    kinds: Options,
    subjects: Options,
    error: Option<String>,
}

fn subject_label(code: Option<&str>) -> String {
    code.and_then(|code| mediators::SUBJECTS.iter().find(|(c, _)| *c == code))
        .map(|(_, label)| (*label).to_owned())
        .unwrap_or_else(|| "—".to_owned())
}

async fn cases_page(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    error: Option<String>,
) -> Result<CasesPage, AppError> {
    let scope = scope(current)?;
    let cases =
        case_record::list(&state.db, current.user.organism_id.as_deref(), scope, 500).await?;
    Ok(CasesPage {
        nav: Nav::new(current, csrf),
        cases: cases
            .into_iter()
            .map(|summary| CaseRow {
                id: summary.case.id,
                reference: summary.case.reference.as_str().to_owned(),
                kind: summary.details.kind.map_or("—", CaseKind::label),
                subject: subject_label(summary.details.subject.as_deref()),
                mediator: summary.mediator.unwrap_or_else(|| "da nominare".to_owned()),
                state: summary.details.outcome.map_or("Aperta", Outcome::label),
                title: summary.details.title,
            })
            .collect(),
        may_register: current.allows(Permission::ManageCases),
        kinds: kind_options(),
        subjects: subject_options(),
        error,
    })
}

/// `GET /pratiche`.
pub async fn list(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, AppError> {
    Ok(render(&cases_page(&state, &current, &csrf, None).await?))
}

#[derive(Debug, Deserialize)]
pub struct NewCaseForm {
    title: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    filed_on: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    value_indeterminate: Option<String>,
}

/// Reads an amount field: blank is `None`, anything else must be euro.
fn amount(text: &str) -> Result<Option<i64>, AppError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    parse_euro(text).map(Some).ok_or_else(|| {
        AppError::BadRequest("Scriva il valore in euro, ad esempio 12.500,00.".to_owned())
    })
}

/// `POST /pratiche`: registers a case with the next number and its first details.
pub async fn create(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    PageForm(form): PageForm<NewCaseForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageCases)?;
    let body = DetailsBody {
        title: form.title.clone(),
        filed_on: Some(form.filed_on.clone()),
        kind: Some(form.kind.clone()),
        subject: Some(form.subject.clone()),
        value_cents: None,
        value_indeterminate: form.value_indeterminate.is_some(),
        ..DetailsBody::default()
    };
    // Every field is checked before the case takes a number.
    let checked = amount(&form.value).and_then(|value| {
        let mut details = body.details()?;
        details.value_cents = value;
        details.checked().map_err(AppError::from)
    });
    let details = match checked {
        Ok(details) => details,
        Err(AppError::BadRequest(message)) => {
            return refuse_list(&state, &current, &csrf, message).await
        }
        Err(other) => return Err(other),
    };
    let now = state.clock_now();
    let organism = current.user.organism_id.as_deref();
    let case = backoffice::mediation::cases::register(
        &state.db,
        &current.actor(),
        now,
        organism,
        rome_time::year(now),
        &details.title,
    )
    .await?;
    if let Err(error) = case_record::update(
        &state.db,
        &current.actor(),
        now,
        organism,
        &case.id,
        details,
    )
    .await
    {
        // The case exists with its number; the clerk completes the details on its page.
        return refused(&state, &current, &csrf, &case.id, error.into()).await;
    }
    Ok(Redirect::to(&format!("/pratiche/{}", case.id)).into_response())
}

async fn refuse_list(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    message: String,
) -> Result<Response, AppError> {
    let page = cases_page(state, current, csrf, Some(message)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
}

/// What a page shows beyond the case itself, after a form was posted.
#[derive(Default)]
pub struct Extras {
    error: Option<String>,
    notice: Option<String>,
    handed_over: Vec<Invited>,
    draft: Option<ParticipantForm>,
    candidates: Vec<(String, String, &'static str)>,
}

impl Extras {
    fn error(message: String) -> Self {
        Self {
            error: Some(message),
            ..Self::default()
        }
    }
}

struct ParticipantRow {
    id: String,
    display_name: String,
    role: &'static str,
    side: &'static str,
    acts_for: String,
    email: String,
}

struct MeetingRow {
    id: String,
    when: String,
    date: String,
    time: String,
    minutes: i64,
    place: String,
    mediator: String,
    cancelled: bool,
    cancel_reason: String,
    upcoming: bool,
}

struct MailRow {
    to: String,
    kind: &'static str,
    state: &'static str,
    failed: bool,
    when: String,
    error: String,
}

struct HistoryRow {
    at: String,
    actor: String,
    action: &'static str,
    changes: Vec<String>,
}

struct DocumentRow {
    id: String,
    name: String,
    kind: &'static str,
    size: String,
    sha256: String,
    shareable: bool,
}

struct LedgerRow {
    on_date: String,
    direction: &'static str,
    amount: String,
    description: String,
}

#[derive(Template)]
#[template(path = "cases/case.html")]
struct CasePage {
    nav: Nav,
    id: CaseId,
    reference: String,
    details: Details,
    value: String,
    /// The value as the form shows it for editing.
    value_input: String,
    kind_label: &'static str,
    subject_label: String,
    state_label: &'static str,
    may_manage: bool,
    may_appoint: bool,
    may_schedule: bool,
    participants: Vec<ParticipantRow>,
    parties: Vec<(String, String)>,
    mediator: Option<(String, String)>,
    mediators: Vec<(String, String)>,
    meetings: Vec<MeetingRow>,
    mails: Vec<MailRow>,
    ledger: Vec<LedgerRow>,
    balance: String,
    history: Vec<HistoryRow>,
    documents: Vec<DocumentRow>,
    may_add_documents: bool,
    /// `(id, "sede – sala")` of the meeting rooms, for meetings in person.
    places: Vec<(String, String)>,
    kinds: Options,
    subjects: Options,
    responses: Options,
    outcomes: Options,
    roles: Options,
    sides: Options,
    today: String,
    /// The codes of the current kind, subject, response and outcome ("" when unset).
    kind_code: &'static str,
    subject_code: String,
    response_code: &'static str,
    outcome_code: &'static str,
    /// What the clerk typed in the add-participant form, when it is shown again.
    draft: ParticipantForm,
    extras: Extras,
}

async fn render_case(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    case_id: &CaseId,
    mut extras: Extras,
) -> Result<Response, AppError> {
    let scope = scope(current)?;
    let organism = current.user.organism_id.as_deref();
    let (case, details) = case_record::find(&state.db, organism, scope, case_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let participants = case_record::participants(&state.db, &case.id).await?;
    let now = state.clock_now();
    let meetings = agenda::of_case(&state.db, &case.id).await?;
    let mails = if current.allows(Permission::ViewOutbox) {
        outbox::list(&state.db, organism, Some(&case.id), 200).await?
    } else {
        Vec::new()
    };
    let ledger = case_record::entries(&state.db, &case.id).await?;
    let balance: i64 = ledger
        .iter()
        .map(|entry| match entry.direction {
            Direction::Income => entry.amount_cents,
            Direction::Expense => -entry.amount_cents,
        })
        .sum();
    let history = case_record::history(&state.db, &case.id).await?;
    let mediator_names: Vec<(String, String)> = mediators::list(&state.db, organism)
        .await?
        .into_iter()
        .map(|m| (m.mediator.id, m.mediator.display_name))
        .collect();
    let documents = case_documents::all(&state.db, &case.id)
        .await?
        .into_iter()
        .map(|document| DocumentRow {
            kind: if document.media_type == "application/pdf" {
                "PDF"
            } else {
                "Immagine"
            },
            size: if document.size >= 1024 * 1024 {
                format!("{:.1} MB", document.size as f64 / (1024.0 * 1024.0)).replace('.', ",")
            } else {
                format!("{} kB", document.size.div_ceil(1024))
            },
            sha256: document.sha256.chars().take(12).collect(),
            shareable: document.shareable,
            id: document.id,
            name: document.name,
        })
        .collect();
    let places = agenda::places(&state.db, organism).await?;
    let kind_code = details.kind.map_or("", CaseKind::code);
    let subject_code = details.subject.clone().unwrap_or_default();
    let response_code = details.response.map_or("", case_record::Response::code);
    let outcome_code = details.outcome.map_or("", Outcome::code);
    let status = if extras.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = CasePage {
        nav: Nav::new(current, csrf),
        id: case.id.clone(),
        reference: case.reference.as_str().to_owned(),
        value: match (details.value_cents, details.value_indeterminate) {
            (Some(cents), _) => euro(cents),
            (None, true) => "indeterminabile".to_owned(),
            (None, false) => "—".to_owned(),
        },
        value_input: details
            .value_cents
            .map(|cents| format!("{},{:02}", cents / 100, cents % 100))
            .unwrap_or_default(),
        kind_label: details.kind.map_or("—", CaseKind::label),
        subject_label: subject_label(details.subject.as_deref()),
        state_label: details.outcome.map_or("Aperta", Outcome::label),
        may_manage: current.allows(Permission::ManageCases),
        may_appoint: current.allows(Permission::ManageMediators),
        may_schedule: current.allows(Permission::ManageAgenda),
        parties: participants
            .iter()
            .filter(|p| p.role == PartyRole::Party)
            .map(|p| (p.id.clone(), p.display_name.clone()))
            .collect(),
        participants: participant_rows(&participants),
        mediator: mediators::appointed(&state.db, &case.id)
            .await?
            .map(|(mediator, reason)| (mediator.mediator.display_name, reason)),
        mediators: mediator_names.clone(),
        meetings: meetings
            .into_iter()
            .map(|meeting| MeetingRow {
                when: format!(
                    "{}, {}–{}",
                    rome_time::long_date(meeting.starts_at),
                    rome_time::clock(meeting.starts_at),
                    rome_time::clock(meeting.ends_at)
                ),
                date: rome_time::date(meeting.starts_at),
                time: rome_time::clock(meeting.starts_at),
                minutes: (meeting.ends_at.0 - meeting.starts_at.0) / 60_000,
                place: match &meeting.place {
                    Some((sede, room)) => format!("{sede}, {room}"),
                    None => "Online".to_owned(),
                },
                mediator: meeting.mediator.clone().unwrap_or_default(),
                cancelled: meeting.cancelled,
                cancel_reason: meeting.cancel_reason.clone().unwrap_or_default(),
                upcoming: !meeting.cancelled && meeting.starts_at > now && meeting.place.is_none(),
                id: meeting.id,
            })
            .collect(),
        mails: mails.iter().map(mail_row).collect(),
        balance: euro(balance),
        ledger: ledger
            .into_iter()
            .map(|entry| LedgerRow {
                on_date: italian_date(&entry.on_date),
                direction: entry.direction.label(),
                amount: euro(entry.amount_cents),
                description: entry.description,
            })
            .collect(),
        history: history
            .into_iter()
            .map(|record| HistoryRow {
                at: rome_time::format(record.at),
                actor: record.actor,
                action: audit_label(&record.action),
                changes: record
                    .changes
                    .iter()
                    .filter_map(|change| change_text(change, &mediator_names))
                    .collect(),
            })
            .collect(),
        documents,
        may_add_documents: current.allows(Permission::ManageCaseFiles),
        places: places
            .into_iter()
            .map(|(id, sede, room)| (id, format!("{sede} – {room}")))
            .collect(),
        details,
        kinds: kind_options(),
        subjects: subject_options(),
        responses: case_record::Response::ALL
            .iter()
            .map(|r| (r.code(), r.label()))
            .collect(),
        outcomes: Outcome::ALL.iter().map(|o| (o.code(), o.label())).collect(),
        roles: PartyRole::ALL
            .iter()
            .map(|r| (r.code(), r.label()))
            .collect(),
        sides: Side::ALL.iter().map(|s| (s.code(), s.label())).collect(),
        today: rome_time::date(now),
        kind_code,
        subject_code,
        response_code,
        outcome_code,
        draft: extras.draft.take().unwrap_or_default(),
        extras,
    };
    Ok((status, render(&page)).into_response())
}

fn participant_rows(participants: &[Participant]) -> Vec<ParticipantRow> {
    participants
        .iter()
        .map(|p| ParticipantRow {
            id: p.id.clone(),
            display_name: p.display_name.clone(),
            role: p.role.label(),
            side: p.side.map_or("—", Side::label),
            acts_for: p
                .represents
                .as_deref()
                .and_then(|id| participants.iter().find(|other| other.id == id))
                .map(|other| other.display_name.clone())
                .unwrap_or_default(),
            email: p
                .email
                .clone()
                .unwrap_or_else(|| "nessun indirizzo".to_owned()),
        })
        .collect()
}

fn mail_row(mail: &OutboxEntry) -> MailRow {
    MailRow {
        to: format!("{} <{}>", mail.to_name, mail.to_email),
        kind: mail.kind.label_it(),
        state: mail.state.label_it(),
        failed: mail.state == outbox::DeliveryState::Failed,
        when: rome_time::format(mail.sent_at.unwrap_or(mail.next_attempt_at)),
        error: mail.last_error.clone().unwrap_or_default(),
    }
}

/// How a field is named in a case's history; `None` for what only the audit log needs (ids,
/// secrets, delivery details).
fn history_label(field: Field) -> Option<&'static str> {
    Some(match field {
        Field::AmountCents => "Importo",
        Field::ClosedOn => "Chiusura",
        Field::CommunicationSentOn => "Comunicazione inviata",
        Field::Description => "Descrizione",
        Field::Direction => "Movimento",
        Field::EndsAt => "Fine",
        Field::FiledOn => "Deposito",
        Field::Kind => "Tipo",
        Field::MediaType => "Tipo di file",
        Field::Mediator => "Mediatore",
        Field::Name => "Nome",
        Field::OnDate => "Data",
        Field::Online => "Online",
        Field::Outcome => "Esito",
        Field::Overridden => "Scelta diversa dalla proposta",
        Field::Reason => "Motivo",
        Field::Reference => "Numero",
        Field::Response => "Risposta della parte chiamata",
        Field::ResponseOn => "Data della risposta",
        Field::Role => "Ruolo",
        Field::Sede => "Sede",
        Field::Sha256 => "Impronta SHA-256",
        Field::Shareable => "Condivisibile",
        Field::Side => "Lato",
        Field::Size => "Dimensione in byte",
        Field::StartsAt => "Inizio",
        Field::Subject => "Materia",
        Field::SubjectNote => "Precisazioni sulla materia",
        Field::Title => "Oggetto",
        Field::ValueCents => "Valore",
        Field::ValueIndeterminate => "Valore indeterminabile",
        Field::Attempts
        | Field::AutoAdmit
        | Field::Capacity
        | Field::CaseId
        | Field::CaseParticipations
        | Field::CaseRef
        | Field::ConfirmedNotDuplicate
        | Field::DisplayName
        | Field::Document
        | Field::Email
        | Field::ExpiresAt
        | Field::FailedLogins
        | Field::File
        | Field::From
        | Field::HoldWhenNoMediator
        | Field::LifetimeMs
        | Field::LockedUntil
        | Field::Meeting
        | Field::Member
        | Field::Members
        | Field::MergedInto
        | Field::MustChangePassword
        | Field::NextAttemptAt
        | Field::OrganismId
        | Field::Participant
        | Field::Password
        | Field::Person
        | Field::Represents
        | Field::RevokeInvite
        | Field::RevokedAt
        | Field::Room
        | Field::Scopes
        | Field::Session
        | Field::State
        | Field::Subjects
        | Field::To
        | Field::Token
        | Field::User
        | Field::Username
        | Field::Value
        | Field::Permission(_) => return None,
    })
}

/// A recorded change as the case's history shows it, in Italian; `None` for the ids that
/// only the audit log needs.
fn change_text(change: &Change, mediators: &[(String, String)]) -> Option<String> {
    let field = Field::from_code(&change.field)?;
    let label = history_label(field)?;
    let show = |value: &str| -> String {
        let labelled = match field {
            Field::FiledOn
            | Field::CommunicationSentOn
            | Field::ResponseOn
            | Field::ClosedOn
            | Field::OnDate => return italian_date(value),
            Field::Kind => CaseKind::parse(value).map(CaseKind::label),
            Field::Subject => return subject_label(Some(value)),
            Field::Response => {
                case_record::Response::parse(value).map(case_record::Response::label)
            }
            Field::Outcome => Outcome::parse(value).map(Outcome::label),
            Field::Role => PartyRole::parse(value).map(PartyRole::label),
            Field::Side => Side::parse(value).map(Side::label),
            Field::Direction => Direction::parse(value).map(Direction::label),
            Field::ValueCents | Field::AmountCents => {
                return value.parse().map_or_else(|_| value.to_owned(), euro)
            }
            Field::StartsAt | Field::EndsAt => {
                return value
                    .parse()
                    .map_or_else(|_| value.to_owned(), |at| rome_time::format(UnixMillis(at)))
            }
            Field::ValueIndeterminate | Field::Overridden | Field::Online | Field::Shareable => {
                Some(if value == "true" { "sì" } else { "no" })
            }
            Field::Mediator => mediators
                .iter()
                .find(|(id, _)| id == value)
                .map(|(_, name)| name.as_str()),
            _ => None,
        };
        labelled.unwrap_or(value).to_owned()
    };
    Some(match (&change.before, &change.after) {
        (Some(before), Some(after)) => format!("{label}: {} → {}", show(before), show(after)),
        (None, Some(after)) => format!("{label}: {}", show(after)),
        (Some(before), None) => format!("{label}: {} → —", show(before)),
        (None, None) => label.to_owned(),
    })
}

/// `YYYY-MM-DD` as `DD/MM/YYYY`.
fn italian_date(date: &str) -> String {
    match backoffice::platform::dates::parse(date) {
        Some((year, month, day)) => format!("{day:02}/{month:02}/{year}"),
        None => date.to_owned(),
    }
}

/// `GET /pratiche/{case}`.
pub async fn show(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(case_id): Path<CaseId>,
) -> Result<Response, AppError> {
    render_case(&state, &current, &csrf, &case_id, Extras::default()).await
}

/// The case page again with `error` above the forms, when the clerk can put it right;
/// otherwise the error page.
async fn refused(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    case_id: &CaseId,
    error: AppError,
) -> Result<Response, AppError> {
    match error.for_the_form() {
        Some(message) => render_case(state, current, csrf, case_id, Extras::error(message)).await,
        None => Err(error),
    }
}

/// Back to the case page at `anchor`, or the page again with the refusal.
async fn outcome(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    case_id: &CaseId,
    anchor: &str,
    result: Result<(), AppError>,
) -> Result<Response, AppError> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/pratiche/{case_id}#{anchor}")).into_response()),
        Err(error) => refused(state, current, csrf, case_id, error).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct DetailsForm {
    title: String,
    #[serde(default)]
    filed_on: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    subject_note: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    value_indeterminate: Option<String>,
    #[serde(default)]
    communication_sent_on: String,
    #[serde(default)]
    response: String,
    #[serde(default)]
    response_on: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    closed_on: String,
    #[serde(default)]
    sede: String,
}

/// `POST /pratiche/{case}/dati`.
pub async fn update_details(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(case_id): Path<CaseId>,
    PageForm(form): PageForm<DetailsForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageCases)?;
    let result = async {
        let body = DetailsBody {
            title: form.title,
            filed_on: Some(form.filed_on),
            kind: Some(form.kind),
            subject: Some(form.subject),
            subject_note: Some(form.subject_note),
            value_cents: amount(&form.value)?,
            value_indeterminate: form.value_indeterminate.is_some(),
            communication_sent_on: Some(form.communication_sent_on),
            response: Some(form.response),
            response_on: Some(form.response_on),
            outcome: Some(form.outcome),
            closed_on: Some(form.closed_on),
            sede: Some(form.sede),
        };
        api::update_details(&state, &current, &case_id, body)
            .await
            .map(|_| ())
    }
    .await;
    outcome(&state, &current, &csrf, &case_id, "dati", result).await
}

/// The add-participant form: an existing person (`person`) or a new one typed in.
#[derive(Debug, Default, Deserialize)]
pub struct ParticipantForm {
    #[serde(default)]
    person: String,
    role: String,
    #[serde(default)]
    side: String,
    #[serde(default)]
    represents: String,
    /// A person to register, when `person` is empty.
    #[serde(flatten)]
    new: PersonForm,
}

fn text(value: &str) -> Option<String> {
    Some(value.trim().to_owned()).filter(|value| !value.is_empty())
}

/// `POST /pratiche/{case}/partecipanti`: registers the person if new (after the duplicate
/// check) and adds them with their role.
pub async fn add_participant(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(case_id): Path<CaseId>,
    PageForm(form): PageForm<ParticipantForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageCases)?;
    let person = match text(&form.person) {
        Some(existing) => existing,
        None => {
            current.require(Permission::ManagePeople)?;
            let created = form.new.register(&state, &current).await;
            match created {
                Ok(person) => person.id,
                Err(PersonError::Duplicates(candidates)) => {
                    let extras = Extras {
                        error: Some(
                            "Nell'anagrafica c'è già chi potrebbe essere questa persona: scelga \
                             la sua scheda, oppure confermi che si tratta di un'altra persona."
                                .to_owned(),
                        ),
                        candidates: candidates
                            .into_iter()
                            .map(|candidate| {
                                let why = match candidate.reason {
                                    people::DuplicateReason::SameFiscalCode => {
                                        "stesso codice fiscale"
                                    }
                                    people::DuplicateReason::SameVatNumber => "stessa partita IVA",
                                    people::DuplicateReason::SameNameAndBirthDate => {
                                        "stesso nome e data di nascita"
                                    }
                                };
                                (candidate.person.id, candidate.person.display_name, why)
                            })
                            .collect(),
                        draft: Some(form),
                        ..Extras::default()
                    };
                    return render_case(&state, &current, &csrf, &case_id, extras).await;
                }
                Err(PersonError::NotFound) => return Err(AppError::NotFound),
                Err(PersonError::Store(error)) => return Err(error.into()),
                Err(other) => {
                    let extras = Extras {
                        error: Some(capitalised(&other.to_string())),
                        draft: Some(form),
                        ..Extras::default()
                    };
                    return render_case(&state, &current, &csrf, &case_id, extras).await;
                }
            }
        }
    };
    let body = ParticipantBody {
        person,
        role: form.role.clone(),
        side: text(&form.side),
        represents: text(&form.represents),
    };
    match api::add_participant_to(&state, &current, &case_id, &body).await {
        Ok(_) => Ok(Redirect::to(&format!("/pratiche/{case_id}#partecipanti")).into_response()),
        Err(AppError::BadRequest(message)) => {
            let extras = Extras {
                error: Some(message),
                draft: Some(form),
                ..Extras::default()
            };
            render_case(&state, &current, &csrf, &case_id, extras).await
        }
        Err(other) => Err(other),
    }
}

/// `POST /pratiche/{case}/partecipanti/{participant}/rimuovi`.
pub async fn remove_participant(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path((case_id, participant)): Path<(CaseId, String)>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageCases)?;
    case_record::find(
        &state.db,
        current.user.organism_id.as_deref(),
        Scope::All,
        &case_id,
    )
    .await?
    .ok_or(AppError::NotFound)?;
    let result = case_record::remove_participant(
        &state.db,
        &current.actor(),
        state.clock_now(),
        &case_id,
        &participant,
    )
    .await
    .map_err(AppError::from);
    outcome(&state, &current, &csrf, &case_id, "partecipanti", result).await
}

#[derive(Debug, Deserialize)]
pub struct AppointForm {
    #[serde(default)]
    mediator: String,
    #[serde(default)]
    override_reason: String,
}

/// `POST /pratiche/{case}/mediatore`: the engine's proposal, or the clerk's choice with a reason.
pub async fn appoint(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(case_id): Path<CaseId>,
    PageForm(form): PageForm<AppointForm>,
) -> Result<Response, AppError> {
    let body = Appointment::chosen(text(&form.mediator), text(&form.override_reason));
    let result = appoint_on_case(&state, &current, &case_id, body)
        .await
        .map(|_| ());
    outcome(&state, &current, &csrf, &case_id, "mediatore", result).await
}

#[derive(Debug, Deserialize)]
pub struct MeetingForm {
    date: String,
    time: String,
    duration_minutes: u32,
    /// A meeting room for a meeting in person; empty or absent: online.
    #[serde(default)]
    place: String,
}

impl MeetingForm {
    /// The meeting window, read as Italian time.
    fn window(&self) -> Result<(UnixMillis, UnixMillis), AppError> {
        let minutes = self
            .time
            .split_once(':')
            .and_then(|(hours, minutes)| {
                let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
                (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
            })
            .ok_or_else(|| AppError::BadRequest("Indichi l'ora come HH:MM.".to_owned()))?;
        let starts_at = rome_time::at_local(&self.date, minutes)
            .ok_or_else(|| AppError::BadRequest("Indichi la data come AAAA-MM-GG.".to_owned()))?;
        meetings::window(starts_at.0, self.duration_minutes)
    }
}

/// The case page after a scheduling: the invitations, and the links to hand over by hand.
async fn scheduled_page(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    case_id: &CaseId,
    result: Result<Vec<Invited>, AppError>,
    done: &str,
) -> Result<Response, AppError> {
    match result {
        Ok(invited) => {
            let mailed = invited.iter().filter(|i| i.email.is_some()).count();
            let extras = Extras {
                notice: Some(format!(
                    "{done} Inviti in coda per l'invio: {mailed} su {}.",
                    invited.len()
                )),
                handed_over: invited
                    .into_iter()
                    .filter(|invited| invited.link_to_hand_over.is_some())
                    .collect(),
                ..Extras::default()
            };
            render_case(state, current, csrf, case_id, extras).await
        }
        Err(error) => refused(state, current, csrf, case_id, error).await,
    }
}

/// `POST /pratiche/{case}/incontri`: an online meeting with everybody invited.
pub async fn schedule(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(case_id): Path<CaseId>,
    PageForm(form): PageForm<MeetingForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageAgenda)?;
    if let Some(place) = text(&form.place) {
        let result = in_person(&state, &current, &case_id, &form, &place).await;
        return outcome(&state, &current, &csrf, &case_id, "incontri", result).await;
    }
    let result = async {
        let window = form.window()?;
        Ok(meetings::schedule_for(&state, &current, &case_id, window)
            .await?
            .invited)
    };
    let done = "Incontro fissato.";
    scheduled_page(&state, &current, &csrf, &case_id, result.await, done).await
}

/// `POST /incontri/{meeting}/sposta`.
pub async fn reschedule(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(meeting): Path<String>,
    PageForm(form): PageForm<MeetingForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageAgenda)?;
    let case_id = agenda::case_of(&state.db, &meeting)
        .await?
        .ok_or(AppError::NotFound)?;
    let result = async {
        let window = form.window()?;
        Ok(
            meetings::reschedule_meeting(&state, &current, &meeting, window)
                .await?
                .invited,
        )
    };
    let done = "Incontro spostato.";
    scheduled_page(&state, &current, &csrf, &case_id, result.await, done).await
}

#[derive(Debug, Deserialize)]
pub struct CancelForm {
    reason: String,
}

/// `POST /incontri/{meeting}/annulla`.
pub async fn cancel(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(meeting): Path<String>,
    PageForm(form): PageForm<CancelForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageAgenda)?;
    let case_id = agenda::case_of(&state.db, &meeting)
        .await?
        .ok_or(AppError::NotFound)?;
    let result = meetings::cancel_meeting(&state, &current, &meeting, &form.reason)
        .await
        .map(|()| Vec::new());
    scheduled_page(
        &state,
        &current,
        &csrf,
        &case_id,
        result,
        "Incontro annullato.",
    )
    .await
}

/// Books a meeting in `place` (a room of one of the organism's offices) with the case's
/// mediator. No invitation is mailed: the parties are convened as the office does for
/// meetings in person.
async fn in_person(
    state: &AppState,
    current: &CurrentUser,
    case_id: &CaseId,
    form: &MeetingForm,
    place: &str,
) -> Result<(), AppError> {
    own_case(state, current, case_id).await?;
    let organism = current.user.organism_id.as_deref();
    let known = agenda::places(&state.db, organism)
        .await?
        .iter()
        .any(|(id, _, _)| id == place);
    if !known {
        return Err(AppError::BadRequest(
            "Scelga una sala dall'elenco.".to_owned(),
        ));
    }
    let (starts_at, ends_at) = form.window()?;
    if starts_at <= state.clock_now() {
        return Err(AppError::BadRequest(
            "L'incontro deve essere fissato nel futuro.".to_owned(),
        ));
    }
    let mediator = mediators::appointed(&state.db, case_id)
        .await?
        .map(|(mediator, _)| mediator.mediator.id);
    let meeting = agenda::NewMeeting {
        case_id,
        starts_at,
        ends_at,
        place: Some(place),
        mediator: mediator.as_deref(),
    };
    agenda::schedule(&state.db, &current.actor(), state.clock_now(), &meeting).await?;
    Ok(())
}

/// `POST /pratiche/{case}/documenti`: a multipart form with `file` and `shareable`.
pub async fn add_document(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(case_id): Path<CaseId>,
    multipart: Result<axum::extract::Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageCaseFiles)?;
    own_case(&state, &current, &case_id).await?;
    let unreadable = || AppError::BadRequest("Il modulo del documento non è leggibile.".to_owned());
    // The framework's own text (English, technical) never reaches the page.
    let refused = |error: MultipartError| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge {
                max_bytes: MAX_ROOM_FILE_BYTES,
            }
        } else {
            unreadable()
        }
    };
    let mut multipart = multipart.map_err(|_| unreadable())?;
    let (mut file, mut shareable) = (None, false);
    while let Some(field) = multipart.next_field().await.map_err(refused)? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or_default().to_owned();
                let bytes = field.bytes().await.map_err(refused)?;
                file = Some((name, bytes.to_vec()));
            }
            Some("shareable") => shareable = true,
            _ => {}
        }
    }
    let Some((name, bytes)) = file.filter(|(_, bytes)| !bytes.is_empty()) else {
        let extras = Extras::error("Scelga il file da aggiungere.".to_owned());
        return render_case(&state, &current, &csrf, &case_id, extras).await;
    };
    let added = case_documents::add(
        &state.db,
        &state.files,
        &current.actor(),
        state.clock_now(),
        &case_id,
        (&name, shareable),
        bytes,
    )
    .await;
    let message = match added {
        Ok(_) => return Ok(Redirect::to(&format!("/pratiche/{case_id}#fascicolo")).into_response()),
        Err(UploadError::TooLarge) => "Il file supera i 20 MB consentiti.",
        Err(UploadError::UnsupportedType) => {
            "Sono accettati PDF e immagini (PNG, JPEG, GIF, WebP), riconosciuti dal contenuto."
        }
        Err(UploadError::Empty) => "Il file è vuoto.",
        Err(UploadError::BadName) => "Il nome del file è vuoto, troppo lungo o non valido.",
        Err(UploadError::QuotaExceeded) => "Lo spazio per i documenti è esaurito.",
        Err(UploadError::Store(error)) => return Err(error.into()),
    };
    render_case(
        &state,
        &current,
        &csrf,
        &case_id,
        Extras::error(message.to_owned()),
    )
    .await
}

/// `GET /pratiche/{case}/documenti/{document}`: the document, for whoever may see the case.
pub async fn download_document(
    State(state): State<AppState>,
    current: CurrentUser,
    Path((case_id, document)): Path<(CaseId, String)>,
) -> Result<Response, AppError> {
    let scope = scope(&current)?;
    case_record::find(
        &state.db,
        current.user.organism_id.as_deref(),
        scope,
        &case_id,
    )
    .await?
    .ok_or(AppError::NotFound)?;
    let (document, bytes) = case_documents::read(&state.db, &state.files, &case_id, &document)
        .await?
        .ok_or(AppError::NotFound)?;
    crate::rooms::files::inline_file(&document.media_type, bytes)
}

#[derive(Debug, Deserialize)]
pub struct EntryForm {
    direction: String,
    amount: String,
    description: String,
    on_date: String,
}

/// `POST /pratiche/{case}/movimenti`.
pub async fn add_entry(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    Path(case_id): Path<CaseId>,
    PageForm(form): PageForm<EntryForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageCases)?;
    let result = async {
        case_record::find(
            &state.db,
            current.user.organism_id.as_deref(),
            Scope::All,
            &case_id,
        )
        .await?
        .ok_or(AppError::NotFound)?;
        let direction = Direction::parse(&form.direction)
            .ok_or_else(|| AppError::BadRequest("Scelga entrata o uscita.".to_owned()))?;
        let cents = amount(&form.amount)?.unwrap_or(0);
        case_record::add_entry(
            &state.db,
            &current.actor(),
            state.clock_now(),
            &case_id,
            (direction, cents, &form.description, &form.on_date),
        )
        .await
        .map(|_| ())
        .map_err(AppError::from)
    }
    .await;
    outcome(&state, &current, &csrf, &case_id, "movimenti", result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_and_print_the_italian_way() {
        assert_eq!(parse_euro("12.500,50"), Some(1_250_050));
        assert_eq!(parse_euro("12500"), Some(1_250_000));
        assert_eq!(parse_euro("12500.5"), Some(1_250_050));
        assert_eq!(parse_euro("1.250.000"), Some(125_000_000));
        assert_eq!(parse_euro("40 €"), Some(4_000));
        for wrong in ["", "dieci", "1,234", "-5", "12,5,0"] {
            assert_eq!(parse_euro(wrong), None, "{wrong}");
        }
        assert_eq!(euro(1_250_050), "12.500,50 €");
        assert_eq!(euro(4_000), "40,00 €");
        assert_eq!(euro(-99), "-0,99 €");
    }
}
