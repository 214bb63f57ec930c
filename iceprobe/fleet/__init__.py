"""The fleet file of `iceprobe check` and `iceprobe exporter` (issue 18): modules (how to
probe), auth (with what) and targets (where). `model` is the parsed form; `config` reads the
TOML file into it."""
