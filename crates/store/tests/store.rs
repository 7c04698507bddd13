//! The store's API on SQLite and, with `SIGNALBOX_TEST_PG_URL`, on PostgreSQL.

mod common;

use futures::TryStreamExt;
use model::{BuildRequestId, Properties, Results};
use serde_json::json;
use store::{
    FilterOp, FilterSpec, ListQuery, LogKind, NewBuildset, NewChange, NewSourceStamp, SchemaState,
    SqlValue, Store, StoreError,
};

store_tests!(
    migrations,
    changes,
    build_lifecycle,
    logs,
    lists,
    config_sync,
    state_and_users,
    concurrency,
);

/// Creates the schema, as `upgrade-master` does.
async fn upgraded(store: &Store) {
    let mut messages = Vec::new();
    store
        .upgrade(&mut |m| messages.push(m.to_string()))
        .await
        .expect("upgrade");
    assert!(!messages.is_empty());
}

/// A buildset on `builders` with one source stamp and a property.
fn buildset(builders: &[model::BuilderId], priority: i64, submitted_at: i64) -> NewBuildset {
    let mut properties = Properties::new();
    properties.set("reason", json!("because"), "Force Build Form");
    NewBuildset {
        reason: "forced".into(),
        external_idstring: None,
        properties,
        sourcestamps: vec![NewSourceStamp {
            branch: Some("main".into()),
            revision: Some("abc".into()),
            repository: "https://example.org/repo.git".into(),
            codebase: String::new(),
            project: "proj".into(),
            patch: None,
        }],
        builders: builders.to_vec(),
        priority,
        parent_buildid: None,
        parent_relationship: None,
        rebuilt_buildid: None,
        waited_for: false,
        submitted_at,
    }
}

fn eq(column: &'static str, value: i64) -> FilterSpec {
    FilterSpec::new(column, FilterOp::Eq, vec![SqlValue::Int(value)])
}

async fn migrations(store: &Store) {
    assert_eq!(store.schema_state().await.unwrap(), SchemaState::Empty);
    assert!(matches!(
        store.ensure_current().await,
        Err(StoreError::SchemaMismatch { .. })
    ));
    upgraded(store).await;
    assert_eq!(store.schema_state().await.unwrap(), SchemaState::Current);
    // A second upgrade has nothing to do.
    upgraded(store).await;
    assert_eq!(store.schema_state().await.unwrap(), SchemaState::Current);
    store.ensure_current().await.unwrap();
}

async fn changes(store: &Store) {
    upgraded(store).await;
    let mut properties = Properties::new();
    properties.set("event", json!({"kind": "push"}), "Change");
    let first = NewChange {
        author: "Alice <alice@example.org>".into(),
        comments: "fix the thing".into(),
        branch: Some("main".into()),
        revision: Some("1a2b".into()),
        when_timestamp: 1_700_000_000,
        repository: "https://example.org/repo.git".into(),
        project: "proj".into(),
        files: vec!["src/a.rs".into(), "README".into()],
        properties,
        created_at: 1_700_000_010,
        ..NewChange::default()
    };
    let id1 = store.change_add(&first).await.unwrap();
    let got = store.change_get(id1).await.unwrap().expect("change exists");
    assert_eq!(got.author, "Alice <alice@example.org>");
    assert_eq!(got.branch.as_deref(), Some("main"));
    assert_eq!(
        got.files,
        vec!["src/a.rs".to_string(), "README".to_string()]
    );
    assert_eq!(
        got.properties.get_with_source("event"),
        Some((&json!({"kind": "push"}), "Change"))
    );
    assert!(got.parent_changeids.is_empty());
    assert_eq!(got.committer, None);

    let second = NewChange {
        revision: Some("3c4d".into()),
        files: vec![],
        properties: Properties::new(),
        ..first.clone()
    };
    let id2 = store.change_add(&second).await.unwrap();
    let got2 = store.change_get(id2).await.unwrap().unwrap();
    assert_eq!(got2.parent_changeids, vec![id1]);
    assert_ne!(got2.sourcestampid, got.sourcestampid);
    assert!(got2.files.is_empty());

    // What changes_add returns (the event's payload) is what a read gives back.
    let third = NewChange {
        revision: Some("5e6f".into()),
        ..first.clone()
    };
    let added = match store.changes_add(vec![third], None).await.unwrap() {
        store::ChangesAdded::Recorded(added) => added,
        other => panic!("{other:?}"),
    };
    let read = store.change_get(added[0].change.id).await.unwrap().unwrap();
    assert_eq!(added[0].change, read);
    assert_eq!(read.parent_changeids, vec![id2]);
    assert_eq!(
        Some(&added[0].sourcestamp),
        store
            .sourcestamp_get(read.sourcestampid)
            .await
            .unwrap()
            .as_ref()
    );

    // The same revision again shares the source stamp.
    let id3 = store.change_add(&first).await.unwrap();
    let got3 = store.change_get(id3).await.unwrap().unwrap();
    assert_eq!(got3.sourcestampid, got.sourcestampid);
    assert_eq!(
        store
            .changes_for_sourcestamp(got.sourcestampid)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.change_get(model::ChangeId(999)).await.unwrap(), None);
    assert_eq!(store.change_last_id().await.unwrap(), Some(id3));
}

