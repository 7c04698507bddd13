//! The status pages in a real headless Chromium, driven over the DevTools protocol: every
//! page in light and dark mode and at phone width, with a screenshot of each under
//! `target/tmp/pages-screenshots/`, assertions on the DOM (dark colours, no sideways scroll on
//! a phone, no injected markup, no request leaving the master, keyboard focus), a running
//! build's cell turning green without a reload, and no console error anywhere.
//!
//! Chromium is Debian's `chromium` (`scripts/test` installs it); without it the test says so
//! and passes, since nothing else can stand in for a browser.

mod harness;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::browser::{chromium, Browser};
use harness::{wait_for, Db, TestMaster, TestWorker};
use serde_json::{json, Value};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['title'] = "Browser <i>test</i>"
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1", max_builds=4)]
c['db'] = {'db_url': "@DB_URL@"}

ok = BuildFactory()
ok.addStep(ShellCommand(name="greet", command="printf '\\033[32mgreen\\033[0m <script>alert(4)</script>\\nerror: boom\\nplain\\n'"))
ok.addStep(SetProperty(property="evil", value="<svg onload=alert(3)>"))

bad = BuildFactory()
bad.addStep(ShellCommand(name="fails", command="echo oops >&2; exit 3"))

slow = BuildFactory()
slow.addStep(ShellCommand(name="wait", command="while [ ! -e '@DIR@/go' ]; do sleep 0.1; done"))

c['builders'] = [
    BuilderConfig(name="ok", workernames=["w1"], factory=ok, tags=["fast"]),
    BuilderConfig(name="bad", workernames=["w1"], factory=bad, tags=["slow"]),
    BuilderConfig(name="evil<b>x</b>", workernames=["w1"], factory=ok),
    BuilderConfig(name="slow", workernames=["w1"], factory=slow),
]
c['schedulers'] = [
    AnyBranchScheduler(name="any", builderNames=["ok", "bad", "evil<b>x</b>"]),
    ForceScheduler(name="force", builderNames=["ok", "bad", "evil<b>x</b>", "slow"]),
]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
                         change_hook_dialects={'base': True},
                         authz=Authz(forceBuild=True))]
"#;

/// Every HTML page of seed 002 with data behind it.
const PAGES: [&str; 17] = [
    "/",
    "/about",
    "/builders",
    "/builders/ok",
    "/builders/evil%3Cb%3Ex%3C%2Fb%3E",
    "/builders/ok/builds/1",
    "/builders/ok/builds/1/steps/greet",
    "/builders/ok/builds/1/steps/greet/logs/stdio",
    "/waterfall",
    "/grid",
    "/tgrid",
    "/console",
    "/changes",
    "/changes/1",
    "/buildslaves",
    "/one_line_per_build",
    "/buildstatus?builder=ok&number=1",
];

/// How a page is looked at.
struct Mode {
    name: &'static str,
    width: u32,
    height: u32,
    phone: bool,
    dark: bool,
}

const MODES: [Mode; 4] = [
    Mode {
        name: "light",
        width: 1280,
        height: 900,
        phone: false,
        dark: false,
    },
    Mode {
        name: "dark",
        width: 1280,
        height: 900,
        phone: false,
        dark: true,
    },
    Mode {
        name: "phone",
        width: 390,
        height: 844,
        phone: true,
        dark: false,
    },
    Mode {
        name: "phone-dark",
        width: 390,
        height: 844,
        phone: true,
        dark: true,
    },
];

/// What the page reports about itself, read in the page by `Runtime.evaluate`.
const PROBE: &str = r#"JSON.stringify({
  title: document.title,
  main: !!document.querySelector("main#main"),
  skip: !!document.querySelector("a.skip[href='#main']"),
  bg: getComputedStyle(document.body).backgroundColor,
  sideways: document.documentElement.scrollWidth - window.innerWidth,
  foreign: performance.getEntriesByType("resource").map(e => e.name)
    .filter(n => !n.startsWith(location.origin)),
  scripts: [...document.scripts].map(s => s.getAttribute("src")),
  injected: document.querySelectorAll("b, i, u, img[src='x'], svg[onload], [onerror]").length,
  unnamed_links: [...document.querySelectorAll("a[href]")]
    .filter(a => !a.textContent.trim() && !a.getAttribute("aria-label") && !a.title).length,
  live: document.body.dataset.liveBuilders || null,
  cells: document.querySelectorAll("[data-cell]").length,
})"#;

