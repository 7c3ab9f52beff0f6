//! Output of the listing commands: aligned columns under a header, or JSON (`--json`).

/// Rows as aligned columns (two spaces apart) under a header; the last column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up_under_the_header() {
        let t = super::table(
            &["ID", "NAME", "NOTE"],
            &[
                vec!["1".into(), "a-long-name".into(), "x".into()],
                vec!["22".into(), "b".into(), "".into()],
            ],
        );
        assert_eq!(t, "ID  NAME         NOTE\n1   a-long-name  x\n22  b\n");
    }
}
