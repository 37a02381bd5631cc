//! Real processes for integration tests and the demo: an `hq` and any number of
//! `branch-agent`s, each in its own directory, talking real QUIC and HTTP on loopback.
//!
//! The binaries are built on first use with the same cargo and profile as the running
//! test, so `cargo test` alone is enough. Each process's stderr goes to a log file in
//! its directory; `HqProc::log`/`AgentProc::log` return it for failure messages.
//!
//! Nobody calls HQ or a branch anonymously: `HqProc` signs in as the local admin that
//! `hq init` created (`admin.secret`), and `add_branch` also creates the branch's person
//! `<code>-li` (branch accountant and cashier, every code in scope, password
//! [`PERSON_PASSWORD`]) at HQ before the branch enrolls, so that `AgentProc` can sign in
//! as them. `get`/`post`/`post_json`/`delete` on both carry the session token.
//!
//! Must not: mock anything: the processes, QUIC and HTTP are the real ones.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

/// The password of every branch person the harness creates.
pub const PERSON_PASSWORD: &str = "harness-password-1";

/// The person the harness creates for branch `code` (`SH` → `sh-li`).
pub fn branch_login(code: &str) -> String {
    format!("{}-li", code.to_lowercase())
}

/// How long a process may take to print its listening lines.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Directory of the built binaries, building them once per test process.
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable has a path");
        let mut dir = exe.parent().expect("executable is in a directory").to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let release = dir.ends_with("release");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // The same target set as `cargo test --workspace`, so features unify the same way
        // and this is a no-op there; building only `-p hq -p branch-agent` would resolve
        // features differently and rebuild rustls, quinn and both binaries every run.
        cmd.args(["build", "--quiet", "--workspace", "--tests", "--bins", "--manifest-path"]).arg(&manifest);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build for hq and branch-agent");
        assert!(status.success(), "building hq and branch-agent failed");
        dir
    })
}

/// The binary `name` from this build, or the one `BRANCHLINE_HQ_BIN` names for `hq`
/// (the load generator's baseline runs another build of HQ).
pub fn bin(name: &str) -> PathBuf {
    if name == "hq" {
        if let Some(other) = std::env::var_os("BRANCHLINE_HQ_BIN") {
            return PathBuf::from(other);
        }
    }
    bin_dir().join(name)
}

/// A free UDP port on loopback (for HQ's QUIC listener, which must keep its port across
/// restarts because agents are configured with it).
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("binding an ephemeral UDP port");
    s.local_addr().expect("bound socket has an address").port()
}

/// Runs `cmd` with `stdin` as its standard input; its standard output.
fn run_with_stdin(cmd: &mut Command, stdin: &str) -> anyhow::Result<String> {
    use std::io::Write;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    child.stdin.take().context("child stdin")?.write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Spawns `cmd`, waits until it printed a line starting with each of `markers`, and
/// returns the child and the rest of those lines.
fn spawn_until(mut cmd: Command, log: &Path, markers: &[&str]) -> anyhow::Result<(Child, Vec<String>)> {
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    cmd.stdout(Stdio::piped()).stderr(log_file).stdin(Stdio::null());
    let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let mut found = vec![None; markers.len()];
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                for (i, m) in markers.iter().enumerate() {
                    if let Some(rest) = line.strip_prefix(m) {
                        found[i] = Some(rest.trim().to_string());
                    }
                }
            }
            Err(_) => {
                let _ = child.kill();
                bail!("{cmd:?} did not start; log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
            }
        }
    }
    Ok((child, found.into_iter().map(|f| f.expect("all found")).collect()))
}

/// What an HQ and an agent process have in common: a data directory, a log file in it,
/// and while running the child and its HTTP base URL. Stopping is `kill -9`, also on drop.
pub struct Proc {
    pub dir: PathBuf,
    pub http: Option<String>,
    /// The session token of the harness's person, while running.
    pub token: Option<String>,
    log_name: &'static str,
    child: Option<Child>,
}

impl Proc {
    fn new(dir: &Path, log_name: &'static str) -> Proc {
        Proc { dir: dir.to_path_buf(), http: None, token: None, log_name, child: None }
    }

