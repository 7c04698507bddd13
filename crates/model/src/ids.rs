//! Newtype ids, so that a step id never lands where a build id belongs.

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type!(
    /// A builder's row id.
    BuilderId,
    /// A build's global id.
    BuildId,
    /// A step's global id.
    StepId,
    /// A log's global id.
    LogId,
    /// A change's id.
    ChangeId,
    /// A source stamp's id.
    SourceStampId,
    /// A buildset's id.
    BuildsetId,
    /// A build request's id.
    BuildRequestId,
    /// A worker's row id.
    WorkerId,
    /// A master's row id.
    MasterId,
    /// A scheduler's row id.
    SchedulerId,
    /// A change source's row id.
    ChangeSourceId,
    /// A project's row id.
    ProjectId,
    /// A user's uid.
    UserId,
);
