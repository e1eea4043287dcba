//! The append-only audit log: who changed what, when, from where.
//!
//! **Invariant:** records are written with [`record`] inside the transaction of the change
//! they describe; the database refuses updates and deletes of audit rows (triggers in the
//! migrations). Values of secret fields are never recorded, only that they changed.

use sqlx::{Any, AnyConnection, Row};

use crate::platform::permission::Permission;
use crate::{StoreError, UnixMillis};

/// Who did something, and from which address.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user's id, or `None` for the system or the command line.
    pub user_id: Option<String>,
    /// What the audit log shows: a username, `sistema` or `riga di comando`.
    pub label: String,
    /// The client's IP address, when the change came over the network.
    pub ip: Option<String>,
}

impl Actor {
    /// The server itself (first start, scheduled jobs).
    pub fn system() -> Self {
        Self {
            user_id: None,
            label: "sistema".to_owned(),
            ip: None,
        }
    }

    /// An operator at the command line of the server.
    pub fn command_line() -> Self {
        Self {
            user_id: None,
            label: "riga di comando".to_owned(),
            ip: None,
        }
    }

    /// A room member acting through their personal link (by id: no name in the log).
    pub fn room_member(member: u64, ip: Option<String>) -> Self {
        Self {
            user_id: None,
            label: format!("partecipante {member}"),
            ip,
        }
    }
}

/// Declares [`Field`] with the code each field is stored as.
macro_rules! fields {
    ($($variant:ident => $code:literal,)*) => {
        /// A field an audit record says changed. Stored as its code (`title`), which never
        /// changes once released; a permission of a role is stored as the permission's code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Field {
            $($variant,)*
            Permission(Permission),
        }

        impl Field {
            /// The fields other than permissions, in declaration order.
            pub const NAMED: &'static [Field] = &[$(Field::$variant,)*];

            /// The stored code.
            pub fn code(self) -> &'static str {
                match self {
                    $(Field::$variant => $code,)*
                    Field::Permission(permission) => permission.code(),
                }
            }

            /// The field stored as `code`, if this version knows it.
            pub fn from_code(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(Field::$variant),)*
                    other => Permission::ALL
                        .into_iter()
                        .find(|permission| permission.code() == other)
                        .map(Field::Permission),
                }
            }
        }
    };
}

fields! {
    AmountCents => "amount_cents",
    Attempts => "attempts",
    AutoAdmit => "auto_admit",
    Capacity => "capacity",
    CaseId => "case_id",
    CaseParticipations => "case_participations",
    CaseRef => "case_ref",
    ClosedOn => "closed_on",
    CommunicationSentOn => "communication_sent_on",
    ConfirmedNotDuplicate => "confirmed_not_duplicate",
    Description => "description",
    Direction => "direction",
    DisplayName => "display_name",
    Document => "document",
    Email => "email",
    EndsAt => "ends_at",
    ExpiresAt => "expires_at",
    FailedLogins => "failed_logins",
    File => "file",
    FiledOn => "filed_on",
    From => "from",
    HoldWhenNoMediator => "hold_when_no_mediator",
    Kind => "kind",
    LifetimeMs => "lifetime_ms",
    LockedUntil => "locked_until",
    MediaType => "media_type",
    Mediator => "mediator",
    Meeting => "meeting",
    Member => "member",
    Members => "members",
    MergedInto => "merged_into",
    MustChangePassword => "must_change_password",
    Name => "name",
    NextAttemptAt => "next_attempt_at",
    OnDate => "on_date",
    Online => "online",
    OrganismId => "organism_id",
    Outcome => "outcome",
    Overridden => "overridden",
    Participant => "participant",
    Password => "password",
    Person => "person",
    Reason => "reason",
    Reference => "reference",
    Represents => "represents",
    Response => "response",
    ResponseOn => "response_on",
    RevokeInvite => "revoke_invite",
    RevokedAt => "revoked_at",
    Role => "role",
    Room => "room",
    Scopes => "scopes",
    Sede => "sede",
    Session => "session",
    Sha256 => "sha256",
    Shareable => "shareable",
    Side => "side",
    Size => "size",
    StartsAt => "starts_at",
    State => "state",
    Subject => "subject",
    SubjectNote => "subject_note",
    Subjects => "subjects",
    Title => "title",
    To => "to",
    Token => "token",
    User => "user",
    Username => "username",
    Value => "value",
    ValueCents => "value_cents",
    ValueIndeterminate => "value_indeterminate",
}

