//! Remote meetings scheduled from a case (R-ROOM-1..3): one transaction books the meeting,
//! creates the case's room with everyone in it when the case has none yet, issues each person
//! a personal link and queues their invitation (with the `.ics`) and reminders in the outbox.
//! Rescheduling and cancelling tell the same people, in one transaction too.
//!
//! **Invariant:** no meeting without its invitations and no invitation without its meeting:
//! booking, links and mail are committed together or not at all.
//!
//! A room that exists already may be live on a node: its members change only through the room
//! task. So when participants joined the case after its room was made, the caller first adds
//! them to the live room ([`missing_members`], then [`record_member`] for each) and then
//! schedules; when the case has no room yet, the room is created inside the transaction with
//! all of them.
//!
//! Personal links are stored only as hashes (see `invites`); a mail that carries one keeps it in
//! the outbox only sealed under the link key, which is not in the database, and only until it
//! is sent (see `outbox`). Each scheduling issues new links: the newest mail always holds the
//! link that works, and says it replaces earlier ones; its reminders carry the same link.

use std::time::Duration;

use rand::Rng;
use rooms::{ParticipantId, RoomId, RoomSettings};
use sqlx::{AnyConnection, Row};

use crate::error::is_unique_violation;
use crate::mail::ical::{self, Method};
use crate::mail::link_key::LinkKey;
use crate::mail::outbox::{self, MailKind, NewMail};
use crate::mediation::agenda::{self, AgendaError, Conflict, NewMeeting};
use crate::mediation::case_record::{self, Participant, PartyRole};
use crate::mediation::cases;
use crate::mediation::cases::CaseId;
use crate::mediation::mediators;
use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::platform::rome_time;
use crate::rooms::invites;
use crate::rooms::room_store::{self, from_bigint, to_bigint, FirstMember};
use crate::{Db, StoreError, UnixMillis};

/// What scheduling needs to know of the installation.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The organism of the clerk (`None` on an installation without organisms).
    pub organism: Option<&'a str>,
    /// Where links point: the server's public URL, without the trailing slash.
    pub public_url: &'a str,
    /// The sender shown as the organizer of the calendar event: `(name, address)`.
    pub organizer: (&'a str, &'a str),
    /// How long before a meeting each reminder goes.
    pub reminder_leads: &'a [Duration],
    /// The segreteria's own address, reminded of the meeting too.
    pub office_email: Option<&'a str>,
    /// The settings of a room created for the meeting.
    pub room_settings: RoomSettings,
    /// Seals the personal links of the queued mail.
    pub link_key: &'a LinkKey,
}

