"""Solves many image captchas at once on one event loop and prints how it went.

    python many.py [-n COUNT] [IMAGE_FILE ...]

Each file given is one captcha; -n adds COUNT captchas of a small built-in image. The key is
$CAPMONSTER_KEY; $CAPMONSTER_BASE_URL points at another server (the emulator). Exit status 1
when any failed.
"""

import argparse
import asyncio
import base64
import collections
import os
import sys
import time

import capmonster


async def solve_all(images: list[str]) -> int:
    failures: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    async with capmonster.AsyncClient(
        os.environ.get("CAPMONSTER_KEY", "example-key"), base_url=os.environ.get("CAPMONSTER_BASE_URL")
    ) as client:
        results = await asyncio.gather(
            *(client.solve({"type": "ImageToTextTask", "body": image}) for image in images), return_exceptions=True
        )
    for result in results:
        if isinstance(result, capmonster.CapMonsterError):
            failures[f"{result.code_name} {result.api_error_code or ''}".strip()] += 1
        elif isinstance(result, BaseException):
            raise result
    failed = sum(failures.values())
    print(f"captchas: {len(images)}, solved: {len(images) - failed}, failed: {failed}")
    for what, count in failures.most_common():
        print(f"  {what}: {count}")
    print(f"in {time.monotonic() - started:.2f} s", file=sys.stderr)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=0, help="captchas of a built-in image")
    parser.add_argument("files", nargs="*", help="image files, one captcha each")
    args = parser.parse_args()
    images = [base64.b64encode(b"hello").decode()] * args.n
    for path in args.files:
        with open(path, "rb") as f:
            images.append(base64.b64encode(f.read()).decode())
    return asyncio.run(solve_all(images))


if __name__ == "__main__":
    sys.exit(main())
