//! The status pages of seed 002 against a real master and worker, on SQLite and PostgreSQL:
//! every URL answers with real data, query arguments change what is shown, and markup from
//! builder names, change comments, authors, properties and log lines arrives escaped.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{databases, Db, TestMaster, TestWorker};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['title'] = "Pages <i>test</i>"
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}

ok = BuildFactory()
ok.addStep(ShellCommand(name="greet", command="printf '\\033[31mred\\033[0m <script>alert(4)</script>\\nerror: boom\\nplain\\n'"))
ok.addStep(SetProperty(property="evil", value="<svg onload=alert(3)>"))

bad = BuildFactory()
bad.addStep(ShellCommand(name="fails", command="echo oops >&2; exit 3"))

c['builders'] = [
    BuilderConfig(name="ok", workernames=["w1"], factory=ok, tags=["fast"]),
    BuilderConfig(name="bad", workernames=["w1"], factory=bad, tags=["slow"]),
    BuilderConfig(name="evil<b>x</b>", workernames=["w1"], factory=ok),
]
c['schedulers'] = [
    AnyBranchScheduler(name="any", builderNames=["ok", "bad", "evil<b>x</b>"]),
    ForceScheduler(name="force", builderNames=["ok", "bad", "evil<b>x</b>"]),
]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
                         change_hook_dialects={'base': True},
                         authz=Authz(forceBuild=True))]
"#;

