//! The operator and client commands, run as the real `qilu` binary against a real `qilu dev`:
//! CSV import (exact summary and report), listing (table and JSON), the one-line rich error,
//! audit verification, an UNIMPLEMENTED service printed cleanly, `qilu dev --demo` twice on the
//! same data, and the README's newcomer walkthrough as written.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use qilu_common::testing::uscc::{organization_code_check_char, with_check};

use crate::support::{Dev, QILU, free_port, ok, stderr, stdout};

/// Shandong prefecture-level division prefixes (no 3712: merged into Jinan).
const PREFIXES: [&str; 16] = [
    "3701", "3702", "3703", "3704", "3705", "3706", "3707", "3708", "3709", "3710", "3711", "3713",
    "3714", "3715", "3716", "3717",
];

/// A valid GB 32100 code in city `prefix`, varied by `n`.
fn uscc(prefix: &str, n: usize) -> String {
    let org8 = format!("MA7T{n:04}");
    let org = organization_code_check_char(&org8);
    with_check(&format!("91{prefix}02{org8}{org}"))
}

/// 300 good rows across the 16 cities and 7 bad ones at fixed lines; returns the file's bytes,
/// the good USCCs, and the number of good rows in Qingdao.
fn generated_csv() -> (Vec<u8>, Vec<String>, usize) {
    let header = "uscc,display_name,legal_representative,established_date,address,zone,technology_fields,green_category\n";
    let mut good = Vec::new();
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut qingdao = 0;
    for i in 0..300 {
        let prefix = PREFIXES[i % PREFIXES.len()];
        if prefix == "3702" {
            qingdao += 1;
        }
        let code = uscc(prefix, i);
        lines.push(
            format!(
                "{code},山东测试{i}号科技有限公司,法人{i},2015-03-{:02},\"地址 {i}, 山东\",,NEW_MATERIALS;ELECTRONIC_INFORMATION,CLEAN_PRODUCTION\n",
                1 + i % 28
            )
            .into_bytes(),
        );
        good.push(code);
    }
    let wrong_check = {
        let code = uscc("3706", 900);
        let last = if code.ends_with('A') { 'B' } else { 'A' };
        format!("{}{last}", &code[..17])
    };
    // (line, row): each inserted so that it lands on that line of the file.
    let bad: [(usize, Vec<u8>); 7] = [
        (
            11,
            format!("{wrong_check},错码企业,,2015-01-01,,,,\n").into_bytes(),
        ),
        (51, lines[0].clone()),
        (101, b"a,b,c,d,e,f,g,h,i\n".to_vec()),
        (
            151,
            format!("{},未来企业,,2099-01-01,,,,\n", uscc("3701", 901)).into_bytes(),
        ),
        (
            201,
            format!("{},钢铁企业,,2015-01-01,,,STEEL,\n", uscc("3703", 902)).into_bytes(),
        ),
        (
            251,
            format!("{},,,2015-01-01,,,,\n", uscc("3705", 903)).into_bytes(),
        ),
        (301, {
            let mut row = format!("{},", uscc("3707", 904)).into_bytes();
            row.extend_from_slice(b"\xff\xfe");
            row.extend_from_slice(b",,2015-01-01,,,,\n");
            row
        }),
    ];
    for (line, row) in bad {
        // Line n of the file is index n - 2 of the data rows.
        lines.insert(line - 2, row);
    }
    let mut bytes = header.as_bytes().to_vec();
    for l in lines {
        bytes.extend(l);
    }
    (bytes, good, qingdao)
}

