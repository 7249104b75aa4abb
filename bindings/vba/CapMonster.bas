Attribute VB_Name = "CapMonster"
' libcapmonster for VBA 7 (Office 2010 and later, 32- and 64-bit): a Declare for every function
' of include/capmonster.h, its codes and structs, and small string helpers. Thin on purpose:
' every rule and message comes from the library (cm_result_message, cm_code_name).
' scripts/check-vba.py checks these declarations against the header for both bitnesses.
'
' Types: pointers and handles are LongPtr; int32_t and uint32_t are Long; int64_t and uint64_t
' are LongLong on 64-bit Office and Currency on 32-bit, which has no LongLong: a Currency is
' the same 8 bytes (its value is the integer / 10000), so it carries a task id or tag
' unchanged; CmInt64 and CmInt64Text convert.
' Strings: the library takes and returns UTF-8. Pass VarPtr(b(0)) where b = CmUtf8(text), and
' read a returned pointer with CmString (strings read from a result live until cm_result_free).
' 32-bit Office calls DLLs with stdcall: it needs the capmonster.dll whose 32-bit exports are
' stdcall (bindings/vba/README.md).
Option Explicit

' Success and the error codes (cm_code). Numbers are never reused.
Public Const CM_OK As Long = 0
Public Const CM_ERR_INVALID_ARGUMENT As Long = 1
Public Const CM_ERR_API As Long = 2
Public Const CM_ERR_NETWORK As Long = 3
Public Const CM_ERR_TIMEOUT As Long = 4
Public Const CM_ERR_HTTP_STATUS As Long = 5
Public Const CM_ERR_BAD_RESPONSE As Long = 6
Public Const CM_ERR_BUDGET_EXHAUSTED As Long = 7
Public Const CM_ERR_CANCELLED As Long = 8
Public Const CM_ERR_INTERNAL As Long = 9

' Log levels (cm_log_level), for cm_set_log_callback.
Public Const CM_LOG_ERROR As Long = 1
Public Const CM_LOG_WARN As Long = 2
Public Const CM_LOG_INFO As Long = 3
Public Const CM_LOG_DEBUG As Long = 4
Public Const CM_LOG_TRACE As Long = 5
Public Const CM_ENGINE_EVENT_LOOP As Long = 1
Public Const CM_ENGINE_THREADS As Long = 2

' cm_client_stats: set Size = LenB(stats) before cm_client_get_stats. The counters are
' uint64_t: LongLong on 64-bit, Currency on 32-bit (CmInt64Text shows one).
#If Win64 Then
Public Type CmClientStats
    Size As Long
    Reserved As Long
    RequestsGetTaskResult As LongLong
    RequestsCreateTask As LongLong
    RequestsGetBalance As LongLong
    RequestsReportIncorrectImage As LongLong
    RequestsReportIncorrectToken As LongLong
    RequestsGetUserAgent As LongLong
    AnswersProcessing As LongLong
    AnswersReady As LongLong
    AnswersApiError As LongLong
    AnswersHttpError As LongLong
    AnswersNetworkError As LongLong
    AnswersTimeout As LongLong
    AnswersOther As LongLong
    Retries As LongLong
    BudgetRefusals As LongLong
    GuardRefusals As LongLong
    ConnectionsOpened As LongLong
    RequestsInFlight As LongLong
    WaitsPending As LongLong
    WaitsFinished As LongLong
    BytesSent As LongLong
    BytesReceived As LongLong
    ConnectionsOpen As LongLong
    ConnectionsIdle As LongLong
End Type
#Else
Public Type CmClientStats
    Size As Long
    Reserved As Long
    RequestsGetTaskResult As Currency
    RequestsCreateTask As Currency
    RequestsGetBalance As Currency
    RequestsReportIncorrectImage As Currency
    RequestsReportIncorrectToken As Currency
    RequestsGetUserAgent As Currency
    AnswersProcessing As Currency
    AnswersReady As Currency
    AnswersApiError As Currency
    AnswersHttpError As Currency
    AnswersNetworkError As Currency
    AnswersTimeout As Currency
    AnswersOther As Currency
    Retries As Currency
    BudgetRefusals As Currency
    GuardRefusals As Currency
    ConnectionsOpened As Currency
    RequestsInFlight As Currency
    WaitsPending As Currency
    WaitsFinished As Currency
    BytesSent As Currency
    BytesReceived As Currency
    ConnectionsOpen As Currency
    ConnectionsIdle As Currency
End Type
#End If

' cm_wait_options: start from cm_wait_options_init or cm_wait_options_for_task_type.
' Cancel is a cm_cancel handle or 0.
Public Type CmWaitOptions
    FirstDelayMs As Long
    IntervalMs As Long
    TimeoutMs As Long
    MaxRequests As Long
    Cancel As LongPtr
