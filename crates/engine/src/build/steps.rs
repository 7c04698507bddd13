//! The steps of a build: `worker_preparation`, then each configured step, with Buildbot's
//! rules for combining step results into the build result.

use std::collections::HashMap;

use config::{Condition, ShellOptions, StepConfig, StepKind};
use model::{Results, StepId};
use protocol::Value;
use serde_json::Value as Json;

use super::command::{args, str_list, Outcome, Sinks};
use super::logwriter::LogWriter;
use super::transfer::{DirectoryUpload, Download, Upload};
use super::untar::{Compression, Limits};
use super::BuildContext;

/// Runs every step; returns the build's result.
pub async fn run_all(ctx: &mut BuildContext) -> Results {
    let mut results = prepare(ctx).await;
    if results != Results::Success {
        return results;
    }
    let steps = ctx.builder.factory.steps.clone();
    let mut halted = false;
    for step in &steps {
        if halted && !step.common.always_run {
            continue;
        }
        let step_result = run_step(ctx, step).await;
        results = combine(results, step_result, step);
        match step_result {
            Results::Exception | Results::Retry | Results::Cancelled => halted = true,
            Results::Failure if step.common.halt_on_failure => halted = true,
            _ => {}
        }
        if ctx.stop.borrow().is_some() {
            halted = true;
        }
    }
    results
}

/// The build result after a step, with flunk/warn semantics.
fn combine(build: Results, step: Results, config: &StepConfig) -> Results {
    let c = &config.common;
    let effect = match step {
        Results::Success | Results::Skipped => Results::Success,
        Results::Warnings if c.flunk_on_warnings => Results::Failure,
        Results::Warnings if c.warn_on_warnings => Results::Warnings,
        Results::Warnings => Results::Success,
        Results::Failure if c.flunk_on_failure => Results::Failure,
        Results::Failure if c.warn_on_failure => Results::Warnings,
        Results::Failure => Results::Success,
        other => other,
    };
    build.worst(effect)
}

/// Step 0: makes sure the builder directory exists on the worker.
async fn prepare(ctx: &mut BuildContext) -> Results {
    let Some((id, _)) = begin_step(ctx, "worker_preparation", "preparing worker").await else {
        return Results::Exception;
    };
    let path = ctx.builder_path();
    let outcome = ctx
        .remote(
            "mkdir",
            args(vec![("paths", str_list(&[path]))]),
            Sinks {
                stdio: None,
                collect: false,
                transfer: None,
                extra_logs: None,
            },
        )
        .await;
    let result = shell_result(&outcome, &Default::default());
    finish_step(ctx, id, result, "worker ready", false).await;
    result
}

async fn begin_step(ctx: &mut BuildContext, name: &str, state: &str) -> Option<(StepId, String)> {
    let store = &ctx.shared.store;
    let (id, _number, unique) = match store.step_add(ctx.buildid, name, state).await {
        Ok(it) => it,
        Err(e) => {
            tracing::error!(build = %ctx.buildid, error = %e, "could not create step");
            return None;
        }
    };
    crate::events::step(&ctx.shared, id, "new").await;
    let _ = store.step_start(id, model::now()).await;
    crate::events::step(&ctx.shared, id, "started").await;
    Some((id, unique))
}

async fn finish_step(
    ctx: &mut BuildContext,
    id: StepId,
    results: Results,
    state: &str,
    hidden: bool,
) {
    let store = &ctx.shared.store;
    let state = match results {
        Results::Success => state.to_string(),
        other => format!("{state} ({})", other.name()),
    };
    let _ = store.step_set_state_string(id, &state).await;
    if let Err(e) = store.step_finish(id, results, hidden, model::now()).await {
        tracing::error!(step = %id, error = %e, "could not finish step");
    }
    crate::events::step(&ctx.shared, id, "finished").await;
}

