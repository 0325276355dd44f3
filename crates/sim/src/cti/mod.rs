//! A simulated Unified CCX CTI server (reference/cti-protocol.md B.1–B.3;
//! the message flows of seed 003).
//!
//! [`Server::start`] listens for CTI clients. Each client opens a session
//! with OPEN_REQ; the server answers OPEN_CONF (a standby node: FAILURE_CONF
//! E_CTI_SERVER_NOT_MASTER, then closes), HEARTBEAT_CONF to each
//! HEARTBEAT_REQ and CLOSE_CONF to CLOSE_REQ. Every open session is a
//! bridge-mode client: it gets every event of every call, encoded in the
//! protocol version it asked for (one-byte floating tags below version 20,
//! two-byte from 20 on).
//!
//! Calls start at the configured rate once a session is open, and pause
//! while none is; each plays one of the [`flows`] with its own timing.

mod config;
pub mod flows;
mod generator;
mod server;
mod session;

pub use config::{
    ConfigError, DEFAULT_BASE_CALL_ID, DEFAULT_PORT, FIRST_EXTENSION, FlowKind, FlowMix, SimConfig,
};
pub use server::{Server, SimHandle, SimStats, tls_acceptor};
