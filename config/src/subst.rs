//! `{param}` references inside module bodies.
//!
//! A string that is exactly `"{port}"` becomes the argument's value with its type (an
//! integer stays an integer); `{param}` inside a longer string is interpolated as text.
//! Only `{` followed by a parameter-like name and `}` is a reference, so shell snippets
//! such as `"{ echo; }"` pass through; `{{` writes a literal `{`.

/// One piece of a string with references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Param(&'a str),
}

/// Splits `s` into text and references. Returns `None` when `s` has no reference and no
/// `{{` escape, the common case, so callers can keep the string as it is.
pub fn pieces(s: &str) -> Option<Vec<Piece<'_>>> {
    if !s.contains('{') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let mut changed = false;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            if bytes.get(i + 1) == Some(&b'{') {
                out.push(Piece::Text(&s[text_start..=i]));
                i += 2;
                text_start = i;
                changed = true;
                continue;
            }
            if let Some(len) = reference_len(&bytes[i + 1..]) {
                if text_start < i {
                    out.push(Piece::Text(&s[text_start..i]));
                }
                out.push(Piece::Param(&s[i + 1..i + 1 + len]));
                i += len + 2;
                text_start = i;
                changed = true;
                continue;
            }
        }
        i += 1;
    }
    if !changed {
        return None;
    }
    if text_start < s.len() {
        out.push(Piece::Text(&s[text_start..]));
    }
    Some(out)
}

/// Length of `name` when `rest` starts with `name}` and name is a parameter name.
fn reference_len(rest: &[u8]) -> Option<usize> {
    let first = *rest.first()?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let len = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-')
        .count();
    (rest.get(len) == Some(&b'}')).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::Piece::*;
    use super::*;

    #[test]
    fn splits_references() {
        assert_eq!(pieces("plain"), None);
        assert_eq!(pieces("{ echo; }"), None);
        assert_eq!(pieces("{port}"), Some(vec![Param("port")]));
        assert_eq!(
            pieces("web-{name}.log"),
            Some(vec![Text("web-"), Param("name"), Text(".log")])
        );
        assert_eq!(pieces("{{name}"), Some(vec![Text("{"), Text("name}")]));
        assert_eq!(pieces("{a}{b}"), Some(vec![Param("a"), Param("b")]));
        assert_eq!(pieces("{9x}"), None);
    }
}
