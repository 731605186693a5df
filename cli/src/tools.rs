//! `inspect`, `verify`, `append` and `read`: a store's files seen from outside.
//!
//! `inspect` and `verify` only read: they never open the store (opening runs recovery,
//! which changes files), so they are safe on a store that needs investigating.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use writelog::format::{block_len, BadReason, DecodeLimits, LogDecoder, LOG_HEADER_LEN, LOG_MAGIC};
use writelog::fs::{Fs, RealFs};
use writelog::keystore::scrub::{scrub, ScrubReport};
use writelog::keystore::segment::{self, RUN_HEADER_LEN, SEGMENT_HEADER_LEN, SEGMENT_MAGIC};
use writelog::keystore::{parse_segment_file_name, KEYS_DIR};
use writelog::machine::{
    LogId, LOCK_FILE, READING_DIR, SEQ_FLOOR_FILE, SEQ_FLOOR_MAGIC, WRITING_DIR, WRITING_LOG,
};
use writelog::seq_file;
use writelog::{Options, Store};

type CliResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Bytes as printable ASCII with escapes (keys are arbitrary bytes).
fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One block or damaged region of a log, in file order.
enum LogItem {
    Block {
        offset: u64,
        seq: u64,
        /// `append`, `delete` or `truncate`.
        kind: &'static str,
        key: String,
        payload_len: usize,
        batch_first: bool,
        batch_left: u32,
    },
    Damage {
        offset: u64,
        bad_at: u64,
        reason: BadReason,
        resumes_at: Option<u64>,
    },
}

/// The blocks and damage of a log's bytes.
fn walk_log(bytes: &[u8]) -> Vec<LogItem> {
    let mut items = Vec::new();
    for item in LogDecoder::new(bytes, DecodeLimits::default()) {
        match item {
            Ok(batch) => {
                let mut offset = batch.offset;
                for block in &batch.blocks {
                    items.push(LogItem::Block {
                        offset,
                        seq: block.seq,
                        kind: match block.kind {
                            writelog::format::Kind::Append => "append",
                            writelog::format::Kind::Delete => "delete",
                            writelog::format::Kind::Truncate => "truncate",
                        },
                        key: shown(block.key),
                        payload_len: block.payload.len(),
                        batch_first: block.batch_first,
                        batch_left: block.batch_left,
                    });
                    offset += block_len(block.key.len(), block.payload.len()) as u64;
                }
            }
            Err(damage) => items.push(LogItem::Damage {
                offset: damage.offset,
                bad_at: damage.bad_at,
                reason: damage.reason,
                resumes_at: damage.resumes_at,
            }),
        }
    }
    items
}

/// `writelog inspect PATH`: a log block by block, or a segment run by run. Returns whether the file
/// is intact.
pub fn inspect(path: &Path, json: bool) -> CliResult<bool> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    if bytes.starts_with(&LOG_MAGIC) || path.extension().is_some_and(|e| e == "log") {
        Ok(inspect_log(path, &bytes, json))
    } else if bytes.starts_with(&SEGMENT_MAGIC) || path.extension().is_some_and(|e| e == "dat") {
        Ok(inspect_segment(path, &bytes, json))
    } else {
        Err(format!(
            "{}: neither a writelog log nor a key-store segment (unknown magic)",
            path.display()
        )
        .into())
    }
}

fn inspect_log(path: &Path, bytes: &[u8], json: bool) -> bool {
    let items = walk_log(bytes);
    let damaged = items.iter().any(|i| matches!(i, LogItem::Damage { .. }));
    if json {
        let rendered: Vec<String> = items
            .iter()
            .map(|item| match item {
                LogItem::Block {
                    offset,
                    seq,
                    kind,
                    key,
                    payload_len,
                    batch_first,
                    batch_left,
                } => format!(
                    "{{\"type\":\"block\",\"offset\":{offset},\"seq\":{seq},\"kind\":\"{}\",\"key\":{},\
                     \"payload_len\":{payload_len},\"batch_first\":{batch_first},\"batch_left\":{batch_left}}}",
                    kind,
                    json_string(key)
                ),
                LogItem::Damage {
                    offset,
                    bad_at,
                    reason,
                    resumes_at,
                } => format!(
                    "{{\"type\":\"damage\",\"offset\":{offset},\"bad_at\":{bad_at},\"reason\":{},\"resumes_at\":{}}}",
                    json_string(&reason.to_string()),
                    resumes_at.map_or("null".to_string(), |r| r.to_string())
                ),
            })
            .collect();
        println!(
            "{{\"path\":{},\"file\":\"log\",\"len\":{},\"intact\":{},\"items\":[{}]}}",
            json_string(&path.display().to_string()),
            bytes.len(),
            !damaged,
            rendered.join(",")
        );
        return !damaged;
    }
    println!("{}: log, {} bytes", path.display(), bytes.len());
    let (mut blocks, mut first, mut last) = (0u64, None, None);
    for item in &items {
        match item {
            LogItem::Block {
                offset,
                seq,
                kind,
                key,
                payload_len,
                batch_first,
                batch_left,
            } => {
                blocks += 1;
                first = first.or(Some(*seq));
                last = Some(*seq);
                let start = if *batch_first { " batch start," } else { "" };
                println!(
                    "  @{offset:<10} seq {seq:<8} {kind:<8} key \"{key}\" payload {payload_len} B,{start} {batch_left} left"
                );
            }
            LogItem::Damage {
                offset,
                bad_at,
                reason,
                resumes_at,
            } => {
                let after = match resumes_at {
                    Some(at) => format!("intact blocks resume at {at}"),
                    None => "it runs to the end (a torn or zero-filled tail)".to_string(),
                };
                println!("  @{offset:<10} DAMAGE: {reason} at byte {bad_at}; {after}");
            }
        }
    }
    let seqs = match (first, last) {
        (Some(a), Some(b)) => format!("seqs {a}..={b}"),
        _ => "no records".to_string(),
    };
    let verdict = if damaged { "DAMAGED" } else { "intact" };
    println!("  {blocks} blocks, {seqs}: {verdict}");
    !damaged
}