/// Why a meeting was not scheduled, moved or cancelled.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// Something the clerk must do first or correct, said in Italian.
    #[error("{0}")]
    Invalid(&'static str),
    #[error("not found")]
    NotFound,
    #[error("the meeting clashes with others")]
    Conflicts(Vec<Conflict>),
    /// People joined the case after its room was made: add them to the room first.
    #[error("the room lacks members")]
    MembersMissing,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ScheduleError {
    fn from(error: sqlx::Error) -> Self {
        ScheduleError::Store(error.into())
    }
}

impl From<AgendaError> for ScheduleError {
    fn from(error: AgendaError) -> Self {
        match error {
            AgendaError::Invalid(message) => ScheduleError::Invalid(message),
            AgendaError::Conflicts(conflicts) => ScheduleError::Conflicts(conflicts),
            AgendaError::Store(error) => ScheduleError::Store(error),
        }
    }
}

/// Someone who is invited to a case's meetings: its mediator or a participant.
#[derive(Debug, Clone)]
pub struct Attendee {
    /// `mediator:<id>` or `participant:<id>`: how the room member is found again.
    pub key: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: rooms::Role,
    pub side: Option<rooms::Side>,
    /// How the invitation names their part, e.g. "avvocato di Mario Rossi".
    pub part: String,
    /// The back-office user of a mediator, who may also enter from their login.
    pub user_id: Option<String>,
}

/// The people of case `case_id`'s meetings: its appointed mediator first, then every
/// participant. A case without a mediator cannot meet.
pub async fn attendees(db: &Db, case_id: &CaseId) -> Result<Vec<Attendee>, ScheduleError> {
    let (mediator, _) = mediators::appointed(db, case_id)
        .await?
        .ok_or(ScheduleError::Invalid(
            "prima di fissare l'incontro occorre nominare il mediatore",
        ))?;
    let participants = case_record::participants(db, case_id).await?;
    let mut all = vec![Attendee {
        key: format!("mediator:{}", mediator.mediator.id),
        display_name: mediator.mediator.display_name.clone(),
        email: mediator.email.clone(),
        role: rooms::Role::Mediator,
        side: None,
        part: "mediatore".to_owned(),
        user_id: mediator.user_id.clone(),
    }];
    for participant in &participants {
        all.push(Attendee {
            key: format!("participant:{}", participant.id),
            display_name: participant.display_name.clone(),
            email: participant.email.clone(),
            role: participant.role.room_role(),
            side: participant.side.map(case_record::Side::room_side),
            part: part_of(participant, &participants),
            user_id: None,
        });
    }
    Ok(all)
}

/// "parte istante", "avvocato di Mario Rossi (parte chiamata)", "CTU"…
fn part_of(participant: &Participant, all: &[Participant]) -> String {
    let side = participant
        .side
        .map(|side| side.label().to_lowercase())
        .unwrap_or_default();
    let represented = participant
        .represents
        .as_deref()
        .and_then(|id| all.iter().find(|other| other.id == id))
        .map(|other| other.display_name.as_str())
        .unwrap_or_default();
    match participant.role {
        PartyRole::Party => side,
        PartyRole::Lawyer => format!("avvocato di {represented} ({side})"),
        PartyRole::Representative => format!("rappresentante di {represented} ({side})"),
        PartyRole::Expert => "consulente tecnico (CTU)".to_owned(),
    }
}

/// The room of the case and the attendees it does not hold yet; `None` when the case has no
/// room (scheduling will create it with everybody).
pub async fn missing_members(
    db: &Db,
    case_id: &CaseId,
) -> Result<Option<(RoomId, Vec<Attendee>)>, ScheduleError> {
    let Some(room) = room_store::room_for_case(db, case_id).await? else {
        return Ok(None);
    };
    let known: Vec<String> =
        sqlx::query_scalar("SELECT participant_key FROM case_room_members WHERE room_id = $1")
            .bind(to_bigint(room.get(), "room id")?)
            .fetch_all(db.pool())
            .await?;
    let missing = attendees(db, case_id)
        .await?
        .into_iter()
        .filter(|attendee| !known.contains(&attendee.key))
        .collect();
    Ok(Some((room, missing)))
}

/// Records that `attendee` is `member` of `room` (after adding them to the live room).
pub async fn record_member(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    room: RoomId,
    attendee: &Attendee,
    member: ParticipantId,
) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    insert_member_key(&mut tx, room, &attendee.key, member).await?;
    if let Some(user) = &attendee.user_id {
        room_store::link_user_in(&mut tx, actor, now, room, member, user).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn insert_member_key(
    conn: &mut AnyConnection,
    room: RoomId,
    key: &str,
    member: ParticipantId,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO case_room_members (room_id, participant_key, member_id) VALUES ($1, $2, $3)",
    )
    .bind(to_bigint(room.get(), "room id")?)
    .bind(key)
    .bind(to_bigint(member.get(), "member id")?)
    .execute(conn)
    .await?;
    Ok(())
}

/// A fresh member id for a new room member.
pub fn new_member_id() -> ParticipantId {
    ParticipantId::new(rand::thread_rng().gen_range(1..=i64::MAX).unsigned_abs())
}

/// One person's invitation, as the clerk sees it after scheduling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invited {
    pub display_name: String,
    pub part: String,
    /// Where the mail goes; `None`: nobody to mail, the clerk hands the link over.
    pub email: Option<String>,
    /// The personal link, only for those without an address (shown once to the clerk).
    pub link_to_hand_over: Option<String>,
}

