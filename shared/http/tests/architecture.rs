//! Architecture checks over every workspace member's `src` tree (no dependencies, plain text):
//! no files of a crate import each other (directly or round a cycle), and no source file is
//! over 600 lines; each with an allow-list that may only shrink. `#[cfg(test)] mod` blocks
//! are left out of both.
//!
//! A reference (`use crate::a::B`, `crate::a::b()`, `super::`, `self::`, or a declared child
//! module's name) counts against the file that defines the item, following re-exports
//! (`pub use`, globs), so a `lib.rs` or `mod.rs` that only declares and re-exports is no party
//! to a cycle.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The most lines a source file may have outside its `#[cfg(test)] mod` blocks.
const MAX_LINES: usize = 600;

/// Files still over [`MAX_LINES`], relative to the workspace root. Remove a file once it is
/// split; never add one.
const OVER_LIMIT: &[&str] = &[];

/// Cycles still there (each group's files sorted). Remove a group once it is broken; never
/// add one.
const KNOWN_CYCLES: &[&[&str]] = &[];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `members` of the root `Cargo.toml`, a `dir/*` glob read as the folders below `dir` that
/// hold a `Cargo.toml`.
fn members(root: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let start = manifest.find("members = [").expect("workspace members");
    let list = &manifest[start..start + manifest[start..].find(']').unwrap()];
    let mut members = Vec::new();
    for entry in list.split('"').skip(1).step_by(2) {
        let Some(dir) = entry.strip_suffix("/*") else {
            members.push(entry.to_owned());
            continue;
        };
        let mut found: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .flatten()
            .filter(|e| e.path().join("Cargo.toml").exists())
            .map(|e| format!("{dir}/{}", e.file_name().to_string_lossy()))
            .collect();
        found.sort();
        members.extend(found);
    }
    assert!(members.len() > 20, "the workspace's crates: {members:?}");
    members
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source with comments and the contents of string and char literals blanked (newlines kept).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if !prev_ident && (c[i] == 'r' || (c[i] == 'b' && c.get(i + 1) == Some(&'r'))) && {
            let mut j = i + if c[i] == 'b' { 2 } else { 1 };
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            c.get(j) == Some(&'"')
        } {
            // Raw string: r"..", r#".."#, br#".."#.
            while c[i] != '"' {
                out.push(c[i]);
                i += 1;
            }
            let hashes = out.chars().rev().take_while(|&ch| ch == '#').count();
            out.push('"');
            i += 1;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|k| c.get(i + k) == Some(&'#')) {
                    out.push('"');
                    i += 1;
                    break;
                }
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if c[i] == '"'
            || (c[i] == '\'' && (c.get(i + 1) == Some(&'\\') || c.get(i + 2) == Some(&'\'')))
        {
            // A string or char literal (a quote not closed two on is a lifetime): its contents
            // blanked, escapes included.
            let quote = c[i];
            out.push(quote);
            i += 1;
            while i < c.len() && c[i] != quote {
                let n = if c[i] == '\\' { 2 } else { 1 };
                for _ in 0..n.min(c.len() - i) {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push(quote);
            i += 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Tokens with the line (0-based) each starts on.
fn tokenize(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let (mut out, mut line, mut i) = (Vec::new(), 0, 0);
    while i < c.len() {
        if c[i] == '\n' {
            line += 1;
            i += 1;
        } else if c[i].is_whitespace() {
            i += 1;
        } else if c[i].is_alphanumeric() || c[i] == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c[i]), line));
            i += 1;
        }
    }
    out
}

fn is(tok: Option<&(Tok, usize)>, word: &str) -> bool {
    matches!(tok, Some((Tok::Ident(w), _)) if w == word)
}

fn punct(tok: Option<&(Tok, usize)>, ch: char) -> bool {
    matches!(tok, Some((Tok::Punct(p), _)) if *p == ch)
}

fn ident(tok: Option<&(Tok, usize)>) -> Option<&str> {
    match tok {
        Some((Tok::Ident(w), _)) => Some(w),
        _ => None,
    }
}