/// One field's change. `None` means absent (before a creation, after a deletion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Change {
    /// A field's change; `None` is absent.
    pub fn new(field: Field, before: Option<String>, after: Option<String>) -> Self {
        Self {
            field: field.code().to_owned(),
            before,
            after,
        }
    }

    /// A field that was set to `after`.
    pub fn set(field: Field, after: impl Into<String>) -> Self {
        Self::new(field, None, Some(after.into()))
    }

    /// A field that went from `before` to `after`.
    pub fn changed(field: Field, before: impl Into<String>, after: impl Into<String>) -> Self {
        Self::new(field, Some(before.into()), Some(after.into()))
    }

    /// A secret field that changed: the values are not recorded.
    pub fn secret(field: Field) -> Self {
        Self::changed(field, "***", "***")
    }
}

/// Declares [`Action`] with the code each action is stored as.
macro_rules! actions {
    ($($variant:ident => $code:literal,)*) => {
        /// What an audit record says was done. Stored as its code (`case.created`), which never
        /// changes once released; `web` names each in Italian with an exhaustive `match`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($variant,)*
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The stored code.
            pub fn code(self) -> &'static str {
                match self {
                    $(Action::$variant => $code,)*
                }
            }

            /// The action stored as `code`, if this version knows it.
            pub fn from_code(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(Action::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    UserCreated => "user.created",
    UserLogin => "user.login",
    UserLoginFailed => "user.login_failed",
    UserLocked => "user.locked",
    UserLogout => "user.logout",
    UserPasswordChanged => "user.password_changed",
    UserPasswordReset => "user.password_reset",
    OrganismCreated => "organism.created",
    SettingCreated => "setting.created",
    RolePermissionChanged => "role.permission_changed",
    PersonCreated => "person.created",
    PersonMerged => "person.merged",
    CaseCreated => "case.created",
    CaseUpdated => "case.updated",
    CaseParticipantAdded => "case.participant_added",
    CaseParticipantRemoved => "case.participant_removed",
    CaseMediatorAppointed => "case.mediator_appointed",
    CaseLedgerEntry => "case.ledger_entry",
    CaseDocumentAdded => "case.document_added",
    MediatorAdded => "mediator.added",
    MediatorUnavailabilityAdded => "mediator.unavailability_added",
    MediatorConflictDeclared => "mediator.conflict_declared",
    MediatorFeedIssued => "mediator.feed_issued",
    PlaceAdded => "place.added",
    MeetingScheduled => "meeting.scheduled",
    MeetingRescheduled => "meeting.rescheduled",
    MeetingCancelled => "meeting.cancelled",
    MailSent => "mail.sent",
    MailRetry => "mail.retry",
    MailFailed => "mail.failed",
    MailRequeued => "mail.requeued",
    InviteIssued => "invite.issued",
    InviteRevoked => "invite.revoked",
    RoomCreated => "room.created",
    RoomMemberLinked => "room.member_linked",
    RoomFileUploaded => "room.file_uploaded",
    RoomMemberAdded => "room.member_added",
    RoomMemberConnected => "room.member_connected",
    RoomMemberDisconnected => "room.member_disconnected",
    RoomMemberAdmitted => "room.member_admitted",
    RoomMemberSentToWaitingRoom => "room.member_sent_to_waiting_room",
    RoomMemberRemoved => "room.member_removed",
    RoomMemberMoved => "room.member_moved",
    RoomInviteRevoked => "room.invite_revoked",
    RoomSessionJoined => "room.session_joined",
    RoomCaucusStarted => "room.caucus_started",
    RoomCaucusEnded => "room.caucus_ended",
    RoomCaucusTimerSet => "room.caucus_timer_set",
    RoomBackToPlenary => "room.back_to_plenary",
    RoomChatPosted => "room.chat_posted",
    RoomBroadcastSent => "room.broadcast_sent",
    RoomFileShared => "room.file_shared",
    RoomMeetingEnded => "room.meeting_ended",
    ApiTokenCreated => "api_token.created",
    ApiTokenRevoked => "api_token.revoked",
    ApiTokenRefused => "api_token.refused",
}

/// What is being recorded.
#[derive(Debug, Clone)]
pub struct NewRecord<'a> {
    pub action: Action,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub changes: Vec<Change>,
}

/// One stored audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: i64,
    pub at: UnixMillis,
    pub actor_user_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    pub ip: Option<String>,
    pub changes: Vec<Change>,
}

/// Appends a record, in the caller's transaction.
pub async fn record(
    conn: &mut AnyConnection,
    actor: &Actor,
    at: UnixMillis,
    new: NewRecord<'_>,
) -> Result<(), StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit_log (at, actor_user_id, actor, action, entity_type, entity_id, ip) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(at.0)
    .bind(actor.user_id.as_deref())
    .bind(actor.label.as_str())
    .bind(new.action.code())
    .bind(new.entity_type)
    .bind(new.entity_id)
    .bind(actor.ip.as_deref())
    .fetch_one(&mut *conn)
    .await?;
    for (position, change) in new.changes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO audit_changes (audit_id, position, field, before_value, after_value) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(change.field.as_str())
        .bind(change.before.as_deref())
        .bind(change.after.as_deref())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The newest `limit` records an administrator of `organism` may read, newest first: those