/// The partition and number a segment's path names (`…/p{NNN}/seg-{n}.dat`).
fn segment_identity(path: &Path) -> Option<(u32, u32)> {
    let number = parse_segment_file_name(path.file_name()?.to_str()?)?;
    let dir = path.parent()?.file_name()?.to_str()?;
    let partition = dir.strip_prefix('p')?.parse().ok()?;
    Some((partition, number))
}

/// One run of a segment as `inspect` shows it.
struct RunShown {
    offset: usize,
    header: segment::RunHeader,
    entries: Vec<segment::RunEntry>,
}

/// Walks a segment's runs; the damage that stopped the walk, if any.
fn walk_segment(path: &Path, bytes: &[u8]) -> (Vec<RunShown>, Option<(usize, BadReason)>) {
    let mut runs = Vec::new();
    let Some((partition, number)) = segment_identity(path) else {
        return (runs, Some((0, BadReason::BadField)));
    };
    if let Err(reason) = segment::check_segment_header(bytes, partition, number) {
        return (runs, Some((0, reason)));
    }
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < bytes.len() {
        let header = match segment::decode_run_header(&bytes[pos..], (bytes.len() - pos) as u64) {
            Ok(header) => header,
            Err(reason) => return (runs, Some((pos, reason))),
        };
        let index_at = pos + RUN_HEADER_LEN;
        let index = &bytes[index_at..index_at + header.index_len as usize];
        match segment::decode_run_index(index, &header) {
            Ok(entries) => runs.push(RunShown {
                offset: pos,
                header,
                entries,
            }),
            Err(reason) => return (runs, Some((index_at, reason))),
        }
        pos += header.run_len as usize;
    }
    (runs, None)
}

fn inspect_segment(path: &Path, bytes: &[u8], json: bool) -> bool {
    let (runs, damage) = walk_segment(path, bytes);
    if json {
        let shown_runs: Vec<String> = runs
            .iter()
            .map(|run| {
                format!(
                    "{{\"offset\":{},\"len\":{},\"first_seq\":{},\"last_seq\":{},\"entries\":{}}}",
                    run.offset,
                    run.header.run_len,
                    run.header.first_seq,
                    run.header.last_seq,
                    run.entries.len()
                )
            })
            .collect();
        let damage = damage.map_or("null".to_string(), |(at, reason)| {
            format!(
                "{{\"offset\":{at},\"reason\":{}}}",
                json_string(&reason.to_string())
            )
        });
        println!(
            "{{\"path\":{},\"file\":\"segment\",\"len\":{},\"intact\":{},\"runs\":[{}],\"damage\":{damage}}}",
            json_string(&path.display().to_string()),
            bytes.len(),
            damage == "null",
            shown_runs.join(",")
        );
        return damage == "null";
    }
    println!(
        "{}: key-store segment, {} bytes",
        path.display(),
        bytes.len()
    );
    for run in &runs {
        println!(
            "  @{:<10} run of {} B, seqs {}..={}, {} entries",
            run.offset,
            run.header.run_len,
            run.header.first_seq,
            run.header.last_seq,
            run.entries.len()
        );
        for entry in &run.entries {
            let floor = if entry.floor > 0 {
                format!(", floor {}", entry.floor)
            } else {
                String::new()
            };
            println!(
                "    \"{}\": {} records, seqs {}..={}, ops to {}{floor}",
                shown(&entry.key),
                entry.count,
                entry.first_seq,
                entry.last_seq,
                entry.op_last
            );
        }
    }
    if let Some((at, reason)) = damage {
        println!("  @{at:<10} DAMAGE: {reason}; what follows cannot be indexed");
    }
    println!(
        "  {} runs: {}",
        runs.len(),
        if damage.is_some() {
            "DAMAGED"
        } else {
            "intact"
        }
    );
    damage.is_none()
}

