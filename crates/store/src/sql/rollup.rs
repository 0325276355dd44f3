//! Hourly statistics kept up to date as calls are written (issue 3, point
//! 5), so a day's report reads a few hundred rows instead of its calls.
//!
//! Each written call contributes to three tables of `calls.db`:
//! - `stats_hourly`: per source, sender and hour of the call's start, the
//!   attempts, answered calls, their video share, the end dispositions and
//!   the talk time;
//! - `stats_events`: per source, sender and second, how many attempts and
//!   connected calls (and video ones) began and ended then: the peaks of an
//!   hour come from sweeping these, exactly, not from samples;
//! - `stats_level`: per source, sender and day, how many were in progress
//!   at the end of the day, so a sweep starts from the right level without
//!   reading the days before.
//!
//! A call written again (it was in progress, or merged with another) first
//! takes back what it added last time. Times are kept to the second, the
//! resolution of CMS timestamps; concurrency counts half-open intervals
//! [start, end), so a call ending in the second another starts does not
//! overlap it.

#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};
use std::collections::HashMap;

use cdrhub_model::{Call, Disposition};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// What one written call adds to the statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Contribution {
    source: String,
    sender: String,
    /// Unix seconds.
    started: i64,
    answered: Option<i64>,
    ended: Option<i64>,
    video: bool,
    disposition: Option<Disposition>,
    talk_s: i64,
}

impl Contribution {
    pub(crate) fn of(call: &Call) -> Contribution {
        Contribution {
            source: call.source.clone(),
            sender: call.sender.clone(),
            started: call.started_at.0.div_euclid(1000),
            answered: call.answered_at.map(|t| t.0.div_euclid(1000)),
            ended: call.ended_at.map(|t| t.0.div_euclid(1000)),
            video: call.media.as_deref() == Some("video"),
            disposition: call.disposition,
            talk_s: call.talk_s.unwrap_or(0),
        }
    }

    /// The contribution of a call row as written (`source, sender,
    /// started_at, answered_at, ended_at, media, disposition, talk_s`).
    pub(crate) fn from_row(r: &db::Row<'_>, first: usize) -> Result<Contribution> {
        let ms = |i: usize| -> Result<Option<i64>> {
            Ok(r.get::<Option<i64>>(first + i)?.map(|t| t.div_euclid(1000)))
        };
        Ok(Contribution {
            source: r.get(first)?,
            sender: r.get(first + 1)?,
            started: ms(2)?.unwrap_or(0),
            answered: ms(3)?,
            ended: ms(4)?,
            video: r.get::<Option<String>>(first + 5)?.as_deref() == Some("video"),
            disposition: r
                .get::<Option<String>>(first + 6)?
                .and_then(|d| d.parse().ok()),
            talk_s: r.get::<Option<i64>>(first + 7)?.unwrap_or(0),
        })
    }
}

/// The columns `Contribution::from_row` reads, in order.
pub(crate) const CONTRIBUTION_COLUMNS: &str =
    "source, sender, started_at, answered_at, ended_at, media, disposition, talk_s";

/// Per hour: attempts, answered, video attempts, video answered, busy, no
/// answer, rejected, failed, cancelled, talk seconds.
type HourCounts = [i64; 10];
/// Per second: attempts began, ended; connected began, ended; the same four
/// for video.
type Events = [i64; 8];

/// The changes of one flush, added up before they are written.
#[derive(Default)]
pub(crate) struct Rollup {
    hourly: HashMap<(String, String, i64), HourCounts>,
    events: HashMap<(String, String, i64), Events>,
}

impl Rollup {
    /// Adds (`sign` 1) or takes back (-1) a call's contribution.
    pub(crate) fn add(&mut self, c: &Contribution, sign: i64) {
        let pair = |at: i64| (c.source.clone(), c.sender.clone(), at);
        let hour = self
            .hourly
            .entry(pair(c.started.div_euclid(HOUR) * HOUR))
            .or_default();
        let answered = c.answered.is_some();
        hour[0] += sign;
        hour[1] += sign * i64::from(answered);
        hour[2] += sign * i64::from(c.video);
        hour[3] += sign * i64::from(c.video && answered);
        let slot = match c.disposition {
            Some(Disposition::Busy) => Some(4),
            Some(Disposition::NoAnswer) => Some(5),
            Some(Disposition::Rejected) => Some(6),
            Some(Disposition::Failed) => Some(7),
            Some(Disposition::Cancelled) => Some(8),
            Some(Disposition::Answered) | None => None,
        };
        if let Some(slot) = slot {
            hour[slot] += sign;
        }
        hour[9] += sign * c.talk_s;

        let video = usize::from(c.video) * 4;
        let mut event = |at: i64, index: usize| {
            let e = self.events.entry(pair(at)).or_default();
            e[index] += sign;
            if video > 0 {
                e[index + video] += sign;
            }
        };
        event(c.started, 0);
        if let Some(end) = c.ended {
            event(end, 1);
        }
        if let Some(answered) = c.answered {
            event(answered, 2);
            if let Some(end) = c.ended {
                event(end.max(answered), 3);
            }
        }
    }