    /// Spawns `cmd` with the test log level and waits for `markers` (the last one names
    /// the HTTP base URL).
    fn spawn(&mut self, mut cmd: Command, markers: &[&str]) -> anyhow::Result<Vec<String>> {
        assert!(self.child.is_none(), "{} already running", self.dir.display());
        cmd.env("BRANCHLINE_LOG", std::env::var("BRANCHLINE_LOG").unwrap_or_else(|_| "info".into()));
        let (child, lines) = spawn_until(cmd, &self.dir.join(self.log_name), markers)?;
        self.http = lines.last().cloned();
        self.child = Some(child);
        Ok(lines)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.http.as_deref().unwrap_or("http://not-running"), path)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(self.log_name)).unwrap_or_default()
    }

    /// Signs in as `login`; the session token.
    pub async fn sign_in(&self, login: &str, password: &str) -> anyhow::Result<String> {
        let (status, v) = send(client().post(self.url("/api/session")).json(&serde_json::json!({ "login": login, "password": password })))
            .await
            .context("POST /api/session")?;
        if status != 200 {
            bail!("signing in as {login}: {status} {v}");
        }
        Ok(v["token"].as_str().context("sign-in returned no token")?.to_string())
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// GET `path` as the harness's person; the JSON body, or an error naming the status.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let (status, v) = send(self.authed(client().get(self.url(path)))).await.with_context(|| format!("GET {path}"))?;
        if !(200..300).contains(&status) {
            bail!("GET {path}: {status}: {v}");
        }
        Ok(v)
    }

    /// GET `path` as the harness's person; the body as text (CSV).
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        Ok(self.authed(client().get(self.url(path))).send().await?.error_for_status()?.text().await?)
    }

    /// POST `body` as JSON to `path` as the harness's person; `(status, body)`, whatever
    /// the status.
    pub async fn post_json(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        send(self.authed(client().post(self.url(path)).json(body))).await.with_context(|| format!("POST {path}"))
    }

    /// DELETE `path` as the harness's person; `(status, body)`.
    pub async fn delete(&self, path: &str) -> anyhow::Result<(u16, Value)> {
        let req = client().delete(self.url(path)).header("content-type", "application/json");
        send(self.authed(req)).await.with_context(|| format!("DELETE {path}"))
    }
}

/// Sends `req`; `(status, JSON body)` (`null` for an empty or non-JSON body).
pub async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// An HQ process and its data directory.
pub struct HqProc {
    proc: Proc,
    pub quic: SocketAddr,
}

impl std::ops::Deref for HqProc {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl std::ops::DerefMut for HqProc {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

impl HqProc {
    /// `hq init` in `dir`, and products `P0000..P{n}` named in Chinese and English.
    pub fn init(dir: &Path, products: usize) -> anyhow::Result<HqProc> {
        std::fs::create_dir_all(dir)?;
        run(Command::new(bin("hq")).arg("--data-dir").arg(dir).arg("init"))?;
        for i in 0..products {
            run(Command::new(bin("hq")).arg("--data-dir").arg(dir).args([
                "product",
                "add",
                &format!("P{i:04}"),
                "--name",
                &format!("商品{i} product {i}"),
            ]))?;
        }
        Ok(HqProc { proc: Proc::new(dir, "hq.log"), quic: SocketAddr::from(([127, 0, 0, 1], free_udp_port())) })
    }

    /// `hq product add` (HQ must not be running: the store is opened directly).
    pub fn add_product(&self, code: &str, name: &str) -> anyhow::Result<()> {
        run(Command::new(bin("hq")).arg("--data-dir").arg(&self.dir).args(["product", "add", code, "--name", name]))?;
        Ok(())
    }

    /// `hq product add` with a retail (till) price, e.g. `"2.50"` (HQ must not be running).
    pub fn add_product_priced(&self, code: &str, name: &str, unit: &str, price: &str) -> anyhow::Result<()> {
        run(Command::new(bin("hq"))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["product", "add", code, "--name", name, "--unit", unit, "--price", price]))?;
        Ok(())
    }

    /// Runs `hq --data-dir DIR ARGS…` and returns its standard output. While HQ runs, the
    /// CLI reaches it through the admin API (found in hq.toml, written here).
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        if self.child.is_some() {
            self.write_http_config()?;
        }
        run(Command::new(bin("hq")).arg("--data-dir").arg(&self.dir).args(args))
    }

