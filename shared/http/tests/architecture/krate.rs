//! A crate's files parsed: what each binds, defines and references, and the cycles among them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::lex::*;

pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
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

/// One source file, read for the checks.
pub(crate) struct File {
    pub(crate) rel: String,
    /// Lines outside `#[cfg(test)] mod` blocks.
    pub(crate) lines: usize,
    /// Tokens outside `#[cfg(test)] mod` blocks, with their inline-module depth.
    pub(crate) toks: Vec<(Tok, usize)>,
    pub(crate) depth: Vec<usize>,
    /// Modules declared as files (`mod x;`), test-only ones left out.
    pub(crate) children: Vec<String>,
    pub(crate) test_children: Vec<String>,
}

pub(crate) fn read_file(root: &Path, path: &Path) -> File {
    let src = std::fs::read_to_string(path).unwrap();
    parse_file(path.strip_prefix(root).unwrap().display().to_string(), &src)
}

pub(crate) fn parse_file(rel: String, src: &str) -> File {
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
pub(crate) fn use_tree(
    toks: &[(Tok, usize)],
    prefix: &[String],
    out: &mut Vec<(Vec<String>, String)>,
) {
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
pub(crate) struct Crate {
    pub(crate) files: BTreeMap<Vec<String>, File>,
    /// Per file: names bound by `use` (to absolute paths), glob imports, defined names.
    pub(crate) bindings: HashMap<Vec<String>, HashMap<String, Vec<String>>>,
    pub(crate) globs: HashMap<Vec<String>, Vec<Vec<String>>>,
    pub(crate) defines: HashMap<Vec<String>, HashSet<String>>,
    /// Per file: absolute paths it references.
    pub(crate) refs: HashMap<Vec<String>, Vec<Vec<String>>>,
}

pub(crate) fn module_path(src: &Path, path: &Path) -> Vec<String> {
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
pub(crate) fn absolute(
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

pub(crate) fn read_crate(root: &Path, member: &str) -> Option<Crate> {
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
pub(crate) fn build_crate(mut files: BTreeMap<Vec<String>, File>) -> Crate {
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
    pub(crate) fn resolve(&self, path: &[String], hops: usize) -> Option<(Vec<String>, bool)> {
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
    pub(crate) fn edges(&self) -> BTreeMap<&str, BTreeMap<&str, String>> {
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
pub(crate) fn cycles(krate: &Crate) -> Vec<(Vec<&str>, Vec<String>)> {
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
