//! The full record of a mediation case (R-CASE-1), beyond the number and title of [`crate::mediation::cases`]:
//! type, subject matter, value, filing and communication dates, the other side's response, the
//! outcome; the people taking part (parties on each side with their lawyers and
//! representatives, the CTU); income and expenses; and the case's history from the audit log.
//!
//! **Invariant:** every change writes one audit record about the case (`entity_type = "case"`)
//! with the fields that changed, before and after, in the same transaction; the history shown on
//! the case is those records.
//!
//! **Invariant:** a lawyer or representative acts for a party of the same case and stands on
//! that party's side; the CTU stands on no side. A person merged into another cannot be added
//! (the clerk picks the record that continues it).

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::mediation::cases::CaseId;
use crate::mediation::cases::{case_from_row, Case};
use crate::mediation::mediators;
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord, Record};
use crate::platform::dates;
use crate::platform::names;
use crate::{Db, StoreError, UnixMillis};

/// How the mediation came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseKind {
    /// Condition for bringing the claim to court (art. 5, c. 1, d.lgs. 28/2010).
    Mandatory,
    /// Ordered by the judge (art. 5-quater).
    CourtOrdered,
    /// Required by a contract or statute clause (art. 5-sexies).
    ContractClause,
    Voluntary,
}

/// How the other side answered the invitation to mediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    Pending,
    Accepted,
    Refused,
}

/// How the case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Agreement,
    NoAgreement,
    /// The called party did not take part.
    Absent,
    /// The applicant withdrew.
    Withdrawn,
}

/// A part a person plays in a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyRole {
    Party,
    Lawyer,
    Representative,
    /// CTU: the technical expert.
    Expert,
}

/// One side of the dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Istante,
    Chiamata,
}

/// Codes (stored, and used by forms and the API) and Italian labels of a closed set of values.
macro_rules! coded {
    ($type:ident { $($variant:ident => $code:literal, $label:literal;)* }) => {
        impl $type {
            pub const ALL: &'static [$type] = &[$($type::$variant),*];

            pub fn code(self) -> &'static str {
                match self { $($type::$variant => $code),* }
            }

            pub fn label(self) -> &'static str {
                match self { $($type::$variant => $label),* }
            }

            pub fn parse(code: &str) -> Option<$type> {
                Self::ALL.iter().copied().find(|value| value.code() == code)
            }
        }
    };
}

coded!(CaseKind {
    Mandatory => "mandatory", "Obbligatoria (art. 5, c. 1, d.lgs. 28/2010)";
    CourtOrdered => "court_ordered", "Demandata dal giudice (art. 5-quater)";
    ContractClause => "contract_clause", "Da clausola contrattuale o statutaria (art. 5-sexies)";
    Voluntary => "voluntary", "Volontaria";
});

coded!(Response {
    Pending => "pending", "In attesa di risposta";
    Accepted => "accepted", "Adesione della parte chiamata";
    Refused => "refused", "Mancata adesione della parte chiamata";
});

coded!(Outcome {
    Agreement => "agreement", "Accordo raggiunto";
    NoAgreement => "no_agreement", "Mancato accordo";
    Absent => "absent", "Mancata partecipazione della parte chiamata";
    Withdrawn => "withdrawn", "Rinuncia della parte istante";
});

coded!(PartyRole {
    Party => "party", "Parte";
    Lawyer => "lawyer", "Avvocato";
    Representative => "representative", "Rappresentante";
    Expert => "expert", "CTU";
});

coded!(Side {
    Istante => "istante", "Parte istante";
    Chiamata => "chiamata", "Parte chiamata";
});

impl Side {
    /// The side as rooms know it.
    pub fn room_side(self) -> rooms::Side {
        match self {
            Side::Istante => rooms::Side::Istante,
            Side::Chiamata => rooms::Side::Chiamata,
        }
    }
}

impl PartyRole {
    /// The role as rooms know it.
    pub fn room_role(self) -> rooms::Role {
        match self {
            PartyRole::Party => rooms::Role::Party,
            PartyRole::Lawyer => rooms::Role::Lawyer,
            PartyRole::Representative => rooms::Role::Representative,
            PartyRole::Expert => rooms::Role::Expert,
        }
    }
}