#[test]
fn import_reports_every_bad_row_and_list_shows_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path(), &[]);
    let officer = dev.token("officer");
    let (bytes, good, qingdao) = generated_csv();
    std::fs::write(dir.path().join("enterprises.csv"), &bytes).unwrap();

    let out = dev.run(&officer, &["enterprises", "import", "enterprises.csv"]);
    assert_eq!(
        ok(&out),
        "300 accepted (created 300, updated 0, unchanged 0), 7 rejected\n\
         rejected rows and their reasons: enterprises.rejected.csv\n"
    );
    // Not a terminal: no progress bar on stderr.
    assert_eq!(stderr(&out), "");

    let report = std::fs::read_to_string(dir.path().join("enterprises.rejected.csv")).unwrap();
    let wrong = uscc("3706", 900);
    let typed_check = if wrong.ends_with('A') { 'B' } else { 'A' };
    let typed = format!("{}{typed_check}", &wrong[..17]);
    let expected = format!(
        "line,uscc,display_name,legal_representative,established_date,address,zone,technology_fields,green_category,problems\n\
         11,{typed},错码企业,,2015-01-01,,,,,\"enterprise.uscc: Unified Social Credit Code check failed (GB 32100-2015): check character is '{typed_check}', expected '{right}'\"\n\
         51,{first},山东测试0号科技有限公司,法人0,2015-03-01,\"地址 0, 山东\",,NEW_MATERIALS;ELECTRONIC_INFORMATION,CLEAN_PRODUCTION,enterprise.uscc: {first} is already imported by row 2 of this import\n\
         101,a,b,c,d,e,f,g,h,row: malformed line: 9 fields where the header has 8\n\
         151,{future},未来企业,,2099-01-01,,,,,enterprise.established_date: 2099-01-01 is in the future\n\
         201,{steel},钢铁企业,,2015-01-01,,,STEEL,,\"enterprise.technology_fields: unknown high-tech field \"\"STEEL\"\" (e.g. NEW_MATERIALS, ELECTRONIC_INFORMATION)\"\n\
         251,{nameless},,,2015-01-01,,,,,enterprise.display_name: must not be empty\n\
         301,{utf8},\u{fffd}\u{fffd},,2015-01-01,,,,,enterprise.display_name: not valid UTF-8\n",
        right = &wrong[17..],
        first = good[0],
        future = uscc("3701", 901),
        steel = uscc("3703", 902),
        nameless = uscc("3705", 903),
        utf8 = uscc("3707", 904),
    );
    assert_eq!(report, expected);

    // The same file again: every good row is unchanged; a custom report path.
    let out = dev.run(
        &officer,
        &[
            "enterprises",
            "import",
            "enterprises.csv",
            "--report",
            "again.csv",
            "--batch",
            "7",
        ],
    );
    assert_eq!(
        ok(&out),
        "300 accepted (created 0, updated 0, unchanged 300), 7 rejected\n\
         rejected rows and their reasons: again.csv\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("again.csv")).unwrap(),
        expected
    );
    // The same file as an import operation: the same summary and, from ListImportRowResults,
    // the same report.
    let out = dev.run(
        &officer,
        &[
            "enterprises",
            "import",
            "enterprises.csv",
            "--operation",
            "--report",
            "operation.csv",
        ],
    );
    assert_eq!(
        ok(&out),
        "300 accepted (created 0, updated 0, unchanged 300), 7 rejected\n\
         rejected rows and their reasons: operation.csv\n"
    );
    assert!(
        stderr(&out).starts_with("import imports/"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("operation.csv")).unwrap(),
        expected
    );
    // Validate only, as JSON.
    let out = dev.run(
        &officer,
        &[
            "--output",
            "json",
            "enterprises",
            "import",
            "enterprises.csv",
            "--validate-only",
        ],
    );
    let summary: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(summary["validate_only"], true);
    assert_eq!(summary["unchanged"], 300);
    assert_eq!(summary["rejected"], 7);
    assert_eq!(summary["received"], 307);

    // JSON list: every enterprise, in USCC order, proto field names.
    let out = dev.run(
        &officer,
        &["--output", "json", "enterprises", "list", "--all"],
    );
    let listed: Vec<serde_json::Value> = serde_json::from_str(&ok(&out)).unwrap();
    let mut sorted = good.clone();
    sorted.sort();
    let usccs: Vec<&str> = listed.iter().map(|e| e["uscc"].as_str().unwrap()).collect();
    assert_eq!(usccs, sorted);
    assert_eq!(listed[0]["state"], "ENTERPRISE_STATE_ACTIVE");
    assert_eq!(
        listed[0]["technology_fields"],
        serde_json::json!([
            "HIGH_TECH_FIELD_ELECTRONIC_INFORMATION",
            "HIGH_TECH_FIELD_NEW_MATERIALS"
        ])
    );

    // Table list with a filter.
    let out = dev.run(
        &officer,
        &[
            "enterprises",
            "list",
            "--filter",
            "city = \"Qingdao\"",
            "--page-size",
            "1000",
        ],
    );
    let table = ok(&out);
    assert!(
        table.contains("USCC") && table.contains("CLEAN_PRODUCTION"),
        "{table}"
    );
    assert_eq!(
        table.lines().filter(|l| l.contains("Qingdao")).count(),
        qingdao
    );
    assert!(
        table.ends_with(&format!("\n{qingdao} enterprises\n")),
        "{table}"
    );
    // A first page tells how to get the next.
    let out = dev.run(&officer, &["enterprises", "list", "--page-size", "5"]);
    assert!(ok(&out).ends_with("\n5 enterprises\n"));
    assert!(
        stderr(&out).starts_with("more: --page-token "),
        "{}",
        stderr(&out)
    );

    // Get one, as a table.
    let out = dev.run(&officer, &["enterprises", "get", &good[1]]);
    let shown = ok(&out);
    assert!(
        shown.contains("山东测试1号科技有限公司") && shown.contains("Qingdao"),
        "{shown}"
    );

    // The registry's audit chain verifies; its events list.
    let auditor = dev.token("auditor");
    let out = dev.run(&auditor, &["audit", "verify", "--service", "registry"]);
    let verified = ok(&out);
    assert!(
        verified.starts_with("registry: audit chain intact (300 events checked; head #300 "),
        "{verified}"
    );
    let out = dev.run(
        &auditor,
        &[
            "--output",
            "json",
            "audit",
            "list",
            "--service",
            "registry",
            "--all",
        ],
    );
    let events: Vec<serde_json::Value> = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(events.len(), 300);
    assert_eq!(events[0]["sequence"], 1);
    for service in ["review", "awards"] {
        let out = dev.run(&auditor, &["audit", "verify", "--service", service]);
        assert!(ok(&out).contains("audit chain intact"));
    }
    dev.stop();
}

