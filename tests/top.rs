//! `switchyard top --once` against a real broker: its snapshot shows the groups with their depth,
//! the subscriptions with their gaps, the rates, and a refusal without the admin token.

mod common;

use common::{
    process::{BrokerProcess, run, switchyard},
    *,
};

/// `switchyard top --once` with `extra` arguments against `broker`: its stdout, or its failure.
async fn top(broker: &BrokerProcess, extra: &[&str]) -> Result<String, String> {
    let http = broker.http.expect("the ready file names the HTTP address");
    let url = format!("http://{http}");
    let mut args = vec!["top", "--once", "--url", &url];
    args.extend_from_slice(extra);
    let output = run(switchyard(args), None).await;
    match output.status.success() {
        true => Ok(output.stdout.join("\n")),
        false => Err(output.stderr.join("\n")),
    }
}

#[tokio::test]
async fn a_snapshot_shows_groups_subscriptions_and_rates() {
    let broker = BrokerProcess::start(&["--http", "127.0.0.1:0", "--subscriber-buffer", "2"]).await;
    let channel = broker.channel().await;
    let (mut client, mut admin) = (Broker::new(channel.clone()), Admin::new(channel));
    declare_ok(&mut admin, declaration("jobs.>", "workers")).await;
    let _ticks = subscribe_ok(&mut client, "jobs.*").await;
    publish_ok(&mut client, numbered_batch("jobs.a", 0..25)).await;

    let snapshot = top(&broker, &[]).await.expect("top --once");
    let row = snapshot
        .lines()
        .find(|line| line.starts_with("jobs.>"))
        .unwrap_or_else(|| panic!("no row for the group in\n{snapshot}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..5],
        ["jobs.>", "workers", "shared", "25", "0"],
        "{row}"
    );
    assert!(snapshot.starts_with("switchyard "), "{snapshot}");
    assert!(snapshot.contains("totals    published 25 "), "{snapshot}");
    assert!(
        snapshot.contains("queued    ready 25  in flight 0"),
        "{snapshot}"
    );
    let pattern = snapshot
        .lines()
        .find(|line| line.starts_with("jobs.*"))
        .unwrap_or_else(|| panic!("no row for the subscription in\n{snapshot}"));
    // 25 published to a buffer of 2 that nobody reads: most were dropped, as gaps.
    let gaps: u64 = pattern
        .split_whitespace()
        .nth(4)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(gaps >= 20, "{pattern}");

    // The rates come from the broker's once-a-second history: while publishing goes on, the
    // published rate shows above zero within a second or two.
    let published_rate = |snapshot: &str| -> f64 {
        snapshot
            .lines()
            .find_map(|line| line.strip_prefix("rates/s   published "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|rate| rate.trim_end_matches('k').parse().ok())
            .unwrap_or(0.0)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    for n in 25.. {
        publish_ok(&mut client, numbered_batch("jobs.a", n..n + 1)).await;
        let snapshot = top(&broker, &[]).await.expect("top --once");
        if published_rate(&snapshot) > 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rates never moved:\n{snapshot}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_broker_with_authentication_wants_an_admin_token() {
    let file = tempfile::NamedTempFile::new().expect("a token file");
    let tokens = r#"{"tokens": [{"name": "ops", "token": "ops-token", "admin": true}]}"#;
    std::fs::write(file.path(), tokens).expect("write the token file");
    let path = file.path().to_str().expect("a UTF-8 path");
    let broker = BrokerProcess::start(&["--http", "127.0.0.1:0", "--auth-file", path]).await;
    let refused = top(&broker, &[]).await.expect_err("no token");
    assert!(
        refused.contains("401") && refused.contains("--token"),
        "{refused}"
    );
    let snapshot = top(&broker, &["--token", "ops-token"])
        .await
        .expect("an admin token");
    assert!(snapshot.contains("(no groups)"), "{snapshot}");
}
