//! Step semantics on a real master and worker: result combination, decodeRC, doStepIf,
//! Compile/Test counting, SetPropertyFromCommand, logMaxSize, buildHorizon, and force
//! parameters.

mod harness;

use std::time::Duration;

use harness::{Db, TestMaster, TestWorker};
use serde_json::{json, Value};

const CFG: &str = r#"
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': @WORKER_PORT@}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {'db_url': "@DB_URL@"}
c['logMaxSize'] = 2000
c['logMaxTailSize'] = 200
c['buildHorizon'] = 2
c['properties'] = {'site': 'lab'}

def is_linux(props):
    return props.get('site') == 'lab'

f = BuildFactory()
f.addStep(ShellCommand(name="warn-rc", command="exit 1", decodeRC={0: SUCCESS, 1: WARNINGS}))
f.addStep(ShellCommand(name="tolerated", command="exit 2", flunkOnFailure=False))
f.addStep(ShellCommand(name="skipped-by-if", command="echo no", doStepIf=False))
f.addStep(ShellCommand(name="runs-by-if", command="echo yes", doStepIf=is_linux))
f.addStep(Compile(command="echo 'a.c:1: warning: unused'; echo 'b.c:2: warning: shadow'"))
f.addStep(Test(command="echo '7 passed, 0 failed'"))
f.addStep(SetPropertyFromCommand(command="echo '  v1.2  '", property="version"))
f.addStep(ShellCommand(name="big", command="for i in $(seq 1 500); do echo line-$i-xxxxxxxxxxxxxxxx; done"))
f.addStep(ShellCommand(name="show", command=Interpolate("echo %(prop:version)s %(prop:site)s %(prop:warnings-count)s %(prop:tests-passed)s %(prop:who:-nobody)s")))

c['builders'] = [BuilderConfig(name="semantics", workernames=["w1"], factory=f)]
c['schedulers'] = [ForceScheduler(name="force", builderNames=["semantics"],
    properties=[StringParameter(name="who", default=""), IntParameter(name="count", default=1)])]
c['status'] = [WebStatus(http_port="tcp:@WEB_PORT@:interface=127.0.0.1", authz=Authz(forceBuild=True))]
"#;

fn step_results(master: &TestMaster, build: &Value) -> Vec<(String, i64)> {
    let steps = master.get(&format!("api/v2/builds/{}/steps", build["buildid"]));
    steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["results"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn log_of(master: &TestMaster, build: &Value, step: &str) -> String {
    let steps = master.get(&format!("api/v2/builds/{}/steps", build["buildid"]));
    let s = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == step)
        .unwrap()
        .clone();
    let logs = master.get(&format!("api/v2/steps/{}/logs", s["stepid"]));
    master.get_text(&format!("api/v2/logs/{}/raw", logs["logs"][0]["logid"]))
}

#[test]
fn step_semantics() {
    let master = TestMaster::start(Db::Sqlite, "steps", CFG);
    let _worker = TestWorker::start(&master, "w1", "pw1");

    let (status, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"count": "many"}),
    );
    assert_eq!(status, 400, "bad int parameter is refused: {reply}");
    assert_eq!(reply["error"]["code"], -32602);
    assert!(
        reply["error"]["message"]["count"]
            .as_str()
            .unwrap()
            .contains("invalid literal"),
        "{reply}"
    );

    let (status, reply) = master.rpc(
        "api/v2/forceschedulers/force",
        "force",
        json!({"who": "dana", "username": "dana@example.org", "count": "3", "reason": "semantics"}),
    );
    assert_eq!(status, 200, "{reply}");
    let builds = master.wait_finished_builds(1, Duration::from_secs(60));
    let build = &builds[0];
    assert_eq!(
        build["results"],
        1,
        "warnings overall: {:?}",
        step_results(&master, build)
    );
    let results = step_results(&master, build);
    let expected: Vec<(String, i64)> = [
        ("worker_preparation", 0),
        ("warn-rc", 1),
        ("tolerated", 2),
        ("skipped-by-if", 3),
        ("runs-by-if", 0),
        ("compile", 1),
        ("test", 0),
        ("SetPropertyFromCommand", 0),
        ("big", 0),
        ("show", 0),
    ]
    .iter()
    .map(|(n, r)| (n.to_string(), *r))
    .collect();
    assert_eq!(results, expected);
    let show = log_of(&master, build, "show");
    assert!(
        show.contains("v1.2 lab 2 7 dana"),
        "properties from steps, config and force form: {show}"
    );
    let big = log_of(&master, build, "big");
    assert!(
        big.len() < 3000,
        "logMaxSize caps the stored log: {} bytes",
        big.len()
    );
    assert!(big.contains("log truncated"), "{big}");
    assert!(big.contains("line-500-"), "the tail is kept: {big}");

    let props = master.get(&format!("api/v2/builds/{}?property=*", build["buildid"]));
    let p = &props["builds"][0]["properties"];
    assert_eq!(p["count"][0], 3);
    assert_eq!(p["owner"][0], "dana@example.org");
    assert_eq!(p["scheduler"][0], "force");
    assert_eq!(p["buildername"][0], "semantics");
    assert_eq!(p["workername"][0], "w1");

    // buildHorizon = 2: after two more builds only the newest two remain.
    for _ in 0..2 {
        let (status, _) = master.rpc("api/v2/forceschedulers/force", "force", json!({}));
        assert_eq!(status, 200);
    }
    harness::wait_for(Duration::from_secs(60), "builds 2 and 3", || {
        let b = master.get("api/v2/builds?complete=true&order=number");
        let numbers: Vec<i64> = b["builds"]
            .as_array()?
            .iter()
            .filter_map(|b| b["number"].as_i64())
            .collect();
        (numbers == [2, 3]).then_some(())
    });
}