fn truthy(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

fn props_json(ctx: &BuildContext) -> Json {
    let mut map = serde_json::Map::new();
    for (k, v, _) in ctx.properties.iter() {
        map.insert(k.to_string(), v.clone());
    }
    Json::Object(map)
}

fn condition(ctx: &BuildContext, c: &Condition, extra: Option<Results>) -> Result<bool, String> {
    match c {
        Condition::Always(b) => Ok(*b),
        Condition::Function(f) => {
            let mut call_args = vec![props_json(ctx)];
            if let Some(r) = extra {
                call_args.push(Json::from(r.code()));
            }
            ctx.runtime
                .functions
                .call(*f, &call_args)
                .map(|v| truthy(&v))
                .map_err(|e| e.to_string())
        }
    }
}

async fn run_step(ctx: &mut BuildContext, step: &StepConfig) -> Results {
    let running = step
        .common
        .description
        .as_ref()
        .map(|d| d.join(" "))
        .unwrap_or_else(|| step.common.name.clone());
    let Some((id, _name)) = begin_step(ctx, &step.common.name, &running).await else {
        return Results::Exception;
    };
    let done = step
        .common
        .description_done
        .as_ref()
        .map(|d| d.join(" "))
        .unwrap_or_else(|| running.clone());
    match condition(ctx, &step.common.do_step_if, None) {
        Ok(true) => {}
        Ok(false) => {
            finish_step(ctx, id, Results::Skipped, "skipped", false).await;
            return Results::Skipped;
        }
        Err(e) => {
            tracing::warn!(build = %ctx.buildid, error = %e, "doStepIf failed");
            finish_step(
                ctx,
                id,
                Results::Exception,
                &format!("doStepIf failed: {e}"),
                false,
            )
            .await;
            return Results::Exception;
        }
    }
    let (results, state) = match run_kind(ctx, id, &step.kind).await {
        Ok((r, state)) => (r, state.unwrap_or(done)),
        Err(e) => (Results::Exception, format!("exception: {e}")),
    };
    let hidden = condition(ctx, &step.common.hide_step_if, Some(results)).unwrap_or(false);
    finish_step(ctx, id, results, &state, hidden).await;
    results
}

type StepOutcome = Result<(Results, Option<String>), String>;

async fn run_kind(ctx: &mut BuildContext, step: StepId, kind: &StepKind) -> StepOutcome {
    match kind {
        StepKind::Shell(shell) => {
            let (outcome, _) = run_shell(ctx, step, shell, false).await?;
            Ok((shell_result(&outcome, &shell.decode_rc), None))
        }
        StepKind::Compile {
            shell,
            warning_pattern,
        } => {
            let (outcome, _) = run_shell(ctx, step, shell, true).await?;
            let mut results = shell_result(&outcome, &shell.decode_rc);
            let pattern = warning_pattern.as_deref().unwrap_or("^.*warning[: ].*");
            let re = regex::Regex::new(pattern).map_err(|e| format!("bad warningPattern: {e}"))?;
            let count = outcome
                .stdout
                .lines()
                .chain(outcome.stderr.lines())
                .filter(|l| re.is_match(l))
                .count();
            ctx.set_property(
                "warnings-count",
                Json::from(count),
                "WarningCountingShellCommand",
            )
            .await;
            if count > 0 && results == Results::Success {
                results = Results::Warnings;
            }
            Ok((results, Some(format!("compile ({count} warnings)"))))
        }
        StepKind::Test { shell } => {
            let (outcome, _) = run_shell(ctx, step, shell, true).await?;
            let results = shell_result(&outcome, &shell.decode_rc);
            let text = format!("{}{}", outcome.stdout, outcome.stderr);
            let passed = count_after(&text, "passed");
            let failed = count_after(&text, "failed");
            if let Some(p) = passed {
                ctx.set_property("tests-passed", Json::from(p), "Test")
                    .await;
            }
            if let Some(f) = failed {
                ctx.set_property("tests-failed", Json::from(f), "Test")
                    .await;
            }
            let state = match (passed, failed) {
                (Some(p), Some(f)) => Some(format!("test {p} passed {f} failed")),
                (Some(p), None) => Some(format!("test {p} passed")),
                _ => None,
            };
            Ok((results, state))
        }
        StepKind::SetProperty { property, value } => {
            let value = ctx.render(value)?;
            ctx.set_property(property, value, "SetProperty Step").await;
            Ok((Results::Success, Some(format!("Set {property}"))))
        }
        StepKind::SetPropertyFromCommand {
            shell,
            property,
            extract_fn,
            strip,
        } => {
            let (outcome, _) = run_shell(ctx, step, shell, true).await?;
            let results = shell_result(&outcome, &shell.decode_rc);
            if let Some(name) = property {
                let value = if *strip {
                    outcome.stdout.trim().to_string()
                } else {
                    outcome.stdout.clone()
                };
                ctx.set_property(name, Json::String(value), "SetPropertyFromCommand Step")
                    .await;
            }
            if let Some(f) = extract_fn {
                let call_args = [
                    Json::from(outcome.rc.unwrap_or(-1)),
                    Json::String(outcome.stdout.clone()),
                    Json::String(outcome.stderr.clone()),
                ];
                let value = ctx
                    .runtime
                    .functions
                    .call(*f, &call_args)
                    .map_err(|e| e.to_string())?;
                if let Json::Object(map) = value {
                    for (k, v) in map {
                        ctx.set_property(&k, v, "SetPropertyFromCommand Step").await;
                    }
                }
            }
            Ok((results, None))
        }
        StepKind::Git {
            repourl,
            branch,
            mode,
            method,
            workdir,
            codebase,
        } => {
            run_git(
                ctx,
                step,
                repourl,
                branch.as_ref(),
                mode,
                method.as_deref(),
                workdir.as_ref(),
                codebase,
            )
            .await
        }
        StepKind::FileUpload {
            workersrc,
            masterdest,
            workdir,
            maxsize,
            mode,
            keepstamp,
            url,
        } => {
            let src = ctx.render_text(workersrc)?;
            let dest_text = ctx.render_text(masterdest)?;
            let dest = ctx.shared.basedir.join(&dest_text);
            let path = worker_path(ctx, workdir.as_ref(), &src)?;
            let mut upload = Upload::new(dest, *mode);
            let mut stdio = LogWriter::create(&ctx.shared, step, "stdio", store::LogKind::Stdio)
                .await
                .map_err(|e| e.to_string())?;
            let a = args(vec![
                ("path", Value::from(path.as_str())),
                ("workersrc", Value::from(src.as_str())),
                ("blocksize", Value::from(262144)),
                ("maxsize", maxsize.map(Value::from).unwrap_or(Value::Nil)),
                ("keepstamp", Value::from(*keepstamp)),
            ]);
            let outcome = ctx
                .remote(
                    "upload_file",
                    a,
                    Sinks {
                        stdio: Some(&mut stdio),
                        collect: false,
                        transfer: Some(&mut upload),
                        extra_logs: None,
                    },
                )
                .await;
            stdio.finish(&ctx.shared).await;
            if let Some(url) = url {
                let _ = ctx
                    .shared
                    .store
                    .step_set_urls(step, &[(dest_text.clone(), url.clone())])
                    .await;
            }
            Ok((transfer_result(&outcome), Some(format!("uploading {src}"))))
        }
        StepKind::DirectoryUpload {
            workersrc,
            masterdest,
            workdir,
            maxsize,
            compress,
            url,
        } => {
            let src = ctx.render_text(workersrc)?;
            let dest_text = ctx.render_text(masterdest)?;
            let dest = ctx.shared.basedir.join(&dest_text);
            let path = worker_path(ctx, workdir.as_ref(), &src)?;
            let max_bytes = maxsize.unwrap_or(DIRECTORY_UPLOAD_MAX_BYTES);
            let staging = dest.parent().unwrap_or(&ctx.shared.basedir);
            let mut upload = DirectoryUpload::new(staging, max_bytes)?;
            let mut stdio = LogWriter::create(&ctx.shared, step, "stdio", store::LogKind::Stdio)
                .await
                .map_err(|e| e.to_string())?;
            let a = args(vec![
                ("path", Value::from(path.as_str())),
                ("workersrc", Value::from(src.as_str())),
                ("blocksize", Value::from(16384)),
                ("maxsize", maxsize.map(Value::from).unwrap_or(Value::Nil)),
                (
                    "compress",
                    compress.as_deref().map(Value::from).unwrap_or(Value::Nil),
                ),
            ]);
            let outcome = ctx
                .remote(
                    "upload_directory",
                    a,
                    Sinks {
                        stdio: Some(&mut stdio),
                        collect: false,
                        transfer: Some(&mut upload),
                        extra_logs: None,
                    },
                )
                .await;
            let mut results = transfer_result(&outcome);
            if results == Results::Success && upload.done {
                let extracted = unpack(upload, compress.as_deref(), dest, max_bytes).await;
                let text = match &extracted {
                    Ok(done) => format!(
                        "unpacked {} files ({} bytes) into {dest_text}\n",
                        done.files, done.bytes
                    ),
                    Err(err) => {
                        results = Results::Failure;
                        format!("upload of {src} refused: {err}\n")
                    }
                };
                stdio.write(&ctx.shared, Some('h'), &text).await;
            }
            stdio.finish(&ctx.shared).await;
            if let Some(url) = url {
                let _ = ctx
                    .shared
                    .store
                    .step_set_urls(step, &[(dest_text.clone(), url.clone())])
                    .await;
            }
            Ok((results, Some(format!("uploading {src}"))))
        }
        StepKind::FileDownload {
            mastersrc,
            workerdest,
            workdir,
            maxsize,
            mode,
        } => {
            let src = ctx.render_text(mastersrc)?;
            let dest = ctx.render_text(workerdest)?;
            let mut download = Download::file(ctx.shared.basedir.join(&src))?;
            download_to(
                ctx,
                step,
                &mut download,
                workdir.as_ref(),
                &dest,
                *maxsize,
                *mode,
            )
            .await
        }
        StepKind::StringDownload {
            contents,
            workerdest,
            workdir,
            mode,
        } => {
            let text = ctx.render_text(contents)?;
            let dest = ctx.render_text(workerdest)?;
            let mut download = Download::string(text);
            download_to(
                ctx,
                step,
                &mut download,
                workdir.as_ref(),
                &dest,
                None,
                *mode,
            )
            .await
        }
        StepKind::Trigger {
            scheduler_names,
            wait_for_finish,
            set_properties,
            update_sourcestamp: _,
        } => {
            let mut props = model::Properties::new();
            for (k, v) in set_properties {
                props.set(k, ctx.render(v)?, "Trigger");
            }
            let results = crate::schedulers::trigger(
                &ctx.shared,
                ctx.buildid,
                scheduler_names,
                props,
                &ctx.sourcestamps,
                *wait_for_finish,
            )
            .await?;
            Ok((
                results,
                Some(format!("triggered {}", scheduler_names.join(", "))),
            ))
        }
    }
}

/// Counts like "12 passed" in test output: the number right before `word`.
fn count_after(text: &str, word: &str) -> Option<u64> {
    let mut found = None;
    for line in text.lines() {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            if pair[1].starts_with(word) {
                if let Ok(n) = pair[0].parse::<u64>() {
                    found = Some(found.unwrap_or(0) + n);
                }
            }
        }
    }
    found
}

