//! Signalbox's own worker: connection to a master and the command runners
