//! Loading whole configs through `load_str`: one complete config, and broken ones that must
//! fail with one message naming the right line.

use std::path::Path;

use config::{load_str, ConfigError, LoadedConfig};

/// The one caller of `load_str` for these tests.
fn load(source: &str) -> Result<LoadedConfig, ConfigError> {
    load_str("master.cfg", source, Path::new("/nonexistent-basedir"))
}

/// The error message of a config that must fail.
fn error(source: &str) -> String {
    match load(source) {
        Ok(_) => "loaded without error".to_string(),
        Err(err) => err.to_string(),
    }
}

const HEADER: &str = "c = BuildmasterConfig = {}
c['workers'] = [Worker('w1', 'pw')]
c['builders'] = []
";

#[test]
fn syntax_error() {
    let msg = error(&format!("{HEADER}x = (\nc['title'] = 'x'\n"));
    assert!(msg.starts_with("master.cfg:5: syntax error"), "{msg}");
}

#[test]
fn unknown_name() {
    let msg = error(&format!("{HEADER}\nc['title'] = Foo\n"));
    assert_eq!(msg, "master.cfg:5: name 'Foo' is not defined");
}

#[test]
fn unknown_keyword() {
    let msg = error(&format!("{HEADER}c['builders'].append(BuilderConfig(name='b', slavename='w1',\n    factory=BuildFactory(), nosuch=1))\n"));
    assert_eq!(
        msg,
        "master.cfg:4: unknown keyword argument 'nosuch' for BuilderConfig"
    );
}

#[test]
fn wrong_type() {
    let msg = error(&format!("{HEADER}c['status'] = []\nc['status'].append(MailNotifier(fromaddr='a@b', smtpPort='25'))\n"));
    assert_eq!(
        msg,
        "master.cfg:5: MailNotifier: 'smtpPort' must be an int, got string"
    );
}

#[test]
fn builder_without_worker() {
    let msg = error(&format!(
        "{HEADER}f = BuildFactory()\nc['builders'].append(BuilderConfig(name='b', factory=f))\n"
    ));
    assert_eq!(msg, "master.cfg:5: builder 'b' has no workers");
}

#[test]
fn builder_with_unknown_worker() {
    let msg = error(&format!("{HEADER}c['builders'].append(BuilderConfig(name='b', workernames=['w9'], factory=BuildFactory()))\n"));
    assert_eq!(msg, "master.cfg:4: builder 'b' names unknown worker 'w9'");
}

#[test]
fn duplicate_builder() {
    let msg = error(&format!(
        "{HEADER}f = BuildFactory()\nc['builders'].append(BuilderConfig(name='b', slavenames=['w1'], factory=f))\nc['builders'].append(BuilderConfig(name='b', slavenames=['w1'], factory=f))\n"
    ));
    assert_eq!(msg, "master.cfg:6: duplicate builder name 'b'");
}

#[test]
fn scheduler_with_unknown_builder() {
    let msg = error(&format!(
        "{HEADER}c['builders'].append(BuilderConfig(name='b', slavenames=['w1'], factory=BuildFactory()))\nc['schedulers'] = [\n  ForceScheduler(name='force', builderNames=['b', 'nope'])]\n"
    ));
    assert_eq!(
        msg,
        "master.cfg:6: scheduler 'force' names unknown builder 'nope'"
    );
}

#[test]
fn endless_loop_at_load_time() {
    let msg = error(&format!("{HEADER}def spin():\n    n = 0\n    for x in range(1000000000):\n        n += x\n    return n\nc['title'] = str(spin())\n"));
    assert!(
        msg.starts_with("master.cfg:7: evaluation took too long"),
        "{msg}"
    );
    let msg = error(&format!(
        "{HEADER}def f(n):\n    return f(n + 1)\nc['title'] = f(0)\n"
    ));
    assert!(msg.starts_with("master.cfg:5: "), "{msg}");
}

#[test]
fn unknown_import() {
    let msg = error(&format!("{HEADER}from buildbot.foo import NoSuchThing\n"));
    assert_eq!(msg, "master.cfg:4: unknown import 'NoSuchThing'");
}

