//! Type checking of single definitions against their shape and type.

use crate::sorted::SortedMap;

use berth_config::kdl::Value as Kv;
use berth_config::{Arg, OptionDef};

use crate::schema::{Dflt, Field, READY_KINDS, READY_PROPS, Shape, Ty};
use crate::units::{self, Invalid, invalid};
use crate::value::Value;

/// A problem with one definition: where (an argument, or the option's name when no
/// argument is to blame) and what.
#[derive(Debug)]
pub struct Problem<'d> {
    pub arg: Option<&'d Arg>,
    pub invalid: Invalid,
}

fn at(arg: &Arg, inv: Invalid) -> Problem<'_> {
    Problem {
        arg: Some(arg),
        invalid: inv,
    }
}
fn whole<'d>(label: impl Into<String>, help: impl Into<String>) -> Problem<'d> {
    Problem {
        arg: None,
        invalid: invalid(label, help),
    }
}

/// One definition, typed. Maps keep each key's own priority for merging.
#[derive(Debug)]
pub enum Typed {
    One(Value),
    Many(Vec<Value>),
    Keys(Vec<(String, Value, berth_config::Priority)>),
}

/// Checks one definition against its shape. `name` is the option's last path segment,
/// for messages.
pub fn check_def<'d>(
    shape: Shape,
    name: &str,
    def: &'d OptionDef,
) -> Result<Typed, Vec<Problem<'d>>> {
    let no_props = |def: &'d OptionDef| -> Result<(), Vec<Problem<'d>>> {
        match def.props.first() {
            Some((k, _, a)) => Err(vec![at(
                a,
                invalid(
                    format!("`{name}` takes no property `{k}`"),
                    format!("write `{name} VALUE`"),
                ),
            )]),
            None => Ok(()),
        }
    };
    match shape {
        Shape::Scalar(ty) => {
            no_props(def)?;
            match def.args.as_slice() {
                [a] => check(ty, a).map(Typed::One).map_err(|e| vec![at(a, e)]),
                [] => Err(vec![whole(
                    format!("`{name}` needs a value"),
                    format!("write `{name} VALUE` ({})", ty.describe()),
                )]),
                [_, extra, ..] => Err(vec![at(
                    extra,
                    invalid(
                        "one value expected",
                        format!("`{name}` takes one value ({})", ty.describe()),
                    ),
                )]),
            }
        }
        Shape::Argv => {
            no_props(def)?;
            if def.args.is_empty() {
                return Err(vec![whole(
                    format!("`{name}` needs a command"),
                    format!("write `{name} \"/path/to/program\" \"arg\" …`"),
                )]);
            }
            let argv = all(&def.args, Ty::Str)?;
            if argv
                .first()
                .and_then(Value::as_str)
                .is_some_and(str::is_empty)
            {
                return Err(vec![at(
                    &def.args[0],
                    invalid(
                        "empty program name",
                        "the first argument is the program to run",
                    ),
                )]);
            }
            Ok(Typed::One(Value::List(argv)))
        }
        Shape::List(ty) => {
            no_props(def)?;
            if def.args.is_empty() {
                return Err(vec![whole(
                    format!("`{name}` needs at least one value"),
                    format!("write `{name} VALUE …` ({})", ty.describe()),
                )]);
            }
            all(&def.args, ty).map(Typed::Many)
        }
        Shape::Map(ty) => {
            if let Some(a) = def.args.first() {
                return Err(vec![at(
                    a,
                    invalid(
                        "expected KEY=VALUE",
                        format!("write `{name} KEY=\"value\"`"),
                    ),
                )]);
            }
            if def.props.is_empty() {
                return Err(vec![whole(
                    format!("`{name}` needs KEY=VALUE properties"),
                    format!("write `{name} KEY=\"value\"`"),
                )]);
            }
            let mut out = Vec::new();
            let mut errs = Vec::new();
            for (k, _, a) in &def.props {
                match check(ty, a) {
                    Ok(v) => out.push((k.clone(), v, a.priority)),
                    Err(e) => errs.push(at(a, e)),
                }
            }
            if errs.is_empty() {
                Ok(Typed::Keys(out))
            } else {
                Err(errs)
            }
        }
        Shape::Records(fields) => record(name, fields, &def.args, def).map(Typed::One),
        Shape::Ready => ready(def).map(Typed::One),
    }
}

