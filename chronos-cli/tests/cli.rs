//! Drives the real `chronos` binary: create → update → get --as-of → delete → restore →
//! history, in human and `--json` output, plus bad inputs that must exit non-zero.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn chronos(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chronos"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run chronos")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = chronos(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(ok(dir, &a).trim()).expect("--json prints one JSON document")
}

#[test]
fn record_lifecycle_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let c = ["-c", "customers"];

    let created = json(
        dir,
        &[
            &["create"][..],
            &c,
            &[
                "--data",
                r#"{"name":"Ada","plan":"free"}"#,
                "--actor",
                "cli",
            ],
        ]
        .concat(),
    );
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        (created["ov"].as_u64(), created["op"].as_str()),
        (Some(0), Some("CREATE"))
    );
    let at0 = created["at"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(5));

    let human = ok(
        dir,
        &[
            &["update"][..],
            &c,
            &[
                &id,
                "--data",
                r#"{"name":"Ada","plan":"pro"}"#,
                "--expected-ov",
                "0",
            ],
        ]
        .concat(),
    );
    assert!(
        human.starts_with(&format!("updated {id} -> ov 1 ")),
        "{human}"
    );

    let then = json(dir, &[&["get"][..], &c, &[&id, "--as-of", &at0]].concat());
    assert_eq!(then["plan"], "free");
    assert_eq!(then["_system"]["ov"], 0);
    let latest = ok(dir, &[&["get"][..], &c, &[&id]].concat());
    assert!(
        latest.contains("\"plan\": \"pro\""),
        "human get pretty-prints the record: {latest}"
    );

    let deleted = json(
        dir,
        &[&["delete"][..], &c, &[&id, "--reason", "gdpr"]].concat(),
    );
    assert_eq!(deleted["op"], "DELETE");
    let missing = chronos(dir, &[&["get"][..], &c, &[&id]].concat());
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    let restored = json(dir, &[&["restore"][..], &c, &[&id, "--ov", "1"]].concat());
    assert_eq!(
        (restored["ov"].as_u64(), restored["op"].as_str()),
        (Some(3), Some("RESTORE"))
    );
    assert_eq!(
        json(dir, &[&["get"][..], &c, &[&id]].concat())["plan"],
        "pro"
    );

    let hist = json(dir, &[&["history"][..], &c, &[&id]].concat());
    let ops: Vec<&str> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["CREATE", "UPDATE", "DELETE", "RESTORE"]);
    assert_eq!(hist[2]["reason"], "gdpr");
    let table = ok(dir, &[&["history"][..], &c, &[&id]].concat());
    assert!(
        table.contains("4 version(s)") && table.contains("RESTORE"),
        "{table}"
    );

    let listed = json(
        dir,
        &[&["list"][..], &c, &["--filter", r#"{"plan":"pro"}"#]].concat(),
    );
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["_id"], id.as_str());

    let plan = json(
        dir,
        &[&["restore-collection"][..], &c, &["--cv", "1", "--dry-run"]].concat(),
    );
    assert_eq!(plan["planned"][0]["action"], "restore to ov 0");
    assert!(plan["applied"].as_array().unwrap().is_empty());
}