/// The index just past the bracket closing the one at `open`.
fn close(toks: &[(Tok, usize)], open: usize) -> usize {
    let (o, c) = match toks[open].0 {
        Tok::Punct('[') => ('[', ']'),
        Tok::Punct('(') => ('(', ')'),
        _ => ('{', '}'),
    };
    let mut depth = 0;
    for (i, (tok, _)) in toks.iter().enumerate().skip(open) {
        match tok {
            Tok::Punct(p) if *p == o => depth += 1,
            Tok::Punct(p) if *p == c => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// A `mod NAME` item whose `mod` is at `i`: its name and the index of its `{` or `;`.
fn mod_item(toks: &[(Tok, usize)], i: usize) -> Option<(String, usize)> {
    if !is(toks.get(i), "mod") {
        return None;
    }
    Some((ident(toks.get(i + 1))?.to_owned(), i + 2))
}

/// One source file, read for the checks.
struct File {
    rel: String,
    /// Lines outside `#[cfg(test)] mod` blocks.
    lines: usize,
    /// Tokens outside `#[cfg(test)] mod` blocks, with their inline-module depth.
    toks: Vec<(Tok, usize)>,
    depth: Vec<usize>,
    /// Modules declared as files (`mod x;`), test-only ones left out.
    children: Vec<String>,
    test_children: Vec<String>,
}

fn read_file(root: &Path, path: &Path) -> File {
    let src = std::fs::read_to_string(path).unwrap();
    parse_file(path.strip_prefix(root).unwrap().display().to_string(), &src)
}

fn parse_file(rel: String, src: &str) -> File {
    let all = tokenize(&strip(src));
    let (mut toks, mut children, mut test_children) = (Vec::new(), Vec::new(), Vec::new());
    let mut test_lines = BTreeSet::new();
    let mut i = 0;
    while i < all.len() {
        let cfg_test = ["#", "[", "cfg", "(", "test", ")", "]"];
        let at = |k: usize| match &all.get(i + k).map(|t| &t.0) {
            Some(Tok::Ident(w)) => w.clone(),
            Some(Tok::Punct(p)) => p.to_string(),
            _ => String::new(),
        };
        if (0..cfg_test.len()).all(|k| at(k) == cfg_test[k]) {
            let mut j = i + cfg_test.len();
            while punct(all.get(j), '#') && punct(all.get(j + 1), '[') {
                j = close(&all, j + 1);
            }
            if is(all.get(j), "pub") {
                j += 1;
                if punct(all.get(j), '(') {
                    j = close(&all, j);
                }
            }
            if let Some((name, k)) = mod_item(&all, j) {
                if punct(all.get(k), '{') {
                    let end = close(&all, k);
                    test_lines.extend(all[i].1..=all[end - 1].1);
                    i = end;
                    continue;
                }
                test_children.push(name);
            }
        }
        if let Some((name, k)) = mod_item(&all, i) {
            if punct(all.get(k), ';') {
                children.push(name);
            }
        }
        toks.push(all[i].clone());
        i += 1;
    }
    children.retain(|c| !test_children.contains(c));
    // Inline-module depth of each token.
    let mut depth = vec![0; toks.len()];
    let mut i = 0;
    while i < toks.len() {
        if let Some((_, k)) = mod_item(&toks, i) {
            if punct(toks.get(k), '{') {
                let end = close(&toks, k);
                depth[k..end].iter_mut().for_each(|d| *d += 1);
            }
        }
        i += 1;
    }
    File {
        rel,
        lines: src.lines().count() - test_lines.len(),
        toks,
        depth,
        children,
        test_children,
    }
}

/// One use tree flattened: (path segments, bound name or `*`).
fn use_tree(toks: &[(Tok, usize)], prefix: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let mut path = prefix.to_vec();
    let mut i = 0;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Ident(w) if w == "as" => {
                let alias = ident(toks.get(i + 1)).unwrap_or("_").to_owned();
                out.push((path.clone(), alias));
                return;
            }
            Tok::Ident(w) if w == "self" && i == 0 && !prefix.is_empty() => {
                let name = path.last().unwrap().clone();
                if !is(toks.get(1), "as") {
                    out.push((path.clone(), name));
                    return;
                }
            }
            Tok::Ident(w) => path.push(w.clone()),
            Tok::PathSep => {}
            Tok::Punct('*') => {
                out.push((path.clone(), "*".into()));
                return;
            }
            Tok::Punct('{') => {
                let end = close(toks, i) - 1;
                let mut start = i + 1;
                let mut depth = 0;
                for k in i + 1..=end {
                    match toks[k].0 {
                        Tok::Punct('{') => depth += 1,
                        Tok::Punct('}') if depth > 0 => depth -= 1,
                        Tok::Punct(',') | Tok::Punct('}') if depth == 0 => {
                            if k > start {
                                use_tree(&toks[start..k], &path, out);
                            }
                            start = k + 1;
                        }
                        _ => {}
                    }
                }
                return;
            }
            _ => {}
        }
        i += 1;
    }
    if let Some(name) = path.last() {
        out.push((path.clone(), name.clone()));
    }
}

/// A crate: its files by module path, and what each file binds, defines and references.
struct Crate {
    files: BTreeMap<Vec<String>, File>,
    /// Per file: names bound by `use` (to absolute paths), glob imports, defined names.
    bindings: HashMap<Vec<String>, HashMap<String, Vec<String>>>,
    globs: HashMap<Vec<String>, Vec<Vec<String>>>,
    defines: HashMap<Vec<String>, HashSet<String>>,
    /// Per file: absolute paths it references.
    refs: HashMap<Vec<String>, Vec<Vec<String>>>,
}

fn module_path(src: &Path, path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(src).unwrap().with_extension("");
    let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into()).collect();
    if matches!(
        segs.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segs.pop();
    }
    segs
}