/// What `verify` found: problems that make the store unsound, and notes about crash
/// leftovers that recovery or the committers clean up by design.
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    notes: Vec<String>,
}

/// `writelog verify DIR`: checks a whole store without changing it. Returns whether it is
/// sound.
pub fn verify(dir: &Path) -> CliResult<bool> {
    if !dir.join("txlogs").is_dir() && !dir.join(KEYS_DIR).is_dir() {
        return Err(format!(
            "{}: not a writelog store (no txlogs/ or keys/)",
            dir.display()
        )
        .into());
    }
    if lock_is_held(dir) {
        return Err(format!(
            "{}: the store is open in another process; close it first (its files change under a reader)",
            dir.display()
        )
        .into());
    }
    let fs = RealFs::new(dir)?;
    let mut found = Findings::default();
    let (logs, log_records) = verify_logs(&fs, &mut found)?;
    let scrubbed = verify_keys(&fs, &mut found)?;
    for note in &found.notes {
        println!("note: {note}");
    }
    for problem in &found.problems {
        println!("PROBLEM: {problem}");
    }
    println!(
        "{}: {logs} logs ({log_records} records), key store: {} segments, {} runs, {} records, {} bytes: {}",
        dir.display(),
        scrubbed.segments,
        scrubbed.runs,
        scrubbed.records,
        scrubbed.bytes,
        if found.problems.is_empty() {
            "sound".to_string()
        } else {
            format!("{} problems", found.problems.len())
        }
    );
    Ok(found.problems.is_empty())
}

/// Whether another process holds the store's lock (the check takes it for an instant; a
/// store without a LOCK file has never been opened and is not locked).
fn lock_is_held(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(dir.join(LOCK_FILE)) else {
        return false;
    };
    // SAFETY: flock on a descriptor this function owns; the lock goes with the file.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}

fn verify_logs(fs: &RealFs, found: &mut Findings) -> CliResult<(u64, u64)> {
    let (mut logs, mut records) = (0u64, 0u64);
    match seq_file::read(fs, Path::new(SEQ_FLOOR_FILE), SEQ_FLOOR_MAGIC) {
        Ok(Some(floor)) => found.notes.push(format!(
            "{SEQ_FLOOR_FILE}: new seqs start above {floor} (room recovery left for seqs that damage hid)"
        )),
        Ok(None) => {}
        Err(e) => found.problems.push(format!("seq floor: {e}")),
    }
    let writing = Path::new(WRITING_LOG);
    if fs.len(writing)?.is_some() {
        logs += 1;
        for item in walk_log(&fs.read(writing)?) {
            match item {
                LogItem::Block { .. } => records += 1,
                LogItem::Damage {
                    offset,
                    reason: BadReason::ZeroFilled,
                    resumes_at: None,
                    ..
                } => found.notes.push(format!(
                    "{WRITING_LOG}: zeros from {offset} to the end (space the writer wrote \
                     ahead, or a crash's zeroed tail); recovery cuts them"
                )),
                LogItem::Damage {
                    offset,
                    reason,
                    resumes_at: None,
                    ..
                } => found.notes.push(format!(
                    "{WRITING_LOG}: torn tail at {offset} ({reason}); recovery cuts it"
                )),
                LogItem::Damage { offset, reason, .. } => found.problems.push(format!(
                    "{WRITING_LOG}: damage at {offset} ({reason}) with intact blocks after it"
                )),
            }
        }
    }
    for name in list_or_empty(fs, Path::new(WRITING_DIR))? {
        if name != "tx.log" {
            found.notes.push(format!(
                "{WRITING_DIR}/{name}: not a file of the store (ignored)"
            ));
        }
    }
    for name in list_or_empty(fs, Path::new(READING_DIR))? {
        let path = PathBuf::from(READING_DIR).join(&name);
        if LogId::parse(&name).is_none() {
            found
                .notes
                .push(format!("{}: not a log name (ignored)", path.display()));
            continue;
        }
        logs += 1;
        let bytes = fs.read(&path)?;
        if bytes.len() < LOG_HEADER_LEN {
            found
                .problems
                .push(format!("{}: shorter than a log header", path.display()));
            continue;
        }
        for item in walk_log(&bytes) {
            match item {
                LogItem::Block { .. } => records += 1,
                LogItem::Damage { offset, reason, .. } => found.problems.push(format!(
                    "{}: damage at {offset} ({reason}); a Strict open refuses it",
                    path.display()
                )),
            }
        }
    }
    Ok((logs, records))
}

fn list_or_empty(fs: &RealFs, dir: &Path) -> CliResult<Vec<String>> {
    match fs.list(dir) {
        Ok(names) => Ok(names),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("listing {}: {e}", dir.display()).into()),
    }
}

