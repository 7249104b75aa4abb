Attribute VB_Name = "CapMonsterExample"
' Solves one image captcha: cm_create_task (ImageToTextTask), cm_wait_result, then prints the
' solution, or the library's code name and message, in the Immediate window (Ctrl+G).
' Needs the CapMonster module. Against the real service, start Office with
' CAPMONSTER_CLIENT_KEY set in its environment; against the project's emulator, with
' CAPMONSTER_BASE_URL (e.g. http://127.0.0.1:8765). The key is never printed.
' cm_wait_result blocks Office until the task is solved or its timeout (10 s for images).
Option Explicit

Public Sub CmSolveExample()
    Dim client As LongPtr, result As LongPtr
    Dim code As Long
    Dim options As CmWaitOptions
#If Win64 Then
    Dim taskId As LongLong
#Else
    Dim taskId As Currency
#End If
    Dim key As String, baseUrl As String
    Dim keyUtf8() As Byte, baseUrlUtf8() As Byte, taskUtf8() As Byte, typeUtf8() As Byte, fieldUtf8() As Byte

    On Error GoTo Failed
    key = Environ$("CAPMONSTER_CLIENT_KEY")
    baseUrl = Environ$("CAPMONSTER_BASE_URL")
    If Len(key) = 0 And Len(baseUrl) = 0 Then
        Debug.Print "set CAPMONSTER_CLIENT_KEY (real service) or CAPMONSTER_BASE_URL (emulator)"
        Exit Sub
    End If
    If Len(key) = 0 Then key = "emulator-demo-key"

    keyUtf8 = CmUtf8(key)
    code = cm_client_new(VarPtr(keyUtf8(0)), client, result)
    If code <> CM_OK Then
        PrintFailure "cm_client_new", code, result
        GoTo Done
    End If
    cm_result_free result
    result = 0
    If Len(baseUrl) > 0 Then
        baseUrlUtf8 = CmUtf8(baseUrl)
        code = cm_client_set_base_url(client, VarPtr(baseUrlUtf8(0)), result)
        If code <> CM_OK Then
            PrintFailure "cm_client_set_base_url", code, result
            GoTo Done
        End If
        cm_result_free result
        result = 0
    End If

    taskUtf8 = CmUtf8("{""type"":""ImageToTextTask"",""body"":""" & SampleImage() & """}")
    code = cm_create_task(client, VarPtr(taskUtf8(0)), 0, taskId, result)
    If code <> CM_OK Then
        PrintFailure "cm_create_task", code, result
        GoTo Done
    End If
    Debug.Print "created task " & CmInt64Text(taskId)
    cm_result_free result
    result = 0

    ' The official schedule for image tasks: first poll after 350 ms, then every 200 ms.
    typeUtf8 = CmUtf8("ImageToTextTask")
    code = cm_wait_options_for_task_type(options, VarPtr(typeUtf8(0)))
    If code = CM_OK Then code = cm_wait_result(client, taskId, options, result)
    If code <> CM_OK Then
        PrintFailure "waiting", code, result
        GoTo Done
    End If
    fieldUtf8 = CmUtf8("text")
    Debug.Print "solution: " & CmString(cm_result_solution_json(result))
    Debug.Print "text: " & CmString(cm_result_solution_string(result, VarPtr(fieldUtf8(0))))
    Debug.Print "requests: " & cm_result_request_count(result)

Done:
    ' Both accept 0.
    cm_result_free result
    cm_client_free client
    Exit Sub
Failed:
    Debug.Print "VBA error " & Err.Number & ": " & Err.Description
    Resume Done
End Sub

' What failed, the code's name and the library's message (and the service's error code).
Private Sub PrintFailure(ByVal what As String, ByVal code As Long, ByVal result As LongPtr)
    Debug.Print what & " failed: " & CmString(cm_code_name(code)) & ": " & CmString(cm_result_message(result))
    If cm_result_api_error_code(result) <> 0 Then
        Debug.Print "  service error code: " & CmString(cm_result_api_error_code(result))
    End If
End Sub

' A small noisy 80x24 PNG, base64-encoded (examples/solve_image.c's sample).
Private Function SampleImage() As String
    Dim image As String
    image = "iVBORw0KGgoAAAANSUhEUgAAAFAAAAAYCAAAAABIcSVwAAABRklEQVR42oWU2xUEIQhDqST9F3WL"
    image = image & "sITddRwFhLN+jOODCEnUxhgaYnZjIM1ez3A18ld7+HZ7YHHoYb6DB5tqLSKd9gCerTGoW+Cd8+fI"
    image = image & "AVYgutNgAVAFaQGqACPkwg3Aw4Lc8axfW71OTiRGYUV9U4MVjS9m71iAeAFJhIleCo0U9wCiTRch"
    image = image & "aJa7LXITh3bqpyQr2fcZika1qUS2aVSZGMAOuYzudypA/lRG8cRcmYfR4aF2uNXzVDPyf0ol6fWh"
    image = image & "LzBidNz9QpWJ37YzN/+KpUojkhzdueanXyTU8EjQ5CJJUWU1UhyTMu9xmR23KNEvbaPI35vK8ovA"
    image = image & "egZRUqJzdzQRdt/KfzKTa5FbwXy89vWs38HqgVPi35rclWWJd+7guKhJi6l+gW+FFJxId0nNnclV"
    image = image & "SSNIk+8qmZwipSBoRA9qxJdoXacPAyWAG66wIC4AAAAASUVORK5CYII="
    SampleImage = image
End Function
