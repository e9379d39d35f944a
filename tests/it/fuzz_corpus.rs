//! The fuzz corpus and every past crash, replayed on the stable toolchain: each file under
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the same
//! `hydrant::fuzzing` function its cargo-fuzz target calls. A target with no corpus fails the
//! test, so a renamed or dropped target cannot silently replay nothing.

use std::path::{Path, PathBuf};

use hydrant::fuzzing::TARGETS;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn replay(kind: &str, target: &str, run: fn(&[u8])) -> usize {
    let inputs = files(&root().join(kind).join(target));
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        let name = path.display().to_string();
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("fuzz input {name} fails {target}");
        }
    }
    inputs.len()
}

#[test]
fn corpus_replays_for_every_target() {
    for (target, run) in TARGETS {
        let n = replay("corpus", target, *run);
        assert!(n > 0, "fuzz/corpus/{target} is missing or empty");
    }
}

#[test]
fn past_crashes_stay_fixed() {
    let dir = root().join("regressions");
    // Every regression dir belongs to a live target (a renamed target keeps its crashes).
    for d in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = d.file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/regressions/{name} names no fuzz target"
        );
    }
    let total: usize = TARGETS
        .iter()
        .map(|(target, run)| replay("regressions", target, *run))
        .sum();
    assert!(total > 0, "no regression inputs under fuzz/regressions");
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    for (target, _) in TARGETS {
        assert!(
            root()
                .join("fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{target}.rs missing"
        );
        assert!(cargo.contains(&format!("name = \"{target}\"")), "{target}");
    }
}

/// Writes the `wire` seeds that are encoder output (run by hand when the layout changes).
#[test]
#[ignore]
fn write_wire_seeds() {
    let dir = root().join("corpus").join("wire");
    let now = hydrant::clock::now_unix() as u64;
    for (i, body) in [
        format!(
            r#"{{"fileId":"vg_file_alpha_0001","downloadSource":{{"status":"ready","url":"https://cdn.example/d?X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600","expiresAt":{}}},"previewSource":{{"status":"ready","url":"https:\/\/cdn.example\/p?a=1\u0026b=2","expiresAt":{}}},"hlsSource":{{"status":"pending"}},"thumbnailSource":{{"status":"failed"}}}}"#,
            now + 3600,
            now + 7200
        ),
        r#"{"message":"File not found","code":"not_found"}"#.to_string(),
        r#"{"fileId":"f","downloadSource":{"status":"ready","url":"javascript:alert(1)"}}"#
            .to_string(),
    ]
    .iter()
    .enumerate()
    {
        let seed = hydrant::fuzzing::wire_seed(body.as_bytes());
        std::fs::write(dir.join(format!("encoded-{i}")), seed).unwrap();
    }
}
