//! master.cfg loading: preprocessor, Starlark globals, typed MasterConfig