async fn download_to(
    ctx: &mut BuildContext,
    step: StepId,
    download: &mut Download,
    workdir: Option<&model::Renderable>,
    dest: &str,
    maxsize: Option<u64>,
    mode: Option<u32>,
) -> StepOutcome {
    let path = worker_path(ctx, workdir, dest)?;
    let mut stdio = LogWriter::create(&ctx.shared, step, "stdio", store::LogKind::Stdio)
        .await
        .map_err(|e| e.to_string())?;
    let a = args(vec![
        ("path", Value::from(path.as_str())),
        ("workerdest", Value::from(dest)),
        ("blocksize", Value::from(16384)),
        ("maxsize", maxsize.map(Value::from).unwrap_or(Value::Nil)),
        ("mode", mode.map(Value::from).unwrap_or(Value::Nil)),
    ]);
    let outcome = ctx
        .remote(
            "download_file",
            a,
            Sinks {
                stdio: Some(&mut stdio),
                collect: false,
                transfer: Some(download),
                extra_logs: None,
            },
        )
        .await;
    stdio.finish(&ctx.shared).await;
    Ok((
        transfer_result(&outcome),
        Some(format!("downloading to {dest}")),
    ))
}

fn worker_path(
    ctx: &BuildContext,
    workdir: Option<&model::Renderable>,
    rel: &str,
) -> Result<String, String> {
    let workdir = match workdir {
        Some(w) => ctx.render_text(w)?,
        None => "build".to_string(),
    };
    Ok(ctx
        .info
        .join(&[&super::builder_dir(&ctx.builder), &workdir, rel]))
}

