"""The skeleton -> mesh builder, now in :mod:`offline_cave.contract.mesh`: the generator uses it
too (the static multi-resolution meshes of ``seg_m943`` / ``seg_m1300``). Re-exported here
for the server's modules and tests."""

from offline_cave.contract.mesh import (  # noqa: F401
    MESH_VERSION,
    decode_legacy,
    encode_legacy,
    is_valid_legacy,
    skeleton_mesh,
    uv_sphere,
)
