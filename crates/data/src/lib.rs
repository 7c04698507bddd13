//! The Data API: paths and result specs turned into store calls, and control actions