/// The result of a shell command per `decodeRC` (default: 0 is SUCCESS, else FAILURE).
fn shell_result(
    outcome: &Outcome,
    decode_rc: &std::collections::BTreeMap<i64, Results>,
) -> Results {
    if outcome.lost {
        return Results::Retry;
    }
    if let Some(r) = outcome.stopped {
        return r;
    }
    if outcome.failure.is_some() {
        return Results::Exception;
    }
    let Some(rc) = outcome.rc else {
        return Results::Failure;
    };
    if decode_rc.is_empty() {
        return if rc == 0 {
            Results::Success
        } else {
            Results::Failure
        };
    }
    decode_rc.get(&rc).copied().unwrap_or(Results::Failure)
}

/// Largest `DirectoryUpload` (tar stream, and files it holds) when the step sets no `maxsize`.
const DIRECTORY_UPLOAD_MAX_BYTES: u64 = 4 << 30;
/// Most entries one `DirectoryUpload` archive may hold.
const DIRECTORY_UPLOAD_MAX_ENTRIES: u64 = 1_000_000;

/// Extracts a received directory archive off the async threads; the archive file is removed
/// when `upload` is dropped at the end.
async fn unpack(
    upload: DirectoryUpload,
    compress: Option<&str>,
    dest: std::path::PathBuf,
    max_bytes: u64,
) -> Result<super::untar::Extracted, String> {
    let compression = match compress {
        Some("gz") => Compression::Gzip,
        Some("bz2") => Compression::Bzip2,
        _ => Compression::None,
    };
    let limits = Limits {
        max_total_bytes: max_bytes,
        max_entries: DIRECTORY_UPLOAD_MAX_ENTRIES,
    };
    tokio::task::spawn_blocking(move || {
        super::untar::extract(upload.path(), compression, &dest, limits)
    })
    .await
    .map_err(|e| format!("extraction stopped: {e}"))?
}

