//! Mediators and the appointment engine (R-CASE-3).
//!
//! A proposal takes, among the organism's active mediators qualified for the case's subject
//! matter, available on the meeting date and with no declared conflict of interest with the
//! case's parties, the one appointed least recently (never appointed first; then the fewest
//! appointments; then by name), and says why in Italian. The clerk may appoint someone else,
//! with a reason; both are recorded with the appointment and in the audit log.

use sqlx::Row;

use crate::mediation::cases::CaseId;
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::platform::names;
use crate::{Db, StoreError, UnixMillis};

/// Subject matters (art. 5 c.1 d.lgs. 28/2010, plus the others): code and Italian name.
pub const SUBJECTS: &[(&str, &str)] = &[
    ("condominio", "condominio"),
    ("diritti_reali", "diritti reali"),
    ("divisione", "divisione"),
    ("successioni", "successioni ereditarie"),
    ("patti_famiglia", "patti di famiglia"),
    ("locazione", "locazione"),
    ("comodato", "comodato"),
    ("affitto_aziende", "affitto di aziende"),
    ("responsabilita_medica", "responsabilità medica e sanitaria"),
    (
        "diffamazione",
        "diffamazione a mezzo stampa o altro mezzo di pubblicità",
    ),
    ("contratti_assicurativi", "contratti assicurativi"),
    ("contratti_bancari", "contratti bancari e finanziari"),
    (
        "associazione_partecipazione",
        "associazione in partecipazione",
    ),
    ("consorzio", "consorzio"),
    ("franchising", "franchising"),
    ("contratto_opera", "contratto d'opera"),
    ("contratto_rete", "contratto di rete"),
    ("somministrazione", "contratto di somministrazione"),
    ("societa_persone", "società di persone"),
    ("subfornitura", "subfornitura"),
    ("altro", "altre materie"),
];

fn subject_name(code: &str) -> Option<&'static str> {
    SUBJECTS
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(_, name)| *name)
}

/// A mediator, as proposals and lists show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mediator {
    pub id: String,
    pub display_name: String,
    pub subjects: Vec<String>,
}

/// The engine's choice and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub mediator: Mediator,
    pub reason: String,
}

/// What a case needs of its mediator.
#[derive(Debug, Clone)]
pub struct Need<'a> {
    pub subject: &'a str,
    /// The meeting date, `YYYY-MM-DD`.
    pub date: &'a str,
    /// The registry ids of the parties (and their lawyers).
    pub parties: &'a [String],
}

#[derive(Debug, thiserror::Error)]
pub enum MediatorError {
    #[error("{0}")]
    Invalid(&'static str),
    /// No such mediator (or person) in the organism.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn check_date(date: &str) -> Result<(), MediatorError> {
    crate::platform::dates::parse(date)
        .map(|_| ())
        .ok_or(MediatorError::Invalid(
            "le date vanno scritte come AAAA-MM-GG",
        ))
}

/// A mediator to register.
#[derive(Debug, Clone, Default)]
pub struct Profile<'a> {
    pub display_name: &'a str,
    /// Codes of [`SUBJECTS`].
    pub subjects: &'a [String],
    /// Where invitations to meetings go.
    pub email: Option<&'a str>,
    /// The back-office user of the mediator: they see their cases, and only those.
    pub user_id: Option<&'a str>,
}

