//! master.cfg loading: a preprocessor, Starlark evaluation with Buildbot's names predeclared,
//! and a typed [`MasterConfig`].
#![warn(missing_docs)]

mod types;

pub use types::*;
