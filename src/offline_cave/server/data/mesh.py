"""The skeleton -> mesh builder, now in :mod:`offline_cave.contract.mesh`: the generator uses it
too (the static multi-resolution meshes of ``seg_m943`` / ``seg_m1300``). Re-exported here
for the server's modules and tests, with the server's Draco re-encoding of legacy fragments."""

from offline_cave.contract.mesh import (  # noqa: F401
    MESH_VERSION,
    decode_legacy,
    encode_legacy,
    is_valid_legacy,
    skeleton_mesh,
    uv_sphere,
)


def legacy_to_draco(data: bytes) -> bytes:
    """A legacy fragment re-encoded as Draco, the encoding of the graphene dynamic meshes
    (Neuroglancer's graphene source decodes its unsharded fragments as Draco; cloud-volume
    reads either). Positions are quantized to 16 bits over the mesh's bounding box."""
    import DracoPy

    vertices, faces = decode_legacy(data)
    return DracoPy.encode(vertices, faces, quantization_bits=16, compression_level=1,
                          preserve_order=True)
