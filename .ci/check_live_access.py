"""Fail fast, with a clear message, when the public CAVE services cannot be used.

Checks, in well under 30 s: a caveclient token file exists in ~/.cloudvolume/secrets, and the
global server answers an authenticated request within a short timeout. `make test-live` runs
this before anything else.

Standard library only, so it can run before the venv is installed.

usage: python3 .ci/check_live_access.py
"""

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

GLOBAL_SERVER = "https://global.daf-apis.com"
SECRETS = Path.home() / ".cloudvolume" / "secrets"
TOKEN_FILES = ("cave-secret.json", "global.daf-apis.com-cave-secret.json")
TIMEOUT_S = 10

HOWTO = (
    "Create a token at https://global.daf-apis.com/auth/api/v1/create_token and save it with\n"
    "  python -c 'from caveclient import CAVEclient; "
    'CAVEclient().auth.save_token(token="YOUR_TOKEN")\'\n'
    "(in CI: the CAVE_TOKEN repository secret, written by .github/workflows/live.yml)."
)


def fail(message: str) -> None:
    sys.exit(f"test-live: {message}\n{HOWTO}")


token = None
for name in TOKEN_FILES:
    path = SECRETS / name
    if path.is_file():
        try:
            secret = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            fail(f"{path} is not valid JSON")
        if secret.get("offline_cave"):
            fail(f"{path} is the dummy token of the offline stand-in (`offline_cave configure`)")
        token = secret.get("token")
        if token:
            break
if not token:
    fail(f"no CAVE token found in {SECRETS} ({' or '.join(TOKEN_FILES)})")

url = f"{GLOBAL_SERVER}/auth/api/v1/user/cache"
request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
try:
    with urllib.request.urlopen(request, timeout=TIMEOUT_S):
        pass
except urllib.error.HTTPError as err:
    if err.code in (401, 403):
        fail(f"{GLOBAL_SERVER} rejected the token (HTTP {err.code})")
    fail(f"{url} answered HTTP {err.code}")
except (urllib.error.URLError, OSError) as err:
    fail(f"cannot reach {GLOBAL_SERVER} within {TIMEOUT_S} s (no network?): {err}")
print(f"test-live: token accepted by {GLOBAL_SERVER}")
