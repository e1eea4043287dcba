//! `accordo-officebench`: the back office's everyday operations timed against the real server
//! on a fresh database (SQLite in a temporary directory, or a new PostgreSQL database), over
//! HTTP as the pages and API use them:
//!
//! - registering cases one after another, and 200 at once (numbers stay gapless);
//! - scheduling an online meeting of a case with six people (the transaction that books the
//!   mediator, creates the room, issues six links and queues the mail);
//! - delivering the queued mail to a real SMTP server (the test sink) through the outbox.
//!
//! ```text
//! accordo-officebench --backend sqlite --cases 200 --meetings 50
//! ```

use std::time::{Duration, Instant};

use accordo_tests::smtp_sink::SmtpSink;
use accordo_tests::{spawn_app_with, Backend, Browser, TestApp};
use anyhow::{bail, Context, Result};
use backoffice::platform::access::Role;
use clap::Parser;
use serde_json::{json, Value};
use signaling::clock::Clock;

#[derive(Debug, Parser)]
#[command(
    name = "accordo-officebench",
    about = "Times the back office's everyday operations."
)]
struct Args {
    /// `sqlite` or `postgres`.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Cases registered in each of the two rounds.
    #[arg(long, default_value_t = 200)]
    cases: usize,
    /// Online meetings scheduled (one per case, six people each).
    #[arg(long, default_value_t = 50)]
    meetings: usize,
}

/// p50 and p99 of `samples`, in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    (at(0.5), at(0.99))
}

async fn post(browser: &Browser, path: &str, body: Value) -> Result<Value> {
    let response = browser.post_json(path, &body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path}: {status} {body}");
    }
    Ok(body)
}

async fn id(browser: &Browser, path: &str, body: Value) -> Result<String> {
    let answer = post(browser, path, body).await?;
    Ok(answer["id"].as_str().context("id")?.to_owned())
}

/// A case with a mediator and six people (two parties, two lawyers, a CTU, the mediator).
async fn prepared_case(office: &Browser, n: usize) -> Result<String> {
    let case = id(
        office,
        "/api/v1/cases",
        json!({ "title": format!("Pratica {n}") }),
    )
    .await?;
    let mut parties = Vec::new();
    for (i, side) in ["istante", "chiamata"].iter().enumerate() {
        let person = id(office, "/api/v1/people", json!({
            "kind": "natural", "given_name": format!("Parte{i}"), "family_name": format!("Caso{n}"),
            "email": format!("parte{i}.{n}@example.invalid"), "confirm_not_duplicate": true,
        }))
        .await?;
        parties.push(
            id(
                office,
                &format!("/api/v1/cases/{case}/participants"),
                json!({ "person": person, "role": "party", "side": side }),
            )
            .await?,
        );
    }
    for (i, party) in parties.iter().enumerate() {
        let lawyer = id(office, "/api/v1/people", json!({
            "kind": "natural", "given_name": format!("Avvocato{i}"), "family_name": format!("Caso{n}"),
            "email": format!("avv{i}.{n}@example.invalid"), "confirm_not_duplicate": true,
        }))
        .await?;
        id(
            office,
            &format!("/api/v1/cases/{case}/participants"),
            json!({ "person": lawyer, "role": "lawyer", "represents": party }),
        )
        .await?;
    }
    let ctu = id(
        office,
        "/api/v1/people",
        json!({
            "kind": "natural", "given_name": "Perito", "family_name": format!("Caso{n}"),
            "email": format!("ctu.{n}@example.invalid"), "confirm_not_duplicate": true,
        }),
    )
    .await?;
    id(
        office,
        &format!("/api/v1/cases/{case}/participants"),
        json!({ "person": ctu, "role": "expert" }),
    )
    .await?;
    post(
        office,
        &format!("/api/v1/cases/{case}/appointment"),
        json!({ "subject": "locazione" }),
    )
    .await?;
    Ok(case)
}

