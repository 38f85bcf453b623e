"""A training run: config, command lines, the loop, callbacks, run folders, saved generators."""
