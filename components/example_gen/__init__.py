"""ExampleGen: TFX's file-based ExampleGen, one explicit span per run, on Arrow."""
