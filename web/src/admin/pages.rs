//! The administrator's pages: users, permissions per role, the audit log (and its JSON).

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use backoffice::platform::access::{Permission, Role};
use backoffice::platform::accounts::{self, NewUser, Username};
use backoffice::platform::{audit, names};
use backoffice::StoreError;
use serde::Deserialize;

use crate::http::auth::{ApiUser, CurrentUser};
use crate::http::csrf::CsrfToken;
use crate::http::error::{capitalised, ApiError, AppError};
use crate::http::render::{audit_label, render, role_label, Nav, PageForm};
use crate::state::AppState;
use backoffice::platform::rome_time;

struct AuditRow {
    at: String,
    actor: String,
    action: &'static str,
    entity: String,
    ip: String,
    changes: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    nav: Nav,
    rows: Vec<AuditRow>,
}

const AUDIT_PAGE_ROWS: i64 = 200;

/// `GET /admin/audit`: the newest audit records.
pub async fn audit_log(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, AppError> {
    current.require(Permission::ViewAuditLog)?;
    let records = audit::of_organism(
        state.db.pool(),
        current.user.organism_id.as_deref(),
        AUDIT_PAGE_ROWS,
    )
    .await?;
    let rows = records
        .into_iter()
        .map(|record| AuditRow {
            at: rome_time::format(record.at),
            actor: record.actor,
            action: audit_label(&record.action),
            entity: format!("{} {}", record.entity_type, record.entity_id),
            ip: record.ip.unwrap_or_default(),
            changes: record
                .changes
                .iter()
                .map(|change| {
                    format!(
                        "{}: {} → {}",
                        change.field,
                        change.before.as_deref().unwrap_or("—"),
                        change.after.as_deref().unwrap_or("—")
                    )
                })
                .collect(),
        })
        .collect();
    Ok(render(&AuditPage {
        nav: Nav::new(&current, &csrf),
        rows,
    }))
}

struct UserRow {
    username: String,
    display_name: String,
    role: &'static str,
    state: &'static str,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<UserRow>,
    roles: Vec<(&'static str, &'static str)>,
    created: Option<(String, String)>,
    error: Option<String>,
}

async fn users_page(
    state: &AppState,
    current: &CurrentUser,
    csrf: &CsrfToken,
    created: Option<(String, String)>,
    error: Option<String>,
) -> Result<UsersPage, AppError> {
    // Locks are per account and client address (see `account::throttle`): not a state of
    // the account.
    let users = accounts::list(&state.db, current.user.organism_id.as_deref())
        .await?
        .into_iter()
        .map(|user| UserRow {
            state: if user.must_change_password {
                "In attesa del primo accesso"
            } else {
                "Attivo"
            },
            username: user.username,
            display_name: user.display_name,
            role: role_label(user.role),
        })
        .collect();
    Ok(UsersPage {
        nav: Nav::new(current, csrf),
        users,
        roles: Role::ALL
            .iter()
            .map(|role| (role.as_str(), role_label(*role)))
            .collect(),
        created,
        error,
    })
}

/// `GET /admin/users`.
pub async fn users(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageUsers)?;
    Ok(render(
        &users_page(&state, &current, &csrf, None, None).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    username: String,
    display_name: String,
    role: String,
}

/// `POST /admin/users`: creates an account and shows its one-time password once.
pub async fn create_user(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
    PageForm(form): PageForm<NewUserForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManageUsers)?;
    let refuse = |message: &str| Some(message.to_owned());
    let display_name = form.display_name.trim();
    let error = match (Username::parse(&form.username), Role::parse(&form.role)) {
        (Err(_), _) => refuse(
            "Nome utente non valido: da 3 a 64 caratteri tra lettere minuscole, cifre e . _ - @",
        ),
        (_, None) => refuse("Scelga un ruolo dall'elenco."),
        _ if display_name.is_empty() || display_name.chars().count() > 120 => {
            refuse("Indichi nome e cognome (al massimo 120 caratteri).")
        }
        _ if !names::is_one_line(display_name) => refuse(&capitalised(names::NOT_ONE_LINE)),
        (Ok(username), Some(role)) => {
            let new = NewUser {
                username,
                display_name: display_name.to_owned(),
                role,
                organism_id: current.user.organism_id.clone(),
            };
            match accounts::create_user(&state.db, &current.actor(), state.clock_now(), new).await {
                Ok((user, one_time)) => {
                    let created = Some((user.username, one_time.reveal().to_owned()));
                    return Ok(render(
                        &users_page(&state, &current, &csrf, created, None).await?,
                    ));
                }
                Err(StoreError::AlreadyExists(_)) => {
                    refuse("Esiste già un utente con questo nome.")
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    let page = users_page(&state, &current, &csrf, None, error).await?;
    Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
}

struct PermissionRow {
    code: &'static str,
    label: &'static str,
    /// Per role, in [`Role::ALL`] order: (role code, allowed, configurable).
    cells: Vec<(&'static str, bool, bool)>,
}

#[derive(Template)]
#[template(path = "admin/permissions.html")]
struct PermissionsPage {
    nav: Nav,
    roles: Vec<&'static str>,
    rows: Vec<PermissionRow>,
}

/// `GET /admin/permessi`: what each role of the organism may do.
pub async fn permissions(
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, AppError> {
    current.require(Permission::ManagePermissions)?;
    let rows = Permission::ALL
        .iter()
        .map(|permission| PermissionRow {
            code: permission.code(),
            label: permission.label(),
            cells: Role::ALL
                .iter()
                .map(|role| {
                    (
                        role.as_str(),
                        current.policy.allows(*role, *permission),
                        role.is_configurable(*permission),
                    )
                })
                .collect(),
        })
        .collect();
    Ok(render(&PermissionsPage {
        nav: Nav::new(&current, &csrf),
        roles: Role::ALL.iter().map(|role| role_label(*role)).collect(),
        rows,
    }))
}

#[derive(Debug, Deserialize)]
pub struct PermissionForm {
    role: String,
    permission: String,
    allowed: String,
}

/// `POST /admin/permessi`: grants or withdraws one permission of one role.
pub async fn set_permission(
    State(state): State<AppState>,
    current: CurrentUser,
    PageForm(form): PageForm<PermissionForm>,
) -> Result<Response, AppError> {
    current.require(Permission::ManagePermissions)?;
    let role = Role::parse(&form.role);
    let permission = Permission::parse(&form.permission);
    let (Some(role), Some(permission)) = (role, permission) else {
        return Err(AppError::BadRequest(
            "Ruolo o permesso sconosciuto.".to_owned(),
        ));
    };
    if !role.is_configurable(permission) {
        return Err(AppError::BadRequest(
            "L'amministratore conserva sempre la gestione di utenti e permessi.".to_owned(),
        ));
    }
    backoffice::platform::access::set(
        &state.db,
        &current.actor(),
        state.clock_now(),
        current.user.organism_id.as_deref(),
        (role, permission, form.allowed == "1"),
    )
    .await?;
    Ok(axum::response::Redirect::to("/admin/permessi").into_response())
}

/// `GET /api/v1/audit`: the newest audit records, for administrators.
pub async fn api_audit(
    State(state): State<AppState>,
    ApiUser(current): ApiUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    current.require(Permission::ViewAuditLog)?;
    let records = audit::of_organism(
        state.db.pool(),
        current.user.organism_id.as_deref(),
        AUDIT_PAGE_ROWS,
    )
    .await?;
    let records: Vec<serde_json::Value> = records
        .into_iter()
        .map(|record| {
            serde_json::json!({
                "id": record.id,
                "at": record.at.0,
                "actor": record.actor,
                "action": record.action,
                "entity_type": record.entity_type,
                "entity_id": record.entity_id,
                "ip": record.ip,
                "changes": record.changes.iter().map(|change| serde_json::json!({
                    "field": change.field, "before": change.before, "after": change.after,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "records": records })))
}
