//! An open file of the simulated file system: its writes land in the shared state, as
//! unsynced bytes until an fdatasync makes them durable.

use std::io;

use writelog::fs::FsFile;

use super::*;

/// An open file of [`SimFs`].
#[derive(Debug)]
pub struct SimFile {
    pub(super) fs: SimFs,
    pub(super) inode: Inode,
    /// Opened by `open_append`: positional writes are refused, as on `RealFs`.
    pub(super) appending: bool,
}

impl SimFile {
    /// Writes `data` at `offset` (`None`: at the end), with the write faults: an unsynced
    /// write that a power loss may keep, lose, tear or fill.
    fn write(&mut self, offset: Option<u64>, data: &[u8]) -> io::Result<()> {
        let mut state = self.fs.state();
        if let Err(e) = self.fs.enter(&mut state, true) {
            if state.crashed {
                state.crashes_mid_io += 1;
            }
            return Err(e);
        }
        let fault = state.write_fault(data.len());
        let file = state.tree.file_mut(self.inode)?;
        let (data, result) = match fault {
            Some((written, error)) => (&data[..written], Err(error)),
            None => (data, Ok(())),
        };
        if !data.is_empty() {
            let offset = match offset {
                Some(at) => usize::try_from(at).map_err(|_| io::ErrorKind::InvalidInput)?,
                None => file.current.len(),
            };
            let end = offset + data.len();
            if file.current.len() < end {
                file.current.resize(end, 0);
            }
            file.current[offset..end].copy_from_slice(data);
            file.unsynced.push((offset, data.to_vec()));
        }
        result
    }
}

impl FsFile for SimFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(None, data)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.appending {
            return Err(writelog::fs::write_at_on_append_error());
        }
        self.write(Some(offset), data)
    }

    /// Like [`Fs::truncate`], durable at once (the stated simplification).
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.fs.state();
        self.fs.enter(&mut state, true)?;
        let file = state.tree.file_mut(self.inode)?;
        file.truncate(usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut state = self.fs.state();
        if let Err(e) = self.fs.enter(&mut state, true) {
            state.crashes_mid_io += 1;
            return Err(e);
        }
        state.sync_fault()?;
        let file = state.tree.file_mut(self.inode)?;
        file.durable = file.current.clone();
        file.unsynced.clear();
        Ok(())
    }
}