/// What a scheduling did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub meeting_id: String,
    pub room_id: RoomId,
    pub invited: Vec<Invited>,
}

/// The meeting facts every mail of it repeats.
struct MeetingFacts<'a> {
    id: &'a str,
    sequence: u32,
    case_id: &'a CaseId,
    reference: &'a str,
    title: &'a str,
    mediator: &'a str,
    organism_name: &'a str,
    starts_at: UnixMillis,
    ends_at: UnixMillis,
}

impl MeetingFacts<'_> {
    fn when(&self) -> String {
        format!(
            "{}, dalle {} alle {} (ora italiana)",
            rome_time::long_date(self.starts_at),
            rome_time::clock(self.starts_at),
            rome_time::clock(self.ends_at)
        )
    }

    fn summary(&self) -> String {
        format!("Incontro di mediazione – pratica {}", self.reference)
    }

    fn event<'e>(&'e self, summary: &'e str, url: Option<&'e str>) -> ical::Event<'e> {
        ical::Event {
            uid: self.id,
            sequence: self.sequence,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            summary,
            location: "Online (stanza virtuale Accordo)",
            description: None,
            url,
        }
    }
}

/// The mail of one attendee and its kind.
fn letter(
    kind: MailKind,
    facts: &MeetingFacts<'_>,
    attendee: &Attendee,
    link: Option<&str>,
    reason: Option<&str>,
) -> (String, String) {
    let when = facts.when();
    let reference = facts.reference;
    let (subject, opening) = match kind {
        MailKind::Invitation => (
            format!("Convocazione all'incontro di mediazione – pratica {reference}"),
            format!(
                "la informiamo che l'incontro di mediazione della pratica n. {reference} («{}») \
                 si terrà in videoconferenza",
                facts.title
            ),
        ),
        MailKind::Reminder => (
            format!("Promemoria: incontro di mediazione – pratica {reference}"),
            format!(
                "le ricordiamo che l'incontro di mediazione della pratica n. {reference} («{}») \
                 si terrà in videoconferenza",
                facts.title
            ),
        ),
        MailKind::Rescheduled => (
            format!("Nuova data dell'incontro di mediazione – pratica {reference}"),
            format!(
                "la informiamo che l'incontro di mediazione della pratica n. {reference} («{}») \
                 è stato spostato e si terrà in videoconferenza",
                facts.title
            ),
        ),
        MailKind::Cancelled => (
            format!("Annullamento dell'incontro di mediazione – pratica {reference}"),
            format!(
                "la informiamo che l'incontro di mediazione della pratica n. {reference} («{}») \
                 previsto in videoconferenza",
                facts.title
            ),
        ),
    };
    let mut body = format!(
        "Gentile {},\n\n{opening}\n\n    {when}\n    mediatore: {}\n\n",
        attendee.display_name, facts.mediator
    );
    if kind == MailKind::Cancelled {
        body.push_str("è stato annullato");
        match reason {
            Some(reason) => body.push_str(&format!(" per il seguente motivo: {reason}.\n\n")),
            None => body.push_str(".\n\n"),
        }
        body.push_str(
            "La segreteria le comunicherà la nuova data. In allegato trova l'annullamento da \
             registrare nel suo calendario.\n",
        );
    } else {
        body.push_str(&format!(
            "Lei partecipa in qualità di {}.\n\n",
            attendee.part
        ));
        if let Some(link) = link {
            body.push_str(&format!(
                "Per partecipare apra questo link personale, riservato a lei:\n\n    {link}\n\n\
                 Il link la identifica nella stanza: non lo inoltri ad altri. Sostituisce i link \
                 ricevuti in precedenza per questa pratica.\n\n"
            ));
        }
        body.push_str(
            "Che cosa serve:\n\
             - un computer, un tablet o uno smartphone con un browser aggiornato (Chrome, Edge, \
             Firefox o Safari);\n\
             - una videocamera e un microfono funzionanti: la pagina del link permette di \
             provarli prima di entrare;\n\
             - una connessione a Internet stabile e un luogo tranquillo e riservato.\n\n\
             Si colleghi qualche minuto prima dell'orario: entrerà in una sala d'attesa e il \
             mediatore la ammetterà all'incontro.\n",
        );
        if kind != MailKind::Reminder {
            body.push_str("\nIn allegato trova l'appuntamento da aggiungere al suo calendario.\n");
        }
    }
    body.push_str(&format!(
        "\nCordiali saluti\nLa segreteria – {}\n",
        facts.organism_name
    ));
    (subject, body)
}

