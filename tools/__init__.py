"""Developer tools: running the stack locally."""
