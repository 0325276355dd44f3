//! The writer's view of calls in progress: CMS correlation groups cached in
//! memory, resolved through source keys, and flushed to the calls and legs
//! tables. The journal is the durable truth; what is cached here and not yet
//! flushed is rebuilt from the journal after a crash (see `Writer::replay`).

use std::collections::{HashMap, HashSet};

use cdrhub_correlate::cms::{self, CmsCallGroup, CmsLegState, Detail, Touched};
use cdrhub_model::{Call, Leg};
use cdrhub_protocols::cms::CmsRecord;
use rusqlite::{OptionalExtension, Transaction, params};
use tracing::error;

/// The key of a CMS leg; its call is found through the legs table.
const LEG_KEY: &str = "cms:leg:";

/// Beyond this many cached calls the cache is emptied after a flush.
const MAX_CACHED_GROUPS: usize = 20_000;
const MAX_CACHED_KEYS: usize = 200_000;

/// One call's correlation state as cached by the writer.
struct CachedGroup {
    group: CmsCallGroup,
    sender: String,
    dirty: bool,
    dirty_legs: HashSet<String>,
}

#[derive(Default)]
pub(crate) struct Correlation {
    groups: HashMap<String, CachedGroup>,
    /// Source key (`cms:leg:GUID`) to call id.
    keys: HashMap<String, String>,
    /// Calls merged into another since the last reset: old id to surviving id.
    aliases: HashMap<String, String>,
    // Not yet flushed:
    new_keys: Vec<(String, String)>,
    merges: Vec<(String, String)>,
    dirty_groups: usize,
}

struct Resolved {
    target: String,
    merge: Vec<String>,
}

impl Correlation {
    pub(crate) fn dirty_groups(&self) -> usize {
        self.dirty_groups
    }

    /// Applies one CMS record to the call it belongs to, joining calls the
    /// record shows to be one.
    pub(crate) fn apply_cms(
        &mut self,
        tx: &Transaction,
        record: &CmsRecord,
        call_bridge: Option<&str>,
        sender: &str,
    ) -> rusqlite::Result<()> {
        let keys: Vec<String> = cms::record_keys(record)
            .into_iter()
            .map(|k| format!("cms:{k}"))
            .collect();
        let Some(resolved) = self.resolve(tx, &keys)? else {
            return Ok(());
        };
        self.load_group(tx, &resolved.target, sender)?;
        for other in &resolved.merge {
            self.merge_into(tx, other, &resolved.target)?;
        }
        let entry = self
            .groups
            .get_mut(&resolved.target)
            .expect("group loaded above");
        if let Touched::Leg(id) = entry.group.apply(record, call_bridge) {
            entry.dirty_legs.insert(id);
        }
        if !entry.dirty {
            entry.dirty = true;
            self.dirty_groups += 1;
        }
        for key in keys {
            if self.keys.get(&key) != Some(&resolved.target) {
                self.keys.insert(key.clone(), resolved.target.clone());
                self.new_keys.push((key, resolved.target.clone()));
            }
        }
        Ok(())
    }