/// An in-crate path from `module` (at inline depth `depth`) to an absolute module path, or
/// `None` for an external crate, or a path into an inline module of the same file.
fn absolute(
    file_mod: &[String],
    file: &File,
    depth: usize,
    segs: &[String],
) -> Option<Vec<String>> {
    let first = segs.first()?.as_str();
    match first {
        "crate" => Some(segs[1..].to_vec()),
        "self" if depth == 0 => Some([file_mod, &segs[1..]].concat()),
        "super" => {
            let (mut module, mut inline, mut rest) = (file_mod.to_vec(), depth, segs);
            while rest.first().map(String::as_str) == Some("super") {
                if inline > 0 {
                    inline -= 1;
                } else {
                    module.pop();
                }
                rest = &rest[1..];
            }
            (inline == 0).then(|| [module.as_slice(), rest].concat())
        }
        name if depth == 0 && file.children.iter().any(|c| c == name) => {
            Some([file_mod, segs].concat())
        }
        _ => None,
    }
}

fn read_crate(root: &Path, member: &str) -> Option<Crate> {
    let src = root.join(member).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    if paths.is_empty() {
        return None;
    }
    let files = paths
        .iter()
        .map(|p| (module_path(&src, p), read_file(root, p)))
        .collect();
    Some(build_crate(files))
}

/// A crate of parsed files, keyed by module path.
fn build_crate(mut files: BTreeMap<Vec<String>, File>) -> Crate {
    // Files of test-only modules (`#[cfg(test)] mod x;`) are test code.
    let test_mods: Vec<Vec<String>> = files
        .iter()
        .flat_map(|(m, f)| {
            f.test_children
                .iter()
                .map(|c| [m.as_slice(), std::slice::from_ref(c)].concat())
        })
        .collect();
    files.retain(|m, _| !test_mods.iter().any(|t| m.starts_with(t)));
    let mut krate = Crate {
        bindings: HashMap::new(),
        globs: HashMap::new(),
        defines: HashMap::new(),
        refs: HashMap::new(),
        files,
    };
    for (module, file) in &krate.files {
        let toks = &file.toks;
        let (mut bindings, mut globs, mut defines, mut refs) =
            (HashMap::new(), Vec::new(), HashSet::new(), Vec::new());
        let mut i = 0;
        while i < toks.len() {
            let before = i.checked_sub(1).map(|k| &toks[k].0);
            let next = toks.get(i + 1);
            let word = ident(toks.get(i));
            if word == Some("use") && before != Some(&Tok::PathSep) && !punct(next, '<') {
                let end = (i..toks.len())
                    .find(|&k| punct(toks.get(k), ';'))
                    .unwrap_or(toks.len());
                let mut tree = Vec::new();
                use_tree(&toks[i + 1..end], &[], &mut tree);
                for (path, name) in tree {
                    let Some(abs) = absolute(module, file, file.depth[i], &path) else {
                        continue;
                    };
                    refs.push(abs.clone());
                    if file.depth[i] == 0 {
                        if name == "*" {
                            globs.push(abs);
                        } else {
                            bindings.insert(name, abs);
                        }
                    }
                }
                i = end;
                continue;
            }
            let defining = [
                "fn", "struct", "enum", "trait", "type", "const", "static", "mod", "union",
            ];
            if let (Some(w), Some(name)) = (word, ident(next)) {
                if defining.contains(&w) && before != Some(&Tok::Punct('\'')) {
                    defines.insert(name.to_owned());
                }
            }
            if word == Some("macro_rules") && punct(next, '!') {
                if let Some(name) = ident(toks.get(i + 2)) {
                    defines.insert(name.to_owned());
                }
            }
            let starts_path =
                before != Some(&Tok::PathSep) && next.map(|t| &t.0) == Some(&Tok::PathSep);
            if let (Some(word), true) = (word, starts_path) {
                let mut path = vec![word.to_owned()];
                let mut k = i + 1;
                while toks.get(k).map(|t| &t.0) == Some(&Tok::PathSep) {
                    let Some(seg) = ident(toks.get(k + 1)) else {
                        break;
                    };
                    path.push(seg.to_owned());
                    k += 2;
                }
                if let Some(abs) = absolute(module, file, file.depth[i], &path) {
                    refs.push(abs);
                }
                i = k;
                continue;
            }
            i += 1;
        }
        krate.bindings.insert(module.clone(), bindings);
        krate.globs.insert(module.clone(), globs);
        krate.defines.insert(module.clone(), defines);
        krate.refs.insert(module.clone(), refs);
    }
    krate
}

