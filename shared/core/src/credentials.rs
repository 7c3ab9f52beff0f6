//! VM logins: generating passwords and key pairs, and a read cache over the secret store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ssh_key::private::{Ed25519Keypair, PrivateKey};
use ssh_key::LineEnding;
use vmapi_models::{AuthMethod, LoginSecret, SecretPath, Sensitive, TeamId, VmId};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
pub use crate::ports::secrets::{Created, ManagedSecret, SecretLabels, SecretStore};

/// Length of generated passwords. Azure, the strictest of the three clouds, wants 12–72
/// characters from at least 3 of 4 classes; generated passwords have all 4.
pub const PASSWORD_LENGTH: usize = 24;

const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGITS: &[u8] = b"23456789";
/// Symbols that need no quoting in shells, YAML, JSON or URLs' user-info.
const SYMBOLS: &[u8] = b"!#%*+-.:=?@^_~";

fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::internal("operating-system randomness", e.to_string()))
}

/// A uniformly random index below `n` (rejection sampling, no modulo bias).
fn random_index(n: usize) -> Result<usize> {
    debug_assert!(n > 0 && n <= 256);
    let limit = 256 - 256 % n;
    loop {
        let mut b = [0u8; 1];
        random_bytes(&mut b)?;
        if (b[0] as usize) < limit {
            return Ok(b[0] as usize % n);
        }
    }
}

/// A random password of [`PASSWORD_LENGTH`] characters with upper- and lower-case letters,
/// digits and symbols (each at least once), from the operating system's random source.
pub fn generate_password() -> Result<Sensitive> {
    let all: Vec<u8> = [UPPER, LOWER, DIGITS, SYMBOLS].concat();
    let mut chars = Zeroizing::new(Vec::with_capacity(PASSWORD_LENGTH));
    for class in [UPPER, LOWER, DIGITS, SYMBOLS] {
        chars.push(class[random_index(class.len())?]);
    }
    while chars.len() < PASSWORD_LENGTH {
        chars.push(all[random_index(all.len())?]);
    }
    // Fisher–Yates, so the guaranteed classes sit at random positions.
    for i in (1..chars.len()).rev() {
        let j = random_index(i + 1)?;
        chars.swap(i, j);
    }
    let text = String::from_utf8(chars.to_vec())
        .map_err(|e| Error::internal("password alphabet", e.to_string()))?;
    Ok(Sensitive::new(text))
}

/// A new Ed25519 key pair: (OpenSSH private key, OpenSSH public key line).
pub fn generate_ed25519(comment: &str) -> Result<(Sensitive, String)> {
    let mut seed = Zeroizing::new([0u8; 32]);
    random_bytes(seed.as_mut())?;
    let keypair = Ed25519Keypair::from_seed(&seed);
    let mut private = PrivateKey::from(keypair);
    private.set_comment(comment);
    let pem = private
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::internal("encoding a private key", e.to_string()))?;
    let public = private
        .public_key()
        .to_openssh()
        .map_err(|e| Error::internal("encoding a public key", e.to_string()))?;
    Ok((Sensitive::new(pem.to_string()), public))
}

/// The SHA-512 crypt hash (`$6$...`, 5000 rounds, random salt) of a password: what cloud-init's
/// `chpasswd` and `/etc/shadow` take, so the plaintext never goes into user data.
pub fn password_hash(password: &Sensitive) -> Result<String> {
    use sha_crypt::{PasswordHasher, ShaCrypt};
    const SALT_CHARS: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut salt = [0u8; 16];
    for c in salt.iter_mut() {
        *c = SALT_CHARS[random_index(SALT_CHARS.len())?];
    }
    let hash = ShaCrypt::default()
        .hash_password_with_salt(password.expose().as_bytes(), &salt)
        .map_err(|e| Error::internal("hashing a password", e.to_string()))?;
    Ok(hash.to_string())
}

/// A team login: a password and a key pair, so VMs of either `authMethod` can use it.
pub fn generate_team_login(team: TeamId, auth_method: AuthMethod) -> Result<LoginSecret> {
    let (private_key, public_key) = generate_ed25519(&format!("vm-api-team-{team}"))?;
    Ok(LoginSecret {
        username: "root".into(),
        auth_method,
        password: Some(generate_password()?),
        private_key: Some(private_key),
        public_key: Some(public_key),
    })
}

/// A VM login with what the VM's `authMethod` needs.
pub fn generate_vm_login(vm: VmId, username: &str, auth_method: AuthMethod) -> Result<LoginSecret> {
    let mut secret = LoginSecret {
        username: username.to_string(),
        auth_method,
        password: None,
        private_key: None,
        public_key: None,
    };
    match auth_method {
        AuthMethod::Password => secret.password = Some(generate_password()?),
        AuthMethod::SshKey => {
            let (private_key, public_key) = generate_ed25519(&format!("vm-api-{vm}"))?;
            secret.private_key = Some(private_key);
            secret.public_key = Some(public_key);
        }
    }
    Ok(secret)
}

/// Removes secrets, logging (never returning) failures: what stays behind carries the
/// service's tags and is found by the cleanup job.
pub async fn remove_secrets(store: &dyn SecretStore, paths: &[SecretPath], after: &str) {
    let results = futures_util::future::join_all(paths.iter().map(|p| store.delete(p))).await;
    for (path, result) in paths.iter().zip(results) {
        match result {
            Ok(()) => tracing::info!(secret = %path, "login removed after {after}"),
            Err(e) => {
                tracing::warn!(secret = %path, error = %crate::ErrorChain(&e), "login could not be removed after {after}; the cleanup job will")
            }
        }
    }
}

