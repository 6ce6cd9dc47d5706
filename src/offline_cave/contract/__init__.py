"""What the generator and the server agree on: file layout, parameters, ids, frames, file checksums and the table catalogue."""
