//! Pure decoders for every format cdrhub receives: bytes in, records out, no
//! I/O and no clock (DESIGN.md, "Data flow" step 2). A decoder never panics.

pub mod cms;
pub mod csv_cdr;
pub mod cti;
pub mod events;
pub mod feed;
pub mod hep;
pub mod radius;
pub mod sip;