#[test]
fn pages_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!("chromium is not installed: browser test skipped (scripts/test installs it)");
        return;
    };
    let master = TestMaster::start(Db::Sqlite, "browser", CFG);
    let _worker = TestWorker::start(&master, "w1", "pw1");
    post_change(&master);
    master.wait_finished_builds(3, Duration::from_secs(120));

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pages-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let mut browser = Browser::launch(&chromium);

    for mode in &MODES {
        set_mode(&mut browser, mode);
        for path in PAGES {
            browser.visit(&master.url(path));
            let probe = probe(&mut browser);
            let at = format!("{path} ({})", mode.name);
            assert!(
                probe["title"]
                    .as_str()
                    .is_some_and(|t| t.contains("Signalbox")),
                "{at}: title {probe}"
            );
            assert_eq!(probe["main"], true, "{at}: no <main id=main>");
            assert_eq!(probe["skip"], true, "{at}: no skip link");
            assert_eq!(
                probe["injected"], 0,
                "{at}: injected markup became elements"
            );
            assert_eq!(probe["unnamed_links"], 0, "{at}: links without text");
            assert_eq!(probe["foreign"], json!([]), "{at}: requests off the master");
            assert_eq!(
                probe["scripts"],
                json!(["/pages/static/live.js"]),
                "{at}: scripts other than live.js"
            );
            let bg = probe["bg"].as_str().unwrap_or_default();
            let expected_bg = if mode.dark {
                "rgb(21, 24, 27)"
            } else {
                "rgb(255, 255, 255)"
            };
            assert_eq!(bg, expected_bg, "{at}: background");
            if mode.phone {
                assert!(
                    probe["sideways"].as_i64().is_some_and(|px| px <= 0),
                    "{at}: the page scrolls sideways on a phone: {probe}"
                );
            }
            browser.screenshot(&shots.join(format!("{}-{}.png", mode.name, slug(path))));
        }
    }

    // Keyboard: the first Tab lands on the skip link, which is then visible.
    set_mode(&mut browser, &MODES[0]);
    browser.visit(&master.url("/waterfall"));
    browser.key_tab();
    let focused = browser.eval("document.activeElement.className");
    assert_eq!(focused, "skip", "first Tab focus");

    // Live: a running build's cell turns green, without a reload.
    master.force("force", &["slow"]);
    let running = wait_for(Duration::from_secs(60), "the slow build to run", || {
        let builds = master.get("api/v2/builds?complete=false");
        builds["builds"][0]["buildid"].as_i64()
    });
    browser.visit(&master.url("/waterfall"));
    let cell = format!("document.querySelector('[data-cell=\"build-{running}\"]').className");
    let before = browser.eval(&cell);
    assert!(before.contains("running"), "before: {before}");
    browser.eval("window.notReloaded = 'yes'");
    browser.screenshot(&shots.join("live-before.png"));
    std::fs::write(master.dir.path().join("go"), "").expect("release the slow build");
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let class = browser.eval(&cell);
        if class.contains("success") || Instant::now() > deadline {
            break class;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    browser.screenshot(&shots.join("live-after.png"));
    assert!(
        after.contains("success"),
        "the cell did not change: {after}\n{}",
        master.log()
    );
    assert_eq!(
        browser.eval("String(window.notReloaded)"),
        "yes",
        "reloaded"
    );
    let box_class = browser.eval(&format!(
        "document.querySelector('[data-cell=\"builder-{}\"]').className",
        master.get(&format!("api/v2/builds/{running}"))["builds"][0]["builderid"]
    ));
    assert!(
        box_class.contains("success") && !box_class.contains("is-running"),
        "builder box: {box_class}"
    );

    // A build that starts while the page is open gets its row, still without a reload.
    std::fs::remove_file(master.dir.path().join("go")).expect("hold the next slow build");
    master.force("force", &["slow"]);
    let second = wait_for(
        Duration::from_secs(60),
        "the second slow build to run",
        || {
            let builds = master.get("api/v2/builds?complete=false");
            builds["builds"][0]["buildid"].as_i64()
        },
    );
    let new_cell = format!(
        "(document.querySelector('[data-cell=\"build-{second}\"]') || {{className: 'absent'}}).className"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let appeared = loop {
        let class = browser.eval(&new_cell);
        if class.contains("running") || Instant::now() > deadline {
            break class;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        appeared.contains("running"),
        "the new build's row: {appeared}"
    );
    assert_eq!(
        browser.eval("String(window.notReloaded)"),
        "yes",
        "reloaded"
    );
    std::fs::write(master.dir.path().join("go"), "").expect("release the slow build");
    master.wait_finished_builds(5, Duration::from_secs(60));

    let errors = browser.drain_errors();
    assert!(errors.is_empty(), "console errors:\n{}", errors.join("\n"));
    eprintln!("screenshots in {}", shots.display());
}

fn post_change(master: &TestMaster) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args([
            "--data-urlencode",
            "author=Mallory <u>who</u> <script>alert(1)</script>",
        ])
        .args([
            "--data-urlencode",
            "comments=fix <img src=x onerror=alert(2)>",
        ])
        .args(["--data-urlencode", "revision=abc123"])
        .args(["--data-urlencode", "branch=main"])
        .args(["--data-urlencode", "repository=https://example.org/r.git"])
        .args(["--data-urlencode", "project=proj"])
        .arg(master.url("change_hook/base"))
        .output()
        .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        master.log()
    );
}

/// `/builders/ok?x=1` as `builders_ok_x_1`, for file names.
fn slug(path: &str) -> String {
    let slug: String = path
        .trim_start_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if slug.is_empty() {
        "root".to_string()
    } else {
        slug
    }
}

/// Emulates `mode`'s screen size and colour scheme.
fn set_mode(browser: &mut Browser, mode: &Mode) {
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": mode.width, "height": mode.height, "deviceScaleFactor": 1,
               "mobile": mode.phone}),
    );
    let scheme = if mode.dark { "dark" } else { "light" };
    browser.call(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
    );
}

fn probe(browser: &mut Browser) -> Value {
    let text = browser.eval(PROBE);
    serde_json::from_str(&text).expect("probe JSON")
}