async fn build_lifecycle(store: &Store) {
    upgraded(store).await;
    let master = store.master_upsert("host:/srv/master").await.unwrap();
    assert_eq!(
        store.master_upsert("host:/srv/master").await.unwrap(),
        master
    );
    store.master_set_active(master, true).await.unwrap();
    let linux = store
        .builder_upsert("linux", Some("Linux build"), Some("proj"), &["a".into()])
        .await
        .unwrap();
    let mac = store.builder_upsert("mac", None, None, &[]).await.unwrap();
    store
        .builder_set_masters(master, &[linux, mac])
        .await
        .unwrap();
    let worker = store.worker_upsert("w1").await.unwrap();

    // Two buildsets; the higher priority one comes first.
    let (bs_low, low) = store
        .buildset_add(&buildset(&[linux], 0, 100))
        .await
        .unwrap();
    let (bs, requests) = store
        .buildset_add(&buildset(&[linux, mac], 5, 200))
        .await
        .unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].0, linux);
    let record = store.buildset_get(bs).await.unwrap().unwrap();
    assert!(!record.complete);
    assert_eq!(record.results, None);
    assert_eq!(record.sourcestamps.len(), 1);
    assert_eq!(record.sourcestamps[0].branch.as_deref(), Some("main"));
    // Identical source stamps are shared between buildsets.
    let low_record = store.buildset_get(bs_low).await.unwrap().unwrap();
    assert_eq!(low_record.sourcestamps[0].id, record.sourcestamps[0].id);
    let props = store.buildset_properties(bs).await.unwrap();
    assert_eq!(
        props.get_with_source("reason"),
        Some((&json!("because"), "Force Build Form"))
    );

    let unclaimed = store.buildrequests_unclaimed(None).await.unwrap();
    let ids: Vec<BuildRequestId> = unclaimed.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![requests[0].1, requests[1].1, low[0].1]);
    let only_mac = store.buildrequests_unclaimed(Some(&[mac])).await.unwrap();
    assert_eq!(only_mac.len(), 1);
    assert_eq!(only_mac[0].builderid, mac);
    assert!(store
        .buildrequests_unclaimed(Some(&[]))
        .await
        .unwrap()
        .is_empty());

    let linux_req = requests[0].1;
    let mac_req = requests[1].1;
    assert!(store
        .buildrequests_claim(&[linux_req, mac_req], master, 300)
        .await
        .unwrap());
    // All or nothing: the low request must stay unclaimed when one of the pair is taken.
    assert!(!store
        .buildrequests_claim(&[low[0].1, linux_req], master, 301)
        .await
        .unwrap());
    let low_req = store.buildrequest_get(low[0].1).await.unwrap().unwrap();
    assert_eq!(low_req.claimed_by, None);
    assert_eq!(low_req.results, None);
    let claimed = store.buildrequest_get(linux_req).await.unwrap().unwrap();
    assert_eq!(claimed.claimed_by, Some((master, 300)));
    assert_eq!(store.buildrequests_unclaimed(None).await.unwrap().len(), 1);

    // Builds are numbered per builder.
    let (b1, n1) = store
        .build_add(linux, linux_req, Some(worker), master, "building", 310)
        .await
        .unwrap();
    let (b2, n2) = store
        .build_add(linux, linux_req, Some(worker), master, "building", 320)
        .await
        .unwrap();
    let (b3, n3) = store
        .build_add(mac, mac_req, None, master, "building", 330)
        .await
        .unwrap();
    assert_eq!((n1, n2, n3), (1, 2, 1));

    // Steps get numbers from 0 and unique names.
    let (s0, num0, name0) = store.step_add(b1, "compile", "pending").await.unwrap();
    let (_s1, num1, name1) = store.step_add(b1, "compile", "pending").await.unwrap();
    let (_s2, num2, name2) = store.step_add(b1, "compile", "pending").await.unwrap();
    assert_eq!((num0, num1, num2), (0, 1, 2));
    assert_eq!(
        (name0.as_str(), name1.as_str(), name2.as_str()),
        ("compile", "compile_2", "compile_3")
    );
    let long = "x".repeat(60);
    let (_s3, _, long_name) = store.step_add(b1, &long, "pending").await.unwrap();
    assert_eq!(long_name.chars().count(), 50);
    store.step_start(s0, 311).await.unwrap();
    store.step_set_state_string(s0, "compiling").await.unwrap();
    store
        .step_set_urls(s0, &[("docs".into(), "https://example.org/d".into())])
        .await
        .unwrap();
    store
        .step_finish(s0, Results::Warnings, true, 315)
        .await
        .unwrap();
    let steps = store.steps_for_build(b1).await.unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[0].state_string, "compiling");
    assert_eq!(steps[0].results, Some(Results::Warnings));
    assert_eq!(
        steps[0].urls,
        vec![("docs".to_string(), "https://example.org/d".to_string())]
    );
    assert!(steps[0].hidden);
    assert_eq!(steps[0].started_at, Some(311));
    assert_eq!(steps[1].results, None);

    // Properties.
    let mut props = Properties::new();
    props.set("buildnumber", json!(1), "Build");
    props.set("workername", json!("w1"), "Worker");
    store.build_properties_set(b1, &props).await.unwrap();
    let mut update = Properties::new();
    update.set("buildnumber", json!(7), "Build");
    store.build_properties_set(b1, &update).await.unwrap();
    let got = store.build_properties(b1).await.unwrap();
    assert_eq!(got.get("buildnumber"), Some(&json!(7)));
    assert_eq!(
        got.get_with_source("workername"),
        Some((&json!("w1"), "Worker"))
    );

    // Crash recovery sees the running builds and the held claims.
    let running: Vec<_> = store
        .builds_unfinished_for_master(master)
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(running, vec![b1, b2, b3]);
    assert_eq!(
        store.claims_held_by_master(master).await.unwrap(),
        vec![linux_req, mac_req]
    );

    store
        .build_set_state_string(b1, "failed compile")
        .await
        .unwrap();
    store.build_finish(b1, Results::Failure, 400).await.unwrap();
    let build = store.build_get(b1).await.unwrap().unwrap();
    assert_eq!(build.results, Some(Results::Failure));
    assert_eq!(build.complete_at, Some(400));
    assert_eq!(build.state_string, "failed compile");
    assert_eq!(build.workerid, Some(worker));
    assert_eq!(
        store.build_by_number(linux, 2).await.unwrap().map(|b| b.id),
        Some(b2)
    );

    // previous_finished_build skips running builds.
    assert_eq!(
        store
            .previous_finished_build(linux, 3)
            .await
            .unwrap()
            .map(|b| b.id),
        Some(b1)
    );
    assert_eq!(store.previous_finished_build(linux, 1).await.unwrap(), None);
    store.build_finish(b2, Results::Success, 410).await.unwrap();
    assert_eq!(
        store
            .previous_finished_build(linux, 3)
            .await
            .unwrap()
            .map(|b| b.id),
        Some(b2)
    );
    assert_eq!(
        store
            .previous_finished_build(linux, 2)
            .await
            .unwrap()
            .map(|b| b.id),
        Some(b1)
    );

    // The buildset completes when its last request does, with the worst result.
    let done = store
        .buildrequests_complete(&[mac_req], Results::Success, 420)
        .await
        .unwrap();
    assert!(done.is_empty());
    assert!(!store.buildset_get(bs).await.unwrap().unwrap().complete);
    let done = store
        .buildrequests_complete(&[linux_req], Results::Failure, 430)
        .await
        .unwrap();
    assert_eq!(done, vec![bs]);
    let record = store.buildset_get(bs).await.unwrap().unwrap();
    assert!(record.complete);
    assert_eq!(record.complete_at, Some(430));
    assert_eq!(record.results, Some(Results::Failure));
    let req = store.buildrequest_get(mac_req).await.unwrap().unwrap();
    assert!(req.complete);
    assert_eq!(req.results, Some(Results::Success));
    // Completing again changes nothing.
    assert!(store
        .buildrequests_complete(&[linux_req], Results::Success, 440)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claims_held_by_master(master)
        .await
        .unwrap()
        .is_empty());

    // Unclaim returns a request to the pool.
    assert!(store
        .buildrequests_claim(&[low[0].1], master, 450)
        .await
        .unwrap());
    assert!(store
        .buildrequests_unclaimed(None)
        .await
        .unwrap()
        .is_empty());
    store
        .buildrequests_unclaim(&[low[0].1], master)
        .await
        .unwrap();
    assert_eq!(store.buildrequests_unclaimed(None).await.unwrap().len(), 1);

    assert!(matches!(
        store
            .build_finish(model::BuildId(9999), Results::Success, 1)
            .await,
        Err(StoreError::NotFound {
            table: "builds",
            id: 9999
        })
    ));
}