    /// Which call the keys belong to: an existing one, several to be merged
    /// (the record shows they are one call), or a new one.
    fn resolve(&mut self, tx: &Transaction, keys: &[String]) -> rusqlite::Result<Option<Resolved>> {
        if keys.is_empty() {
            return Ok(None);
        }
        let mut found: Vec<String> = Vec::new();
        for key in keys {
            let id = match self.keys.get(key) {
                Some(id) => Some(id.clone()),
                None => {
                    let id: Option<String> = match key.strip_prefix(LEG_KEY) {
                        Some(leg) => tx
                            .prepare_cached("SELECT call_id FROM legs WHERE id = ?1")?
                            .query_row([leg], |r| r.get(0))
                            .optional()?,
                        None => tx
                            .prepare_cached("SELECT call_id FROM call_keys WHERE key = ?1")?
                            .query_row([key], |r| r.get(0))
                            .optional()?,
                    };
                    if let Some(id) = &id {
                        self.keys.insert(key.clone(), id.clone());
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
                merge: Vec::new(),
            }
        } else {
            let target = found.remove(0);
            Resolved {
                target,
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
    fn load_group(&mut self, tx: &Transaction, id: &str, sender: &str) -> rusqlite::Result<()> {
        if self.groups.contains_key(id) {
            return Ok(());
        }
        let row: Option<(String, String)> = tx
            .prepare_cached("SELECT state, sender FROM calls WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (mut group, sender) = match row {
            Some((state, sender)) => (
                serde_json::from_str::<CmsCallGroup>(&state).unwrap_or_else(|e| {
                    error!(call = id, error = %e, "stored call state is unreadable; rebuilding from new records");
                    CmsCallGroup::default()
                }),
                sender,
            ),
            None => (CmsCallGroup::default(), sender.to_owned()),
        };
        let mut stmt = tx.prepare_cached("SELECT state FROM legs WHERE call_id = ?1")?;
        for state in stmt.query_map([id], |r| r.get::<_, String>(0))? {
            match serde_json::from_str::<CmsLegState>(&state?) {
                Ok(leg) => group.legs.push(leg),
                Err(e) => error!(call = id, error = %e, "stored leg state is unreadable"),
            }
        }
        self.groups.insert(
            id.to_owned(),
            CachedGroup {
                group,
                sender,
                dirty: false,
                dirty_legs: HashSet::new(),
            },
        );
        Ok(())
    }

    fn merge_into(&mut self, tx: &Transaction, from: &str, into: &str) -> rusqlite::Result<()> {
        self.load_group(tx, from, "")?;
        let absorbed = self.groups.remove(from).expect("group loaded above");
        if absorbed.dirty {
            self.dirty_groups -= 1;
        }
        let target = self
            .groups
            .get_mut(into)
            .expect("target loaded before merging");
        target.group.absorb(absorbed.group);
        // Every leg now belongs to the surviving call.
        target.dirty_legs = target.group.legs.iter().map(|l| l.id.clone()).collect();
        if !target.dirty {
            target.dirty = true;
            self.dirty_groups += 1;
        }
        self.aliases.insert(from.to_owned(), into.to_owned());
        self.merges.push((from.to_owned(), into.to_owned()));
        Ok(())
    }

    /// Writes every changed call, leg and key.
    pub(crate) fn flush(&mut self, tx: &Transaction) -> rusqlite::Result<()> {
        for (from, into) in &self.merges {
            tx.prepare_cached("DELETE FROM calls WHERE id = ?1")?
                .execute([from])?;
            tx.prepare_cached("UPDATE call_keys SET call_id = ?2 WHERE call_id = ?1")?
                .execute([from, into])?;
        }
        for (id, entry) in self.groups.iter().filter(|(_, e)| e.dirty) {
            let (call, legs) = entry.group.summarize(id, &entry.sender, Detail::Columns);
            write_call(tx, &call, &entry.group)?;
            for leg in legs.iter().filter(|l| entry.dirty_legs.contains(&l.id)) {
                let state = entry.group.legs.iter().find(|s| s.id == leg.id);
                write_leg(tx, leg, state)?;
            }
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO call_keys (key, call_id) VALUES (?1, ?2) \
             ON CONFLICT(key) DO UPDATE SET call_id = excluded.call_id",
        )?;
        // Leg ids need no key row: the leg's own row names its call.
        for (key, id) in self
            .new_keys
            .iter()
            .filter(|(k, _)| !k.starts_with(LEG_KEY))
        {
            stmt.execute([key, &self.canonical(id)])?;
        }
        Ok(())
    }

    /// After a committed flush: everything cached is clean; finished calls
    /// leave the cache (a late record reloads them).
    pub(crate) fn flushed(&mut self) {
        self.groups.retain(|_, entry| {
            entry.dirty = false;
            entry.dirty_legs.clear();
            !is_finished(&entry.group)
        });
        self.new_keys.clear();
        self.merges.clear();
        self.dirty_groups = 0;
        if self.groups.len() > MAX_CACHED_GROUPS || self.keys.len() > MAX_CACHED_KEYS {
            *self = Correlation::default();
        }
    }
}

/// A call whose every part and leg has ended is unlikely to change again.
fn is_finished(group: &CmsCallGroup) -> bool {
    !group.calls.is_empty()
        && group.calls.iter().all(|c| c.end.is_some())
        && group.legs.iter().all(|l| l.end.is_some())
}

fn write_call(tx: &Transaction, call: &Call, group: &CmsCallGroup) -> rusqlite::Result<()> {
    // Legs keep their own state rows; the call row keeps the rest.
    let state = serde_json::json!({
        "calls": group.calls,
        "media_sessions": group.media_sessions,
    });
    tx.prepare_cached(
        "INSERT INTO calls (id, source, sender, kind, caller, dialed, destination, direction, started_at, \
         answered_at, ended_at, duration_s, talk_s, disposition, cause, media, legs, legs_completed, \
         max_active_legs, flags, state) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) \
         ON CONFLICT(id) DO UPDATE SET source = excluded.source, sender = excluded.sender, kind = excluded.kind, \
         caller = excluded.caller, dialed = excluded.dialed, destination = excluded.destination, \
         direction = excluded.direction, started_at = excluded.started_at, answered_at = excluded.answered_at, \
         ended_at = excluded.ended_at, duration_s = excluded.duration_s, talk_s = excluded.talk_s, \
         disposition = excluded.disposition, cause = excluded.cause, media = excluded.media, legs = excluded.legs, \
         legs_completed = excluded.legs_completed, max_active_legs = excluded.max_active_legs, \
         flags = excluded.flags, state = excluded.state",
    )?
    .execute(params![
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
        state.to_string(),
    ])?;
    Ok(())
}

fn write_leg(tx: &Transaction, leg: &Leg, state: Option<&CmsLegState>) -> rusqlite::Result<()> {
    let state = state
        .and_then(|s| serde_json::to_string(s).ok())
        .unwrap_or_else(|| "{}".into());
    tx.prepare_cached(
        "INSERT INTO legs (id, call_id, source_leg_id, remote_party, local_address, display_name, direction, \
         leg_type, sip_call_id, started_at, connected_at, ended_at, duration_s, reason, remote_teardown, \
         disposition, state) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
         ON CONFLICT(id) DO UPDATE SET call_id = excluded.call_id, source_leg_id = excluded.source_leg_id, \
         remote_party = excluded.remote_party, local_address = excluded.local_address, \
         display_name = excluded.display_name, direction = excluded.direction, leg_type = excluded.leg_type, \
         sip_call_id = excluded.sip_call_id, started_at = excluded.started_at, \
         connected_at = excluded.connected_at, ended_at = excluded.ended_at, duration_s = excluded.duration_s, \
         reason = excluded.reason, remote_teardown = excluded.remote_teardown, \
         disposition = excluded.disposition, state = excluded.state",
    )?
    .execute(params![
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
        state,
    ])?;
    Ok(())
}
