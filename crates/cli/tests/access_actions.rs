//! Every seed-002 action under each of `False`, `True`, `'auth'` and a config function,
//! driven through its page form (with the CSRF token) and through JSON-RPC, as an anonymous
//! client, as bob and as eve. An allowed action must have its effect; a denied one must be
//! refused and change nothing. One master per rule serves every action; its state is read
//! from the database itself, since under `view=False` nobody may read it over HTTP.

mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::{databases, wait_for, Db, TestMaster, TestWorker};
use serde_json::{json, Value};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['db'] = {'db_url': "@DB_URL@"}
c['workers'] = [Worker("w1", "pw1"), Worker("absent", "x"), Worker("p1", "x"),
                Worker("g0", "x"), Worker("g1", "x"), Worker("g2", "x"),
                Worker("g3", "x"), Worker("g4", "x"), Worker("g5", "x")]
slow = BuildFactory()
slow.addStep(ShellCommand(name="sleep", command="sleep 300"))
quick = BuildFactory()
quick.addStep(ShellCommand(name="true", command="true"))
c['builders'] = [
    BuilderConfig(name="slow", workernames=["w1"], factory=slow),
    BuilderConfig(name="stuck", workernames=["absent"], factory=quick),
    BuilderConfig(name="quick", workernames=["absent"], factory=quick),
    BuilderConfig(name="idle", workernames=["p1", "g0", "g1", "g2", "g3", "g4", "g5"],
                  factory=quick),
]
c['schedulers'] = [
    SingleBranchScheduler(name="slow", change_filter=ChangeFilter(branch="slow"),
                          treeStableTimer=None, builderNames=["slow"]),
    SingleBranchScheduler(name="stuck", change_filter=ChangeFilter(branch="stuck"),
                          treeStableTimer=None, builderNames=["stuck"]),
    ForceScheduler(name="force", builderNames=["quick"]),
]
def only_bob(user, *args):
    return user == "bob"
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1",
                         change_hook_dialects={'base': True},
                         authz=Authz(auth=BasicAuth([('bob', 'bobpw'), ('eve', 'evepw')]),
                                     @ACTIONS@))]
"#;

/// How long an allowed action may take to show its effect (a build to end, a master to
/// stop). Only an upper bound: nothing waits for it when things go right.
const EFFECT_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    False,
    True,
    Auth,
    Function,
}

impl Rule {
    /// The rule as `master.cfg` spells it.
    fn cfg(self) -> &'static str {
        match self {
            Rule::False => "False",
            Rule::True => "True",
            Rule::Auth => "'auth'",
            Rule::Function => "only_bob",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Bob,
    Eve,
}

const EVERYONE: [Who; 3] = [Who::Anonymous, Who::Bob, Who::Eve];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The page's form: GET the page that shows it, POST it with the CSRF token.
    Page,
    /// `POST /api/v2/…` JSON-RPC (for `view`, the REST read it gates).
    Rpc,
}

/// One seed-002 action; the "all" actions are driven on one builder and on the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    View,
    ForceBuild,
    ForceAllBuilds,
    PingBuilder,
    GracefulShutdown,
    PauseSlave,
    StopBuild,
    StopAllBuilds { master: bool },
    CancelPendingBuild,
    CancelAllPendingBuilds { master: bool },
    StopChange,
    ShowUsersPage,
    CleanShutdown,
}

impl Act {
    fn name(self) -> &'static str {
        match self {
            Act::View => "view",
            Act::ForceBuild => "forceBuild",
            Act::ForceAllBuilds => "forceAllBuilds",
            Act::PingBuilder => "pingBuilder",
            Act::GracefulShutdown => "gracefulShutdown",
            Act::PauseSlave => "pauseSlave",
            Act::StopBuild => "stopBuild",
            Act::StopAllBuilds { .. } => "stopAllBuilds",
            Act::CancelPendingBuild => "cancelPendingBuild",
            Act::CancelAllPendingBuilds { .. } => "cancelAllPendingBuilds",
            Act::StopChange => "stopChange",
            Act::ShowUsersPage => "showUsersPage",
            Act::CleanShutdown => "cleanShutdown",
        }
    }
}

