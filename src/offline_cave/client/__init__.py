"""Client-side set-up: caveclient configuration of a HOME and the context that runs a command against a temporary server."""