impl Crate {
    /// The module path of the file defining what `path` names (following re-exports), and
    /// whether that file is known to define it; `None` for an item of another crate.
    fn resolve(&self, path: &[String], hops: usize) -> Option<(Vec<String>, bool)> {
        let len = (0..=path.len())
            .rev()
            .find(|&n| self.files.contains_key(&path[..n]))?;
        let (module, rest) = (path[..len].to_vec(), &path[len..]);
        let Some(name) = rest.first() else {
            return Some((module, true));
        };
        if self.defines[&module].contains(name) || hops > 16 {
            return Some((module, true));
        }
        if let Some(target) = self.bindings[&module].get(name) {
            return self.resolve(&[target.as_slice(), &rest[1..]].concat(), hops + 1);
        }
        for glob in &self.globs[&module] {
            if let Some(found @ (_, true)) =
                self.resolve(&[glob.as_slice(), rest].concat(), hops + 1)
            {
                return Some(found);
            }
        }
        Some((module, false))
    }

    /// File-to-file edges: which files each file uses items of, each with the first path
    /// (from the crate root) that does.
    fn edges(&self) -> BTreeMap<&str, BTreeMap<&str, String>> {
        let mut edges: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
        for (module, file) in &self.files {
            for path in &self.refs[module] {
                if let Some((target, _)) = self.resolve(path, 0) {
                    if &target != module {
                        let to = self.files[&target].rel.as_str();
                        let why = format!("crate::{}", path.join("::"));
                        edges
                            .entry(file.rel.as_str())
                            .or_default()
                            .entry(to)
                            .or_insert(why);
                    }
                }
            }
        }
        edges
    }
}