/// The editable fields of a case; dates are `YYYY-MM-DD`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    pub title: String,
    pub filed_on: Option<String>,
    pub kind: Option<CaseKind>,
    /// A code of [`mediators::SUBJECTS`].
    pub subject: Option<String>,
    pub subject_note: Option<String>,
    pub value_cents: Option<i64>,
    pub value_indeterminate: bool,
    pub communication_sent_on: Option<String>,
    pub response: Option<Response>,
    pub response_on: Option<String>,
    pub outcome: Option<Outcome>,
    pub closed_on: Option<String>,
    pub sede: Option<String>,
}

/// Why a change to a case was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A value the clerk must correct, said in Italian.
    #[error("{0}")]
    Invalid(&'static str),
    #[error("no such case")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for RecordError {
    fn from(error: sqlx::Error) -> Self {
        RecordError::Store(error.into())
    }
}

fn check_date(date: &Option<String>, message: &'static str) -> Result<(), RecordError> {
    match date {
        Some(date) if dates::parse(date).is_none() => Err(RecordError::Invalid(message)),
        _ => Ok(()),
    }
}

impl Details {
    /// Trims the texts and checks every field; blank texts become `None`.
    pub fn checked(mut self) -> Result<Details, RecordError> {
        let blank_to_none = |value: &mut Option<String>| {
            *value = value
                .as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_owned);
        };
        self.title = self.title.trim().to_owned();
        if self.title.is_empty() {
            return Err(RecordError::Invalid("serve l'oggetto della pratica"));
        }
        if !names::is_one_line(&self.title) || !self.sede.as_deref().is_none_or(names::is_one_line)
        {
            return Err(RecordError::Invalid(names::NOT_ONE_LINE));
        }
        for value in [
            &mut self.filed_on,
            &mut self.subject,
            &mut self.subject_note,
            &mut self.communication_sent_on,
            &mut self.response_on,
            &mut self.closed_on,
            &mut self.sede,
        ] {
            blank_to_none(value);
        }
        check_date(
            &self.filed_on,
            "la data di deposito va scritta come AAAA-MM-GG",
        )?;
        check_date(
            &self.communication_sent_on,
            "la data della comunicazione va scritta come AAAA-MM-GG",
        )?;
        check_date(
            &self.response_on,
            "la data della risposta va scritta come AAAA-MM-GG",
        )?;
        check_date(
            &self.closed_on,
            "la data di chiusura va scritta come AAAA-MM-GG",
        )?;
        if let Some(subject) = &self.subject {
            if !mediators::SUBJECTS.iter().any(|(code, _)| code == subject) {
                return Err(RecordError::Invalid("materia sconosciuta"));
            }
        }
        match (self.value_cents, self.value_indeterminate) {
            (Some(value), _) if value < 0 => {
                return Err(RecordError::Invalid("il valore non può essere negativo"))
            }
            (Some(_), true) => {
                return Err(RecordError::Invalid(
                    "indichi un valore oppure «indeterminabile», non entrambi",
                ))
            }
            _ => {}
        }
        if self.outcome.is_some() != self.closed_on.is_some() {
            return Err(RecordError::Invalid(
                "l'esito e la data di chiusura vanno indicati insieme",
            ));
        }
        if let (Some(filed), Some(closed)) = (&self.filed_on, &self.closed_on) {
            if closed < filed {
                return Err(RecordError::Invalid(
                    "la chiusura non può precedere il deposito",
                ));
            }
        }
        Ok(self)
    }

    /// Each field as the audit log shows it.
    fn audit_fields(&self) -> Vec<(Field, Option<String>)> {
        vec![
            (Field::Title, Some(self.title.clone())),
            (Field::FiledOn, self.filed_on.clone()),
            (Field::Kind, self.kind.map(|kind| kind.code().to_owned())),
            (Field::Subject, self.subject.clone()),
            (Field::SubjectNote, self.subject_note.clone()),
            (
                Field::ValueCents,
                self.value_cents.map(|value| value.to_string()),
            ),
            (
                Field::ValueIndeterminate,
                Some(self.value_indeterminate.to_string()),
            ),
            (
                Field::CommunicationSentOn,
                self.communication_sent_on.clone(),
            ),
            (
                Field::Response,
                self.response.map(|response| response.code().to_owned()),
            ),
            (Field::ResponseOn, self.response_on.clone()),
            (
                Field::Outcome,
                self.outcome.map(|outcome| outcome.code().to_owned()),
            ),
            (Field::ClosedOn, self.closed_on.clone()),
            (Field::Sede, self.sede.clone()),
        ]
    }
}

