"""configure / unconfigure on a student's HOME: nothing the public services use is touched,
and undo puts every byte back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from offline_cave.__main__ import main
from offline_cave.client.configure import (
    ConfigureError,
    configure_home,
    secrets_dir,
    unconfigure_home,
)

URL = "http://127.0.0.1:8765"
DATASTACKS = ["minnie65_public", "v1dd_public"]
REAL_TOKEN = "real0token0value0do0not0touch000"


def snapshot(home: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under ``home`` with its mode and (for files) its bytes."""
    out = {}
    for path in sorted(home.rglob("*")):
        mode = path.stat().st_mode & 0o777
        out[str(path.relative_to(home))] = (mode, path.read_bytes() if path.is_file() else None)
    return out


def real_home(home: Path) -> Path:
    """A HOME that already uses the public services: tokens and a datastack map."""
    sdir = secrets_dir(home)
    sdir.mkdir(parents=True)
    (sdir / "cave-secret.json").write_text(json.dumps({"token": REAL_TOKEN}))
    (sdir / "global.daf-apis.com-cave-secret.json").write_text(json.dumps({"token": REAL_TOKEN}))
    (sdir / "cave_datastack_to_server_map.json").write_text(json.dumps(
        {"minnie65_public": "https://global.daf-apis.com", "other_ds": "https://x.example"}))
    os.chmod(sdir / "cave-secret.json", 0o600)
    return home


@pytest.mark.parametrize("kind", ["empty", "no-cloudvolume-dir", "real"])
def test_unconfigure_restores_the_home_byte_for_byte(tmp_path: Path, kind: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if kind == "empty":
        secrets_dir(home).mkdir(parents=True)
    elif kind == "real":
        real_home(home)
    before = snapshot(home)
    result = configure_home(URL, home, DATASTACKS)
    mapping = json.loads(result.map_path.read_text())
    assert all(mapping[name] == URL for name in DATASTACKS)
    assert snapshot(home) != before
    # a second configure, to another server, does not lose the first record of the originals
    configure_home("http://127.0.0.2:9000", home, DATASTACKS)
    undo = unconfigure_home(home)
    assert not undo.kept
    assert snapshot(home) == before
    assert unconfigure_home(home).nothing_to_do


def test_configure_never_touches_the_public_token_files(tmp_path: Path) -> None:
    home = real_home(tmp_path / "home")
    sdir = secrets_dir(home)
    public = {name: (sdir / name).read_bytes()
              for name in ("cave-secret.json", "global.daf-apis.com-cave-secret.json")}
    result = configure_home(URL, home, DATASTACKS)
    assert result.default_token == "kept (real)"
    assert {name: (sdir / name).read_bytes() for name in public} == public
    sources = home / ".config" / "connectomics_book" / "sources.json"
    assert set(result.changed) == {result.map_path, result.token_path, sources}

    empty = tmp_path / "student"
    result = configure_home(URL, empty, DATASTACKS)
    assert not (secrets_dir(empty) / "cave-secret.json").exists()
    assert result.default_token == "absent"


def test_a_student_without_a_token_can_save_one_after_configure(tmp_path: Path) -> None:
    home = tmp_path / "student"
    configure_home(URL, home, DATASTACKS)
    code = ("from caveclient.auth import AuthClient; "
            "AuthClient().save_token(token='f' * 32); print(AuthClient().token == 'f' * 32)")
    env = {**os.environ, "HOME": str(home)}
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=120)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "True"
    # undo keeps the token the student saved meanwhile
    unconfigure_home(home)
    assert json.loads((secrets_dir(home) / "cave-secret.json").read_text())["token"] == "f" * 32


def test_undo_keeps_changes_made_since_and_merges_the_map(tmp_path: Path) -> None:
    home = real_home(tmp_path / "home")
    result = configure_home(URL, home, DATASTACKS)
    # caveclient adds a datastack to the map later, and the student edits the dummy token
    mapping = json.loads(result.map_path.read_text())
    mapping["new_ds"] = "https://y.example"
    result.map_path.write_text(json.dumps(mapping))
    result.token_path.write_text(json.dumps({"token": "e" * 32}))
    undo = unconfigure_home(home)
    assert undo.kept == [result.token_path]
    assert json.loads(result.token_path.read_text()) == {"token": "e" * 32}
    assert json.loads(result.map_path.read_text()) == {
        "minnie65_public": "https://global.daf-apis.com", "other_ds": "https://x.example",
        "new_ds": "https://y.example"}


