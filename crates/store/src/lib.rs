//! The durable store of cdrhub (DESIGN.md, "Data flow" steps 3 and 5): the
//! journal that deduplicates and keeps every accepted record, the correlated
//! calls and legs, gaps and per-sender statistics, and the queries over them.
//!
//! [`Store`] is the one interface the server and the CLI use; [`SqliteStore`]
//! is the embedded implementation. Writes go through one writer thread that
//! commits batches from many senders together (group commit) and answers each
//! submission only after its commit; a correlator thread derives calls and
//! legs from the committed records.

mod db;
mod error;
pub mod postgres;
mod sql;
mod sqlite;
mod types;
pub mod wire;

pub use error::StoreError;
pub use sql::SqlStore;
pub use sqlite::{
    BackupSummary, SqliteAccounts, SqliteBackend, SqliteOptions, SqliteStore, Synchronous, backup,
    pending_restore, restore, stage_restore,
};
pub use types::*;

use cdrhub_model::Timestamp;
use std::future::Future;
use std::pin::Pin;

/// The answer to a submission: resolves once the records are committed.
pub type Ack = Pin<Box<dyn Future<Output = Result<IngestOutcome, StoreError>> + Send>>;

/// What every store offers. Reads are blocking calls: call them from a
/// blocking thread (`spawn_blocking`), never directly on the async runtime.
/// Calls and legs read reflect every record acknowledged before the read.
pub trait Store: Send + Sync + 'static {
    /// Queues decoded records for the journal and the correlator. The returned
    /// future resolves after the commit; only then may the sender be acknowledged.
    fn submit(&self, batch: IngestBatch) -> Ack;
    /// Counts a document that was refused before it reached the journal.
    fn record_rejected(&self, source: &str, sender: &str, reason: &str);
    fn list_calls(&self, filter: &CallFilter) -> Result<CallPage, StoreError>;
    /// Calls matching `filter` (its cursor aside) sorted by `sort`, `limit`
    /// of them after skipping `offset`, with the counts of matching and of
    /// all calls.
    fn search_calls(
        &self,
        filter: &CallFilter,
        sort: CallSort,
        descending: bool,
        offset: u64,
    ) -> Result<CallSearch, StoreError>;
    fn get_call(&self, id: &str) -> Result<Option<CallDetail>, StoreError>;
    /// Ends a call whose end records never came, at `at`, on behalf of
    /// `actor`. The end is kept with the journal, so it survives rebuilding
    /// the calls; end records that come later take its place.
    fn force_end(&self, call_id: &str, at: Timestamp, actor: &str) -> Result<ForceEnd, StoreError>;
    /// What is in progress now, this hour so far, and up to `active_limit`
    /// calls in progress.
    fn live_status(&self, now: Timestamp, active_limit: usize) -> Result<LiveStatus, StoreError>;
    /// The newest records received, of one sender or all, newest first.
    fn recent_records(
        &self,
        sender: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RecentRecord>, StoreError>;
    /// The hourly statistics of the UTC day containing `day`, for one
    /// source or sender or all (issue 3, point 5), from the rollups.
    fn day_stats(
        &self,
        day: Timestamp,
        source: Option<&str>,
        sender: Option<&str>,
    ) -> Result<DayStats, StoreError>;
    fn senders(&self) -> Result<Vec<SenderStats>, StoreError>;
    /// Calls that ended in a period, in the order of their end (exports,
    /// webhooks), once every record acknowledged before is reflected.
    /// Each with the time it was found by (its end, or when it was written).
    fn ended_calls(
        &self,
        query: &EndedCallsQuery,
    ) -> Result<Vec<(Timestamp, cdrhub_model::Call)>, StoreError>;
    /// SIP bindings in force at `now` (issue 6): extension, contact,
    /// where it registered from, login time and expiry.
    fn sip_registrations(
        &self,
        now: Timestamp,
        sender: Option<&str>,
    ) -> Result<Vec<SipRegistration>, StoreError>;
    /// Each hour of the UTC day starting at `day`: the peak of SIP
    /// bindings in force at once and the logins (seed 002).
    fn register_hours(
        &self,
        day: Timestamp,
        sender: Option<&str>,
    ) -> Result<Vec<RegisterHour>, StoreError>;
    /// Every gateway (issue 5): those of the event feed with their last
    /// login, and the RADIUS gateways that have sent accounting.
    fn gateways(&self) -> Result<Vec<GatewayInfo>, StoreError>;
    /// The gateway log, newest first.
    fn gateway_log(&self, filter: &GatewayLogFilter) -> Result<GatewayLogPage, StoreError>;
    /// The newest call events of a feed gateway (or all), newest first.
    fn gateway_events(
        &self,
        gateway: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GatewayEvent>, StoreError>;
    /// The seed's CDR report of one gateway over a period, oldest first.
    fn gateway_report(&self, query: &GatewayReportQuery) -> Result<GatewayReport, StoreError>;
    /// The contact-centre reports of the UTC day containing `day` (issue
    /// 4, point 4), of one CTI server or all.
    fn contact_centre_day(
        &self,
        day: Timestamp,
        sender: Option<&str>,
    ) -> Result<ContactCentreDay, StoreError>;
    /// Removes what `request` names, a little at a time so ingest goes on,
    /// calling `progress` with the counts so far after each step.
    fn prune(
        &self,
        request: &PruneRequest,
        progress: &mut dyn FnMut(&PruneReport),
    ) -> Result<PruneReport, StoreError>;
    /// Sizes of the databases and the free space beside them.
    fn storage(&self) -> Result<StorageStatus, StoreError>;
    fn gaps(&self, filter: &GapFilter) -> Result<Vec<Gap>, StoreError>;
    /// Totals for `/metrics`.
    fn totals(&self) -> Result<StoreTotals, StoreError>;
    /// Ok when the store can read and its writer is alive.
    fn check_health(&self) -> Result<(), StoreError>;
    /// Users, API tokens and the audit log.
    fn accounts(&self) -> &dyn Accounts;
    /// A consistent backup of the journal, accounts and settings (see
    /// [`backup`]), as an open file already removed from the directory it
    /// was written in: reading it is all that is left to do.
    fn backup_file(&self) -> Result<(std::fs::File, BackupSummary), StoreError>;
    /// A new file beside the database for a backup being uploaded (on the
    /// disk that will hold it).
    fn restore_upload_path(&self) -> std::path::PathBuf;
    /// Checks an uploaded backup (written to a `restore_upload_path`) and
    /// keeps it to be restored at the next start, on behalf of `actor`.
    fn stage_restore(
        &self,
        upload: &std::path::Path,
        actor: &str,
    ) -> Result<BackupSummary, StoreError>;
    /// Whether a backup waits to be restored at the next start.
    fn restore_pending(&self) -> bool;
    /// Locks the processes sharing this store's database take to divide
    /// work (issue 8: bus partitions among workers), on a connection of
    /// their own. `None`: the database is this process's alone, and so is
    /// all the work.
    fn claims(&self) -> Result<Option<Box<dyn Claims>>, StoreError> {
        Ok(None)
    }
}

/// Named locks shared by the processes of one database, held until
/// released or until the process (its connection) ends. Blocking calls.
pub trait Claims: Send {
    /// Takes `key` unless another process holds it; whether it is ours.
    fn try_take(&mut self, key: i64) -> Result<bool, StoreError>;
    fn release(&mut self, key: i64) -> Result<(), StoreError>;
    /// How many keys of `first..=last` some process holds.
    fn held(&mut self, first: i64, last: i64) -> Result<u32, StoreError>;
    /// False once the connection that held the locks was lost: they are
    /// all gone then, and these claims are of no more use.
    fn alive(&mut self) -> bool;
}

/// Console and API accounts. Blocking calls, like the reads of [`Store`].
/// Only hashes of passwords and tokens reach the store.
pub trait Accounts: Send + Sync {
    fn user_count(&self) -> Result<u64, StoreError>;
    /// Fails with [`StoreError::Conflict`] when the name is taken.
    fn add_user(
        &self,
        name: &str,
        role: cdrhub_model::Role,
        password_hash: &str,
    ) -> Result<(), StoreError>;
    fn user(&self, name: &str) -> Result<Option<User>, StoreError>;
    /// Every user, by name.
    fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Disables or enables a user; a disabled user's sessions stop at once.
    /// Whether the user exists.
    fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError>;
    /// Replaces a user's password hash and ends the user's sessions but
    /// `keep_session`. Whether the user exists.
    fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        keep_session: Option<&[u8]>,
    ) -> Result<bool, StoreError>;
    fn set_language(&self, name: &str, language: &str) -> Result<bool, StoreError>;
    /// Every API token (names and roles; their secrets are not kept).
    fn tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
    /// Fails with [`StoreError::Conflict`] when the name is taken.
    fn add_token(
        &self,
        name: &str,
        role: cdrhub_model::Role,
        token_hash: &[u8],
    ) -> Result<(), StoreError>;
    /// Whether a token of that name existed.
    fn revoke_token(&self, name: &str) -> Result<bool, StoreError>;
    /// The token whose SHA-256 is `token_hash`.
    fn token(&self, token_hash: &[u8]) -> Result<Option<ApiToken>, StoreError>;
    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Audit entries, newest first, with the count of those matching.
    fn audit_log(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError>;

    /// Keeps a new session; only the hash of its cookie is stored.
    fn create_session(
        &self,
        id_hash: &[u8],
        user: &str,
        csrf: &str,
        client_ip: Option<&str>,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// The session, if it exists, has not expired and its user is enabled.
    fn session(&self, id_hash: &[u8], now: Timestamp) -> Result<Option<Session>, StoreError>;
    fn delete_session(&self, id_hash: &[u8]) -> Result<(), StoreError>;

    /// Counts a failed login from `client_ip` and blocks the address for
    /// `block_minutes` once `block_after` failures are counted. A block that
    /// has ended starts the count again.
    fn record_login_failure(
        &self,
        client_ip: &str,
        login_id: &str,
        now: Timestamp,
        block_after: u32,
        block_minutes: u32,
    ) -> Result<LoginFailures, StoreError>;
    /// Until when the address is blocked, if it is.
    fn blocked_until(
        &self,
        client_ip: &str,
        now: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError>;
    /// Forgets the address's failures (a successful login).
    fn clear_login_failures(&self, client_ip: &str) -> Result<(), StoreError>;
    fn blocked_ips(&self, now: Timestamp) -> Result<Vec<BlockedIp>, StoreError>;
    /// Lifts a block; whether there was one.
    fn unblock(&self, client_ip: &str) -> Result<bool, StoreError>;

    fn setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;
}
