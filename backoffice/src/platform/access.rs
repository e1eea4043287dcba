//! Roles and permissions, decided in one place.
//!
//! Each role starts from a built-in table ([`Role::default_allows`]); the administrator of an
//! organism may grant or withdraw permissions per role ([`set`]), except the administrator's
//! own power to manage users and permissions, which cannot be withdrawn (nobody could give it
//! back).
//!
//! **Invariant:** [`Policy::allows`] is the only function that answers "may this role do
//! that"; every page and API call of `web` asks it through one extractor, with the policy of
//! the user's organism loaded for the request.

use std::fmt;

use sqlx::Row;

use crate::platform::audit::{self, Action, Actor, Change, Field, NewRecord};
use crate::{Db, StoreError, UnixMillis};

pub use super::permission::Permission;

/// What a user is, for the purpose of access control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Amministratore: users, parameters, registries, the audit log.
    Admin,
    /// Segreteria: the body's front office.
    Segreteria,
    /// Mediatore (or gestore of an OCC).
    Mediatore,
    /// Consigliere relatore of a bar council (fee opinions).
    Consigliere,
}

impl Role {
    /// Every role, in the order the interface lists them.
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::Segreteria,
        Role::Mediatore,
        Role::Consigliere,
    ];

    /// The built-in table: whether this role may do `permission` when the administrator has
    /// not decided otherwise.
    pub fn default_allows(self, permission: Permission) -> bool {
        match permission {
            Permission::ViewDashboard => true,
            Permission::ManageUsers | Permission::ManagePermissions | Permission::ViewAuditLog => {
                self == Role::Admin
            }
            Permission::ViewCases => {
                matches!(self, Role::Admin | Role::Segreteria | Role::Mediatore)
            }
            Permission::ViewAllCases
            | Permission::ManageCases
            | Permission::ManageRooms
            | Permission::ManageCaseFiles
            | Permission::ManagePeople
            | Permission::ManageMediators
            | Permission::ManageAgenda
            | Permission::ViewOutbox => matches!(self, Role::Admin | Role::Segreteria),
        }
    }

    /// Whether the administrator may change this role's `permission`: not the administrator's
    /// own management of users and permissions.
    pub fn is_configurable(self, permission: Permission) -> bool {
        !(self == Role::Admin
            && matches!(
                permission,
                Permission::ManageUsers | Permission::ManagePermissions
            ))
    }

    /// The stable name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Segreteria => "segreteria",
            Role::Mediatore => "mediatore",
            Role::Consigliere => "consigliere",
        }
    }

    /// The role a stored or typed name stands for.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What each role of one organism may do: the built-in table with the administrator's choices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    decided: Vec<(Role, Permission, bool)>,
}

impl Policy {
    /// The built-in table alone.
    pub fn built_in() -> Self {
        Self::default()
    }

    /// Whether `role` may do `permission`.
    pub fn allows(&self, role: Role, permission: Permission) -> bool {
        if !role.is_configurable(permission) {
            return role.default_allows(permission);
        }
        self.decided
            .iter()
            .find(|(r, p, _)| *r == role && *p == permission)
            .map_or_else(
                || role.default_allows(permission),
                |(_, _, allowed)| *allowed,
            )
    }
}

/// The policy of `organism` (the installation's own when `None`).
pub async fn policy(db: &Db, organism: Option<&str>) -> Result<Policy, StoreError> {
    let rows = sqlx::query(
        "SELECT role, permission, allowed FROM role_permissions WHERE organism_key = $1",
    )
    .bind(organism.unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    let mut decided = Vec::with_capacity(rows.len());
    for row in &rows {
        let role: String = row.try_get("role")?;
        let permission: String = row.try_get("permission")?;
        let allowed: i64 = row.try_get("allowed")?;
        // A name this version does not know (written by a newer one) is ignored.
        if let (Some(role), Some(permission)) = (Role::parse(&role), Permission::parse(&permission))
        {
            decided.push((role, permission, allowed == 1));
        }
    }
    Ok(Policy { decided })
}

/// Decides whether `role` may do `permission` in `organism`; audited with the previous value.
/// A permission that cannot be configured is [`StoreError::Invalid`].
pub async fn set(
    db: &Db,
    actor: &Actor,
    now: UnixMillis,
    organism: Option<&str>,
    (role, permission, allowed): (Role, Permission, bool),
) -> Result<(), StoreError> {
    if !role.is_configurable(permission) {
        return Err(StoreError::Invalid("permission"));
    }
    let before = policy(db, organism).await?.allows(role, permission);
    if before == allowed {
        return Ok(());
    }
    let organism_key = organism.unwrap_or("");
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO role_permissions (organism_key, role, permission, allowed) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (organism_key, role, permission) \
         DO UPDATE SET allowed = excluded.allowed",
    )
    .bind(organism_key)
    .bind(role.as_str())
    .bind(permission.code())
    .bind(i64::from(allowed))
    .execute(&mut *tx)
    .await?;
    let entity_id = format!("{organism_key}/{}", role.as_str());
    let record = NewRecord {
        action: Action::RolePermissionChanged,
        entity_type: "role",
        entity_id: &entity_id,
        changes: vec![Change::changed(
            Field::Permission(permission),
            before.to_string(),
            allowed.to_string(),
        )],
    };
    audit::record(&mut tx, actor, now, record).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_manage_users_and_the_office_manages_cases() {
        let policy = Policy::built_in();
        for role in Role::ALL {
            assert!(policy.allows(role, Permission::ViewDashboard));
            let admin = role == Role::Admin;
            assert_eq!(policy.allows(role, Permission::ManageUsers), admin);
            assert_eq!(policy.allows(role, Permission::ViewAuditLog), admin);
            let office = matches!(role, Role::Admin | Role::Segreteria);
            for permission in [
                Permission::ManageRooms,
                Permission::ViewOutbox,
                Permission::ManageCases,
                Permission::ViewAllCases,
            ] {
                assert_eq!(
                    policy.allows(role, permission),
                    office,
                    "{role} {permission:?}"
                );
            }
            assert_eq!(
                policy.allows(role, Permission::ViewCases),
                role != Role::Consigliere
            );
        }
    }

    #[test]
    fn decisions_override_the_table_but_not_the_admins_own_powers() {
        let policy = Policy {
            decided: vec![
                (Role::Mediatore, Permission::ViewAllCases, true),
                (Role::Segreteria, Permission::ViewOutbox, false),
                (Role::Admin, Permission::ManageUsers, false),
            ],
        };
        assert!(policy.allows(Role::Mediatore, Permission::ViewAllCases));
        assert!(!policy.allows(Role::Segreteria, Permission::ViewOutbox));
        assert!(policy.allows(Role::Admin, Permission::ManageUsers));
        assert!(policy.allows(Role::Admin, Permission::ViewOutbox));
    }

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        for permission in Permission::ALL {
            assert_eq!(Permission::parse(permission.code()), Some(permission));
        }
        assert_eq!(Role::parse("superuser"), None);
        assert_eq!(Permission::parse("everything"), None);
    }
}