fn all<'d>(args: &'d [Arg], ty: Ty) -> Result<Vec<Value>, Vec<Problem<'d>>> {
    let mut out = Vec::with_capacity(args.len());
    let mut errs = Vec::new();
    for a in args {
        match check(ty, a) {
            Ok(v) => out.push(v),
            Err(e) => errs.push(at(a, e)),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// Positional fields from `args`, the rest from properties, defaults filled in.
fn record<'d>(
    name: &str,
    fields: &'static [Field],
    args: &'d [Arg],
    def: &'d OptionDef,
) -> Result<Value, Vec<Problem<'d>>> {
    let usage = || {
        let mut u = name.to_string();
        for f in fields {
            match (f.positional, f.required) {
                (true, true) => u.push_str(&format!(" {}", f.name.to_uppercase())),
                (true, false) => u.push_str(&format!(" [{}]", f.name.to_uppercase())),
                (false, _) => u.push_str(&format!(" [{}=…]", f.name)),
            }
        }
        format!("write `{u}`")
    };
    let mut out = SortedMap::with_capacity(fields.len());
    let mut errs = Vec::new();
    let positional = || fields.iter().filter(|f| f.positional);
    if let Some(extra) = args.get(positional().count()) {
        errs.push(at(extra, invalid("too many values", usage())));
    }
    for (i, f) in positional().enumerate() {
        match args.get(i) {
            Some(a) => match check(f.ty, a) {
                Ok(v) => {
                    out.insert(f.name, v);
                }
                Err(e) => errs.push(at(a, e)),
            },
            None if f.required => {
                errs.push(whole(format!("`{name}` needs its {}", f.name), usage()))
            }
            None => {}
        }
    }
    for (k, _, a) in &def.props {
        match fields.iter().find(|f| !f.positional && f.name == k) {
            Some(f) => match check(f.ty, a) {
                Ok(v) => {
                    out.insert(f.name, v);
                }
                Err(e) => errs.push(at(a, e)),
            },
            None => {
                let props: Vec<&str> = fields
                    .iter()
                    .filter(|f| !f.positional)
                    .map(|f| f.name)
                    .collect();
                let help = match berth_config::diag::did_you_mean(k, props.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if props.is_empty() => {
                        format!("`{name}` takes no properties; {}", usage())
                    }
                    None => format!("`{name}` takes {}", props.join(", ")),
                };
                errs.push(at(a, invalid(format!("unknown property `{k}`"), help)));
            }
        }
    }
    for f in fields {
        if !out.contains_key(f.name)
            && let Some(d) = f.default
            && let Some(v) = default_value(f.ty, d)
        {
            out.insert(f.name, v);
        }
    }
    if errs.is_empty() {
        Ok(Value::Record(out))
    } else {
        Err(errs)
    }
}

fn ready(def: &OptionDef) -> Result<Value, Vec<Problem<'_>>> {
    let help =
        "write `ready \"notify\"`, `ready \"tcp\" PORT` or `ready \"exec\" \"CMD\" \"ARG\" …`";
    let Some(first) = def.args.first() else {
        return Err(vec![whole("`ready` needs a kind", help)]);
    };
    let kind = check(Ty::Enum(READY_KINDS), first).map_err(|e| vec![at(first, e)])?;
    let mut out = SortedMap::with_capacity(2 + READY_PROPS.len());
    let rest = &def.args[1..];
    match kind.as_str() {
        Some("notify") => {
            if let Some(a) = rest.first() {
                return Err(vec![at(
                    a,
                    invalid("`ready \"notify\"` takes no more values", help),
                )]);
            }
        }
        Some("tcp") => match rest {
            [p] => {
                out.insert("port", check(Ty::Port, p).map_err(|e| vec![at(p, e)])?);
            }
            [] => {
                return Err(vec![at(
                    first,
                    invalid("which port?", "write `ready \"tcp\" PORT`"),
                )]);
            }
            [_, extra, ..] => {
                return Err(vec![at(
                    extra,
                    invalid("one port expected", "write `ready \"tcp\" PORT`"),
                )]);
            }
        },
        _ => {
            if rest.is_empty() {
                return Err(vec![at(
                    first,
                    invalid("which command?", "write `ready \"exec\" \"CMD\" \"ARG\" …`"),
                )]);
            }
            out.insert("command", Value::List(all(rest, Ty::Str)?));
        }
    }
    out.insert("kind", kind);
    let Value::Record(mut props) = record("ready", READY_PROPS, &[], def)? else {
        return Ok(Value::Record(out));
    };
    out.append(&mut props);
    Ok(Value::Record(out))
}

