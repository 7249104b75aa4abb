//! Known task types and the solution each one gets when it is "solved".
//!
//! The solutions are the docs' own examples (docs.capmonster.cloud, also kept verbatim in the
//! project's fixtures file), embedded as literals so the emulator needs no file at runtime.
//! Every answer is deterministic: ImageToTextTask always reads `"answer"`, like the docs.

use serde_json::{json, Value};

/// The solution families; one per distinct shape in the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ImageToText,
    Recaptcha,
    HCaptcha,
    Turnstile,
    FunCaptcha,
    Binance,
    GeeTest,
    ComplexImage,
    Amazon,
    Custom,
    MtCaptcha,
    Prosopo,
    Yidun,
}

/// Task types the docs create. Each is also accepted with a `Proxyless` suffix (that is how
/// `RecaptchaV3TaskProxyless`, `HCaptchaTaskProxyless`, ... are known).
const BASE_TYPES: &[(&str, Kind)] = &[
    ("ImageToTextTask", Kind::ImageToText),
    ("RecaptchaV2Task", Kind::Recaptcha),
    ("RecaptchaV2EnterpriseTask", Kind::Recaptcha),
    ("RecaptchaV3Task", Kind::Recaptcha),
    ("RecaptchaV3EnterpriseTask", Kind::Recaptcha),
    ("HCaptchaTask", Kind::HCaptcha),
    ("TurnstileTask", Kind::Turnstile),
    ("FunCaptchaTask", Kind::FunCaptcha),
    ("BinanceTask", Kind::Binance),
    ("GeeTestTask", Kind::GeeTest),
    ("ComplexImageTask", Kind::ComplexImage),
    ("AmazonTask", Kind::Amazon),
    ("CustomTask", Kind::Custom),
    ("MTCaptchaTask", Kind::MtCaptcha),
    ("ProsopoTask", Kind::Prosopo),
    ("YidunTask", Kind::Yidun),
];

fn kind_of(task_type: &str) -> Option<Kind> {
    let base = task_type.strip_suffix("Proxyless").unwrap_or(task_type);
    BASE_TYPES.iter().find(|(name, _)| *name == base).map(|(_, kind)| *kind)
}

/// Whether createTask accepts this `task.type`.
pub fn is_known_type(task_type: &str) -> bool {
    kind_of(task_type).is_some()
}

