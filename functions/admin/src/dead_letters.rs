//! The dead letters: queue messages Hookline could not process, newest first.

use crate::problems::cursor_problem;
use crate::query::Query;
use crate::{Admin, HttpResult};
use hookline::api;
use hookline::ports::DeadLetterStore;
use lambda_http::Request;
use serde_json::json;

impl<S: DeadLetterStore, Q, H, P, C> Admin<S, Q, H, P, C> {
    pub(crate) async fn dead_letters(&self, req: &Request) -> HttpResult {
        let mut q = Query::new(req.uri());
        let limit = q.limit();
        let cursor = q.take("cursor");
        q.finish()?;
        let page = self
            .store
            .list_dead_letters(limit, cursor.as_deref())
            .await
            .map_err(|e| cursor_problem(e, &cursor))?;
        Ok(api::json(
            200,
            &json!({"data": page.items, "next_cursor": page.next_cursor}),
        ))
    }
}
