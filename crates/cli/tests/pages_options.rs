//! Status-page options and filters against a real master, on SQLite and PostgreSQL: the
//! console's red (broke it) and orange (still failing) failures, `property.X=` on pending
//! build requests, `jinja_loaders` directories, and `revlink`/`projects`/`repositories`
//! given as functions of `master.cfg`.

mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{databases, Db, TestMaster, TestWorker};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}

bad = BuildFactory()
bad.addStep(ShellCommand(name="fails", command="exit 2"))

def revlink(rev, repo):
    return "https://example.org/rev/" + rev

def projects(name):
    return "https://example.org/project/" + name

def repositories(name):
    return "https://example.org/browse"

c['builders'] = [BuilderConfig(name="bad", workernames=["w1"], factory=bad)]
c['schedulers'] = [AnyBranchScheduler(name="any", builderNames=["bad"],
                                      properties={"team": "red"})]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
                         change_hook_dialects={'base': True},
                         jinja_loaders=[FileSystemLoader("extra_templates")],
                         revlink=revlink, projects=projects, repositories=repositories)]
"#;

fn page(master: &TestMaster, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-f", &master.url(path)])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "GET {path}\n{}", master.log());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn post_change(master: &TestMaster, revision: &str) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--data-urlencode", "author=alice"])
        .args(["--data-urlencode", "comments=change"])
        .args(["--data-urlencode", &format!("revision={revision}")])
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

fn options(db: Db) {
    let master = TestMaster::start(db, "pageopts", CFG);

    // No worker yet: the request waits, and property.X= keeps or drops it.
    post_change(&master, "aaa111");
    harness::wait_for(Duration::from_secs(30), "a pending request", || {
        page(&master, "/builders/bad")
            .contains("1 pending")
            .then_some(())
    });
    let red = page(&master, "/builders/bad?property.team=red");
    assert!(red.contains("request 1,"), "{red}");
    let blue = page(&master, "/builders/bad?property.team=blue");
    assert!(!blue.contains("request 1,"), "{blue}");

    // Two failing builds in a row: the first broke the builder, the second did not.
    let _worker = TestWorker::start(&master, "w1", "pw1");
    master.wait_finished_builds(1, Duration::from_secs(120));
    post_change(&master, "bbb222");
    master.wait_finished_builds(2, Duration::from_secs(120));
    let console = page(&master, "/console");
    let chip = |number: u32| -> String {
        let marker = format!("title=\"bad #{number} failure\"");
        let at = console
            .find(&marker)
            .unwrap_or_else(|| panic!("no chip for #{number}: {console}"));
        let start = console[..at].rfind("<a class=\"").expect("chip start");
        console[start..at].to_string()
    };
    assert!(
        chip(1).contains("failure") && !chip(1).contains("failure-again"),
        "{}",
        chip(1)
    );
    assert!(chip(2).contains("failure-again"), "{}", chip(2));

    // URL functions.
    let change = page(&master, "/changes/1");
    for url in [
        "https:&#x2f;&#x2f;example.org&#x2f;rev&#x2f;aaa111",
        "https:&#x2f;&#x2f;example.org&#x2f;project&#x2f;proj",
        "https:&#x2f;&#x2f;example.org&#x2f;browse",
    ] {
        assert!(
            change.contains(&format!("href=\"{url}\"")),
            "{url} in {change}"
        );
    }

    // jinja_loaders: after templates/, before the built-in templates.
    let extra = master.dir.path().join("extra_templates");
    std::fs::create_dir_all(&extra).expect("extra dir");
    std::fs::write(extra.join("root.html"), "from the loader").expect("write");
    assert_eq!(page(&master, "/"), "from the loader");
    let templates = master.dir.path().join("templates");
    std::fs::create_dir_all(&templates).expect("templates dir");
    std::fs::write(templates.join("root.html"), "from templates").expect("write");
    assert_eq!(page(&master, "/"), "from templates");
    std::fs::remove_file(templates.join("root.html")).expect("remove");
    std::fs::remove_file(extra.join("root.html")).expect("remove");
    assert!(page(&master, "/").contains("Welcome to"));
}

#[test]
fn console_colours_request_filters_loaders_and_url_functions() {
    for db in databases() {
        options(db);
    }
}