async fn logs(store: &Store) {
    upgraded(store).await;
    let master = store.master_upsert("m").await.unwrap();
    let builder = store.builder_upsert("b", None, None, &[]).await.unwrap();
    let (_, reqs) = store
        .buildset_add(&buildset(&[builder], 0, 1))
        .await
        .unwrap();
    let (build, _) = store
        .build_add(builder, reqs[0].1, None, master, "", 1)
        .await
        .unwrap();
    let (step, _, _) = store.step_add(build, "shell", "").await.unwrap();
    let (log, slug) = store.log_add(step, "stdio", LogKind::Stdio).await.unwrap();
    assert_eq!(slug, "stdio");
    let (_, slug2) = store.log_add(step, "stdio", LogKind::Text).await.unwrap();
    assert_eq!(slug2, "stdio_2");
    let (_, slug3) = store
        .log_add(step, "test results (xml)", LogKind::Html)
        .await
        .unwrap();
    assert_eq!(slug3, "test_results__xml_");

    // Three chunks: lines 0-2, 3-5 and 6-1005 (repetitive, so it compresses).
    let a = store
        .log_append(log, "ohello\neerr\nodone\n")
        .await
        .unwrap();
    assert_eq!((a.first_line, a.num_lines), (0, 3));
    let b = store
        .log_append(log, "hcmd\no\nolast of two")
        .await
        .unwrap();
    assert_eq!((b.first_line, b.num_lines), (3, 3));
    let repetitive: String = (0..1000)
        .map(|i| format!("oline {} of the same old output\n", i % 10))
        .collect();
    let c = store.log_append(log, &repetitive).await.unwrap();
    assert_eq!((c.first_line, c.num_lines), (6, 1000));
    let empty = store.log_append(log, "").await.unwrap();
    assert_eq!((empty.first_line, empty.num_lines), (1006, 0));

    let record = store.log_get(log).await.unwrap().unwrap();
    assert_eq!(record.num_lines, 1006);
    assert_eq!(record.kind, LogKind::Stdio);
    assert!(!record.complete);

    assert_eq!(store.log_lines(log, 0, 0).await.unwrap(), "ohello\n");
    assert_eq!(
        store.log_lines(log, 1, 4).await.unwrap(),
        "eerr\nodone\nhcmd\no\n"
    );
    assert_eq!(
        store.log_lines(log, 5, 7).await.unwrap(),
        "olast of two\noline 0 of the same old output\noline 1 of the same old output\n"
    );
    assert_eq!(
        store.log_lines(log, 1004, 2000).await.unwrap(),
        "oline 8 of the same old output\noline 9 of the same old output\n"
    );
    assert_eq!(store.log_lines(log, 3000, 4000).await.unwrap(), "");

    let chunks: Vec<String> = store.log_chunks_stream(log).try_collect().await.unwrap();
    assert_eq!(chunks.len(), 3);
    let whole: String = chunks.concat();
    assert_eq!(
        whole,
        format!("ohello\neerr\nodone\nhcmd\no\nolast of two\n{repetitive}")
    );

    let raw_len = whole.len() as i64;
    let stored = store.log_stored_bytes(log).await.unwrap();
    assert!(
        stored > 0 && stored < raw_len / 4,
        "stored {stored} of {raw_len}"
    );

    // Streaming pages through more chunks than one page holds.
    let (many, _) = store.log_add(step, "many", LogKind::Text).await.unwrap();
    for i in 0..40 {
        store
            .log_append(many, &format!("line {i}\n"))
            .await
            .unwrap();
    }
    let streamed: Vec<String> = store.log_chunks_stream(many).try_collect().await.unwrap();
    assert_eq!(streamed.len(), 40);
    assert_eq!(streamed[39], "line 39\n");
    assert_eq!(
        store.log_lines(many, 15, 17).await.unwrap(),
        "line 15\nline 16\nline 17\n"
    );

    store.log_finish(log).await.unwrap();
    assert!(store.log_get(log).await.unwrap().unwrap().complete);
    let slugs: Vec<String> = store
        .logs_for_step(step)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.slug)
        .collect();
    assert_eq!(
        slugs,
        vec!["stdio", "stdio_2", "test_results__xml_", "many"]
    );
    assert_eq!(
        store
            .log_get_by_slug(step, "stdio_2")
            .await
            .unwrap()
            .map(|l| l.kind),
        Some(LogKind::Text)
    );
}

