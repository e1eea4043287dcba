//! The doors of a staff user: login and logout, the password change, the dashboard and
//! `/api/v1/me`.

mod login;
mod pages;
pub(crate) mod throttle;

use crate::http::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/", pages::dashboard)
        .get("/login", login::login_page)
        .post("/login", login::login_submit)
        .post("/logout", login::logout)
        .get("/password", login::password_page)
        .post("/password", login::password_submit)
        .get("/api/v1/me", pages::api_me)
}
