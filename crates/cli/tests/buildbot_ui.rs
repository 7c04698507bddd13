//! Buildbot's own React UI (`buildbot-www` 4.3.0 from the test virtualenv) served by Signalbox
//! under a base path, used in a real headless Chromium: the builders list, a finished build's
//! steps and log, a build forced through the UI's dialog, a running build changing and its
//! log growing without a reload, and no failed request or console error on the way. Also the
//! serving rules over plain HTTP and the start-up errors when the UI is missing.
//!
//! Needs Chromium and `SIGNALBOX_BUILDBOT_WWW_PYTHON` (a Python with `buildbot-www`); both
//! come from `scripts/test`. Without them the test says so and passes.

mod harness;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use harness::browser::{chromium, Browser};
use harness::{bin, Db, TestMaster, TestWorker};
use serde_json::Value;

/// The UI's base path: two segments, to show nothing assumes `/ui/`.
const BASE: &str = "ci/ui/";

/// One builder whose second step prints a line every 0.2 s until the file `go` exists, so a
/// running build's log grows for as long as the test needs.
const CFG: &str = r#"
c = BuildmasterConfig = {}
c['title'] = "UI <b>test</b>"
c['buildbotURL'] = "http://127.0.0.1:@WEB_PORT@/"
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}

f = BuildFactory()
f.addStep(ShellCommand(name="hello", command="echo hello-from-step-one; echo second-line"))
f.addStep(ShellCommand(name="ticker",
    command="i=0; while [ ! -e '@DIR@/go' ]; do i=$((i+1)); echo tick-$i; sleep 0.2; done; echo ticker-done"))

c['builders'] = [BuilderConfig(name="ticker", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["ticker"])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
                         authz=Authz(forceBuild=True, stopBuild=True))]
c['www'] = {'buildbot_ui': {'path': '/ci/ui/', 'python': "@PYTHON@"}}
"#;

/// How long the UI gets to show something.
const WITHIN: Duration = Duration::from_secs(60);