#[test]
fn missing_file() {
    let msg = error(&format!(
        "{HEADER}c['status'] = []\nauthz = Authz(auth=HTPasswdAuth('/no/such'),\n    forceBuild='auth')\nc['status'].append(WebStatus(8010, authz=authz))\n"
    ));
    assert_eq!(
        msg,
        "master.cfg:5: HTPasswdAuth: file '/no/such' does not exist"
    );
    let msg = error(&format!(
        "{HEADER}c['status'] = [WebStatus(8010,\n  change_hook_auth=['file:changehook.passwd'])]\n"
    ));
    assert_eq!(msg, "master.cfg:4: change_hook_auth: file '/nonexistent-basedir/changehook.passwd' does not exist");
}

#[test]
fn unknown_config_key() {
    let msg = error(&format!("{HEADER}c['nosuchkey'] = 1\n"));
    assert_eq!(msg, "master.cfg:4: unknown configuration key 'nosuchkey'");
}

const COMPLETE: &str = r#"# -*- python -*-
from buildbot.plugins import util, steps, schedulers, worker, changes
from buildbot.status.builder import SUCCESS, WARNINGS
import os

c = BuildmasterConfig = {}
c['title'] = "Demo"
c['titleURL'] = "http://example.org"
c['buildbotURL'] = "http://localhost:8010"
c['workers'] = [worker.Worker("w1", "pass", max_builds=2, properties={'os': 'linux'})]
c['protocols'] = {'pb': {'port': 9989}}
c['change_source'] = changes.GitPoller('https://example.org/repo.git', branches=['main'], pollInterval=60)

@util.renderer
def make_cmd(props):
    return ['make', props.getProperty('target', 'all')]

f = util.BuildFactory()
f.addStep(steps.Git(repourl='https://example.org/repo.git', mode='full', method='clobber'))
f.addStep(steps.ShellCommand(command=make_cmd, decodeRC={0: SUCCESS, 1: WARNINGS},
                             env={'BRANCH': util.Interpolate('%(prop:branch)s')}))
f.addStep(steps.Trigger(schedulerNames=['deploy'], waitForFinish=True))
f.addSteps([steps.FileUpload(workersrc='out.tgz', masterdest=os.path.join('public_html', 'out.tgz'))])

c['builders'] = [
    util.BuilderConfig(name="build", workernames=["w1"], factory=f, tags=['ci']),
    util.BuilderConfig(name="deploy", slavename="w1", factory=util.BuildFactory(steps=[steps.ShellCommand(command='true')])),
]
c['schedulers'] = [
    schedulers.SingleBranchScheduler(name="main", change_filter=util.ChangeFilter(branch='main'),
                                     treeStableTimer=None, builderNames=["build"]),
    schedulers.ForceScheduler(name="force", builderNames=["build"],
                              properties=[util.StringParameter(name="target", default="all")]),
    schedulers.Nightly(name="nightly", builderNames=["build"], hour=[3, 15], minute=0),
    schedulers.Triggerable(name="deploy", builderNames=["deploy"]),
]

def double(x):
    return x * 2

c['collapseRequests'] = lambda master, builder, a, b: True
c['www'] = {'port': 'tcp:8010:interface=127.0.0.1', 'plugins': {'waterfall_view': {}}}
c['db'] = {'db_url': 'sqlite:///state.sqlite'}
c['properties'] = {'double': double}
c['buildbotNetUsageData'] = None
"#;

