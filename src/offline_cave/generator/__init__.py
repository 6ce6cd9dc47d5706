"""The synthetic-sample generator: parameters -> cells, skeletons, synapses, segmentation, annotation tables, two-photon sessions -> files. Knows no HTTP."""
