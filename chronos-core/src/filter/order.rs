//! How values compare: numbers by value (exactly, integers against floats too), JSON
//! equality regardless of key order, the canonical form of stored metadata, and the one
//! total order every backend sorts by ([`canonical_cmp`]).

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Compares two JSON numbers by value, exactly for integers.
pub fn num_cmp(a: &Number, b: &Number) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    // An integer against a float compares exactly, as SQLite and MongoDB do: converting the
    // integer to a float would make 2^53 + 1 equal to 2^53.
    match (a.as_i64(), b.as_i64()) {
        (Some(x), None) => return int_float_cmp(x, b.as_f64().unwrap_or(f64::NAN)),
        (None, Some(y)) => return int_float_cmp(y, a.as_f64().unwrap_or(f64::NAN)).reverse(),
        _ => {}
    }
    let (x, y) = (
        a.as_f64().unwrap_or(f64::NAN),
        b.as_f64().unwrap_or(f64::NAN),
    );
    x.partial_cmp(&y).unwrap_or(Ordering::Equal)
}

/// `i` against `f`, exactly.
fn int_float_cmp(i: i64, f: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return Ordering::Equal;
    }
    if f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    // |f| < 2^63: its integral part fits an i64 exactly.
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - t)).unwrap_or(Ordering::Equal),
        o => o,
    }
}

/// JSON equality with numbers by value and objects regardless of key order.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn type_rank(v: Option<&Value>) -> u8 {
    match v {
        None | Some(Value::Null) => 0,
        Some(Value::Number(_)) => 1,
        Some(Value::String(_)) => 2,
        Some(Value::Object(_)) => 3,
        Some(Value::Array(_)) => 4,
        Some(Value::Bool(_)) => 5,
    }
}

/// The total order used for sorting: missing/null < numbers < strings < objects < arrays <
/// booleans (MongoDB's type order), then by value. Every backend sorts by this order.
pub fn canonical_cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let (ra, rb) = (type_rank(a), type_rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => num_cmp(x, y),
        (Some(Value::String(x)), Some(Value::String(y))) => x.as_str().cmp(y.as_str()),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        // Containers order by their canonical JSON text: cheap, total, and reproducible in SQL.
        (Some(x @ (Value::Array(_) | Value::Object(_))), Some(y)) => {
            canonical_text(x).cmp(&canonical_text(y))
        }
        _ => Ordering::Equal,
    }
}

/// The canonical form of a JSON value: object keys sorted, integral floats within ±2^53 as
/// integers. Indexed metadata is stored canonical so that every backend can compare
/// containers by their text and numbers by value.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), canonical(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 {
                Value::from(f as i64)
            } else {
                v.clone()
            }
        }
        // Beyond i64 no backend stores integers (SQLite and MongoDB have 64-bit signed ones):
        // such a number is stored, and compared, as the nearest double everywhere.
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_some() => {
            serde_json::Number::from_f64(n.as_f64().unwrap_or(f64::MAX))
                .map_or_else(|| v.clone(), Value::Number)
        }
        _ => v.clone(),
    }
}

/// The compact JSON text of [`canonical`].
pub fn canonical_text(v: &Value) -> String {
    canonical(v).to_string()
}
