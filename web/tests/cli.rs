//! The `accordo` binary as an operator uses it: configuration errors, `config check`, the
//! admin commands, the first start, and a graceful stop on SIGTERM.

#![allow(clippy::unwrap_used)] // a test fails loudly on anything unexpected

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_accordo");

/// The binary with a clean `ACCORDO_*` environment, run in `dir`.
fn accordo(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command.current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("ACCORDO_") {
            command.env_remove(name);
        }
    }
    command.env("ACCORDO_LOG_LEVEL", "warn");
    command
}

fn run(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn a_bad_database_url_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(accordo(dir.path()).env("ACCORDO_DATABASE_URL", "mysql://db/x"));
    assert_eq!(code, 2);
    assert_eq!(
        stderr.trim(),
        "configuration error: key `database_url` (from environment variable ACCORDO_DATABASE_URL): \
         unsupported scheme `mysql`; expected sqlite://PATH or postgres://USER@HOST:PORT/DATABASE"
    );
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
}

#[test]
fn an_unknown_key_in_the_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("accordo.toml"),
        "listen = \"127.0.0.1:0\"\nroom_capacty = 5\n",
    )
    .unwrap();
    let (code, _, stderr) = run(accordo(dir.path()).args(["config", "check"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("key `room_capacty` (from file accordo.toml): unknown key"),
        "{stderr}"
    );
}

#[test]
fn a_missing_tls_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(accordo(dir.path())
        .env("ACCORDO_TLS", "files")
        .env("ACCORDO_TLS_CERT", "manca.pem")
        .env("ACCORDO_TLS_KEY", "manca.key"));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("key `tls_cert`") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

#[test]
fn config_check_prints_the_effective_config_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(accordo(dir.path())
        .args(["config", "check"])
        .env(
            "ACCORDO_DATABASE_URL",
            "postgres://accordo:segreto@db:5432/accordo",
        )
        .env("ACCORDO_SMTP_URL", "smtp://posta:segreto2@mail:587")
        .env("ACCORDO_TURN_URLS", "turn:turn.example:3478")
        .env("ACCORDO_TURN_SECRET", "segreto3"));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("database_url = \"postgres://accordo:***@db:5432/accordo\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("smtp_url = \"smtp://posta:***@mail:587\""),
        "{stdout}"
    );
    assert!(stdout.contains("turn_secret = \"***\""), "{stdout}");
    assert!(stdout.contains("room_capacity = 5"));
    assert!(!stdout.contains("segreto"));
}

#[test]
fn help_is_available_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["admin", "create-user", "--help"],
        vec!["admin", "reset-password", "--help"],
        vec!["config", "check", "--help"],
    ] {
        let (code, stdout, _) = run(accordo(dir.path()).args(&args));
        assert_eq!(code, 0, "{args:?}");
        assert!(stdout.contains("Usage: accordo"), "{args:?}: {stdout}");
    }
}