/// Who sends a notice, and when.
struct Sender<'a> {
    actor: &'a Actor,
    now: UnixMillis,
    context: &'a Context<'a>,
}

/// What is sent about a meeting, to whom.
struct Notice<'a> {
    kind: MailKind,
    room: RoomId,
    attendees: &'a [(Attendee, ParticipantId)],
    /// Why the meeting was cancelled.
    reason: Option<&'a str>,
}

/// Queues the notice's kind for every attendee with an address (invitation-like kinds with
/// their new link, and reminders); returns what each attendee got.
async fn notify(
    tx: &mut AnyConnection,
    sender: &Sender<'_>,
    facts: &MeetingFacts<'_>,
    notice: &Notice<'_>,
) -> Result<Vec<Invited>, ScheduleError> {
    let Sender {
        actor,
        now,
        context,
    } = *sender;
    let Notice {
        kind,
        room,
        attendees,
        reason,
    } = *notice;
    let summary = facts.summary();
    let mut invited = Vec::with_capacity(attendees.len());
    for (attendee, member) in attendees {
        let link = if kind == MailKind::Cancelled {
            None
        } else {
            let token =
                invites::issue_in(tx, actor, now, room, *member, attendee.email.as_deref()).await?;
            Some(format!("{}/r/{}", context.public_url, token.reveal()))
        };
        let Some(email) = attendee.email.as_deref() else {
            invited.push(Invited {
                display_name: attendee.display_name.clone(),
                part: attendee.part.clone(),
                email: None,
                link_to_hand_over: link,
            });
            continue;
        };
        let method = if kind == MailKind::Cancelled {
            Method::Cancel
        } else {
            Method::Request
        };
        let ics = ical::invitation(
            &facts.event(&summary, link.as_deref()),
            method,
            now,
            context.organizer,
            (&attendee.display_name, email),
        );
        let (subject, body) = letter(kind, facts, attendee, link.as_deref(), reason);
        let key = format!(
            "meeting:{}:v{}:{}:{}",
            facts.id,
            facts.sequence,
            kind.code(),
            attendee.key
        );
        outbox::enqueue(
            tx,
            now,
            context.link_key,
            &NewMail {
                idempotency_key: &key,
                organism_id: context.organism,
                case_id: Some(facts.case_id),
                meeting_id: Some(facts.id),
                kind,
                to_name: &attendee.display_name,
                to_email: email,
                subject: &subject,
                body: &body,
                secret: link.as_deref(),
                ics: Some(&ics),
                ics_method: Some(method.name()),
                not_before: now,
            },
        )
        .await?;
        if kind != MailKind::Cancelled {
            for lead in context.reminder_leads {
                let due = UnixMillis(
                    facts
                        .starts_at
                        .0
                        .saturating_sub(i64::try_from(lead.as_millis()).unwrap_or(i64::MAX)),
                );
                if due <= now {
                    continue;
                }
                let (subject, body) =
                    letter(MailKind::Reminder, facts, attendee, link.as_deref(), None);
                let key = format!(
                    "meeting:{}:v{}:reminder-{}:{}",
                    facts.id,
                    facts.sequence,
                    lead.as_secs(),
                    attendee.key
                );
                outbox::enqueue(
                    tx,
                    now,
                    context.link_key,
                    &NewMail {
                        idempotency_key: &key,
                        organism_id: context.organism,
                        case_id: Some(facts.case_id),
                        meeting_id: Some(facts.id),
                        kind: MailKind::Reminder,
                        to_name: &attendee.display_name,
                        to_email: email,
                        subject: &subject,
                        body: &body,
                        secret: link.as_deref(),
                        ics: None,
                        ics_method: None,
                        not_before: due,
                    },
                )
                .await?;
            }
        }
        invited.push(Invited {
            display_name: attendee.display_name.clone(),
            part: attendee.part.clone(),
            email: Some(email.to_owned()),
            link_to_hand_over: None,
        });
    }
    office_notice(tx, now, context, facts, kind).await?;
    Ok(invited)
}