/// The columns [`details_from_row`] reads.
const DETAIL_COLUMNS: &str = "title, filed_on, kind, subject, subject_note, value_cents, \
    value_indeterminate, communication_sent_on, response, response_on, outcome, closed_on, sede";

fn parse_code<T>(
    row: &AnyRow,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    let code: Option<String> = row.try_get(column)?;
    code.map(|code| parse(&code).ok_or_else(|| StoreError::Corrupt(format!("{column} {code}"))))
        .transpose()
}

fn details_from_row(row: &AnyRow) -> Result<Details, StoreError> {
    let indeterminate: i64 = row.try_get("value_indeterminate")?;
    Ok(Details {
        title: row.try_get("title")?,
        filed_on: row.try_get("filed_on")?,
        kind: parse_code(row, "kind", CaseKind::parse)?,
        subject: row.try_get("subject")?,
        subject_note: row.try_get("subject_note")?,
        value_cents: row.try_get("value_cents")?,
        value_indeterminate: indeterminate == 1,
        communication_sent_on: row.try_get("communication_sent_on")?,
        response: parse_code(row, "response", Response::parse)?,
        response_on: row.try_get("response_on")?,
        outcome: parse_code(row, "outcome", Outcome::parse)?,
        closed_on: row.try_get("closed_on")?,
        sede: row.try_get("sede")?,
    })
}

/// Whose cases a user may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Every case of the organism (segreteria, administrators).
    All,
    /// Only the cases whose current mediator is linked to this user.
    MediatorUser(&'a str),
}

impl Scope<'_> {
    /// The SQL condition on cases aliased `c`; a mediator's user is bound as `$3`.
    fn condition(self) -> &'static str {
        match self {
            Scope::All => "1 = 1",
            Scope::MediatorUser(_) => {
                "EXISTS (SELECT 1 FROM case_appointments a \
                 JOIN mediators m ON m.id = a.mediator_id \
                 WHERE a.case_id = c.id AND m.user_id = $3 \
                 AND a.appointed_at = (SELECT MAX(b.appointed_at) FROM case_appointments b \
                                       WHERE b.case_id = c.id))"
            }
        }
    }

    /// Binds what [`Scope::condition`] names.
    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>
    where
        Self: 'q,
    {
        match self {
            Scope::All => query,
            Scope::MediatorUser(user) => query.bind(user),
        }
    }
}

/// A line of the case list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub case: Case,
    pub details: Details,
    pub mediator: Option<String>,
}

/// The cases of `organism` that `scope` may see, newest first (at most `limit`).
pub async fn list(
    db: &Db,
    organism: Option<&str>,
    scope: Scope<'_>,
    limit: i64,
) -> Result<Vec<Summary>, StoreError> {
    let sql = format!(
        "SELECT c.id, c.organism_id, c.reference, c.created_at, \
         c.{}, {CURRENT_MEDIATOR_NAME} AS mediator FROM cases c \
         WHERE (c.organism_id = $1 OR ($1 IS NULL AND c.organism_id IS NULL)) AND {} \
         ORDER BY c.created_at DESC, c.id DESC LIMIT $2",
        DETAIL_COLUMNS.replace(", ", ", c."),
        scope.condition(),
    );
    let rows = scope
        .bind(sqlx::query(&sql).bind(organism).bind(limit))
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Summary {
                case: case_from_row(row)?,
                details: details_from_row(row)?,
                mediator: row.try_get("mediator")?,
            })
        })
        .collect()
}

/// The display name of the current mediator of case `c`, as a subquery.
const CURRENT_MEDIATOR_NAME: &str = "(SELECT m.display_name FROM case_appointments a \
    JOIN mediators m ON m.id = a.mediator_id WHERE a.case_id = c.id \
    ORDER BY a.appointed_at DESC LIMIT 1)";

