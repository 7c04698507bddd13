//! The worker port options of `c['protocols']`: Twisted-style `ssl:` and `tcp:` strings and
//! `max_connections`, and the `DirectoryUpload` step's `compress`.

use std::path::Path;

use config::{load_str, Listen};

const HEADER: &str = "c = BuildmasterConfig = {}
c['workers'] = [Worker('w1', 'pw')]
c['builders'] = []
";

/// The one caller of `load_str`: the worker port and connection cap, or the error.
fn check(protocols: &str) -> Result<(Option<Listen>, Option<u32>), String> {
    let source = format!("{HEADER}c['protocols'] = {protocols}\n");
    let loaded = load_str("master.cfg", &source, Path::new("/nonexistent-basedir"))
        .map_err(|e| e.to_string())?;
    Ok((
        loaded.config.worker_port,
        loaded.config.worker_max_connections,
    ))
}

#[test]
fn ssl_with_key_certificate_and_interface() {
    let got = check(
        "{'msgpack_experimental_v7': {'port': 'ssl:9989:privateKey=k.pem:certKey=c.pem:interface=0.0.0.0', 'max_connections': 50}}",
    );
    assert_eq!(
        got,
        Ok((
            Some(Listen::Tls {
                port: 9989,
                interface: Some("0.0.0.0".into()),
                private_key: "k.pem".into(),
                cert_key: "c.pem".into(),
            }),
            Some(50)
        ))
    );
}

#[test]
fn ssl_certificate_defaults_to_the_key_file() {
    let got = check("{'pb': {'port': 'ssl:port=9989:privateKey=both.pem'}}");
    assert_eq!(
        got,
        Ok((
            Some(Listen::Tls {
                port: 9989,
                interface: None,
                private_key: "both.pem".into(),
                cert_key: "both.pem".into(),
            }),
            None
        ))
    );
}

#[test]
fn bad_worker_port_options_are_errors_with_a_line() {
    for (protocols, expected) in [
        ("{'pb': {'port': 'ssl:9989'}}", "needs privateKey=FILE"),
        (
            "{'pb': {'port': 'ssl:99999:privateKey=k'}}",
            "has a bad port",
        ),
        (
            "{'pb': {'port': 'ssl:9989:privateKey=k:cipher=x'}}",
            "unknown option 'cipher=x'",
        ),
        (
            "{'pb': {'port': 9989, 'max_connections': 0}}",
            "must be a positive int",
        ),
        (
            "{'pb': {'port': 9989, 'max_connections': '10'}}",
            "must be a positive int",
        ),
    ] {
        let err = check(protocols).expect_err(protocols);
        assert!(
            err.starts_with("master.cfg:4:") && err.contains(expected),
            "{protocols}: {err}"
        );
    }
}

#[test]
fn directory_upload_compress_is_checked() {
    let source = |compress: &str| {
        format!(
            "c = BuildmasterConfig = {{}}
c['workers'] = [Worker('w1', 'pw')]
f = BuildFactory()
f.addStep(steps.DirectoryUpload(workersrc='out', masterdest='up', compress={compress}))
c['builders'] = [BuilderConfig(name='b', workernames=['w1'], factory=f)]
"
        )
    };
    let load = |compress: &str| {
        load_str(
            "master.cfg",
            &source(compress),
            Path::new("/nonexistent-basedir"),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    for ok in ["None", "'gz'", "'bz2'"] {
        assert_eq!(load(ok), Ok(()), "{ok}");
    }
    let err = load("'xz'").expect_err("xz");
    assert!(
        err.contains("compress must be None, 'gz' or 'bz2'"),
        "{err}"
    );
}
