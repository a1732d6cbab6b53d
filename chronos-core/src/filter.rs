//! The filter language: a typed AST parsed from Mongo-style JSON and its reference evaluator.
//!
//! Supported: implicit equality (`{"status": "active"}`), `$eq $ne $gt $gte $lt $lte $in $nin
//! $exists $regex` (+ `$options`), field-level `$not`, top-level `$and` / `$or`, and dotted
//! paths. Semantics follow MongoDB where it matters to users:
//! - a path walks objects; an array met on the way is walked element by element, and an array
//!   at the end matches if the array itself or any element matches;
//! - `$eq: null` matches a missing field; `$ne` and `$nin` are the negations of `$eq` and `$in`
//!   (so they match missing fields). Through arrays a field is missing as MongoDB reads it
//!   ([`resolve_traced`]): an object element without the key, or a scalar reached by key
//!   where the path goes on, is missing; a scalar or an array *inside* an array is not walked
//!   and counts as nothing, so `{"a.b": null}` matches `{"a": [{"b": 1}, {}]}` but neither
//!   `{"a": [1, 2]}` nor `{"a": []}`;
//! - comparisons (`$gt`…) only relate values of the same type class (numbers with numbers,
//!   strings with strings, booleans with booleans), and their operand must be a scalar;
//! - numbers compare by value (`1 == 1.0`); objects compare without regard to key order.
//!
//! [`Filter::matches`] is the reference semantics: every backend translation must agree with it
//! (a differential property test checks this). Unknown operators are a validation error naming
//! the operator and its path.

use std::cmp::Ordering;

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::json_type_name;

mod order;

pub use order::{canonical, canonical_cmp, canonical_text, json_eq, num_cmp};

/// A parsed filter.
#[derive(Debug, Clone)]
pub enum Filter {
    /// Matches everything (the empty filter `{}`).
    All,
    /// Every sub-filter matches.
    And(Vec<Filter>),
    /// At least one sub-filter matches.
    Or(Vec<Filter>),
    /// A condition on the values found at a dotted path.
    Field {
        /// Dotted path, e.g. `address.city`.
        path: String,
        /// The condition.
        cond: Cond,
    },
}

/// A condition on one path.
#[derive(Debug, Clone)]
pub enum Cond {
    /// Equal to (or, for arrays, containing) the value.
    Eq(Value),
    /// Not [`Cond::Eq`].
    Ne(Value),
    /// Compares greater than.
    Gt(Value),
    /// Compares greater than or equal.
    Gte(Value),
    /// Compares less than.
    Lt(Value),
    /// Compares less than or equal.
    Lte(Value),
    /// Equal to any of the values.
    In(Vec<Value>),
    /// Not [`Cond::In`].
    Nin(Vec<Value>),
    /// The path is present (even if null) / absent.
    Exists(bool),
    /// A string at the path matches the regular expression.
    Regex(Pattern),
    /// None of the conjunction matches.
    Not(Vec<Cond>),
}

/// A compiled `$regex` with its source and options kept for backend translation.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The pattern as given.
    pub source: String,
    /// The `$options` flags as given (subset of `imsx`).
    pub options: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles a pattern with MongoDB-style option letters.
    pub fn new(source: &str, options: &str, path: &str) -> Result<Self> {
        let mut b = regex::RegexBuilder::new(source);
        for c in options.chars() {
            match c {
                'i' => b.case_insensitive(true),
                'm' => b.multi_line(true),
                's' => b.dot_matches_new_line(true),
                'x' => b.ignore_whitespace(true),
                other => {
                    return Err(Error::validation(format!(
                        "unknown $options flag '{other}' (allowed: i, m, s, x)"
                    ))
                    .with("path", path))
                }
            };
        }
        let regex = b.size_limit(1 << 20).build().map_err(|e| {
            Error::validation(format!("invalid $regex '{source}': {e}")).with("path", path)
        })?;
        Ok(Pattern {
            source: source.to_string(),
            options: options.to_string(),
            regex,
        })
    }
    /// Whether `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

/// The most conditions a filter may hold, counting each value of `$in` / `$nin` as one: every
/// backend must run the query, and SQL backends bind a parameter or more per condition.
pub const MAX_FILTER_TERMS: usize = 4096;
/// The deepest nesting of `$and` / `$or` / `$not` a filter may have.
pub const MAX_FILTER_DEPTH: usize = 32;

