//! The build master: event bus, schedulers, change sources, build runner and worker manager