    /// Writes the changes: hourly counts, events, and the level at the end
    /// of every day from the first changed one on.
    pub(crate) fn write(self, tx: Db<'_>) -> Result<()> {
        let hourly = "INSERT INTO stats_hourly (source, sender, hour, attempts, answered, video_attempts, \
             video_answered, busy, no_answer, rejected, failed, cancelled, talk_s) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
             ON CONFLICT (source, sender, hour) DO UPDATE SET attempts = stats_hourly.attempts + ?4, \
             answered = stats_hourly.answered + ?5, video_attempts = stats_hourly.video_attempts + ?6, \
             video_answered = stats_hourly.video_answered + ?7, busy = stats_hourly.busy + ?8, no_answer = stats_hourly.no_answer + ?9, \
             rejected = stats_hourly.rejected + ?10, failed = stats_hourly.failed + ?11, cancelled = stats_hourly.cancelled + ?12, \
             talk_s = stats_hourly.talk_s + ?13";
        for ((source, sender, hour), h) in &self.hourly {
            if h.iter().all(|v| *v == 0) {
                continue;
            }
            tx.execute(
                hourly,
                args![
                    source, sender, hour, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8],
                    h[9]
                ],
            )?;
        }
        let events = "INSERT INTO stats_events (source, sender, at, a_start, a_end, c_start, c_end, \
             va_start, va_end, vc_start, vc_end) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
             ON CONFLICT (source, sender, at) DO UPDATE SET a_start = stats_events.a_start + ?4, \
             a_end = stats_events.a_end + ?5, c_start = stats_events.c_start + ?6, c_end = stats_events.c_end + ?7, \
             va_start = stats_events.va_start + ?8, va_end = stats_events.va_end + ?9, vc_start = stats_events.vc_start + ?10, \
             vc_end = stats_events.vc_end + ?11";
        // Net change of the levels (attempts, connected, video attempts,
        // video connected) per source, sender and day.
        let mut levels: HashMap<(String, String, i64), [i64; 4]> = HashMap::new();
        for ((source, sender, at), e) in &self.events {
            if e.iter().all(|v| *v == 0) {
                continue;
            }
            tx.execute(
                events,
                args![
                    source, sender, at, e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]
                ],
            )?;
            let l = levels
                .entry((source.clone(), sender.clone(), at.div_euclid(DAY) * DAY))
                .or_default();
            for (k, level) in l.iter_mut().enumerate() {
                *level += e[2 * k] - e[2 * k + 1];
            }
        }
        let create = "INSERT INTO stats_level (source, sender, day, attempts, connected, \
             video_attempts, video_connected) \
             SELECT ?1, ?2, ?3, coalesce(max(attempts), 0), coalesce(max(connected), 0), \
             coalesce(max(video_attempts), 0), coalesce(max(video_connected), 0) FROM \
             (SELECT * FROM stats_level WHERE source = ?1 AND sender = ?2 AND day < ?3 \
              ORDER BY day DESC LIMIT 1) AS last WHERE true ON CONFLICT DO NOTHING";
        let update = "UPDATE stats_level SET attempts = attempts + ?4, connected = connected + ?5, \
             video_attempts = video_attempts + ?6, video_connected = video_connected + ?7 \
             WHERE source = ?1 AND sender = ?2 AND day >= ?3";
        for ((source, sender, day), l) in levels {
            if l.iter().all(|v| *v == 0) {
                continue;
            }
            tx.execute(create, args![source, sender, day])?;
            tx.execute(update, args![source, sender, day, l[0], l[1], l[2], l[3]])?;
        }
        Ok(())
    }
}
