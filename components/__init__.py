"""The pipeline's custom steps, one module each, or one folder (`component.py`, `executor.py`)
where a step has both a component and an executor or checks of its own; their libraries live
in `validation/` and `common/`."""