impl Filter {
    /// Parses a Mongo-style JSON filter. `null` and `{}` match everything. Filters above
    /// [`MAX_FILTER_TERMS`] conditions or [`MAX_FILTER_DEPTH`] levels are validation errors
    /// naming the limit.
    pub fn parse(v: &Value) -> Result<Filter> {
        let f = Self::parse_at(v, 0)?;
        let terms = f.terms();
        if terms > MAX_FILTER_TERMS {
            return Err(Error::validation(format!(
                "filter has {terms} conditions (each $in/$nin value counts); the limit is \
                 {MAX_FILTER_TERMS}"
            ))
            .with("limit", MAX_FILTER_TERMS));
        }
        Ok(f)
    }

    /// How many conditions the filter holds (each `$in` / `$nin` value counts as one).
    pub fn terms(&self) -> usize {
        fn cond_terms(c: &Cond) -> usize {
            match c {
                Cond::In(xs) | Cond::Nin(xs) => xs.len().max(1),
                Cond::Not(cs) => cs.iter().map(cond_terms).sum(),
                _ => 1,
            }
        }
        match self {
            Filter::All => 0,
            Filter::And(fs) | Filter::Or(fs) => fs.iter().map(Filter::terms).sum(),
            Filter::Field { cond, .. } => cond_terms(cond),
        }
    }

    fn parse_at(v: &Value, depth: usize) -> Result<Filter> {
        if depth > MAX_FILTER_DEPTH {
            return Err(Error::validation(format!(
                "filter nests $and/$or deeper than the limit of {MAX_FILTER_DEPTH} levels"
            ))
            .with("limit", MAX_FILTER_DEPTH));
        }
        match v {
            Value::Null => Ok(Filter::All),
            Value::Object(m) => parse_doc(m, depth),
            other => Err(Error::validation(format!(
                "filter must be a JSON object, got {}",
                json_type_name(other)
            ))),
        }
    }

    /// Whether the filter matches the document (the reference semantics).
    pub fn matches(&self, doc: &Map<String, Value>) -> bool {
        match self {
            Filter::All => true,
            Filter::And(fs) => fs.iter().all(|f| f.matches(doc)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(doc)),
            Filter::Field { path, cond } => {
                let (found, missing) = resolve_traced(doc, path);
                cond_matches(cond, &found, missing)
            }
        }
    }

    /// Every dotted path the filter mentions, in order of appearance (with repeats removed).
    pub fn paths(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Filter::All => {}
            Filter::And(fs) | Filter::Or(fs) => fs.iter().for_each(|f| f.collect_paths(out)),
            Filter::Field { path, .. } => {
                if !out.contains(&path.as_str()) {
                    out.push(path);
                }
            }
        }
    }
}

fn parse_doc(m: &Map<String, Value>, depth: usize) -> Result<Filter> {
    let mut parts = Vec::with_capacity(m.len());
    for (k, v) in m {
        if let Some(op) = k.strip_prefix('$') {
            match op {
                "and" | "or" => {
                    let arr = v.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                        Error::validation(format!("${op} needs a non-empty array of filters"))
                    })?;
                    let subs = arr
                        .iter()
                        .map(|f| Filter::parse_at(f, depth + 1))
                        .collect::<Result<Vec<_>>>()?;
                    parts.push(if op == "and" {
                        Filter::And(subs)
                    } else {
                        Filter::Or(subs)
                    });
                }
                _ => {
                    return Err(Error::validation(format!(
                        "unknown top-level filter operator '{k}' (allowed: $and, $or; \
                         field operators go inside a field: {{\"field\": {{\"$not\": …}}}})"
                    ))
                    .with("operator", k))
                }
            }
        } else {
            check_path(k)?;
            for cond in parse_conds(k, v, depth)? {
                parts.push(Filter::Field {
                    path: k.clone(),
                    cond,
                });
            }
        }
    }
    Ok(match parts.len() {
        0 => Filter::All,
        1 => parts.pop().expect("one part"),
        _ => Filter::And(parts),
    })
}

/// Checks a dotted path: non-empty segments, none starting with `$`, no `"` anywhere.
pub fn check_path(path: &str) -> Result<()> {
    if path.is_empty()
        || path.len() > 512
        || path.contains('"')
        || path.chars().any(char::is_control)
        || path.split('.').any(|s| s.is_empty() || s.starts_with('$'))
    {
        // Debug formatting: a control character in the path is shown escaped.
        return Err(Error::validation(format!(
            "invalid field path {path:?}: at most 512 bytes of non-empty segments, none starting \
             with '$', without '\"' or control characters"
        ))
        .with("path", path.escape_debug()));
    }
    // MongoDB reads `arr.0` as "element 0 of an array, or key '0' of an object"; SQLite and
    // the reference only as the key. Rather than differ, no backend accepts a numeric
    // segment (a path through an array matches any of its elements already).
    if let Some(seg) = path
        .split('.')
        .find(|s| s.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Error::validation(format!(
            "invalid field path {path:?}: segment '{seg}' is a number; array positions are not \
             addressable (a path through an array matches any element)"
        ))
        .with("path", path));
    }
    Ok(())
}