/// made by the organism's users and those about its cases and their rooms. An installation
/// without organisms (`None`) reads them all.
pub async fn of_organism(
    executor: &sqlx::Pool<Any>,
    organism: Option<&str>,
    limit: i64,
) -> Result<Vec<Record>, StoreError> {
    let Some(organism) = organism else {
        return recent(executor, None, limit).await;
    };
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT a.id FROM audit_log a WHERE \
         EXISTS (SELECT 1 FROM users u WHERE u.id = a.actor_user_id AND u.organism_id = $1) \
         OR (a.entity_type = 'case' AND EXISTS (SELECT 1 FROM cases c \
             WHERE c.id = a.entity_id AND c.organism_id = $1)) \
         OR (a.entity_type = 'room' AND EXISTS (SELECT 1 FROM rooms r \
             JOIN cases c ON c.id = r.case_id \
             WHERE CAST(r.id AS TEXT) = a.entity_id AND c.organism_id = $1)) \
         ORDER BY a.id DESC LIMIT $2",
    )
    .bind(organism)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    let mut records = Vec::with_capacity(ids.len());
    for id in ids {
        records.extend(by_id(executor, id).await?);
    }
    Ok(records)
}

/// Record `id`, with its changes.
async fn by_id(executor: &sqlx::Pool<Any>, id: i64) -> Result<Option<Record>, StoreError> {
    let row = sqlx::query(
        "SELECT id, at, actor_user_id, actor, action, entity_type, entity_id, ip \
         FROM audit_log WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(executor)
    .await?;
    match row {
        Some(row) => Ok(Some(with_changes(executor, row).await?)),
        None => Ok(None),
    }
}

/// The newest `limit` records, newest first, optionally about one entity.
pub async fn recent(
    executor: &sqlx::Pool<Any>,
    entity: Option<(&str, &str)>,
    limit: i64,
) -> Result<Vec<Record>, StoreError> {
    let rows = match entity {
        Some((entity_type, entity_id)) => {
            sqlx::query(
                "SELECT id, at, actor_user_id, actor, action, entity_type, entity_id, ip \
                 FROM audit_log WHERE entity_type = $1 AND entity_id = $2 \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(entity_type)
            .bind(entity_id)
            .bind(limit)
            .fetch_all(executor)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT id, at, actor_user_id, actor, action, entity_type, entity_id, ip \
                 FROM audit_log ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(executor)
            .await?
        }
    };
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        records.push(with_changes(executor, row).await?);
    }
    Ok(records)
}

/// A record row with its changes.
async fn with_changes(
    executor: &sqlx::Pool<Any>,
    row: sqlx::any::AnyRow,
) -> Result<Record, StoreError> {
    {
        let id: i64 = row.try_get("id")?;
        let changes = sqlx::query(
            "SELECT field, before_value, after_value FROM audit_changes \
             WHERE audit_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(executor)
        .await?
        .into_iter()
        .map(|change| {
            Ok(Change {
                field: change.try_get("field")?,
                before: change.try_get("before_value")?,
                after: change.try_get("after_value")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Record {
            id,
            at: UnixMillis(row.try_get("at")?),
            actor_user_id: row.try_get("actor_user_id")?,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            entity_type: row.try_get("entity_type")?,
            entity_id: row.try_get("entity_id")?,
            ip: row.try_get("ip")?,
            changes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Action, Field};
    use crate::platform::permission::Permission;

    #[test]
    fn every_field_reads_back_from_its_code_and_no_two_share_one() {
        let permissions = Permission::ALL.into_iter().map(Field::Permission);
        let mut codes = std::collections::HashSet::new();
        for field in Field::NAMED.iter().copied().chain(permissions) {
            assert_eq!(Field::from_code(field.code()), Some(field));
            assert!(codes.insert(field.code()), "{} twice", field.code());
        }
        assert_eq!(Field::from_code("unknown"), None);
    }

    #[test]
    fn every_action_reads_back_from_its_code_and_no_two_share_one() {
        let mut codes = std::collections::HashSet::new();
        for action in Action::ALL {
            assert_eq!(Action::from_code(action.code()), Some(*action));
            assert!(codes.insert(action.code()), "{} twice", action.code());
            let (entity, verb) = action.code().split_once('.').expect("entity.verb");
            assert!(!entity.is_empty() && !verb.is_empty(), "{}", action.code());
        }
        assert_eq!(Action::from_code("room.unknown"), None);
    }
}
