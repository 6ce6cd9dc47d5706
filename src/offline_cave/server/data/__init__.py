"""The server's data engine: reads the sample files (DuckDB over Parquet, the chunkedgraph, meshes and skeletons); raises domain errors, knows no HTTP."""
