//! The pages of a staff user's doors (login, password change), the dashboard, `/api/v1/me`.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Json};
use backoffice::mediation::cases::CaseId;
use backoffice::platform::access::Permission;
use backoffice::platform::accounts::User;
use backoffice::platform::rome_time;

use crate::http::auth::{ApiUser, CurrentUser};
use crate::http::csrf::CsrfToken;
use crate::http::error::{ApiError, AppError};
use crate::http::render::{render, Nav};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "account/login.html")]
pub struct LoginPage {
    csrf_token: String,
    username: String,
    error: Option<String>,
}

impl LoginPage {
    pub fn new(csrf: &CsrfToken, username: &str, error: Option<String>) -> Self {
        Self {
            csrf_token: csrf.0.clone(),
            username: username.to_owned(),
            error,
        }
    }
}

#[derive(Template)]
#[template(path = "account/password.html")]
pub struct PasswordPage {
    csrf_token: String,
    display_name: String,
    one_time: bool,
    error: Option<String>,
}

impl PasswordPage {
    pub fn new(csrf: &CsrfToken, user: &User, error: Option<String>) -> Self {
        Self {
            csrf_token: csrf.0.clone(),
            display_name: user.display_name.clone(),
            one_time: user.must_change_password,
            error,
        }
    }
}

#[derive(Template)]
#[template(path = "account/dashboard.html")]
struct DashboardPage {
    nav: Nav,
    /// `(id, reference, title)` of the newest cases the user may see.
    cases: Vec<(CaseId, String, String)>,
    /// `(case id, when, reference, place)` of the meetings of the next seven days.
    meetings: Vec<(CaseId, String, String, String)>,
}

/// Cases and meetings on the dashboard.
const DASHBOARD_ROWS: i64 = 8;

/// `GET /`: the dashboard: the newest cases and the week's meetings the user may see.
pub async fn dashboard(
    State(state): State<AppState>,
    current: CurrentUser,
    Extension(csrf): Extension<CsrfToken>,
) -> Result<Response, AppError> {
    current.require(Permission::ViewDashboard)?;
    let organism = current.user.organism_id.as_deref();
    let (mut cases, mut meetings) = (Vec::new(), Vec::new());
    if let Ok(scope) = crate::cases::scope::scope(&current) {
        cases =
            backoffice::mediation::case_record::list(&state.db, organism, scope, DASHBOARD_ROWS)
                .await?
                .into_iter()
                .map(|summary| {
                    (
                        summary.case.id,
                        summary.case.reference.as_str().to_owned(),
                        summary.details.title,
                    )
                })
                .collect();
        let now = state.clock_now();
        let week = (now, now.plus(std::time::Duration::from_secs(7 * 24 * 3600)));
        let mine = (!current.allows(Permission::ViewAllCases)).then_some(current.user.id.as_str());
        meetings = backoffice::mediation::agenda::between(&state.db, organism, week, mine)
            .await?
            .into_iter()
            .map(|item| {
                let place = match item.place {
                    Some((sede, room)) => format!("{sede}, {room}"),
                    None => "online".to_owned(),
                };
                (
                    item.case_id,
                    rome_time::format(item.starts_at),
                    item.case_reference,
                    place,
                )
            })
            .collect();
    }
    Ok(render(&DashboardPage {
        nav: Nav::new(&current, &csrf),
        cases,
        meetings,
    }))
}

/// `GET /api/v1/me`: the logged-in user.
pub async fn api_me(ApiUser(current): ApiUser) -> Result<Json<serde_json::Value>, ApiError> {
    current.require(Permission::ViewDashboard)?;
    Ok(Json(serde_json::json!({
        "id": current.user.id,
        "username": current.user.username,
        "display_name": current.user.display_name,
        "role": current.user.role.as_str(),
    })))
}
