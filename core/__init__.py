"""What both entry points (the server and the workers) build on, below server/ and workers/: today the log
format; the settings and the composition root are to follow (docs/ARCHITECTURE.md, Layout)."""
