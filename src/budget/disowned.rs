//! Tasks the service disowned: after `ERROR_NO_SUCH_CAPCHA_ID` (or its alias
//! `WRONG_CAPTCHA_ID`) or `ERROR_CAPTCHA_UNSOLVABLE` for a task's getTaskResult, the service
//! answers nothing else for that task, and asking again about an unknown task is what it bans
//! for ("many getTaskResult requests with a wrong taskId"). The budget keeps the final answer
//! in the task's slot, and every later getTaskResult for the task, in every process of the
//! user, is answered here: no request goes out twice for it.
//!
//! A slot has one word for it, so it keeps which of the three answers it was and when
//! (`Disowned::word`); the description comes from the documented texts below, not from the
//! answer itself.

use crate::api::error::{ApiError, Code, Error};

/// The service's description of `ERROR_NO_SUCH_CAPCHA_ID`, as the service and the emulator
/// give it.
pub const NO_SUCH_TASK_DESCRIPTION: &str = "The captcha that you are requesting was not found. Make sure you are \
     requesting a status update only within 5 minutes of uploading.";
/// The meaning of `ERROR_CAPTCHA_UNSOLVABLE` (the documentation's glossary; its examples carry
/// no description for it).
pub const UNSOLVABLE_DESCRIPTION: &str = "The captcha could not be solved.";

/// The service's final answers about a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FinalAnswer {
    /// `ERROR_NO_SUCH_CAPCHA_ID`: no such task, or its result expired.
    NoSuchTask,
    /// `WRONG_CAPTCHA_ID`: the same, under its other name.
    WrongTaskId,
    /// `ERROR_CAPTCHA_UNSOLVABLE`: the task failed for good.
    Unsolvable,
}

impl FinalAnswer {
    /// The final answer an errorCode of getTaskResult is, if it is one.
    pub fn from_code(api_code: &str) -> Option<FinalAnswer> {
        match api_code {
            "ERROR_NO_SUCH_CAPCHA_ID" => Some(FinalAnswer::NoSuchTask),
            "WRONG_CAPTCHA_ID" => Some(FinalAnswer::WrongTaskId),
            "ERROR_CAPTCHA_UNSOLVABLE" => Some(FinalAnswer::Unsolvable),
            _ => None,
        }
    }

    /// The service's errorCode.
    pub fn code(self) -> &'static str {
        match self {
            FinalAnswer::NoSuchTask => "ERROR_NO_SUCH_CAPCHA_ID",
            FinalAnswer::WrongTaskId => "WRONG_CAPTCHA_ID",
            FinalAnswer::Unsolvable => "ERROR_CAPTCHA_UNSOLVABLE",
        }
    }

    /// The documented description of the answer.
    pub fn description(self) -> &'static str {
        match self {
            FinalAnswer::NoSuchTask | FinalAnswer::WrongTaskId => NO_SUCH_TASK_DESCRIPTION,
            FinalAnswer::Unsolvable => UNSOLVABLE_DESCRIPTION,
        }
    }

    /// Whether it is a wrong-id answer (the kind the service bans a storm of).
    pub fn wrong_id(self) -> bool {
        self != FinalAnswer::Unsolvable
    }

    fn number(self) -> u64 {
        match self {
            FinalAnswer::NoSuchTask => 1,
            FinalAnswer::WrongTaskId => 2,
            FinalAnswer::Unsolvable => 3,
        }
    }
}

/// A task the service disowned: its final answer and when it came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disowned {
    pub answer: FinalAnswer,
    /// Unix seconds of the answer (32 bits: until 2106).
    pub at_unix: u64,
}

impl Disowned {
    /// The slot's word: bits 0-31 the time, bits 32-39 the answer (1 to 3); 0 for none.
    pub(crate) fn word(self) -> u64 {
        self.answer.number() << 32 | (self.at_unix & 0xFFFF_FFFF)
    }

    /// What a slot's word says; `None` for none, and for a word no answer makes (damage is
    /// not believed: the task is then asked about as before).
    pub(crate) fn from_word(word: u64) -> Option<Disowned> {
        let answer = match word >> 32 {
            1 => FinalAnswer::NoSuchTask,
            2 => FinalAnswer::WrongTaskId,
            3 => FinalAnswer::Unsolvable,
            _ => return None,
        };
        Some(Disowned { answer, at_unix: word & 0xFFFF_FFFF })
    }

    /// The answer to a getTaskResult for the task, given here: the service's own error, no
    /// HTTP status, and a message that says it was not sent and why.
    pub fn local_answer(self, task_id: i64) -> Error {
        let code = self.answer.code();
        Error {
            code: Code::Api,
            message: format!(
                "getTaskResult was not sent: the service answered {code} for task {task_id} at {}; it answers nothing else for a task it disowned, so the request budget answers for it here, in every process of the user",
                crate::budget::guard::policy::utc(self.at_unix.saturating_mul(1000)),
            ),
            api: Some(ApiError { code: Some(code.to_owned()), description: Some(self.answer.description().to_owned()) }),
            http_status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_final_answers_fit_a_word_and_damage_is_not_believed() {
        for answer in [FinalAnswer::NoSuchTask, FinalAnswer::WrongTaskId, FinalAnswer::Unsolvable] {
            assert_eq!(FinalAnswer::from_code(answer.code()), Some(answer));
            let disowned = Disowned { answer, at_unix: 1_764_891_612 };
            assert_eq!(Disowned::from_word(disowned.word()), Some(disowned));
        }
        for other in ["CAPCHA_NOT_READY", "ERROR_TOO_MUCH_REQUESTS", "ERROR_KEY_DOES_NOT_EXIST", ""] {
            assert_eq!(FinalAnswer::from_code(other), None);
        }
        assert_eq!(Disowned::from_word(0), None);
        assert_eq!(Disowned::from_word(9 << 32 | 5), None);
    }

    #[test]
    fn the_local_answer_is_the_services_error_with_why() {
        let error = Disowned { answer: FinalAnswer::NoSuchTask, at_unix: 1_764_891_612 }.local_answer(42);
        assert_eq!(
            (error.code, error.api_code(), error.http_status),
            (Code::Api, Some("ERROR_NO_SUCH_CAPCHA_ID"), None)
        );
        assert_eq!(error.api.unwrap().description.as_deref(), Some(NO_SUCH_TASK_DESCRIPTION));
        assert!(
            error.message.starts_with(
                "getTaskResult was not sent: the service answered ERROR_NO_SUCH_CAPCHA_ID for task 42 at 2025-12-04 23:40:12 UTC"
            ),
            "{}",
            error.message
        );
    }
}