/// Every action, in the order they run on one master: cleanShutdown last, since an allowed
/// one stops the master (it is started again for the next client).
const TABLE: [Act; 15] = [
    Act::View,
    Act::ForceBuild,
    Act::ForceAllBuilds,
    Act::PingBuilder,
    Act::GracefulShutdown,
    Act::PauseSlave,
    Act::StopBuild,
    Act::StopAllBuilds { master: false },
    Act::StopAllBuilds { master: true },
    Act::CancelPendingBuild,
    Act::CancelAllPendingBuilds { master: false },
    Act::CancelAllPendingBuilds { master: true },
    Act::StopChange,
    Act::ShowUsersPage,
    Act::CleanShutdown,
];

/// What one attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Accepted, and the effect is there.
    Allowed,
    /// Refused, and nothing changed.
    Denied,
    /// Anything else: accepted without effect, refused with an effect, a missing form…
    Wrong(String),
}

/// What the policy says `who` gets under `rule` (the same for every action).
fn expected(rule: Rule, who: Who) -> Outcome {
    let allowed = match rule {
        Rule::False => false,
        Rule::True => true,
        Rule::Auth => who != Who::Anonymous,
        Rule::Function => who == Who::Bob,
    };
    if allowed {
        Outcome::Allowed
    } else {
        Outcome::Denied
    }
}

/// One master for one rule, with the clients' cookie jars.
struct Ctx {
    db: Db,
    m: TestMaster,
    worker: Option<TestWorker>,
    /// Cookie jars: anonymous (the CSRF cookie only), bob and eve (sessions).
    jars: [tempfile::NamedTempFile; 3],
    /// The next `gN` worker to shut down gracefully (each can be shut down once).
    graceful_next: usize,
    /// A counter for unique revisions.
    changes: usize,
}

impl Ctx {
    fn start(db: Db, rule: Rule) -> Ctx {
        let actions: Vec<String> = [
            "view",
            "forceBuild",
            "forceAllBuilds",
            "pingBuilder",
            "gracefulShutdown",
            "pauseSlave",
            "stopBuild",
            "stopAllBuilds",
            "cancelPendingBuild",
            "cancelAllPendingBuilds",
            "stopChange",
            "cleanShutdown",
            "showUsersPage",
        ]
        .iter()
        .map(|a| format!("{a}={}", rule.cfg()))
        .collect();
        let cfg = CFG.replace("@ACTIONS@", &actions.join(", "));
        let m = TestMaster::start(db, "actions", &cfg);
        let worker = TestWorker::start(&m, "w1", "pw1");
        m.wait_attached("w1", Duration::from_secs(60));
        let jar = || tempfile::NamedTempFile::new().expect("cookie jar");
        let mut ctx = Ctx {
            db,
            m,
            worker: Some(worker),
            jars: [jar(), jar(), jar()],
            graceful_next: 0,
            changes: 0,
        };
        ctx.login_all();
        ctx
    }

    fn login_all(&mut self) {
        for (who, password) in [(Who::Bob, "bobpw"), (Who::Eve, "evepw")] {
            let credentials = format!("{}:{password}", user_name(who));
            let jar = self.jar(who);
            let (status, head, _) =
                self.curl("auth/login", &["-u", &credentials, "-c", &jar, "-b", &jar]);
            assert_eq!(status, 303, "{who:?} logs in: {head}");
        }
    }

    fn jar(&self, who: Who) -> String {
        let i = EVERYONE.iter().position(|w| *w == who).unwrap_or(0);
        self.jars[i].path().display().to_string()
    }