async fn lists(store: &Store) {
    upgraded(store).await;
    let m1 = store.master_upsert("m1").await.unwrap();
    let m2 = store.master_upsert("m2").await.unwrap();
    store.master_set_active(m1, true).await.unwrap();
    let a = store
        .builder_upsert("alpha", None, Some("proj"), &["z".into(), "fast".into()])
        .await
        .unwrap();
    let b = store
        .builder_upsert("beta", Some("desc"), None, &["fast".into()])
        .await
        .unwrap();
    store.builder_set_masters(m1, &[a, b]).await.unwrap();
    store.builder_set_masters(m2, &[a]).await.unwrap();

    let (builders, total) = store.builders_list(&ListQuery::all()).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(builders[0].name, "alpha");
    assert_eq!(builders[0].tags, vec!["fast".to_string(), "z".to_string()]);
    assert_eq!(builders[0].masterids, vec![m1, m2]);
    assert_eq!(builders[1].masterids, vec![m1]);
    assert!(builders[0].projectid.is_some());
    // The whole list is kept in memory on SQLite: every kind of write must show at once.
    let paged = ListQuery {
        offset: Some(1),
        limit: Some(5),
        ..ListQuery::all()
    };
    let (page, total) = store.builders_list(&paged).await.unwrap();
    assert_eq!((page.len(), page[0].id, total), (1, b, 2));
    store
        .builder_upsert("beta", Some("desc"), None, &["slow".into()])
        .await
        .unwrap();
    store.builder_set_masters(m2, &[a, b]).await.unwrap();
    let (builders, _) = store.builders_list(&ListQuery::all()).await.unwrap();
    assert_eq!(builders[1].tags, vec!["slow".to_string()]);
    assert_eq!(builders[1].masterids, vec![m1, m2]);
    store.master_set_active(m2, false).await.unwrap();
    let (builders, _) = store.builders_list(&ListQuery::all()).await.unwrap();
    assert_eq!(builders[1].masterids, vec![m1]);
    store.builder_set_masters(m2, &[a]).await.unwrap();
    let (on_m2, _) = store
        .builders_list(&ListQuery::filtered(vec![eq("masterid", m2.0)]))
        .await
        .unwrap();
    assert_eq!(on_m2.iter().map(|b| b.id).collect::<Vec<_>>(), vec![a]);
    let tagged = ListQuery::filtered(vec![FilterSpec::new(
        "tags",
        FilterOp::Eq,
        vec![SqlValue::Text("z".into())],
    )]);
    assert_eq!(store.builders_list(&tagged).await.unwrap().0.len(), 1);
    assert_eq!(
        store
            .builder_get(b)
            .await
            .unwrap()
            .unwrap()
            .description
            .as_deref(),
        Some("desc")
    );

    // 12 builds on alpha, 3 on beta.
    let (_, reqs) = store.buildset_add(&buildset(&[a, b], 0, 1)).await.unwrap();
    let worker = store.worker_upsert("w").await.unwrap();
    for i in 0..12 {
        let (id, _) = store
            .build_add(a, reqs[0].1, Some(worker), m1, "", 100 + i)
            .await
            .unwrap();
        if i % 3 == 0 {
            store
                .build_finish(id, Results::Failure, 200 + i)
                .await
                .unwrap();
        }
    }
    for i in 0..3 {
        store
            .build_add(b, reqs[1].1, None, m1, "", 100 + i)
            .await
            .unwrap();
    }

    let query = ListQuery {
        filters: vec![eq("builderid", a.0)],
        order: vec![("number", true)],
        limit: Some(5),
        offset: Some(2),
    };
    let (builds, total) = store.builds_list(&query).await.unwrap();
    assert_eq!(total, 12);
    assert_eq!(
        builds.iter().map(|b| b.number).collect::<Vec<_>>(),
        vec![10, 9, 8, 7, 6]
    );

    let offset_only = ListQuery {
        offset: Some(13),
        ..ListQuery::all()
    };
    let (builds, total) = store.builds_list(&offset_only).await.unwrap();
    assert_eq!((builds.len(), total), (2, 15));
    let past_the_end = ListQuery {
        limit: Some(5),
        offset: Some(20),
        ..ListQuery::all()
    };
    let (builds, total) = store.builds_list(&past_the_end).await.unwrap();
    assert_eq!((builds.len(), total), (0, 15));
    // NULLs first ascending, then the row id breaks ties: the order survives SQLite's
    // packed rows.
    let by_completion = ListQuery {
        order: vec![("complete_at", false)],
        limit: Some(15),
        ..ListQuery::all()
    };
    let (builds, _) = store.builds_list(&by_completion).await.unwrap();
    let keys: Vec<(Option<i64>, i64)> = builds.iter().map(|b| (b.complete_at, b.id.0)).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.iter().filter(|(c, _)| c.is_none()).count(), 11);
    let awkward = "it's\n'quoted', done\n";
    store
        .build_set_state_string(builds[0].id, awkward)
        .await
        .unwrap();
    let (listed, _) = store
        .builds_list(&ListQuery::filtered(vec![eq("buildid", builds[0].id.0)]))
        .await
        .unwrap();
    assert_eq!(listed[0].state_string, awkward);

    let finished = ListQuery::filtered(vec![eq("complete", 1)]);
    let (builds, total) = store.builds_list(&finished).await.unwrap();
    assert_eq!(total, 4);
    assert!(builds.iter().all(|b| b.results == Some(Results::Failure)));
    let unfinished = ListQuery::filtered(vec![FilterSpec::new(
        "results",
        FilterOp::Eq,
        vec![SqlValue::Null],
    )]);
    assert_eq!(store.builds_list(&unfinished).await.unwrap().1, 11);
    let not_failed = ListQuery::filtered(vec![FilterSpec::new(
        "results",
        FilterOp::Ne,
        vec![SqlValue::Int(2)],
    )]);
    assert_eq!(store.builds_list(&not_failed).await.unwrap().1, 11);
    let range = ListQuery::filtered(vec![
        FilterSpec::new("started_at", FilterOp::Ge, vec![SqlValue::Int(105)]),
        FilterSpec::new("started_at", FilterOp::Lt, vec![SqlValue::Int(108)]),
        eq("builderid", a.0),
    ]);
    assert_eq!(store.builds_list(&range).await.unwrap().1, 3);
    let any_of = ListQuery::filtered(vec![FilterSpec::new(
        "number",
        FilterOp::In,
        vec![SqlValue::Int(1), SqlValue::Int(2), SqlValue::Int(3)],
    )]);
    assert_eq!(store.builds_list(&any_of).await.unwrap().1, 6);
    // Order by a nullable column, ties broken by id.
    let by_end = ListQuery {
        order: vec![("complete_at", true)],
        limit: Some(3),
        ..ListQuery::all()
    };
    let (builds, _) = store.builds_list(&by_end).await.unwrap();
    assert_eq!(
        builds.iter().map(|b| b.complete_at).collect::<Vec<_>>(),
        vec![Some(209), Some(206), Some(203)]
    );

    // Bad queries are refused, not sent.
    let unknown = ListQuery::filtered(vec![eq("password", 1)]);
    assert!(matches!(
        store.builds_list(&unknown).await,
        Err(StoreError::BadQuery { .. })
    ));
    let wrong_type = ListQuery::filtered(vec![FilterSpec::new(
        "number",
        FilterOp::Eq,
        vec![SqlValue::Text("1".into())],
    )]);
    assert!(matches!(
        store.builds_list(&wrong_type).await,
        Err(StoreError::BadQuery { .. })
    ));

    // Build requests: claimed flag and claimer.
    assert!(store
        .buildrequests_claim(&[reqs[0].1], m1, 50)
        .await
        .unwrap());
    let pending = ListQuery::filtered(vec![eq("claimed", 0)]);
    let (rows, total) = store.buildrequests_list(&pending).await.unwrap();
    assert_eq!((total, rows[0].id), (1, reqs[1].1));
    let by_m1 = ListQuery::filtered(vec![eq("claimed_by_masterid", m1.0)]);
    assert_eq!(
        store.buildrequests_list(&by_m1).await.unwrap().0[0].claimed_by,
        Some((m1, 50))
    );

    // Steps and logs.
    let (build, _) = store
        .builds_list(&ListQuery {
            limit: Some(1),
            ..ListQuery::all()
        })
        .await
        .unwrap();
    let build = build[0].id;
    for name in ["a", "b", "c"] {
        store.step_add(build, name, "").await.unwrap();
    }
    let steps = ListQuery {
        filters: vec![eq("buildid", build.0)],
        order: vec![("number", true)],
        ..ListQuery::all()
    };
    let names: Vec<String> = store
        .steps_list(&steps)
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, vec!["c", "b", "a"]);
    let (step, _) = store
        .steps_list(&ListQuery::filtered(vec![eq("buildid", build.0)]))
        .await
        .unwrap();
    store
        .log_add(step[0].id, "stdio", LogKind::Stdio)
        .await
        .unwrap();
    let (logs, total) = store
        .logs_list(&ListQuery::filtered(vec![eq("stepid", step[0].id.0)]))
        .await
        .unwrap();
    assert_eq!((total, logs[0].slug.as_str()), (1, "stdio"));

    // Workers with connections and configuration.
    store
        .worker_set_configured(m1, &[(worker, a), (worker, b)])
        .await
        .unwrap();
    store
        .worker_connected(worker, m1, &json!({"host": "box", "version": "4.3.0"}))
        .await
        .unwrap();
    store.worker_upsert("idle").await.unwrap();
    let (workers, total) = store
        .workers_list(&ListQuery {
            order: vec![("name", false)],
            ..ListQuery::all()
        })
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(workers[0].name, "idle");
    assert!(workers[0].configured_on.is_empty());
    assert_eq!(workers[1].connected_to, vec![m1]);
    assert_eq!(workers[1].configured_on, vec![(m1, a), (m1, b)]);
    assert_eq!(workers[1].info["host"], json!("box"));
    let on_b = ListQuery::filtered(vec![eq("builderid", b.0)]);
    assert_eq!(store.workers_list(&on_b).await.unwrap().1, 1);
    let (builders_of_worker, _) = store
        .builders_list(&ListQuery::filtered(vec![eq("workerid", worker.0)]))
        .await
        .unwrap();
    assert_eq!(builders_of_worker.len(), 2);

    // Changes: contains, files in the batch.
    for (i, author) in ["Alice <a@x>", "Bob <b@x>", "alice 100%"]
        .iter()
        .enumerate()
    {
        let change = NewChange {
            author: author.to_string(),
            comments: format!("change {i}"),
            when_timestamp: i as i64,
            files: vec![format!("f{i}")],
            ..NewChange::default()
        };
        store.change_add(&change).await.unwrap();
    }
    let percent = ListQuery::filtered(vec![FilterSpec::new(
        "author",
        FilterOp::Contains,
        vec![SqlValue::Text("100%".into())],
    )]);
    let (changes, total) = store.changes_list(&percent).await.unwrap();
    assert_eq!(
        (total, changes[0].files.clone()),
        (1, vec!["f2".to_string()])
    );
    let newest = ListQuery {
        order: vec![("changeid", true)],
        limit: Some(2),
        ..ListQuery::all()
    };
    let (changes, total) = store.changes_list(&newest).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        changes
            .iter()
            .map(|c| c.files[0].as_str())
            .collect::<Vec<_>>(),
        vec!["f2", "f1"]
    );

    // Buildsets with embedded source stamps, source stamps, masters, schedulers.
    let (sets, total) = store
        .buildsets_list(&ListQuery::filtered(vec![eq("complete", 0)]))
        .await
        .unwrap();
    assert_eq!((total, sets[0].sourcestamps.len()), (1, 1));
    let (stamps, _) = store
        .sourcestamps_list(&ListQuery::filtered(vec![eq("buildsetid", sets[0].id.0)]))
        .await
        .unwrap();
    assert_eq!(stamps[0].revision.as_deref(), Some("abc"));
    let (masters, _) = store
        .masters_list(&ListQuery::filtered(vec![eq("active", 1)]))
        .await
        .unwrap();
    assert_eq!(masters.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m1]);
    let (masters, _) = store
        .masters_list(&ListQuery::filtered(vec![eq("builderid", a.0)]))
        .await
        .unwrap();
    assert_eq!(masters.len(), 2);
    let sched = store.scheduler_upsert("force", m1).await.unwrap();
    store.scheduler_set_enabled(sched, false).await.unwrap();
    let (schedulers, _) = store.schedulers_list(&ListQuery::all()).await.unwrap();
    assert_eq!(
        (schedulers[0].enabled, schedulers[0].masterid),
        (false, Some(m1))
    );
    store.changesource_upsert("poller", m2).await.unwrap();
    let (sources, _) = store
        .changesources_list(&ListQuery::filtered(vec![eq("masterid", m2.0)]))
        .await
        .unwrap();
    assert_eq!(sources[0].name, "poller");
}