fn transfer_result(outcome: &Outcome) -> Results {
    if outcome.lost {
        return Results::Retry;
    }
    if let Some(r) = outcome.stopped {
        return r;
    }
    if outcome.failure.is_some() {
        return Results::Exception;
    }
    match outcome.rc {
        Some(0) | None => Results::Success,
        Some(_) => Results::Failure,
    }
}

/// Renders a shell step's options into `shell` command arguments.
fn shell_command_args(ctx: &BuildContext, shell: &ShellOptions) -> Result<Value, String> {
    let command = match ctx.render(&shell.command)? {
        Json::String(s) => Value::from(s),
        Json::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| match i {
                    Json::String(s) => Value::from(s.as_str()),
                    other => Value::from(model_text(other)),
                })
                .collect(),
        ),
        other => return Err(format!("command must be a string or a list, got {other}")),
    };
    let workdir = match &shell.workdir {
        Some(w) => ctx.render_text(w)?,
        None => "build".to_string(),
    };
    let mut env = Vec::new();
    for (k, v) in ctx.builder.env.iter().chain(shell.env.iter()) {
        let value = ctx.render(v)?;
        let value = match value {
            Json::Null => Value::Nil,
            Json::Array(items) => {
                Value::Array(items.iter().map(|i| Value::from(model_text(i))).collect())
            }
            other => Value::from(model_text(&other)),
        };
        env.push((Value::from(k.as_str()), value));
    }
    let logfiles: Vec<(Value, Value)> = shell
        .logfiles
        .iter()
        .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
        .collect();
    let opt_f = |v: Option<f64>| v.map(Value::F64).unwrap_or(Value::Nil);
    Ok(args(vec![
        (
            "workdir",
            Value::from(
                ctx.info
                    .join(&[&super::builder_dir(&ctx.builder), &workdir]),
            ),
        ),
        ("command", command),
        ("env", Value::Map(env)),
        ("want_stdout", Value::from(true)),
        ("want_stderr", Value::from(true)),
        ("logfiles", Value::Map(logfiles)),
        ("timeout", Value::F64(shell.timeout.unwrap_or(1200.0))),
        ("maxTime", opt_f(shell.max_time)),
        ("max_lines", Value::Nil),
        ("sigtermTime", opt_f(shell.sigterm_time)),
        ("usePTY", Value::from(shell.use_pty.unwrap_or(false))),
        ("logEnviron", Value::from(true)),
        ("initial_stdin", Value::Nil),
        (
            "interruptSignal",
            Value::from(
                shell
                    .interrupt_signal
                    .clone()
                    .unwrap_or_else(|| "KILL".to_string()),
            ),
        ),
    ]))
}