#[test]
fn errors_are_one_line_with_their_field_violations_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let dev = Dev::start(dir.path(), &[]);
    let officer = dev.token("officer");

    // A wrong check character: the rich status decoded, one line per violation.
    let out = dev.run(&officer, &["enterprises", "get", "91350100M000100Y4A"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    assert_eq!(
        stderr(&out),
        "qilu: INVALID_ARGUMENT: invalid argument: name: Unified Social Credit Code check failed \
         (GB 32100-2015): check character is 'A', expected '3'\n  \
         name: Unified Social Credit Code check failed (GB 32100-2015): check character is 'A', \
         expected '3' (INVALID_CHECKSUM)\n"
    );

    // Unknown: NOT_FOUND, one line.
    let out = dev.run(&officer, &["enterprises", "get", "91350100M000100Y43"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("qilu: NOT_FOUND: "),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    // Validation explains and exits 1 when the code is not accepted.
    let out = dev.run(&officer, &["enterprises", "validate", "91350100M000100Y4A"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("INVALID_CHECKSUM"),
        "{}",
        stdout(&out)
    );
    let out = dev.run(&officer, &["enterprises", "validate", "91350100M000100Y43"]);
    assert!(ok(&out).contains("VALID"));

    // No token: the hint says how to get one.
    let out = dev.run("", &["enterprises", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("qilu: UNAUTHENTICATED: ")
            && stderr(&out).contains("hint: pass --token or set QILU_TOKEN"),
        "{}",
        stderr(&out)
    );

    // The awards RPCs may not be implemented yet: printed cleanly, no panic.
    let admin = dev.token("admin");
    for args in [
        &["programs", "allocate", "green-2025", "--dry-run"][..],
        &["programs", "get", "green-2025"][..],
    ] {
        let out = dev.run(&admin, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.starts_with("qilu: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }

    // Bad input on this side: a missing file, a file without the required columns, a bad
    // batch size.
    let out = dev.run(&officer, &["enterprises", "import", "missing.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("qilu: cannot read missing.csv"),
        "{}",
        stderr(&out)
    );
    std::fs::write(dir.path().join("odd.csv"), "uscc,name\n1,2\n").unwrap();
    let out = dev.run(&officer, &["enterprises", "import", "odd.csv"]);
    assert_eq!(
        stderr(&out),
        "qilu: odd.csv: unknown column \"name\" in the header row (known: uscc, display_name, \
         legal_representative, established_date, address, zone, technology_fields, green_category)\n"
    );
    let out = dev.run(
        &officer,
        &["enterprises", "import", "odd.csv", "--batch", "0"],
    );
    assert_eq!(stderr(&out), "qilu: --batch must be 1-1000, not 0\n");
    dev.stop();

    // Nothing listening: a clean error.
    let out = Command::new(QILU)
        .args(["--addr", &format!("127.0.0.1:{}", free_port())])
        .args(["enterprises", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("qilu: cannot connect to http://127.0.0.1:"));
}

#[test]
fn dev_demo_loads_a_programme_year_and_a_second_run_does_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut dev = Dev::start(dir.path(), &["--demo"]);
        let printed = dev.wait_for("awards:", Duration::from_secs(300)).join("\n");
        for expected in [
            "Demo programme year loaded:",
            "zones: zones/jinan, zones/qingdao",
            "enterprises: 321 across Shandong's 16 prefecture-level cities",
            "cluster: clusters/hydrogen-energy",
            "leading cohort leadingCohorts/2025: 10 of",
            "Vetoed: industry 31",
            "Approved: mean 84.000 of 3 reviews",
            "Needs review: missing green_data.annual_energy_kgce",
        ] {
            assert!(printed.contains(expected), "{expected:?} not in\n{printed}");
        }
        // The data are there for the client commands.
        let officer = dev.token("officer");
        let out = dev.run(
            &officer,
            &[
                "--output",
                "json",
                "enterprises",
                "list",
                "--all",
                "--filter",
                "leading = true",
            ],
        );
        let leading: Vec<serde_json::Value> = serde_json::from_str(&ok(&out)).unwrap();
        assert_eq!(leading.len(), 10);
        let auditor = dev.token("auditor");
        for service in ["registry", "review"] {
            let out = dev.run(&auditor, &["audit", "verify", "--service", service]);
            assert!(ok(&out).contains("audit chain intact"));
        }
        let out = dev.run(
            &auditor,
            &[
                "--output",
                "json",
                "audit",
                "list",
                "--service",
                "review",
                "--all",
            ],
        );
        let events: Vec<serde_json::Value> = serde_json::from_str(&ok(&out)).unwrap();
        if runs.is_empty() {
            every_feed_change_carries_its_state(&dev);
        }
        runs.push((printed, events.len()));
        dev.stop();
    }
    // The second run replayed: nothing was written twice.
    assert_eq!(runs[0].1, runs[1].1);
    let achievements = |p: &str| -> Vec<String> {
        p.lines()
            .filter(|l| l.trim_start().starts_with("achievements/"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(achievements(&runs[0].0), achievements(&runs[1].0));
}

/// `qilu changes follow --once` over the demo population of each service: every change printed
/// carries exactly one arm of its `Change.new_state` (read from the descriptor), and the cursor it
/// ends at is the feed's head.
fn every_feed_change_carries_its_state(dev: &Dev) {
    let pool = prost_reflect::DescriptorPool::decode(qilu_proto::FILE_DESCRIPTOR_SET).unwrap();
    let admin = dev.token("admin");
    for service in ["registry", "review", "awards"] {
        let change = pool
            .get_message_by_name(&format!("qilu.{service}.v1.Change"))
            .unwrap();
        let arms: Vec<String> = change
            .oneofs()
            .find(|o| o.name() == "new_state")
            .unwrap()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        let out = dev.run(
            &admin,
            &["changes", "follow", "--once", "--service", service],
        );
        let lines = ok(&out);
        let mut count = 0;
        for line in lines.lines() {
            let change: serde_json::Value = serde_json::from_str(line).unwrap();
            let set: Vec<&String> = arms.iter().filter(|a| change.get(*a).is_some()).collect();
            assert_eq!(set.len(), 1, "{service}: {line}");
            count += 1;
        }
        assert!(count > 0, "{service}: the demo made changes");
        let head = dev.run(&admin, &["changes", "head", "--service", service]);
        let cursor = ok(&head).trim().to_string();
        assert!(
            stderr(&out).contains(&format!("cursor {cursor}")),
            "{service}: {}",
            stderr(&out)
        );
    }
}

/// The README's walkthrough, command by command, as a newcomer types it.
#[test]
fn the_readme_walkthrough_works_as_written() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let walkthrough = [
        "qilu dev &",
        "export QILU_TOKEN=$(qilu token --role officer)",
        "qilu enterprises import crates/cli/samples/enterprises.csv",
        "qilu enterprises list",
        "qilu import certificates examples/migration/certificates.csv",
        "qilu import figures examples/migration/figures.csv",
        "qilu enterprises get 91370102MA9400015C",
        "qilu import figures examples/migration/figures.csv --operation",
    ];
    for line in walkthrough {
        assert!(
            readme
                .lines()
                .any(|l| l.split(" #").next().unwrap().trim() == line),
            "README lacks the walkthrough line {line:?}"
        );
    }
    // The sample file, at the path the README gives, relative to the repository root.
    let dir = tempfile::tempdir().unwrap();
    let samples = dir.path().join("crates/cli/samples");
    std::fs::create_dir_all(&samples).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/enterprises.csv"),
        samples.join("enterprises.csv"),
    )
    .unwrap();
    let migration = dir.path().join("examples/migration");
    std::fs::create_dir_all(&migration).unwrap();
    for file in ["certificates.csv", "figures.csv"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/migration")
                .join(file),
            migration.join(file),
        )
        .unwrap();
    }

    let dev = Dev::start(dir.path(), &[]);
    let token = dev.token("officer");
    let out = dev.run(
        &token,
        &[
            "enterprises",
            "import",
            "crates/cli/samples/enterprises.csv",
        ],
    );
    assert_eq!(
        ok(&out),
        "12 accepted (created 12, updated 0, unchanged 0), 1 rejected\n\
         rejected rows and their reasons: crates/cli/samples/enterprises.rejected.csv\n"
    );
    let out = dev.run(&token, &["enterprises", "list"]);
    let table = ok(&out);
    assert!(
        table.contains("济南氢源科技有限公司") && table.ends_with("\n12 enterprises\n"),
        "{table}"
    );
    assert!(readme.contains("12 accepted (created 12, updated 0, unchanged 0), 1 rejected"));

    // The enterprises' history: certificates with their annual reports, then figures.
    let certificates = [
        "import",
        "certificates",
        "examples/migration/certificates.csv",
    ];
    let out = dev.run(&token, &certificates);
    assert_eq!(
        ok(&out),
        "5 accepted (created 5, updated 0, unchanged 0), 1 rejected\n\
         rejected rows and their reasons: examples/migration/certificates.rejected.csv\n"
    );
    let report = std::fs::read_to_string(migration.join("certificates.rejected.csv")).unwrap();
    assert!(report.contains("annual_reports[0].filed_date"), "{report}");
    let out = dev.run(&token, &certificates);
    assert!(
        ok(&out).starts_with("5 accepted (created 0, updated 0, unchanged 5), 1 rejected"),
        "{}",
        ok(&out)
    );
    let out = dev.run(
        &token,
        &["import", "figures", "examples/migration/figures.csv"],
    );
    assert!(
        ok(&out).starts_with("3 accepted (created 3, updated 0, unchanged 0), 1 rejected"),
        "{}",
        ok(&out)
    );
    let out = dev.run(
        &token,
        &[
            "--output",
            "json",
            "enterprises",
            "get",
            "91370102MA9400015C",
        ],
    );
    let enterprise: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(enterprise["high_tech_certified"], true, "{enterprise}");
    assert!(readme.contains("5 accepted (created 5, updated 0, unchanged"));
    // The figures again, as an import operation: every row judged as the stream judged it.
    std::fs::remove_file(migration.join("figures.rejected.csv")).unwrap();
    let out = dev.run(
        &token,
        &[
            "import",
            "figures",
            "examples/migration/figures.csv",
            "--operation",
        ],
    );
    assert_eq!(
        ok(&out),
        "3 accepted (created 0, updated 0, unchanged 3), 1 rejected\n\
         rejected rows and their reasons: examples/migration/figures.rejected.csv\n"
    );
    assert!(
        stderr(&out).contains("operation operations/registry-"),
        "{}",
        stderr(&out)
    );
    let report = std::fs::read_to_string(migration.join("figures.rejected.csv")).unwrap();
    assert!(report.contains("rd_expense_fen"), "{report}");
    assert!(readme.contains("(created 0, updated 0, unchanged 3), 1 rejected"));
    dev.stop();
}
