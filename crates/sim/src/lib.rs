//! Simulators of the telephony systems cdrhub receives from, for tests,
//! demonstrations and benchmarks.
//!
//! [`cti`] is a Unified CCX CTI server: it accepts CTI clients (cdrhub's
//! CTI source among them), opens their sessions, answers heartbeats, and
//! plays the call-event message flows of seed 003 to every open session.

pub mod cti;
mod rng;
