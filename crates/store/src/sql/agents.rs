//! Agent state intervals (issue 4): per CTI server and agent, each state
//! (with its reason code) from the AGENT_STATE_EVENT that entered it to the
//! next one. Written as the events come, in the correlator's transaction;
//! a replayed event that is already there changes nothing.

#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};
use std::collections::HashMap;

use cdrhub_correlate::cti::CtiEvent;
use cdrhub_protocols::cti::{CtiBody, tags};

/// The state an agent is in now, as the table has it.
#[derive(Debug, Clone, Copy)]
struct Open {
    started_at: i64,
    state: u16,
    reason: u16,
}

#[derive(Default)]
pub(crate) struct AgentStates {
    /// (server, agent) to the open interval, read from the table once.
    open: HashMap<(String, String), Option<Open>>,
}

/// Agents cached at most; past this the cache starts again (it is only a
/// cache of the table's open rows).
const MAX_AGENTS: usize = 50_000;

impl AgentStates {
    /// Forgets what it knows (the transaction that taught it failed).
    pub(crate) fn reset(&mut self) {
        self.open.clear();
    }

    pub(crate) fn apply(
        &mut self,
        tx: Db<'_>,
        sender: &str,
        event: &CtiEvent,
        journal_id: i64,
    ) -> Result<()> {
        let CtiBody::AgentState(a) = &event.message.body else {
            return Ok(());
        };
        let f = &a.floating;
        let extension = f.str(tags::AGENT_EXTENSION).filter(|s| !s.is_empty());
        let Some(agent) = f
            .str(tags::AGENT_ID_LONG)
            .or_else(|| f.str(tags::AGENT_ID))
            .filter(|s| !s.is_empty())
            .or(extension)
        else {
            return Ok(());
        };
        let at = event.received_at.0;
        if self.open.len() > MAX_AGENTS {
            self.open.clear();
        }
        let key = (sender.to_owned(), agent.to_owned());
        let open = match self.open.get(&key) {
            Some(open) => *open,
            None => tx
                .query_row(
                    "SELECT started_at, state, reason_code FROM agent_states \
                     WHERE sender = ?1 AND agent = ?2 AND ended_at IS NULL \
                     ORDER BY started_at DESC LIMIT 1",
                    args![sender, agent],
                    |r| {
                        Ok(Open {
                            started_at: r.get(0)?,
                            state: r.get(1)?,
                            reason: r.get(2)?,
                        })
                    },
                )
                .optional()?,
        };
        if let Some(o) = open {
            // The same state again (the seed repeats them), or an event
            // older than the state it would end (a replay): nothing new.
            if (o.state == a.agent_state && o.reason == a.event_reason_code) || at <= o.started_at {
                self.open.insert(key, open);
                return Ok(());
            }
            tx.execute(
                "UPDATE agent_states SET ended_at = ?4 \
                 WHERE sender = ?1 AND agent = ?2 AND started_at = ?3",
                args![sender, agent, o.started_at, at],
            )?;
        }
        tx.execute("INSERT INTO agent_states (source, sender, agent, extension, state, reason_code, \
             started_at, ended_at, journal_id) VALUES ('cti', ?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7) ON CONFLICT DO NOTHING", args![
            sender,
            agent,
            extension,
            a.agent_state,
            a.event_reason_code,
            at,
            journal_id
        ])?;
        self.open.insert(
            key,
            Some(Open {
                started_at: at,
                state: a.agent_state,
                reason: a.event_reason_code,
            }),
        );
        Ok(())
    }
}