def test_a_foreign_server_token_is_replaced_only_with_force_and_restored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sdir = secrets_dir(home)
    sdir.mkdir(parents=True)
    foreign = sdir / "127.0.0.1:8765-cave-secret.json"
    foreign.write_text(json.dumps({"token": "a" * 32}))
    before = snapshot(home)
    with pytest.raises(ConfigureError, match="refusing"):
        configure_home(URL, home, DATASTACKS)
    assert snapshot(home) == before
    result = configure_home(URL, home, DATASTACKS, force=True)
    assert json.loads(result.token_backup.read_text()) == {"token": "a" * 32}
    unconfigure_home(home)
    assert snapshot(home) == before


def test_cli_unconfigure_says_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    home.mkdir()
    configure_home(URL, home, DATASTACKS)
    assert main(["unconfigure", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "removed (configure had created it)" in out and "cave-secret.json" in out
    assert list(home.iterdir()) == []
    assert main(["unconfigure", "--home", str(home)]) == 0
    assert "nothing to undo" in capsys.readouterr().out


def test_the_course_package_finds_the_sessions_where_configure_points(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """configure and connectomics_book.sources agree on the file, the key and the URL."""
    from connectomics_book import sources

    home = tmp_path / "student"
    configure_home(URL, home, DATASTACKS)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(sources.ENV_SOURCES_FILE, raising=False)
    assert sources.location("v1dd_sessions") == f"{URL}/sessions/api/v1/datastack/v1dd_public"
    unconfigure_home(home)
    assert sources.location("v1dd_sessions") == sources.V1DD_SESSIONS.public
    # a server with neither datastack leaves the sources alone
    configure_home(URL, home, ["other_public"])
    assert not (home / ".config").exists()


def test_the_course_package_finds_the_flat_segmentations_where_configure_points(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """configure writes the static-mesh sources of minnie65_public (seg_m943, seg_m1300) as
    precomputed paths on this server; unconfigure gives back the public buckets."""
    from connectomics_book import sources

    home = tmp_path / "student"
    configure_home(URL, home, ["minnie65_public"])
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(sources.ENV_SOURCES_FILE, raising=False)
    for version in (943, 1300):
        assert sources.location(f"minnie65_seg_m{version}") == (
            f"precomputed://{URL}/static/minnie65_public/seg_m{version}")
    assert sources.location("v1dd_sessions") == sources.V1DD_SESSIONS.public
    # the sample has no export of the conntility release: it stays the public Zenodo file
    assert sources.location("minnie65_conntility_v117") == (
        "https://zenodo.org/records/8364070/files/microns_mm3_connectome.h5")
    unconfigure_home(home)
    assert sources.location("minnie65_seg_m1300") == (
        "precomputed://gs://iarpa_microns/minnie/minnie65/seg_m1300")
    assert sources.location("minnie65_seg_m943") == sources.MINNIE65_SEG_M943.public


def test_the_course_package_finds_the_bulk_exports_where_configure_points(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The minnie65 bulk exports: public bucket by default, this server once configured."""
    from connectomics_book import sources

    home = tmp_path / "student"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(sources.ENV_SOURCES_FILE, raising=False)
    assert sources.location("minnie65_bulk").startswith("https://storage.googleapis.com/")
    configure_home(URL, home, ["minnie65_public"])
    assert sources.location("minnie65_bulk") == f"{URL}/mat_dbs/public/minnie65_public"
    assert sources.location("v1dd_sessions") == sources.V1DD_SESSIONS.public
    # the sample has no export of the conntility release: it stays the public Zenodo file
    assert sources.location("minnie65_conntility_v117") == (
        "https://zenodo.org/records/8364070/files/microns_mm3_connectome.h5")
    unconfigure_home(home)
    assert sources.location("minnie65_bulk") == sources.MINNIE65_BULK.public