/// Caches reads of another store for a while (reads only: creates and deletes go through
/// and update the cache), like the AWS Secrets Manager caching client.
pub struct CachedSecretStore {
    inner: Arc<dyn SecretStore>,
    ttl: Duration,
    entries: Mutex<HashMap<SecretPath, (Instant, LoginSecret)>>,
}

/// Most entries a cache keeps; older ones are dropped first.
const CACHE_CAPACITY: usize = 1024;

impl CachedSecretStore {
    /// Caches `inner`'s reads for `ttl`.
    pub fn new(inner: Arc<dyn SecretStore>, ttl: Duration) -> Self {
        CachedSecretStore {
            inner,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, path: &SecretPath) -> Option<LoginSecret> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(path)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, s)| s.clone())
    }

    fn remember(&self, path: &SecretPath, secret: &LoginSecret) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CACHE_CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= CACHE_CAPACITY {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(path.clone(), (Instant::now(), secret.clone()));
    }

    fn forget(&self, path: &SecretPath) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(path);
    }
}

#[async_trait]
impl SecretStore for CachedSecretStore {
    async fn read(&self, path: &SecretPath) -> Result<Option<LoginSecret>> {
        if let Some(hit) = self.cached(path) {
            return Ok(Some(hit));
        }
        let found = self.inner.read(path).await?;
        if let Some(secret) = &found {
            self.remember(path, secret);
        }
        Ok(found)
    }

    async fn create(
        &self,
        path: &SecretPath,
        secret: &LoginSecret,
        labels: SecretLabels,
    ) -> Result<Created> {
        let created = self.inner.create(path, secret, labels).await?;
        if created == Created::Created {
            self.remember(path, secret);
        } else {
            self.forget(path);
        }
        Ok(created)
    }

    async fn delete(&self, path: &SecretPath) -> Result<()> {
        self.forget(path);
        self.inner.delete(path).await
    }

    async fn read_document(&self, path: &SecretPath) -> Result<Option<Sensitive>> {
        self.inner.read_document(path).await
    }

    async fn list_managed(&self) -> Result<Vec<ManagedSecret>> {
        self.inner.list_managed().await
    }

    async fn adopt(&self, path: &SecretPath) -> Result<()> {
        self.inner.adopt(path).await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(p: &str) -> [bool; 4] {
        [
            p.bytes().any(|b| UPPER.contains(&b)),
            p.bytes().any(|b| LOWER.contains(&b)),
            p.bytes().any(|b| DIGITS.contains(&b)),
            p.bytes().any(|b| SYMBOLS.contains(&b)),
        ]
    }

    #[test]
    fn passwords_meet_the_strictest_cloud_rules_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let p = generate_password().unwrap();
            let p = p.expose();
            assert_eq!(p.len(), PASSWORD_LENGTH);
            assert!((12..=72).contains(&p.len()));
            assert_eq!(classes(p), [true; 4], "{p}");
            assert!(seen.insert(p.to_string()), "repeated password");
        }
    }

    #[test]
    fn ed25519_pairs_are_openssh_and_match() {
        let (private, public) = generate_ed25519("vm-api-test").unwrap();
        let parsed = PrivateKey::from_openssh(private.expose()).unwrap();
        assert_eq!(parsed.algorithm(), ssh_key::Algorithm::Ed25519);
        assert!(private
            .expose()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        assert_eq!(parsed.public_key().to_openssh().unwrap(), public);
        assert!(public.starts_with("ssh-ed25519 ") && public.ends_with(" vm-api-test"));
        vmapi_models::SshPublicKey::parse(&public).unwrap();
        let (other, _) = generate_ed25519("vm-api-test").unwrap();
        assert_ne!(other.expose(), private.expose());
    }

    #[test]
    fn password_hashes_are_sha512_crypt_and_verify() {
        use sha_crypt::{PasswordVerifier, ShaCrypt};
        let p = generate_password().unwrap();
        let h = password_hash(&p).unwrap();
        assert!(h.starts_with("$6$"), "{h}");
        assert!(!h.contains(p.expose()));
        let parsed = sha_crypt::PasswordHash::new(&h).unwrap();
        ShaCrypt::default()
            .verify_password(p.expose().as_bytes(), &parsed)
            .unwrap();
        assert_ne!(password_hash(&p).unwrap(), h, "salted");
    }

    #[test]
    fn vm_logins_carry_only_what_their_method_needs() {
        let vm = VmId::new();
        let pw = generate_vm_login(vm, "azureuser", AuthMethod::Password).unwrap();
        assert!(pw.password.is_some() && pw.private_key.is_none() && pw.public_key.is_none());
        assert_eq!(pw.username, "azureuser");
        let key = generate_vm_login(vm, "root", AuthMethod::SshKey).unwrap();
        assert!(key.password.is_none() && key.private_key.is_some() && key.public_key.is_some());
        let team = generate_team_login(TeamId::new(), AuthMethod::SshKey).unwrap();
        assert!(team.password.is_some() && team.private_key.is_some());
    }
}