/// The segreteria's own copy: its reminders, and news of a move or a cancellation.
async fn office_notice(
    tx: &mut AnyConnection,
    now: UnixMillis,
    context: &Context<'_>,
    facts: &MeetingFacts<'_>,
    kind: MailKind,
) -> Result<(), ScheduleError> {
    let Some(office) = context.office_email else {
        return Ok(());
    };
    let mut notices = Vec::new();
    match kind {
        MailKind::Invitation | MailKind::Rescheduled => {
            for lead in context.reminder_leads {
                let due = UnixMillis(
                    facts
                        .starts_at
                        .0
                        .saturating_sub(i64::try_from(lead.as_millis()).unwrap_or(i64::MAX)),
                );
                if due > now {
                    notices.push((
                        MailKind::Reminder,
                        due,
                        format!("reminder-{}", lead.as_secs()),
                    ));
                }
            }
        }
        MailKind::Cancelled => notices.push((kind, now, kind.code().to_owned())),
        MailKind::Reminder => {}
    }
    for (kind, due, label) in notices {
        let verb = if kind == MailKind::Cancelled {
            "è stato annullato"
        } else {
            "è in agenda"
        };
        let subject = format!("{} – pratica {}", kind.label_it(), facts.reference);
        let body = format!(
            "L'incontro online della pratica n. {} («{}») del {} con il mediatore {} {verb}.\n",
            facts.reference,
            facts.title,
            facts.when(),
            facts.mediator
        );
        let key = format!("meeting:{}:v{}:{label}:office", facts.id, facts.sequence);
        outbox::enqueue(
            tx,
            now,
            context.link_key,
            &NewMail {
                idempotency_key: &key,
                organism_id: context.organism,
                case_id: Some(facts.case_id),
                meeting_id: Some(facts.id),
                kind,
                to_name: "Segreteria",
                to_email: office,
                subject: &subject,
                body: &body,
                secret: None,
                ics: None,
                ics_method: None,
                not_before: due,
            },
        )
        .await?;
    }
    Ok(())
}

/// The case (of the context's organism), its mediator and the organism's name: what every
/// mail about its meetings repeats.
struct CaseFacts {
    case: cases::Case,
    details: case_record::Details,
    mediator: mediators::Registered,
    organism_name: String,
}

impl CaseFacts {
    /// The facts of meeting `id` (at `sequence`) of this case, `window` long.
    fn meeting<'a>(
        &'a self,
        (id, sequence): (&'a str, u32),
        case_id: &'a CaseId,
        (starts_at, ends_at): (UnixMillis, UnixMillis),
    ) -> MeetingFacts<'a> {
        MeetingFacts {
            id,
            sequence,
            case_id,
            reference: self.case.reference.as_str(),
            title: &self.details.title,
            mediator: &self.mediator.mediator.display_name,
            organism_name: &self.organism_name,
            starts_at,
            ends_at,
        }
    }
}

