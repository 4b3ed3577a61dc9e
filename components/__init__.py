"""The pipeline's custom steps, a folder each: `component.py` (the spec and the component),
`executor.py` (what runs, and its helpers) and a README of its inputs, outputs and properties;
their libraries live in `validation/` and `common/`."""
