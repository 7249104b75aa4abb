//! The emulated account's standing: the answers behind the service's bans ("Reasons for
//! blocking": a revoked key, a zero balance, a refused or banned address, a banned proxy),
//! so that tests and the demo can show what a client does about each. Set from the command
//! line (`Config`) and changed at run time (`POST /_emulator/account`).

use serde_json::{json, Value};

/// Most revoked keys and banned proxies held (each): a test needs a handful.
pub const MAX_ACCOUNT_ENTRIES: usize = 1_000;

/// The address-level refusals the service documents: every API call from the address gets
/// one of them, whatever the key.
pub const ADDRESS_BANS: [&str; 3] = ["ERROR_IP_NOT_ALLOWED", "ERROR_IP_BANNED", "ERROR_IP_BLOCKED"];

/// The account's standing at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Account {
    /// Keys answered `ERROR_KEY_DOES_NOT_EXIST` (a key that existed once: mistyped or revoked).
    pub revoked_keys: Vec<String>,
    /// One of [`ADDRESS_BANS`], answered to every API call; `None`: the address is fine.
    pub address_ban: Option<String>,
    /// Proxies (`"host:port"`, as a task's `proxyAddress` and `proxyPort`) whose createTask is
    /// answered `ERROR_PROXY_BANNED`.
    pub banned_proxies: Vec<String>,
    /// What getBalance answers; at 0 or below createTask answers `ERROR_ZERO_BALANCE`.
    pub balance: f64,
}

/// A refusal: the error code and the service's description of it.
pub(crate) type Refusal = (&'static str, &'static str);

/// The service's description of `ERROR_KEY_DOES_NOT_EXIST` (also for a key it never knew).
pub(crate) const KEY_DESCRIPTION: &str = "Account authorization key not found in the system or has incorrect format";

const KEY_REVOKED: Refusal = ("ERROR_KEY_DOES_NOT_EXIST", KEY_DESCRIPTION);
const ZERO_BALANCE: Refusal = ("ERROR_ZERO_BALANCE", "Account has zero or negative balance");
const PROXY_BANNED: Refusal = ("ERROR_PROXY_BANNED", "The proxy IP is banned by the target service");

fn address_refusal(code: &str) -> Refusal {
    match code {
        "ERROR_IP_NOT_ALLOWED" => (
            "ERROR_IP_NOT_ALLOWED",
            "Request with current account key is not allowed from your IP. Please refer to IP list section",
        ),
        "ERROR_IP_BANNED" => ("ERROR_IP_BANNED", "Your IP is blocked due to improper use of API"),
        _ => ("ERROR_IP_BLOCKED", "Your IP is blocked due to improper use of API"),
    }
}

impl Account {
    /// Why the account refuses this call before looking at its method's own rules: the
    /// address first (the service refuses it whatever the key), then a revoked key.
    pub(crate) fn refuses_call(&self, client_key: Option<&str>) -> Option<Refusal> {
        if let Some(code) = &self.address_ban {
            return Some(address_refusal(code));
        }
        let revoked = client_key.is_some_and(|key| self.revoked_keys.iter().any(|k| k == key));
        revoked.then_some(KEY_REVOKED)
    }

    /// Why createTask is refused for this task: no money, or a banned proxy.
    pub(crate) fn refuses_task(&self, task: &Value) -> Option<Refusal> {
        if self.balance <= 0.0 {
            return Some(ZERO_BALANCE);
        }
        let address = task.get("proxyAddress").and_then(Value::as_str)?;
        let port = task.get("proxyPort").and_then(Value::as_u64)?;
        let proxy = format!("{address}:{port}");
        self.banned_proxies.contains(&proxy).then_some(PROXY_BANNED)
    }

    /// The `GET /_emulator/account` form.
    pub fn to_json(&self) -> Value {
        json!({
            "revokedKeys": self.revoked_keys,
            "addressBan": self.address_ban,
            "bannedProxies": self.banned_proxies,
            "balance": self.balance,
        })
    }

