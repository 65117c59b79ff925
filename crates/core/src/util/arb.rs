//! Property-test strategies shared by the core's tests: arbitrary JSON, and JSON
//! objects shaped like what a reader expects (known keys, values of any type).

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON value, nested a few levels, with strings that include non-ASCII text.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-zé😀 _./-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{0,8}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON object whose keys come from `keys` (plus a stray one), each with any value.
pub fn object_with(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(keys).prop_map(str::to_string),
        "[a-z]{1,6}"
    ];
    prop::collection::vec((key, json()), 0..keys.len() + 2)
        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>()))
}
