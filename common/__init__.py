"""The ground floor: mechanics every package shares (the user-facing error, atomic files,
progress notes, URIs and file systems, TF Serving's folder layout, the names and TFX mechanics
the pipeline's steps share). It imports nothing else of the project."""
