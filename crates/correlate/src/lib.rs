//! Pure state machines that turn decoded source records into the normalized
//! model (DESIGN.md, "Data flow" step 4). No I/O: the store loads a call's
//! state, applies records here, and writes the summary back.

pub mod cms;
pub mod cti;
pub mod events;
pub mod feed;
pub mod radius;
pub mod sip;
