//! Server-rendered pages: rendering a template, the Italian form extractor, the navigation bar
//! of a logged-in user and the error page.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use backoffice::platform::access::{Permission, Role};
use backoffice::platform::audit::Action;

use crate::http::auth::CurrentUser;
use crate::http::csrf::CsrfToken;
use crate::http::error::AppError;
use crate::http::extract::body_refusal;

/// Renders a template; a template error (a bug) becomes a plain 500 page.
pub fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => AppError::Internal(error.to_string()).into_response(),
    }
}

/// `Form<T>` whose rejection is the Italian error page instead of axum's plain text.
pub struct PageForm<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for PageForm<T> {
    type Rejection = AppError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        Form::<T>::from_request(request, state)
            .await
            .map(|Form(value)| PageForm(value))
            .map_err(|rejection| match rejection {
                FormRejection::BytesRejection(rejection) => body_refusal(&rejection),
                _ => AppError::BadRequest(
                    "Il modulo inviato non è completo o contiene valori non validi: torni alla \
                     pagina e lo compili di nuovo."
                        .to_owned(),
                ),
            })
    }
}

/// The navigation bar of a logged-in user.
pub struct Nav {
    pub display_name: String,
    pub role: &'static str,
    pub is_admin: bool,
    /// Shows the link to the outgoing mail (`/posta`).
    pub may_view_outbox: bool,
    pub may_view_cases: bool,
    pub may_manage_mediators: bool,
    pub may_manage_agenda: bool,
    pub may_manage_people: bool,
    pub csrf_token: String,
}

impl Nav {
    pub fn new(current: &CurrentUser, csrf: &CsrfToken) -> Self {
        Self {
            display_name: current.user.display_name.clone(),
            role: role_label(current.user.role),
            is_admin: current.allows(Permission::ManageUsers),
            may_view_outbox: current.allows(Permission::ViewOutbox),
            may_view_cases: current.allows(Permission::ViewCases),
            may_manage_mediators: current.allows(Permission::ManageMediators),
            may_manage_agenda: current.allows(Permission::ManageAgenda),
            may_manage_people: current.allows(Permission::ManagePeople),
            csrf_token: csrf.0.clone(),
        }
    }
}

/// How a role is named in the interface.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "Amministratore",
        Role::Segreteria => "Segreteria",
        Role::Mediatore => "Mediatore",
        Role::Consigliere => "Consigliere relatore",
    }
}

/// How an audit action is named in the audit log and in a case's history, in Italian.
fn action_label(action: Action) -> &'static str {
    match action {
        Action::UserCreated => "Utente creato",
        Action::UserLogin => "Accesso",
        Action::UserLoginFailed => "Accesso non riuscito",
        Action::UserLocked => "Account bloccato",
        Action::UserLogout => "Uscita",
        Action::UserPasswordChanged => "Password cambiata",
        Action::UserPasswordReset => "Password reimpostata",
        Action::OrganismCreated => "Organismo creato",
        Action::SettingCreated => "Parametro creato",
        Action::RolePermissionChanged => "Permesso del ruolo modificato",
        Action::PersonCreated => "Persona registrata",
        Action::PersonMerged => "Schede anagrafiche unite",
        Action::CaseCreated => "Pratica registrata",
        Action::CaseUpdated => "Dati della pratica modificati",
        Action::CaseParticipantAdded => "Partecipante aggiunto alla pratica",
        Action::CaseParticipantRemoved => "Partecipante rimosso dalla pratica",
        Action::CaseMediatorAppointed => "Mediatore designato",
        Action::CaseLedgerEntry => "Movimento contabile registrato",
        Action::CaseDocumentAdded => "Documento aggiunto al fascicolo",
        Action::MediatorAdded => "Mediatore iscritto",
        Action::MediatorUnavailabilityAdded => "Indisponibilità del mediatore registrata",
        Action::MediatorConflictDeclared => "Conflitto di interessi dichiarato",
        Action::MediatorFeedIssued => "Calendario del mediatore rilasciato",
        Action::PlaceAdded => "Sala aggiunta",
        Action::MeetingScheduled => "Incontro fissato",
        Action::MeetingRescheduled => "Incontro spostato",
        Action::MeetingCancelled => "Incontro annullato",
        Action::MailSent => "Messaggio inviato",
        Action::MailRetry => "Invio del messaggio da ritentare",
        Action::MailFailed => "Invio del messaggio non riuscito",
        Action::MailRequeued => "Messaggio rimesso in coda",
        Action::InviteIssued => "Collegamento personale rilasciato",
        Action::InviteRevoked => "Collegamento personale revocato",
        Action::RoomCreated => "Stanza aperta",
        Action::RoomMemberLinked => "Utente collegato alla stanza",
        Action::RoomFileUploaded => "Documento caricato nella stanza",
        Action::RoomMemberAdded => "Partecipante aggiunto alla stanza",
        Action::RoomMemberConnected => "Partecipante connesso",
        Action::RoomMemberDisconnected => "Partecipante disconnesso",
        Action::RoomMemberAdmitted => "Partecipante ammesso",
        Action::RoomMemberSentToWaitingRoom => "Partecipante rimandato in sala d'attesa",
        Action::RoomMemberRemoved => "Partecipante allontanato",
        Action::RoomMemberMoved => "Partecipante spostato di sessione",
        Action::RoomInviteRevoked => "Collegamento revocato dalla stanza",
        Action::RoomSessionJoined => "Ingresso in una sessione",
        Action::RoomCaucusStarted => "Sessione separata aperta",
        Action::RoomCaucusEnded => "Sessione separata chiusa",
        Action::RoomCaucusTimerSet => "Durata della sessione separata impostata",
        Action::RoomBackToPlenary => "Ritorno in sessione comune",
        Action::RoomChatPosted => "Messaggio in chat",
        Action::RoomBroadcastSent => "Avviso a tutti i presenti",
        Action::RoomFileShared => "Documento condiviso",
        Action::RoomMeetingEnded => "Incontro concluso",
        Action::ApiTokenCreated => "Token API creato",
        Action::ApiTokenRevoked => "Token API revocato",
        Action::ApiTokenRefused => "Token API rifiutato",
    }
}

/// The Italian name of the audit action stored as `code` (one this version does not know is
/// "Altra operazione").
pub fn audit_label(code: &str) -> &'static str {
    Action::from_code(code).map_or("Altra operazione", action_label)
}
