//! What a user may be allowed to do: the list of permissions and their stored codes. A leaf
//! module: roles and policies (`access`) and the audit log (a role's permission as a changed
//! field) both name permissions.

/// Something a user may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See the dashboard after login.
    ViewDashboard,
    /// Create users and reset their passwords.
    ManageUsers,
    /// Decide what each role may do.
    ManagePermissions,
    /// Read the audit log.
    ViewAuditLog,
    /// See cases: with this alone, only the cases one is the current mediator of.
    ViewCases,
    /// See every case of the organism.
    ViewAllCases,
    /// Register cases and keep their record: details, participants, accounts.
    ManageCases,
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
    /// See the outgoing mail and its delivery state, and send a failed mail again.
    ViewOutbox,
}

impl Permission {
    /// Every permission, in the order the interface lists them.
    pub const ALL: [Permission; 13] = [
        Permission::ViewDashboard,
        Permission::ViewCases,
        Permission::ViewAllCases,
        Permission::ManageCases,
        Permission::ManageCaseFiles,
        Permission::ManagePeople,
        Permission::ManageMediators,
        Permission::ManageAgenda,
        Permission::ManageRooms,
        Permission::ViewOutbox,
        Permission::ViewAuditLog,
        Permission::ManageUsers,
        Permission::ManagePermissions,
    ];

    /// The stable name stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Permission::ViewDashboard => "view_dashboard",
            Permission::ManageUsers => "manage_users",
            Permission::ManagePermissions => "manage_permissions",
            Permission::ViewAuditLog => "view_audit_log",
            Permission::ViewCases => "view_cases",
            Permission::ViewAllCases => "view_all_cases",
            Permission::ManageCases => "manage_cases",
            Permission::ManageRooms => "manage_rooms",
            Permission::ManageCaseFiles => "manage_case_files",
            Permission::ManagePeople => "manage_people",
            Permission::ManageMediators => "manage_mediators",
            Permission::ManageAgenda => "manage_agenda",
            Permission::ViewOutbox => "view_outbox",
        }
    }

    /// How the interface names it.
    pub fn label(self) -> &'static str {
        match self {
            Permission::ViewDashboard => "Accedere alla scrivania",
            Permission::ManageUsers => "Gestire gli utenti",
            Permission::ManagePermissions => "Decidere i permessi dei ruoli",
            Permission::ViewAuditLog => "Consultare il registro delle operazioni",
            Permission::ViewCases => "Consultare le pratiche (senza il permesso seguente: solo quelle in cui è mediatore)",
            Permission::ViewAllCases => "Consultare tutte le pratiche dell'organismo",
            Permission::ManageCases => "Registrare le pratiche e aggiornarne i dati",
            Permission::ManageRooms => "Aprire le stanze online e gestire gli inviti",
            Permission::ManageCaseFiles => "Aggiungere documenti al fascicolo",
            Permission::ManagePeople => "Gestire l'anagrafica",
            Permission::ManageMediators => "Gestire l'elenco dei mediatori e le nomine",
            Permission::ManageAgenda => "Gestire l'agenda degli incontri",
            Permission::ViewOutbox => "Consultare la posta in uscita",
        }
    }

    /// The permission a stored name stands for.
    pub fn parse(code: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.code() == code)
    }
}
