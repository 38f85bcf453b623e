"""XLA and process plumbing: compile cache, XLA flags, direct calls, heap, noise, files."""
