//! Simulators of the telephony systems cdrhub receives from, for tests,
//! demonstrations and benchmarks.
//!
//! [`cti`] is a Unified CCX CTI server: it accepts CTI clients (cdrhub's
//! CTI source among them), opens their sessions, answers heartbeats, and
//! plays the call-event message flows of seed 003 to every open session.
//!
//! [`gateway`] is a set of VoIP port gateways reporting their logins and
//! call events to cdrhub over the `GWFEED/1` feed (seed 001).

pub mod cti;
pub mod gateway;
mod rng;
