//! Scrub: reads every byte of the key store, checks every checksum and link, and reports
//! what it found without changing any file. It tells corruption (damage inside what the
//! MANIFEST says is durable) from crash damage (bytes past a durable length, and segments
//! the MANIFEST does not list yet, which opening cuts or removes: their records are still
//! in the logs, so nothing acknowledged is lost).

use std::path::{Path, PathBuf};

use super::checkpoint;
use super::manifest::{self, Manifest};
use super::segment::{self, RUN_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::{parse_segment_file_name, partition_dir, segment_path};
use crate::error::{IoContext, Result};
use crate::format::BadReason;
use crate::fs::Fs;

/// One finding: a file, an offset and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The file, relative to the store.
    pub path: PathBuf,
    /// Where the finding begins.
    pub offset: u64,
    /// What was found.
    pub reason: BadReason,
}

/// What a scrub read and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// The MANIFEST, if there is one.
    pub manifest: Option<Manifest>,
    /// Segments read.
    pub segments: u64,
    /// Runs read.
    pub runs: u64,
    /// Records read and checked.
    pub records: u64,
    /// Durable bytes read.
    pub bytes: u64,
    /// Corruption: damage inside durable bytes. Reads that meet it fail under `Strict`.
    pub corruption: Vec<Finding>,
    /// Crash damage: bytes past a durable length, or a segment not yet listed. Opening
    /// cuts or removes it; nothing acknowledged is lost.
    pub crash_damage: Vec<Finding>,
}

/// Scrubs the key store of `fs` (see the module doc). `Err` only for I/O errors and a
/// MANIFEST that cannot be read at all.
pub fn scrub<F: Fs>(fs: &F) -> Result<ScrubReport> {
    let mut report = ScrubReport::default();
    let Some(manifest) = manifest::read(fs)? else {
        return Ok(report);
    };
    for partition in 0..manifest.partitions {
        let dir = partition_dir(partition);
        let names = super::open::list_if_any(fs, &dir)?;
        for name in names {
            let Some(number) = parse_segment_file_name(&name) else {
                continue;
            };
            let path = dir.join(&name);
            let listed = manifest
                .segments
                .iter()
                .find(|s| s.partition == partition && s.segment == number);
            let found = fs.len(&path).io("inspecting", &path)?.unwrap_or(0);
            let Some(listed) = listed else {
                report.crash_damage.push(Finding {
                    path,
                    offset: 0,
                    reason: BadReason::BadField,
                });
                continue;
            };
            if found > listed.durable_len {
                report.crash_damage.push(Finding {
                    path: path.clone(),
                    offset: listed.durable_len,
                    reason: BadReason::Truncated,
                });
            }
        }
    }
    for listed in &manifest.segments {
        let path = segment_path(listed.partition, listed.segment);
        report.segments += 1;
        let found = fs.len(&path).io("inspecting", &path)?.unwrap_or(0);
        let len = found.min(listed.durable_len);
        if found < listed.durable_len {
            report.corruption.push(Finding {
                path: path.clone(),
                offset: found,
                reason: BadReason::Missing,
            });
        }
        if let Err((offset, reason)) = scrub_segment(
            fs,
            &path,
            listed.partition,
            listed.segment,
            len,
            &mut report,
        )? {
            report.corruption.push(Finding {
                path,
                offset,
                reason,
            });
        }
    }
    for named in &manifest.checkpoints {
        scrub_checkpoint(fs, named.partition, named.number, &mut report)?;
    }
    report.manifest = Some(manifest);
    Ok(report)
}

/// Scrubs an index checkpoint: its directory, then every block.
fn scrub_checkpoint<F: Fs>(
    fs: &F,
    partition: u32,
    number: u32,
    report: &mut ScrubReport,
) -> Result<()> {
    let path = checkpoint::checkpoint_path(partition, number);
    let loaded = match checkpoint::load(fs, partition, number)? {
        Ok(loaded) => loaded,
        Err((offset, reason)) => {
            report.corruption.push(Finding {
                path,
                offset,
                reason,
            });
            return Ok(());
        }
    };
    for block in &loaded.blocks {
        report.bytes += u64::from(block.len);
        if let Err((path, offset, reason)) = checkpoint::read_block(fs, partition, &loaded, block)?
        {
            report.corruption.push(Finding {
                path,
                offset,
                reason,
            });
        }
    }
    Ok(())
}

/// Scrubs one segment up to `len`. The inner `Err` is the first damage that stops the walk
/// (a damaged run header or index: what follows cannot be found); damaged groups and
/// records are pushed to the report and the walk goes on.
fn scrub_segment<F: Fs>(
    fs: &F,
    path: &Path,
    partition: u32,
    number: u32,
    len: u64,
    report: &mut ScrubReport,
) -> Result<Result<(), (u64, BadReason)>> {
    if len < SEGMENT_HEADER_LEN as u64 {
        return Ok(Err((0, BadReason::HeaderTruncated)));
    }
    let bytes = fs.read_at(path, 0, len as usize).io("reading", path)?;
    report.bytes += len;
    if let Err(reason) = segment::check_segment_header(&bytes, partition, number) {
        return Ok(Err((0, reason)));
    }
    let mut pos = SEGMENT_HEADER_LEN;
    let mut order = segment::RunOrder::default();
    while pos < bytes.len() {
        let run = match segment::decode_run_header(&bytes[pos..], (bytes.len() - pos) as u64) {
            Ok(run) if order.admits(&run) => run,
            Ok(_) => return Ok(Err((pos as u64, BadReason::SeqNotIncreasing))),
            Err(reason) => return Ok(Err((pos as u64, reason))),
        };
        let index_at = pos + RUN_HEADER_LEN;
        let index_end = index_at + run.index_len as usize;
        let entries = match segment::decode_run_index(&bytes[index_at..index_end], &run) {
            Ok(entries) if order.admits_run(&run, &entries) => entries,
            Ok(_) => return Ok(Err((pos as u64, BadReason::SeqNotIncreasing))),
            Err(reason) => return Ok(Err((index_at as u64, reason))),
        };
        report.runs += 1;
        let mut at = index_end;
        for entry in entries.iter().filter(|e| e.count > 0) {
            let group = &bytes[at..at + entry.group_len as usize];
            match segment::decode_group(&entry.key, group) {
                Ok(decoded) => {
                    report.records += decoded.records.len() as u64;
                    let damage = decoded.damage.map(|(offset, reason)| (at + offset, reason));
                    let whole = decoded.records.len() == entry.count as usize
                        && decoded.records.first().map(|r| r.0) == Some(entry.first_seq)
                        && decoded.records.last().map(|r| r.0) == Some(entry.last_seq);
                    let damage = damage.or((!whole).then_some((at, BadReason::BadField)));
                    if let Some((offset, reason)) = damage {
                        report.corruption.push(Finding {
                            path: path.to_path_buf(),
                            offset: offset as u64,
                            reason,
                        });
                    }
                }
                Err(reason) => report.corruption.push(Finding {
                    path: path.to_path_buf(),
                    offset: at as u64,
                    reason,
                }),
            }
            at += entry.group_len as usize;
        }
        order.pass(&run, &entries);
        pos += run.run_len as usize;
    }
    Ok(Ok(()))
}
