//! HTTP: REST API, status pages, change hooks, events