#[test]
fn buildbot_ui_in_headless_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!("chromium is not installed: Buildbot UI test skipped (scripts/test installs it)");
        return;
    };
    let Some(python) = www_python() else {
        return;
    };
    let master = TestMaster::start(Db::Sqlite, "bbui", &CFG.replace("@PYTHON@", &python));
    let _worker = TestWorker::start(&master, "w1", "pw1");
    let go = master.dir.path().join("go");
    std::fs::write(&go, "").expect("let the first build finish");
    master.force("force", &["ticker"]);
    master.wait_finished_builds(1, Duration::from_secs(120));
    std::fs::remove_file(&go).expect("hold the next build");
    let builderid = master.get("api/v2/builders/ticker")["builders"][0]["builderid"]
        .as_i64()
        .expect("builderid");
    let button = master.get("api/v2/forceschedulers/force")["forceschedulers"][0]["button_name"]
        .as_str()
        .expect("button_name")
        .to_string();

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("buildbot-ui-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let mut ui = Ui {
        browser: Browser::launch(&chromium),
        master: &master,
        shots,
    };
    ui.browser.watch_network();
    // A desktop window: at the default size the UI's sidebar overlays the page.
    ui.browser.call(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
    );

    // The builders list.
    ui.open("#/builders");
    ui.expect("the builder in the builders list", &has_link_text("ticker"));
    let misconfigured = ui.browser.eval("document.body.innerText");
    assert!(
        !misconfigured.contains("misconfigured"),
        "the UI says buildbotURL is misconfigured:\n{misconfigured}"
    );
    ui.shot("builders");

    // A finished build: its steps, then its log.
    ui.open(&format!("#/builders/{builderid}/builds/1"));
    ui.expect(
        "the finished build's steps",
        &steps_named(&["hello", "ticker"]),
    );
    ui.shot("finished-build");
    ui.open(&format!(
        "#/builders/{builderid}/builds/1/steps/1/logs/stdio"
    ));
    ui.expect(
        "the finished build's log lines",
        &log_has("hello-from-step-one"),
    );
    ui.expect("the second log line", &log_has("second-line"));
    ui.shot("finished-log");

    // Force a build with the builder page's button and the dialog's "Start build".
    ui.open(&format!("#/builders/{builderid}"));
    ui.browser.eval("window.notReloaded = 'yes'");
    let force_button = format!(
        "[...document.querySelectorAll('button')].find(b => b.textContent.trim() === {})",
        Value::String(button.clone())
    );
    ui.expect(
        &format!("the {button:?} button"),
        &format!("!!{force_button}"),
    );
    assert!(ui.browser.click(&force_button), "no {button:?} button");
    let start = "[...document.querySelectorAll('.bb-forcebuild-modal button')]\
                 .find(b => b.textContent.trim() === 'Start build')";
    ui.expect("the force dialog", &format!("!!{start}"));
    ui.shot("force-dialog");
    assert!(ui.browser.click(start), "no Start build button");
    ui.expect(
        "the UI to go to the forced build",
        "location.hash.includes('/builds/2')",
    );
    ui.expect(
        "the running build's steps",
        &steps_named(&["hello", "ticker"]),
    );
    assert_eq!(
        master.get("api/v2/builds/2")["builds"][0]["complete"],
        false,
        "build 2 should be running"
    );
    ui.shot("running-build");

    // The running build changes without a reload: its ticker step starts running.
    ui.expect(
        "the ticker step to be running",
        &step_badge("ticker", ".pulse"),
    );
    ui.expect(
        "the hello step to have succeeded",
        &step_badge("hello", ".results_SUCCESS"),
    );

    // Its log grows in the log viewer (also reached without a reload).
    ui.browser.eval(&format!(
        "location.hash = '#/builders/{builderid}/builds/2/steps/2/logs/stdio'"
    ));
    let first = ui.expect(
        "ticks in the running log",
        &format!("{} > 0 && {0}", max_tick()),
    );
    let first: u64 = first.parse().unwrap_or(0);
    ui.expect(
        "the running log to grow",
        &format!("({}) >= {}", max_tick(), first + 5),
    );
    ui.shot("growing-log");

    // Let it finish: the end of the log and the build's result arrive live.
    std::fs::write(&go, "").expect("release the running build");
    ui.expect("the log's last line", &log_has("ticker-done"));
    ui.browser.eval(&format!(
        "location.hash = '#/builders/{builderid}/builds/2'"
    ));
    ui.expect(
        "the build to show SUCCESS",
        "document.querySelector('.bb-build-summary') && \
         document.querySelector('.bb-build-summary').innerText.includes('SUCCESS')",
    );
    ui.shot("finished-forced-build");
    assert_eq!(
        ui.browser.eval("String(window.notReloaded)"),
        "yes",
        "the page was reloaded"
    );
    let forced = master.get("api/v2/builds/2")["builds"][0].clone();
    assert_eq!(forced["results"], 0, "{forced}");

    let errors = ui.browser.drain_errors();
    if !errors.is_empty() {
        ui.shot("errors");
    }
    assert!(
        errors.is_empty(),
        "console errors or failed requests:\n{}",
        errors.join("\n")
    );
}