/// Parses the value of a field entry: an operator object or a literal for equality.
fn parse_conds(path: &str, v: &Value, depth: usize) -> Result<Vec<Cond>> {
    if depth > MAX_FILTER_DEPTH {
        return Err(Error::validation(format!(
            "filter on '{path}' nests $not deeper than the limit of {MAX_FILTER_DEPTH} levels"
        ))
        .with("path", path)
        .with("limit", MAX_FILTER_DEPTH));
    }
    let Value::Object(ops) = v else {
        return Ok(vec![Cond::Eq(v.clone())]);
    };
    let has_op = ops.keys().any(|k| k.starts_with('$'));
    if !has_op {
        return Ok(vec![Cond::Eq(v.clone())]);
    }
    if ops.keys().any(|k| !k.starts_with('$')) {
        return Err(Error::validation(format!(
            "filter on '{path}' mixes operators and plain fields; use either {{\"$op\": …}} or a literal object"
        ))
        .with("path", path));
    }
    let mut conds = Vec::with_capacity(ops.len());
    for (op, arg) in ops {
        let cond = match op.as_str() {
            "$eq" => Cond::Eq(arg.clone()),
            "$ne" => Cond::Ne(arg.clone()),
            "$gt" => Cond::Gt(scalar(path, op, arg)?),
            "$gte" => Cond::Gte(scalar(path, op, arg)?),
            "$lt" => Cond::Lt(scalar(path, op, arg)?),
            "$lte" => Cond::Lte(scalar(path, op, arg)?),
            "$in" => Cond::In(array(path, op, arg)?),
            "$nin" => Cond::Nin(array(path, op, arg)?),
            "$exists" => Cond::Exists(match arg {
                Value::Bool(b) => *b,
                Value::Number(n) if n.as_f64() == Some(0.0) => false,
                Value::Number(n) if n.as_f64() == Some(1.0) => true,
                _ => {
                    return Err(Error::validation(format!(
                        "$exists on '{path}' needs true or false, got {}",
                        json_type_name(arg)
                    ))
                    .with("path", path))
                }
            }),
            "$regex" => {
                let src = arg.as_str().ok_or_else(|| {
                    Error::validation(format!("$regex on '{path}' needs a string pattern"))
                        .with("path", path)
                })?;
                let options = match ops.get("$options") {
                    None => "",
                    Some(Value::String(s)) => s.as_str(),
                    Some(_) => {
                        return Err(Error::validation(format!(
                            "$options on '{path}' must be a string"
                        ))
                        .with("path", path))
                    }
                };
                Cond::Regex(Pattern::new(src, options, path)?)
            }
            "$options" => {
                if !ops.contains_key("$regex") {
                    return Err(Error::validation(format!(
                        "$options on '{path}' needs $regex beside it"
                    ))
                    .with("path", path));
                }
                continue;
            }
            "$not" => {
                let inner = match arg {
                    Value::Object(m) if !m.is_empty() && m.keys().all(|k| k.starts_with('$')) => {
                        parse_conds(path, arg, depth + 1)?
                    }
                    _ => {
                        return Err(Error::validation(format!(
                            "$not on '{path}' needs an operator object like {{\"$gt\": 5}}"
                        ))
                        .with("path", path))
                    }
                };
                Cond::Not(inner)
            }
            other => {
                return Err(Error::validation(format!(
                    "unknown filter operator '{other}' on '{path}' (allowed: $eq $ne $gt $gte $lt \
                     $lte $in $nin $exists $regex $options $not)"
                ))
                .with("path", path)
                .with("operator", other))
            }
        };
        conds.push(cond);
    }
    Ok(conds)
}

fn scalar(path: &str, op: &str, v: &Value) -> Result<Value> {
    match v {
        Value::Array(_) | Value::Object(_) => Err(Error::validation(format!(
            "{op} on '{path}' needs a number, string, boolean or null, got {}",
            json_type_name(v)
        ))
        .with("path", path)),
        _ => Ok(v.clone()),
    }
}