#[test]
fn bad_input_exits_non_zero_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases: &[(&[&str], &str)] = &[
        (
            &["create", "-c", "x", "--data", "{not json"],
            "--data is not valid JSON",
        ),
        (
            &["create", "-c", "x", "--data", "[1,2]"],
            "must be a JSON object",
        ),
        (
            &["get", "-c", "x", "not-an-id"],
            "invalid record id 'not-an-id'",
        ),
        (
            &[
                "get",
                "-c",
                "x",
                "507f1f77bcf86cd799439011",
                "--as-of",
                "yesterday",
            ],
            "invalid instant 'yesterday'",
        ),
        (
            &["list", "-c", "x", "--filter", r#"{"a":{"$bogus":1}}"#],
            "unknown filter operator '$bogus'",
        ),
        (
            &["create", "-c", "x", "--tenant", "nobody", "--data", "{}"],
            "tenant 'nobody' is not configured",
        ),
        (
            &["create", "-c", "bad/name", "--data", "{}"],
            "invalid collection name",
        ),
        (
            &[
                "update",
                "-c",
                "x",
                "507f1f77bcf86cd799439011",
                "--data",
                "{}",
            ],
            "does not exist",
        ),
    ];
    for (args, needle) in cases {
        let out = chronos(dir, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: stderr was {err}");
    }
    let out = chronos(dir, &["get", "-c", "x", "nope", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json errors are JSON");
    assert_eq!(v["error"]["kind"], "VALIDATION_ERROR");
    let usage = chronos(dir, &["frobnicate"]);
    assert_eq!(usage.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn demo_runs_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let v = json(tmp.path(), &["demo"]);
    assert_eq!(v["versions"], 6);
    assert_eq!(v["liveRecords"], 1);
    assert_eq!(v["latest"]["name"], "Ada");
    let human = ok(tmp.path(), &["demo"]);
    for needle in [
        "1. create",
        "refused",
        "4. time travel",
        "restore a whole collection",
        "nothing was removed",
    ] {
        assert!(human.contains(needle), "demo output lacks {needle:?}");
    }
}

/// A config with `base64Props` and compression: the property comes back as a ref, `--inline`
/// gives the content, and `--presign` on local storage fails with a message saying why.
#[test]
fn base64_props_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = serde_json::json!({
        "dbConnections": { "local": { "mongoUri": format!("sqlite://{}", dir.join("db").display()) } },
        "spacesConnections": {},
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "default", "dbConnRef": "local", "dbName": "app" }
        ] } },
        "localStorage": { "enabled": true, "basePath": dir.join("blobs").display().to_string() },
        "collectionMaps": { "docs": { "indexedProps": ["title"],
            "base64Props": { "body": { "contentType": "text/plain" } } } },
        "writeOptimization": { "compressionEnabled": true }
    });
    let path = dir.join("chronos.json");
    std::fs::write(&path, cfg.to_string()).unwrap();
    let conf = path.display().to_string();
    let body = "aGVsbG8gd29ybGQ="; // "hello world"
    let created = json(
        dir,
        &[
            "create",
            "--config",
            &conf,
            "-c",
            "docs",
            "--data",
            &format!(r#"{{"title":"t","body":"{body}"}}"#),
        ],
    );
    let id = created["id"].as_str().unwrap();
    let got = json(dir, &["get", "--config", &conf, "-c", "docs", id]);
    let r = &got["body"]["ref"];
    assert!(
        r["blobKey"].as_str().unwrap().starts_with("docs/body/"),
        "{got}"
    );
    assert!(r["textKey"].as_str().unwrap().ends_with(".txt"), "{got}");
    let stored = dir
        .join("blobs")
        .join("app")
        .join(r["textKey"].as_str().unwrap());
    assert_eq!(std::fs::read_to_string(stored).unwrap(), "hello world");
    let inline = json(
        dir,
        &["get", "--config", &conf, "-c", "docs", id, "--inline"],
    );
    assert_eq!(inline["body"], body);

    let out = chronos(
        dir,
        &[
            "get",
            "--config",
            &conf,
            "-c",
            "docs",
            id,
            "--presign",
            "60",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot issue presigned URLs"), "{err}");

    let out = chronos(
        dir,
        &[
            "update",
            "--config",
            &conf,
            "-c",
            "docs",
            id,
            "--data",
            r#"{"title":"t","body":"%%%"}"#,
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("property 'body'") && err.contains("base64"),
        "{err}"
    );
}

/// A configuration whose MongoDB password and spaces secret key are wrong or unreachable:
/// the CLI fails, and neither secret appears in what it prints (human or `--json`).
#[test]
fn cli_errors_never_print_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("chronos.json");
    let config = serde_json::json!({
        "dbConnections": { "m": { "mongoUri": "mongodb://admin:Pw@1Secret/x@127.0.0.1:1/?serverSelectionTimeoutMS=200" } },
        "spacesConnections": { "s": { "endpoint": "http://127.0.0.1:1", "accessKey": "AK", "secretKey": "TopSecretKey42" } },
        "databases": { "runtime": { "tenantDatabases": [
            { "tenantId": "default", "dbConnRef": "m", "dbName": "db", "spaceConnRef": "s", "bucket": "b" }
        ]}}
    });
    std::fs::write(&cfg, config.to_string()).unwrap();
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["--config", cfg.to_str().unwrap(), "list", "-c", "users"];
        args.extend_from_slice(extra);
        let out = chronos(tmp.path(), &args);
        assert!(!out.status.success());
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!printed.is_empty());
        for secret in ["Pw@1Secret", "1Secret", "TopSecretKey42"] {
            assert!(!printed.contains(secret), "{extra:?}: {printed}");
        }
    }
}

