//! Which cases a user sees: the one place that answers it for every area.

use backoffice::mediation::case_record::{self, Scope};
use backoffice::mediation::cases::CaseId;
use backoffice::platform::access::Permission;

use crate::http::auth::CurrentUser;
use crate::http::error::AppError;
use crate::state::AppState;

/// Which cases `current` may see; `Forbidden` without [`Permission::ViewCases`].
pub fn scope(current: &CurrentUser) -> Result<Scope<'_>, AppError> {
    current.require(Permission::ViewCases)?;
    Ok(if current.allows(Permission::ViewAllCases) {
        Scope::All
    } else {
        Scope::MediatorUser(&current.user.id)
    })
}

/// Checks that case `case_id` is the user's organism's, for changes keyed by the case alone.
pub async fn own_case(
    state: &AppState,
    current: &CurrentUser,
    case_id: &CaseId,
) -> Result<(), AppError> {
    case_record::find(
        &state.db,
        current.user.organism_id.as_deref(),
        Scope::All,
        case_id,
    )
    .await?
    .map(|_| ())
    .ok_or(AppError::NotFound)
}
