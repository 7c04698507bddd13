//! Master subcommands: create-master, start, stop, reconfig, checkconfig, upgrade-master.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const SAMPLE_CFG: &str = include_str!("../assets/master.cfg.sample");
const ROBOTS: &str = "User-agent: *\nDisallow: /waterfall\nDisallow: /grid\nDisallow: /tgrid\nDisallow: /console\nDisallow: /builders\nDisallow: /changes\nDisallow: /buildslaves\nDisallow: /workers\nDisallow: /one_line_per_build\nDisallow: /json\nDisallow: /png\nDisallow: /rss\nDisallow: /atom\nDisallow: /api\nDisallow: /change_hook\n";

/// `create-master DIR [--db URL]`.
pub fn create_master(dir: &Path, db: Option<&str>) -> Result<ExitCode> {
    if dir.join("master.cfg").exists() {
        bail!(
            "{} already holds a master.cfg; pick another directory or edit that one",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("public_html"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("templates"))?;
    let db_line = db.unwrap_or("sqlite:///state.sqlite");
    std::fs::write(
        dir.join("master.cfg"),
        SAMPLE_CFG.replace("sqlite:///state.sqlite", db_line),
    )?;
    std::fs::write(dir.join("public_html/robots.txt"), ROBOTS)?;
    println!("created master in {}", dir.display());
    upgrade_master(dir)?;
    println!(
        "next: edit {}/master.cfg, then run `signalbox start {}`",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `upgrade-master DIR`: creates or migrates the schema, showing each step.
pub fn upgrade_master(dir: &Path) -> Result<ExitCode> {
    let loaded = load_config(&dir.join("master.cfg"))?;
    let url = engine::database_url(dir, loaded.config.db_url.as_deref());
    runtime()?.block_on(async {
        let store = store::Store::connect(&url)
            .await
            .with_context(|| format!("cannot open the database at {}", redact(&url)))?;
        let mut progress = |step: &str| println!("  {step}");
        println!("upgrading the database at {}", redact(&url));
        store
            .upgrade(&mut progress)
            .await
            .context("upgrade failed")?;
        println!("database is up to date");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Hides a password in a database URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn load_config(path: &Path) -> Result<config::LoadedConfig> {
    if !path.exists() {
        bail!(
            "{} does not exist: create a master with `signalbox create-master DIR`",
            path.display()
        );
    }
    config::load(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `checkconfig [DIR|FILE]`.
pub fn checkconfig(path: Option<&Path>) -> Result<ExitCode> {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let file = if path.is_dir() {
        path.join("master.cfg")
    } else {
        path
    };
    let basedir = file.parent().unwrap_or(Path::new("."));
    match config::load(&file) {
        Ok(loaded) => {
            let c = &loaded.config;
            if let Err(e) = buildbot_ui(c, basedir) {
                eprintln!("{}: {e:#}", file.display());
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "{} is valid: {} builders, {} workers, {} schedulers",
                file.display(),
                c.builders.len(),
                c.workers.len(),
                c.schedulers.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Buildbot's web UI, if the config turns it on; an error says how to install it.
fn buildbot_ui(
    config: &config::MasterConfig,
    dir: &Path,
) -> Result<Option<www::buildbot_ui::BuildbotUi>> {
    let Some(ui) = &config.www.buildbot_ui else {
        return Ok(None);
    };
    let located = www::buildbot_ui::locate(ui, dir)?;
    tracing::info!(
        path = located.base(),
        static_dir = %located.static_dir().display(),
        "serving Buildbot's web UI"
    );
    Ok(Some(located))
}

fn pid_file(dir: &Path) -> PathBuf {
    dir.join("signalbox.pid")
}

fn read_pid(dir: &Path) -> Option<i32> {
    std::fs::read_to_string(pid_file(dir))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// `start DIR [--nodaemon]`.
pub fn start(dir: &Path, nodaemon: bool) -> Result<ExitCode> {
    let dir =
        std::fs::canonicalize(dir).with_context(|| format!("{} does not exist", dir.display()))?;
    if let Some(pid) = read_pid(&dir) {
        if alive(pid) {
            bail!(
                "a master is already running in {} (pid {pid}); stop it with `signalbox stop`",
                dir.display()
            );
        }
    }
    if nodaemon {
        match std::env::var_os(crate::rotating_log::ENV) {
            Some(_) => crate::rotating_log::init(&dir),
            None => crate::init_logging(),
        }
        runtime()?.block_on(run_master(&dir))?;
        return Ok(ExitCode::SUCCESS);
    }
    let loaded = load_config(&dir.join("master.cfg"))?;
    buildbot_ui(&loaded.config, &dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("master.log"))
        .context("cannot open master.log")?;
    let exe = std::env::current_exe().context("cannot find the signalbox executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("start")
        .arg(&dir)
        .arg("--nodaemon")
        .env(crate::rotating_log::ENV, "1")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().context("cannot start the master process")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the master exited ({status}) during start-up; see {}",
                dir.join("master.log").display()
            );
        }
        if read_pid(&dir) == Some(child.id() as i32) {
            println!(
                "master started in {} (pid {}); log: {}",
                dir.display(),
                child.id(),
                dir.join("master.log").display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the master did not finish starting within 60 s; see {}",
        dir.join("master.log").display()
    )
}

/// Runs the master in this process until SIGTERM/SIGINT; SIGHUP reloads the config.
pub async fn run_master(dir: &Path) -> Result<()> {
    let loaded = load_config(&dir.join("master.cfg"))?;
    let listen = loaded.config.www.listen.clone();
    // Located once, before anything starts: a missing UI is a start-up error, and changing
    // the option takes a restart (the router is built once).
    let buildbot_ui = buildbot_ui(&loaded.config, dir)?.map(std::sync::Arc::new);
    let master = engine::Master::start(dir, loaded)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let shared = master.shared.clone();
    // Status targets (MailNotifier…): record to the outbox, deliver from it.
    let reporter_tasks = reporters::start(shared.clone());
    if let Some(listen) = listen {
        let addr = match listen {
            config::Listen::Tcp { port, interface } => {
                format!("{}:{port}", interface.unwrap_or_else(|| "127.0.0.1".into()))
            }
            config::Listen::Unix(p) => {
                bail!("serving the web on a unix socket ({p}) is not supported yet")
            }
            config::Listen::Tls { port, .. } => {
                bail!("the web port ({port}) cannot serve TLS itself: use tcp: and a TLS proxy in front")
            }
        };
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(url = %format!("http://{addr}/"), "web server listening");
        let state = www::AppState {
            shared: shared.clone(),
            buildbot_ui,
        };
        tokio::spawn(async move {
            if let Err(e) = www::serve(state, listener).await {
                tracing::error!(error = %e, "web server failed");
            }
        });
    }
    std::fs::write(pid_file(dir), format!("{}\n", std::process::id()))
        .context("cannot write signalbox.pid")?;
    wait_for_signals(&shared).await;
    tracing::info!(
        running = shared.running_builds(),
        "stopping: waiting for running builds (signal again to stop at once)"
    );
    let second = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    };
    tokio::select! {
        _ = master.shutdown(Duration::from_secs(24 * 3600)) => {}
        _ = second => tracing::warn!("second signal: stopping now"),
    }
    for task in reporter_tasks {
        task.abort();
    }
    let _ = std::fs::remove_file(pid_file(dir));
    tracing::info!("master stopped");
    Ok(())
}

async fn wait_for_signals(shared: &std::sync::Arc<engine::Shared>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    // A clean shutdown asked from the web (`cleanShutdown`) begins the stop itself.
    let mut stopping = shared.stopping();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => return,
            _ = hup.recv() => {
                if let Err(e) = engine::reconfig::reconfig(shared).await {
                    tracing::error!(error = %e, "reconfig failed; the previous configuration stays in force");
                }
            }
        }
    }
}

/// `stop DIR`.
pub fn stop(dir: &Path) -> Result<ExitCode> {
    let Some(pid) = read_pid(dir) else {
        println!("no master is running in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    if !alive(pid) {
        let _ = std::fs::remove_file(pid_file(dir));
        println!(
            "no master is running in {} (removed a stale pid file)",
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .context("cannot signal the master")?;
    println!("waiting for master {pid} to finish its builds and stop…");
    while alive(pid) {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("master stopped");
    Ok(ExitCode::SUCCESS)
}

/// `reconfig DIR`: checks the config, then tells the master to reload it.
pub fn reconfig(dir: &Path) -> Result<ExitCode> {
    load_config(&dir.join("master.cfg"))?;
    let Some(pid) = read_pid(dir).filter(|p| alive(*p)) else {
        bail!("no master is running in {}", dir.display());
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .context("cannot signal the master")?;
    println!("asked master {pid} to reload its configuration; see master.log for the result");
    Ok(ExitCode::SUCCESS)
}