/// Case `id` of `organism`, if `scope` may see it, with its details.
pub async fn find(
    db: &Db,
    organism: Option<&str>,
    scope: Scope<'_>,
    id: &CaseId,
) -> Result<Option<(Case, Details)>, StoreError> {
    let sql = format!(
        "SELECT c.id, c.organism_id, c.reference, c.created_at, c.{} FROM cases c \
         WHERE c.id = $2 AND (c.organism_id = $1 OR ($1 IS NULL AND c.organism_id IS NULL)) \
         AND {}",
        DETAIL_COLUMNS.replace(", ", ", c."),
        scope.condition(),
    );
    let row = scope
        .bind(sqlx::query(&sql).bind(organism).bind(id))
        .fetch_optional(db.pool())
        .await?;
    row.map(|row| Ok((case_from_row(&row)?, details_from_row(&row)?)))
        .transpose()
}

/// Replaces the details of case `id` of `organism`; the audit record lists the fields that
/// changed. Nothing changed: nothing is written.
pub async fn update(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    id: &CaseId,
    details: Details,
) -> Result<Details, RecordError> {
    let details = details.checked()?;
    let mut tx = db.begin().await?;
    // Written first (a no-op update), so the row is locked before it is read.
    let locked = sqlx::query(
        "UPDATE cases SET title = title WHERE id = $1 \
         AND (organism_id = $2 OR ($2 IS NULL AND organism_id IS NULL))",
    )
    .bind(id)
    .bind(organism)
    .execute(&mut *tx)
    .await?;
    if locked.rows_affected() == 0 {
        return Err(RecordError::NotFound);
    }
    let sql = format!("SELECT {DETAIL_COLUMNS} FROM cases WHERE id = $1");
    let before = details_from_row(&sqlx::query(&sql).bind(id).fetch_one(&mut *tx).await?)?;
    let changes: Vec<Change> = before
        .audit_fields()
        .into_iter()
        .zip(details.audit_fields())
        .filter(|((_, old), (_, new))| old != new)
        .map(|((field, before), (_, after))| Change::new(field, before, after))
        .collect();
    if changes.is_empty() {
        return Ok(details);
    }
    sqlx::query(
        "UPDATE cases SET title = $1, filed_on = $2, kind = $3, subject = $4, subject_note = $5, \
         value_cents = $6, value_indeterminate = $7, communication_sent_on = $8, \
         response = $9, response_on = $10, outcome = $11, closed_on = $12, sede = $13 \
         WHERE id = $14",
    )
    .bind(&details.title)
    .bind(&details.filed_on)
    .bind(details.kind.map(CaseKind::code))
    .bind(&details.subject)
    .bind(&details.subject_note)
    .bind(details.value_cents)
    .bind(i64::from(details.value_indeterminate))
    .bind(&details.communication_sent_on)
    .bind(details.response.unwrap_or(Response::Pending).code())
    .bind(&details.response_on)
    .bind(details.outcome.map(Outcome::code))
    .bind(&details.closed_on)
    .bind(&details.sede)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let record = NewRecord {
        action: Action::CaseUpdated,
        entity_type: "case",
        entity_id: id.as_str(),
        changes,
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await?;
    Ok(details)
}

/// Someone taking part in a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub id: String,
    pub person_id: String,
    pub display_name: String,
    /// Where invitations go: the e-mail address, else the PEC.
    pub email: Option<String>,
    pub role: PartyRole,
    pub side: Option<Side>,
    /// The participant a lawyer or representative acts for.
    pub represents: Option<String>,
}

/// A participant to add.
#[derive(Debug, Clone)]
pub struct NewParticipant<'a> {
    pub person_id: &'a str,
    pub role: PartyRole,
    /// For a party; a lawyer or representative takes the side of whom they represent.
    pub side: Option<Side>,
    pub represents: Option<&'a str>,
}

