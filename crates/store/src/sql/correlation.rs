//! The correlator's view of calls in progress: CMS correlation groups cached
//! in memory, resolved through source keys, and flushed to the calls and legs
//! tables of `calls.db`. The journal is the durable truth; what is cached here
//! and not yet flushed is rebuilt from the journal after a crash (see
//! `Correlator::replay`).

#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};
use std::collections::{HashMap, HashSet};

/// Maps keyed by source ids: a fast hash (these are hashed several times per
/// record), seeded per map.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;
use std::time::{Duration, Instant};

use cdrhub_correlate::cms::Touched;

use super::group::{Group, Origin};
use super::key_filter::KeyFilter;
use super::records;
use super::rollup::{CONTRIBUTION_COLUMNS, Contribution, Rollup};
use cdrhub_model::{Call, Leg, Timestamp};

/// A written call that has had no record for this long leaves the cache (a
/// late record reloads it): calls whose end never comes must not stay in
/// memory.
const IDLE_EVICT: Duration = Duration::from_secs(15);

/// A hint (`Group::record_hints`) is forgotten this long after it was left.
const HINT_LIFE: Duration = Duration::from_secs(10);

/// Beyond this many cached calls the cache is emptied after a flush.
const MAX_CACHED_GROUPS: usize = 20_000;
const MAX_CACHED_KEYS: usize = 200_000;

/// One call's correlation state as cached by the correlator.
struct CachedGroup<G> {
    group: G,
    sender: String,
    /// Set while the call has changes not yet in the calls and legs tables.
    dirty: Option<Dirty>,
    dirty_legs: FastSet<String>,
    /// Keys first seen since the last write of this call.
    new_keys: Vec<i64>,
    /// Calls merged into this one since its last write (their rows go then).
    merged_from: Vec<String>,
    /// What the call's row added to the statistics when last written.
    written: Option<Contribution>,
    /// What the rows of `merged_from` added, taken back when they go.
    retired: Vec<Contribution>,
    /// When a record last changed the call.
    last_record: Instant,
}

impl<G: Group> CachedGroup<G> {
    fn new(sender: &str) -> Self {
        CachedGroup {
            group: G::default(),
            sender: sender.to_owned(),
            dirty: None,
            dirty_legs: FastSet::default(),
            new_keys: Vec::new(),
            merged_from: Vec::new(),
            written: None,
            retired: Vec::new(),
            last_record: Instant::now(),
        }
    }
}

#[derive(Clone, Copy)]
struct Dirty {
    since: Instant,
    /// Journal id of the oldest record not yet written out.
    first_record: i64,
}

impl Dirty {
    fn join(a: Option<Dirty>, b: Option<Dirty>) -> Option<Dirty> {
        match (a, b) {
            (Some(a), Some(b)) => Some(Dirty {
                since: a.since.min(b.since),
                first_record: a.first_record.min(b.first_record),
            }),
            (a, b) => a.or(b),
        }
    }
}

/// Which changed calls a flush writes.
#[derive(Clone, Copy)]
pub(crate) enum FlushMode {
    /// Every changed call: a reader asked, or the writer is closing.
    All,
    /// Finished calls (they will not change again, so each is written once),
    /// and at most `budget` calls in progress whose changes are `age` old:
    /// many small writes rather than one long stall.
    Due { age: Duration, budget: usize },
}

pub(crate) struct Correlation<G> {
    groups: FastMap<String, CachedGroup<G>>,
    /// Source key (`CallKey::hash`) to call id.
    keys: FastMap<i64, String>,
    /// Calls merged into another: old id to surviving id, for `call_keys`
    /// rows that name the old id until the surviving call is written.
    aliases: FastMap<String, String>,
    dirty_groups: usize,
    /// Calls written since the last commit: the finished ones may leave the cache.
    written: Vec<String>,
    /// When the cache was last swept of idle calls.
    last_sweep: Option<Instant>,
    /// Which keys may be in `call_keys`; others are not looked up.
    filter: KeyFilter,
    /// Ends forced by operators, by source key (`forced_ends` of the journal
    /// database): applied to every call written that has one of the keys.
    forced: FastMap<i64, Timestamp>,
    /// Hints left by records, to the call that left them first.
    hints: FastMap<i64, (String, Instant)>,
}

struct Resolved {
    target: String,
    /// No key was known: the call is new and has no row to load.
    new: bool,
    merge: Vec<String>,
}

impl<G> Default for Correlation<G> {
    fn default() -> Self {
        Correlation {
            groups: FastMap::default(),
            keys: FastMap::default(),
            aliases: FastMap::default(),
            dirty_groups: 0,
            written: Vec::new(),
            last_sweep: None,
            filter: KeyFilter::default(),
            forced: FastMap::default(),
            hints: FastMap::default(),
        }
    }
}

