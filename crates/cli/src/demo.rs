//! `signalbox demo`: a master, a local worker and three builders, in one process.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

const DEMO_CFG: &str = include_str!("../assets/demo.cfg");

/// Creates the demo master if needed, starts it with a local worker, forces one build of
/// each builder, and runs until Ctrl-C.
pub fn run(dir: PathBuf, port: u16) -> Result<ExitCode> {
    crate::init_logging();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir)?;
    let cfg = dir.join("master.cfg");
    if !cfg.exists() {
        let password = format!(
            "{:x}",
            std::process::id() as u64 * 7919 + model::now() as u64
        );
        std::fs::write(
            &cfg,
            DEMO_CFG
                .replace("@PASSWORD@", &password)
                .replace("@PORT@", &port.to_string()),
        )?;
        println!("created a demo master in {}", dir.display());
    }
    crate::master_cmd::upgrade_master(&dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_demo(&dir, port))?;
    Ok(ExitCode::SUCCESS)
}

async fn run_demo(dir: &Path, port: u16) -> Result<()> {
    let loaded = config::load(&dir.join("master.cfg")).map_err(|e| anyhow::anyhow!("{e}"))?;
    let worker_cfg = loaded
        .config
        .workers
        .first()
        .cloned()
        .context("the demo config has no worker")?;
    let builders: Vec<String> = loaded
        .config
        .builders
        .iter()
        .map(|b| b.name.clone())
        .collect();
    let master_dir = dir.to_path_buf();
    let master = tokio::spawn(async move { crate::master_cmd::run_master(&master_dir).await });
    // Wait for the master to be up before the worker dials it.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect("127.0.0.1:9989")
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let worker_dir = dir.join("worker");
    std::fs::create_dir_all(&worker_dir)?;
    let opts = worker::WorkerOptions {
        master: "127.0.0.1:9989".to_string(),
        name: worker_cfg.name.clone(),
        password: worker_cfg.password.clone(),
        basedir: worker_dir,
        use_tls: false,
        tls_ca: None,
        max_retries: None,
    };
    tokio::spawn(async move {
        if let Err(e) = worker::run(opts, std::future::pending::<()>()).await {
            tracing::error!(error = %e, "demo worker stopped");
        }
    });
    force_all(port, &builders).await;
    println!(
        "\nSignalbox demo is running: http://127.0.0.1:{port}/api/v2/builds  (Ctrl-C to stop)\n"
    );
    match master.await {
        Ok(result) => result,
        Err(e) => Err(anyhow::anyhow!("master task failed: {e}")),
    }
}

/// Forces one build of each demo builder through the REST API, as a user would.
async fn force_all(port: u16, builders: &[String]) {
    let url = format!("http://127.0.0.1:{port}/api/v2/forceschedulers/force");
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(_) => return,
    };
    for _ in 0..100 {
        let body = serde_json::json!({"jsonrpc": "2.0", "method": "force", "id": 1, "params": {"builderNames": builders, "reason": "demo start"}});
        match client.post(&url).json(&body).send().await {
            Ok(r) if r.status().is_success() => return,
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    tracing::warn!("could not force the demo builds; use the force form instead");
}