/// The groups of files that import one another in a cycle (each sorted, with the edges
/// between them), per crate.
fn cycles(krate: &Crate) -> Vec<(Vec<&str>, Vec<String>)> {
    let edges = krate.edges();
    let reach = |from: &str| {
        let (mut seen, mut stack) = (BTreeSet::new(), vec![from]);
        while let Some(node) = stack.pop() {
            for to in edges.get(node).into_iter().flat_map(|m| m.keys()) {
                if seen.insert(*to) {
                    stack.push(to);
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&str, BTreeSet<&str>> = krate
        .files
        .values()
        .map(|f| (f.rel.as_str(), reach(&f.rel)))
        .collect();
    let mut groups: BTreeSet<Vec<&str>> = BTreeSet::new();
    for (node, seen) in &reached {
        if seen.contains(node) {
            let group = seen.iter().copied().filter(|m| reached[m].contains(node));
            groups.insert(group.collect());
        }
    }
    groups
        .into_iter()
        .map(|group| {
            let why = group
                .iter()
                .flat_map(|from| {
                    let tos = edges[from].iter().filter(|(to, _)| group.contains(to));
                    tos.map(move |(to, path)| format!("{from} -> {to} ({path})"))
                })
                .collect();
            (group, why)
        })
        .collect()
}

/// Files may not import each other, directly or round a longer cycle: what two files both
/// need goes into a third.
#[test]
fn no_files_import_each_other() {
    let root = workspace_root();
    let (mut found, mut seen) = (Vec::new(), Vec::new());
    for member in members(&root) {
        let Some(krate) = read_crate(&root, &member) else {
            continue;
        };
        for (group, why) in cycles(&krate) {
            let known = KNOWN_CYCLES.iter().any(|k| k.iter().eq(group.iter()));
            if known {
                seen.push(group.join(" "));
            } else {
                found.push(format!("{}\n    {}", group.join(", "), why.join("\n    ")));
            }
        }
    }
    assert!(
        found.is_empty(),
        "files that import each other (move what they share into a file of its own):\n  {}",
        found.join("\n  ")
    );
    let stale: Vec<_> = KNOWN_CYCLES
        .iter()
        .filter(|k| !seen.contains(&k.join(" ")))
        .collect();
    assert!(
        stale.is_empty(),
        "no longer a cycle: remove from KNOWN_CYCLES: {stale:?}"
    );
}

#[test]
fn no_source_file_is_over_the_line_limit() {
    let root = workspace_root();
    let (mut over, mut seen) = (Vec::new(), BTreeSet::new());
    for member in members(&root) {
        let mut paths = Vec::new();
        rust_files(&root.join(&member).join("src"), &mut paths);
        for path in paths {
            let file = read_file(&root, &path);
            if file.lines > MAX_LINES {
                seen.insert(file.rel.clone());
                if !OVER_LIMIT.contains(&file.rel.as_str()) {
                    over.push(format!("{} ({} lines)", file.rel, file.lines));
                }
            }
        }
    }
    assert!(
        over.is_empty(),
        "over {MAX_LINES} lines outside #[cfg(test)] mod blocks (split by concern):\n  {}",
        over.join("\n  ")
    );
    let stale: Vec<_> = OVER_LIMIT.iter().filter(|f| !seen.contains(**f)).collect();
    assert!(
        stale.is_empty(),
        "no longer over {MAX_LINES} lines: remove from OVER_LIMIT: {stale:?}"
    );
}

/// The scanner itself: comments and strings are not code; use trees are flattened.
#[test]
fn scanner_reads_what_it_should() {
    let text = strip("let s = \"crate::a::b\"; // crate::c\nlet r = r#\"x\"#; 'a'; &'static str");
    assert!(!text.contains("crate"));
    assert_eq!(text.lines().count(), 2);
    let mut tree = Vec::new();
    let toks = tokenize("crate::a::{self, b::C as D, e::*}");
    use_tree(&toks, &[], &mut tree);
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        tree,
        [
            (s(&["crate", "a"]), "a".to_owned()),
            (s(&["crate", "a", "b", "C"]), "D".to_owned()),
            (s(&["crate", "a", "e"]), "*".to_owned()),
        ]
    );
}

/// Cycles are found through re-exports and `super::`; a hub that only declares and re-exports
/// is in none, and test modules do not count.
#[test]
fn cycles_are_found_through_re_exports() {
    let krate = |sources: &[(&str, &str)]| {
        let files = sources
            .iter()
            .map(|(module, src)| {
                let path = module.split("::").filter(|s| !s.is_empty());
                let path: Vec<String> = path.map(str::to_owned).collect();
                (path, parse_file(format!("{module}.rs"), src))
            })
            .collect();
        build_crate(files)
    };
    let hub = ("", "mod a; mod b; pub use a::A; pub use b::B;");
    let cyclic = krate(&[
        hub,
        ("a", "pub struct A; fn f(_: crate::B) {}"),
        ("b", "use super::A; pub struct B(A);"),
    ]);
    let found = cycles(&cyclic);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, ["a.rs", "b.rs"]);
    let fine = krate(&[
        hub,
        (
            "a",
            "pub struct A; #[cfg(test)] mod tests { use crate::B; }",
        ),
        ("b", "use crate::A; pub struct B(A);"),
    ]);
    assert!(cycles(&fine).is_empty());
}