/// Scrubs the key store (every byte read), sorting what it finds into problems
/// (corruption in durable bytes) and notes (crash damage past what was made durable,
/// which opening cuts or removes: its records are still in the logs).
fn verify_keys(fs: &RealFs, found: &mut Findings) -> CliResult<ScrubReport> {
    let keys = fs.root().join(KEYS_DIR);
    let old_layout = list_or_empty(fs, Path::new(KEYS_DIR))?
        .iter()
        .any(|n| n == "WATERMARK" || (n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit())));
    if old_layout {
        found.problems.push(format!(
            "{}: a store in the old one-file-per-key layout, which this version does not read",
            keys.display()
        ));
        return Ok(ScrubReport::default());
    }
    let report = match scrub(fs) {
        Ok(report) => report,
        Err(e) => {
            found.problems.push(format!("key store: {e}"));
            return Ok(ScrubReport::default());
        }
    };
    if report.manifest.is_none() && keys.is_dir() {
        found.notes.push(format!(
            "{}: no MANIFEST yet (a store created but never opened whole)",
            keys.display()
        ));
    }
    for finding in &report.crash_damage {
        found.notes.push(format!(
            "{} at {}: past what the MANIFEST made durable ({}); opening cuts it, nothing acknowledged is lost",
            finding.path.display(),
            finding.offset,
            finding.reason
        ));
    }
    for finding in &report.corruption {
        found.problems.push(format!(
            "{} at {}: corruption in durable bytes ({}); a Strict read that meets it fails",
            finding.path.display(),
            finding.offset,
            finding.reason
        ));
    }
    Ok(report)
}

/// `writelog scrub DIR`: reads every byte of the key store and checks every checksum.
/// Returns whether no corruption was found.
pub fn scrub_store(dir: &Path) -> CliResult<bool> {
    if !dir.join(KEYS_DIR).is_dir() {
        return Err(format!("{}: not a writelog store (no keys/)", dir.display()).into());
    }
    let fs = RealFs::new(dir)?;
    let mut found = Findings::default();
    let report = verify_keys(&fs, &mut found)?;
    for note in &found.notes {
        println!("note: {note}");
    }
    for problem in &found.problems {
        println!("PROBLEM: {problem}");
    }
    println!(
        "{}: {} segments, {} runs, {} records, {} bytes read: {}",
        dir.display(),
        report.segments,
        report.runs,
        report.records,
        report.bytes,
        if found.problems.is_empty() {
            "sound".to_string()
        } else {
            format!("{} problems", found.problems.len())
        }
    );
    Ok(found.problems.is_empty())
}

/// `writelog append DIR KEY VALUE`: one synced append.
pub fn append(
    dir: &Path,
    key: &str,
    value: Option<&str>,
    file: Option<&Path>,
    create: bool,
) -> CliResult<()> {
    if !create {
        holds_a_store(dir)?;
    }
    let payload = match (value, file) {
        (_, Some(file)) => {
            std::fs::read(file).map_err(|e| format!("reading {}: {e}", file.display()))?
        }
        (Some(value), None) if value != "-" => value.as_bytes().to_vec(),
        _ => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .map_err(|e| format!("reading standard input: {e}"))?;
            bytes
        }
    };
    let store = Store::open(dir, Options::default())?;
    let seq = store.append(key.as_bytes(), &payload)?;
    store.close()?;
    println!("appended seq {}", seq.0);
    Ok(())
}

/// An error unless `dir` holds a store (its `txlogs/` or `keys/`): the tools that only
/// read or add to a store never create one by mistake.
fn holds_a_store(dir: &Path) -> CliResult<()> {
    if dir.join("txlogs").is_dir() || dir.join("keys").is_dir() {
        return Ok(());
    }
    Err(format!(
        "{} holds no writelog store (no txlogs/ or keys/); `append --create` makes one",
        dir.display()
    )
    .into())
}

/// `writelog read DIR KEY`: the key's records, one per line.
pub fn read(dir: &Path, key: &str) -> CliResult<()> {
    holds_a_store(dir)?;
    let store = Store::open(dir, Options::default())?;
    let records = store.read(key.as_bytes())?;
    store.close()?;
    for record in records {
        println!("{}\t{}", record.seq, shown(&record.payload));
    }
    Ok(())
}