End Type

' cm_call_options: start from cm_call_options_init. On 64-bit, C puts Cancel at offset 8: the
' padding field says so instead of relying on VBA's own alignment of the Type.
#If Win64 Then
Public Type CmCallOptions
    TimeoutMs As Long
    Padding As Long
    Cancel As LongPtr
End Type
#Else
Public Type CmCallOptions
    TimeoutMs As Long
    Cancel As LongPtr
End Type
#End If

' Functions without 64-bit integers: one declaration for both bitnesses.
Public Declare PtrSafe Function cm_version Lib "capmonster.dll" () As LongPtr
Public Declare PtrSafe Function cm_code_name Lib "capmonster.dll" (ByVal code As Long) As LongPtr
Public Declare PtrSafe Function cm_api_error_kind Lib "capmonster.dll" (ByVal apiErrorCode As LongPtr) As LongPtr
Public Declare PtrSafe Function cm_api_error_glossary Lib "capmonster.dll" (ByVal index As Long) As LongPtr
Public Declare PtrSafe Function cm_client_new Lib "capmonster.dll" (ByVal clientKey As LongPtr, ByRef outClient As LongPtr, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_client_set_base_url Lib "capmonster.dll" (ByVal client As LongPtr, ByVal baseUrl As LongPtr, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_client_set_user_agent_url Lib "capmonster.dll" (ByVal client As LongPtr, ByVal userAgentUrl As LongPtr, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_client_set_request_timeout_ms Lib "capmonster.dll" (ByVal client As LongPtr, ByVal timeoutMs As Long, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_client_set_proxy Lib "capmonster.dll" (ByVal client As LongPtr, ByVal proxyUrl As LongPtr, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_client_set_ca_file Lib "capmonster.dll" (ByVal client As LongPtr, ByVal path As LongPtr, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_client_set_max_connections Lib "capmonster.dll" (ByVal client As LongPtr, ByVal maxConnections As Long, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_client_set_soft_id Lib "capmonster.dll" (ByVal client As LongPtr, ByVal softId As Long, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_client_set_engine Lib "capmonster.dll" (ByVal client As LongPtr, ByVal engine As Long, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_client_get_stats Lib "capmonster.dll" (ByVal client As LongPtr, ByRef stats As CmClientStats) As Long
' callback: AddressOf a Public Sub (ByVal userData As LongPtr, ByVal level As Long, ByVal eventName
' As LongPtr, ByVal message As LongPtr) in a standard module, or 0 to remove it. VBA code runs
' only on Office's thread: set one only for blocking calls made there (never with a cm_waiter,
' whose lines come from the library's threads), and remove it before the workbook closes.
Public Declare PtrSafe Function cm_set_log_callback Lib "capmonster.dll" (ByVal level As Long, ByVal callback As LongPtr, ByVal userData As LongPtr) As Long
Public Declare PtrSafe Function cm_client_end_stops Lib "capmonster.dll" (ByVal client As LongPtr, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_set_budget Lib "capmonster.dll" (ByVal budget As LongPtr, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Sub cm_client_free Lib "capmonster.dll" (ByVal client As LongPtr)
Public Declare PtrSafe Function cm_cancel_new Lib "capmonster.dll" (ByRef outCancel As LongPtr) As Long
Public Declare PtrSafe Sub cm_cancel_trigger Lib "capmonster.dll" (ByVal cancel As LongPtr)
Public Declare PtrSafe Sub cm_cancel_free Lib "capmonster.dll" (ByVal cancel As LongPtr)
Public Declare PtrSafe Sub cm_wait_options_init Lib "capmonster.dll" (ByRef options As CmWaitOptions)
Public Declare PtrSafe Function cm_wait_options_for_task_type Lib "capmonster.dll" (ByRef options As CmWaitOptions, ByVal taskType As LongPtr) As Long
Public Declare PtrSafe Function cm_wait_options_for_task Lib "capmonster.dll" (ByRef options As CmWaitOptions, ByVal taskJson As LongPtr) As Long
Public Declare PtrSafe Function cm_waiter_new Lib "capmonster.dll" (ByVal client As LongPtr, ByRef outWaiter As LongPtr) As Long
Public Declare PtrSafe Function cm_waiter_fd Lib "capmonster.dll" (ByVal waiter As LongPtr) As Long
Public Declare PtrSafe Sub cm_waiter_shutdown Lib "capmonster.dll" (ByVal waiter As LongPtr)
Public Declare PtrSafe Sub cm_waiter_free Lib "capmonster.dll" (ByVal waiter As LongPtr)
Public Declare PtrSafe Sub cm_call_options_init Lib "capmonster.dll" (ByRef options As CmCallOptions)
Public Declare PtrSafe Function cm_get_balance Lib "capmonster.dll" (ByVal client As LongPtr, ByRef outBalance As Double, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_get_balance_with Lib "capmonster.dll" (ByVal client As LongPtr, ByRef options As CmCallOptions, ByRef outBalance As Double, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_get_user_agent Lib "capmonster.dll" (ByVal client As LongPtr, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_get_user_agent_with Lib "capmonster.dll" (ByVal client As LongPtr, ByRef options As CmCallOptions, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_result_code Lib "capmonster.dll" (ByVal r As LongPtr) As Long
Public Declare PtrSafe Function cm_result_is_ready Lib "capmonster.dll" (ByVal r As LongPtr) As Long
Public Declare PtrSafe Function cm_result_solution_json Lib "capmonster.dll" (ByVal r As LongPtr) As LongPtr
Public Declare PtrSafe Function cm_result_solution_string Lib "capmonster.dll" (ByVal r As LongPtr, ByVal field As LongPtr) As LongPtr
Public Declare PtrSafe Function cm_result_api_error_code Lib "capmonster.dll" (ByVal r As LongPtr) As LongPtr
Public Declare PtrSafe Function cm_result_text Lib "capmonster.dll" (ByVal r As LongPtr) As LongPtr
Public Declare PtrSafe Function cm_result_api_error_description Lib "capmonster.dll" (ByVal r As LongPtr) As LongPtr
Public Declare PtrSafe Function cm_result_message Lib "capmonster.dll" (ByVal r As LongPtr) As LongPtr
Public Declare PtrSafe Function cm_result_request_count Lib "capmonster.dll" (ByVal r As LongPtr) As Long
Public Declare PtrSafe Function cm_result_http_status Lib "capmonster.dll" (ByVal r As LongPtr) As Long
Public Declare PtrSafe Sub cm_result_free Lib "capmonster.dll" (ByVal r As LongPtr)

' Functions with a 64-bit integer (task id, tag, count): LongLong on 64-bit, Currency on 32-bit.
#If Win64 Then
Public Declare PtrSafe Function cm_wait_result Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As LongLong, ByRef options As CmWaitOptions, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_waiter_add Lib "capmonster.dll" (ByVal waiter As LongPtr, ByVal taskId As LongLong, ByRef options As CmWaitOptions, ByVal tag As LongLong) As Long
Public Declare PtrSafe Function cm_waiter_add_with_result Lib "capmonster.dll" (ByVal waiter As LongPtr, ByVal taskId As LongLong, ByRef options As CmWaitOptions, ByVal tag As LongLong, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_waiter_add_solve Lib "capmonster.dll" (ByVal waiter As LongPtr, ByVal taskJson As LongPtr, ByVal callbackUrl As LongPtr, ByRef options As CmWaitOptions, ByVal tag As LongLong, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_waiter_next Lib "capmonster.dll" (ByVal waiter As LongPtr, ByVal timeoutMs As Long, ByRef outTag As LongLong, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_waiter_pending Lib "capmonster.dll" (ByVal waiter As LongPtr) As LongLong
Public Declare PtrSafe Function cm_get_task_result Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As LongLong, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_get_task_result_with Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As LongLong, ByRef options As CmCallOptions, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_create_task Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskJson As LongPtr, ByVal callbackUrl As LongPtr, ByRef outTaskId As LongLong, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_create_task_with Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskJson As LongPtr, ByVal callbackUrl As LongPtr, ByRef options As CmCallOptions, ByRef outTaskId As LongLong, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_report_incorrect_image Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As LongLong, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_report_incorrect_image_with Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As LongLong, ByRef options As CmCallOptions, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_report_incorrect_token Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As LongLong, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_report_incorrect_token_with Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As LongLong, ByRef options As CmCallOptions, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_result_task_id Lib "capmonster.dll" (ByVal r As LongPtr) As LongLong
#Else
Public Declare PtrSafe Function cm_wait_result Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As Currency, ByRef options As CmWaitOptions, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_waiter_add Lib "capmonster.dll" (ByVal waiter As LongPtr, ByVal taskId As Currency, ByRef options As CmWaitOptions, ByVal tag As Currency) As Long
Public Declare PtrSafe Function cm_waiter_add_with_result Lib "capmonster.dll" (ByVal waiter As LongPtr, ByVal taskId As Currency, ByRef options As CmWaitOptions, ByVal tag As Currency, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_waiter_add_solve Lib "capmonster.dll" (ByVal waiter As LongPtr, ByVal taskJson As LongPtr, ByVal callbackUrl As LongPtr, ByRef options As CmWaitOptions, ByVal tag As Currency, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_waiter_next Lib "capmonster.dll" (ByVal waiter As LongPtr, ByVal timeoutMs As Long, ByRef outTag As Currency, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_waiter_pending Lib "capmonster.dll" (ByVal waiter As LongPtr) As Currency
Public Declare PtrSafe Function cm_get_task_result Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As Currency, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_get_task_result_with Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As Currency, ByRef options As CmCallOptions, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_create_task Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskJson As LongPtr, ByVal callbackUrl As LongPtr, ByRef outTaskId As Currency, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_create_task_with Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskJson As LongPtr, ByVal callbackUrl As LongPtr, ByRef options As CmCallOptions, ByRef outTaskId As Currency, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_report_incorrect_image Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As Currency, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_report_incorrect_image_with Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As Currency, ByRef options As CmCallOptions, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_report_incorrect_token Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As Currency, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_report_incorrect_token_with Lib "capmonster.dll" (ByVal client As LongPtr, ByVal taskId As Currency, ByRef options As CmCallOptions, ByRef outResult As LongPtr) As Long
Public Declare PtrSafe Function cm_result_task_id Lib "capmonster.dll" (ByVal r As LongPtr) As Currency
#End If

' The string helpers' Windows functions (kernel32 is stdcall on 32-bit too).
Private Declare PtrSafe Function MultiByteToWideChar Lib "kernel32" (ByVal codePage As Long, ByVal flags As Long, ByVal multiByte As LongPtr, ByVal multiByteCount As Long, ByVal wideChar As LongPtr, ByVal wideCharCount As Long) As Long
Private Declare PtrSafe Function WideCharToMultiByte Lib "kernel32" (ByVal codePage As Long, ByVal flags As Long, ByVal wideChar As LongPtr, ByVal wideCharCount As Long, ByVal multiByte As LongPtr, ByVal multiByteCount As Long, ByVal defaultChar As LongPtr, ByVal usedDefaultChar As LongPtr) As Long
Private Declare PtrSafe Function lstrlenA Lib "kernel32" (ByVal value As LongPtr) As Long

Private Const CP_UTF8 As Long = 65001
' Fail on a lone surrogate instead of writing U+FFFD (Windows Vista and later).
Private Const WC_ERR_INVALID_CHARS As Long = &H80

' value as NUL-terminated UTF-8 for the library: pass VarPtr(b(0)) of the array b, and keep it
' alive for the call. A NUL inside value, or a lone surrogate, raises error 5 (invalid
' argument), as a C string could not carry it unchanged. Bounded by value: at most 3 bytes a
' UTF-16 unit, plus the NUL.
Public Function CmUtf8(ByVal value As String) As Byte()
    Dim bytes() As Byte
    Dim size As Long
    If InStr(1, value, vbNullChar, vbBinaryCompare) > 0 Then Err.Raise 5, "CmUtf8"
    If Len(value) = 0 Then
        ReDim bytes(0)
        CmUtf8 = bytes
        Exit Function
    End If
    size = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, StrPtr(value), Len(value), 0, 0, 0, 0)
    If size <= 0 Then Err.Raise 5, "CmUtf8"
    ReDim bytes(size) ' bytes(size) stays 0: the terminating NUL
    If WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, StrPtr(value), Len(value), VarPtr(bytes(0)), size, 0, 0) <> size Then Err.Raise 5, "CmUtf8"
    CmUtf8 = bytes
End Function

' The NUL-terminated UTF-8 string at pointer as a VBA String; "" for a NULL pointer (compare
' the pointer with 0 where NULL means something). Copies: the String outlives the result.
' Bounded by lstrlenA's length (an int).
Public Function CmString(ByVal pointer As LongPtr) As String
    Dim size As Long, chars As Long, value As String
    If pointer = 0 Then Exit Function
    size = lstrlenA(pointer)
    If size = 0 Then Exit Function
    chars = MultiByteToWideChar(CP_UTF8, 0, pointer, size, 0, 0)
    If chars <= 0 Then Exit Function
    value = String$(chars, vbNullChar)
    MultiByteToWideChar CP_UTF8, 0, pointer, size, StrPtr(value), chars
    CmString = value
End Function

' A whole number (up to 2^63 - 1) as the library's 64-bit integer: a task id or a tag.
#If Win64 Then
Public Function CmInt64(ByVal value As Variant) As LongLong
    CmInt64 = CLngLng(value)
End Function

Public Function CmInt64Text(ByVal value As LongLong) As String
    CmInt64Text = CStr(value)
End Function
#Else
Public Function CmInt64(ByVal value As Variant) As Currency
    CmInt64 = CCur(CDec(value) / 10000)
End Function

' A Currency holding a 64-bit integer, as the integer's digits.
Public Function CmInt64Text(ByVal value As Currency) As String
    CmInt64Text = CStr(CDec(value) * 10000)
End Function
#End If