fn model_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs a shell step with a `stdio` log (and `logfiles` logs).
async fn run_shell(
    ctx: &mut BuildContext,
    step: StepId,
    shell: &ShellOptions,
    collect: bool,
) -> Result<(Outcome, ()), String> {
    let a = shell_command_args(ctx, shell)?;
    let mut stdio = LogWriter::create(&ctx.shared, step, "stdio", store::LogKind::Stdio)
        .await
        .map_err(|e| e.to_string())?;
    let mut extra = HashMap::new();
    let outcome = ctx
        .remote(
            "shell",
            a,
            Sinks {
                stdio: Some(&mut stdio),
                collect,
                transfer: None,
                extra_logs: Some((&mut extra, step)),
            },
        )
        .await;
    stdio.finish(&ctx.shared).await;
    for (_, log) in extra {
        log.finish(&ctx.shared).await;
    }
    Ok((outcome, ()))
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[allow(clippy::too_many_arguments)]
async fn run_git(
    ctx: &mut BuildContext,
    step: StepId,
    repourl: &model::Renderable,
    branch: Option<&model::Renderable>,
    mode: &str,
    method: Option<&str>,
    workdir: Option<&model::Renderable>,
    codebase: &str,
) -> StepOutcome {
    let repo = ctx.render_text(repourl)?;
    let ss = ctx
        .sourcestamps
        .iter()
        .find(|s| s.codebase == codebase)
        .cloned();
    let branch = match ss.as_ref().and_then(|s| s.branch.clone()) {
        Some(b) => b,
        None => match branch {
            Some(b) => ctx.render_text(b)?,
            None => "HEAD".to_string(),
        },
    };
    let revision = ss.and_then(|s| s.revision);
    let mut script = String::from("set -e\n");
    if mode == "full" && matches!(method, Some("clobber") | Some("copy")) {
        script.push_str("find . -mindepth 1 -maxdepth 1 -exec rm -rf {} +\n");
    }
    script.push_str("if [ ! -d .git ]; then git init -q .; fi\n");
    let refspec = if branch == "HEAD" {
        "HEAD".to_string()
    } else {
        branch.clone()
    };
    script.push_str(&format!(
        "git fetch -f -t {} {}\n",
        sh_quote(&repo),
        sh_quote(&refspec)
    ));
    match &revision {
        Some(rev) => script.push_str(&format!("git checkout -f -q {}\n", sh_quote(rev))),
        None => script.push_str("git checkout -f -q FETCH_HEAD\n"),
    }
    if mode == "full" {
        match method {
            Some("fresh") => script.push_str("git clean -f -f -d -x\n"),
            Some("clean") | None => script.push_str("git clean -f -f -d\n"),
            _ => {}
        }
    }
    script.push_str("echo \"got_revision=$(git rev-parse HEAD)\"\n");
    let shell = ShellOptions {
        command: model::Renderable::string(script),
        workdir: workdir.cloned(),
        env: Default::default(),
        timeout: Some(1200.0),
        max_time: None,
        logfiles: Default::default(),
        decode_rc: Default::default(),
        use_pty: None,
        interrupt_signal: None,
        sigterm_time: None,
    };
    let (outcome, _) = run_shell(ctx, step, &shell, true).await?;
    let results = shell_result(&outcome, &Default::default());
    if results == Results::Success {
        if let Some(rev) = outcome
            .stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("got_revision="))
        {
            let rev = rev.trim().to_string();
            ctx.set_property("got_revision", Json::String(rev), "Git")
                .await;
        }
    }
    Ok((results, Some(format!("update {}", short(&repo)))))
}

fn short(repo: &str) -> &str {
    repo.rsplit('/').next().unwrap_or(repo)
}

#[cfg(test)]
mod tests {
    use super::count_after;

    #[test]
    fn counts_test_summaries() {
        assert_eq!(count_after("ran: 12 passed, 3 failed", "passed"), Some(12));
        assert_eq!(count_after("ran: 12 passed, 3 failed", "failed"), Some(3));
        assert_eq!(count_after("nothing here", "passed"), None);
    }
}