/// Output into a pipe that closes early (`chronos list | head -1`) ends quietly, and `--data`
/// takes `@FILE` and `-` (standard input) for payloads beyond the command line's length.
#[test]
fn cli_reads_data_from_files_and_stdin_and_survives_a_closed_pipe() {
    use std::io::Write;
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let big = format!(r#"{{"name":"Ada","bio":"{}"}}"#, "x".repeat(300_000));
    let file = dir.join("rec.json");
    std::fs::write(&file, &big).unwrap();
    let at = format!("@{}", file.display());
    let created = json(dir, &["create", "-c", "people", "--data", &at]);
    assert_eq!(created["ov"], 0);

    let mut child = Command::new(env!("CARGO_BIN_EXE_chronos"))
        .args([
            "create",
            "-c",
            "people",
            "--data",
            "-",
            "--json",
            "--data-dir",
        ])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"name":"Bob"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let missing = chronos(
        dir,
        &["create", "-c", "people", "--data", "@/nonexistent/x.json"],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/x.json"));

    for _ in 0..40 {
        ok(dir, &["create", "-c", "many", "--data", r#"{"n":1}"#]);
    }
    // The reader takes nothing and goes away at once.
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronos"))
        .args(["list", "-c", "many", "--limit", "40", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{stderr}");
}

/// `restore-collection` killed with SIGKILL mid-way: a dry run works at once, a new restore
/// is refused only until the dead one's short lease lapses, and then it finishes the work —
/// every record back at the target.
#[test]
fn killed_restore_collection_is_finished_by_a_rerun() {
    use chronos::{Chronos, CreateOptions, ReadOptions, Route, WriteOptions};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ids, mark) = rt.block_on(async {
        let chronos = Chronos::embedded(dir).unwrap();
        let c = chronos
            .with(&Route::runtime("default", "things"))
            .await
            .unwrap();
        let mut ids = Vec::new();
        for n in 0..300 {
            ids.push(
                c.create(&serde_json::json!({"n": n}), CreateOptions::new())
                    .await
                    .unwrap()
                    .id,
            );
        }
        let mark = c.stores().index.current_cv("things").await.unwrap();
        for id in &ids {
            c.update(*id, &serde_json::json!({"n": -1}), WriteOptions::new())
                .await
                .unwrap();
        }
        chronos.shutdown().await;
        (ids, mark)
    });
    let cv = mark.to_string();
    let restore = [
        "restore-collection",
        "-c",
        "things",
        "--cv",
        &cv,
        "--lease-ttl",
        "2",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronos"))
        .args(restore)
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(250));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let dry = json(dir, &[&restore[..], &["--dry-run"]].concat());
    assert_eq!(dry["dryRun"], true);
    let start = std::time::Instant::now();
    loop {
        let out = chronos(dir, &restore);
        if out.status.success() {
            break;
        }
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(stderr.contains("CONFLICT"), "{stderr}");
        eprintln!("re-run refused while the dead restore's lease lasts");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the dead restore's lease never lapsed: {stderr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    rt.block_on(async {
        let chronos = Chronos::embedded(dir).unwrap();
        let c = chronos
            .with(&Route::runtime("default", "things"))
            .await
            .unwrap();
        for (n, id) in ids.iter().enumerate() {
            let r = c
                .get_latest(*id, ReadOptions::new())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.data["n"], serde_json::json!(n), "record {id}");
        }
        chronos.shutdown().await;
    });
}

/// Logs go to standard error, at warnings unless `-v` or `RUST_LOG` ask for more; standard
/// output stays the command's output (one JSON document with `--json`).
#[test]
fn verbosity_and_rust_log_control_stderr_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let create = ["create", "-c", "logs", "--data", r#"{"a":1}"#, "--json"];
    let quiet = chronos(dir, &create);
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );

    let mut loud = create.to_vec();
    loud.push("-v");
    let out = chronos(dir, &loud);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("index backend opened"), "{stderr}");
    assert!(
        !stderr.contains("sqlx"),
        "-v raises Chronos's crates only: {stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is still one JSON document");
    assert_eq!(v["ov"], 0);

    let out = Command::new(env!("CARGO_BIN_EXE_chronos"))
        .args(create)
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "sqlx=debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sqlx"),
        "RUST_LOG selects what is logged: {stderr}"
    );
    assert!(!stderr.contains("index backend opened"), "{stderr}");
}

