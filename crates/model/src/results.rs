//! Build and step result codes, numbered as Buildbot numbers them.

/// The result of a step, build, build request or buildset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Results {
    /// 0: everything passed.
    Success,
    /// 1: passed with warnings.
    Warnings,
    /// 2: failed.
    Failure,
    /// 3: not run.
    Skipped,
    /// 4: something went wrong outside the build's own commands.
    Exception,
    /// 5: the worker was lost; the request runs again.
    Retry,
    /// 6: stopped or cancelled by someone.
    Cancelled,
}

impl Results {
    /// Every result, in code order.
    pub const ALL: [Results; 7] = [
        Results::Success,
        Results::Warnings,
        Results::Failure,
        Results::Skipped,
        Results::Exception,
        Results::Retry,
        Results::Cancelled,
    ];

    /// The integer code stored in the database and sent over REST.
    pub fn code(self) -> i64 {
        match self {
            Results::Success => 0,
            Results::Warnings => 1,
            Results::Failure => 2,
            Results::Skipped => 3,
            Results::Exception => 4,
            Results::Retry => 5,
            Results::Cancelled => 6,
        }
    }

    /// The result for a code, or `None` for codes Buildbot does not define (such as -1).
    pub fn from_code(code: i64) -> Option<Results> {
        Results::ALL.get(usize::try_from(code).ok()?).copied()
    }

    /// The lower-case name Buildbot uses (`Results[x]` in config functions).
    pub fn name(self) -> &'static str {
        match self {
            Results::Success => "success",
            Results::Warnings => "warnings",
            Results::Failure => "failure",
            Results::Skipped => "skipped",
            Results::Exception => "exception",
            Results::Retry => "retry",
            Results::Cancelled => "cancelled",
        }
    }

    /// How bad a result is when combining: higher is worse (CANCELLED is worst, SKIPPED best).
    fn severity(self) -> u8 {
        match self {
            Results::Skipped => 0,
            Results::Success => 1,
            Results::Warnings => 2,
            Results::Failure => 3,
            Results::Exception => 4,
            Results::Retry => 5,
            Results::Cancelled => 6,
        }
    }

    /// The worse of two results, as a buildset combines its requests.
    pub fn worst(self, other: Results) -> Results {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// True for results that count as a failed build on status pages.
    pub fn is_bad(self) -> bool {
        !matches!(
            self,
            Results::Success | Results::Warnings | Results::Skipped
        )
    }
}

impl std::fmt::Display for Results {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for r in Results::ALL {
            assert_eq!(Results::from_code(r.code()), Some(r));
        }
        assert_eq!(Results::from_code(-1), None);
        assert_eq!(Results::from_code(7), None);
    }

    #[test]
    fn worst_follows_buildbot_order() {
        assert_eq!(Results::Success.worst(Results::Failure), Results::Failure);
        assert_eq!(Results::Skipped.worst(Results::Success), Results::Success);
        assert_eq!(Results::Cancelled.worst(Results::Retry), Results::Cancelled);
        assert_eq!(
            Results::Exception.worst(Results::Failure),
            Results::Exception
        );
    }
}
