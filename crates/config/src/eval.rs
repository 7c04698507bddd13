//! Running Starlark with limits, and turning its errors into one-line [`ConfigError`]s.

use std::cell::Cell;
use std::time::{Duration, Instant};

use starlark::codemap::FileSpanRef;
use starlark::environment::Module;
use starlark::eval::Evaluator;
use starlark::syntax::Dialect;
use starlark::values::Heap;

use crate::error::ConfigError;

/// The Starlark dialect of `master.cfg`: `def`, `lambda`, top-level `for`/`if`, f-strings.
pub(crate) fn dialect() -> Dialect {
    Dialect {
        enable_f_strings: true,
        enable_types: starlark::syntax::DialectTypes::Disable,
        ..Dialect::Extended
    }
}

/// How much work one evaluation may do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Starlark checks the budget every 1000 instructions; this is the number of checks.
    pub(crate) checks: u64,
    /// Wall-clock limit.
    pub(crate) wall: Duration,
    /// Deepest call stack.
    pub(crate) max_stack: usize,
    /// Largest Starlark heap, in bytes.
    pub(crate) max_heap: usize,
}

/// The budget for evaluating `master.cfg` itself.
pub(crate) const LOAD_BUDGET: Budget = Budget {
    checks: 20_000,
    wall: Duration::from_secs(5),
    max_stack: 200,
    max_heap: 256 << 20,
};

/// The budget for one call of a user function at run time.
pub(crate) const CALL_BUDGET: Budget = Budget {
    checks: 10_000,
    wall: Duration::from_secs(2),
    max_stack: 200,
    max_heap: 64 << 20,
};

/// What an evaluation under a [`Budget`] observed: the last statement's line, and which
/// limit stopped it, if any.
#[derive(Default)]
pub(crate) struct Guard {
    line: Cell<u32>,
    tripped: Cell<Option<&'static str>>,
}

impl Guard {
    /// Records the statement about to run (installed as the evaluator's statement hook).
    pub(crate) fn enter(&self, span: FileSpanRef) {
        self.line.set(span.resolve_span().begin.line as u32 + 1);
    }
}

/// Installs the budget on an evaluator; `guard` learns which limit stopped it.
pub(crate) fn limit<'v, 'a>(
    eval: &mut Evaluator<'v, 'a, '_>,
    heap: Heap<'v>,
    budget: Budget,
    guard: &'a Guard,
) {
    // Setting the stack size fails only if it was set before; a fresh evaluator has none.
    let _ = eval.set_max_callstack_size(budget.max_stack);
    let checks = Cell::new(0u64);
    let deadline = Instant::now() + budget.wall;
    eval.set_check_cancelled(Box::new(move || {
        checks.set(checks.get() + 1);
        let reason = if checks.get() > budget.checks {
            "instruction limit reached"
        } else if heap.allocated_bytes() > budget.max_heap {
            "memory limit reached"
        } else if Instant::now() > deadline {
            "deadline reached"
        } else {
            return false;
        };
        guard.tripped.set(Some(reason));
        true
    }));
}

/// Runs `f`, turning a panic inside Starlark into an error instead of taking the master down.
pub(crate) fn catch<T>(
    file: &str,
    f: impl FnOnce() -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let message = match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
                (Some(s), _) => s.to_string(),
                (None, Some(s)) => s.clone(),
                (None, None) => "unknown panic".to_string(),
            };
            Err(ConfigError::Eval {
                file: file.to_string(),
                line: 0,
                message: format!("evaluation failed: {message}"),
            })
        }
    }
}

/// A parse error as a [`ConfigError::Syntax`].
pub(crate) fn syntax_error(file: &str, err: starlark::Error) -> ConfigError {
    let (line, message) = describe(&err);
    ConfigError::Syntax {
        file: file.to_string(),
        line,
        message,
    }
}

/// An evaluation error as a [`ConfigError`].
pub(crate) fn eval_error(file: &str, err: starlark::Error, guard: &Guard) -> ConfigError {
    let (line, message) = describe(&err);
    let line = match line {
        0 => guard.line.get(),
        line => line,
    };
    if let Some(reason) = guard.tripped.get() {
        return ConfigError::Timeout {
            file: file.to_string(),
            line,
            message: reason.to_string(),
        };
    }
    if message.contains("Starlark call stack overflow") || message.contains("stack overflow") {
        return ConfigError::Timeout {
            file: file.to_string(),
            line,
            message: "call stack too deep".to_string(),
        };
    }
    ConfigError::Eval {
        file: file.to_string(),
        line,
        message,
    }
}

/// The 1-based line and one-line message of a Starlark error.
fn describe(err: &starlark::Error) -> (u32, String) {
    let line = match err.span() {
        Some(span) => span.resolve_span().begin.line as u32 + 1,
        None => err
            .call_stack()
            .frames
            .iter()
            .rev()
            .find_map(|frame| frame.location.as_ref())
            .map(|span| span.resolve_span().begin.line as u32 + 1)
            .unwrap_or(0),
    };
    let text = err.without_diagnostic().to_string();
    let mut message = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    // Python words for Starlark's messages about unknown names.
    if let Some(name) = message
        .strip_prefix("Variable `")
        .and_then(|rest| rest.split('`').next())
    {
        if message.contains("not found") {
            message = format!("name '{name}' is not defined");
        }
    }
    (line, message)
}

/// Sets `__file__` for configs that compute paths from it.
pub(crate) fn predeclare(module: &Module<'_>, file: &str) {
    module.set("__file__", module.heap().alloc(file));
}