impl<G: Group> Correlation<G> {
    /// An empty cache whose key lookups go through `filter`.
    pub(crate) fn new(filter: KeyFilter) -> Self {
        Correlation {
            filter,
            ..Correlation::default()
        }
    }

    /// Empties the cache (it is rebuilt from the journal), keeping the key
    /// filter (it may only hold more keys than `call_keys`, never fewer) and
    /// the forced ends.
    pub(crate) fn reset(&mut self) {
        let forced = std::mem::take(&mut self.forced);
        *self = Correlation::new(std::mem::take(&mut self.filter));
        self.forced = forced;
    }

    /// Takes the forced ends kept in the journal database.
    pub(crate) fn load_forced(&mut self, journal: Db<'_>) -> Result<()> {
        self.forced = records::forced_ends(journal)?.into_iter().collect();
        Ok(())
    }

    /// Ends the call that `keys` name at `at` (an operator forced it; the
    /// end is already kept in the journal database). Whether a call was found.
    pub(crate) fn force_end(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        keys: &[i64],
        at: Timestamp,
    ) -> Result<bool> {
        for key in keys {
            let kept = self.forced.entry(*key).or_insert(at);
            *kept = (*kept).min(at);
        }
        let Some(resolved) = self.resolve(tx, keys)? else {
            return Ok(false);
        };
        if resolved.new {
            return Ok(false);
        }
        self.load_group(tx, journal, &resolved.target, "")?;
        for other in &resolved.merge {
            self.merge_into(tx, journal, other, &resolved.target)?;
        }
        let entry = self
            .groups
            .get_mut(&resolved.target)
            .expect("group loaded above");
        entry.group.set_forced_end(at);
        entry.dirty_legs = entry.group.leg_ids().into_iter().collect();
        if entry.dirty.is_none() {
            self.dirty_groups += 1;
        }
        // No journal record to replay: the forced end is in `forced_ends`.
        entry.dirty = Dirty::join(
            entry.dirty,
            Some(Dirty {
                since: Instant::now(),
                first_record: i64::MAX,
            }),
        );
        Ok(true)
    }

