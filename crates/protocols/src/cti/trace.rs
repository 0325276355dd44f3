//! Unified CCX MIVR high-level text traces (seed 003, Example 1): the
//! messages a trace shows, for `cdrhub import cti-trace`. (Being written.)