/// Registers a mediator.
pub async fn add(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    profile: &Profile<'_>,
) -> Result<Mediator, MediatorError> {
    let display_name = profile.display_name.trim();
    let subjects = profile.subjects;
    if display_name.is_empty() {
        return Err(MediatorError::Invalid("serve il nome del mediatore"));
    }
    if !names::is_one_line(display_name) {
        return Err(MediatorError::Invalid(names::NOT_ONE_LINE));
    }
    if subjects.is_empty() || subjects.iter().any(|code| subject_name(code).is_none()) {
        return Err(MediatorError::Invalid("materie sconosciute o mancanti"));
    }
    let email = profile
        .email
        .map(str::trim)
        .filter(|email| !email.is_empty());
    if email.is_some_and(|email| !email.contains('@')) {
        return Err(MediatorError::Invalid("indirizzo e-mail non valido"));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    sqlx::query(
        "INSERT INTO mediators (id, organism_id, display_name, subjects, active, created_at, \
         email, user_id) VALUES ($1, $2, $3, $4, 1, $5, $6, $7)",
    )
    .bind(&id)
    .bind(organism)
    .bind(display_name)
    .bind(subjects.join(","))
    .bind(now.0)
    .bind(email)
    .bind(profile.user_id)
    .execute(&mut *tx)
    .await
    .map_err(|error| match error {
        error if crate::error::is_foreign_key_violation(&error) => {
            MediatorError::Invalid("utente sconosciuto")
        }
        error => StoreError::from(error).into(),
    })?;
    let mut changes = vec![Change::set(Field::Subjects, subjects.join(","))];
    if let Some(user) = profile.user_id {
        changes.push(Change::set(Field::User, user));
    }
    let record = NewRecord {
        action: Action::MediatorAdded,
        entity_type: "mediator",
        entity_id: &id,
        changes,
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(Mediator {
        id,
        display_name: display_name.to_owned(),
        subjects: subjects.to_vec(),
    })
}

/// Whether mediator `id` is registered in `organism`.
async fn of_organism(
    conn: &mut sqlx::AnyConnection,
    organism: Option<&str>,
    id: &str,
) -> Result<bool, StoreError> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT id FROM mediators WHERE id = $1 \
         AND (organism_id = $2 OR ($2 IS NULL AND organism_id IS NULL))",
    )
    .bind(id)
    .bind(organism)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Records that mediator `id` of `organism` cannot take meetings from `from` to `to` (both
/// included).
pub async fn add_unavailability(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    (id, from, to): (&str, &str, &str),
) -> Result<(), MediatorError> {
    check_date(from)?;
    check_date(to)?;
    if from > to {
        return Err(MediatorError::Invalid(
            "il periodo finisce prima di cominciare",
        ));
    }
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    if !of_organism(&mut tx, organism, id).await? {
        return Err(MediatorError::NotFound);
    }
    sqlx::query(
        "INSERT INTO mediator_unavailability (mediator_id, from_date, to_date) VALUES ($1, $2, $3)",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let record = NewRecord {
        action: Action::MediatorUnavailabilityAdded,
        entity_type: "mediator",
        entity_id: id,
        changes: vec![Change::set(Field::From, from), Change::set(Field::To, to)],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// Records that mediator `id` of `organism` has a conflict of interest with person `person`
/// of the same registry; recording it twice changes nothing.
pub async fn add_conflict(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    (id, person): (&str, &str),
) -> Result<(), MediatorError> {
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    let person_known: Option<String> = sqlx::query_scalar(
        "SELECT id FROM people WHERE id = $1 \
         AND (organism_id = $2 OR ($2 IS NULL AND organism_id IS NULL))",
    )
    .bind(person)
    .bind(organism)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    if person_known.is_none() || !of_organism(&mut tx, organism, id).await? {
        return Err(MediatorError::NotFound);
    }
    let inserted = sqlx::query(
        "INSERT INTO mediator_conflicts (mediator_id, person_id) VALUES ($1, $2) \
         ON CONFLICT (mediator_id, person_id) DO NOTHING",
    )
    .bind(id)
    .bind(person)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    if inserted.rows_affected() == 1 {
        let record = NewRecord {
            action: Action::MediatorConflictDeclared,
            entity_type: "mediator",
            entity_id: id,
            changes: vec![Change::set(Field::Person, person)],
        };
        audit::record(&mut tx, actor, now, record).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// One eligible mediator with their appointment history.
struct Eligible {
    mediator: Mediator,
    last: Option<i64>,
    count: i64,
}

/// The engine's proposal for a case of `organism` needing `need`; `None` when nobody fits.
pub async fn propose(
    db: &Db,
    organism: Option<&str>,
    need: &Need<'_>,
) -> Result<Option<Proposal>, MediatorError> {
    let subject =
        subject_name(need.subject).ok_or(MediatorError::Invalid("materia sconosciuta"))?;
    check_date(need.date)?;
    let rows = sqlx::query(
        "SELECT m.id, m.display_name, m.subjects, \
         (SELECT MAX(a.appointed_at) FROM case_appointments a WHERE a.mediator_id = m.id) AS last, \
         (SELECT COUNT(*) FROM case_appointments a WHERE a.mediator_id = m.id) AS total \
         FROM mediators m WHERE m.active = 1 \
         AND (m.organism_id = $1 OR ($1 IS NULL AND m.organism_id IS NULL)) \
         AND NOT EXISTS (SELECT 1 FROM mediator_unavailability u WHERE u.mediator_id = m.id \
             AND u.from_date <= $2 AND u.to_date >= $2)",
    )
    .bind(organism)
    .bind(need.date)
    .fetch_all(db.pool())
    .await
    .map_err(StoreError::from)?;
    let conflicted: Vec<String> = if need.parties.is_empty() {
        Vec::new()
    } else {
        let list = (1..=need.parties.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT DISTINCT mediator_id FROM mediator_conflicts WHERE person_id IN ({list})"
        );
        let mut query = sqlx::query_scalar(&sql);
        for party in need.parties {
            query = query.bind(party);
        }
        query.fetch_all(db.pool()).await.map_err(StoreError::from)?
    };
    let mut eligible = Vec::new();
    for row in &rows {
        let subjects: String = row.try_get("subjects").map_err(StoreError::from)?;
        let subjects: Vec<String> = subjects.split(',').map(str::to_owned).collect();
        let id: String = row.try_get("id").map_err(StoreError::from)?;
        if !subjects.iter().any(|code| code == need.subject) || conflicted.contains(&id) {
            continue;
        }
        eligible.push(Eligible {
            mediator: Mediator {
                id,
                display_name: row.try_get("display_name").map_err(StoreError::from)?,
                subjects,
            },
            last: row.try_get("last").map_err(StoreError::from)?,
            count: row.try_get("total").map_err(StoreError::from)?,
        });
    }
    let how_many = eligible.len();
    let chosen = eligible.into_iter().min_by(|a, b| {
        (
            a.last.unwrap_or(i64::MIN),
            a.count,
            &a.mediator.display_name,
        )
            .cmp(&(
                b.last.unwrap_or(i64::MIN),
                b.count,
                &b.mediator.display_name,
            ))
    });
    Ok(chosen.map(|chosen| {
        let date = crate::platform::dates::parse(need.date)
            .map(|(year, month, day)| format!("{day:02}/{month:02}/{year}"))
            .unwrap_or_else(|| need.date.to_owned());
        let name = &chosen.mediator.display_name;
        let reason = if how_many == 1 {
            format!(
                "Rotazione: {name} è l'unico mediatore qualificato per «{subject}», disponibile \
                 il {date} e senza conflitti con le parti."
            )
        } else {
            let history = if chosen.last.is_some() {
                "il nominato meno di recente"
            } else {
                "mai nominato finora"
            };
            format!(
                "Rotazione: tra i {how_many} mediatori qualificati per «{subject}», disponibili \
                 il {date} e senza conflitti con le parti, è proposto {name}, {history}."
            )
        };
        Proposal {
            mediator: chosen.mediator,
            reason,
        }
    }))
}

/// Appoints `mediator` on case `case_id` with `reason` (`overridden`: the clerk chose someone
/// other than the proposal); recorded with the audit log.
pub async fn appoint(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    case_id: &CaseId,
    (mediator, reason, overridden): (&str, &str, bool),
) -> Result<(), MediatorError> {
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    sqlx::query(
        "INSERT INTO case_appointments (case_id, mediator_id, appointed_at, reason, overridden) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(case_id)
    .bind(mediator)
    .bind(now.0)
    .bind(reason)
    .bind(i64::from(overridden))
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let record = NewRecord {
        action: Action::CaseMediatorAppointed,
        entity_type: "case",
        entity_id: case_id.as_str(),
        changes: vec![
            Change::set(Field::Mediator, mediator),
            Change::set(Field::Reason, reason),
            Change::set(Field::Overridden, overridden.to_string()),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// A mediator as the register lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub mediator: Mediator,
    pub email: Option<String>,
    pub user_id: Option<String>,
}

fn registered_from_row(row: &sqlx::any::AnyRow) -> Result<Registered, StoreError> {
    let subjects: String = row.try_get("subjects")?;
    Ok(Registered {
        mediator: Mediator {
            id: row.try_get("id")?,
            display_name: row.try_get("display_name")?,
            subjects: subjects.split(',').map(str::to_owned).collect(),
        },
        email: row.try_get("email")?,
        user_id: row.try_get("user_id")?,
    })
}

/// The active mediators of `organism`, by name.
pub async fn list(db: &Db, organism: Option<&str>) -> Result<Vec<Registered>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, display_name, subjects, email, user_id FROM mediators WHERE active = 1 \
         AND (organism_id = $1 OR ($1 IS NULL AND organism_id IS NULL)) ORDER BY display_name",
    )
    .bind(organism)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(registered_from_row).collect()
}

/// The current appointment of case `case_id`: the mediator and the recorded reason.
pub async fn appointed(
    db: &Db,
    case_id: &CaseId,
) -> Result<Option<(Registered, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT m.id, m.display_name, m.subjects, m.email, m.user_id, a.reason \
         FROM case_appointments a JOIN mediators m ON m.id = a.mediator_id \
         WHERE a.case_id = $1 ORDER BY a.appointed_at DESC LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| Ok((registered_from_row(&row)?, row.try_get("reason")?)))
        .transpose()
}
