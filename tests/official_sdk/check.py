"""The official Python SDK (capmonstercloudclient 4.3.1) against the emulator.

Every request class the SDK knows (its own `_instance_config`, so a family it adds is not
missed) creates its task on the emulator and waits for it on the SDK's own schedule; the SDK
must accept each answer and return a solution of the family's shape. Then getBalance, an
error answer and both spellings of "no such task". Usage: check.py EMULATOR_BASE_URL.
"""

import asyncio
import base64
import sys

from capmonstercloudclient import CapMonsterClient, ClientOptions
from capmonstercloudclient import CapMonsterCloudClient as sdk
from capmonstercloudclient.exceptions import GetResultError
from capmonstercloudclient.requests import ProxyInfo

# The fields any request class reads; each class's getTaskDict takes what it needs. Built with
# pydantic's model_construct, which skips the SDK's checks of real sites' values (and its
# demand for a proxy): the emulator checks what the service would.
METADATA = {
    "datadomeCookie": "datadome=x", "captchaUrl": "https://example.com/captcha",
    "incapsulaScriptUrl": "_Incapsula_Resource", "incapsulaCookies": "incap_ses=1",
    "cookie": "api_uid=1", "apiGetLib": "https://example.com/lib.js", "sceneId": "s",
    "prefix": "p", "tspdCookie": "TS=1", "htmlPageBase64": "PGh0bWw+", "Task": "oocl_rotate",
    "Grid": "3x3", "TaskDefinition": "/m/0k4j", "Image": "https://example.com/i.png",
}
FIELDS = {
    "websiteUrl": "https://example.com", "websiteURL": "https://example.com",
    "websiteKey": "site-key", "websitePublicKey": "public-key", "gt": "gt-key",
    "challenge": "challenge", "metadata": METADATA, "image_bytes": b"\x89PNG emulator image",
    "imagesUrls": ["https://example.com/1.png"], "imagesBase64": [base64.b64encode(b"img").decode()],
    "userAgent": "Mozilla/5.0", "challengeScript": "https://example.com/challenge.js",
    "captchaScript": "https://example.com/captcha.js", "context": "ctx", "iv": "iv",
    "validateId": "v", "no_cache": True,
    # Some families are solved only through the user's proxy; the emulator never connects to it.
    "proxy": ProxyInfo(proxyType="http", proxyAddress="192.0.2.1", proxyPort=8080,
                       proxyLogin="user", proxyPassword="password"),
}

# What each family's solution holds (a member at least), by the task's type and class.
SHAPES = {
    "ImageToTextTask": "text", "RecaptchaV2Task": "gRecaptchaResponse",
    "RecaptchaV2EnterpriseTask": "gRecaptchaResponse", "RecaptchaV3TaskProxyless": "gRecaptchaResponse",
    "RecaptchaV3EnterpriseTask": "gRecaptchaResponse", "HCaptchaTask": "gRecaptchaResponse",
    "FunCaptchaTask": "token", "GeeTestTask": "challenge", "TurnstileTask": "token",
    "AmazonTask": "cookies", "BinanceTask": "token", "MTCaptchaTask": "token", "YidunTask": "token",
    "ProsopoTask": "token", "ComplexImageTask": "answer",
}


def expected_member(task):
    if task["type"] != "CustomTask":
        return SHAPES[task["type"]]
    return {"datadome": "domains", "imperva": "domains", "temu": "domains", "tspd": "Domains"}.get(
        task["class"].lower(), "data")


async def solve(client, request_class):
    request = request_class.model_construct(**FIELDS)
    task = request.getTaskDict()
    solution = await client.solve_captcha(request)
    member = expected_member(task)
    if not isinstance(solution, dict) or member not in solution:
        raise AssertionError(f"{request_class.__name__}: {task['type']} {task.get('class', '')}: {solution!r}")
    return request_class.__name__


async def main(url):
    client = CapMonsterClient(ClientOptions(api_key="official-sdk-key", service_url=url))
    classes = [cls for group, _ in sdk._instance_config for cls in group]
    solved = await asyncio.gather(*(solve(client, cls) for cls in classes))
    assert len(solved) == len(classes) == 29, solved
    print(f"official SDK: {len(solved)} request classes solved on the emulator")

    balance = await client.get_balance()
    assert balance.get("balance", 0) > 0, balance
    print(f"official SDK: getBalance {balance['balance']}")

    # Error answers: the SDK raises its own error naming the service's code.
    for code in ["ERROR_CAPTCHA_UNSOLVABLE", "ERROR_NO_SUCH_CAPCHA_ID", "WRONG_CAPTCHA_ID"]:
        await script(url, {"method": "getTaskResult",
                           "steps": [{"error": code, "description": "scripted by the test"}]})
        request = sdk.RecaptchaV2Request.model_construct(**FIELDS)
        try:
            await client.solve_captcha(request)
        except GetResultError as error:
            assert code in str(error), error
        else:
            raise AssertionError(f"{code}: no error raised")
        await script(url, {"method": "getTaskResult", "steps": []})
    print("official SDK: its errors name the emulator's codes")


async def script(url, body):
    import aiohttp
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/_emulator/script", json=body) as reply:
            assert reply.status == 200, await reply.text()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
