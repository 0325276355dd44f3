//! A day's statistics from the rollups (`rollup.rs`): a few hundred rows
//! however many calls the day had.

#[allow(unused_imports)]
use crate::db::{self, Db, OptionalExt, Result, args};
use cdrhub_model::Timestamp;

use crate::{DayStats, HourStats, SenderDayStats, StoreError};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// `AND source = ? AND sender = ?` for the filters given, with their values.
fn pair_filter(
    source: Option<&str>,
    sender: Option<&str>,
    first: usize,
) -> (String, Vec<db::Value>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    for (column, value) in [("source", source), ("sender", sender)] {
        if let Some(v) = value {
            args.push(db::Value::Text(v.to_owned()));
            sql.push_str(&format!(" AND {column} = ?{}", first + args.len() - 1));
        }
    }
    (sql, args)
}

/// The day (UTC) that contains `day`, for one source and sender or all.
pub(crate) fn day_stats(
    conn: Db<'_>,
    day: Timestamp,
    source: Option<&str>,
    sender: Option<&str>,
) -> Result<DayStats, StoreError> {
    let start = day.0.div_euclid(1000).div_euclid(DAY) * DAY;
    let end = start + DAY;
    let (filter, extra) = pair_filter(source, sender, 3);
    let mut values = vec![db::Value::Int(start), db::Value::Int(end)];
    values.extend(extra);
    let bound = db::refs(&values);

    let mut hours: Vec<HourStats> = (0..24)
        .map(|h| HourStats {
            hour: Timestamp((start + h * HOUR) * 1000),
            ..HourStats::default()
        })
        .collect();
    let stmt = &format!(
        "SELECT hour, sum(attempts), sum(answered), sum(video_attempts), sum(video_answered) \
         FROM stats_hourly WHERE hour >= ?1 AND hour < ?2{filter} GROUP BY hour"
    );
    conn.query_each(stmt, &bound, |r| {
        let hour: i64 = r.get(0)?;
        let h = &mut hours[((hour - start) / HOUR).clamp(0, 23) as usize];
        h.attempts = r.get(1)?;
        h.answered = r.get(2)?;
        h.video_attempts = r.get(3)?;
        h.video_answered = r.get(4)?;
        Ok(())
    })?;

    let stmt = &format!(
        "SELECT source, sender, sum(attempts), sum(answered), sum(busy), sum(no_answer), \
         sum(rejected), sum(failed), sum(cancelled), sum(talk_s) \
         FROM stats_hourly WHERE hour >= ?1 AND hour < ?2{filter} \
         GROUP BY source, sender ORDER BY source, sender"
    );
    let senders = conn.query_map(stmt, &bound, |r| {
        Ok(SenderDayStats {
            source: r.get(0)?,
            sender: r.get(1)?,
            attempts: r.get(2)?,
            answered: r.get(3)?,
            busy: r.get(4)?,
            no_answer: r.get(5)?,
            rejected: r.get(6)?,
            failed: r.get(7)?,
            cancelled: r.get(8)?,
            talk_s: r.get(9)?,
            ..SenderDayStats::default()
        }
        .with_ratios())
    })?;

    // In progress when the day began: the level at the end of each
    // source and sender's last day with changes before this one.
    let (filter_level, extra_level) = pair_filter(source, sender, 2);
    let mut level = [0i64; 4];
    let stmt = &format!(
        "SELECT sum(attempts), sum(connected), sum(video_attempts), sum(video_connected) \
         FROM stats_level l WHERE day = (SELECT max(day) FROM stats_level m \
         WHERE m.source = l.source AND m.sender = l.sender AND m.day < ?1){filter_level}"
    );
    let mut level_args = vec![db::Value::Int(start)];
    level_args.extend(extra_level);
    conn.query_row(stmt, &db::refs(&level_args), |r| {
        for (i, l) in level.iter_mut().enumerate() {
            *l = r.get::<Option<i64>>(i)?.unwrap_or(0);
        }
        Ok(())
    })?;

    // Sweep the day's second-by-second changes; each hour's peak starts at
    // the level the hour began with.
    let mut peaks = [[0i64; 4]; 24];
    let stmt = &format!(
        "SELECT at, sum(a_start - a_end), sum(c_start - c_end), sum(va_start - va_end), \
         sum(vc_start - vc_end) FROM stats_events WHERE at >= ?1 AND at < ?2{filter} \
         GROUP BY at ORDER BY at"
    );
    let mut hour = 0usize;
    peaks[0] = level;
    conn.query_each(stmt, &bound, |r| {
        let at: i64 = r.get(0)?;
        let this_hour = ((at - start) / HOUR).clamp(0, 23) as usize;
        while hour < this_hour {
            hour += 1;
            peaks[hour] = level;
        }
        for (i, l) in level.iter_mut().enumerate() {
            *l += r.get::<i64>(i + 1)?;
            peaks[hour][i] = peaks[hour][i].max(*l);
        }
        Ok(())
    })?;
    while hour < 23 {
        hour += 1;
        peaks[hour] = level;
    }
    for (h, p) in hours.iter_mut().zip(peaks) {
        h.peak_attempts = p[0];
        h.peak_connected = p[1];
        h.video_peak_attempts = p[2];
        h.video_peak_connected = p[3];
    }
    Ok(DayStats {
        day: Timestamp(start * 1000),
        hours,
        senders,
    })
}

/// Now: what is in progress, this hour's figures, and the newest calls in
/// progress.
pub(crate) fn live_status(
    conn: Db<'_>,
    now: Timestamp,
    active_limit: usize,
) -> Result<crate::LiveStatus, StoreError> {
    // The level at the end of each pair's last day with changes is the
    // level now (no change is later).
    let mut level = [0i64; 4];
    conn.query_row(
        "SELECT sum(attempts), sum(connected), sum(video_attempts), sum(video_connected) \
         FROM stats_level l WHERE day = (SELECT max(day) FROM stats_level m \
         WHERE m.source = l.source AND m.sender = l.sender)",
        args![],
        |r| {
            for (i, l) in level.iter_mut().enumerate() {
                *l = r.get::<Option<i64>>(i)?.unwrap_or(0);
            }
            Ok(())
        },
    )?;
    let today = day_stats(conn, now, None, None)?;
    let hour = ((now.0.div_euclid(1000) - today.day.0 / 1000) / HOUR).clamp(0, 23) as usize;
    let active_calls = super::read::active_calls(conn, active_limit)?;
    Ok(crate::LiveStatus {
        attempts: level[0],
        connected: level[1],
        video_attempts: level[2],
        video_connected: level[3],
        this_hour: today.hours[hour].clone(),
        active_calls,
    })
}
