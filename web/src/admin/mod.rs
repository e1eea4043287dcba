//! The administrator's pages: users, what each role may do, the audit log, the body's API
//! tokens.

mod pages;
mod tokens;

use crate::http::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/admin/users", pages::users)
        .post("/admin/users", pages::create_user)
        .get("/admin/audit", pages::audit_log)
        .get("/admin/permessi", pages::permissions)
        .post("/admin/permessi", pages::set_permission)
        .get("/api/v1/audit", pages::api_audit)
        .get("/admin/token", tokens::page)
        .post("/admin/token", tokens::page_create)
        .post("/admin/token/{token}/revoca", tokens::page_revoke)
        .get("/api/v1/api-tokens", tokens::api_list)
        .post("/api/v1/api-tokens", tokens::api_create)
        .post("/api/v1/api-tokens/{token}/revoke", tokens::api_revoke)
}
