//! `embed_migrations!` reads the migration folders at compile time; without `rerun-if-changed`,
//! adding a migration would not rebuild the crate and the new migration would silently be
//! missing. The hash of the migrations names the test template database, so tests never run
//! against a template migrated by an older schema.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

fn hash_dir(dir: &Path, hasher: &mut DefaultHasher) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|entry| entry.path()).collect();
    paths.sort();
    for path in paths {
        path.file_name().hash(hasher);
        if path.is_dir() {
            hash_dir(&path, hasher);
        } else if let Ok(contents) = std::fs::read(&path) {
            contents.hash(hasher);
        }
    }
}

fn main() {
    let migrations = Path::new("../../migrations");
    println!("cargo:rerun-if-changed={}", migrations.display());
    let mut hasher = DefaultHasher::new();
    hash_dir(migrations, &mut hasher);
    println!("cargo:rustc-env=INVITE_MIGRATIONS_HASH={:016x}", hasher.finish());
}