async fn case_facts(
    db: &Db,
    context: &Context<'_>,
    case_id: &CaseId,
) -> Result<CaseFacts, ScheduleError> {
    let (case, details) = case_record::find(db, context.organism, case_record::Scope::All, case_id)
        .await?
        .ok_or(ScheduleError::NotFound)?;
    let (mediator, _) = mediators::appointed(db, case_id)
        .await?
        .ok_or(ScheduleError::Invalid(
            "prima di fissare l'incontro occorre nominare il mediatore",
        ))?;
    let organism_name: Option<String> = match context.organism {
        Some(organism) => {
            sqlx::query_scalar("SELECT name FROM organisms WHERE id = $1")
                .bind(organism)
                .fetch_optional(db.pool())
                .await?
        }
        None => None,
    };
    Ok(CaseFacts {
        case,
        details,
        mediator,
        organism_name: organism_name.unwrap_or_else(|| "Organismo di mediazione".to_owned()),
    })
}

/// The room members of `attendees` in `room`; [`ScheduleError::MembersMissing`] if any lacks one.
async fn members_of(
    conn: &mut AnyConnection,
    room: RoomId,
    attendees: Vec<Attendee>,
) -> Result<Vec<(Attendee, ParticipantId)>, ScheduleError> {
    let rows =
        sqlx::query("SELECT participant_key, member_id FROM case_room_members WHERE room_id = $1")
            .bind(to_bigint(room.get(), "room id")?)
            .fetch_all(conn)
            .await?;
    let mut known = Vec::with_capacity(rows.len());
    for row in &rows {
        let key: String = row.try_get("participant_key")?;
        let member: i64 = row.try_get("member_id")?;
        known.push((key, ParticipantId::new(from_bigint(member, "member id")?)));
    }
    attendees
        .into_iter()
        .map(|attendee| {
            known
                .iter()
                .find(|(key, _)| *key == attendee.key)
                .map(|(_, member)| (attendee.clone(), *member))
                .ok_or(ScheduleError::MembersMissing)
        })
        .collect()
}

/// Schedules an online meeting of case `case_id` with its appointed mediator, creates the
/// case's room if it has none, and queues every invitation — in one transaction.
pub async fn schedule_online(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    context: &Context<'_>,
    case_id: &CaseId,
    (starts_at, ends_at): (UnixMillis, UnixMillis),
) -> Result<Scheduled, ScheduleError> {
    if starts_at <= now {
        return Err(ScheduleError::Invalid(
            "l'incontro deve essere fissato nel futuro",
        ));
    }
    let known = case_facts(db, context, case_id).await?;
    let attendees = attendees(db, case_id).await?;
    let existing_room = room_store::room_for_case(db, case_id).await?;
    let mut tx = db.begin().await?;
    let meeting = NewMeeting {
        case_id,
        starts_at,
        ends_at,
        place: None,
        mediator: Some(&known.mediator.mediator.id),
    };
    let meeting_id = agenda::schedule_in(&mut tx, db.backend(), actor, now, &meeting).await?;
    let (room, members) = match existing_room {
        Some(room) => (room, members_of(&mut tx, room, attendees).await?),
        None => {
            let members: Vec<(Attendee, ParticipantId)> = attendees
                .into_iter()
                .map(|attendee| (attendee, new_member_id()))
                .collect();
            let first: Vec<FirstMember> = members
                .iter()
                .map(|(attendee, member)| FirstMember {
                    member: *member,
                    role: attendee.role,
                    side: attendee.side,
                    display_name: attendee.display_name.clone(),
                })
                .collect();
            let snapshot = room_store::create_room_in(
                &mut tx,
                actor,
                now,
                &known.case,
                context.room_settings,
                &first,
            )
            .await
            .map_err(|error| match error {
                // Another scheduling made the case's room meanwhile: this one starts again.
                StoreError::Database(error) if is_unique_violation(&error) => {
                    ScheduleError::MembersMissing
                }
                other => other.into(),
            })?;
            for (attendee, member) in &members {
                insert_member_key(&mut tx, snapshot.id, &attendee.key, *member).await?;
                if let Some(user) = &attendee.user_id {
                    room_store::link_user_in(&mut tx, actor, now, snapshot.id, *member, user)
                        .await?;
                }
            }
            (snapshot.id, members)
        }
    };
    let facts = known.meeting((&meeting_id, 0), case_id, (starts_at, ends_at));
    let sender = Sender {
        actor,
        now,
        context,
    };
    let invitations = (MailKind::Invitation, room, members.as_slice());
    invite_and_commit(tx, &sender, &facts, invitations).await
}

