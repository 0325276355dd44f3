//! One module per source (DESIGN.md, "Layout"): its config and the listener
//! or handler that frames bytes and hands them to its decoder.

pub mod cms;
pub mod cti;
pub mod feed;
pub mod radius;
