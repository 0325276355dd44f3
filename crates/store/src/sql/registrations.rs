//! SIP registrations (issue 6, point 4): each binding of an extension to a
//! contact, from the 2xx that accepted its REGISTER to its expiry or the
//! REGISTER that removed it. Written as the messages come, in the
//! correlator's transaction; a replayed message that is already there
//! changes nothing.

#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};
use std::collections::HashMap;
use std::net::SocketAddr;

use cdrhub_correlate::sip::{Register, SignalKind, SipEvent};
use cdrhub_model::Timestamp;

use crate::{RegisterHour, SipRegistration};

/// A REGISTER waiting for its final response.
struct Pending {
    at: Timestamp,
    /// Where the extension registered from: the REGISTER's source.
    source: SocketAddr,
    register: Register,
}

/// REGISTERs waiting for their final response, by agent, Call-ID and
/// CSeq. Past this many, those older than a transaction's life go.
const MAX_PENDING: usize = 10_000;
/// Timer F of RFC 3261: a non-INVITE transaction is over after 32 s.
const TRANSACTION_LIFE_MS: i64 = 64_000;

#[derive(Default)]
pub(crate) struct SipRegistrations {
    pending: HashMap<(String, String, u32), Pending>,
}

/// A contact without its parameters: the registrar may add some to the
/// one it was sent.
fn bare(contact: &str) -> &str {
    let c = contact.trim().trim_start_matches('<');
    c.split([';', '>']).next().unwrap_or(c)
}

impl SipRegistrations {
    /// Forgets what it knows (the transaction that taught it failed).
    pub(crate) fn reset(&mut self) {
        self.pending.clear();
    }

    pub(crate) fn apply(&mut self, tx: Db<'_>, sender: &str, event: &SipEvent) -> Result<()> {
        let Some(register) = &event.register else {
            return Ok(());
        };
        let s = &event.signal;
        let key = (sender.to_owned(), s.call_id.clone(), s.cseq);
        match s.kind {
            SignalKind::Request(_) => {
                if self.pending.len() >= MAX_PENDING {
                    self.pending
                        .retain(|_, p| s.at.0 - p.at.0 < TRANSACTION_LIFE_MS);
                }
                // The first copy is the one the extension sent; a proxy's
                // relayed copy comes from the proxy.
                self.pending.entry(key).or_insert_with(|| Pending {
                    at: s.at,
                    source: s.src,
                    register: register.clone(),
                });
                Ok(())
            }
            SignalKind::Response(status) if (200..300).contains(&status) => {
                let request = self.pending.remove(&key);
                accepted(tx, sender, event, register, request.as_ref())
            }
            // A challenge (401, 407) or a refusal binds nothing; the
            // REGISTER sent again with credentials has another CSeq.
            SignalKind::Response(status) if status >= 300 => {
                self.pending.remove(&key);
                Ok(())
            }
            SignalKind::Response(_) => Ok(()),
        }
    }
}

/// A 2xx to a REGISTER: the bindings it removed and those it holds.
fn accepted(
    tx: Db<'_>,
    sender: &str,
    event: &SipEvent,
    response: &Register,
    request: Option<&Pending>,
) -> Result<()> {
    let s = &event.signal;
    let at = s.at.0;
    let extension = &response.extension;
    let source = Some(request.map_or(s.dst, |r| r.source).to_string());
    let user_agent = request
        .and_then(|r| r.register.user_agent.as_deref())
        .or(response.user_agent.as_deref());
    if let Some(r) = request.map(|r| &r.register) {
        for c in &r.contacts {
            if c.0 == "*" {
                unregister(tx, sender, extension, None, at)?;
            } else if r.expiry_of(c) == Some(0) {
                unregister(tx, sender, extension, Some(bare(&c.0)), at)?;
            }
        }
    }
    // The response lists every binding of the extension; the ones this
    // REGISTER made are those it sent (all of them if it is not known).
    let sent: Option<Vec<&str>> =
        request.map(|r| r.register.contacts.iter().map(|c| bare(&c.0)).collect());
    let mut bound = false;
    for c in &response.contacts {
        let contact = bare(&c.0);
        if sent.as_ref().is_some_and(|sent| !sent.contains(&contact)) {
            continue;
        }
        if let Some(expires) = response.expiry_of(c).filter(|e| *e > 0) {
            bind(
                tx,
                sender,
                extension,
                contact,
                source.as_deref(),
                user_agent,
                at,
                expires,
            )?;
            bound = true;
        }
    }
    // A registrar that lists no contacts in its 2xx, or lists ours
    // rewritten (a NAT fix-up of the contact): the REGISTER's own.
    if !bound && let Some(r) = request.map(|r| &r.register) {
        for c in &r.contacts {
            if let Some(expires) = r.expiry_of(c).filter(|e| *e > 0) {
                let contact = bare(&c.0);
                bind(
                    tx,
                    sender,
                    extension,
                    contact,
                    source.as_deref(),
                    user_agent,
                    at,
                    expires,
                )?;
            }
        }
    }
    Ok(())
}

