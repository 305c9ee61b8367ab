//! No module cycle in any crate of the workspace: a module may use its children, its siblings
//! and its ancestors' items, but no chain of uses may lead back to where it started.
//!
//! Each crate's `src/**.rs` is read, and every path a module names (`crate::a::b`, `super::c`,
//! `self::d`, a child's name, and the groups of a `use` tree) is mapped to the module that holds
//! it (the deepest module the path walks through). Strongly-connected components of more than
//! one module are cycles, listed with the modules in them. The check reads text: it needs no
//! tool beyond the compiler, and it runs with the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A module: its path from the crate root (`[]` is the root).
type ModPath = Vec<String>;

/// One token of Rust source, as far as paths are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Semi,
    Other,
}

/// Splits source into identifiers, `::`, braces, commas and semicolons; comments, strings,
/// characters and everything else are skipped (other punctuation becomes [`Token::Other`]).
fn tokens(source: &str) -> Vec<Token> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < bytes.len() {
                    if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => i = skip_string(bytes, i + 1),
            b'r' if raw_string_start(bytes, i).is_some() => {
                let (hashes, start) = raw_string_start(bytes, i).unwrap_or((0, i + 1));
                i = skip_raw_string(bytes, start, hashes);
            }
            b'b' if bytes.get(i + 1) == Some(&b'"') => i = skip_string(bytes, i + 2),
            b'b' if bytes.get(i + 1) == Some(&b'r') && raw_string_start(bytes, i + 1).is_some() => {
                let (hashes, start) = raw_string_start(bytes, i + 1).unwrap_or((0, i + 2));
                i = skip_raw_string(bytes, start, hashes);
            }
            b'\'' => {
                // A character literal ('x', '\n', '{') or a lifetime ('a): a lifetime has no
                // closing quote right after its name.
                if bytes.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else if bytes.get(i + 2) == Some(&b'\'') {
                    i += 3;
                } else if let Some(len) = multibyte_char_literal(source, i) {
                    i += len;
                } else {
                    i += 1;
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_')
                    {
                        i += 1;
                    }
                }
            }
            b':' if bytes.get(i + 1) == Some(&b':') => {
                out.push(Token::PathSep);
                i += 2;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push(Token::Ident(source[start..i].to_owned()));
            }
            c if c.is_ascii_whitespace() => i += 1,
            c if c.is_ascii_digit() => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            // One character of its own: the punctuation the checks read, or anything else.
            c => {
                out.push(match c {
                    b'{' => Token::Open,
                    b'}' => Token::Close,
                    b',' => Token::Comma,
                    b';' => Token::Semi,
                    _ => Token::Other,
                });
                i += 1;
            }
        }
    }
    out
}

/// The length of a character literal holding one multi-byte character (`'é'`) at `i`.
fn multibyte_char_literal(source: &str, i: usize) -> Option<usize> {
    let ch = source.get(i + 1..)?.chars().next()?;
    let len = ch.len_utf8();
    (len > 1 && source.as_bytes().get(i + 1 + len) == Some(&b'\'')).then_some(len + 2)
}

/// Skips a string's body from `i` (just after its opening quote); the index after its end.
fn skip_string(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// At `i`, `r"`, `r#"`, `r##"`...: the number of hashes and the index of the body.
fn raw_string_start(bytes: &[u8], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        return None;
    }
    let mut j = i + 1;
    while bytes.get(j) == Some(&b'#') {
        j += 1;
    }
    (bytes.get(j) == Some(&b'"')).then_some((j - i - 1, j + 1))
}