#[test]
fn complete_config_round_trip() {
    let loaded = match load(COMPLETE) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let cfg = &loaded.config;
    assert_eq!(cfg.title, "Demo");
    assert_eq!(cfg.buildbot_url, "http://localhost:8010/");
    assert_eq!(cfg.workers.len(), 1);
    assert_eq!(cfg.workers[0].max_builds, Some(2));
    assert_eq!(
        cfg.worker_port,
        Some(config::Listen::Tcp {
            port: 9989,
            interface: None
        })
    );
    assert_eq!(cfg.builders.len(), 2);
    let build = &cfg.builders[0];
    assert_eq!(build.factory.steps.len(), 4);
    assert_eq!(build.location.line, 26);
    assert_eq!(build.factory.steps[0].common.name, "git");
    let config::StepKind::Shell(shell) = &build.factory.steps[1].kind else {
        panic!("not a shell step: {:?}", build.factory.steps[1].kind);
    };
    assert_eq!(shell.decode_rc.get(&1), Some(&model::Results::Warnings));
    let model::Renderable::Function(id) = shell.command else {
        panic!("command is not a renderer: {:?}", shell.command);
    };
    let mut props = model::Properties::new();
    props.set("target", serde_json::json!("install"), "test");
    let ctx = model::RenderContext {
        properties: &props,
        sourcestamps: &[],
        functions: Some(&loaded.functions),
    };
    assert_eq!(
        shell.command.render(&ctx),
        Ok(serde_json::json!(["make", "install"]))
    );
    let _ = id;
    assert_eq!(cfg.schedulers.len(), 4);
    let config::SchedulerKind::Nightly { hour, minute, .. } = &cfg.schedulers[2].kind else {
        panic!("not nightly");
    };
    assert_eq!(hour.as_deref(), Some(&[3, 15][..]));
    assert_eq!(minute.as_deref(), Some(&[0][..]));
    assert_eq!(cfg.change_sources.len(), 1);
    assert_eq!(
        cfg.www.listen,
        Some(config::Listen::Tcp {
            port: 8010,
            interface: Some("127.0.0.1".into())
        })
    );
    assert_eq!(cfg.db_url.as_deref(), Some("sqlite:///state.sqlite"));
    let config::Collapse::Function(collapse) = cfg.collapse_requests else {
        panic!("collapseRequests is not a function");
    };
    let got = loaded.functions.call(
        collapse,
        &[
            serde_json::json!(null),
            serde_json::json!("b"),
            serde_json::json!({}),
            serde_json::json!({}),
        ],
    );
    assert_eq!(got, Ok(serde_json::json!(true)));
}

#[test]
fn function_host_limits_runaway_functions() {
    let source = format!("{HEADER}def spin(n):\n    t = 0\n    for x in range(n):\n        t += x\n    return t\nc['collapseRequests'] = spin\n");
    let loaded = match load(&source) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let config::Collapse::Function(f) = loaded.config.collapse_requests else {
        panic!("not a function");
    };
    assert_eq!(
        loaded.functions.call(f, &[serde_json::json!(4)]),
        Ok(serde_json::json!(6))
    );
    assert_eq!(loaded.functions.name(f), Some("spin"));
    let msg = match loaded
        .functions
        .call(f, &[serde_json::json!(1_000_000_000)])
    {
        Ok(v) => format!("returned {v}"),
        Err(e) => e.to_string(),
    };
    assert!(
        msg.starts_with("master.cfg:7: evaluation took too long"),
        "{msg}"
    );
}

#[test]
fn runaway_memory_is_stopped() {
    let msg = error(&format!(
        "{HEADER}x = []\nfor i in range(100000000):\n    x.append('abcdefgh' * 10)\n"
    ));
    assert!(
        msg.starts_with("master.cfg:6: evaluation took too long"),
        "{msg}"
    );
}

#[test]
fn www_plugins_of_seed_000() {
    let source = format!(
        "{HEADER}def dashboard():\n    return 'html'\nc['www'] = dict(port=8010, plugins=dict(waterfall_view={{}}))\nc['www']['plugins']['wsgi_dashboards'] = [\n    {{\n        'name': 'dashboard',\n        'caption': 'Test Dashboard',  # Text shown in the menu\n        'app': dashboard,\n        'order': 5,\n        'icon': 'FaChartArea'\n    }}\n]\n"
    );
    let loaded = match load(&source) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let plugins = loaded
        .config
        .www
        .options
        .get("plugins")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        plugins["wsgi_dashboards"][0]["app"],
        serde_json::json!({"function": 0})
    );
    assert_eq!(plugins["wsgi_dashboards"][0]["order"], serde_json::json!(5));
}

#[test]
fn python_percent_formats_with_width_and_flags() {
    let cfg = "c = BuildmasterConfig = {}\nc['workers'] = [Worker('w%02d' % i, 'p') for i in range(3)]\nc['title'] = '%-5s|%5s|%03d|%.2f' % ('a', 'b', 7, 1.5)\n";
    let loaded = config::load_str("master.cfg", cfg, std::path::Path::new("/tmp")).expect("loads");
    let names: Vec<&str> = loaded
        .config
        .workers
        .iter()
        .map(|w| w.name.as_str())
        .collect();
    assert_eq!(names, ["w00", "w01", "w02"]);
    assert_eq!(loaded.config.title, "a    |    b|007|1.50");
}
