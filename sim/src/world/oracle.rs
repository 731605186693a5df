//! The oracle: the model of what the store must hold, and the checks of every read and
//! of every refusal against it.

use super::*;

/// Which records a read asks for.
#[derive(Clone, Copy, Debug)]
pub(super) enum Want {
    All,
    After(u64, usize),
    Last(usize),
}

impl World {
    /// What a failed open or recovery means: corruption refused (planted, or an oracle
    /// failure), a crash or injected error, or an oracle failure.
    pub(super) fn open_failed(&mut self, e: writelog::Error) -> StepError {
        match e {
            writelog::Error::Corrupt {
                path,
                offset,
                reason,
            } if !self.fs.crashed() => self.refused(&path, offset, reason),
            _ if self.fs.crashed() || self.fs.take_injected_error() => StepError::Crash,
            e => StepError::from(e),
        }
    }

    /// The model's records for every key: the history applied in seq order.
    pub(super) fn model(&self) -> BTreeMap<Vec<u8>, Vec<Record>> {
        let mut model: BTreeMap<Vec<u8>, Vec<Record>> = BTreeMap::new();
        for (first, request) in &self.history {
            for (i, record) in request.records.iter().enumerate() {
                let seq = first + i as u64;
                match record.kind {
                    Kind::Append => model.entry(record.key.clone()).or_default().push(Record {
                        seq: Seq(seq),
                        payload: record.payload.clone(),
                    }),
                    Kind::Delete => {
                        model.remove(&record.key);
                    }
                    Kind::Truncate => {
                        let floor = truncate_floor(seq, &record.payload).expect("submitted whole");
                        if let Some(records) = model.get_mut(&record.key) {
                            records.retain(|r| r.seq.0 >= floor);
                        }
                    }
                }
            }
        }
        model
    }

    /// Reads `key` as `Store::records` does: all of it (`Want::All`), the records after a
    /// seq up to a limit, or its last records (`Store::tail`).
    pub(super) fn read_as(&mut self, key: &[u8], want: Want) -> Step<Vec<Record>> {
        let node = self.node.as_ref().ok_or(StepError::Crash)?;
        let pending = node.index.ops(key);
        let read = match want {
            Want::All => index::records(&self.fs, &node.keys, pending, key, 0, usize::MAX),
            Want::After(after, limit) => {
                index::records(&self.fs, &node.keys, pending, key, after, limit)
            }
            Want::Last(count) => index::tail(&self.fs, &node.keys, pending, key, count),
        };
        match read {
            Ok(records) => Ok(records.into_vec()),
            Err(_) if self.is_fault() => Err(StepError::Crash),
            // Damage a `Strict` read must refuse: planted, or an oracle failure.
            Err(writelog::Error::Corrupt {
                path,
                offset,
                reason,
            }) => Err(self.refused(&path, offset, reason)),
            Err(e) => Err(StepError::from(e)),
        }
    }

    pub(super) fn read(&mut self, key: &[u8]) -> Step<Vec<Record>> {
        self.read_as(key, Want::All)
    }

    /// With nothing the recovery mode may have dropped, the windowed reads agree with the
    /// whole one: the last one and three records, and two records after the middle one.
    pub(super) fn check_windows(&mut self, key: &[u8], want: &[Record]) -> Step<()> {
        for count in [1, 3] {
            let got = self.read_as(key, Want::Last(count))?;
            let expected = &want[want.len().saturating_sub(count)..];
            if got != expected {
                return Err(StepError::Oracle(format!(
                    "key {:?}: tail({count}) read {:?}, the model says {:?}",
                    String::from_utf8_lossy(key),
                    got.iter().map(|r| r.seq).collect::<Vec<_>>(),
                    expected.iter().map(|r| r.seq).collect::<Vec<_>>()
                )));
            }
        }
        if let Some(middle) = want.get(want.len() / 2) {
            let got = self.read_as(key, Want::After(middle.seq.0, 2))?;
            let from = want.len() / 2 + 1;
            let expected = &want[from..(from + 2).min(want.len())];
            if got != expected {
                return Err(StepError::Oracle(format!(
                    "key {:?}: records(after {}, 2) read {:?}, the model says {:?}",
                    String::from_utf8_lossy(key),
                    middle.seq,
                    got.iter().map(|r| r.seq).collect::<Vec<_>>(),
                    expected.iter().map(|r| r.seq).collect::<Vec<_>>()
                )));
            }
        }
        Ok(())
    }

    /// Oracle input: a request released at `durability` up to `last` must survive what
    /// that durability promises (`Sync` a power loss, `Buffered` a process crash), whatever
    /// the writer reports of its passes; a sync barrier, `Sync` with no records, covers
    /// every seq before it.
    pub(super) fn require(&mut self, durability: Durability, last: u64) {
        match durability {
            Durability::Sync => self.durable_upto = self.durable_upto.max(last),
            Durability::Buffered => self.written_upto = self.written_upto.max(last),
            Durability::None => {}
        }
    }

