"""The `ctpipe` commands: one module per command or family of commands, each with
`register(subparsers)`; ctpipe/cli.py registers them all."""