    /// Applies a `POST /_emulator/account` body: each member given replaces that part of the
    /// standing (`"addressBan": null` lifts the ban); members not given stay. All or nothing:
    /// on an error nothing changes and the message says what was wrong.
    pub fn update(&mut self, body: &Value) -> Result<(), String> {
        let members = body.as_object().ok_or("the body must be a JSON object")?;
        let mut next = self.clone();
        for (name, value) in members {
            match name.as_str() {
                "revokedKeys" => next.revoked_keys = strings(name, value)?,
                "bannedProxies" => next.banned_proxies = strings(name, value)?,
                "addressBan" => {
                    next.address_ban = match value {
                        Value::Null => None,
                        Value::String(code) if ADDRESS_BANS.contains(&code.as_str()) => Some(code.clone()),
                        _ => return Err(format!("\"addressBan\" must be null or one of {ADDRESS_BANS:?}")),
                    }
                }
                "balance" => {
                    next.balance =
                        value.as_f64().filter(|b| b.is_finite()).ok_or("\"balance\" must be a finite number")?;
                }
                other => {
                    return Err(format!(
                        "unknown member {other:?} (known: revokedKeys, addressBan, bannedProxies, balance)"
                    ))
                }
            }
        }
        *self = next;
        Ok(())
    }
}

/// A JSON array of at most [`MAX_ACCOUNT_ENTRIES`] non-empty strings.
fn strings(name: &str, value: &Value) -> Result<Vec<String>, String> {
    let bad = || format!("{name:?} must be an array of at most {MAX_ACCOUNT_ENTRIES} non-empty strings");
    let items = value.as_array().filter(|items| items.len() <= MAX_ACCOUNT_ENTRIES).ok_or_else(bad)?;
    items.iter().map(|item| item.as_str().filter(|s| !s.is_empty()).map(str::to_owned).ok_or_else(bad)).collect()
}

/// The standing a fresh (or reset) emulator starts with.
pub(crate) fn initial(config: &crate::Config) -> Account {
    Account {
        revoked_keys: config.revoked_keys.clone(),
        address_ban: config.address_ban.clone(),
        banned_proxies: config.banned_proxies.clone(),
        balance: config.balance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fine() -> Account {
        Account { balance: 1.0, ..Account::default() }
    }

    #[test]
    fn the_address_is_refused_before_the_key() {
        let mut account = fine();
        account.revoked_keys = vec!["old".into()];
        assert_eq!(account.refuses_call(Some("old")).map(|r| r.0), Some("ERROR_KEY_DOES_NOT_EXIST"));
        assert_eq!(account.refuses_call(Some("new")), None);
        account.address_ban = Some("ERROR_IP_BANNED".into());
        assert_eq!(account.refuses_call(Some("old")).map(|r| r.0), Some("ERROR_IP_BANNED"));
        assert_eq!(account.refuses_call(None).map(|r| r.0), Some("ERROR_IP_BANNED"));
    }

    #[test]
    fn create_task_needs_money_and_a_clean_proxy() {
        let mut account = fine();
        account.banned_proxies = vec!["10.0.0.1:8080".into()];
        let proxied = json!({"type": "RecaptchaV2Task", "proxyAddress": "10.0.0.1", "proxyPort": 8080});
        let other = json!({"type": "RecaptchaV2Task", "proxyAddress": "10.0.0.2", "proxyPort": 8080});
        assert_eq!(account.refuses_task(&proxied).map(|r| r.0), Some("ERROR_PROXY_BANNED"));
        assert_eq!(account.refuses_task(&other), None);
        account.balance = 0.0;
        assert_eq!(account.refuses_task(&other).map(|r| r.0), Some("ERROR_ZERO_BALANCE"));
    }

    #[test]
    fn an_update_replaces_what_it_names_or_nothing() {
        let mut account = fine();
        account.update(&json!({"revokedKeys": ["a"], "addressBan": "ERROR_IP_NOT_ALLOWED"})).unwrap();
        assert_eq!((account.revoked_keys.len(), account.address_ban.as_deref()), (1, Some("ERROR_IP_NOT_ALLOWED")));
        account.update(&json!({"addressBan": null, "balance": 0})).unwrap();
        assert_eq!((account.address_ban.as_deref(), account.balance), (None, 0.0));
        let before = account.clone();
        for bad in [
            json!({"balance": 1, "addressBan": "ERROR_OTHER"}),
            json!({"revokedKeys": [""]}),
            json!({"revokedKeys": "a"}),
            json!({"colour": 1}),
            json!([1]),
        ] {
            assert!(account.update(&bad).is_err(), "{bad} is refused");
            assert_eq!(account, before, "{bad} changed nothing");
        }
    }
}