    /// Every key reads exactly as the model says, and every batch a lenient recovery
    /// mode may drop reads whole or not at all.
    pub(super) fn check_all_reads(&mut self) -> Step<()> {
        let model = self.model();
        for key in self.keys_used.clone() {
            self.check_against(&key, &model)?;
        }
        for batch in self.whole_batches.clone() {
            self.check_whole(&batch, &model)?;
        }
        Ok(())
    }

    /// A batch the recovery mode may drop (`seqs`) reads absent whole or present whole.
    /// Only records the model still shows count (a later delete or truncate hides the
    /// others), and only keys with no other record the mode may drop (whose presence
    /// would hide or show this batch's records).
    fn check_whole(&mut self, seqs: &[u64], model: &BTreeMap<Vec<u8>, Vec<Record>>) -> Step<()> {
        let Some(keys) = self.batch_keys(seqs) else {
            return Ok(());
        };
        let (mut present, mut observable) = (Vec::new(), 0);
        for key in keys {
            let shown: BTreeSet<u64> = model
                .get(&key)
                .map(|records| records.iter().map(|r| r.seq.0).collect())
                .unwrap_or_default();
            let got = match self.read(&key) {
                Ok(got) => got,
                Err(StepError::Crash) if !self.fs.crashed() => return Ok(()),
                Err(e) => return Err(e),
            };
            observable += seqs.iter().filter(|s| shown.contains(s)).count();
            present.extend(got.iter().map(|r| r.seq.0).filter(|s| seqs.contains(s)));
        }
        if !present.is_empty() && present.len() < observable {
            return Err(StepError::Oracle(format!(
                "batch {}..={} (dropped for damage, or kept whole) reads in part: {present:?}",
                seqs[0],
                seqs[seqs.len() - 1]
            )));
        }
        Ok(())
    }

    /// The keys of the batch `seqs`, if its records are all in the history and no other
    /// record of those keys is one the recovery mode may drop.
    fn batch_keys(&self, seqs: &[u64]) -> Option<BTreeSet<Vec<u8>>> {
        let (first, request) = self.history.range(..=seqs[0]).next_back()?;
        if *first != seqs[0] || request.records.len() != seqs.len() {
            return None;
        }
        let keys: BTreeSet<Vec<u8>> = request.records.iter().map(|r| r.key.clone()).collect();
        let others_uncertain = self.history.iter().any(|(first, request)| {
            request.records.iter().enumerate().any(|(i, r)| {
                let seq = first + i as u64;
                keys.contains(&r.key) && !seqs.contains(&seq) && self.maybe_lost.contains(&seq)
            })
        });
        (!others_uncertain).then_some(keys)
    }

