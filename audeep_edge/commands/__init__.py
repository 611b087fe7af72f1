"""CLI command modules. Each module defines ``register(app: typer.Typer) -> None``."""

COMMAND_MODULES = (
    "data",       # preprocess, inspect, validate, fuse, export, import, upsample, modify
    "autoencoders",  # t-rae / f-rae / ft-rae train|generate
    "learners",   # mlp evaluate|predict|train, svm evaluate|predict
    "quantize",   # quantize
    "train",      # train (own labelled clips -> bundle)
    "stream",     # listen, bench, config check
    "dashboard",  # dashboard
    "record",     # record (history database)
    "deploy",     # doctor, adopt-edgetpu
    "adapt",      # baseline fit|show, enroll
)