async fn run(app: &TestApp, sink: &SmtpSink, args: &Args) -> Result<()> {
    let office = app.logged_in("segreteria1", Role::Segreteria).await;
    // Enough mediators that meetings at the same hour never clash.
    for n in 0..args.meetings {
        post(
            &office,
            "/api/v1/mediators",
            json!({
                "display_name": format!("Mediatore {n:03}"), "subjects": ["locazione"],
                "email": format!("mediatore{n}@example.invalid"),
            }),
        )
        .await?;
    }

    let mut one_by_one = Vec::with_capacity(args.cases);
    let started = Instant::now();
    for n in 0..args.cases {
        let begun = Instant::now();
        id(
            &office,
            "/api/v1/cases",
            json!({ "title": format!("Sequenziale {n}") }),
        )
        .await?;
        one_by_one.push(begun.elapsed());
    }
    let sequential = started.elapsed();
    let (p50, p99) = percentiles(&mut one_by_one);
    println!(
        "register one after another: {} cases in {:.2} s ({:.0}/s), p50 {p50:.1} ms, p99 {p99:.1} ms",
        args.cases,
        sequential.as_secs_f64(),
        args.cases as f64 / sequential.as_secs_f64()
    );

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.cases);
    for n in 0..args.cases {
        let office = office.clone();
        tasks.push(tokio::spawn(async move {
            let begun = Instant::now();
            id(
                &office,
                "/api/v1/cases",
                json!({ "title": format!("Concorrente {n}") }),
            )
            .await
            .map(|_| begun.elapsed())
        }));
    }
    let mut concurrent = Vec::with_capacity(args.cases);
    for task in tasks {
        concurrent.push(task.await??);
    }
    let elapsed = started.elapsed();
    let (p50, p99) = percentiles(&mut concurrent);
    println!(
        "register {} at once: {:.2} s ({:.0}/s), p50 {p50:.1} ms, p99 {p99:.1} ms",
        args.cases,
        elapsed.as_secs_f64(),
        args.cases as f64 / elapsed.as_secs_f64()
    );

    let mut cases = Vec::with_capacity(args.meetings);
    for n in 0..args.meetings {
        cases.push(prepared_case(&office, n).await?);
    }
    let now = i64::try_from(app.clock.now().as_unix_millis())?;
    let mut scheduling = Vec::with_capacity(args.meetings);
    let started = Instant::now();
    for case in &cases {
        let begun = Instant::now();
        let answer = post(
            &office,
            &format!("/api/v1/cases/{case}/online-meetings"),
            json!({
                "starts_at": now + 48 * 3_600_000, "duration_minutes": 60,
            }),
        )
        .await?;
        scheduling.push(begun.elapsed());
        if answer["invited"].as_array().map(Vec::len) != Some(6) {
            bail!("six people expected: {answer}");
        }
    }
    let (p50, p99) = percentiles(&mut scheduling);
    println!(
        "schedule an online meeting of six (room, 6 links, 6 invitations, 6 reminders): {} in {:.2} s, p50 {p50:.1} ms, p99 {p99:.1} ms",
        args.meetings,
        started.elapsed().as_secs_f64()
    );

    let invitations = args.meetings * 6;
    let received = sink.wait_for(invitations, Duration::from_secs(600)).await;
    let first = started;
    println!(
        "outbox: {} invitations delivered to the SMTP server {:.2} s after the first scheduling ({} received)",
        invitations,
        first.elapsed().as_secs_f64(),
        received.len()
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let backend = match args.backend.as_str() {
        "sqlite" => Backend::Sqlite,
        "postgres" => Backend::Postgres,
        other => bail!("unknown backend {other}"),
    };
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let app = spawn_app_with(backend, |config| {
        config.smtp_url = Some(smtp);
        config.outbox_poll_ms = 100;
        config.log_level = "error".to_owned();
    })
    .await;
    println!("backend: {}", args.backend);
    run(&app, &sink, &args).await
}