    /// Reads `key` and compares it with what `model` holds for it.
    pub(super) fn check_against(
        &mut self,
        key: &[u8],
        model: &BTreeMap<Vec<u8>, Vec<Record>>,
    ) -> Step<()> {
        let got = match self.read(key) {
            Ok(got) => got,
            // The read failed with an injected error: an error loses nothing.
            Err(StepError::Crash) if !self.fs.crashed() => {
                self.summary.reads_failed += 1;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let want = model.get(key).map(Vec::as_slice).unwrap_or_default();
        self.summary.checks += 1;
        let explained = (!self.maybe_lost.is_empty() && self.possible_read(key, &got))
            || self.retained_suffix(&got, want);
        if got != want && !explained {
            let history: Vec<String> = self
                .history
                .iter()
                .flat_map(|(first, request)| {
                    request
                        .records
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.key == key)
                        .map(move |(i, r)| (first + i as u64, r.kind))
                })
                .map(|(seq, kind)| {
                    let maybe = if self.maybe_lost.contains(&seq) {
                        "?"
                    } else {
                        ""
                    };
                    let kind = match kind {
                        Kind::Append => "",
                        Kind::Delete => "del",
                        Kind::Truncate => "trunc",
                    };
                    format!("{kind}{seq}{maybe}")
                })
                .collect();
            let pending: Vec<u64> = self
                .node
                .as_ref()
                .map(|n| n.index.ops(key).iter().map(|op| op.seq).collect())
                .unwrap_or_default();
            let file = self
                .node
                .as_ref()
                .and_then(|n| n.keys.entry(&self.fs, key).ok().flatten());
            return Err(StepError::Oracle(format!(
                "key {:?}: read {:?}, the model says {:?} (its history, ? where the recovery \
                 mode may drop: {}; key store entry {file:?}, pending {pending:?})",
                String::from_utf8_lossy(key),
                got.iter().map(|r| r.seq).collect::<Vec<_>>(),
                want.iter().map(|r| r.seq).collect::<Vec<_>>(),
                history.join(" ")
            )));
        }
        if got == want || self.retained_suffix(&got, want) {
            match self.check_windows(key, &got) {
                Err(StepError::Crash) if !self.fs.crashed() => self.summary.reads_failed += 1,
                other => other?,
            }
        }
        Ok(())
    }

    /// Under retention: whether `got` is what compactions may have left of `want`: its
    /// newest records, at least as many as retention keeps of `want` now (what a
    /// compaction kept then holds at least that: later records only take from it).
    pub(super) fn retained_suffix(&self, got: &[Record], want: &[Record]) -> bool {
        let policy = &self.knobs.compaction;
        let (records, bytes) = (policy.retain_records, policy.retain_bytes);
        if records == u64::MAX && bytes == u64::MAX {
            return false;
        }
        // Worked out here, not by the machine's own `Retained::kept`: the model's.
        let mut payload_bytes = 0u64;
        let fit = want
            .iter()
            .rev()
            .take_while(|r| {
                payload_bytes += r.payload.len() as u64;
                payload_bytes <= bytes
            })
            .count();
        let guaranteed = (want.len() as u64).min(records).min(fit.max(1) as u64);
        want.ends_with(got) && got.len() as u64 >= guaranteed
    }

    /// With records the recovery mode may have dropped: whether `got` is what `key`'s
    /// history leaves for some choice of which of them were dropped. Each candidate for
    /// the floor that took effect (0, or the floor a delete or truncate sets; floors only
    /// rise) is tried: every delete or truncate not in `maybe_lost` must lie at or under
    /// it, and above it every append not in `maybe_lost` must be read, in order, and
    /// nothing else.
    pub(super) fn possible_read(&self, key: &[u8], got: &[Record]) -> bool {
        struct Op<'a> {
            seq: u64,
            /// The floor a delete or truncate sets; `None` for an append.
            floor: Option<u64>,
            payload: &'a [u8],
            maybe: bool,
        }
        let mut ops = Vec::new();
        for (first, request) in &self.history {
            for (i, record) in request.records.iter().enumerate() {
                if record.key == key {
                    let seq = first + i as u64;
                    let floor = match record.kind {
                        Kind::Append => None,
                        Kind::Delete => Some(seq + 1),
                        Kind::Truncate => truncate_floor(seq, &record.payload),
                    };
                    ops.push(Op {
                        seq,
                        floor,
                        payload: &record.payload,
                        maybe: self.maybe_lost.contains(&seq),
                    });
                }
            }
        }
        let floors = std::iter::once(0).chain(ops.iter().filter_map(|op| op.floor));
        'candidate: for cut in floors {
            if ops
                .iter()
                .any(|op| !op.maybe && op.floor.is_some_and(|floor| floor > cut))
            {
                continue;
            }
            let mut read = got.iter().peekable();
            for op in ops.iter().filter(|op| op.floor.is_none() && op.seq >= cut) {
                match read.peek() {
                    Some(record) if record.seq.0 == op.seq => {
                        if record.payload != op.payload {
                            continue 'candidate;
                        }
                        read.next();
                    }
                    _ if op.maybe => {}
                    _ => continue 'candidate,
                }
            }
            if read.next().is_none() {
                return true;
            }
        }
        false
    }

    /// The store refused the corruption at `path` (`offset`): right only if one was
    /// planted there. The operator then puts the pristine log back.
    pub(super) fn refused(&mut self, path: &Path, offset: u64, reason: BadReason) -> StepError {
        if let Some(i) = self.key_damage.iter().position(|d| d.path == path) {
            let damage = self.key_damage.remove(i);
            damage.repair(&self.fs);
            self.summary.refusals += 1;
            self.note(format!(
                "refused key-store damage in {} at {offset}: repaired",
                path.display()
            ));
            return StepError::Refused;
        }
        let Some(i) = self.corruptions.iter().position(|c| c.path == path) else {
            return StepError::Oracle(format!(
                "the store refused {} at offset {offset} ({reason}), where no corruption was planted",
                path.display()
            ));
        };
        let corruption = self.corruptions.remove(i);
        self.fs.replace(&corruption.path, &corruption.pristine);
        self.summary.refusals += 1;
        self.note(format!(
            "refused corruption in {} at {offset}: repaired",
            path.display()
        ));
        StepError::Refused
    }

    /// The writer poisoned itself during `what`: a restart after an injected fault or a
    /// crash, an oracle failure otherwise.
    pub(super) fn poisoned_step(&self, what: &str, why: &writelog::Failure) -> StepError {
        if self.is_fault() {
            StepError::Crash
        } else {
            StepError::Oracle(format!("{what} poisoned the writer without a fault: {why}"))
        }
    }

    pub(super) fn check_one_read(&mut self) -> Step<()> {
        let pick = self.rng.random_range(0..self.keys_used.len().max(1));
        match self.keys_used.iter().nth(pick).cloned() {
            Some(key) => self.check_key(key),
            None => Ok(()),
        }
    }

    /// Reads `key` and checks it against the model.
    pub(super) fn check_key(&mut self, key: Vec<u8>) -> Step<()> {
        let model = self.model();
        self.check_against(&key, &model)
    }
}
