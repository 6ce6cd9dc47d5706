"""Two-photon physiology of the V1DD sample: the response model and the NWB sessions written from it."""