/// Gives every attendee of the meeting of `facts` a new link in a mail of `kind`, commits, and
/// says who was invited (scheduling and moving end alike).
async fn invite_and_commit(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    sender: &Sender<'_>,
    facts: &MeetingFacts<'_>,
    (kind, room, attendees): (MailKind, RoomId, &[(Attendee, ParticipantId)]),
) -> Result<Scheduled, ScheduleError> {
    let notice = Notice {
        kind,
        room,
        attendees,
        reason: None,
    };
    let invited = notify(&mut tx, sender, facts, &notice).await?;
    tx.commit().await?;
    Ok(Scheduled {
        meeting_id: facts.id.to_owned(),
        room_id: room,
        invited,
    })
}

/// A meeting as stored, for moving or cancelling it.
struct Stored {
    mediator: Option<String>,
    online: bool,
    sequence: u32,
    starts_at: UnixMillis,
    ends_at: UnixMillis,
}

/// Locks meeting `id` of the context's organism (not cancelled) in `tx` and reads it.
async fn lock_meeting(
    tx: &mut AnyConnection,
    context: &Context<'_>,
    id: &str,
) -> Result<Stored, ScheduleError> {
    // A no-op write first: the row is locked before it is read, on both backends.
    sqlx::query("UPDATE meetings SET sequence = sequence WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(
        "SELECT m.mediator_id, m.place_id, m.sequence, m.starts_at, m.ends_at \
         FROM meetings m JOIN cases c ON c.id = m.case_id WHERE m.id = $1 \
         AND m.cancelled_at IS NULL \
         AND (c.organism_id = $2 OR ($2 IS NULL AND c.organism_id IS NULL))",
    )
    .bind(id)
    .bind(context.organism)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ScheduleError::NotFound)?;
    let place: Option<String> = row.try_get("place_id")?;
    Ok(Stored {
        mediator: row.try_get("mediator_id")?,
        online: place.is_none(),
        sequence: u32::try_from(row.try_get::<i64, _>("sequence")?).unwrap_or(u32::MAX),
        starts_at: UnixMillis(row.try_get("starts_at")?),
        ends_at: UnixMillis(row.try_get("ends_at")?),
    })
}