/// The value of a default, typed. `None` for derived defaults, which the evaluator
/// computes.
pub fn default_value(ty: Ty, d: Dflt) -> Option<Value> {
    let value = match d {
        Dflt::Str(s) => Kv::String(s.to_string()),
        Dflt::Int(i) => Kv::Integer(i128::from(i)),
        Dflt::Float(f) => Kv::Float(f),
        Dflt::Bool(b) => Kv::Bool(b),
        Dflt::Derived(_) => return None,
    };
    let arg = Arg {
        value,
        file: berth_config::FileId(0),
        span: Default::default(),
        priority: berth_config::Priority::Default,
    };
    check(ty, &arg).ok()
}

/// The text of a string value; numbers are accepted as their text where text is wanted.
fn text(v: &Kv) -> Option<String> {
    match v {
        Kv::String(s) => Some(s.clone()),
        Kv::Integer(i) => Some(i.to_string()),
        Kv::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

fn type_name(v: &Kv) -> &'static str {
    match v {
        Kv::String(_) => "a string",
        Kv::Integer(_) => "an integer",
        Kv::Float(_) => "a number",
        Kv::Bool(_) => "a boolean",
        Kv::Null => "#null",
    }
}

fn expected(ty: Ty, got: &Kv) -> Invalid {
    let mut help = format!("expected {}", ty.describe());
    if let Kv::String(s) = got
        && matches!(s.as_str(), "true" | "false")
        && ty == Ty::Bool
    {
        help = format!("KDL v2 writes booleans as #{s}");
    }
    invalid(format!("{} is not {}", type_name(got), ty.describe()), help)
}

fn int(v: &Kv) -> Option<i128> {
    match v {
        Kv::Integer(i) => Some(*i),
        Kv::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn float(v: &Kv) -> Option<f64> {
    match v {
        Kv::Integer(i) => Some(*i as f64),
        Kv::Float(f) => Some(*f),
        Kv::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// Checks one value against a type.
pub fn check(ty: Ty, arg: &Arg) -> Result<Value, Invalid> {
    let v = &arg.value;
    let string = || match v {
        Kv::String(s) => Ok(s.as_str()),
        other => Err(expected(ty, other)),
    };
    match ty {
        Ty::Bool => match v {
            Kv::Bool(b) => Ok(Value::Bool(*b)),
            other => Err(expected(ty, other)),
        },
        Ty::Str => text(v).map(Value::Str).ok_or_else(|| expected(ty, v)),
        Ty::Int { min, max } => match int(v) {
            Some(i) if i >= i128::from(min) && i <= i128::from(max) => Ok(Value::Int(i as i64)),
            Some(_) => Err(invalid(
                "out of range",
                format!("expected an integer from {min} to {max}"),
            )),
            None => Err(expected(ty, v)),
        },
        Ty::IntOrMax { min, max } => match v {
            Kv::String(s) if s == "max" => Ok(Value::Max),
            _ => check(Ty::Int { min, max }, arg)
                .map_err(|e| invalid(e.label, format!("{} or \"max\"", e.help))),
        },
        Ty::Float { min, max } => match float(v) {
            Some(f) if f >= min && f <= max => Ok(Value::Float(f)),
            Some(_) => Err(invalid(
                "out of range",
                format!("expected a number from {min} to {max}"),
            )),
            None => Err(expected(ty, v)),
        },
        Ty::Size => match v {
            Kv::Integer(i) if *i >= 0 && *i <= i128::from(i64::MAX) => Ok(Value::Size(*i as u64)),
            Kv::String(s) => units::size(s).map(Value::Size),
            other => Err(expected(ty, other)),
        },
        Ty::SizeOrMax => match v {
            Kv::String(s) if s == "max" => Ok(Value::Max),
            _ => check(Ty::Size, arg),
        },
        Ty::Duration => match v {
            Kv::String(s) => units::duration(s).map(Value::Duration),
            Kv::Integer(_) | Kv::Float(_) => Err(invalid(
                "a duration needs a unit",
                "write e.g. \"30s\", \"100ms\", \"5m\"",
            )),
            other => Err(expected(ty, other)),
        },
        Ty::Cpus => match v {
            Kv::String(s) if s == "max" => Ok(Value::Max),
            _ => match float(v) {
                Some(f) if f > 0.0 && f <= 4096.0 => Ok(Value::Float(f)),
                Some(_) => Err(invalid(
                    "out of range",
                    "a number of CPUs above 0, such as 0.5 or 2",
                )),
                None => Err(expected(ty, v)),
            },
        },
        Ty::Signal => match v {
            Kv::Integer(i) => i32::try_from(*i)
                .ok()
                .and_then(units::signal_number)
                .map(Value::Signal)
                .ok_or_else(|| invalid("no such signal number", "signals are 1-31 and 34-64")),
            Kv::String(s) => units::signal(s).map(Value::Signal),
            other => Err(expected(ty, other)),
        },
        Ty::Port => match int(v) {
            Some(p) if (1..=65535).contains(&p) => Ok(Value::Int(p as i64)),
            Some(_) => Err(invalid("not a port", "ports are 1 to 65535")),
            None => Err(expected(ty, v)),
        },
        Ty::Ip => units::ip(string()?).map(Value::Ip),
        Ty::Cidr4 | Ty::Cidr6 => {
            let (ip, len) = units::cidr(string()?)?;
            match (ty, ip.is_ipv4()) {
                (Ty::Cidr4, false) => Err(invalid(
                    "an IPv6 network",
                    "`subnet` is the IPv4 subnet; put IPv6 in `subnet6`",
                )),
                (Ty::Cidr6, true) => Err(invalid(
                    "an IPv4 network",
                    "`subnet6` is the IPv6 subnet; put IPv4 in `subnet`",
                )),
                _ => Ok(Value::Cidr(ip, len)),
            }
        }
        Ty::CpuSet => units::cpuset(&text(v).ok_or_else(|| expected(ty, v))?).map(Value::Str),
        Ty::AbsPath => {
            let s = string()?;
            if !s.starts_with('/') || s.contains('\0') {
                Err(invalid(
                    "not an absolute path",
                    "write a path starting with `/`",
                ))
            } else {
                Ok(Value::Str(s.to_string()))
            }
        }
        Ty::Hostname => units::hostname(&text(v).ok_or_else(|| expected(ty, v))?).map(Value::Str),
        Ty::IfName => units::ifname(string()?).map(Value::Str),
        Ty::Name => match string()? {
            "" => Err(invalid("empty name", "write the name of a node")),
            s => Ok(Value::Str(s.to_string())),
        },
        Ty::Id => match v {
            Kv::Integer(i) if (0..=i128::from(u32::MAX - 1)).contains(i) => {
                Ok(Value::Int(*i as i64))
            }
            Kv::String(s) if s.parse::<u32>().is_ok() => {
                Ok(Value::Int(i64::from(s.parse::<u32>().unwrap_or(0))))
            }
            Kv::String(s)
                if !s.is_empty()
                    && s.len() <= 32
                    && s.bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                    && s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    }) =>
            {
                Ok(Value::Str(s.clone()))
            }
            _ => Err(invalid(
                "not a user or group",
                "write a number (1000) or a name (postgres)",
            )),
        },
        Ty::Owner => {
            let text = text(v).ok_or_else(|| expected(ty, v))?;
            let (user, group) = text
                .split_once(':')
                .map_or((text.as_str(), None), |(u, g)| (u, Some(g)));
            let part = |p: &str| {
                check(
                    Ty::Id,
                    &Arg {
                        value: Kv::String(p.to_string()),
                        ..arg.clone()
                    },
                )
                .is_ok()
            };
            if part(user) && group.is_none_or(part) {
                Ok(Value::Str(text.clone()))
            } else {
                Err(invalid(
                    "not an owner",
                    "write a uid or user name, optionally with `:gid` or `:group`, e.g. \"999:999\" or \"postgres\"",
                ))
            }
        }
        Ty::Mode => {
            let m = match v {
                Kv::Integer(i) => Some(*i),
                Kv::String(s) => i128::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
                _ => None,
            };
            match m {
                Some(m) if (0..=0o7777).contains(&m) => Ok(Value::Str(format!("{m:04o}"))),
                _ => Err(invalid(
                    "not a file mode",
                    "write an octal mode such as \"0755\" or 0o755",
                )),
            }
        }
        Ty::Capability => {
            let s = string()?.to_ascii_uppercase();
            let bare = s.strip_prefix("CAP_").unwrap_or(&s);
            if bare == "ALL" {
                Ok(Value::Str("ALL".into()))
            } else if units::CAPABILITIES.contains(&bare) {
                Ok(Value::Str(format!("CAP_{bare}")))
            } else {
                let help = match berth_config::diag::did_you_mean(
                    bare,
                    units::CAPABILITIES.iter().copied(),
                ) {
                    Some(c) => format!("did you mean CAP_{c}?"),
                    None => "write a capability such as CAP_NET_ADMIN (see capabilities(7))".into(),
                };
                Err(invalid("unknown capability", help))
            }
        }
        Ty::Enum(values) => {
            let s = string()?;
            if values.contains(&s) {
                Ok(Value::Str(s.to_string()))
            } else {
                let help = match berth_config::diag::did_you_mean(s, values.iter().copied()) {
                    Some(c) => format!("did you mean \"{c}\"?"),
                    None => format!("expected {}", ty.describe()),
                };
                Err(invalid(format!("unknown value \"{s}\""), help))
            }
        }
    }
}