/// `chronos health` probes every backend: exit 0 when all answer; non-zero, naming the
/// unreachable one (never its password), when one does not.
#[test]
fn health_probes_every_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let up = json(dir, &["health"]);
    let backends = up["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 8, "{up}");
    assert!(backends.iter().all(|b| b["state"] == "reachable"), "{up}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join("down.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "dbConnections": { "m": { "mongoUri": format!("mongodb://ops:Hunter2Pw@127.0.0.1:{closed}/?serverSelectionTimeoutMS=300&directConnection=true") } },
            "databases": { "logs": { "dbConnRef": "m", "dbName": "logs" } },
            "localStorage": { "enabled": true, "basePath": dir.join("b").display().to_string() }
        })
        .to_string(),
    )
    .unwrap();
    let out = chronos(dir, &["--config", config.to_str().unwrap(), "health"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("index connection 'm', database 'logs': UNREACHABLE"),
        "{stdout}"
    );
    assert!(stdout.contains("blob  localStorage"), "{stdout}");
    assert!(stderr.contains("1 backend(s) unreachable"), "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("Hunter2Pw"));
}

/// `chronos diff` prints the JSON Patch between two versions; applying it (here: reading
/// the ops back) gives the later version; a missing version exits non-zero.
#[test]
fn diff_prints_the_patch_between_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let w = json(dir, &["create", "-c", "d", "--data", r#"{"a":1,"b":[1]}"#]);
    let id = w["id"].as_str().unwrap().to_string();
    ok(
        dir,
        &["update", "-c", "d", &id, "--data", r#"{"a":2,"b":[1,2]}"#],
    );
    let patch = json(dir, &["diff", "-c", "d", &id, "0", "1"]);
    assert_eq!(
        patch,
        serde_json::json!([
            {"op": "replace", "path": "/a", "value": 2},
            {"op": "add", "path": "/b/1", "value": 2}
        ])
    );
    let human = ok(dir, &["diff", "-c", "d", &id, "1", "0"]);
    assert!(human.contains("replace /a = 1"), "{human}");
    assert!(human.contains("remove /b/1"), "{human}");
    let missing = chronos(dir, &["diff", "-c", "d", &id, "0", "7"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("version 7"));
}

#[test]
fn prune_removes_old_versions_and_keeps_the_latest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let w = json(dir, &["create", "-c", "p", "--data", r#"{"n":0}"#]);
    let id = w["id"].as_str().unwrap().to_string();
    for n in 1..5 {
        ok(
            dir,
            &[
                "update",
                "-c",
                "p",
                &id,
                "--data",
                &format!(r#"{{"n":{n}}}"#),
            ],
        );
    }
    let r = json(dir, &["prune", "-c", "p", "--max-per-item", "2"]);
    assert_eq!(r["versionsRemoved"], 3, "{r}");
    assert_eq!(r["pruned"][0]["blobsRemoved"], 3, "{r}");
    let history = json(dir, &["history", "-c", "p", &id]);
    let ovs: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["ov"].as_u64().unwrap())
        .collect();
    assert_eq!(ovs, [3, 4], "{history}");
    let old = chronos(dir, &["get", "-c", "p", &id, "--ov", "1"]);
    assert!(!old.status.success(), "a pruned version is not found");
    let latest = json(dir, &["get", "-c", "p", &id]);
    assert_eq!(latest["n"], 4, "{latest}");
    // The embedded default keeps every version: no retention.ver to apply.
    let none = chronos(dir, &["prune"]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("retention.ver"));
    let flags = chronos(dir, &["prune", "--days", "3"]);
    assert!(!flags.status.success());
    assert!(String::from_utf8_lossy(&flags.stderr).contains("-c COLLECTION"));
}

#[test]
fn erase_removes_a_record_and_leaves_a_receipt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let canary = "CANARY-cli-erase-5e1";
    let data = format!(r#"{{"email":"{canary}@example.com"}}"#);
    let w = json(dir, &["create", "-c", "people", "--data", &data]);
    let id = w["id"].as_str().unwrap().to_string();
    ok(dir, &["update", "-c", "people", &id, "--data", &data]);
    let missing = chronos(dir, &["erase", "-c", "people", &id, "--actor", "dpo"]);
    assert!(!missing.status.success(), "--reason is required");
    let r = json(
        dir,
        &[
            "erase", "-c", "people", &id, "--actor", "dpo", "--reason", "ticket 9",
        ],
    );
    assert_eq!(r["complete"], true, "{r}");
    assert_eq!(r["ov"], 3, "{r}");
    assert_eq!(r["blobsDeleted"], 3, "{r}");
    let get = chronos(dir, &["get", "-c", "people", &id]);
    assert!(!get.status.success());
    assert!(
        String::from_utf8_lossy(&get.stderr).contains("ERASED"),
        "{get:?}"
    );
    let history = json(dir, &["history", "-c", "people", &id]);
    let ops: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["CREATE", "UPDATE", "DELETE", "ERASE"], "{history}");
    let again = json(
        dir,
        &[
            "erase", "-c", "people", &id, "--actor", "x", "--reason", "y",
        ],
    );
    assert_eq!(
        (again["ov"].as_u64(), again["actor"].as_str()),
        (Some(3), Some("dpo"))
    );
    // Nothing in any file the embedded default keeps still holds the erased content.
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                    "{} still holds the canary",
                    p.display()
                );
            }
        }
    }
}