    /// The calls of `sender` still open: written ones, and cached ones not
    /// written yet.
    pub(crate) fn open_calls_of(&self, tx: Db<'_>, sender: &str) -> Result<Vec<String>> {
        let mut ids: Vec<String> = tx.query_map(
            "SELECT id FROM calls WHERE sender = ?1 AND ended_at IS NULL",
            args![sender],
            |r| r.get(0),
        )?;
        for (id, e) in &self.groups {
            if e.sender == sender && !e.group.is_finished() && !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids.retain(|id| !self.aliases.contains_key(id));
        Ok(ids)
    }

    /// Changes a call's state with `f`, as the journal record `journal_id`
    /// says, and marks it to be written (a replay after a crash starts no
    /// later than that record).
    pub(crate) fn change(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        id: &str,
        journal_id: i64,
        f: impl FnOnce(&mut G),
    ) -> Result<()> {
        self.load_group(tx, journal, id, "")?;
        let entry = self.groups.get_mut(id).expect("group loaded above");
        f(&mut entry.group);
        entry.dirty_legs = entry.group.leg_ids().into_iter().collect();
        if entry.dirty.is_none() {
            self.dirty_groups += 1;
        }
        entry.dirty = Dirty::join(
            entry.dirty,
            Some(Dirty {
                since: Instant::now(),
                first_record: journal_id,
            }),
        );
        Ok(())
    }

    /// Changes, with `f`, the calls still open that `f` says must change:
    /// every cached one, and those written open that `candidates` (a
    /// query on `calls`, with `params`) lists. How many changed.
    pub(crate) fn change_open(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        candidates: &str,
        params: &[&dyn db::Arg],
        mut f: impl FnMut(&mut G) -> bool,
    ) -> Result<usize> {
        let mut ids: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, e)| !e.group.is_finished())
            .map(|(id, _)| id.clone())
            .collect();
        let written: Vec<String> = tx.query_map(candidates, params, |r| r.get(0))?;
        for id in written {
            if !self.aliases.contains_key(&id) && !self.groups.contains_key(&id) {
                ids.push(id);
            }
        }
        let mut changed = 0;
        for id in ids {
            self.load_group(tx, journal, &id, "")?;
            let entry = self.groups.get_mut(&id).expect("group loaded above");
            if !f(&mut entry.group) {
                continue;
            }
            changed += 1;
            entry.dirty_legs = entry.group.leg_ids().into_iter().collect();
            if entry.dirty.is_none() {
                self.dirty_groups += 1;
            }
            // No journal record to replay: the next start changes it again.
            entry.dirty = Dirty::join(
                entry.dirty,
                Some(Dirty {
                    since: Instant::now(),
                    first_record: i64::MAX,
                }),
            );
        }
        Ok(changed)
    }

    /// Ends again the calls still open that have a forced end: the server
    /// stopped after keeping the end and before writing the call.
    pub(crate) fn reapply_forced(&mut self, tx: Db<'_>, journal: Db<'_>) -> Result<usize> {
        let forced: Vec<(i64, Timestamp)> = self.forced.iter().map(|(k, t)| (*k, *t)).collect();
        let mut ended = 0;
        for (key, at) in forced {
            let open: Option<String> = tx
                .query_row(
                    "SELECT c.id FROM call_keys k JOIN calls c ON c.id = k.call_id \
                     WHERE k.key = ?1 AND c.ended_at IS NULL",
                    args![key],
                    |r| r.get(0),
                )
                .optional()?;
            if open.is_some() && self.force_end(tx, journal, &[key], at)? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Loads the key filter anew, larger, once it holds more keys than it
    /// was sized for. Keys not yet written are all in the key cache.
    pub(crate) fn grow_filter(&mut self, calls: Db<'_>) -> Result<()> {
        if self.filter.is_full() {
            let mut filter = KeyFilter::load(calls)?;
            for key in self.keys.keys() {
                filter.add(*key);
            }
            self.filter = filter;
        }
        Ok(())
    }

    /// Whether the call was merged into another whose row is not written
    /// yet: its records are that call's now.
    pub(crate) fn is_merged_away(&self, id: &str) -> bool {
        self.aliases.contains_key(id)
    }

    /// Drops a call that is being removed from the cache, with its keys;
    /// the journal ids of its records if it was cached (they may be newer
    /// than its row's).
    pub(crate) fn forget(&mut self, id: &str) -> Option<Vec<i64>> {
        let e = self.groups.remove(id)?;
        if e.dirty.is_some() {
            self.dirty_groups -= 1;
        }
        for key in e.group.keys() {
            if self.keys.get(&key).is_some_and(|k| k == id) {
                self.keys.remove(&key);
            }
        }
        self.written.retain(|w| w != id);
        Some(e.group.record_ids())
    }

    pub(crate) fn dirty_groups(&self) -> usize {
        self.dirty_groups
    }

    /// Whether a flush with this `age` would write anything.
    pub(crate) fn any_due(&self, age: Duration) -> bool {
        let now = Instant::now();
        self.groups.values().any(|e| {
            e.dirty
                .is_some_and(|d| e.group.is_finished() || now.duration_since(d.since) >= age)
        })
    }

    /// Journal id of the oldest applied record whose call is not written yet:
    /// a replay after a crash must start there.
    pub(crate) fn oldest_unwritten(&self) -> Option<i64> {
        self.groups
            .values()
            .filter_map(|g| g.dirty.map(|d| d.first_record))
            .min()
    }

    /// Applies one record to the call it belongs to, joining calls the
    /// record shows to be one. `tx` writes `calls.db`; `journal` reads the
    /// records of a call that is not cached.
    pub(crate) fn apply(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        record: G::Record,
        origin: Origin<'_>,
        journal_id: i64,
    ) -> Result<()> {
        let sender = origin.sender;
        let keys = G::record_keys(&record, origin);
        let (probes, marks) = G::record_hints(&record, origin);
        let Some(mut resolved) = self.resolve(tx, &keys)? else {
            return Ok(());
        };
        self.follow_hints(&probes, &mut resolved);
        if resolved.new {
            self.groups
                .insert(resolved.target.clone(), CachedGroup::new(sender));
        } else {
            self.load_group(tx, journal, &resolved.target, sender)?;
        }
        for other in &resolved.merge {
            self.merge_into(tx, journal, other, &resolved.target)?;
        }
        let entry = self
            .groups
            .get_mut(&resolved.target)
            .expect("group loaded above");
        if let Touched::Leg(id) = entry.group.apply(record, origin, journal_id) {
            entry.dirty_legs.insert(id);
        }
        if entry.dirty.is_none() {
            self.dirty_groups += 1;
        }
        let now = Instant::now();
        entry.last_record = now;
        entry.dirty = Dirty::join(
            entry.dirty,
            Some(Dirty {
                since: now,
                first_record: journal_id,
            }),
        );
        for key in keys {
            if self.keys.get(&key) != Some(&resolved.target) {
                self.keys.insert(key, resolved.target.clone());
                self.filter.add(key);
                entry.new_keys.push(key);
            }
        }
        for mark in marks {
            self.hints
                .entry(mark)
                .or_insert_with(|| (resolved.target.clone(), now));
        }
        Ok(())
    }

    /// Joins to the call the calls that left a hint the record looks for.
    fn follow_hints(&mut self, probes: &[i64], resolved: &mut Resolved) {
        for probe in probes {
            let Some((id, _)) = self.hints.get(probe) else {
                continue;
            };
            let id = self.canonical(id);
            if id == resolved.target || resolved.merge.contains(&id) {
                continue;
            }
            if resolved.new {
                // The record's call is the hinted one; it has a row or is
                // cached, so it is loaded, not started.
                resolved.target = id;
                resolved.new = false;
            } else {
                resolved.merge.push(id);
            }
        }
    }

    /// Which call the keys belong to: an existing one, several to be merged
    /// (the record shows they are one call), or a new one.
    fn resolve(&mut self, tx: Db<'_>, keys: &[i64]) -> Result<Option<Resolved>> {
        if keys.is_empty() {
            return Ok(None);
        }
        let mut found: Vec<String> = Vec::new();
        for key in keys {
            let id = match self.keys.get(key) {
                Some(id) => Some(id.clone()),
                None if !self.filter.may_contain(*key) => None,
                None => {
                    let id: Option<String> = tx
                        .query_row(
                            "SELECT call_id FROM call_keys WHERE key = ?1",
                            args![key],
                            |r| r.get(0),
                        )
                        .optional()?;
                    // The row may name a call merged since; the cache
                    // holds only surviving ids.
                    let id = id.map(|id| self.canonical(&id));
                    if let Some(id) = &id {
                        self.keys.insert(*key, id.clone());
                    }
                    id
                }
            };
            if let Some(id) = id {
                let id = self.canonical(&id);
                if !found.contains(&id) {
                    found.push(id);
                }
            }
        }
        Ok(Some(if found.is_empty() {
            Resolved {
                target: uuid::Uuid::now_v7().to_string(),
                new: true,
                merge: Vec::new(),
            }
        } else {
            let target = found.remove(0);
            Resolved {
                target,
                new: false,
                merge: found,
            }
        }))
    }

    fn canonical(&self, id: &str) -> String {
        let mut id = id;
        while let Some(next) = self.aliases.get(id) {
            id = next;
        }
        id.to_owned()
    }

    /// Makes sure the group is in the cache, loading it or starting it empty.
    fn load_group(&mut self, tx: Db<'_>, journal: Db<'_>, id: &str, sender: &str) -> Result<()> {
        if self.groups.contains_key(id) {
            return Ok(());
        }
        // The call's state is rebuilt from its journaled records.
        let row: Option<(String, String, Contribution)> = tx
            .query_row(
                &format!("SELECT records, sender, {CONTRIBUTION_COLUMNS} FROM calls WHERE id = ?1"),
                args![id],
                |r| Ok((r.get(0)?, r.get(1)?, Contribution::from_row(r, 2)?)),
            )
            .optional()?;
        let (group, sender, written) = match row {
            Some((ids, sender, written)) => {
                let group = G::load(journal, &records::parse_ids(&ids))?;
                (group, sender, Some(written))
            }
            None => (G::default(), sender.to_owned(), None),
        };
        self.groups.insert(
            id.to_owned(),
            CachedGroup {
                group,
                written,
                ..CachedGroup::new(&sender)
            },
        );
        Ok(())
    }

    fn merge_into(&mut self, tx: Db<'_>, journal: Db<'_>, from: &str, into: &str) -> Result<()> {
        self.load_group(tx, journal, from, "")?;
        let absorbed = self.groups.remove(from).expect("group loaded above");
        if absorbed.dirty.is_some() {
            self.dirty_groups -= 1;
        }
        let target = self
            .groups
            .get_mut(into)
            .expect("target loaded before merging");
        // The absorbed call's keys now lead to the surviving call, in the
        // key cache at once and in `call_keys` when the target is written.
        for key in absorbed.group.keys() {
            self.keys.insert(key, into.to_owned());
            target.new_keys.push(key);
        }
        target.group.absorb(absorbed.group);
        // Every leg now belongs to the surviving call.
        target.dirty_legs = target.group.leg_ids().into_iter().collect();
        target.merged_from.extend(absorbed.merged_from);
        target.merged_from.push(from.to_owned());
        target.retired.extend(absorbed.retired);
        target.retired.extend(absorbed.written);
        if target.dirty.is_none() {
            self.dirty_groups += 1;
        }
        // The absorbed call's row goes when the target is written; until
        // then it must be written, whatever the target's age.
        target.dirty = Dirty::join(
            Dirty::join(target.dirty, absorbed.dirty),
            Some(Dirty {
                since: Instant::now(),
                first_record: i64::MAX,
            }),
        );
        for alias in target.merged_from.clone() {
            self.aliases.insert(alias, into.to_owned());
        }
        // Hints of the absorbed call lead to the surviving one, after its
        // alias is gone too.
        for (id, _) in self.hints.values_mut() {
            if id == from {
                *id = into.to_owned();
            }
        }
        Ok(())
    }

    /// Writes changed calls, their legs and keys, as `mode` says.
    pub(crate) fn flush(&mut self, tx: Db<'_>, mode: FlushMode) -> Result<()> {
        let now = Instant::now();
        let mut due: Vec<String> = Vec::new();
        let mut in_progress = 0;
        for (id, entry) in &self.groups {
            let Some(dirty) = entry.dirty else { continue };
            let take = match mode {
                FlushMode::All => true,
                FlushMode::Due { age, budget } => {
                    entry.group.is_finished()
                        || (now.duration_since(dirty.since) >= age && {
                            in_progress += 1;
                            in_progress <= budget
                        })
                }
            };
            if take {
                due.push(id.clone());
            }
        }
        let mut rollup = Rollup::default();
        for id in due {
            let entry = self.groups.get_mut(&id).expect("listed above");
            for gone in entry.retired.drain(..) {
                rollup.add(&gone, -1);
            }
            for from in &entry.merged_from {
                tx.execute("DELETE FROM calls WHERE id = ?1", args![from])?;
                tx.execute("DELETE FROM legs WHERE call_id = ?1", args![from])?;
            }
            if !self.forced.is_empty() {
                let forced = entry
                    .group
                    .keys()
                    .into_iter()
                    .filter_map(|k| self.forced.get(&k).copied())
                    .min();
                if let Some(at) = forced {
                    entry.group.set_forced_end(at);
                }
            }
            let (call, legs) = entry.group.summarize(&id, &entry.sender);
            write_call(tx, &call, &legs, &entry.group)?;
            let now = Contribution::of(&call);
            if entry.written.as_ref() != Some(&now) {
                if let Some(before) = &entry.written {
                    rollup.add(before, -1);
                }
                rollup.add(&now, 1);
                entry.written = Some(now);
            }
            for leg in legs.iter().filter(|l| entry.dirty_legs.contains(&l.id)) {
                write_leg(tx, leg)?;
            }
            let stmt = "INSERT INTO call_keys (key, call_id) VALUES (?1, ?2) \
                 ON CONFLICT(key) DO UPDATE SET call_id = excluded.call_id";
            entry.new_keys.sort_unstable();
            entry.new_keys.dedup();
            for key in &entry.new_keys {
                tx.execute(stmt, args![key, &id])?;
            }
            // Clean now; if the transaction fails the writer drops this cache.
            // Once this commits, no row names the merged calls any more.
            for from in entry.merged_from.drain(..) {
                self.aliases.remove(&from);
            }
            entry.dirty = None;
            entry.dirty_legs.clear();
            entry.new_keys.clear();
            self.dirty_groups -= 1;
            self.written.push(id);
        }
        rollup.write(tx)
    }

    /// After a commit: finished calls that are written leave the cache (a
    /// late record reloads them); past its size the cache keeps only what is
    /// not written yet, with the keys and merges that lead to it.
    pub(crate) fn committed(&mut self) {
        for id in std::mem::take(&mut self.written) {
            if self
                .groups
                .get(&id)
                .is_some_and(|e| e.dirty.is_none() && e.group.is_finished())
            {
                self.evict(&id);
            }
        }
        let now = Instant::now();
        if self
            .last_sweep
            .is_none_or(|t| now.duration_since(t) >= IDLE_EVICT / 4)
        {
            self.last_sweep = Some(now);
            self.hints
                .retain(|_, (_, left)| now.duration_since(*left) < HINT_LIFE);
            let idle: Vec<String> = self
                .groups
                .iter()
                .filter(|(_, e)| {
                    e.dirty.is_none() && now.duration_since(e.last_record) >= IDLE_EVICT
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in idle {
                self.evict(&id);
            }
        }
        if self.groups.len() > MAX_CACHED_GROUPS || self.keys.len() > MAX_CACHED_KEYS {
            self.groups.retain(|_, e| e.dirty.is_some());
            self.keys.clear();
            self.aliases.clear();
            for (id, e) in &self.groups {
                for k in &e.new_keys {
                    self.keys.insert(*k, id.clone());
                }
                for m in &e.merged_from {
                    self.aliases.insert(m.clone(), id.clone());
                }
            }
        }
    }
}

impl<G: Group> Correlation<G> {
    /// Drops a written call from the cache, with its keys, so the key cache
    /// holds calls in progress.
    fn evict(&mut self, id: &str) {
        let Some(e) = self.groups.remove(id) else {
            return;
        };
        for key in e.group.keys() {
            if self.keys.get(&key).is_some_and(|k| k == id) {
                self.keys.remove(&key);
            }
        }
    }
}

/// Every party name and address of a call and its legs, one a line: the
/// party search reads this one column of the call instead of its legs.
fn parties(call: &Call, legs: &[Leg]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    let of_call = [&call.caller, &call.dialed, &call.destination];
    let of_legs = legs
        .iter()
        .flat_map(|l| [&l.remote_party, &l.local_address, &l.display_name]);
    for p in of_call.into_iter().chain(of_legs).flatten() {
        if !p.is_empty() && !seen.contains(&p.as_str()) {
            seen.push(p);
        }
    }
    seen.join("\n")
}

fn write_call<G: Group>(tx: Db<'_>, call: &Call, legs: &[Leg], group: &G) -> Result<()> {
    let records = serde_json::to_string(&group.record_ids()).unwrap_or_else(|_| "[]".into());
    tx.execute("INSERT INTO calls (id, source, sender, kind, caller, dialed, destination, direction, started_at, \
         answered_at, ended_at, duration_s, talk_s, disposition, cause, media, legs, legs_completed, \
         max_active_legs, flags, details, records, parties, written_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24) \
         ON CONFLICT(id) DO UPDATE SET source = excluded.source, sender = excluded.sender, kind = excluded.kind, \
         caller = excluded.caller, dialed = excluded.dialed, destination = excluded.destination, \
         direction = excluded.direction, started_at = excluded.started_at, answered_at = excluded.answered_at, \
         ended_at = excluded.ended_at, duration_s = excluded.duration_s, talk_s = excluded.talk_s, \
         disposition = excluded.disposition, cause = excluded.cause, media = excluded.media, legs = excluded.legs, \
         legs_completed = excluded.legs_completed, max_active_legs = excluded.max_active_legs, \
         flags = excluded.flags, details = excluded.details, records = excluded.records, \
         parties = excluded.parties, written_at = excluded.written_at", args![
        call.id,
        call.source,
        call.sender,
        call.kind,
        call.caller,
        call.dialed,
        call.destination,
        call.direction.map(|d| d.as_str()),
        call.started_at.0,
        call.answered_at.map(|t| t.0),
        call.ended_at.map(|t| t.0),
        call.duration_s,
        call.talk_s,
        call.disposition.map(|d| d.as_str()),
        call.cause,
        call.media,
        call.legs,
        call.legs_completed,
        call.max_active_legs,
        serde_json::to_string(&call.flags).unwrap_or_else(|_| "[]".into()),
        group.details().to_string(),
        records,
        parties(call, legs),
        Timestamp::now().0,
    ])?;
    Ok(())
}

fn write_leg(tx: Db<'_>, leg: &Leg) -> Result<()> {
    tx.execute("INSERT INTO legs (id, call_id, source_leg_id, remote_party, local_address, display_name, direction, \
         leg_type, sip_call_id, started_at, connected_at, ended_at, duration_s, reason, remote_teardown, \
         disposition) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
         ON CONFLICT(call_id, id) DO UPDATE SET source_leg_id = excluded.source_leg_id, \
         remote_party = excluded.remote_party, local_address = excluded.local_address, \
         display_name = excluded.display_name, direction = excluded.direction, leg_type = excluded.leg_type, \
         sip_call_id = excluded.sip_call_id, started_at = excluded.started_at, \
         connected_at = excluded.connected_at, ended_at = excluded.ended_at, duration_s = excluded.duration_s, \
         reason = excluded.reason, remote_teardown = excluded.remote_teardown, \
         disposition = excluded.disposition", args![
        leg.id,
        leg.call_id,
        leg.source_leg_id,
        leg.remote_party,
        leg.local_address,
        leg.display_name,
        leg.direction,
        leg.leg_type,
        leg.sip_call_id,
        leg.started_at.map(|t| t.0),
        leg.connected_at.map(|t| t.0),
        leg.ended_at.map(|t| t.0),
        leg.duration_s,
        leg.reason,
        leg.remote_teardown,
        leg.disposition.map(|d| d.as_str()),
    ])?;
    Ok(())
}

/// The correlation state of every source, as the correlator thread keeps it.
pub(crate) struct Correlations {
    pub cms: Correlation<cdrhub_correlate::cms::CmsCallGroup>,
    pub cti: Correlation<cdrhub_correlate::cti::CtiCallGroup>,
    pub radius: Correlation<cdrhub_correlate::radius::RadiusCallGroup>,
    pub feed: Correlation<cdrhub_correlate::feed::FeedCallGroup>,
    pub sip: Correlation<cdrhub_correlate::sip::SipCallGroup>,
    pub events: Correlation<cdrhub_correlate::events::EventCallGroup>,
    pub agents: super::agents::AgentStates,
    pub registrations: super::registrations::SipRegistrations,
}

impl Correlations {
    /// CMS and RADIUS keys go through filters (most of their records name
    /// a call never seen); CTI keys are few enough to be looked up each time.
    pub(crate) fn new(cms_filter: KeyFilter, radius_filter: KeyFilter) -> Self {
        Correlations {
            cms: Correlation::new(cms_filter),
            cti: Correlation::new(KeyFilter::default()),
            radius: Correlation::new(radius_filter),
            feed: Correlation::new(KeyFilter::default()),
            sip: Correlation::new(KeyFilter::default()),
            events: Correlation::new(KeyFilter::default()),
            agents: Default::default(),
            registrations: Default::default(),
        }
    }

    /// Applies a CTI message: a call event to its call, an agent state to
    /// the agent's intervals.
    pub(crate) fn apply_cti(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        event: cdrhub_correlate::cti::CtiEvent,
        origin: Origin<'_>,
        journal_id: i64,
    ) -> Result<()> {
        match &event.message.body {
            cdrhub_protocols::cti::CtiBody::Call(_) => {
                self.cti.apply(tx, journal, event, origin, journal_id)
            }
            cdrhub_protocols::cti::CtiBody::AgentState(_) => {
                self.agents.apply(tx, origin.sender, &event, journal_id)
            }
            _ => Ok(()),
        }
    }

    /// Applies a SIP message: a call's to its call, a REGISTER's to the
    /// registrations.
    pub(crate) fn apply_sip(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        event: cdrhub_correlate::sip::SipEvent,
        origin: Origin<'_>,
        journal_id: i64,
    ) -> Result<()> {
        if event.register.is_some() {
            self.registrations.apply(tx, origin.sender, &event)
        } else {
            self.sip.apply(tx, journal, event, origin, journal_id)
        }
    }

    /// Applies a call event: a registration's to the registrations, the
    /// others to their call.
    pub(crate) fn apply_events(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        record: cdrhub_correlate::events::EventRecord,
        origin: Origin<'_>,
        journal_id: i64,
    ) -> Result<()> {
        if record.event.kind.is_registration() {
            super::registrations::apply_event(tx, origin.sender, &record.event)
        } else {
            self.events.apply(tx, journal, record, origin, journal_id)
        }
    }

    /// Applies an Accounting-Request: Start, Stop and Interim-Update to
    /// their call; Accounting-On and -Off close the gateway's open calls.
    pub(crate) fn apply_radius(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        event: cdrhub_correlate::radius::RadiusEvent,
        origin: Origin<'_>,
        journal_id: i64,
    ) -> Result<()> {
        use cdrhub_protocols::radius::status_type;
        match event.accounting.status_type {
            Some(status_type::ACCOUNTING_ON | status_type::ACCOUNTING_OFF) => {
                let at = event.at();
                for id in self.radius.open_calls_of(tx, origin.sender)? {
                    self.radius.change(tx, journal, &id, journal_id, |g| {
                        g.nas_restart = Some(g.nas_restart.map_or(at, |t| t.min(at)))
                    })?;
                }
                Ok(())
            }
            _ => self.radius.apply(tx, journal, event, origin, journal_id),
        }
    }

    /// Every source's calls, for what is done to all of them alike.
    fn all(&self) -> [&dyn SourceCalls; 6] {
        [
            &self.cms,
            &self.cti,
            &self.radius,
            &self.feed,
            &self.sip,
            &self.events,
        ]
    }

    fn all_mut(&mut self) -> [&mut dyn SourceCalls; 6] {
        [
            &mut self.cms,
            &mut self.cti,
            &mut self.radius,
            &mut self.feed,
            &mut self.sip,
            &mut self.events,
        ]
    }

    pub(crate) fn dirty_groups(&self) -> usize {
        self.all().iter().map(|c| c.dirty_groups()).sum()
    }

    pub(crate) fn any_due(&self, age: Duration) -> bool {
        self.all().iter().any(|c| c.any_due(age))
    }

    pub(crate) fn oldest_unwritten(&self) -> Option<i64> {
        self.all().iter().filter_map(|c| c.oldest_unwritten()).min()
    }

    pub(crate) fn reset(&mut self) {
        for c in self.all_mut() {
            c.reset();
        }
        self.agents.reset();
        self.registrations.reset();
    }

    pub(crate) fn load_forced(&mut self, journal: Db<'_>) -> Result<()> {
        for c in self.all_mut() {
            c.load_forced(journal)?;
        }
        Ok(())
    }

    pub(crate) fn reapply_forced(&mut self, tx: Db<'_>, journal: Db<'_>) -> Result<usize> {
        let mut ended = 0;
        for c in self.all_mut() {
            ended += c.reapply_forced(tx, journal)?;
        }
        Ok(ended)
    }

    /// Ends the call the keys name, in whichever source knows it.
    pub(crate) fn force_end(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        keys: &[i64],
        at: Timestamp,
    ) -> Result<bool> {
        for c in self.all_mut() {
            if c.force_end(tx, journal, keys, at)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub(crate) fn flush(&mut self, tx: Db<'_>, mode: FlushMode) -> Result<()> {
        for c in self.all_mut() {
            c.flush(tx, mode)?;
        }
        Ok(())
    }

    pub(crate) fn committed(&mut self) {
        for c in self.all_mut() {
            c.committed();
        }
    }

    pub(crate) fn grow_filter(&mut self, calls: Db<'_>) -> Result<()> {
        self.cms.grow_filter(calls)?;
        self.radius.grow_filter(calls)
    }

    pub(crate) fn is_merged_away(&self, id: &str) -> bool {
        self.all().iter().any(|c| c.is_merged_away(id))
    }

    pub(crate) fn forget(&mut self, id: &str) -> Option<Vec<i64>> {
        self.all_mut().into_iter().find_map(|c| c.forget(id))
    }
}

/// What [`Correlations`] does to every source's calls alike, whatever the
/// source's group type.
trait SourceCalls {
    fn dirty_groups(&self) -> usize;
    fn any_due(&self, age: Duration) -> bool;
    fn oldest_unwritten(&self) -> Option<i64>;
    fn reset(&mut self);
    fn load_forced(&mut self, journal: Db<'_>) -> Result<()>;
    fn reapply_forced(&mut self, tx: Db<'_>, journal: Db<'_>) -> Result<usize>;
    fn force_end(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        keys: &[i64],
        at: Timestamp,
    ) -> Result<bool>;
    fn flush(&mut self, tx: Db<'_>, mode: FlushMode) -> Result<()>;
    fn committed(&mut self);
    fn is_merged_away(&self, id: &str) -> bool;
    fn forget(&mut self, id: &str) -> Option<Vec<i64>>;
}

impl<G: Group> SourceCalls for Correlation<G> {
    fn dirty_groups(&self) -> usize {
        Correlation::dirty_groups(self)
    }
    fn any_due(&self, age: Duration) -> bool {
        Correlation::any_due(self, age)
    }
    fn oldest_unwritten(&self) -> Option<i64> {
        Correlation::oldest_unwritten(self)
    }
    fn reset(&mut self) {
        Correlation::reset(self)
    }
    fn load_forced(&mut self, journal: Db<'_>) -> Result<()> {
        Correlation::load_forced(self, journal)
    }
    fn reapply_forced(&mut self, tx: Db<'_>, journal: Db<'_>) -> Result<usize> {
        Correlation::reapply_forced(self, tx, journal)
    }
    fn force_end(
        &mut self,
        tx: Db<'_>,
        journal: Db<'_>,
        keys: &[i64],
        at: Timestamp,
    ) -> Result<bool> {
        Correlation::force_end(self, tx, journal, keys, at)
    }
    fn flush(&mut self, tx: Db<'_>, mode: FlushMode) -> Result<()> {
        Correlation::flush(self, tx, mode)
    }
    fn committed(&mut self) {
        Correlation::committed(self)
    }
    fn is_merged_away(&self, id: &str) -> bool {
        Correlation::is_merged_away(self, id)
    }
    fn forget(&mut self, id: &str) -> Option<Vec<i64>> {
        Correlation::forget(self, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::schema;
    use cdrhub_correlate::cms::{self, CallKey, CmsCallGroup};
    use cdrhub_protocols::cms::CmsRecord;

    /// The seed's eight records (CDR guide, seed 000): the leg starts before
    /// its call and joins it by a later callLegUpdate, so two partial calls
    /// merge.
    fn seed_records() -> Vec<CmsRecord> {
        (1..=6)
            .flat_map(|i| {
                let path = format!(
                    "{}/../../tests/data/cms/seed-000-post{i}.xml",
                    env!("CARGO_MANIFEST_DIR")
                );
                let body = std::fs::read(&path).expect("seed fixture");
                cdrhub_protocols::cms::decode(&body)
                    .expect("seed decodes")
                    .records
            })
            .collect()
    }

    #[test]
    fn a_finished_merged_call_leaves_no_key_or_alias_in_the_cache() {
        let mut calls = rusqlite::Connection::open_in_memory().unwrap();
        schema::migrate_calls(&mut calls).unwrap();
        let mut journal = rusqlite::Connection::open_in_memory().unwrap();
        schema::migrate_journal(&mut journal).unwrap();
        let mut correlation = Correlation::<CmsCallGroup>::default();
        let records = seed_records();
        let mut keys: Vec<i64> = records
            .iter()
            .flat_map(|r| {
                cms::record_keys(r)
                    .iter()
                    .map(CallKey::hash)
                    .collect::<Vec<_>>()
            })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let tx = Db::Sqlite(&calls).begin().unwrap();
        for (i, record) in records.into_iter().enumerate() {
            correlation
                .apply(
                    tx.db(),
                    Db::Sqlite(&journal),
                    record,
                    Origin {
                        sender: "cms-1",
                        call_bridge: None,
                    },
                    i as i64 + 1,
                )
                .unwrap();
        }
        assert_eq!(correlation.groups.len(), 1, "the two parts merged");
        correlation.flush(tx.db(), FlushMode::All).unwrap();
        tx.commit().unwrap();
        correlation.committed();
        assert!(correlation.groups.is_empty());
        assert!(correlation.keys.is_empty(), "{:?}", correlation.keys);
        assert!(correlation.aliases.is_empty(), "{:?}", correlation.aliases);
        let rows: i64 = calls
            .query_row("SELECT count(*) FROM call_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, keys.len() as i64, "every key is written");
    }
}
