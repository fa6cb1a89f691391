//! A query string read parameter by parameter; unknown and bad ones are all reported.

use crate::{DEFAULT_PAGE, MAX_PAGE};
use hookline::api;
use hookline::problem::{FieldProblem, Problem};

pub(crate) struct Query {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldProblem>,
}

impl Query {
    pub(crate) fn new(uri: &http::Uri) -> Self {
        Self {
            pairs: api::query(uri),
            errors: Vec::new(),
        }
    }

    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == name)?;
        Some(self.pairs.remove(i).1)
    }

    pub(crate) fn parse<T>(&mut self, name: &str, f: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let raw = self.take(name)?;
        f(&raw)
            .map_err(|e| self.errors.push(FieldProblem::new(format!("?{name}"), e)))
            .ok()
    }

    pub(crate) fn limit(&mut self) -> u32 {
        self.parse("limit", |s| match s.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(format!("must be a whole number from 1 to {MAX_PAGE}")),
        })
        .unwrap_or(DEFAULT_PAGE)
    }

    pub(crate) fn finish(mut self) -> Result<(), Problem> {
        for (k, _) in std::mem::take(&mut self.pairs) {
            self.errors
                .push(FieldProblem::new(format!("?{k}"), "unknown query parameter"));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Problem::validation("the query is not valid", self.errors))
        }
    }
}
