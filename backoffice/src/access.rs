//! Roles and permissions, decided in one place.
//!
//! **Invariant:** [`Role::allows`] is the only function that answers "may this role do that";
//! every page and API call of `web` asks it through one extractor. (Issue #6 makes the table
//! configurable by the administrator; the question stays here.)

use std::fmt;

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

/// Something a user may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See the dashboard after login.
    ViewDashboard,
    /// Create users and reset their passwords.
    ManageUsers,
    /// Read the audit log.
    ViewAuditLog,
    /// Open online meeting rooms for cases and manage who is invited.
    ManageRooms,
    /// Add documents to case files (fascicoli).
    ManageCaseFiles,
    /// Add people to the registry and look for duplicates.
    ManagePeople,
    /// Keep the mediators' register and appoint mediators on cases.
    ManageMediators,
    /// Keep the agenda: meeting rooms and meetings.
    ManageAgenda,
}

impl Role {
    /// Every role, in the order the interface lists them.
    pub const ALL: [Role; 4] = [
        Role::Admin,
        Role::Segreteria,
        Role::Mediatore,
        Role::Consigliere,
    ];

    /// Whether a user with this role may do `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::ViewDashboard => true,
            Permission::ManageUsers | Permission::ViewAuditLog => self == Role::Admin,
            Permission::ManageRooms
            | Permission::ManageCaseFiles
            | Permission::ManagePeople
            | Permission::ManageMediators
            | Permission::ManageAgenda => {
                matches!(self, Role::Admin | Role::Segreteria)
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_manage_users_and_the_office_manages_rooms() {
        for role in Role::ALL {
            assert!(role.allows(Permission::ViewDashboard));
            let admin = role == Role::Admin;
            assert_eq!(role.allows(Permission::ManageUsers), admin);
            assert_eq!(role.allows(Permission::ViewAuditLog), admin);
            let office = matches!(role, Role::Admin | Role::Segreteria);
            assert_eq!(role.allows(Permission::ManageRooms), office);
        }
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("superuser"), None);
    }
}
