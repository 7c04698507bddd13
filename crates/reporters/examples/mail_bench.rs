//! Benchmark driver for `bench/mail.sh`: N builds finish at once on a master with K
//! MailNotifiers (mode "all", default message) that send to an SMTP sink on 127.0.0.1.
//!
//! ```sh
//! cargo run --release -p reporters --example mail_bench -- DIR SMTP_PORT [BUILDS] [NOTIFIERS]
//! ```
//!
//! It prepares a SQLite master in DIR with BUILDS failed builds (each with a 200-line log),
//! starts the reporters, publishes every `builds/N/finished` event at the same instant, and
//! waits until the outbox has sent BUILDS × NOTIFIERS mails. It prints one JSON line with
//! the instant of publication (`t0`, epoch seconds) and when the outbox drained; the sink's
//! files give each mail's DATA time.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use model::{Properties, Results};
use store::outbox::OutboxState;

fn epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(port)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: mail_bench DIR SMTP_PORT [BUILDS] [NOTIFIERS]");
        std::process::exit(2);
    };
    let builds: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let notifiers: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let cfg = format!(
        r#"
c = BuildmasterConfig = {{}}
c['title'] = "Bench"
c['buildbotURL'] = "http://127.0.0.1:8010/"
c['workers'] = [Worker("w1", "pw")]
c['builders'] = [BuilderConfig(name="bench", workernames=["w1"], factory=BuildFactory())]
c['status'] = [MailNotifier(fromaddr="buildbot@example.org", mode="all",
                            sendToInterestedUsers=False,
                            extraRecipients=["list%d@example.org" % i],
                            relayhost="127.0.0.1", smtpPort={port})
               for i in range({notifiers})]
"#
    );
    let loaded = config::load_str("master.cfg", &cfg, &dir)?;
    let url = engine::database_url(&dir, None);
    let store = store::Store::connect(&url).await?;
    store.upgrade(&mut |_| {}).await?;
    let shared = engine::master::open(&dir, loaded).await?;
    let builder = *shared
        .runtime()
        .builder_ids
        .get("bench")
        .ok_or("no builder id")?;
    let log_text: String = (0..200)
        .map(|i| format!("oline {i} of the compiler's output\n"))
        .collect();
    let mut ids = Vec::with_capacity(builds);
    for _ in 0..builds {
        let now = model::now();
        let (_, requests) = store
            .buildset_add(&store::NewBuildset {
                reason: "bench".into(),
                external_idstring: None,
                properties: Properties::new(),
                sourcestamps: vec![store::NewSourceStamp::default()],
                builders: vec![builder],
                priority: 0,
                parent_buildid: None,
                parent_relationship: None,
                rebuilt_buildid: None,
                waited_for: false,
                submitted_at: now,
            })
            .await?;
        let (_, request) = requests.first().copied().ok_or("no request")?;
        let (id, _) = store
            .build_add(builder, request, None, shared.masterid, "failed", now)
            .await?;
        let (step, _, _) = store.step_add(id, "compile", "failed").await?;
        let (log, _) = store.log_add(step, "stdio", store::LogKind::Stdio).await?;
        store.log_append(log, &log_text).await?;
        store.log_finish(log).await?;
        store
            .step_finish(step, Results::Failure, false, now)
            .await?;
        store.build_finish(id, Results::Failure, now).await?;
        ids.push(id);
    }
    let tasks = reporters::start(shared.clone());
    let t0 = epoch();
    let publishing: Vec<_> = ids
        .iter()
        .map(|id| {
            let shared = shared.clone();
            let id = *id;
            tokio::spawn(async move { engine::events::build(&shared, id, "finished").await })
        })
        .collect();
    for p in publishing {
        p.await?;
    }
    let expected = (builds * notifiers) as i64;
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let mut recorded_at = None;
    loop {
        let (_, pending) = store
            .outbox_list(&[OutboxState::Pending, OutboxState::Failed], 1)
            .await?;
        let (_, sent) = store.outbox_list(&[OutboxState::Sent], 1).await?;
        if recorded_at.is_none() && pending + sent >= expected {
            recorded_at = Some(epoch());
        }
        if sent >= expected && pending == 0 {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("only {sent} of {expected} mails sent in 300 s").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = epoch();
    println!(
        "{}",
        serde_json::json!({
            "builds": builds,
            "notifiers": notifiers,
            "mails": expected,
            "t0": t0,
            "all_recorded_at": recorded_at,
            "drained_at": drained,
        })
    );
    for t in tasks {
        t.abort();
    }
    Ok(())
}
