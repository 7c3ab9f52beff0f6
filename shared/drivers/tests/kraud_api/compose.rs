//! Reading a launch request: its multipart/form-data fields, the compose file's `.env`
//! interpolation, and the few YAML lines the server looks at.

use std::collections::HashMap;

/// Splits a multipart/form-data body into (field name, content) pairs.
pub(super) fn multipart_fields(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .ok_or("multipart body without boundary")?;
    if !content_type.trim_start().starts_with("multipart/form-data") {
        return Err(format!("expected multipart/form-data, got {content_type}"));
    }
    let body = String::from_utf8(body.to_vec()).map_err(|_| "body is not UTF-8")?;
    let delimiter = format!("--{boundary}");
    let mut fields = Vec::new();
    let mut parts = body.split(&delimiter);
    parts.next(); // preamble
    let mut closed = false;
    for part in parts {
        if part.starts_with("--") {
            closed = true;
            break;
        }
        let part = part.strip_prefix("\r\n").ok_or("part without CRLF")?;
        let (head, content) = part.split_once("\r\n\r\n").ok_or("part without headers")?;
        let content = content
            .strip_suffix("\r\n")
            .ok_or("part without final CRLF")?;
        let disposition = head
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or("part without Content-Disposition")?;
        let name = disposition
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_string())
            .ok_or("part without name")?;
        fields.push((name, content.to_string()));
    }
    if !closed {
        return Err("multipart body without closing delimiter".into());
    }
    Ok(fields)
}

/// Compose-style interpolation: `${VAR}` from the .env, `$$` is a literal `$`.
pub(super) fn interpolate(text: &str, env: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r.find('}').ok_or("unterminated ${")?;
            let var = &r[..end];
            let value = env
                .get(var)
                .ok_or_else(|| format!("variable {var} is not set"))?;
            out.push_str(value);
            rest = &r[end + 1..];
        } else {
            return Err(format!(
                "bare $ in template near '{}'",
                &after[..after.len().min(20)]
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.starts_with('"') {
        serde_json::from_str::<String>(v).unwrap_or_else(|_| v.to_string())
    } else {
        v.trim_matches('\'').to_string()
    }
}

/// The items of the block list under the first `key:` line (e.g. `labels:`).
pub(super) fn list_under(yaml: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim() == format!("{key}:")) else {
        return Vec::new();
    };
    let indent = lines[start].len() - lines[start].trim_start().len();
    let mut items = Vec::new();
    for line in &lines[start + 1..] {
        let this = line.len() - line.trim_start().len();
        let t = line.trim();
        if this <= indent && !t.is_empty() {
            break;
        }
        if let Some(item) = t.strip_prefix("- ") {
            items.push(unquote(item));
        }
    }
    items
}

/// The value of the first `key: value` line.
pub(super) fn value_of(yaml: &str, key: &str) -> Option<String> {
    yaml.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&format!("{key}:"))
            .map(unquote)
            .filter(|v| !v.is_empty())
    })
}
