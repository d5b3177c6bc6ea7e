//! Typed option values after evaluation.

use std::fmt;
use std::net::IpAddr;

use serde_json::json;

use crate::sorted::SortedMap;
use crate::units::{format_duration, format_size, signal_name};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// Bytes.
    Size(u64),
    /// `"max"`: no limit.
    Max,
    /// Nanoseconds.
    Duration(u64),
    /// Signal number.
    Signal(i32),
    Ip(IpAddr),
    Cidr(IpAddr, u8),
    List(Vec<Value>),
    Map(SortedMap<String, Value>),
    Record(SortedMap<&'static str, Value>),
}

impl Value {
    /// The canonical JSON form. Sizes are bytes, durations their canonical text
    /// (`1m30s`), signals their name, addresses their normalised text.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Bool(b) => json!(b),
            Value::Int(i) => json!(i),
            Value::Float(f) => json!(f),
            Value::Str(s) => json!(s),
            Value::Size(b) => json!(b),
            Value::Max => json!("max"),
            Value::Duration(ns) => json!(format_duration(*ns)),
            Value::Signal(n) => json!(signal_name(*n)),
            Value::Ip(ip) => json!(ip.to_string()),
            Value::Cidr(ip, len) => json!(format!("{ip}/{len}")),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::Record(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_list(&self) -> &[Value] {
        match self {
            Value::List(l) => l,
            _ => &[],
        }
    }
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Record(r) => r.get(name),
            Value::Map(m) => m.get(name),
            _ => None,
        }
    }
}

/// Human form, close to how it is written in KDL.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "#{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Size(b) => write!(f, "\"{}\"", format_size(*b)),
            Value::Max => write!(f, "\"max\""),
            Value::Duration(ns) => write!(f, "\"{}\"", format_duration(*ns)),
            Value::Signal(n) => write!(f, "\"{}\"", signal_name(*n)),
            Value::Ip(ip) => write!(f, "\"{ip}\""),
            Value::Cidr(ip, len) => write!(f, "\"{ip}/{len}\""),
            Value::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{v}")?;
                }
                Ok(())
            }
            Value::Map(m) => {
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                Ok(())
            }
            Value::Record(m) => {
                f.write_str("{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str("}")
            }
        }
    }
}