#[test]
fn verify_reports_a_missing_payload() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let w = json(dir, &["create", "-c", "v", "--data", r#"{"n":0}"#]);
    let id = w["id"].as_str().unwrap().to_string();
    ok(dir, &["update", "-c", "v", &id, "--data", r#"{"n":1}"#]);
    let r = json(dir, &["verify", "-c", "v"]);
    assert_eq!(
        (r["ok"].as_bool(), r["versions"].as_u64()),
        (Some(true), Some(2)),
        "{r}"
    );
    // Remove the first version's payload file from the embedded default's blob directory.
    let mut stack = vec![dir.to_path_buf()];
    let mut removed = None;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let s = p.display().to_string();
            if p.is_dir() {
                stack.push(p);
            } else if s.contains(&id) && s.contains("/v0/") && removed.is_none() {
                std::fs::remove_file(&p).unwrap();
                removed = Some(s);
            }
        }
    }
    assert!(removed.is_some(), "the payload file was found");
    let out = chronos(dir, &["verify", "-c", "v", "--json"]);
    assert!(!out.status.success(), "a problem exits non-zero");
    // JSON lines: the report, then the error that made the exit code.
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = stdout.lines();
    let r: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let e: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(e["error"]["kind"], "INTERNAL", "{e}");
    assert_eq!(r["problems"][0]["kind"], "missing_blob", "{r}");
    assert_eq!(r["problems"][0]["ov"], 0, "{r}");
    assert_eq!(r["problems"][0]["id"].as_str(), Some(id.as_str()), "{r}");
}

#[test]
fn verify_repair_rebuilds_a_damaged_head() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let w = json(dir, &["create", "-c", "v", "--data", r#"{"n":0}"#]);
    let id = w["id"].as_str().unwrap().to_string();
    ok(dir, &["update", "-c", "v", &id, "--data", r#"{"n":1}"#]);
    // Change the head's indexed metadata in the embedded default's database file.
    let mut stack = vec![dir.to_path_buf()];
    let mut db = None;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|x| x == "runtime_default.db") {
                db = Some(p);
            }
        }
    }
    let db = db.expect("the runtime database's SQLite file");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
            let n =
                sqlx::query("UPDATE v_head SET meta = json_set(meta, '$.n', 99) WHERE item_id = ?")
                    .bind(&id)
                    .execute(&pool)
                    .await
                    .unwrap()
                    .rows_affected();
            assert_eq!(n, 1);
            pool.close().await;
        });
    let out = chronos(dir, &["verify", "-c", "v", "--json"]);
    assert!(!out.status.success(), "a damaged head exits non-zero");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let r: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(r["problems"][0]["kind"], "head", "{r}");

    let stdout = ok(dir, &["verify", "-c", "v", "--repair", "--json"]);
    let r: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(r["repairHeads"], serde_json::json!([id]), "{r}");
    let r = json(dir, &["verify", "-c", "v"]);
    assert_eq!(r["ok"], true, "the repaired head agrees with the log: {r}");
    let got = json(dir, &["get", "-c", "v", &id]);
    assert_eq!(got["n"], 1, "{got}");
}

