//! CONDSTORE (RFC 7162) for a selected folder: the mod-sequence of each
//! message and HIGHESTMODSEQ, kept in [`crate::store::modseq`] (see there
//! for why the numbers survive restarts, lost files and changes made by
//! Dovecot or `deliver`). The session's commands use these helpers; this
//! file never writes flags.

use super::mailbox::Selected;
use crate::proto::imap::SearchKey;
use crate::store::flags::Flags;

impl Selected {
    /// Brings the folder's mod-sequences up to date with `present` (UIDs
    /// and the flags their files carry); `complete` when that is every
    /// message (expunges then count). A failure (a lock held too long, a
    /// read-only disk) is logged: the numbers stay as they were, and the
    /// next look tries again.
    pub fn sync_modseq(&self, present: &[(u32, Flags)], complete: bool) -> Vec<u32> {
        let mut state = match self.modseqs.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        match state.sync(self.uid_validity, present, complete) {
            Ok(given) => given,
            Err(e) => {
                tracing::error!(folder = %self.path.display(), "imap: mod-sequences: {e}");
                Vec::new()
            }
        }
    }

    /// Records the current flags of the messages at `indexes` (after a
    /// STORE, or \Seen set by a FETCH): they get new mod-sequences.
    pub fn record_modseq(&self, indexes: &[usize]) {
        let touched: Vec<(u32, Flags)> = indexes
            .iter()
            .filter_map(|&i| self.msgs.get(i))
            .filter(|m| !m.gone)
            .map(|m| (m.uid, m.flags))
            .collect();
        if !touched.is_empty() {
            self.sync_modseq(&touched, false);
        }
    }

    /// A message's mod-sequence. One not numbered yet (the state could not
    /// be written) is given HIGHESTMODSEQ: too high only costs the client
    /// a look, too low would hide a change.
    pub fn modseq_of(&self, uid: u32) -> u64 {
        let state = match self.modseqs.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        state.get(uid).unwrap_or_else(|| state.highest())
    }

    pub fn highest_modseq(&self) -> u64 {
        match self.modseqs.lock() {
            Ok(s) => s.highest(),
            Err(p) => p.into_inner().highest(),
        }
    }
}

/// Whether a SEARCH uses the MODSEQ key (RFC 7162 3.1.5: the response then
/// names the highest mod-sequence of the messages found).
pub fn uses_modseq(key: &SearchKey) -> bool {
    match key {
        SearchKey::ModSeq(_) => true,
        SearchKey::And(keys) => keys.iter().any(uses_modseq),
        SearchKey::Not(k) => uses_modseq(k),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        _ => false,
    }
}
