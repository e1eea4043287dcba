//! The administrator's pages: users, what each role may do, the audit log.

mod pages;

use crate::http::routes::Routes;

pub fn routes() -> Routes {
    Routes::new()
        .get("/admin/users", pages::users)
        .post("/admin/users", pages::create_user)
        .get("/admin/audit", pages::audit_log)
        .get("/admin/permessi", pages::permissions)
        .post("/admin/permessi", pages::set_permission)
        .get("/api/v1/audit", pages::api_audit)
}