/// The current participants of case `case_id`: parties first (applicants, then called),
/// each followed by whoever acts for them, then the CTU.
pub async fn participants(db: &Db, case_id: &CaseId) -> Result<Vec<Participant>, StoreError> {
    let rows = sqlx::query(
        "SELECT cp.id, cp.person_id, cp.role, cp.side, cp.represents, p.kind, p.given_name, \
         p.family_name, p.company_name, COALESCE(p.email, p.pec) AS address \
         FROM case_parties cp JOIN people p ON p.id = cp.person_id \
         WHERE cp.case_id = $1 AND cp.removed_at IS NULL ORDER BY cp.created_at, cp.id",
    )
    .bind(case_id)
    .fetch_all(db.pool())
    .await?;
    let mut all = Vec::with_capacity(rows.len());
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let display_name = if kind == "legal" {
            row.try_get::<Option<String>, _>("company_name")?
                .unwrap_or_default()
        } else {
            let given: Option<String> = row.try_get("given_name")?;
            let family: Option<String> = row.try_get("family_name")?;
            format!(
                "{} {}",
                given.unwrap_or_default(),
                family.unwrap_or_default()
            )
        };
        all.push(Participant {
            id: row.try_get("id")?,
            person_id: row.try_get("person_id")?,
            display_name,
            email: row.try_get("address")?,
            role: parse_code(row, "role", PartyRole::parse)?
                .ok_or_else(|| StoreError::Corrupt("party role".to_owned()))?,
            side: parse_code(row, "side", Side::parse)?,
            represents: row.try_get("represents")?,
        });
    }
    // Parties by side, each followed by their lawyers and representatives; the CTU last.
    let mut ordered = Vec::with_capacity(all.len());
    for side in Side::ALL {
        for party in all
            .iter()
            .filter(|p| p.role == PartyRole::Party && p.side == Some(*side))
        {
            ordered.push(party.clone());
            ordered.extend(
                all.iter()
                    .filter(|p| p.represents.as_deref() == Some(party.id.as_str()))
                    .cloned(),
            );
        }
    }
    ordered.extend(all.into_iter().filter(|p| p.role == PartyRole::Expert));
    Ok(ordered)
}