    /// Runs curl on `path`; returns (status, headers, body).
    fn curl(&self, path: &str, args: &[&str]) -> (u16, String, String) {
        let out = Command::new("curl")
            .args(["-sS", "-D", "-", "-o", "-", "--max-time", "20"])
            .args(args)
            .arg(self.m.url(path))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_string(), body.to_string())
    }

    /// GET as `who` (keeping the cookies the server sets).
    fn get_as(&self, who: Who, path: &str) -> (u16, String, String) {
        let jar = self.jar(who);
        self.curl(path, &["-b", &jar, "-c", &jar])
    }

    /// A JSON-RPC call as `who`; returns (status, reply).
    fn rpc_as(&self, who: Who, path: &str, method: &str, params: Value) -> (u16, Value) {
        let body = json!({"jsonrpc": "2.0", "method": method, "id": 1, "params": params});
        let body = body.to_string();
        let jar = self.jar(who);
        let (status, _, text) = self.curl(
            &format!("api/v2/{path}"),
            &[
                "-b",
                &jar,
                "-H",
                "Content-Type: application/json",
                "-d",
                &body,
            ],
        );
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The page form: GETs `page` as `who` (which sets the CSRF cookie), checks that a
    /// viewable page shows the form posting to `action`, and posts it with the token.
    /// Returns the POST's status and body, or Err when the page lacks the form.
    fn form_as(
        &self,
        who: Who,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
        form_shown: bool,
    ) -> Result<(u16, String), String> {
        let (status, _, body) = self.get_as(who, page);
        // Templates escape the slashes of interpolated paths; browsers decode them.
        let body = body.replace("&#x2f;", "/");
        if status == 200 && form_shown && !body.contains(&format!("action=\"{action}\"")) {
            return Err(format!("{page} has no form posting to {action}"));
        }
        let token = csrf_from_jar(&self.jar(who)).ok_or("no CSRF cookie")?;
        let mut form = format!("csrf={}", encode(&token));
        for (k, v) in fields {
            form.push_str(&format!("&{}={}", encode(k), encode(v)));
        }
        let jar = self.jar(who);
        let (status, _, body) = self.curl(action, &["-b", &jar, "-d", &form]);
        Ok((status, body))
    }

    /// One value from the master's database.
    fn sql(&self, query: &str) -> String {
        let out = match self.db {
            Db::Sqlite => Command::new("sqlite3")
                .args(["-batch", "-noheader"])
                .arg(self.m.dir.path().join("state.sqlite"))
                .arg(query)
                .output(),
            Db::Postgres => Command::new("psql")
                .arg(&self.m.db_url)
                .args(["-X", "-q", "-A", "-t", "-c", query])
                .output(),
        }
        .expect("run the database client");
        assert!(
            out.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn int(&self, query: &str) -> i64 {
        let text = self.sql(query);
        text.parse()
            .unwrap_or_else(|_| panic!("{query}: not a number: {text:?}"))
    }

    fn id(&self, table: &str, name: &str) -> i64 {
        self.int(&format!("SELECT id FROM {table} WHERE name = '{name}'"))
    }

    fn masterid(&self) -> i64 {
        self.int("SELECT id FROM masters ORDER BY id LIMIT 1")
    }

    fn buildsets(&self) -> i64 {
        self.int("SELECT count(*) FROM buildsets")
    }

    /// Posts a change on `branch` through `/change_hook/base` (which no rule gates).
    fn post_change(&mut self, branch: &str) {
        self.changes += 1;
        let form = format!(
            "author=alice&branch={branch}&revision=r{}&comments=c&repository=repo",
            self.changes
        );
        let (status, _, body) = self.curl("change_hook/base", &["-d", &form]);
        assert_eq!(status, 200, "change hook: {body}");
    }

    /// A build of `slow` whose step runs now: (buildid, number, changeid). Starts one if
    /// none runs.
    fn running_build(&mut self) -> (i64, i64, i64) {
        let slow = self.id("builders", "slow");
        let running = format!(
            "SELECT b.id FROM builds b JOIN steps s ON s.buildid = b.id \
             WHERE b.builderid = {slow} AND b.complete_at IS NULL \
             AND s.started_at IS NOT NULL AND s.complete_at IS NULL ORDER BY b.id LIMIT 1"
        );
        if self.sql(&running).is_empty() {
            let pending = format!(
                "SELECT count(*) FROM buildrequests WHERE builderid = {slow} AND complete = 0"
            );
            if self.int(&pending) == 0 {
                self.post_change("slow");
            }
        }
        let buildid: i64 = wait_for(EFFECT_WITHIN, "a running build of slow", || {
            self.sql(&running).parse().ok()
        });
        let number = self.int(&format!("SELECT number FROM builds WHERE id = {buildid}"));
        let change = self.int(&format!(
            "SELECT c.changeid FROM builds b \
             JOIN buildrequests r ON r.id = b.buildrequestid \
             JOIN buildset_sourcestamps s ON s.buildsetid = r.buildsetid \
             JOIN changes c ON c.sourcestampid = s.sourcestampid \
             WHERE b.id = {buildid} ORDER BY c.changeid LIMIT 1"
        ));
        (buildid, number, change)
    }

    fn build_complete(&self, buildid: i64) -> bool {
        self.int(&format!(
            "SELECT count(*) FROM builds WHERE id = {buildid} AND complete_at IS NOT NULL"
        )) == 1
    }

    /// An unclaimed request of `stuck` (whose worker never attaches). Makes one if needed.
    fn pending_request(&mut self) -> i64 {
        let stuck = self.id("builders", "stuck");
        let query = format!(
            "SELECT id FROM buildrequests WHERE builderid = {stuck} AND complete = 0 \
             ORDER BY id LIMIT 1"
        );
        if self.sql(&query).is_empty() {
            self.post_change("stuck");
        }
        wait_for(EFFECT_WITHIN, "a pending request of stuck", || {
            self.sql(&query).parse().ok()
        })
    }

    fn request_complete(&self, brid: i64) -> bool {
        self.int(&format!(
            "SELECT count(*) FROM buildrequests WHERE id = {brid} AND complete <> 0"
        )) == 1
    }

    /// True once the master process has exited (within `within`).
    fn master_exits(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let Some(child) = self.m.child.as_mut() else {
            return true;
        };
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                self.m.child = None;
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn master_answers(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.m.web_port)).is_ok()
    }
}

fn user_name(who: Who) -> &'static str {
    match who {
        Who::Anonymous => "anonymous",
        Who::Bob => "bob",
        Who::Eve => "eve",
    }
}

