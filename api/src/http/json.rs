//! JSON request bodies as the OpenAPI document declares them. JSON has one
//! number type, and JSON Schema calls a number with a zero fraction an
//! integer (`71.0`, `7.1e1`): such numbers are rewritten as plain integers
//! before decoding, so that every integer field (a seq, an account id, a
//! decimal's whole units) takes them. Nothing else in the text changes,
//! so the decoders' own checks (unknown and duplicate fields, positions in
//! messages) still apply.

use std::borrow::Cow;

use axum::body::Bytes;

use super::AppError;

/// The body as UTF-8 JSON text with integral numbers written as integers.
pub(super) fn json_text(b: &Bytes) -> Result<Cow<'_, str>, AppError> {
    let text = std::str::from_utf8(b).map_err(|e| AppError::bad_request(format!("the body is not UTF-8 ({e})")))?;
    Ok(integral_numbers(text))
}

/// `text` with every number outside strings that has a fraction or an
/// exponent but an integral value written as an integer (`71.0` → `71`,
/// `-2.5e1` → `-25`); other numbers, strings and everything else as they are.
fn integral_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let (mut i, mut copied, mut in_string) = (0, 0, false);
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let end = i + bytes[i..]
                .iter()
                .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .count();
            if let Some(int) = as_integer(&text[i..end]) {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..i]);
                o.push_str(&int);
                copied = end;
            }
            i = end;
            continue;
        }
        i += 1;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// The integer a JSON number token with a fraction or an exponent denotes,
/// if it is integral (and has at most 40 digits); `None` for plain
/// integers, fractions and anything that is not a number.
fn as_integer(token: &str) -> Option<String> {
    let (neg, body) = token.strip_prefix('-').map_or((false, token), |b| (true, b));
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], body[at + 1..].parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int, frac, dot) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, frac, true),
        None => (mantissa, "", false),
    };
    // JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; other tokens stay as they are
    let json_int = !int.is_empty() && (int == "0" || !int.starts_with('0'));
    if !json_int || (dot && frac.is_empty()) || (!dot && body.len() == mantissa.len()) {
        return None;
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let digits = format!("{int}{frac}");
    let scale = exp.checked_sub(frac.len() as i32)?;
    let value = if digits.bytes().all(|b| b == b'0') {
        "0".to_string()
    } else if scale < 0 {
        return None;
    } else {
        let trimmed = digits.trim_start_matches('0');
        if trimmed.len() + scale as usize > 40 {
            return None;
        }
        format!("{trimmed}{}", "0".repeat(scale as usize))
    };
    Some(if neg && value != "0" { format!("-{value}") } else { value })
}

#[cfg(test)]
mod tests {
    use super::integral_numbers;

    #[test]
    fn integral_numbers_become_integers_and_nothing_else_changes() {
        let cases = [
            (
                r#"{"seq": 71.0, "a": [1.50, -2.5e1, 3e0, 0.0, -0.0e3, 1E+2]}"#,
                r#"{"seq": 71, "a": [1.50, -25, 3, 0, 0, 100]}"#,
            ),
            (r#"{"s": "71.0", "t": "a\"71.0", "u": 7}"#, r#"{"s": "71.0", "t": "a\"71.0", "u": 7}"#),
            ("[1.5e-1, 12.34e1, 1e400, 00.0, 1., 1e, -]", "[1.5e-1, 12.34e1, 1e400, 00.0, 1., 1e, -]"),
        ];
        for (input, expected) in cases {
            assert_eq!(integral_numbers(input), expected, "{input}");
        }
        assert!(matches!(integral_numbers(r#"{"x": 1}"#), std::borrow::Cow::Borrowed(_)));
    }
}