fn array(path: &str, op: &str, v: &Value) -> Result<Vec<Value>> {
    v.as_array().cloned().ok_or_else(|| {
        Error::validation(format!(
            "{op} on '{path}' needs an array, got {}",
            json_type_name(v)
        ))
        .with("path", path)
    })
}

/// Every value found at a dotted path (MongoDB array traversal at intermediate steps).
pub fn resolve<'a>(doc: &'a Map<String, Value>, path: &str) -> Vec<&'a Value> {
    resolve_traced(doc, path).0
}

/// [`resolve`], and whether some branch of the walk found the path *missing* — what `null`
/// matches. MongoDB's traversal: a key absent from an object (the document, a value reached
/// by key, or an object element of an array) is missing, and so is a scalar (or `null`)
/// reached by key where the path goes on; an array reached by key is walked through its
/// object elements, and its other elements (scalars, nested arrays) yield nothing at all.
pub fn resolve_traced<'a>(doc: &'a Map<String, Value>, path: &str) -> (Vec<&'a Value>, bool) {
    fn step<'a>(v: &'a Value, rest: &[&str], found: &mut Vec<&'a Value>, missing: &mut bool) {
        let Some((seg, tail)) = rest.split_first() else {
            found.push(v);
            return;
        };
        match v {
            Value::Object(m) => match m.get(*seg) {
                Some(next) => step(next, tail, found, missing),
                None => *missing = true,
            },
            Value::Array(items) => items
                .iter()
                .filter(|it| it.is_object())
                .for_each(|it| step(it, rest, found, missing)),
            _ => *missing = true,
        }
    }
    let segs: Vec<&str> = path.split('.').collect();
    let (mut found, mut missing) = (Vec::new(), false);
    match doc.get(segs[0]) {
        Some(v) => step(v, &segs[1..], &mut found, &mut missing),
        None => missing = true,
    }
    (found, missing)
}

/// The first value at a dotted path walking objects only (used for sort keys).
pub fn get_path<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segs = path.split('.');
    let mut v = doc.get(segs.next()?)?;
    for seg in segs {
        v = v.as_object()?.get(seg)?;
    }
    Some(v)
}

/// Whether `cond` holds for the values `found` at its path, `missing` saying whether some
/// branch of the walk found the path missing ([`resolve_traced`]).
fn cond_matches(cond: &Cond, found: &[&Value], missing: bool) -> bool {
    match cond {
        Cond::Eq(x) => eq_matches(x, found, missing),
        Cond::Ne(x) => !eq_matches(x, found, missing),
        Cond::In(xs) => xs.iter().any(|x| eq_matches(x, found, missing)),
        Cond::Nin(xs) => !xs.iter().any(|x| eq_matches(x, found, missing)),
        Cond::Exists(want) => found.is_empty() != *want,
        Cond::Gt(x) => cmp_matches(x, found, missing, |o| o == Ordering::Greater),
        Cond::Gte(x) => cmp_matches(x, found, missing, |o| o != Ordering::Less),
        Cond::Lt(x) => cmp_matches(x, found, missing, |o| o == Ordering::Less),
        Cond::Lte(x) => cmp_matches(x, found, missing, |o| o != Ordering::Greater),
        Cond::Regex(p) => leaves(found).any(|v| v.as_str().is_some_and(|s| p.is_match(s))),
        Cond::Not(cs) => !cs.iter().all(|c| cond_matches(c, found, missing)),
    }
}

/// The candidate values: each found value, and the elements of each found array.
fn leaves<'a>(found: &'a [&'a Value]) -> impl Iterator<Item = &'a Value> + 'a {
    found.iter().flat_map(|v| {
        let elems: &'a [Value] = match v {
            Value::Array(a) => a.as_slice(),
            _ => &[],
        };
        std::iter::once(*v).chain(elems.iter())
    })
}

fn eq_matches(x: &Value, found: &[&Value], missing: bool) -> bool {
    if x.is_null() && missing {
        return true;
    }
    leaves(found).any(|v| json_eq(v, x))
}

fn cmp_matches(
    x: &Value,
    found: &[&Value],
    missing: bool,
    pred: impl Fn(Ordering) -> bool,
) -> bool {
    if x.is_null() {
        // Only `$gte`/`$lte: null` match, on null or missing values (MongoDB behaviour).
        let hit = missing || leaves(found).any(Value::is_null);
        return hit && pred(Ordering::Equal);
    }
    leaves(found).any(|v| same_class_cmp(v, x).is_some_and(&pred))
}

fn same_class_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(num_cmp(x, y)),
        (Value::String(x), Value::String(y)) => Some(x.as_str().cmp(y.as_str())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