fn skip_raw_string(bytes: &[u8], mut i: usize, hashes: usize) -> usize {
    while i < bytes.len() {
        if bytes[i] == b'"'
            && bytes[i + 1..].iter().take(hashes).filter(|b| **b == b'#').count() == hashes
        {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// The modules of one crate, and the uses between them.
#[derive(Debug, Default)]
struct Crate {
    /// Every module, file or inline.
    modules: BTreeSet<ModPath>,
    /// Who uses whom.
    edges: BTreeMap<ModPath, BTreeSet<ModPath>>,
}

/// A file module's source and its path.
struct FileModule {
    path: ModPath,
    source: String,
}

/// The file modules under `src`, by path: `lib.rs`/`main.rs` is the root, `a/b.rs` and
/// `a/b/mod.rs` are `a::b`. Binaries other than the library's root are crates of their own,
/// skipped here (`main.rs` beside `lib.rs`, `bin/`).
fn file_modules(src: &Path) -> Vec<FileModule> {
    let mut files = Vec::new();
    collect(src, &mut files);
    let has_lib = src.join("lib.rs").exists();
    files
        .into_iter()
        .filter_map(|file| {
            let relative = file.strip_prefix(src).ok()?;
            let mut parts: Vec<String> = relative
                .iter()
                .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_owned())
                .collect();
            if parts.first().is_some_and(|first| first == "bin") {
                return None;
            }
            if parts == ["main"] && has_lib {
                return None;
            }
            if parts == ["lib"] || parts == ["main"] {
                parts.clear();
            } else if parts.last().is_some_and(|last| last == "mod") {
                parts.pop();
            }
            let source = fs::read_to_string(&file).ok()?;
            Some(FileModule { path: parts, source })
        })
        .collect()
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// Where each token of a file belongs: the inline modules (`mod name { ... }`) it is inside.
fn token_modules(file: &FileModule, tokens: &[Token]) -> (Vec<ModPath>, BTreeSet<ModPath>) {
    let mut owner = Vec::with_capacity(tokens.len());
    let mut inline = BTreeSet::new();
    // The current module, and the brace depth at which each inline module opened.
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let current: ModPath =
            file.path.iter().cloned().chain(stack.iter().map(|(name, _)| name.clone())).collect();
        owner.push(current.clone());
        match &tokens[i] {
            Token::Ident(word) if word == "mod" => {
                if let (Some(Token::Ident(name)), Some(Token::Open)) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    let mut path = current.clone();
                    path.push(name.clone());
                    inline.insert(path);
                    owner.push(current.clone());
                    owner.push(current);
                    depth += 1;
                    stack.push((name.clone(), depth));
                    i += 3;
                    continue;
                }
            }
            Token::Open => depth += 1,
            Token::Close => {
                if stack.last().is_some_and(|(_, opened)| *opened == depth) {
                    stack.pop();
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        i += 1;
    }
    (owner, inline)
}

/// The children of each module: `mod name;` in its file, and inline modules.
fn children(modules: &BTreeSet<ModPath>) -> BTreeMap<ModPath, BTreeSet<String>> {
    let mut children: BTreeMap<ModPath, BTreeSet<String>> = BTreeMap::new();
    for module in modules {
        if let Some((last, parent)) = module.split_last() {
            children.entry(parent.to_vec()).or_default().insert(last.clone());
        }
    }
    children
}

/// The deepest known module a path (starting from `base`) walks through.
fn resolve(modules: &BTreeSet<ModPath>, base: &ModPath, rest: &[String]) -> ModPath {
    let mut module = base.clone();
    for segment in rest {
        let mut next = module.clone();
        next.push(segment.clone());
        if modules.contains(&next) {
            module = next;
        } else {
            break;
        }
    }
    module
}

/// Every path named at `tokens[start..]` that begins with `crate`, `super` or `self` (or a
/// child of `current`), expanded through `use` groups: the segments after its anchor, and the
/// anchor module.
fn paths_at(
    tokens: &[Token],
    start: usize,
    current: &ModPath,
    children_of: &BTreeMap<ModPath, BTreeSet<String>>,
) -> Option<(ModPath, Vec<Vec<String>>)> {
    let Token::Ident(first) = &tokens[start] else { return None };
    // A path continues only after `::`.
    if !matches!(tokens.get(start + 1), Some(Token::PathSep)) {
        return None;
    }
    let (mut anchor, mut i) = match first.as_str() {
        "crate" => (Vec::new(), start + 2),
        "self" => (current.clone(), start + 2),
        "super" => {
            let mut anchor = current.clone();
            anchor.pop();
            let mut i = start + 2;
            // `super::super::...`
            while let (Some(Token::Ident(word)), Some(Token::PathSep)) =
                (tokens.get(i), tokens.get(i + 1))
            {
                if word != "super" {
                    break;
                }
                anchor.pop();
                i += 2;
            }
            (anchor, i)
        }
        name if children_of.get(current).is_some_and(|children| children.contains(name)) => {
            (current.clone(), start)
        }
        _ => return None,
    };
    if anchor.len() > current.len() {
        anchor.truncate(current.len());
    }
    let mut prefix = Vec::new();
    loop {
        match (tokens.get(i), tokens.get(i + 1)) {
            (Some(Token::Ident(segment)), Some(Token::PathSep)) => {
                prefix.push(segment.clone());
                i += 2;
            }
            (Some(Token::Ident(segment)), _) => {
                prefix.push(segment.clone());
                return Some((anchor, vec![prefix]));
            }
            (Some(Token::Open), _) => {
                let mut paths = Vec::new();
                group(tokens, i, &prefix, &mut paths);
                if paths.is_empty() {
                    paths.push(prefix);
                }
                return Some((anchor, paths));
            }
            _ => return Some((anchor, vec![prefix])),
        }
    }
}

/// The paths of a `use` group opening at `tokens[open]`, each prefixed with `prefix`.
fn group(tokens: &[Token], open: usize, prefix: &[String], paths: &mut Vec<Vec<String>>) -> usize {
    let mut i = open + 1;
    let mut current = prefix.to_vec();
    while i < tokens.len() {
        match &tokens[i] {
            Token::Ident(segment) => {
                if segment != "self" {
                    current.push(segment.clone());
                }
                i += 1;
            }
            Token::Open => {
                i = group(tokens, i, &current, paths);
            }
            Token::Comma => {
                paths.push(std::mem::replace(&mut current, prefix.to_vec()));
                i += 1;
            }
            Token::Close => {
                paths.push(current);
                return i + 1;
            }
            Token::PathSep | Token::Semi | Token::Other => i += 1,
        }
    }
    i
}

/// The modules and uses of the crate whose sources are under `src`.
fn read_crate(src: &Path) -> Crate {
    let files = file_modules(src);
    let mut krate = Crate::default();
    let mut tokenized = Vec::new();
    for file in &files {
        krate.modules.insert(file.path.clone());
        let tokens = tokens(&file.source);
        let (owner, inline) = token_modules(file, &tokens);
        krate.modules.extend(inline);
        tokenized.push((tokens, owner));
    }
    let children_of = children(&krate.modules);
    for (tokens, owner) in &tokenized {
        let mut i = 0;
        while i < tokens.len() {
            let previous_is_path = i > 0 && matches!(tokens[i - 1], Token::PathSep);
            if !previous_is_path
                && let Some((anchor, paths)) = paths_at(tokens, i, &owner[i], &children_of)
            {
                for path in paths {
                    let target = resolve(&krate.modules, &anchor, &path);
                    if target != owner[i] {
                        krate.edges.entry(owner[i].clone()).or_default().insert(target);
                    }
                }
            }
            i += 1;
        }
    }
    krate
}

/// The strongly-connected components of more than one module (Tarjan's algorithm).
fn cycles(krate: &Crate) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        krate: &'a Crate,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        on_stack: BTreeSet<&'a ModPath>,
        stack: Vec<&'a ModPath>,
        next: usize,
        found: Vec<Vec<ModPath>>,
    }
    fn visit<'a>(state: &mut State<'a>, module: &'a ModPath) {
        state.index.insert(module, state.next);
        state.low.insert(module, state.next);
        state.next += 1;
        state.stack.push(module);
        state.on_stack.insert(module);
        let krate = state.krate;
        for target in krate.edges.get(module).into_iter().flatten() {
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[target].min(state.low[module]);
                state.low.insert(module, low);
            } else if state.on_stack.contains(target) {
                let low = state.index[target].min(state.low[module]);
                state.low.insert(module, low);
            }
        }
        if state.low[module] == state.index[module] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                component.push(top.clone());
                if top == module {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        krate,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for module in &krate.modules {
        if !state.index.contains_key(module) {
            visit(&mut state, module);
        }
    }
    state.found
}

fn name(module: &ModPath) -> String {
    if module.is_empty() { "crate".to_owned() } else { format!("crate::{}", module.join("::")) }
}

/// Every crate's sources: the root package's and each of `crates/*`.
fn crate_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = vec![root.join("src")];
    let mut members: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .expect("the workspace's crates")
        .flatten()
        .map(|entry| entry.path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    members.sort();
    sources.extend(members);
    sources
}

#[test]
fn no_crate_has_a_module_cycle() {
    let mut report = Vec::new();
    for src in crate_sources() {
        let krate = read_crate(&src);
        for cycle in cycles(&krate) {
            let modules: Vec<String> = cycle.iter().map(name).collect();
            report.push(format!("{}: {}", src.display(), modules.join(", ")));
        }
    }
    assert!(report.is_empty(), "module cycles:\n{}", report.join("\n"));
}

/// The check sees what it must: a cycle through `super::`, `crate::` and a `use` group, and
/// not a test module's use of its parent.
#[test]
fn the_check_finds_a_cycle_and_only_a_cycle() {
    let dir = std::env::temp_dir().join(format!("module-cycles-{}", std::process::id()));
    let src = dir.join("src");
    fs::create_dir_all(src.join("a")).unwrap();
    fs::write(src.join("lib.rs"), "mod a;\nmod c;\npub use a::Thing;\n").unwrap();
    fs::write(src.join("a/mod.rs"), "mod b;\npub struct Thing;\nuse b::Other;\n").unwrap();
    fs::write(
        src.join("a/b.rs"),
        "pub struct Other;\nuse crate::{c::{self, See}};\n#[cfg(test)]\nmod tests { use super::*; }\n",
    )
    .unwrap();
    fs::write(src.join("c.rs"), "pub struct See;\nfn f() -> super::a::Thing { todo!(\"}\") }\n")
        .unwrap();
    let found = cycles(&read_crate(&src));
    fs::remove_dir_all(&dir).unwrap();
    let names: Vec<Vec<String>> =
        found.iter().map(|cycle| cycle.iter().map(name).collect()).collect();
    assert_eq!(names, vec![vec!["crate::a", "crate::a::b", "crate::c"]], "{found:?}");
}
