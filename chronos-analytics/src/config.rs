//! The `counterRules` section (top level, and `analytics.counterRules`): strict serde types
//! and their validation, errors naming the JSON path.

use std::collections::HashSet;

use chronos_core::{Error, Filter, Result};
use serde::Deserialize;
use serde_json::Value;

/// `counterRules`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CounterRulesConfig {
    /// The rules.
    #[serde(default)]
    pub rules: Vec<CounterRule>,
}

/// One counter rule: which writes it counts, and which properties' distinct values.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CounterRule {
    /// Rule name (a key under `rules.` in the totals).
    pub name: String,
    /// Which operations count (default: all). Enrichments and restores are updates.
    #[serde(default)]
    pub on: Vec<RuleOp>,
    /// What `when` and `countUnique` see: indexed metadata (default) or the whole payload.
    #[serde(default)]
    pub scope: Option<RuleScope>,
    /// A filter in the filter language (`{amount: {$gte: 100}}`).
    pub when: Value,
    /// Properties (dotted paths) whose distinct values are counted.
    #[serde(default)]
    pub count_unique: Vec<String>,
}

/// Operations a rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RuleOp {
    /// Creates.
    Create,
    /// Updates (also enrichments and restores).
    Update,
    /// Deletes.
    Delete,
}

/// What a rule's filter sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleScope {
    /// Indexed metadata.
    Meta,
    /// The whole payload.
    Payload,
}

fn at(path: String, msg: impl std::fmt::Display) -> Error {
    Error::invalid_config(format!("{path}: {msg}"))
}

/// Checks rules found at `path` (`counterRules.rules`, `analytics.counterRules`): unique
/// non-empty names, `when` in the filter language, `countUnique` valid paths.
pub fn validate_rules(path: &str, rules: &[CounterRule]) -> Result<()> {
    let mut names = HashSet::new();
    for (i, r) in rules.iter().enumerate() {
        if r.name.trim().is_empty() || !names.insert(&r.name) {
            return Err(at(
                format!("{path}[{i}].name"),
                format!("'{}' is empty or used twice", r.name),
            ));
        }
        if r.name.contains(['.', '$', '|']) {
            return Err(at(
                format!("{path}[{i}].name"),
                format!("'{}' may not contain '.', '$' or '|'", r.name),
            ));
        }
        Filter::parse(&r.when).map_err(|e| at(format!("{path}[{i}].when"), e.message()))?;
        for (j, p) in r.count_unique.iter().enumerate() {
            chronos_core::filter::check_path(p)
                .map_err(|e| at(format!("{path}[{i}].countUnique[{j}]"), e.message()))?;
            if p.is_empty() || p.contains(['$', '|']) {
                return Err(at(
                    format!("{path}[{i}].countUnique[{j}]"),
                    format!("'{p}' is not a property path"),
                ));
            }
        }
    }
    Ok(())
}

impl CounterRulesConfig {
    /// `counterRules`: see [`validate_rules`].
    pub fn validate(&self) -> Result<()> {
        validate_rules("counterRules.rules", &self.rules)
    }
}
