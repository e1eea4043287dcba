//! The people registry every module shares: natural persons (given and family name, codice
//! fiscale, birth date) and legal persons (company name, partita IVA), with their contacts.
//!
//! Tax identifiers are checked with their check characters (`fiscal`). Before a person is
//! added, [`duplicates`] finds who may be the same one: the same codice fiscale (any omocodia
//! variant), the same partita IVA, or the same name and birth date; adding someone who has
//! candidates needs the clerk's explicit confirmation. Two records of one person are merged by
//! pointing the older at the one that continues it ([`merge`]): nothing is deleted.

pub mod fiscal;

use sqlx::Row;

use crate::people::fiscal::{CodiceFiscale, FiscalError, PartitaIva};
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::platform::names;
use crate::{Db, StoreError, UnixMillis};

/// Natural or legal person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Natural,
    Legal,
}

impl Kind {
    pub fn parse(code: &str) -> Option<Kind> {
        match code {
            "natural" => Some(Kind::Natural),
            "legal" => Some(Kind::Legal),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Kind::Natural => "natural",
            Kind::Legal => "legal",
        }
    }
}

/// A person as typed by the clerk, before the checks.
#[derive(Debug, Clone, Default)]
pub struct NewPerson {
    pub kind: Option<Kind>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub company_name: Option<String>,
    pub fiscal_code: Option<String>,
    pub vat_number: Option<String>,
    /// `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    pub email: Option<String>,
    pub pec: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
}

/// A person of the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub kind: Kind,
    /// "Family Given" for a natural person, the company name for a legal one.
    pub display_name: String,
    pub fiscal_code: Option<String>,
    pub vat_number: Option<String>,
    pub birth_date: Option<String>,
    /// The record that continues this one, when it was merged.
    pub merged_into: Option<String>,
}

/// Why someone may be the same person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateReason {
    SameFiscalCode,
    SameVatNumber,
    SameNameAndBirthDate,
}

impl DuplicateReason {
    pub fn code(self) -> &'static str {
        match self {
            DuplicateReason::SameFiscalCode => "same_fiscal_code",
            DuplicateReason::SameVatNumber => "same_vat_number",
            DuplicateReason::SameNameAndBirthDate => "same_name_and_birth_date",
        }
    }
}

/// A person who may be the one being added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub person: Person,
    pub reason: DuplicateReason,
}