/// A registration or unregistration of the event API: the same bindings
/// as a SIP REGISTER makes.
pub(crate) fn apply_event(
    tx: Db<'_>,
    sender: &str,
    e: &cdrhub_protocols::events::CallEvent,
) -> Result<()> {
    use cdrhub_protocols::events::EventType;
    let Some(extension) = e.extension.as_deref() else {
        return Ok(());
    };
    let contact = e.contact.as_deref().unwrap_or(extension);
    match (e.kind, e.expires_s) {
        (EventType::Registration, Some(expires)) if expires > 0 => bind(
            tx,
            sender,
            extension,
            contact,
            e.source_address.as_deref(),
            None,
            e.at.0,
            expires,
        ),
        // Unregistration, or a registration for 0 s: every binding of the
        // extension ends unless a contact is named.
        _ => unregister(tx, sender, extension, e.contact.as_deref(), e.at.0),
    }
}

#[allow(clippy::too_many_arguments)]
fn bind(
    tx: Db<'_>,
    sender: &str,
    extension: &str,
    contact: &str,
    source: Option<&str>,
    user_agent: Option<&str>,
    at: i64,
    expires_s: u32,
) -> Result<()> {
    let until = at + i64::from(expires_s) * 1000;
    let last: Option<(i64, i64, i64, bool)> = tx
        .query_row(
            "SELECT login_at, refreshed_at, expires_at, unregistered FROM sip_registrations \
             WHERE sender = ?1 AND extension = ?2 AND contact = ?3 \
             ORDER BY login_at DESC LIMIT 1",
            args![sender, extension, contact],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    match last {
        // Already applied (a replay), or older than what is there.
        Some((_, refreshed, _, _)) if refreshed >= at => Ok(()),
        // Still bound: a refresh.
        Some((login, _, expires, false)) if expires >= at => {
            tx.execute(
                "UPDATE sip_registrations SET refreshed_at = ?5, expires_at = ?6, source = ?7, \
                 user_agent = coalesce(?8, user_agent) \
                 WHERE sender = ?1 AND extension = ?2 AND contact = ?3 AND login_at = ?4",
                args![
                    sender, extension, contact, login, at, until, source, user_agent
                ],
            )?;
            Ok(())
        }
        // Expired or removed, or never seen: a new login.
        _ => {
            tx.execute("INSERT INTO sip_registrations (sender, extension, contact, source, \
                 user_agent, login_at, refreshed_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) ON CONFLICT DO NOTHING", args![
                sender, extension, contact, source, user_agent, at, until
            ])?;
            Ok(())
        }
    }
}

/// Ends the extension's bindings to `contact` (every one if None) at `at`.
fn unregister(
    tx: Db<'_>,
    sender: &str,
    extension: &str,
    contact: Option<&str>,
    at: i64,
) -> Result<()> {
    tx.execute(
        "UPDATE sip_registrations SET expires_at = ?4, refreshed_at = ?4, unregistered = 1 \
         WHERE sender = ?1 AND extension = ?2 AND (CAST(?3 AS TEXT) IS NULL OR contact = ?3) \
         AND login_at <= ?4 AND expires_at > ?4",
        args![sender, extension, contact, at],
    )?;
    Ok(())
}

fn registration(r: &db::Row<'_>) -> Result<SipRegistration> {
    Ok(SipRegistration {
        sender: r.get(0)?,
        extension: r.get(1)?,
        contact: r.get(2)?,
        source: r.get(3)?,
        user_agent: r.get(4)?,
        login_at: Timestamp(r.get(5)?),
        refreshed_at: Timestamp(r.get(6)?),
        expires_at: Timestamp(r.get(7)?),
    })
}

/// The bindings in force at `now`, by extension.
pub(crate) fn current(
    conn: Db<'_>,
    now: Timestamp,
    sender: Option<&str>,
) -> Result<Vec<SipRegistration>> {
    conn.query_map(
        "SELECT sender, extension, contact, source, user_agent, login_at, refreshed_at, expires_at \
         FROM sip_registrations WHERE expires_at > ?1 AND login_at <= ?1 \
         AND (CAST(?2 AS TEXT) IS NULL OR sender = ?2) ORDER BY extension, contact, sender",
        args![now.0, sender],
        registration,
    )
}

const HOUR_MS: i64 = 3_600_000;

/// Each hour of the UTC day starting at `day`: the most bindings in force
/// at once (seed 002's "Peak Register") and the logins it saw.
pub(crate) fn hours(
    conn: Db<'_>,
    day: Timestamp,
    sender: Option<&str>,
) -> Result<Vec<RegisterHour>> {
    let (start, end) = (day.0, day.0 + 24 * HOUR_MS);
    let periods: Vec<(i64, i64)> = conn.query_map(
        "SELECT login_at, expires_at FROM sip_registrations \
             WHERE login_at < ?2 AND expires_at > ?1 AND (CAST(?3 AS TEXT) IS NULL OR sender = ?3)",
        args![start, end, sender],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(peaks(start, &periods))
}

/// The hourly peaks of bindings over the periods (login, expiry) of one
/// day from `start`.
fn peaks(start: i64, periods: &[(i64, i64)]) -> Vec<RegisterHour> {
    let mut hours: Vec<RegisterHour> = (0..24)
        .map(|h| RegisterHour {
            hour: Timestamp(start + h * HOUR_MS),
            peak: 0,
            logins: 0,
        })
        .collect();
    // Each change of the count, an end before a start at the same instant.
    let mut changes: Vec<(i64, i32)> = Vec::with_capacity(periods.len() * 2);
    for &(login, expiry) in periods {
        if (start..start + 24 * HOUR_MS).contains(&login) {
            hours[((login - start) / HOUR_MS) as usize].logins += 1;
        }
        changes.push((login.max(start), 1));
        changes.push((expiry, -1));
    }
    changes.sort_unstable();
    let mut count: i64 = 0;
    let mut i = 0;
    for (h, hour) in hours.iter_mut().enumerate() {
        let (from, to) = (start + h as i64 * HOUR_MS, start + (h as i64 + 1) * HOUR_MS);
        // What is in force as the hour starts.
        while i < changes.len() && changes[i].0 <= from {
            count += i64::from(changes[i].1);
            i += 1;
        }
        let mut peak = count;
        while i < changes.len() && changes[i].0 < to {
            count += i64::from(changes[i].1);
            peak = peak.max(count);
            i += 1;
        }
        hour.peak = peak.max(0) as u64;
    }
    hours
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_count_bindings_in_force_across_hours() {
        let h = |n: i64| n * HOUR_MS;
        let periods = [
            // From the day before into hour 1.
            (-h(1), h(1) + 10),
            // Two logins in hour 2, overlapping.
            (h(2) + 5, h(2) + 100),
            (h(2) + 50, h(5)),
            // One ending as another starts: never two at once.
            (h(7), h(8)),
            (h(8), h(9)),
        ];
        let hours = peaks(0, &periods);
        let got: Vec<(u64, u64)> = hours.iter().map(|r| (r.peak, r.logins)).collect();
        assert_eq!(got[0], (1, 0));
        assert_eq!(got[1], (1, 0));
        assert_eq!(got[2], (2, 2));
        assert_eq!(got[3], (1, 0));
        assert_eq!(got[4], (1, 0));
        assert_eq!(got[5], (0, 0));
        assert_eq!(got[7], (1, 1));
        assert_eq!(got[8], (1, 1));
        assert_eq!(got[9], (0, 0));
    }

    #[test]
    fn contacts_compare_without_their_parameters() {
        assert_eq!(
            bare("sip:1001@127.0.0.1:5061;transport=udp"),
            "sip:1001@127.0.0.1:5061"
        );
        assert_eq!(bare("<sip:1001@h>;expires=60"), "sip:1001@h");
    }
}