/// The rules of serving, over plain HTTP: the injected config, the redirects, the files'
/// types and caching, no way out of the static tree, and the same access policy.
#[test]
fn buildbot_ui_serving_rules() {
    let Some(python) = www_python() else {
        return;
    };
    let master = TestMaster::start(Db::Sqlite, "bbui_http", &CFG.replace("@PYTHON@", &python));
    let port = master.web_port;

    let index = fetch(&master, BASE);
    assert_eq!(index.status, 200);
    assert!(index.header("cache-control").contains("max-age=0"));
    let config = injected_config(&index.body);
    assert_eq!(config["title"], "UI <b>test</b>");
    assert_eq!(
        config["buildbotURL"],
        format!("http://127.0.0.1:{port}/ci/ui/")
    );
    assert_eq!(config["auth"]["name"], "NoAuth");
    assert_eq!(config["user"]["anonymous"], true);
    assert_eq!(config["avatar_methods"], serde_json::json!([]));
    assert!(
        !index.body.contains("<b>test"),
        "the title closed the script"
    );
    let json: Value = serde_json::from_str(&fetch(&master, "ci/ui/config").body).expect("config");
    assert_eq!(json, config, "GET config and the injected object differ");

    let redirect = fetch(&master, "ci/ui");
    assert_eq!(
        (redirect.status, redirect.header("location")),
        (308, "/ci/ui/".to_string())
    );
    let asset = fetch(&master, &format!("ci/ui/{}", script_of(&index.body)));
    assert_eq!(asset.status, 200);
    assert!(asset.header("content-type").starts_with("text/javascript"));
    assert!(asset.header("cache-control").contains("immutable"));
    for icon in ["icon.svg", "ci/ui//icon.svg"] {
        let icon = fetch(&master, icon);
        assert_eq!(icon.status, 200);
        assert!(icon.header("content-type").starts_with("image/svg+xml"));
    }
    for escape in [
        "ci/ui/%2e%2e/%2e%2e/master.cfg",
        "ci/ui/..%2f..%2fmaster.cfg",
        "ci/ui/assets",
    ] {
        assert_eq!(fetch(&master, escape).status, 404, "{escape}");
    }
    let builders: Value =
        serde_json::from_str(&fetch(&master, "ci/ui/api/v2/builders").body).expect("REST");
    assert_eq!(builders["builders"][0]["name"], "ticker");
    // A cross-site JSON-RPC call is refused under the base as at the root.
    let forged = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-H", "Content-Type: application/json"])
        .args(["-H", "Sec-Fetch-Site: cross-site"])
        .args([
            "-d",
            r#"{"jsonrpc":"2.0","method":"force","id":1,"params":{}}"#,
        ])
        .arg(master.url("ci/ui/api/v2/forceschedulers/force"))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&forged.stdout), "403");
}

#[test]
fn buildbot_ui_missing_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |ui: &str| {
        let cfg = format!(
            "c = BuildmasterConfig = {{}}\nc['www'] = {{'port': 8010, 'buildbot_ui': {ui}}}\n"
        );
        std::fs::write(dir.path().join("master.cfg"), cfg).expect("write master.cfg");
    };
    let checkconfig = || {
        let out = Command::new(bin())
            .arg("checkconfig")
            .arg(dir.path())
            .output()
            .expect("run checkconfig");
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), text)
    };
    write("{'python': '/nonexistent/python3'}");
    let (ok, text) = checkconfig();
    assert!(
        !ok && text.contains("pip install buildbot-www==4.3.0"),
        "{text}"
    );
    write("{'static_dir': 'no/such/dir'}");
    let (ok, text) = checkconfig();
    assert!(
        !ok && text.contains("not buildbot-www's static tree"),
        "{text}"
    );
    write("{'path': '/builders/'}");
    let (ok, text) = checkconfig();
    assert!(!ok && text.contains("taken"), "{text}");
    write("{'path': '/'}");
    let (ok, text) = checkconfig();
    assert!(!ok && text.contains("master.cfg:2:"), "{text}");
}

/// The browser on the master's UI, with a screenshot and the master's log on any failure.
struct Ui<'a> {
    browser: Browser,
    master: &'a TestMaster,
    shots: PathBuf,
}

impl Ui<'_> {
    /// Loads the UI at a hash route (a real page load: going from one hash to another of
    /// the same page would only be an in-page navigation, without a load event).
    fn open(&mut self, route: &str) {
        self.browser.visit("about:blank");
        self.browser
            .visit(&self.master.url(&format!("{BASE}{route}")));
    }

    /// Waits for `expression` to be true in the page; on timeout, a screenshot and a panic
    /// that says what was missing.
    fn expect(&mut self, what: &str, expression: &str) -> String {
        if let Some(value) = self.browser.wait_js(expression, WITHIN) {
            return value;
        }
        let shot = self.shot(&format!("failed-{}", slug(what)));
        let text = self.browser.eval("document.body.innerText");
        let errors = self.browser.drain_errors().join("\n");
        panic!(
            "the UI did not show {what} within {WITHIN:?} (screenshot {}).\nPage text:\n{text}\n\
             Errors:\n{errors}\nMaster log:\n{}",
            shot.display(),
            self.master.log()
        );
    }

    fn shot(&mut self, name: &str) -> PathBuf {
        let path = self.shots.join(format!("{name}.png"));
        self.browser.screenshot(&path);
        path
    }
}

