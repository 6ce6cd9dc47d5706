"""The Neuroglancer viewer and the JSON state service, through the unmodified clients.

``client.state`` (caveclient 8.2.1's ``JSONService``) uploads and reads states; nglui 4.9.0
builds links that point at the viewer the datastack info names; the viewer's files are the
neuroglancer wheel's built client, byte for byte.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from offline_cave.contract import layout
from offline_cave.server.data import states
from offline_cave.server.routes.viewer import VIEWER_PATH, client_dir
from tests.fixtures.server_harness import AUTH

if TYPE_CHECKING:
    from tests.fixtures.server_harness import Served

STATE = {"dimensions": {"x": [4e-9, "m"], "y": [4e-9, "m"], "z": [4e-8, "m"]},
         "layers": [{"type": "segmentation", "name": "seg", "segments": ["864691135474648896"]}],
         "position": [1.5, 2.0, 3.0]}


def test_upload_and_read_back_a_state(served: Served, client) -> None:
    state_id = client.state.upload_state_json(STATE)
    assert isinstance(state_id, int) and state_id > 0
    assert client.state.get_state_json(state_id) == STATE
    other = client.state.upload_state_json({**STATE, "position": [9.0, 9.0, 9.0]})
    assert other != state_id
    assert client.state.get_state_json(state_id) == STATE  # the first is still there
    assert client.state.get_state_json(other)["position"] == [9.0, 9.0, 9.0]


def test_a_shortened_link_names_the_state_on_this_server(served: Served, client) -> None:
    state_id = client.state.upload_state_json(STATE)
    url = client.state.build_neuroglancer_url(state_id, client.info.viewer_site())
    # version.json answers, so caveclient writes the spelunker form of the link
    assert url == (f"{served.url}{VIEWER_PATH}#!middleauth+{served.url}"
                   f"/nglstate/api/v1/{state_id}")


def test_segment_properties_round_trip(served: Served, client) -> None:
    props = {"@type": "neuroglancer_segment_properties",
             "inline": {"ids": ["1", "2"], "properties": [
                 {"id": "cell_type", "type": "label", "values": ["23P", "BC"]}]}}
    prop_id = client.state.upload_property_json(props)
    assert client.state.get_property_json(prop_id) == props
    source = client.state.build_neuroglancer_url(prop_id, format_properties=True)
    r = requests.get(source.removeprefix("precomputed://middleauth+") + "/info", headers=AUTH,
                     timeout=10)
    assert r.status_code == 200 and r.json() == props



def test_nglui_segment_properties_are_read_where_the_viewer_reads_them(served: Served,
                                                                     client) -> None:
    """nglui's ``add_segment_properties`` uploads a property file built from a table and adds
    ``precomputed://middleauth+http://.../property/<id>`` to the segmentation layer; the
    viewer page turns ``middleauth+http`` into ``http`` and reads ``<source>/info`` with its
    cookie: that must be the file, with one label and one tag per cell of the table."""
    from nglui import parser, statebuilder

    client.materialize.version = 1300
    cells = client.materialize.query_table("aibs_metamodel_celltypes_v661")
    cells = cells[cells["pt_root_id"] != 0].drop_duplicates("pt_root_id").head(50)
    viewer_site = client.info.viewer_site()
    state = (statebuilder.ViewerState(target_url=viewer_site, infer_coordinates=False)
             .add_layers_from_client(client)
             .add_segments(cells["pt_root_id"].astype(int).tolist())
             .add_segment_properties(cells, client=client, id_column="pt_root_id",
                                     label_column="cell_type",
                                     tag_value_columns=["cell_type"]))
    urls = [s["url"] if isinstance(s, dict) else s
            for s in parser.layer_source(state.to_dict(), "segmentation")]
    prefix = f"precomputed://middleauth+{served.url}/nglstate/api/v1/property/"
    property_urls = [u for u in urls if u.startswith(prefix)]
    assert len(property_urls) == 1, urls
    as_the_viewer = property_urls[0].replace("middleauth+http://", "http://")
    r = requests.get(as_the_viewer.removeprefix("precomputed://") + "/info",
                     cookies={"middle_auth_token": "viewer"}, timeout=10)
    assert r.status_code == 200
    info = r.json()
    assert info["@type"] == "neuroglancer_segment_properties"
    inline = info["inline"]
    assert inline["ids"] == [str(int(i)) for i in cells["pt_root_id"]]
    by_id = {p["id"]: p for p in inline["properties"]}
    assert by_id["label"]["values"] == cells["cell_type"].tolist()
    tags = by_id["tags"]["tags"]
    assert [tags[v[0]] for v in by_id["tags"]["values"]] == cells["cell_type"].tolist()
    assert set(tags) == set(cells["cell_type"])

def test_unknown_state_and_bad_ids_are_4xx(served: Served, client) -> None:
    with pytest.raises(requests.HTTPError, match="404"):
        client.state.get_state_json(10**9)
    r = requests.get(f"{served.url}/nglstate/api/v1/not-a-number", headers=AUTH, timeout=10)
    assert r.status_code == 400
    r = requests.post(f"{served.url}/nglstate/api/v1/post", data=b"[1, 2]", headers=AUTH,
                      timeout=10)
    assert r.status_code == 400 and "JSON object" in r.json()["message"]
    r = requests.post(f"{served.url}/nglstate/api/v1/post", data=b"{not json", headers=AUTH,
                      timeout=10)
    assert r.status_code == 400
    r = requests.post(f"{served.url}/nglstate/api/v1/post/12", data=b"{}", headers=AUTH,
                      timeout=10)
    assert r.status_code == 403
    r = requests.post(f"{served.url}/nglstate/api/v1/post", data=b"{}", timeout=10)
    assert r.status_code == 401  # the state service needs a token like every CAVE service


def test_a_state_over_the_size_limit_is_a_413(served: Served, client) -> None:
    big = {"layers": [], "padding": "x" * states.MAX_STATE_BYTES}
    with pytest.raises(requests.HTTPError, match="413"):
        client.state.upload_state_json(big)


def test_the_store_is_bounded_in_count_and_bytes() -> None:
    store = states.StateStore(max_state_bytes=100, max_states=3, max_total_bytes=1000)
    ids = [store.add("state", b"{}") for _ in range(3)]
    assert ids == [1, 2, 3]
    with pytest.raises(states.StateStoreFull):
        store.add("state", b"{}")
    assert store.get("state", 1) == b"{}"  # nothing was dropped to make room
    store = states.StateStore(max_state_bytes=100, max_states=100, max_total_bytes=150)
    store.add("state", b'{"a": "' + b"x" * 80 + b'"}')
    with pytest.raises(states.StateStoreFull):
        store.add("state", b'{"a": "' + b"x" * 80 + b'"}')
    with pytest.raises(states.StateTooLarge):
        store.add("state", b'{"a": "' + b"x" * 100 + b'"}')
    with pytest.raises(states.MissingArtefact):
        store.get("property", 1)  # a state id is not a property id


def test_viewer_site_points_at_the_served_viewer(served: Served, client) -> None:
    assert client.info.viewer_site() == f"{served.url}{VIEWER_PATH}"
    on_disk = json.loads((served.ds_dir / layout.DATASTACK_JSON).read_text())
    assert on_disk["viewer_site"] == "https://spelunker.cave-explorer.org/"  # the files


def test_viewer_files_are_the_wheels_client(served: Served) -> None:
    directory = client_dir()
    assert directory is not None
    page = requests.get(f"{served.url}{VIEWER_PATH}", timeout=10)  # no token needed
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "middle_auth_token=" in page.headers["set-cookie"]
    scripts = [p for p in directory.iterdir() if p.suffix in (".js", ".wasm", ".css")]
    assert any(p.suffix == ".wasm" for p in scripts)
    expected_type = {".js": "text/javascript", ".wasm": "application/wasm",
                     ".css": "text/css"}
    for path in scripts:
        r = requests.get(f"{served.url}{VIEWER_PATH}{path.name}", timeout=10)
        assert r.status_code == 200, path.name
        assert r.headers["content-type"].startswith(expected_type[path.suffix]), path.name
        assert r.content == path.read_bytes(), path.name
    assert requests.get(f"{served.url}{VIEWER_PATH}version.json", timeout=10).json()[
        "neuroglancer"]


@pytest.mark.parametrize("rel", ["../../../etc/passwd", "..%2f..%2fetc%2fpasswd",
                                 "%2e%2e/%2e%2e/state.py", "/etc/passwd", "missing.js",
                                 "index.py", "..", "sub/../main.js"])
def test_viewer_paths_cannot_leave_the_client(served: Served, rel: str) -> None:
    # http.client sends the path as written (requests would remove the dot segments)
    host, port = served.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", f"{VIEWER_PATH}{rel}")
        r = connection.getresponse()
        body = r.read()
    finally:
        connection.close()
    assert r.status == 404, (rel, r.status)
    assert r.getheader("content-type").startswith("application/json")
    assert b"root:" not in body


def test_the_viewer_is_served_at_one_path(served: Served) -> None:
    r = requests.get(f"{served.url}/neuroglancer/v/other/", timeout=10)
    assert r.status_code == 404 and VIEWER_PATH in r.json()["message"]
    assert Path(VIEWER_PATH).parts[-2] == "v"  # the wheel's client finds its page under /v/


def test_nglui_neuron_link_holds_the_synapses(served: Served, client) -> None:
    from nglui import parser, statebuilder

    client.materialize.version = 1300
    cells = client.materialize.query_table("aibs_metamodel_celltypes_v661")
    root = int(cells.query("pt_root_id != 0")["pt_root_id"].iloc[0])
    viewer_site = client.info.viewer_site()
    state = statebuilder.helpers.make_neuron_neuroglancer_link(
        client, root, return_as="viewer", target_url=viewer_site, infer_coordinates=False)
    url = state.to_url(target_url=viewer_site)
    assert url.startswith(f"{served.url}{VIEWER_PATH}#!")
    state_dict = state.to_dict()
    sources = json.dumps(parser.layer_source(state_dict, "segmentation"))
    assert f"{served.url}/segmentation/table/" in sources
    counts = parser.annotation_dataframe(state_dict)["layer"].value_counts()
    assert counts.get("inputs", 0) == len(client.materialize.synapse_query(post_ids=root))
    assert counts.get("outputs", 0) == len(client.materialize.synapse_query(pre_ids=root))
    assert counts.sum() > 0
    short = state.to_url(target_url=viewer_site, shorten=True, client=client)
    stored = client.state.get_state_json(int(short.rsplit("/", 1)[1]))
    assert parser.annotation_dataframe(stored)["layer"].value_counts().equals(counts)


def test_graphene_fragments_reach_the_viewer_as_draco(served: Served, client) -> None:
    import DracoPy

    cells = client.materialize.query_table("aibs_metamodel_celltypes_v661")
    root = int(cells.query("pt_root_id != 0")["pt_root_id"].iloc[0])
    seg = f"{served.url}/seg/minnie65_public/mesh"
    legacy = requests.get(f"{seg}/{root}:0:1", timeout=60)
    draco = requests.get(f"{seg}//{root}:0:1", timeout=60)  # as Neuroglancer asks for it
    assert legacy.status_code == 200 and draco.status_code == 200
    n_vertices = int.from_bytes(legacy.content[:4], "little")
    mesh = DracoPy.decode(draco.content)
    assert len(mesh.points) == n_vertices
    assert len(mesh.faces) == (len(legacy.content) - 4 - 12 * n_vertices) // 12


def test_skeleton_sources_have_attributes_the_viewer_draws(served: Served, client) -> None:
    """The viewer's skeleton layer refuses a precomputed source whose vertex attributes are
    not float32 (the layer stays empty); cloud-volume and the bytes Neuroglancer decodes
    (positions, edges, then each attribute) must still give the stored skeleton."""
    import numpy as np
    from cloudvolume import CloudVolume

    cells = client.materialize.query_table("aibs_metamodel_celltypes_v661")
    root = int(cells.query("pt_root_id != 0")["pt_root_id"].iloc[0])
    stored = client.skeleton.get_skeleton(root, skeleton_version=0, output_format="dict")
    sources = [client.info.get_datastack_info()["skeleton_source"],
               f"precomputed://{served.url}/seg/minnie65_public/skeletons"]
    for source in sources:
        base = source.removeprefix("precomputed://").rstrip("/")
        info = requests.get(f"{base}/info", headers=AUTH, timeout=10).json()
        types = {a["id"]: a["data_type"] for a in info["vertex_attributes"]}
        assert types == {"radius": "float32", "compartment": "float32"}, source
        data = requests.get(f"{base}/{root}", headers=AUTH, timeout=60).content
        nv, ne = np.frombuffer(data[:8], "<u4")
        assert len(data) == 8 + 12 * nv + 8 * ne + 8 * nv  # two float32 attributes
        at = 8 + 12 * nv + 8 * ne
        radius = np.frombuffer(data[at:at + 4 * nv], "<f4")
        compartment = np.frombuffer(data[at + 4 * nv:], "<f4")
        np.testing.assert_allclose(radius, stored["radius"], rtol=1e-6)
        np.testing.assert_array_equal(compartment, stored["compartment"])
    sk = CloudVolume(f"precomputed://{served.url}/seg/minnie65_public", use_https=True,
                     progress=False).skeleton.get(root)
    np.testing.assert_array_equal(sk.compartment, stored["compartment"])
    assert set(np.unique(sk.compartment).tolist()) <= {1, 2, 3, 4}