/// GETs `path`; returns (status, body).
fn fetch(master: &TestMaster, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", &master.url(path)])
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// GETs `path`, which must answer 200.
fn page(master: &TestMaster, path: &str) -> String {
    let (status, body) = fetch(master, path);
    assert_eq!(status, 200, "GET {path}: {body}\n{}", master.log());
    body
}

/// Markup that must never reach a page unescaped.
const RAW: [&str; 6] = [
    "<script>alert",
    "<img src=x",
    "<svg onload",
    "<b>x</b>",
    "<i>test</i>",
    "<u>who</u>",
];

fn assert_escaped(path: &str, body: &str) {
    for raw in RAW {
        assert!(!body.contains(raw), "{path} contains raw {raw:?}:\n{body}");
    }
}

fn post_change(master: &TestMaster, revision: &str, branch: &str, author: &str, comments: &str) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--data-urlencode", &format!("author={author}")])
        .args(["--data-urlencode", &format!("comments={comments}")])
        .args(["--data-urlencode", &format!("revision={revision}")])
        .args(["--data-urlencode", &format!("branch={branch}")])
        .args([
            "--data-urlencode",
            "repository=https://example.org/repo.git",
        ])
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

fn every_page(db: Db) {
    let master = TestMaster::start(db, "pages", CFG);
    let _worker = TestWorker::start(&master, "w1", "pw1");
    post_change(
        &master,
        "abc123",
        "main",
        "Mallory <u>who</u> <script>alert(1)</script>",
        "fix <img src=x onerror=alert(2)>",
    );
    let builds = master.wait_finished_builds(3, Duration::from_secs(120));
    assert_eq!(builds.len(), 3);

    let urls = [
        "/",
        "/about",
        "/builders",
        "/builders/ok",
        "/builders/evil%3Cb%3Ex%3C%2Fb%3E",
        "/builders/ok/builds/1",
        "/builders/ok/builds/1/steps/greet",
        "/builders/ok/builds/1/steps/greet/logs/stdio",
        "/builders/evil%3Cb%3Ex%3C%2Fb%3E/builds/1",
        "/waterfall",
        "/grid",
        "/tgrid",
        "/console",
        "/changes",
        "/changes/1",
        "/buildslaves",
        "/workers",
        "/one_line_per_build",
        "/buildstatus?builder=ok&number=1",
        "/rss",
        "/atom",
    ];
    for url in urls {
        let body = page(&master, url);
        assert_escaped(url, &body);
    }

    // Real data on each page.
    let builders = page(&master, "/builders");
    assert!(
        builders.contains("class=\"box builder-box failure"),
        "{builders}"
    );
    assert!(
        builders.contains("evil&lt;b&gt;x&lt;&#x2f;b&gt;")
            || builders.contains("evil&lt;b&gt;x&lt;/b&gt;"),
        "{builders}"
    );
    let build = page(&master, "/builders/ok/builds/1");
    assert!(
        build.contains(">greet</a> <span class=\"result\">success"),
        "{build}"
    );
    assert!(build.contains("&lt;svg onload=alert(3)&gt;"), "{build}");
    assert!(build.contains("abc123"), "{build}");
    let log = page(&master, "/builders/ok/builds/1/steps/greet/logs/stdio");
    assert!(log.contains("<span class=\"ansi-fg1\">red</span>"), "{log}");
    assert!(
        log.contains("&lt;script&gt;alert(4)&lt;/script&gt;"),
        "{log}"
    );
    let text = page(&master, "/builders/ok/builds/1/steps/greet/logs/stdio/text");
    assert!(text.starts_with("\u{1b}[31mred"), "{text:?}");
    assert!(!text.contains("argv"), "headers are removed: {text}");
    let console = page(&master, "/console");
    assert!(console.contains("abc123"), "{console}");
    assert!(
        console.contains("#1 failure") && console.contains("#1 success"),
        "{console}"
    );
    let rss = page(&master, "/rss");
    assert!(rss.contains("bad build #1 failure"), "{rss}");
    assert!(!rss.contains("ok build #1"), "{rss}");

    // The log endpoints: a window, the first error, a search.
    let logid: i64 = log
        .split("data-log=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|id| id.parse().ok())
        .expect("the viewer names its log");
    let window = page(
        &master,
        &format!("/pages/logs/{logid}/lines?first=0&count=2"),
    );
    assert!(
        window.contains("\"n\":0") && window.contains("\"n\":1"),
        "{window}"
    );
    let first_error = page(&master, &format!("/pages/logs/{logid}/search?errors=1"));
    assert!(first_error.contains("\"line\":"), "{first_error}");
    let found = page(&master, &format!("/pages/logs/{logid}/search?q=plain"));
    assert!(found.contains("\"line\":"), "{found}");

    // Query arguments change what is shown.
    let only_ok = page(&master, "/builders?builder=ok");
    assert!(
        only_ok.contains("href=\"&#x2f;builders&#x2f;ok\"")
            && !only_ok.contains("href=\"&#x2f;builders&#x2f;bad\"")
    );
    let slow = page(&master, "/builders?category=slow");
    assert!(
        slow.contains("href=\"&#x2f;builders&#x2f;bad\"")
            && !slow.contains("href=\"&#x2f;builders&#x2f;ok\"")
    );
    let other_branch = page(&master, "/builders?branch=nope");
    assert!(other_branch.contains("no finished build"));
    let failing = page(&master, "/waterfall?failures_only=true");
    assert!(
        failing.contains("href=\"&#x2f;builders&#x2f;bad\"")
            && !failing.contains("href=\"&#x2f;builders&#x2f;ok\"")
    );
    let wf_builder = page(&master, "/waterfall?builder=ok");
    assert!(!wf_builder.contains("href=\"&#x2f;builders&#x2f;bad\""));
    let no_events = page(&master, "/waterfall?show_events=false");
    assert!(!no_events.contains("class=\"events\""));
    assert!(!no_events.contains("tag event"), "{no_events}");
    let events = page(&master, "/waterfall");
    assert!(events.contains("class=\"events\""));
    // The master's start and the worker's attaching are rows of their own.
    assert!(
        events.contains("<span class=\"tag event master\">master started</span>")
            && events.contains("<span class=\"tag event connected\">w1 connected</span>"),
        "{events}"
    );
    let past = page(&master, "/waterfall?last_time=1000");
    assert!(past.contains("No builds in this window"));
    let one = page(&master, "/waterfall?num_events=1");
    assert_eq!(one.matches("class=\"build-cell").count(), 1, "{one}");
    let lines = page(&master, "/one_line_per_build?numbuilds=1");
    assert_eq!(lines.matches("<li class=").count(), 1, "{lines}");
    let lines_bad = page(&master, "/one_line_per_build?builder=bad");
    assert!(lines_bad.contains("bad #1") && !lines_bad.contains("ok #1"));
    let numbuilds = page(&master, "/builders/ok?numbuilds=1");
    assert!(numbuilds.contains("(last 1)"));
    let prop = page(&master, "/builders/ok?property.evil=nothing");
    assert!(prop.contains("No builds."), "{prop}");
    let prop_match = page(
        &master,
        "/builders/ok?property.evil=%3Csvg%20onload%3Dalert(3)%3E",
    );
    assert!(prop_match.contains(">#1</a>"), "{prop_match}");
    let no_builders = page(&master, "/workers?no_builders=1");
    assert!(!no_builders.contains("<th>Builders</th>"));
    assert!(page(&master, "/buildslaves").contains("<th>Builders</th>"));
    let console_name = page(&master, "/console?name=nobody");
    assert!(console_name.contains("No changes."));
    let console_branch = page(&master, "/console?branch=main");
    assert!(console_branch.contains("abc123"));
    let console_repo = page(&master, "/console?repository=elsewhere");
    assert!(console_repo.contains("No changes."));
    let console_project = page(&master, "/console?project=proj&codebase=");
    assert!(console_project.contains("abc123"));
    let grid_branch = page(&master, "/grid?branch=other");
    assert!(!grid_branch.contains("abc123"));
    let tgrid_asc = page(&master, "/tgrid?rev_order=asc&length=1");
    assert!(tgrid_asc.contains("(asc)"));
    let atom_filtered = page(&master, "/atom?builder=ok");
    assert!(!atom_filtered.contains("<entry>"), "{atom_filtered}");

    // The badge.
    let png = Command::new("curl")
        .args(["-sS", &master.url("/png?builder=bad&size=large")])
        .output()
        .expect("curl");
    assert!(png.stdout.starts_with(b"\x89PNG"), "not a PNG");
    let png_small = Command::new("curl")
        .args(["-sS", &master.url("/png?builder=bad&number=1&size=small")])
        .output()
        .expect("curl");
    assert!(png_small.stdout.len() < png.stdout.len());

    // Forcing from the page needs the CSRF token of the page's cookie.
    let (status, _) = {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-d",
                "scheduler=force&reason=x",
            ])
            .arg(master.url("/builders/ok/force"))
            .output()
            .expect("curl");
        (String::from_utf8_lossy(&out.stdout).into_owned(), ())
    };
    assert_eq!(status, "403");
    let jar = master.dir.path().join("cookies");
    let form = Command::new("curl")
        .args(["-sS", "-c"])
        .arg(&jar)
        .arg(master.url("/builders/ok"))
        .output()
        .expect("curl");
    let form = String::from_utf8_lossy(&form.stdout).into_owned();
    let token = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf field")
        .to_string();
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-b"])
        .arg(&jar)
        .args([
            "-d",
            &format!("csrf={token}&scheduler=force&reason=from+the+page"),
        ])
        .arg(master.url("/builders/ok/force"))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "303",
        "{}",
        master.log()
    );
    master.wait_finished_builds(4, Duration::from_secs(120));

    // Unknown things are 404s.
    assert_eq!(fetch(&master, "/builders/nope").0, 404);
    assert_eq!(fetch(&master, "/builders/ok/builds/99").0, 404);
    assert_eq!(fetch(&master, "/changes/999").0, 404);
}

