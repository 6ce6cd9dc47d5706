"""The command line: ``serve``, ``configure`` and ``exec`` as separate processes."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from offline_cave.contract.params import DATASTACKS
from tests.fixtures.sample_fixture import build_fixture
from tests.fixtures.server_harness import AUTH

PY = sys.executable
URL_LINE = re.compile(r"^offline CAVE server \((?P<names>[^)]*)\) listening on "
                      r"(?P<url>http://127\.0\.0\.1:(?P<port>\d+))$")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fixture samples for every datastack the package knows, so nothing gets generated."""
    d = tmp_path_factory.mktemp("cli-data")
    for name in DATASTACKS:
        build_fixture(d, name)
    return d


def isolated_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["HOME"] = str(home)
    env.pop("CLOUD_VOLUME_DIR", None)
    return env


def start_serve(data_dir: Path, home: Path, *args: str,
                hang_after: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Start ``serve`` and read its first line; a server that says nothing is a hang, not slow.

    How fast it starts is measured by ``benchmarks/bench_server.py``, not here.
    """
    proc = subprocess.Popen([PY, "-m", "offline_cave", "serve", "--data", str(data_dir), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=isolated_env(home))
    ready, _, _ = select.select([proc.stdout], [], [], hang_after)
    if not ready:
        proc.kill()
        proc.communicate()
        pytest.fail(f"serve printed nothing within {hang_after:.0f} s")
    return proc, proc.stdout.readline().rstrip("\n")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> tuple[str, str]:
    """Signal a server process and wait; kill it if it does not stop in time."""
    proc.send_signal(sig)
    try:
        return proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise


def test_serve_prints_one_line_and_stops_on_sigterm(data_dir: Path, tmp_path: Path) -> None:
    proc, line = start_serve(data_dir, tmp_path, "--port", "0")
    try:
        m = URL_LINE.match(line)
        assert m, line
        url = m["url"]
        assert int(m["port"]) > 0
        names = requests.get(f"{url}/info/api/v2/datastacks", timeout=10, headers=AUTH).json()
        assert names == sorted(DATASTACKS)
        info = requests.get(f"{url}/info/api/v2/datastack/full/{names[0]}", timeout=10,
                            headers=AUTH).json()
        assert info["local_server"] == url
    finally:
        out, err = stop(proc)
    assert proc.returncode == 0, err
    assert out == ""  # nothing after the one line
    assert "Traceback" not in err


def test_serve_stops_on_ctrl_c(data_dir: Path, tmp_path: Path) -> None:
    proc, line = start_serve(data_dir, tmp_path, "--port", "0")
    try:
        assert URL_LINE.match(line), line
    finally:
        _, err = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_port_in_use_is_exit_code_2(data_dir: Path, tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        r = subprocess.run([PY, "-m", "offline_cave", "serve", "--data", str(data_dir),
                            "--port", str(port)], capture_output=True, text=True, timeout=60,
                           env=isolated_env(tmp_path))
    finally:
        blocker.close()
    assert r.returncode == 2
    assert "already in use" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_a_port_in_use_is_refused_before_any_generation(tmp_path: Path) -> None:
    """An empty data directory would make serve generate every sample (minutes); with the port
    taken it must refuse at once, generating nothing. (How fast: a fraction of a second, see
    the report of issue 11; the timeout here only stops a server that went on to generate.)"""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    empty = tmp_path / "data"
    empty.mkdir()
    try:
        r = subprocess.run([PY, "-m", "offline_cave", "serve", "--data", str(empty),
                            "--port", str(port)], capture_output=True, text=True, timeout=60,
                           env=isolated_env(tmp_path))
    except subprocess.TimeoutExpired:
        pytest.fail("serve went on preparing the data with its port taken")
    finally:
        blocker.close()
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "already in use" in r.stderr, r.stderr
    assert r.stdout == ""
    assert list(empty.iterdir()) == [], "nothing is generated"


def test_missing_or_partial_sample_is_a_clear_error_not_half_served(tmp_path: Path) -> None:
    from offline_cave.prepare import SampleMissingError, prepare_data

    with pytest.raises(SampleMissingError, match="no complete sample datastack"):
        prepare_data(tmp_path / "empty", generate=False)
    # a datastack directory whose generation was cut off (no MANIFEST.json) is not served
    partial = tmp_path / "partial" / "minnie65_public"
    partial.mkdir(parents=True)
    (partial / "nucleus_detection_v0.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(SampleMissingError, match="no complete sample datastack"):
        prepare_data(tmp_path / "partial", generate=False)


def test_configure_merges_and_protects_real_tokens(data_dir: Path, tmp_path: Path) -> None:
    proc, line = start_serve(data_dir, tmp_path, "--port", "0")
    try:
        url = URL_LINE.match(line)["url"]
        home = tmp_path / "home"
        secrets = home / ".cloudvolume" / "secrets"
        secrets.mkdir(parents=True)
        (secrets / "cave_datastack_to_server_map.json").write_text(
            json.dumps({"some_other_ds": "https://elsewhere.example"}))
        server_file = secrets / f"{url.split('://')[1]}-cave-secret.json"

        def configure(*extra: str) -> subprocess.CompletedProcess:
            return subprocess.run([PY, "-m", "offline_cave", "configure", "--server", url,
                                   "--home", str(home), *extra], capture_output=True,
                                  text=True, timeout=60, env=isolated_env(tmp_path))

        def token_of(path: Path) -> str:
            return json.loads(path.read_text())["token"]

        r = configure()
        assert r.returncode == 0, r.stderr
        mapping = json.loads((secrets / "cave_datastack_to_server_map.json").read_text())
        assert mapping["some_other_ds"] == "https://elsewhere.example"
        assert all(mapping[name] == url for name in DATASTACKS)
        token = token_of(server_file)
        assert re.fullmatch(r"[0-9a-f]{32}", token)
        # the default token file belongs to the public services: never created
        assert not (secrets / "cave-secret.json").exists()
        assert token not in r.stdout + r.stderr
        assert configure().returncode == 0  # idempotent: our own dummy token is kept
        assert token_of(server_file) == token

        # a real token in the default file is never touched, and never used for this server
        real = {"token": "real0token0value0do0not0touch000"}
        (secrets / "cave-secret.json").write_text(json.dumps(real))
        server_file.unlink()
        r = configure()
        assert r.returncode == 0, r.stderr
        assert json.loads((secrets / "cave-secret.json").read_text()) == real
        assert "your own token is kept" in r.stdout
        assert real["token"] not in r.stdout + r.stderr
        dummy = token_of(server_file)
        child = subprocess.run(
            [PY, "-c", "import sys; from caveclient import CAVEclient; "
                       "from cloudvolume import CloudVolume; c = CAVEclient(sys.argv[1]); "
                       "cv = CloudVolume(c.info.segmentation_source(), use_https=True, "
                       "progress=False); "
                       "print(c.auth.token, cv.meta.auth_header['Authorization'])",
             sorted(DATASTACKS)[0]],
            capture_output=True, text=True, timeout=120, env=isolated_env(home))
        assert child.returncode == 0, child.stderr
        # caveclient and cloud-volume both send the dummy to this server, never the real token
        assert child.stdout.split() == [dummy, "Bearer", dummy]

        # a server-specific file someone else wrote is only replaced with --force, backed up
        other = {"token": "abcdef0123456789abcdef0123456789"}
        server_file.write_text(json.dumps(other))
        r = configure()
        assert r.returncode == 1 and "refusing" in r.stderr
        assert json.loads(server_file.read_text()) == other
        r = configure("--force")
        assert r.returncode == 0, r.stderr
        backups = [line.rsplit(" ", 1)[-1].rstrip(")") for line in r.stdout.splitlines()
                   if "previous file is saved in" in line]
        assert len(backups) == 1 and json.loads(Path(backups[0]).read_text()) == other
        assert token_of(server_file) not in (other["token"], real["token"])
        assert json.loads((secrets / "cave-secret.json").read_text()) == real
        bad = subprocess.run([PY, "-m", "offline_cave", "configure", "--server", "ftp://x",
                              "--home", str(home)], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2
    finally:
        stop(proc)


def test_serving_every_interface_hands_out_the_address_each_client_used(
        data_dir: Path, tmp_path: Path) -> None:
    """An instructor's `serve --host 0.0.0.0`: students reach it under another name than
    127.0.0.1, and the URLs in the datastack info must be that name (here 127.0.0.2, another
    loopback address), or their clients would query their own machine."""
    proc, line = start_serve(data_dir, tmp_path, "--host", "0.0.0.0", "--port", "0")
    try:
        port = URL_LINE.match(line)["port"]
        name = sorted(DATASTACKS)[0]
        for host in ("127.0.0.1", "127.0.0.2"):
            url = f"http://{host}:{port}"
            info = requests.get(f"{url}/info/api/v2/datastack/full/{name}", timeout=10,
                                headers=AUTH).json()
            assert info["local_server"] == url
            assert info["segmentation_source"].startswith(f"graphene://{url}/")
        home = tmp_path / "student"
        r = subprocess.run([PY, "-m", "offline_cave", "configure", "--server",
                            f"http://127.0.0.2:{port}", "--home", str(home)],
                           capture_output=True, text=True, timeout=60, env=isolated_env(home))
        assert r.returncode == 0, r.stderr
        child = subprocess.run(
            [PY, "-c", "import sys; from caveclient import CAVEclient; c = CAVEclient(sys.argv[1]); "
                       "print(c.info.local_server(), len(c.materialize.query_table("
                       "c.info.get_datastack_info()['soma_table'], limit=5)))", name],
            capture_output=True, text=True, timeout=120, env=isolated_env(home))
        assert child.returncode == 0, child.stderr
        assert child.stdout.split() == [f"http://127.0.0.2:{port}", "5"]
    finally:
        out, err = stop(proc)
    assert "every interface" in err and "Traceback" not in err


CHILD = r"""
import os, sys, json
from caveclient import CAVEclient
import cloudvolume.secrets as cvs
home = os.environ["HOME"]
assert home != sys.argv[1], "HOME was not isolated"
assert cvs.CLOUD_VOLUME_DIR.startswith(home), cvs.CLOUD_VOLUME_DIR
c = CAVEclient(sys.argv[2])
assert c.info.local_server() == os.environ["OFFLINE_CAVE_URL"]
df = c.materialize.query_table(c.info.get_datastack_info()["soma_table"], limit=3)
assert len(df) == 3
from cloudvolume import CloudVolume
cv = CloudVolume(c.info.segmentation_source(), use_https=True, progress=False)
roots = c.materialize.query_table("aibs_metamodel_celltypes_v661").pt_root_id
mesh = cv.mesh.get(int(roots.iloc[0]))
assert len(mesh[int(roots.iloc[0])].vertices) > 100
sys.exit(7)
"""


def test_exec_runs_the_command_against_an_isolated_home(data_dir: Path, tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    name = sorted(DATASTACKS)[0]
    r = subprocess.run([PY, "-m", "offline_cave", "exec", "--data", str(data_dir), "--", PY,
                        str(script), str(tmp_path), name], capture_output=True, text=True,
                       timeout=170, env=isolated_env(tmp_path))
    assert r.returncode == 7, r.stderr
    assert "offline CAVE server at http://127.0.0.1:" in r.stderr
    homes = re.findall(r"HOME=(\S+)\)", r.stderr)
    assert homes and not Path(homes[0]).exists()  # the temporary home is removed
    missing = subprocess.run([PY, "-m", "offline_cave", "exec", "--data", str(data_dir), "--",
                              "definitely-not-a-command-xyz"], capture_output=True, text=True,
                             timeout=60, env=isolated_env(tmp_path))
    assert missing.returncode == 127
    empty = subprocess.run([PY, "-m", "offline_cave", "exec", "--data", str(data_dir)],
                           capture_output=True, text=True, timeout=60,
                           env=isolated_env(tmp_path))
    assert empty.returncode == 2


def test_generation_progress_stays_off_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    """serve's stdout is its one URL line; generating a missing sample reports on stderr."""
    import offline_cave.generator.pipeline
    from offline_cave.prepare import SampleMissingError, prepare_data

    calls = []

    def fake_ensure_sample(data_dir, name, seed, scale, log=print, **_):
        calls.append(name)
        log(f"{name}: generating the synthetic sample")

    monkeypatch.setattr(offline_cave.generator.pipeline, "ensure_sample", fake_ensure_sample)
    with pytest.raises(SampleMissingError):
        prepare_data(tmp_path, datastacks=["v1dd_public"])
    out, err = capsys.readouterr()
    assert calls == ["v1dd_public"]
    assert out == "" and "v1dd_public: generating" in err


def test_a_damaged_sample_is_not_served_and_is_rebuilt_as_it_was_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import offline_cave.generator.pipeline
    from offline_cave.prepare import SampleMissingError, damaged, prepare_data

    build_fixture(tmp_path)
    ds = tmp_path / "minnie65_public"
    assert damaged(ds) is None
    manifest = json.loads((ds / "MANIFEST.json").read_text())
    victim = ds / next(rel for rel in manifest["files"] if rel.endswith(".parquet"))
    victim.write_bytes(victim.read_bytes()[:-10])  # truncated
    assert "wrong size" in damaged(ds)
    with pytest.raises(SampleMissingError, match="no complete sample"):
        prepare_data(tmp_path, generate=False)  # not served half-broken

    calls = []

    def fake_ensure_sample(data_dir, name, seed, scale, log=print, **_):
        calls.append((name, seed, scale))

    monkeypatch.setattr(offline_cave.generator.pipeline, "ensure_sample", fake_ensure_sample)
    prepare_data(tmp_path, datastacks=["minnie65_public"], seed=7, scale=3.0)
    assert calls == [("minnie65_public", manifest["seed"], manifest["scale"])]