    /// `hq branch add`; returns the enrollment token. Works whether HQ runs or not.
    pub fn add_branch(&self, code: &str, warehouses: &[&str]) -> anyhow::Result<String> {
        let mut cmd = Command::new(bin("hq"));
        cmd.arg("--data-dir").arg(&self.dir).args(["branch", "add", code, "--name", &format!("{code} 分公司")]);
        for w in warehouses {
            cmd.args(["--warehouse", w]);
        }
        if self.child.is_some() {
            // The store is locked by the running HQ; the CLI goes through the admin API,
            // which it finds in hq.toml. Point it at this HQ's port.
            self.write_http_config()?;
        }
        let token = run(&mut cmd)?.trim().to_string();
        // The branch's person, before it enrolls, so that its profile carries them.
        self.add_person(&branch_login(code), &["branch-accountant", "cashier"], &["--branch", code, "--name", "李 Li"], PERSON_PASSWORD)?;
        Ok(token)
    }

    fn write_http_config(&self) -> anyhow::Result<()> {
        let http = self.http.as_deref().context("HQ not running")?.trim_start_matches("http://");
        std::fs::write(self.dir.join("hq.toml"), format!("http_listen = \"{http}\"\nquic_listen = \"{}\"\n", self.quic))?;
        Ok(())
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(bin("hq"));
        cmd.arg("--data-dir").arg(&self.dir).args(["serve", "--quic-listen", &self.quic.to_string(), "--http-listen", "127.0.0.1:0"]);
        self.proc.spawn(cmd, &["quic-listening", "http-listening"])?;
        let (login, password) = self.admin_credential()?;
        let token = sign_in_blocking(self.url(""), login, password)?;
        self.proc.token = Some(token);
        Ok(())
    }

    /// The local admin's login and password, from `admin.secret`.
    pub fn admin_credential(&self) -> anyhow::Result<(String, String)> {
        let text = std::fs::read_to_string(self.dir.join("admin.secret")).context("reading admin.secret")?;
        let mut lines = text.lines();
        match (lines.next(), lines.next()) {
            (Some(l), Some(p)) => Ok((l.to_string(), p.to_string())),
            _ => bail!("admin.secret holds no login and password"),
        }
    }

    /// `hq user add LOGIN --role …` with `password` on stdin; `extra` are more arguments
    /// (`--branch SH`, `--scope …`, `--name …`). Works whether HQ runs or not.
    pub fn add_person(&self, login: &str, roles: &[&str], extra: &[&str], password: &str) -> anyhow::Result<()> {
        if self.child.is_some() {
            self.write_http_config()?;
        }
        let mut cmd = Command::new(bin("hq"));
        cmd.arg("--data-dir").arg(&self.dir).args(["user", "add", login]);
        for r in roles {
            cmd.args(["--role", r]);
        }
        cmd.args(extra);
        run_with_stdin(&mut cmd, &format!("{password}\n"))?;
        Ok(())
    }

    /// `(last_applied_seq, documents_applied, rejections)` of a branch as HQ reports it.
    pub async fn branch_status(&self, code: &str) -> anyhow::Result<Value> {
        let v = self.get("/api/branches").await?;
        v["branches"]
            .as_array()
            .and_then(|a| a.iter().find(|b| b["code"] == code))
            .cloned()
            .with_context(|| format!("HQ does not list branch {code}"))
    }
}

/// A branch agent process and its data directory.
pub struct AgentProc {
    proc: Proc,
    pub hq: String,
    /// The person the agent signs in as (`branch_login` of its branch).
    pub login: String,
}

impl std::ops::Deref for AgentProc {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.proc
    }
}

impl std::ops::DerefMut for AgentProc {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

impl AgentProc {
    /// `branch-agent enroll` against a running HQ; `hq_for_run` is what `run` will dial
    /// (HQ itself or a relay in front of it).
    pub fn enroll(dir: &Path, hq: SocketAddr, token: &str) -> anyhow::Result<AgentProc> {
        run(Command::new(bin("branch-agent")).arg("--data-dir").arg(dir).args([
            "enroll",
            "--hq",
            &hq.to_string(),
            "--token",
            token,
            "--http-listen",
            "127.0.0.1:0",
        ]))?;
        // Tests want quick reconnects; production defaults back off up to 30 s.
        let cfg_path = dir.join("agent.toml");
        let cfg = std::fs::read_to_string(&cfg_path)?;
        std::fs::write(&cfg_path, cfg.replace("reconnect_delay_ms_max = 30000", "reconnect_delay_ms_max = 1000"))?;
        // `BL1.<BRANCH>.…`: the branch whose person the harness signs in as.
        let branch = token.split('.').nth(1).context("enrollment token names no branch")?;
        Ok(AgentProc { proc: Proc::new(dir, "agent.log"), hq: hq.to_string(), login: branch_login(branch) })
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        self.start_with_env(&[])
    }