async fn config_sync(store: &Store) {
    upgraded(store).await;
    let m = store.master_upsert("m").await.unwrap();
    store.master_set_active(m, true).await.unwrap();
    let a = store
        .builder_upsert("a", None, None, &["t1".into()])
        .await
        .unwrap();
    let b = store.builder_upsert("b", None, None, &[]).await.unwrap();
    store.builder_set_masters(m, &[a, b]).await.unwrap();
    let w = store.worker_upsert("w").await.unwrap();
    store
        .worker_set_configured(m, &[(w, a), (w, b)])
        .await
        .unwrap();
    // Reconfig: b goes away; a's worker configuration stays.
    store.builder_set_masters(m, &[a]).await.unwrap();
    assert_eq!(
        store.worker_get(w).await.unwrap().unwrap().configured_on,
        vec![(m, a)]
    );
    // Retagging replaces tags; the id is stable.
    assert_eq!(
        store
            .builder_upsert("a", Some("new"), Some("p"), &["t2".into()])
            .await
            .unwrap(),
        a
    );
    let builder = store.builder_get(a).await.unwrap().unwrap();
    assert_eq!(builder.tags, vec!["t2".to_string()]);
    assert_eq!(builder.description.as_deref(), Some("new"));
    assert_eq!(builder.projectid, store.project_id("p").await.unwrap());
    assert_eq!(store.builder_id("b").await.unwrap(), Some(b));

    store
        .worker_connected(w, m, &json!({"admin": "me"}))
        .await
        .unwrap();
    store
        .worker_set_state(w, true, Some("maintenance"), false)
        .await
        .unwrap();
    let worker = store.worker_get(w).await.unwrap().unwrap();
    assert_eq!(
        (
            worker.paused,
            worker.pause_reason.as_deref(),
            worker.graceful
        ),
        (true, Some("maintenance"), false)
    );
    assert_eq!(worker.connected_to, vec![m]);
    store.worker_disconnected(w, m).await.unwrap();
    assert!(store
        .worker_get(w)
        .await
        .unwrap()
        .unwrap()
        .connected_to
        .is_empty());

    // A stopped master lets go of everything.
    store.worker_connected(w, m, &json!({})).await.unwrap();
    store.master_set_active(m, false).await.unwrap();
    assert!(store
        .builder_get(a)
        .await
        .unwrap()
        .unwrap()
        .masterids
        .is_empty());
    assert!(store
        .worker_get(w)
        .await
        .unwrap()
        .unwrap()
        .connected_to
        .is_empty());
    assert!(!store.master_get(m).await.unwrap().unwrap().active);
}

