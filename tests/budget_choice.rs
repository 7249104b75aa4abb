//! Where the request budget counts, chosen from code (`budget::choose`, `cm_set_budget`) in
//! place of `CAPMONSTER_BUDGET`: only before the first client, checked, and never repeating a
//! Redis password. A process of its own (this binary), since the choice is the process's; it
//! chooses "process" before its first client, so the user's budget file is never opened.

use capmonster::budget::{self, choose};
use capmonster::{Client, Code};

const PASSWORD: &str = "pw-SECRET-0123";

#[test]
fn the_store_is_chosen_from_code_before_the_first_client_only() {
    let error = choose(Some("nonsense")).unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument);
    assert!(error.message.contains("\"nonsense\"") && error.message.contains("\"process\""), "{}", error.message);

    let bad_url = format!("redis://user:{PASSWORD}@[not-a-host/0");
    let error = choose(Some(&bad_url)).unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument);
    assert!(!error.message.contains(PASSWORD), "{}", error.message);

    // A choice may be changed until the first client: the last one counts.
    choose(Some(&format!("redis://user:{PASSWORD}@127.0.0.1:1/0"))).unwrap();
    choose(None).unwrap();
    choose(Some("process")).unwrap();

    let _client = Client::new("budget-choice").unwrap();
    assert!(!budget::global().is_shared(), "counted in this process, as chosen");
    assert!(budget::global().redis().is_none());

    let error = choose(Some("shared")).unwrap_err();
    assert_eq!(error.code, Code::InvalidArgument);
    assert!(error.message.contains("a client was already created"), "{}", error.message);
    assert!(!budget::global().is_shared(), "the budget stays as it is");
}