fn has_link_text(text: &str) -> String {
    format!(
        "[...document.querySelectorAll('a')].some(a => a.textContent.trim() === {})",
        Value::String(text.to_string())
    )
}

fn steps_named(names: &[&str]) -> String {
    let names = Value::from(names.to_vec());
    format!(
        "(() => {{ const lines = [...document.querySelectorAll('.bb-build-summary-step-line')]
             .map(l => l.textContent);
           return {names}.every(n => lines.some(t => t.includes(n))); }})()"
    )
}

/// True when the step line of `name` has an element matching `badge` (the UI's results
/// classes; `.pulse` marks a running step).
fn step_badge(name: &str, badge: &str) -> String {
    format!(
        "[...document.querySelectorAll('.bb-build-summary-step-line')]\
         .some(l => l.textContent.includes({}) && !!l.querySelector({}))",
        Value::String(name.to_string()),
        Value::String(badge.to_string())
    )
}

/// Scrolls the log viewer to its end first: it renders only the rows in view, and the
/// command's environment comes before the output.
const LOG_END: &str = "document.querySelectorAll('.bb-logviewer-text-area, \
    .bb-logviewer-text-area *').forEach(e => { if (e.scrollHeight > e.clientHeight) \
    e.scrollTop = e.scrollHeight; })";

/// True when a rendered log row (near the end of the log) contains `text`.
fn log_has(text: &str) -> String {
    format!(
        "({LOG_END}, [...document.querySelectorAll('.bb-logviewer-text-row')]\
         .some(r => r.textContent.includes({})))",
        Value::String(text.to_string())
    )
}

/// The highest `tick-N` among the log rows rendered at the end of the log.
fn max_tick() -> String {
    format!(
        "({LOG_END}, Math.max(0, ...[...document.querySelectorAll('.bb-logviewer-text-row')]\
         .map(r => (r.textContent.match(/tick-(\\d+)/) || [0, 0])[1] | 0)))"
    )
}

/// The Python with buildbot-www that `scripts/test` provides, if any.
fn www_python() -> Option<String> {
    let Ok(python) = std::env::var("SIGNALBOX_BUILDBOT_WWW_PYTHON") else {
        eprintln!(
            "SIGNALBOX_BUILDBOT_WWW_PYTHON is not set: Buildbot UI test skipped (scripts/test \
             installs buildbot-www==4.3.0 and sets it)"
        );
        return None;
    };
    Some(python)
}

/// One HTTP response, as curl saw it.
struct Fetched {
    status: u16,
    headers: String,
    body: String,
}

impl Fetched {
    fn header(&self, name: &str) -> String {
        self.headers
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_default()
    }
}

fn fetch(master: &TestMaster, path: &str) -> Fetched {
    let headers = tempfile::NamedTempFile::new().expect("temp file");
    let out = Command::new("curl")
        .args([
            "-sS",
            "--path-as-is",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-D",
        ])
        .arg(headers.path())
        .arg(format!("http://127.0.0.1:{}/{path}", master.web_port))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    Fetched {
        status: status.trim().parse().expect("status"),
        headers: std::fs::read_to_string(headers.path()).unwrap_or_default(),
        body: body.to_string(),
    }
}

/// The object `index.html` assigns to `window.buildbotFrontendConfig`.
fn injected_config(index: &str) -> Value {
    let json = index
        .split("window.buildbotFrontendConfig = ")
        .nth(1)
        .and_then(|rest| rest.split(";\n</script>").next())
        .unwrap_or_else(|| panic!("no injected config in:\n{index}"));
    serde_json::from_str(json).expect("injected config is JSON")
}

/// The app bundle `index.html` loads (`./assets/index-HASH.js`).
fn script_of(index: &str) -> String {
    index
        .split("src=\"./")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no module script in:\n{index}"))
        .to_string()
}

fn slug(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}
