//! The processor time a run costs: the service's process and the PostgreSQL backends serving
//! its database, read from `/proc` before and after the measured part. Per request, it is
//! steadier than throughput on a shared machine: another tenant's load slows a run without
//! adding to the work each request does. Linux only; elsewhere nothing is read.

use std::collections::BTreeMap;

use serde::Serialize;

/// What to sample: a service's process and the database its backends serve.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    /// The service's process id.
    pub(crate) pid: u32,
    /// The name of its database, as PostgreSQL's process titles show it.
    pub(crate) database: Option<String>,
}

/// Clock ticks of user and system time, by process, at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    service: u64,
    backends: BTreeMap<u32, u64>,
}

/// The processor time of a run, per request served, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub(crate) struct PerRequest {
    /// In the service's process.
    pub(crate) service_ms: f64,
    /// In the PostgreSQL backends of its database (none sampled: 0).
    pub(crate) postgres_ms: f64,
}

/// `/proc` reports times in `USER_HZ`, which Linux fixes for user space on every architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// User plus system ticks of a process, from `/proc/<pid>/stat`.
fn ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields count from the last ')'.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
    // utime and stime are the 14th and 15th fields, the 12th and 13th after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Whether a process title is that of a PostgreSQL backend serving `database`: `postgres:
/// [<cluster>:] <user> <database> <client> <state>`.
fn serves(title: &str, database: &str) -> bool {
    let Some(rest) = title.strip_prefix("postgres: ") else { return false };
    let mut words = rest.split_whitespace();
    let first = words.next().unwrap_or_default();
    // With `cluster_name` set, the title starts with it and a colon.
    let user = if first.ends_with(':') { words.next() } else { Some(first) };
    user.is_some() && words.next() == Some(database)
}

/// The PostgreSQL backends serving `database`, with their ticks.
fn backends(database: &str) -> BTreeMap<u32, u64> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return BTreeMap::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|title| {
                serves(String::from_utf8_lossy(&title).trim_end_matches('\0'), database)
            })
        })
        .filter_map(|pid| Some((pid, ticks(pid)?)))
        .collect()
}

impl Probe {
    /// The ticks of the service and of its database's backends now.
    pub(crate) fn sample(&self) -> Sample {
        Sample {
            service: ticks(self.pid).unwrap_or(0),
            backends: self.database.as_deref().map(backends).unwrap_or_default(),
        }
    }
}

impl Sample {
    /// The time spent between `self` and `later`, per one of `requests`. A backend that
    /// started in between counts whole; one that ended in between is lost (pools keep theirs
    /// open, so neither is common).
    #[expect(clippy::cast_precision_loss, reason = "tick counts stay far below 2^52")]
    pub(crate) fn per_request(&self, later: &Self, requests: u64) -> Option<PerRequest> {
        if requests == 0 {
            return None;
        }
        let postgres: u64 = later
            .backends
            .iter()
            .map(|(pid, after)| after.saturating_sub(self.backends.get(pid).copied().unwrap_or(0)))
            .sum();
        let ms = |ticks: u64| ticks as f64 * 1000.0 / TICKS_PER_SECOND / requests as f64;
        Some(PerRequest {
            service_ms: ms(later.service.saturating_sub(self.service)),
            postgres_ms: ms(postgres),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_titles_are_matched_by_database() {
        assert!(serves("postgres: 15/main: postgres tg_ours 127.0.0.1(5012) idle", "tg_ours"));
        assert!(serves("postgres: postgres tg_ours 127.0.0.1(5012) SELECT", "tg_ours"));
        assert!(!serves("postgres: 15/main: postgres tg_ours_2 127.0.0.1(5012) idle", "tg_ours"));
        assert!(!serves("postgres: 15/main: checkpointer", "checkpointer"));
        assert!(!serves("invite-server serve", "serve"));
    }

    #[test]
    fn this_process_has_ticks_and_costs_divide_by_requests() {
        assert!(ticks(std::process::id()).is_some());
        let before = Sample { service: 100, backends: BTreeMap::from([(1, 50), (2, 10)]) };
        let after = Sample { service: 300, backends: BTreeMap::from([(1, 150), (3, 100)]) };
        // 200 ticks = 2 s over 1,000 requests; the backends' 100 + 100 ticks likewise.
        assert_eq!(
            before.per_request(&after, 1000),
            Some(PerRequest { service_ms: 2.0, postgres_ms: 2.0 })
        );
        assert_eq!(before.per_request(&after, 0), None);
    }
}
