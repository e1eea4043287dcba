//! Routes that know themselves: each area declares its routes through [`Routes`], which builds
//! the axum router and keeps a table of every method and path. The table is what the OpenAPI
//! document is checked against and what the CSRF test walks, so neither reads source code.

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;

use crate::state::AppState;

/// One route: a method and a path template as axum reads it (`/api/v1/cases/{case}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
}

impl Route {
    /// Whether the route changes state, so that the CSRF check guards it.
    pub fn changes_state(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// A router under construction and the table of what it serves.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    table: Vec<Route>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on((Method::GET, MethodFilter::GET), path, handler, None)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on((Method::POST, MethodFilter::POST), path, handler, None)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on((Method::PUT, MethodFilter::PUT), path, handler, None)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.on((Method::DELETE, MethodFilter::DELETE), path, handler, None)
    }

    /// A `POST` whose body may be as large as `limit` (file uploads).
    pub fn upload<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
        limit: usize,
    ) -> Self {
        self.on(
            (Method::POST, MethodFilter::POST),
            path,
            handler,
            Some(limit),
        )
    }

    fn on<H: Handler<T, AppState>, T: 'static>(
        mut self,
        (method, filter): (Method, MethodFilter),
        path: &'static str,
        handler: H,
        body_limit: Option<usize>,
    ) -> Self {
        let mut method_router = on(filter, handler);
        if let Some(limit) = body_limit {
            method_router = method_router.layer(DefaultBodyLimit::max(limit));
        }
        self.router = self.router.route(path, method_router);
        self.table.push(Route { method, path });
        self
    }

    /// These routes and `other`'s.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Route>) {
        (self.router, self.table)
    }
}