    /// [`AgentProc::start`] with extra environment variables (test-only switches).
    pub fn start_with_env(&mut self, env: &[(&str, &str)]) -> anyhow::Result<()> {
        let mut cmd = Command::new(bin("branch-agent"));
        cmd.arg("--data-dir").arg(&self.dir).args(["run", "--hq", &self.hq]);
        cmd.envs(env.iter().copied());
        self.proc.spawn(cmd, &["http-listening"])?;
        let token = sign_in_blocking(self.url(""), self.login.clone(), PERSON_PASSWORD.into())?;
        self.proc.token = Some(token);
        Ok(())
    }

    /// Posts a document as the signed-in person; `Ok(Err(..))` is a refusal by the
    /// branch (status and message).
    pub async fn post(&self, doc: &Value) -> anyhow::Result<Result<Value, (u16, String)>> {
        let (status, body) = self.post_json("/api/documents", doc).await?;
        if (200..300).contains(&status) {
            Ok(Ok(body))
        } else {
            Ok(Err((status, body["error"].as_str().unwrap_or("").to_string())))
        }
    }

    pub async fn sync(&self) -> anyhow::Result<Value> {
        Ok(self.get("/api/sync").await?["status"].clone())
    }

    pub async fn stock(&self) -> anyhow::Result<Value> {
        self.get("/api/stock").await
    }
}

/// Signs in from synchronous code (`start`), on a thread of its own with its own runtime,
/// so it works inside any test runtime: the session token.
fn sign_in_blocking(base: String, login: String, password: String) -> anyhow::Result<String> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let req = reqwest::Client::new()
                .post(format!("{base}/api/session"))
                .json(&serde_json::json!({ "login": login, "password": password }));
            let (status, v) = send(req).await.context("POST /api/session")?;
            if status != 200 {
                bail!("signing in as {login}: {status} {v}");
            }
            Ok(v["token"].as_str().context("sign-in returned no token")?.to_string())
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the sign-in thread panicked"))?
}

pub fn client() -> &'static reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(|| reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("building HTTP client"))
}

/// GET `url` anonymously (only `/` and sign-in answer without a session).
pub async fn get_json(url: &str) -> anyhow::Result<Value> {
    let resp = client().get(url).send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().await.with_context(|| format!("GET {url}: not JSON"))?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {v}");
    }
    Ok(v)
}

/// Polls `check` until it returns `Ok(true)` or `limit` passes. The limit is a liveness
/// bound for a stuck system, far above normal, not a performance assertion.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + limit;
    let mut last_err = String::new();
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = format!("{e:#}"),
        }
        if Instant::now() > deadline {
            bail!("gave up waiting for {what} after {limit:?} (last error: {last_err})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A document as JSON for the agent's API.
pub fn doc(doc_type: &str, warehouse: &str, lines: &[(&str, &str, &str)]) -> Value {
    let counterparty = match doc_type {
        "JH" => Some("S0001"),
        "XS" => Some("C0001"),
        _ => None,
    };
    serde_json::json!({
        "doc_type": doc_type,
        "date": "2026-06-09",
        "warehouse": warehouse,
        "counterparty": counterparty,
        "lines": lines.iter().map(|(p, q, pr)| serde_json::json!({"product": p, "qty": q, "unit_price": pr})).collect::<Vec<_>>(),
    })
}

/// Stock rows as `(warehouse, product) → (qty, value)` strings normalised for comparison.
pub fn stock_map(rows: &Value) -> std::collections::BTreeMap<(String, String), (String, String)> {
    let norm = |v: &Value| -> String {
        let s = v.as_str().unwrap_or("0");
        s.parse::<rust_decimal::Decimal>().map(|d| d.normalize().to_string()).unwrap_or_else(|_| s.to_string())
    };
    rows.as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                (r["warehouse"].as_str().unwrap_or("").to_string(), r["product"].as_str().unwrap_or("").to_string()),
                (norm(&r["qty"]), norm(&r["value"])),
            )
        })
        .collect()
}