async fn state_and_users(store: &Store) {
    upgraded(store).await;
    assert_eq!(
        store
            .object_state_get("poller", "GitPoller", "lastRev")
            .await
            .unwrap(),
        None
    );
    store
        .object_state_set("poller", "GitPoller", "lastRev", &json!({"main": "abc"}))
        .await
        .unwrap();
    store
        .object_state_set("poller", "GitPoller", "lastRev", &json!({"main": "def"}))
        .await
        .unwrap();
    assert_eq!(
        store
            .object_state_get("poller", "GitPoller", "lastRev")
            .await
            .unwrap(),
        Some(json!({"main": "def"}))
    );

    let m = store.master_upsert("m").await.unwrap();
    let s = store.scheduler_upsert("tree", m).await.unwrap();
    assert_eq!(store.scheduler_upsert("tree", m).await.unwrap(), s);
    assert!(store.scheduler_enabled(s).await.unwrap());
    let mut ids = Vec::new();
    for i in 0..3 {
        let c = NewChange {
            author: "a".into(),
            comments: format!("{i}"),
            ..NewChange::default()
        };
        ids.push(store.change_add(&c).await.unwrap());
    }
    store
        .scheduler_changes_classify(s, ids[0], true)
        .await
        .unwrap();
    store
        .scheduler_changes_classify(s, ids[1], false)
        .await
        .unwrap();
    store
        .scheduler_changes_classify(s, ids[2], false)
        .await
        .unwrap();
    store
        .scheduler_changes_classify(s, ids[2], true)
        .await
        .unwrap();
    assert_eq!(
        store.scheduler_changes_get(s).await.unwrap(),
        vec![(ids[0], true), (ids[1], false), (ids[2], true)]
    );
    store
        .scheduler_changes_flush(s, Some(ids[2]))
        .await
        .unwrap();
    assert_eq!(
        store.scheduler_changes_get(s).await.unwrap(),
        vec![(ids[2], true)]
    );
    store.scheduler_changes_flush(s, None).await.unwrap();
    assert!(store.scheduler_changes_get(s).await.unwrap().is_empty());

    let uid = store
        .user_add(
            "alice@x",
            Some("alice"),
            None,
            &[("email".into(), "alice@x".into())],
        )
        .await
        .unwrap();
    store.user_add("bob@x", None, None, &[]).await.unwrap();
    let update = store::UserUpdate {
        identifier: None,
        bb_username: None,
        bb_password: Some("hash"),
        attributes: &[("git".into(), "Alice <alice@x>".into())],
    };
    store.user_update(uid, &update).await.unwrap();
    let alice = store
        .user_get_by_identifier("alice@x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice.bb_password.as_deref(), Some("hash"));
    assert_eq!(alice.bb_username.as_deref(), Some("alice"));
    assert_eq!(alice.attributes.len(), 2);
    assert_eq!(
        store
            .user_get_by_username("alice")
            .await
            .unwrap()
            .map(|u| u.uid),
        Some(uid)
    );
    assert_eq!(store.users_list().await.unwrap().len(), 2);
    store.user_remove(uid).await.unwrap();
    assert_eq!(store.users_list().await.unwrap().len(), 1);
    assert_eq!(store.user_get_by_identifier("alice@x").await.unwrap(), None);
}

/// Many tasks numbering builds, adding steps and claiming at once.
async fn concurrency(store: &Store) {
    upgraded(store).await;
    let master = store.master_upsert("m").await.unwrap();
    let builder = store.builder_upsert("b", None, None, &[]).await.unwrap();
    let (bsid, reqs) = store
        .buildset_add(&buildset(&[builder, builder, builder], 0, 1))
        .await
        .unwrap();
    let request = reqs[0].1;

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.build_add(builder, request, None, master, "", 1).await
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.push(task.await.unwrap().unwrap().1);
    }
    numbers.sort();
    assert_eq!(numbers, (1..=8).collect::<Vec<_>>());

    let (build, _) = store
        .build_add(builder, request, None, master, "", 1)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.step_add(build, "same", "").await
        }));
    }
    let mut names = Vec::new();
    for task in tasks {
        names.push(task.await.unwrap().unwrap().2);
    }
    names.sort();
    assert_eq!(
        names,
        vec!["same", "same_2", "same_3", "same_4", "same_5", "same_6"]
    );

    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        // Half ask in one order, half in the other: neither may deadlock.
        let ids = match i % 2 {
            0 => vec![reqs[0].1, reqs[1].1],
            _ => vec![reqs[1].1, reqs[0].1],
        };
        tasks.push(tokio::spawn(async move {
            store.buildrequests_claim(&ids, master, 2).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += task.await.unwrap().unwrap() as usize;
    }
    assert_eq!(won, 1);

    // The three requests complete at once; the buildset completes exactly once.
    let mut tasks = Vec::new();
    for (i, (_, id)) in reqs.iter().enumerate() {
        let store = store.clone();
        let id = *id;
        let result = [Results::Success, Results::Warnings, Results::Success][i];
        tasks.push(tokio::spawn(async move {
            store.buildrequests_complete(&[id], result, 3).await
        }));
    }
    let mut completed = Vec::new();
    for task in tasks {
        completed.extend(task.await.unwrap().unwrap());
    }
    assert_eq!(completed, vec![bsid]);
    assert_eq!(
        store.buildset_get(bsid).await.unwrap().unwrap().results,
        Some(Results::Warnings)
    );
}

#[tokio::test]
async fn sqlite_in_memory() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), store::Backend::Sqlite);
    upgraded(&store).await;
    let master = store.master_upsert("m").await.unwrap();
    assert_eq!(store.master_get(master).await.unwrap().unwrap().name, "m");
    // In memory, lists go through sqlx's connection (the file reader cannot see it).
    let (masters, total) = store.masters_list(&ListQuery::all()).await.unwrap();
    assert_eq!((masters.len(), total), (1, 1));
}

#[tokio::test]
async fn sqlite_file_uses_wal() {
    use sqlx::{Connection, Row};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    upgraded(&store).await;
    store.close().await;
    // Lists read through their own connections on a file; closing ends those too.
    assert!(store.builds_list(&ListQuery::all()).await.is_err());
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let row = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), "wal");
}

#[tokio::test]
async fn bad_url() {
    assert!(matches!(
        Store::connect("mysql://x").await,
        Err(StoreError::BadUrl { .. })
    ));
}