/// The solution for a task object (`{"type": .., ...}`). A few fields pick among the docs'
/// variants: TurnstileTask `cloudflareTaskType` "cf_clearance"/"wait_room" gives
/// `{"cf_clearance"}`, GeeTestTask `version` 4 gives the v4 shape, CustomTask `class`
/// (DataDome, Imperva, Temu, TenDI, Basilisk, Altcha, Castle, HUNT, tspd, Alibaba, friendly)
/// gives that page's shape, ComplexImageTask `recognition` a NumericArray (the other classes
/// a Grid). Other fields (`nocache`, ...) change nothing. Unknown types (only reachable
/// through test helpers) get a token.
pub fn solution_for(task: &Value) -> Value {
    let field = |name: &str| task.get(name);
    let text = |name: &str| field(name).and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
    let task_type = field("type").and_then(Value::as_str).unwrap_or("");
    match kind_of(task_type) {
        Some(Kind::ImageToText) => json!({"text": "answer"}),
        Some(Kind::Recaptcha) => {
            json!({"gRecaptchaResponse": "3AHJ_VuvYIBNBW5yyv0zRYJ75VkOKvhKj9_xGBJKnQimF72rfoq3Iy-DyGHMwLAo6a3"})
        }
        Some(Kind::HCaptcha) => json!({
            "gRecaptchaResponse": "P1_eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.hKdwYXNza2V5xQb9JvlblBqjTdKpourvlRNpOZLvJb0yJRmsXVFVjyxFWlL1wdYBXaPyFtnxwy2ukbMgwWn62-cjSc98Iw2XIPYWg5MNDKS4_7tBIhjY0PienoKy1...",
            "respKey": "E0_eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJkYXRhIjoidjQ3RjlqZGFYTllFQXlZZFYyRTlaWlBVQUdLaFpPakpRNjBXRTljVW40VnY3NnhuN2V3R0wwVWd1MW1Wai90WEdoYmt5a2NqVGlGdWpsSlpmVjcza...",
            "userAgent": "userAgentPlaceholder"
        }),
        Some(Kind::Turnstile) => match text("cloudflareTaskType").as_str() {
            "cf_clearance" | "wait_room" => json!({
                "cf_clearance": "1tarGvbY2_ZhQdYxpSBloao.FoOn9VtcJtmb_IQ_hCE-1761217338-1.2.1.1-vyVPoLYIGX0VCJomVuLjF7n0kdM0PXaPjpDsRcohxGr7hb2CE7WfcHpmQZ70goqEjdWxPsDhSVaKNTz9opxWguiNdWEEq_.SceWXIqfP7tnEb69f3bP0mixNqcWy_5P_9INpoAEqr1k7aYU0r45PT4gPr5pwHxedVySyLRdoBXIJasdTE52YOQ3NPdGWTwQ_3h2n_wYqqIvf0kCSAvimRrmsgZxomlyejwqPI6ZHi.w"
            }),
            _ => json!({
                "userAgent": "userAgentPlaceholder",
                "token": "0.iGX3xsyFCkbGePM3jP4P4khLo6TrLukt8ZzBvwuQOvbC...f61f3082"
            }),
        },
        Some(Kind::FunCaptcha) => json!({
            "token": "337187b9f57678923.5060184402|r=us-west-2|lang=en|pk=EX72CCFB-26EX-40E5-91E6-85EX70BE98ED|at=40|ag=101|cdn_url=https%3A%2F%2Fclient-api.arkoselabs.com%2Fcdn%2Ffc|surl=https%3A%2F%2Fclient-api.arkoselabs.com|smurl=https%3A%2F%2Fclient-api.arkoselabs.com%2Fcdn%2Ffc%2Fassets%2Fstyle-manager",
            "userAgent": "userAgentPlaceholder"
        }),
        Some(Kind::Binance) => json!({
            "token": "captcha#09ba4905a79f44f2a99e44f234439644-ioVA7neog7eRHCDAsC0MixpZvt5kc99maS943qIsquNP9D77",
            "userAgent": "userAgentPlaceholder"
        }),
        Some(Kind::GeeTest) => {
            let v4 = field("version").is_some_and(|v| v.as_i64() == Some(4) || v.as_str() == Some("4"));
            if v4 {
                json!({
                    "captcha_id": "f5c2ad5a8a3cf37192d8b9c039950f79",
                    "lot_number": "bcb2c6ce2f8e4e9da74f2c1fa63bd713",
                    "pass_token": "edc7a17716535a5ae624ef4707cb6e7e478dc557608b068d202682c8297695cf",
                    "gen_time": "1683794919",
                    "captcha_output": "XwmTZEJCJEnRIJBlvtEAZ662T...[cut]...SQ3fX-MyoYOVDMDXWSRQig56"
                })
            } else {
                json!({
                    "challenge": "0f759dd1ea6c4wc76cedc2991039ca4f23",
                    "validate": "6275e26419211d1f526e674d97110e15",
                    "seccode": "510cd9735583edcb158601067195a5eb|jordan"
                })
            }
        }
        // The recognition page's NumericArray example; the click classes (recaptcha, hcaptcha,
        // funcaptcha) answer a grid.
        Some(Kind::ComplexImage) if text("class") == "recognition" => json!({
            "answer": [4, 4, 4, 4, 4, 3, 1, 2, 2],
            "metadata": {"AnswerType": "NumericArray"}
        }),
        Some(Kind::ComplexImage) => json!({
            "answer": [true, true, false, false, true, false, false, true, true],
            "metadata": {"AnswerType": "Grid"}
        }),
        Some(Kind::Amazon) => json!({
            "cookies": {
                "aws-waf-token": "10115f5b-ebd8-45c7-851e-cfd4f6a82e3e:EAoAua1QezAhAAAA:dp7sp2rXIRcnJcmpWOC1vIu+yq/A3EbR6b6K7c67P49usNF1f1bt/Af5pNcZ7TKZlW+jIZ7QfNs8zjjqiu8C9XQq50Pmv2DxUlyFtfPZkGwk0d27Ocznk18/IOOa49Rydx+/XkGA7xoGLNaUelzNX34PlyXjoOtL0rzYBxMAQy0D1tn+Q5u97kJBjs5Mytqu9tXPIPCTSn4dfXv5llSkv9pxBEnnhwz6HEdmdJMdfur+YRW1MgCX7i3L2Y0/CNL8kd8CEhTMzwyoXekrzBM="
            },
            "userAgent": "userAgentPlaceholder"
        }),
        Some(Kind::Custom) => custom_solution(&text("class")),
        Some(Kind::MtCaptcha) => json!({"token": "v1(155506dc,c8c2e356,MTPublic-abCDEFJAB,70f03532a53...5FSDA**)"}),
        Some(Kind::Prosopo) => json!({
            "token": "0x00016c68747470733a2f2f70726f6e6f6465332e70726f736f706f2e696fc0354550516f4d5a454463354c704e376774784d4d7a5950547a4136..."
        }),
        Some(Kind::Yidun) => json!({"token": "CN31_9AwsPmaYcJameP_09rA0vkVMQsPij...RXTlFJFc3"}),
        None => json!({"token": "emulator-token"}),
    }
}

