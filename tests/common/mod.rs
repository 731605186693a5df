//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;

/// Runs the ignored test `child` of this test binary as a child process with `var` set
/// to `dir`, kills it with SIGKILL after `delay`, and returns the lines it printed. A
/// child's first line may carry libtest's `test NAME ... ` prefix.
pub fn run_child_until_killed(
    child: &str,
    var: &str,
    dir: &Path,
    delay: std::time::Duration,
) -> Vec<String> {
    use std::io::BufRead;
    let mut process = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            child,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(var, dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = process.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    std::thread::sleep(delay);
    process.kill().unwrap(); // SIGKILL
    process.wait().unwrap();
    reader.join().unwrap()
}

/// Every record the store holds, by seq: `(key, payload)`, read through `keys` and `read`.
/// Panics if any seq appears twice or a key's records are out of seq order.
pub fn store_contents<F: writelog::fs::Fs, C: writelog::clock::Clock>(
    store: &writelog::Store<F, C>,
) -> std::collections::BTreeMap<u64, (Vec<u8>, Vec<u8>)> {
    let mut all = std::collections::BTreeMap::new();
    for key in store.keys().unwrap() {
        let records = store.read(&key).unwrap();
        assert!(
            records.windows(2).all(|w| w[0].seq < w[1].seq),
            "a key's records are in seq order"
        );
        for record in records {
            let previous = all.insert(record.seq.0, (key.clone(), record.payload));
            assert!(previous.is_none(), "seq {} is held twice", record.seq);
        }
    }
    all
}

/// Every file under `dir` with its bytes, sorted by path: a picture of the store on disk.
pub fn disk_picture(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Flips one bit in the middle of the largest segment of the store in `dir` (rot on the
/// medium) and returns the segment's path.
pub fn rot_largest_segment(dir: &Path) -> std::path::PathBuf {
    let segment = disk_picture(dir)
        .into_iter()
        .filter(|(path, _)| path.starts_with("keys/") && path.contains("/seg-"))
        .max_by_key(|(_, bytes)| bytes.len())
        .map(|(path, _)| dir.join(path))
        .expect("the store has a segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&segment, &bytes).unwrap();
    segment
}

/// Releases a `MemFs`'s held fsyncs however a test ends, so that a failure reports
/// instead of hanging.
pub struct Release(pub writelog::fs::MemFs);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.release_syncs();
    }
}