/// The CSRF cookie's value in a curl cookie jar (the token the forms carry).
fn csrf_from_jar(jar: &str) -> Option<String> {
    let text = std::fs::read_to_string(jar).ok()?;
    text.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split('\t').collect();
        (fields.len() == 7 && fields[5] == "signalbox_csrf").then(|| fields[6].to_string())
    })
}

/// Percent-encodes a form value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Judges an attempt from its status and whether the effect happened.
fn judge(accepted: bool, refused: bool, effect: bool, what: &str) -> Outcome {
    match (accepted, refused, effect) {
        (true, _, true) => Outcome::Allowed,
        (_, true, false) => Outcome::Denied,
        _ => Outcome::Wrong(format!(
            "{what}: accepted={accepted} refused={refused} effect={effect}"
        )),
    }
}

/// Status codes: a page form redirects back (303) when it acted and is 403 when refused;
/// JSON-RPC is 200 or 403.
fn accepted(via: Via, status: u16) -> bool {
    match via {
        Via::Page => status == 303,
        Via::Rpc => status == 200,
    }
}

/// Drives `act` once as `who` through `via` and reports what happened.
fn check(ctx: &mut Ctx, act: Act, who: Who, via: Via) -> Outcome {
    let mid = ctx.masterid();
    let status_of = |r: Result<u16, String>| r.map_err(Outcome::Wrong);
    macro_rules! form {
        ($page:expr, $action:expr, $fields:expr, $shown:expr) => {
            match status_of(
                ctx.form_as(who, $page, $action, $fields, $shown)
                    .map(|r| r.0),
            ) {
                Ok(status) => status,
                Err(wrong) => return wrong,
            }
        };
    }
    match act {
        Act::View => {
            let (status, _, body) = match via {
                Via::Page => ctx.get_as(who, "builders"),
                Via::Rpc => ctx.get_as(who, "api/v2/builders"),
            };
            let shows = body.contains("slow") && body.contains("stuck");
            judge(status == 200, status == 403, shows, &format!("{status}"))
        }
        Act::ForceBuild | Act::ForceAllBuilds => {
            let before = ctx.buildsets();
            let status = match (act, via) {
                (Act::ForceBuild, Via::Page) => form!(
                    "builders/quick",
                    "/builders/quick/force",
                    &[("scheduler", "force")],
                    true
                ),
                (Act::ForceBuild, Via::Rpc) => {
                    let params = json!({"builderNames": ["quick"]});
                    ctx.rpc_as(who, "forceschedulers/force", "force", params).0
                }
                (_, Via::Page) => form!(
                    "builders",
                    &format!("/control/masters/{mid}/forceall"),
                    &[("reason", "all")],
                    true
                ),
                (_, Via::Rpc) => {
                    let path = format!("masters/{mid}");
                    ctx.rpc_as(who, &path, "forceall", json!({})).0
                }
            };
            let added = ctx.buildsets() - before;
            let what = format!("status {status}, {added} new buildsets");
            match added {
                0 | 1 => judge(accepted(via, status), status == 403, added == 1, &what),
                _ => Outcome::Wrong(what),
            }
        }
        Act::PingBuilder => {
            let slow = ctx.id("builders", "slow");
            let path = format!("builders/{slow}");
            match via {
                Via::Page => {
                    // The answer is a page with each worker's reply, not a redirect.
                    let action = format!("/control/{path}/ping");
                    let (status, body) = match ctx.form_as(who, "builders/slow", &action, &[], true)
                    {
                        Ok(reply) => reply,
                        Err(wrong) => return Outcome::Wrong(wrong),
                    };
                    let pinged = body.contains("Ping: slow") && body.contains("w1</th><td>ok, ");
                    judge(status == 200, status == 403, pinged, &body)
                }
                Via::Rpc => {
                    let (status, reply) = ctx.rpc_as(who, &path, "ping", json!({}));
                    let pinged = reply["result"]["workers"]["w1"] == "ok";
                    judge(status == 200, status == 403, pinged, &reply.to_string())
                }
            }
        }
        Act::GracefulShutdown => {
            let name = format!("g{}", ctx.graceful_next);
            ctx.graceful_next += 1;
            let id = ctx.id("workers", &name);
            let graceful =
                |ctx: &Ctx| ctx.int(&format!("SELECT graceful FROM workers WHERE id = {id}")) != 0;
            assert!(!graceful(ctx), "{name} starts without a shutdown asked");
            // The page shows the button only for a connected worker; gN never attaches.
            let status = match via {
                Via::Page => form!(
                    "workers",
                    &format!("/control/workers/{name}/stop"),
                    &[],
                    false
                ),
                Via::Rpc => {
                    ctx.rpc_as(who, &format!("workers/{id}"), "stop", json!({}))
                        .0
                }
            };
            judge(
                accepted(via, status),
                status == 403,
                graceful(ctx),
                &format!("{status}"),
            )
        }
        Act::PauseSlave => {
            let id = ctx.id("workers", "p1");
            let paused =
                |ctx: &Ctx| ctx.int(&format!("SELECT paused FROM workers WHERE id = {id}")) != 0;
            let run = |ctx: &Ctx, method: &str| -> Result<u16, String> {
                match via {
                    Via::Page => {
                        let action = format!("/control/workers/p1/{method}");
                        ctx.form_as(who, "workers", &action, &[("reason", "test")], true)
                            .map(|r| r.0)
                    }
                    Via::Rpc => Ok(ctx
                        .rpc_as(who, &format!("workers/{id}"), method, json!({}))
                        .0),
                }
            };
            assert!(!paused(ctx), "p1 starts unpaused");
            let status = match status_of(run(ctx, "pause")) {
                Ok(s) => s,
                Err(wrong) => return wrong,
            };
            let outcome = judge(
                accepted(via, status),
                status == 403,
                paused(ctx),
                &format!("{status}"),
            );
            if outcome == Outcome::Allowed {
                // Unpausing is the same action; it must work too, and resets p1.
                let again = run(ctx, "unpause");
                if !matches!(again, Ok(s) if accepted(via, s)) || paused(ctx) {
                    return Outcome::Wrong(format!("unpause: {again:?}"));
                }
            }
            outcome
        }
        Act::StopBuild | Act::StopAllBuilds { .. } | Act::StopChange => {
            let (buildid, number, change) = ctx.running_build();
            let slow = ctx.id("builders", "slow");
            let (page, path, method) = match act {
                Act::StopBuild => (
                    format!("builders/slow/builds/{number}"),
                    format!("builds/{buildid}"),
                    "stop",
                ),
                Act::StopAllBuilds { master: true } => {
                    ("builders".to_string(), format!("masters/{mid}"), "stopall")
                }
                Act::StopAllBuilds { master: false } => (
                    "builders/slow".to_string(),
                    format!("builders/{slow}"),
                    "stopall",
                ),
                _ => (
                    format!("changes/{change}"),
                    format!("changes/{change}"),
                    "stop",
                ),
            };
            let status = match via {
                Via::Page => form!(
                    &page,
                    &format!("/control/{path}/{method}"),
                    &[("reason", "test")],
                    true
                ),
                Via::Rpc => {
                    let params = json!({"reason": "test"});
                    ctx.rpc_as(who, &path, method, params).0
                }
            };
            let ok = accepted(via, status);
            // A stop ends the build once the worker has killed its command.
            let stopped = if ok {
                let deadline = Instant::now() + EFFECT_WITHIN;
                while !ctx.build_complete(buildid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                ctx.build_complete(buildid)
            } else {
                ctx.build_complete(buildid)
            };
            judge(ok, status == 403, stopped, &format!("{status}"))
        }
        Act::CancelPendingBuild | Act::CancelAllPendingBuilds { .. } => {
            let brid = ctx.pending_request();
            let stuck = ctx.id("builders", "stuck");
            let (page, path, method) = match act {
                Act::CancelPendingBuild => (
                    "builders/stuck".to_string(),
                    format!("buildrequests/{brid}"),
                    "cancel",
                ),
                Act::CancelAllPendingBuilds { master: true } => (
                    "builders".to_string(),
                    format!("masters/{mid}"),
                    "cancelall",
                ),
                _ => (
                    "builders/stuck".to_string(),
                    format!("builders/{stuck}"),
                    "cancelall",
                ),
            };
            let status = match via {
                Via::Page => form!(
                    &page,
                    &format!("/control/{path}/{method}"),
                    &[("reason", "test")],
                    true
                ),
                Via::Rpc => {
                    let params = json!({"reason": "test"});
                    ctx.rpc_as(who, &path, method, params).0
                }
            };
            let cancelled = ctx.request_complete(brid);
            judge(
                accepted(via, status),
                status == 403,
                cancelled,
                &format!("{status}"),
            )
        }
        Act::ShowUsersPage => match via {
            Via::Page => {
                let (status, head, body) = ctx.get_as(who, "users/table");
                let table = body.contains("<th>Identifier</th>");
                // Denied: a redirect to /authfail, or to the login form when logging in
                // could allow it; 403 when `view` (which every page needs) is denied too.
                let refused = status == 403
                    || status == 303
                        && (head.contains("location: /authfail")
                            || head.contains("location: /login"));
                judge(status == 200, refused, table, &format!("{status} {head}"))
            }
            Via::Rpc => {
                let (status, reply) =
                    ctx.rpc_as(who, &format!("masters/{mid}"), "users", json!({}));
                let listed = reply["result"]["users"].is_array();
                judge(status == 200, status == 403, listed, &reply.to_string())
            }
        },
        Act::CleanShutdown => {
            let path = format!("masters/{mid}");
            let status = match via {
                Via::Page => form!("builders", &format!("/control/{path}/shutdown"), &[], true),
                Via::Rpc => ctx.rpc_as(who, &path, "shutdown", json!({})).0,
            };
            let ok = accepted(via, status);
            let stopped = if ok {
                ctx.master_exits(EFFECT_WITHIN)
            } else {
                !ctx.master_answers() || ctx.master_exits(Duration::ZERO)
            };
            if stopped {
                // Start it again for the next client; sessions live in memory.
                ctx.m.spawn();
                ctx.login_all();
            }
            judge(ok, status == 403, stopped, &format!("{status}"))
        }
    }
}

/// Every action of the table, for every client, both ways, on one master per database.
fn every_action_under(rule: Rule) {
    for db in databases() {
        let mut ctx = Ctx::start(db, rule);
        let mut failures = Vec::new();
        for act in TABLE {
            if act == Act::CleanShutdown {
                // A clean shutdown waits for running builds: end them by losing the worker.
                drop(ctx.worker.take());
                let slow = ctx.id("builders", "slow");
                wait_for(EFFECT_WITHIN, "no running build", || {
                    let running = ctx.int(&format!(
                        "SELECT count(*) FROM builds WHERE builderid = {slow} \
                         AND complete_at IS NULL"
                    ));
                    (running == 0).then_some(())
                });
            }
            for who in EVERYONE {
                for via in [Via::Page, Via::Rpc] {
                    let got = check(&mut ctx, act, who, via);
                    let want = expected(rule, who);
                    if got != want {
                        failures.push(format!(
                            "{}={} ({act:?}) as {who:?} via {via:?} on {db:?}: got {got:?}, \
                             want {want:?}",
                            act.name(),
                            rule.cfg()
                        ));
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} attempts went wrong:\n{}\nmaster log:\n{}",
            failures.len(),
            TABLE.len() * 6,
            failures.join("\n"),
            ctx.m.log()
        );
    }
}

#[test]
fn every_action_under_false() {
    every_action_under(Rule::False);
}

#[test]
fn every_action_under_true() {
    every_action_under(Rule::True);
}

#[test]
fn every_action_under_auth() {
    every_action_under(Rule::Auth);
}

#[test]
fn every_action_under_a_function() {
    every_action_under(Rule::Function);
}