#[test]
fn every_page_answers_with_real_data_escaped() {
    for db in databases() {
        every_page(db);
    }
}

#[test]
fn template_overrides_and_public_html() {
    let master = TestMaster::start(Db::Sqlite, "overrides", CFG);
    let templates = master.dir.path().join("templates");
    std::fs::create_dir_all(&templates).expect("templates dir");
    assert!(page(&master, "/").contains("Welcome to"));
    std::fs::write(templates.join("root.html"), "custom root {{ site.title }}").expect("write");
    let custom = page(&master, "/");
    assert!(
        custom.starts_with("custom root Pages &lt;i&gt;test&lt;&#x2f;i&gt;")
            || custom.starts_with("custom root Pages &lt;i&gt;test&lt;/i&gt;"),
        "{custom}"
    );
    std::fs::remove_file(templates.join("root.html")).expect("remove");
    assert!(page(&master, "/").contains("Welcome to"));
    let public = master.dir.path().join("public_html");
    std::fs::create_dir_all(&public).expect("public_html");
    std::fs::write(public.join("hello.txt"), "static hello").expect("write");
    assert_eq!(page(&master, "/hello.txt"), "static hello");
    assert_eq!(fetch(&master, "/no-such-file").0, 404);
    assert!(page(&master, "/pages/static/signalbox.css").contains("prefers-color-scheme: dark"));
}