#[test]
fn migrate_and_the_admin_commands_work_on_a_fresh_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(accordo(dir.path()).arg("migrate"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Migrations applied"));
    assert!(dir.path().join("data/accordo.db").is_file());

    let (code, stdout, stderr) = run(accordo(dir.path()).args([
        "admin",
        "create-user",
        "--username",
        "segreteria.roma",
        "--role",
        "segreteria",
        "--name",
        "Anna Verdi",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Created segreteria.roma (segreteria)."));
    assert!(stdout.contains("One-time password: "));

    let (code, _, stderr) = run(accordo(dir.path()).args([
        "admin",
        "create-user",
        "--username",
        "segreteria.roma",
        "--role",
        "segreteria",
    ]));
    assert_eq!(code, 1);
    assert!(stderr.contains("already exists"));

    let (code, _, stderr) = run(accordo(dir.path()).args([
        "admin",
        "create-user",
        "--username",
        "x",
        "--role",
        "imperatore",
    ]));
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown role `imperatore`"), "{stderr}");

    let (code, stdout, _) =
        run(accordo(dir.path()).args(["admin", "reset-password", "--username", "segreteria.roma"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("New one-time password for segreteria.roma: "));
    let (code, _, stderr) =
        run(accordo(dir.path()).args(["admin", "reset-password", "--username", "nessuno"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("no such user"));
}

/// A running `accordo serve` and the lines it has printed.
struct Served {
    child: Child,
    stdout: BufReader<ChildStdout>,
    banner: String,
}

/// Starts `accordo serve` on a free port and reads its banner.
#[test]
fn config_check_masks_secrets_in_url_parameters_and_in_urls_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(accordo(dir.path())
        .args(["config", "check"])
        .env(
            "ACCORDO_DATABASE_URL",
            "postgres://db:5432/accordo?user=accordo&password=segreto1&sslmode=require",
        )
        .env(
            "ACCORDO_REDIS_URL",
            "redis://cache:6379/0?password=segreto2",
        ));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "database_url = \"postgres://db:5432/accordo?user=accordo&password=***&sslmode=require\""
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("redis_url = \"redis://cache:6379/0?password=***\""),
        "{stdout}"
    );
    assert!(!stdout.contains("segreto"), "{stdout}");

    // A URL that does not parse is not echoed: its password may be anywhere in it.
    let (code, stdout, stderr) = run(accordo(dir.path()).args(["config", "check"]).env(
        "ACCORDO_DATABASE_URL",
        "postgres://accordo:segreto3@db:porta/accordo",
    ));
    assert_eq!(code, 2);
    assert!(stderr.contains("key `database_url`"), "{stderr}");
    assert!(stderr.contains("`postgres://***` is not a URL"), "{stderr}");
    assert!(!format!("{stdout}{stderr}").contains("segreto"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn what_a_node_creates_in_its_data_directory_is_for_its_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let served = accordo(dir.path())
        .env("ACCORDO_TLS", "self-signed")
        .env("ACCORDO_LISTEN", "127.0.0.1:0")
        .env("ACCORDO_MEDIA_LISTEN", "127.0.0.1:0")
        .env("ACCORDO_MEDIA_TCP_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(stderr_file(dir.path()))
        .spawn()
        .expect("serve starts");
    let served = Served::started(served, dir.path());
    let mode = |path: &str| {
        let metadata = std::fs::metadata(dir.path().join(path)).unwrap();
        metadata.permissions().mode() & 0o777
    };
    for directory in ["data", "data/files", "data/outbox", "data/tls"] {
        assert_eq!(mode(directory), 0o700, "{directory}");
    }
    for file in [
        "data/accordo.db",
        "data/tls/self-signed.key",
        "data/tls/self-signed.crt",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    assert_eq!(served.terminate().0, 0);
}

fn serve(dir: &Path) -> Served {
    let child = accordo(dir)
        .env("ACCORDO_LISTEN", "127.0.0.1:0")
        .env("ACCORDO_MEDIA_LISTEN", "127.0.0.1:0")
        .env("ACCORDO_MEDIA_TCP_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(stderr_file(dir))
        .spawn()
        .expect("serve starts");
    Served::started(child, dir)
}

/// Where a served node's standard error goes: a file beside its data, read when it fails.
fn stderr_file(dir: &Path) -> std::fs::File {
    std::fs::File::create(dir.join("stderr.log")).expect("stderr file")
}

impl Served {
    /// The server `child` (run in `dir`), once it has printed its banner.
    fn started(mut child: Child, dir: &Path) -> Self {
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut banner = String::new();
        while !banner.contains("outgoing mail:") {
            let read = stdout.read_line(&mut banner).expect("stdout line");
            if read == 0 {
                let status = child.wait().map(|status| status.to_string());
                let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                panic!("the server ended ({status:?}) before its banner: {banner}\n{stderr}");
            }
        }
        Self {
            child,
            stdout,
            banner,
        }
    }

    /// Sends SIGTERM, waits for the exit, and returns the exit code and what else was printed.
    fn terminate(mut self) -> (i32, String) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "the server stops within the grace period"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut rest = String::new();
        self.stdout
            .read_to_string(&mut rest)
            .expect("rest of stdout");
        (code, format!("{}{rest}", self.banner))
    }
}

#[test]
fn the_first_start_prints_the_admin_password_once_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path());
    assert!(
        first.banner.contains("listening on http://127.0.0.1:"),
        "{}",
        first.banner
    );
    assert!(
        first
            .banner
            .contains("outgoing mail: written as .eml files into ./data/outbox"),
        "{}",
        first.banner
    );
    assert!(dir.path().join("data/outbox").is_dir());
    let (code, output) = first.terminate();
    assert_eq!(code, 0, "SIGTERM is a clean stop");
    assert!(
        output.contains("First start: an administrator account was created."),
        "{output}"
    );
    assert!(output.contains("  password: "), "{output}");

    let (code, output) = serve(dir.path()).terminate();
    assert_eq!(code, 0);
    assert!(
        !output.contains("First start"),
        "the password is printed only once: {output}"
    );
}