/// Why a person was not added.
#[derive(Debug, thiserror::Error)]
pub enum PersonError {
    #[error("{0}")]
    Fiscal(#[from] FiscalError),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("there may be duplicates")]
    Duplicates(Vec<Candidate>),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("no such person")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The checked form of a [`NewPerson`].
struct Checked {
    kind: Kind,
    given_name: Option<String>,
    family_name: Option<String>,
    company_name: Option<String>,
    fiscal_code: Option<CodiceFiscale>,
    /// A legal person's numeric codice fiscale (checked like a partita IVA).
    numeric_fiscal_code: Option<PartitaIva>,
    vat_number: Option<PartitaIva>,
    birth_date: Option<String>,
}

fn trimmed(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

/// A birth date as stored (see `dates`).
fn check_date(date: &str) -> Result<(u16, u8, u8), PersonError> {
    crate::platform::dates::parse(date).ok_or(PersonError::Invalid(
        "la data di nascita va scritta come AAAA-MM-GG",
    ))
}

fn check(new: &NewPerson) -> Result<Checked, PersonError> {
    let kind = new.kind.ok_or(PersonError::Invalid(
        "indichi se è una persona fisica o giuridica",
    ))?;
    let fiscal_text = trimmed(&new.fiscal_code);
    let vat_number = trimmed(&new.vat_number)
        .map(|vat| PartitaIva::parse(&vat))
        .transpose()?;
    let birth_date = trimmed(&new.birth_date);
    if [&new.given_name, &new.family_name, &new.company_name]
        .into_iter()
        .flatten()
        .any(|name| !names::is_one_line(name))
    {
        return Err(PersonError::Invalid(names::NOT_ONE_LINE));
    }
    let checked = match kind {
        Kind::Natural => {
            let (given_name, family_name) = (trimmed(&new.given_name), trimmed(&new.family_name));
            if given_name.is_none() || family_name.is_none() {
                return Err(PersonError::Invalid("servono nome e cognome"));
            }
            let fiscal_code = fiscal_text
                .map(|code| CodiceFiscale::parse(&code))
                .transpose()?;
            if let (Some(code), Some(date)) = (&fiscal_code, &birth_date) {
                let (year, month, day) = check_date(date)?;
                let (code_year, code_month, code_day, _) = code.birth();
                if (year % 100) as u8 != code_year || month != code_month || day != code_day {
                    return Err(PersonError::Invalid(
                        "la data di nascita non corrisponde al codice fiscale",
                    ));
                }
            } else if let Some(date) = &birth_date {
                check_date(date)?;
            }
            Checked {
                kind,
                given_name,
                family_name,
                company_name: None,
                fiscal_code,
                numeric_fiscal_code: None,
                vat_number,
                birth_date,
            }
        }
        Kind::Legal => {
            let company_name =
                trimmed(&new.company_name).ok_or(PersonError::Invalid("serve la denominazione"))?;
            let numeric_fiscal_code = fiscal_text
                .map(|code| PartitaIva::parse(&code))
                .transpose()?;
            Checked {
                kind,
                given_name: None,
                family_name: None,
                company_name: Some(company_name),
                fiscal_code: None,
                numeric_fiscal_code,
                vat_number,
                birth_date: None,
            }
        }
    };
    Ok(checked)
}

const COLUMNS: &str = "id, kind, given_name, family_name, company_name, fiscal_code, \
                       vat_number, birth_date, merged_into";

fn from_row(row: &sqlx::any::AnyRow) -> Result<Person, StoreError> {
    let kind: String = row.try_get("kind")?;
    let kind = Kind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("kind {kind}")))?;
    let given: Option<String> = row.try_get("given_name")?;
    let family: Option<String> = row.try_get("family_name")?;
    let company: Option<String> = row.try_get("company_name")?;
    let display_name = match kind {
        Kind::Natural => format!(
            "{} {}",
            family.unwrap_or_default(),
            given.unwrap_or_default()
        ),
        Kind::Legal => company.unwrap_or_default(),
    };
    Ok(Person {
        id: row.try_get("id")?,
        kind,
        display_name,
        fiscal_code: row.try_get("fiscal_code")?,
        vat_number: row.try_get("vat_number")?,
        birth_date: row.try_get("birth_date")?,
        merged_into: row.try_get("merged_into")?,
    })
}

/// The people of `organism`'s registry whose name, company name, codice fiscale or partita IVA
/// contains `text` (case-insensitive), by name; at most `limit`. Merged records are included
/// (marked by `merged_into`).
pub async fn search(
    db: &Db,
    organism: Option<&str>,
    text: &str,
    limit: i64,
) -> Result<Vec<Person>, StoreError> {
    let pattern = format!(
        "%{}%",
        text.trim().to_lowercase().replace(['\\', '%', '_'], "")
    );
    let sql = format!(
        "SELECT {COLUMNS} FROM people \
         WHERE (organism_id = $1 OR ($1 IS NULL AND organism_id IS NULL)) \
         AND (LOWER(COALESCE(family_name, '') || ' ' || COALESCE(given_name, '')) LIKE $2 \
              OR LOWER(COALESCE(given_name, '') || ' ' || COALESCE(family_name, '')) LIKE $2 \
              OR LOWER(COALESCE(company_name, '')) LIKE $2 \
              OR LOWER(COALESCE(fiscal_code, '')) LIKE $2 \
              OR COALESCE(vat_number, '') LIKE $2) \
         ORDER BY COALESCE(family_name, company_name), given_name, id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(organism)
        .bind(pattern)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// Person `id` of `organism`'s registry.
pub async fn find(db: &Db, organism: Option<&str>, id: &str) -> Result<Option<Person>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM people WHERE id = $1 \
         AND (organism_id = $2 OR ($2 IS NULL AND organism_id IS NULL))"
    );
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(organism)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Merges person `from` into person `into` (both of `organism`, neither merged already):
/// `from` stays, pointing at `into`, and is no longer proposed as a duplicate.
pub async fn merge(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    (from, into): (&str, &str),
) -> Result<Person, PersonError> {
    if from == into {
        return Err(PersonError::Invalid(
            "una persona non si unisce a se stessa",
        ));
    }
    for id in [from, into] {
        match find(db, organism, id).await? {
            None => return Err(PersonError::NotFound),
            Some(person) if person.merged_into.is_some() => {
                return Err(PersonError::Conflict(
                    "la persona è già stata unita a un'altra",
                ))
            }
            Some(_) => {}
        }
    }
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    let updated = sqlx::query(
        "UPDATE people SET merged_into = $1, merged_at = $2 WHERE id = $3 AND merged_into IS NULL",
    )
    .bind(into)
    .bind(now.0)
    .bind(from)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    if updated.rows_affected() != 1 {
        return Err(PersonError::Conflict(
            "la persona è già stata unita a un'altra",
        ));
    }
    // The cases the merged record took part in now name the record that continues it.
    let repointed = sqlx::query("UPDATE case_parties SET person_id = $1 WHERE person_id = $2")
        .bind(into)
        .bind(from)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from)?
        .rows_affected();
    let record = NewRecord {
        action: Action::PersonMerged,
        entity_type: "person",
        entity_id: from,
        changes: vec![
            Change::set(Field::MergedInto, into),
            Change::set(Field::CaseParticipations, repointed.to_string()),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await.map_err(StoreError::from)?;
    find(db, organism, into).await?.ok_or(PersonError::NotFound)
}

/// Who in `organism`'s registry may be the person described by `probe` (fields may be
/// partial, as while typing); each candidate once, with the strongest reason.
pub async fn duplicates(
    db: &Db,
    organism: Option<&str>,
    probe: &NewPerson,
) -> Result<Vec<Candidate>, StoreError> {
    let organism_filter =
        "merged_into IS NULL AND (organism_id = $1 OR ($1 IS NULL AND organism_id IS NULL))";
    let mut found: Vec<Candidate> = Vec::new();
    let mut add = |rows: Vec<sqlx::any::AnyRow>, reason| -> Result<(), StoreError> {
        for row in &rows {
            let person = from_row(row)?;
            if !found.iter().any(|known| known.person.id == person.id) {
                found.push(Candidate { person, reason });
            }
        }
        Ok(())
    };
    let fiscal = trimmed(&probe.fiscal_code);
    if let Some(code) = fiscal
        .as_deref()
        .and_then(|code| CodiceFiscale::parse(code).ok())
    {
        let sql = format!(
            "SELECT {COLUMNS} FROM people WHERE {organism_filter} AND fiscal_code_canonical = $2"
        );
        let rows = sqlx::query(&sql)
            .bind(organism)
            .bind(code.canonical())
            .fetch_all(db.pool())
            .await?;
        add(rows, DuplicateReason::SameFiscalCode)?;
    }
    let vat = trimmed(&probe.vat_number).and_then(|vat| PartitaIva::parse(&vat).ok());
    let numeric = fiscal
        .as_deref()
        .and_then(|code| PartitaIva::parse(code).ok());
    for vat in vat.into_iter().chain(numeric) {
        let sql = format!(
            "SELECT {COLUMNS} FROM people WHERE {organism_filter} \
             AND (vat_number = $2 OR fiscal_code = $2)"
        );
        let rows = sqlx::query(&sql)
            .bind(organism)
            .bind(vat.as_str())
            .fetch_all(db.pool())
            .await?;
        add(rows, DuplicateReason::SameVatNumber)?;
    }
    if let (Some(given), Some(family), Some(born)) = (
        trimmed(&probe.given_name),
        trimmed(&probe.family_name),
        trimmed(&probe.birth_date),
    ) {
        let sql = format!(
            "SELECT {COLUMNS} FROM people WHERE {organism_filter} AND LOWER(given_name) = $2 \
             AND LOWER(family_name) = $3 AND birth_date = $4"
        );
        let rows = sqlx::query(&sql)
            .bind(organism)
            .bind(given.to_lowercase())
            .bind(family.to_lowercase())
            .bind(born)
            .fetch_all(db.pool())
            .await?;
        add(rows, DuplicateReason::SameNameAndBirthDate)?;
    }
    Ok(found)
}

/// Adds a person to `organism`'s registry. With possible duplicates the person is added only
/// when `confirmed` (the clerk looked at the candidates); otherwise [`PersonError::Duplicates`].
pub async fn create(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    new: &NewPerson,
    confirmed: bool,
) -> Result<Person, PersonError> {
    let checked = check(new)?;
    if !confirmed {
        let candidates = duplicates(db, organism, new).await?;
        if !candidates.is_empty() {
            return Err(PersonError::Duplicates(candidates));
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let fiscal_code = checked
        .fiscal_code
        .as_ref()
        .map(|code| code.as_str().to_owned())
        .or_else(|| {
            checked
                .numeric_fiscal_code
                .as_ref()
                .map(|code| code.as_str().to_owned())
        });
    let canonical = checked.fiscal_code.as_ref().map(CodiceFiscale::canonical);
    let mut tx = db.begin().await.map_err(StoreError::from)?;
    sqlx::query(
        "INSERT INTO people (id, organism_id, kind, given_name, family_name, company_name, \
         fiscal_code, fiscal_code_canonical, vat_number, birth_date, email, pec, phone, \
         address, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&id)
    .bind(organism)
    .bind(checked.kind.code())
    .bind(&checked.given_name)
    .bind(&checked.family_name)
    .bind(&checked.company_name)
    .bind(&fiscal_code)
    .bind(&canonical)
    .bind(checked.vat_number.as_ref().map(PartitaIva::as_str))
    .bind(&checked.birth_date)
    .bind(trimmed(&new.email))
    .bind(trimmed(&new.pec))
    .bind(trimmed(&new.phone))
    .bind(trimmed(&new.address))
    .bind(now.0)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::from)?;
    let record = NewRecord {
        action: Action::PersonCreated,
        entity_type: "person",
        entity_id: &id,
        changes: vec![
            Change::set(Field::Kind, checked.kind.code()),
            Change::set(Field::ConfirmedNotDuplicate, confirmed.to_string()),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await.map_err(StoreError::from)?;
    let sql = format!("SELECT {COLUMNS} FROM people WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(&id)
        .fetch_one(db.pool())
        .await
        .map_err(StoreError::from)?;
    Ok(from_row(&row)?)
}