#[test]
fn counters_report_every_write_of_a_collection() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let w = json(
        dir,
        &["create", "-c", "events", "--data", r#"{"kind":"a"}"#],
    );
    let id = w["id"].as_str().unwrap().to_string();
    ok(
        dir,
        &["create", "-c", "events", "--data", r#"{"kind":"b"}"#],
    );
    ok(
        dir,
        &["update", "-c", "events", &id, "--data", r#"{"kind":"c"}"#],
    );
    ok(dir, &["delete", "-c", "events", &id]);
    let t = json(dir, &["counters", "-c", "events", "--catch-up"]);
    assert_eq!(t["_id"], "tenant:default|db:runtime_default|coll:events");
    assert_eq!(
        (
            t["created"].as_u64(),
            t["updated"].as_u64(),
            t["deleted"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let human = ok(dir, &["counters", "-c", "events", "--rules"]);
    assert!(human.contains("created 2, updated 1, deleted 1"), "{human}");
    // The embedded default keeps buckets per day, week and month: this run's writes are in
    // the current ones (or, across UTC midnight, split over two).
    for g in ["day", "week", "month"] {
        let buckets = json(dir, &["counters", "-c", "events", "--periods", g]);
        let buckets = buckets.as_array().expect("a list of buckets");
        assert!((1..=2).contains(&buckets.len()), "{g}: {buckets:?}");
        let created: u64 = buckets.iter().map(|b| b["created"].as_u64().unwrap()).sum();
        assert_eq!(created, 2, "{g}: {buckets:?}");
        assert_eq!(buckets[0]["granularity"], g);
    }
    let human = ok(dir, &["counters", "-c", "events", "--periods", "day"]);
    assert!(human.contains("events day "), "{human}");
    let bad = chronos(dir, &["counters", "-c", "events", "--periods", "year"]);
    assert!(!bad.status.success());
    let other = chronos(dir, &["counters", "-c", "events", "--tenant", "nobody"]);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("nobody"));
}

#[test]
fn messaging_commands_list_save_and_retain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let saved = json(
        dir,
        &[
            "messaging",
            "save",
            "--tenant",
            "t1",
            "--topic",
            "payments",
            "--msg-id",
            "m-1",
            "--payload",
            r#"{"amount":100}"#,
            "--headers",
            r#"{"type":"payment.created"}"#,
        ],
    );
    assert_eq!(saved["outcome"], "saved");
    let again = ok(
        dir,
        &[
            "messaging",
            "save",
            "--tenant",
            "t1",
            "--topic",
            "payments",
            "--msg-id",
            "m-1",
            "--payload",
            r#"{"amount":100}"#,
            "--headers",
            r#"{"type":"payment.created"}"#,
        ],
    );
    assert!(again.contains("m-1: duplicate"), "{again}");
    let forged = chronos(
        dir,
        &[
            "messaging",
            "save",
            "--tenant",
            "t1",
            "--topic",
            "payments",
            "--msg-id",
            "m-1",
            "--payload",
            "1",
        ],
    );
    assert!(!forged.status.success());
    assert!(String::from_utf8_lossy(&forged.stderr).contains("other content"));
    ok(
        dir,
        &[
            "messaging",
            "save",
            "--tenant",
            "t1",
            "--topic",
            "payments",
            "--msg-id",
            "m-2",
            "--payload",
            "2",
        ],
    );

    let first = ok(
        dir,
        &[
            "--json",
            "messaging",
            "messages",
            "--tenant",
            "t1",
            "--topic",
            "payments",
            "--limit",
            "1",
        ],
    );
    let lines: Vec<Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "one message and the next cursor: {first}");
    let cursor = lines[1]["next"].as_str().unwrap().to_string();
    let second = json(
        dir,
        &[
            "messaging",
            "messages",
            "--tenant",
            "t1",
            "--topic",
            "payments",
            "--cursor",
            &cursor,
        ],
    );
    assert_ne!(second["msgId"], lines[0]["msgId"]);
    let other = ok(
        dir,
        &[
            "messaging",
            "messages",
            "--tenant",
            "t2",
            "--topic",
            "payments",
        ],
    );
    assert!(
        other.trim().is_empty(),
        "another tenant sees nothing: {other}"
    );
    let empty = ok(dir, &["messaging", "topics", "--tenant", "t1"]);
    assert!(
        empty.trim().is_empty(),
        "saving a message ensures no topic: {empty}"
    );
    let dl = ok(
        dir,
        &[
            "messaging",
            "dead-letters",
            "--tenant",
            "t1",
            "--topic",
            "payments",
        ],
    );
    assert!(dl.trim().is_empty());
    let r = json(dir, &["messaging", "retention", "--tenant", "t1"]);
    assert_eq!(r["messages"], 0, "no retention configured: nothing removed");
    let bad = chronos(
        dir,
        &[
            "messaging",
            "messages",
            "--topic",
            "payments",
            "--after",
            "yesterday",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("yesterday"));
}
