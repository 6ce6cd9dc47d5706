"""Run a page on Google Colab: store the CAVE token of the runtime with :func:`ensure_token`.

A Colab runtime is a fresh machine: a token saved there with ``auth.save_token`` is lost when
the runtime is recycled. The Colab twin of every page that talks to CAVE (written by
``tools/make_ipynb.py``) calls :func:`ensure_token` once, which reads the token from the
Colab secrets (the key icon in Colab's left bar; names in :data:`TOKEN_SECRETS`) or asks for
it with ``getpass``, and saves it where ``caveclient`` looks for it. The token is never
printed, returned or written into the notebook.

Anywhere but Colab (the book build, the tests, your own computer) it does nothing: there the
token is saved once, as the setup page teaches.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from connectomics_book.constants import DATASTACK, GLOBAL_SERVERS, V1DD_DATASTACK

#: Name of the Colab secret that holds the token of each datastack's global server (the two
#: servers issue different tokens).
TOKEN_SECRETS: dict[str, str] = {DATASTACK: "CAVE_TOKEN", V1DD_DATASTACK: "V1DD_CAVE_TOKEN"}


def on_colab() -> bool:
    """True inside a Google Colab runtime (its ``google.colab`` module is imported there)."""
    return "google.colab" in sys.modules


def _from_colab_secrets(name: str) -> str | None:
    """The Colab secret ``name``, or None when it is missing or access is not granted."""
    try:
        from google.colab import userdata

        return userdata.get(name) or None
    except Exception:  # SecretNotFoundError, NotebookAccessError, TimeoutException, ...
        return None


def _server_token_file(server: str) -> Path:
    from caveclient.auth import server_token_filename

    return Path(server_token_filename(server))


def ensure_token(*datastacks: str, ask: Callable[[str], str] = getpass.getpass) -> None:
    """On Colab, make sure a CAVE token for each datastack's server is saved in this runtime.

    ``datastacks`` default to ``DATASTACK`` (MICrONS). For each one, the datastack's global
    server is remembered by caveclient (so ``CAVEclient("v1dd_public")`` finds its server), and
    unless that server's token file already exists in this runtime, the token is read from the
    Colab secret ``TOKEN_SECRETS[datastack]`` or typed at a ``getpass`` prompt (not echoed),
    then saved with ``CAVEclient(server_address=...).auth.save_token(token=..., overwrite=True)``.
    MICrONS is saved last, so its token is also the one in the default ``cave-secret.json``.
    Outside Colab it returns at once, touching nothing.
    """
    if not on_colab():
        return
    from caveclient import CAVEclient
    from caveclient.datastack_lookup import handle_server_address

    # MICrONS last: save_token also writes the default cave-secret.json, which then holds the
    # token of the server most pages use.
    for datastack in sorted(datastacks or (DATASTACK,), key=lambda name: name == DATASTACK):
        server = GLOBAL_SERVERS[datastack]
        handle_server_address(datastack, server, write=True, do_log=False)
        if _server_token_file(server).is_file():
            print(f"{datastack}: a token for {server} is already saved in this runtime")
            continue
        secret = TOKEN_SECRETS[datastack]
        token = _from_colab_secrets(secret)
        source = f"the Colab secret {secret}"
        if token is None:
            token = ask(f"CAVE token for {server} (create one at "
                        f"{server}/auth/api/v1/create_token; not shown): ").strip()
            source = "what you typed"
        if not token:
            print(f"{datastack}: no token given; requests to {server} will fail with 401 "
                  f"until you run this cell again with one")
            continue
        CAVEclient(server_address=server).auth.save_token(token=token, overwrite=True)
        print(f"{datastack}: token for {server} saved in this runtime (from {source}); "
              f"it is lost when the runtime is recycled")