/// CustomTask solutions by lower-cased `class`; unknown classes get the DataDome shape
/// (the most common one: nested `domains` -> cookies).
fn custom_solution(class: &str) -> Value {
    match class {
        "imperva" | "incapsula" => json!({
            "domains": {"https://example.com": {"cookies": {
                "___utmvc": "NMB+nRa4inxXNeXuhPl9w4opzdo...E4OTU2OGEwNzI2ODlkODc4MWIwNmU3MQ==; Max-Age=31536000; Domain=.site.com; Path=/; Secure; SameSite=Lax"
            }}}
        }),
        "temu" => json!({
            "domains": {"www.example.com": {"cookies": {
                "privacy_setting_detail": "%7B%22firstPAds%22%3A1%2C%22adj%22%3A1%2C%22fbsAnlys%22%3A1%2C%22fbEvt%22%3A1%2C%22ggAds%22%3A1%2C%22fbAds%22%3A1%2C%22ttAds%22%3A1%2C%22scAds%22%3A1%2C%22ptAds%22%3A1%2C%22bgAds%22%3A1%2C%22tblAds%22%3A1%2C%22obAds%22%3A1%2C%22vgAds%22%3A1%2C%22idAds%22%3A1%2C%22opAds%22%3A1%2C%22stAds%22%3A1%2C%22pmAds%22%3A1%7D",
                "region": "211",
                "language": "en",
                "currency": "USD",
                "api_uid": "Chgx+mflQkR0G1THhRQIAg",
                "webp": "1",
                "_nano_fp": "XpmYXq98nqUaXpdano_AT7Nbb0dRwziAaAq~s8do",
                "verifyAuthToken": "8VhdGgRPTJaJ0t6msEcXlA598e207617867ac4b",
                "timezone": "America/Buenos_Aires",
                "_bee": "FJBIpQvZnnUGDlamFfP08tIpG1Uyiap2"
            }}}
        }),
        "tendi" => json!({
            "data": {"randstr": "@EcL", "ticket": "tr03lHUhdnuW3neJZu.....7LrIbs*"},
            "headers": {"User-Agent": "userAgentPlaceholder"}
        }),
        "basilisk" => json!({
            "data": {"captcha_response": "5620301f30daf284b829fba66fa9b3d0"},
            "headers": {"User-Agent": "userAgentPlaceholder"}
        }),
        "altcha" => json!({"data": {"token": "eyJhbGdvcml...Ljc2MDEzM30==", "number": 44619}}),
        "castle" => json!({
            "data": {"tokens": ["Q05Ap...H7nYn", "cn9xW...aFl_4", "..."]},
            "domains": {"www.example.com": {"cookies": {"__cuid": "6883480a9ab7442d9f97da7307d6ea9c"}}}
        }),
        "hunt" => json!({"data": {"token": "6IyDCCpDdSK...YGs1Wug/z/kLNSpjewI="}}),
        // No example in the docs the fixtures hold: a token in `data`, as the HUNT and Altcha
        // pages answer.
        "friendly" => json!({"data": {"token": "emulator-friendly-token"}}),
        "tspd" => json!({
            "Domains": {"example.com": {"Cookies": {
                "TS386a400d029": "08267...01a06e",
                "TS386a400d078": "08267...bb3b0c",
                "TSd2153684027": "08267...11944",
                "TS00000000076": "08267...b70fc2",
                "TSPD_101_DID": "08267...1d53f",
                "TS386a400d075": "0402b...1000"
            }}}
        }),
        "alibaba" => json!({
            "data": {"tokens": "{\"sceneId\":\"1ww7426c4\",\"certifyId\":\"kBjCxX2W2c\",\"deviceToken\":\"U0dfV0VCIzM3...wOGJkMjY=\",\"data\":\"JRMnX3B...EUQdCpLkqSj7THYNf3dn\"}"}
        }),
        _ => json!({
            "domains": {"www.example.com": {
                "cookies": {"datadome": "P1w0VnjFcTFslfps0J4FaPpY_QPbPBW4MeYxj4LW~pztIfJiSSuBPr8oQTUHzdrfgv137FbOBd3kCUOOgny7LhIkhm5e1qdtzYM4s2e46U_qfERK4KiCy22MOSIDsDyh"},
                "localStorage": null
            }},
            "url": null,
            "fingerprint": null,
            "headers": null,
            "data": null
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        k.sort_unstable();
        k
    }

    #[test]
    fn known_types_and_proxyless_forms() {
        for t in
            ["ImageToTextTask", "RecaptchaV2Task", "RecaptchaV3TaskProxyless", "HCaptchaTaskProxyless", "CustomTask"]
        {
            assert!(is_known_type(t), "{t}");
        }
        for t in ["", "Proxyless", "NoSuchTask", "imagetotexttask", "RecaptchaV2TaskProxylessProxyless"] {
            assert!(!is_known_type(t), "{t}");
        }
    }

    /// Every CustomTask class of the official SDKs gets its own page's shape, not the default.
    #[test]
    fn every_custom_class_has_its_shape() {
        let default = solution_for(&json!({"type": "CustomTask", "class": "NoSuchClass"}));
        assert_eq!(solution_for(&json!({"type": "CustomTask", "class": "DataDome"})), default);
        for class in ["Imperva", "Temu", "TenDI", "Basilisk", "altcha", "Castle", "HUNT", "tspd", "alibaba", "friendly"]
        {
            let solution = solution_for(&json!({"type": "CustomTask", "class": class}));
            assert!(solution.is_object() && solution != default, "{class}");
        }
    }

    #[test]
    fn shapes_follow_the_docs() {
        let sol = |task: Value| keys(&solution_for(&task)).join(",");
        assert_eq!(solution_for(&json!({"type": "ImageToTextTask"})), json!({"text": "answer"}));
        assert_eq!(sol(json!({"type": "RecaptchaV2TaskProxyless"})), "gRecaptchaResponse");
        assert_eq!(sol(json!({"type": "HCaptchaTask"})), "gRecaptchaResponse,respKey,userAgent");
        assert_eq!(sol(json!({"type": "TurnstileTask"})), "token,userAgent");
        assert_eq!(sol(json!({"type": "TurnstileTask", "cloudflareTaskType": "cf_clearance"})), "cf_clearance");
        assert_eq!(sol(json!({"type": "GeeTestTask"})), "challenge,seccode,validate");
        assert_eq!(
            sol(json!({"type": "GeeTestTask", "version": 4})),
            "captcha_id,captcha_output,gen_time,lot_number,pass_token"
        );
        assert_eq!(solution_for(&json!({"type": "ComplexImageTask"}))["metadata"]["AnswerType"], "Grid");
        assert_eq!(sol(json!({"type": "AmazonTaskProxyless"})), "cookies,userAgent");
        assert_eq!(sol(json!({"type": "CustomTask"})), "data,domains,fingerprint,headers,url");
        assert_eq!(sol(json!({"type": "CustomTask", "class": "TenDI"})), "data,headers");
        assert_eq!(
            solution_for(&json!({"type": "ComplexImageTask", "class": "recognition"}))["metadata"]["AnswerType"],
            "NumericArray"
        );
        assert_eq!(
            solution_for(&json!({"type": "ComplexImageTask", "class": "hcaptcha"}))["metadata"]["AnswerType"],
            "Grid"
        );
        assert_eq!(
            solution_for(&json!({"type": "RecaptchaV2Task", "nocache": true})),
            solution_for(&json!({"type": "RecaptchaV2Task"}))
        );
        assert_eq!(sol(json!({"type": "YidunTask"})), "token");
        assert_eq!(sol(json!({"type": "Unknown"})), "token");
    }
}
