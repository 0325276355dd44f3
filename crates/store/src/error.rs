/// Errors of the store. Each maps to one HTTP status in the server.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take writes or reads now (locked, disk full, writer
    /// gone): the sender should retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The query itself is wrong (a bad cursor, an impossible filter).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The change would break a uniqueness rule (a name already taken).
    #[error("{0}")]
    Conflict(String),
    /// The data directory or database could not be opened.
    #[error("cannot open store: {0}")]
    Open(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}