/// Adds a participant to case `case_id` of `organism`; returns its id.
pub async fn add_participant(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    case_id: &CaseId,
    new: &NewParticipant<'_>,
) -> Result<String, RecordError> {
    let mut tx = db.begin().await?;
    let case: Option<String> = sqlx::query_scalar(
        "SELECT id FROM cases WHERE id = $1 \
         AND (organism_id = $2 OR ($2 IS NULL AND organism_id IS NULL))",
    )
    .bind(case_id)
    .bind(organism)
    .fetch_optional(&mut *tx)
    .await?;
    if case.is_none() {
        return Err(RecordError::NotFound);
    }
    let person: Option<Option<String>> = sqlx::query_scalar(
        "SELECT merged_into FROM people WHERE id = $1 \
         AND (organism_id = $2 OR ($2 IS NULL AND organism_id IS NULL))",
    )
    .bind(new.person_id)
    .bind(organism)
    .fetch_optional(&mut *tx)
    .await?;
    match person {
        None => return Err(RecordError::Invalid("persona sconosciuta")),
        Some(Some(_)) => {
            return Err(RecordError::Invalid(
                "questa scheda è stata unita a un'altra: scelga la scheda che la continua",
            ))
        }
        Some(None) => {}
    }
    let (side, represents) = match new.role {
        PartyRole::Party => (
            Some(new.side.ok_or(RecordError::Invalid(
                "indichi se la parte è istante o chiamata",
            ))?),
            None,
        ),
        PartyRole::Expert => (None, None),
        PartyRole::Lawyer | PartyRole::Representative => {
            let represented = new.represents.ok_or(RecordError::Invalid(
                "indichi la parte assistita o rappresentata",
            ))?;
            let side: Option<String> = sqlx::query_scalar(
                "SELECT side FROM case_parties WHERE id = $1 AND case_id = $2 \
                 AND role = 'party' AND removed_at IS NULL",
            )
            .bind(represented)
            .bind(case_id)
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
            let side = side
                .as_deref()
                .and_then(Side::parse)
                .ok_or(RecordError::Invalid(
                    "la parte assistita o rappresentata non è tra le parti della pratica",
                ))?;
            (Some(side), Some(represented))
        }
    };
    let duplicate: Option<String> = sqlx::query_scalar(
        "SELECT id FROM case_parties WHERE case_id = $1 AND person_id = $2 AND role = $3 \
         AND removed_at IS NULL AND COALESCE(represents, '') = COALESCE($4, '')",
    )
    .bind(case_id)
    .bind(new.person_id)
    .bind(new.role.code())
    .bind(represents)
    .fetch_optional(&mut *tx)
    .await?;
    if duplicate.is_some() {
        return Err(RecordError::Invalid(
            "la persona partecipa già alla pratica con questo ruolo",
        ));
    }
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO case_parties (id, case_id, person_id, role, side, represents, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(case_id)
    .bind(new.person_id)
    .bind(new.role.code())
    .bind(side.map(Side::code))
    .bind(represents)
    .bind(now.0)
    .execute(&mut *tx)
    .await?;
    let name: String = sqlx::query_scalar(
        "SELECT CASE WHEN kind = 'legal' THEN company_name \
         ELSE given_name || ' ' || family_name END FROM people WHERE id = $1",
    )
    .bind(new.person_id)
    .fetch_one(&mut *tx)
    .await?;
    let mut changes = vec![
        Change::set(Field::Participant, id.as_str()),
        Change::set(Field::Person, new.person_id),
        Change::set(Field::Name, name),
        Change::set(Field::Role, new.role.code()),
    ];
    if let Some(side) = side {
        changes.push(Change::set(Field::Side, side.code()));
    }
    if let Some(represents) = represents {
        changes.push(Change::set(Field::Represents, represents));
    }
    let record = NewRecord {
        action: Action::CaseParticipantAdded,
        entity_type: "case",
        entity_id: case_id.as_str(),
        changes,
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await?;
    Ok(id)
}

/// Ends the participation of `participant` in case `case_id` (and of whoever acts for them).
pub async fn remove_participant(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    case_id: &CaseId,
    participant: &str,
) -> Result<(), RecordError> {
    let mut tx = db.begin().await?;
    let removed = sqlx::query(
        "UPDATE case_parties SET removed_at = $1 WHERE case_id = $2 AND removed_at IS NULL \
         AND (id = $3 OR represents = $3)",
    )
    .bind(now.0)
    .bind(case_id)
    .bind(participant)
    .execute(&mut *tx)
    .await?;
    if removed.rows_affected() == 0 {
        return Err(RecordError::NotFound);
    }
    let record = NewRecord {
        action: Action::CaseParticipantRemoved,
        entity_type: "case",
        entity_id: case_id.as_str(),
        changes: vec![Change::changed(Field::Participant, participant, "removed")],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await?;
    Ok(())
}

/// Income or expense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Income,
    Expense,
}

coded!(Direction {
    Income => "income", "Entrata";
    Expense => "expense", "Uscita";
});

/// A line of the case's accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub direction: Direction,
    pub amount_cents: i64,
    pub description: String,
    pub on_date: String,
}

/// Records income or an expense of case `case_id`.
pub async fn add_entry(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    case_id: &CaseId,
    (direction, amount_cents, description, on_date): (Direction, i64, &str, &str),
) -> Result<String, RecordError> {
    let description = description.trim();
    if amount_cents <= 0 {
        return Err(RecordError::Invalid("l'importo deve essere positivo"));
    }
    if description.is_empty() {
        return Err(RecordError::Invalid("serve una descrizione"));
    }
    if dates::parse(on_date).is_none() {
        return Err(RecordError::Invalid("la data va scritta come AAAA-MM-GG"));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO case_ledger (id, case_id, direction, amount_cents, description, on_date, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(case_id)
    .bind(direction.code())
    .bind(amount_cents)
    .bind(description)
    .bind(on_date)
    .bind(now.0)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(error) if crate::error::is_foreign_key_violation(&error) => {
            return Err(RecordError::NotFound)
        }
        other => other?,
    };
    let record = NewRecord {
        action: Action::CaseLedgerEntry,
        entity_type: "case",
        entity_id: case_id.as_str(),
        changes: vec![
            Change::set(Field::Direction, direction.code()),
            Change::set(Field::AmountCents, amount_cents.to_string()),
            Change::set(Field::Description, description),
            Change::set(Field::OnDate, on_date),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await?;
    Ok(id)
}

/// The accounts of case `case_id`, by date.
pub async fn entries(db: &Db, case_id: &CaseId) -> Result<Vec<Entry>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, direction, amount_cents, description, on_date FROM case_ledger \
         WHERE case_id = $1 ORDER BY on_date, created_at",
    )
    .bind(case_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Entry {
                id: row.try_get("id")?,
                direction: parse_code(row, "direction", Direction::parse)?
                    .ok_or_else(|| StoreError::Corrupt("ledger direction".to_owned()))?,
                amount_cents: row.try_get("amount_cents")?,
                description: row.try_get("description")?,
                on_date: row.try_get("on_date")?,
            })
        })
        .collect()
}

/// Every audit record about case `case_id`, newest first: its history.
pub async fn history(db: &Db, case_id: &CaseId) -> Result<Vec<Record>, StoreError> {
    audit::recent(db.pool(), Some(("case", case_id.as_str())), 500).await
}