/// Moves online meeting `id` to `[starts_at, ends_at)`: its unsent reminders are withdrawn and
/// every attendee gets the new date with a new link — in one transaction.
pub async fn reschedule(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    context: &Context<'_>,
    id: &str,
    (starts_at, ends_at): (UnixMillis, UnixMillis),
) -> Result<Scheduled, ScheduleError> {
    if starts_at <= now {
        return Err(ScheduleError::Invalid(
            "l'incontro deve essere fissato nel futuro",
        ));
    }
    if ends_at <= starts_at {
        return Err(ScheduleError::Invalid(
            "l'incontro deve finire dopo l'inizio",
        ));
    }
    let case_id: CaseId = sqlx::query_scalar("SELECT case_id FROM meetings WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(ScheduleError::NotFound)?;
    let known = case_facts(db, context, &case_id).await?;
    let attendees = attendees(db, &case_id).await?;
    let room = room_store::room_for_case(db, &case_id)
        .await?
        .ok_or(ScheduleError::NotFound)?;
    let mut tx = db.begin().await?;
    let stored = lock_meeting(&mut tx, context, id).await?;
    if !stored.online {
        return Err(ScheduleError::Invalid(
            "solo gli incontri online si spostano da qui",
        ));
    }
    agenda::lock_resources(&mut tx, db.backend(), [stored.mediator.as_deref(), None]).await?;
    let sequence = stored.sequence.saturating_add(1);
    sqlx::query("UPDATE meetings SET starts_at = $1, ends_at = $2, sequence = $3 WHERE id = $4")
        .bind(starts_at.0)
        .bind(ends_at.0)
        .bind(i64::from(sequence))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let moved = NewMeeting {
        case_id: &case_id,
        starts_at,
        ends_at,
        place: None,
        mediator: stored.mediator.as_deref(),
    };
    agenda::check_free(&mut tx, &moved, id).await?;
    outbox::cancel_pending(&mut tx, id, now).await?;
    let record = NewRecord {
        action: Action::MeetingRescheduled,
        entity_type: "case",
        entity_id: case_id.as_str(),
        changes: vec![
            Change::set(Field::Meeting, id),
            Change::changed(
                Field::StartsAt,
                stored.starts_at.0.to_string(),
                starts_at.0.to_string(),
            ),
            Change::changed(
                Field::EndsAt,
                stored.ends_at.0.to_string(),
                ends_at.0.to_string(),
            ),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    let members = members_of(&mut tx, room, attendees).await?;
    let facts = known.meeting((id, sequence), &case_id, (starts_at, ends_at));
    let sender = Sender {
        actor,
        now,
        context,
    };
    let moved = (MailKind::Rescheduled, room, members.as_slice());
    invite_and_commit(tx, &sender, &facts, moved).await
}

/// Cancels meeting `id` with `reason`: its unsent mail is withdrawn and every attendee of an
/// online meeting is told (with an iCalendar CANCEL) — in one transaction. The room and its
/// links stay for the case's next meeting.
pub async fn cancel(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    context: &Context<'_>,
    id: &str,
    reason: &str,
) -> Result<(), ScheduleError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ScheduleError::Invalid(
            "indichi il motivo dell'annullamento",
        ));
    }
    let case_id: CaseId = sqlx::query_scalar("SELECT case_id FROM meetings WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(ScheduleError::NotFound)?;
    let known = case_facts(db, context, &case_id).await?;
    let room = room_store::room_for_case(db, &case_id).await?;
    // Only those the room holds were ever invited.
    let attendees = match attendees(db, &case_id).await {
        Ok(attendees) => attendees,
        Err(ScheduleError::Invalid(_)) => Vec::new(),
        Err(error) => return Err(error),
    };
    let mut tx = db.begin().await?;
    let stored = lock_meeting(&mut tx, context, id).await?;
    let sequence = stored.sequence.saturating_add(1);
    sqlx::query(
        "UPDATE meetings SET cancelled_at = $1, cancel_reason = $2, sequence = $3 WHERE id = $4",
    )
    .bind(now.0)
    .bind(reason)
    .bind(i64::from(sequence))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    outbox::cancel_pending(&mut tx, id, now).await?;
    let record = NewRecord {
        action: Action::MeetingCancelled,
        entity_type: "case",
        entity_id: case_id.as_str(),
        changes: vec![
            Change::set(Field::Meeting, id),
            Change::set(Field::Reason, reason),
        ],
    };
    audit::record(&mut tx, actor, now, record).await?;
    if let (true, Some(room)) = (stored.online, room) {
        let keys: Vec<String> =
            sqlx::query_scalar("SELECT participant_key FROM case_room_members WHERE room_id = $1")
                .bind(to_bigint(room.get(), "room id")?)
                .fetch_all(&mut *tx)
                .await?;
        let invited: Vec<Attendee> = attendees
            .into_iter()
            .filter(|attendee| keys.contains(&attendee.key))
            .collect();
        let members = members_of(&mut tx, room, invited).await?;
        let facts = known.meeting((id, sequence), &case_id, (stored.starts_at, stored.ends_at));
        let notice = Notice {
            kind: MailKind::Cancelled,
            room,
            attendees: &members,
            reason: Some(reason),
        };
        let sender = Sender {
            actor,
            now,
            context,
        };
        notify(&mut tx, &sender, &facts, &notice).await?;
    }
    tx.commit().await?;
    Ok(())
}
