"""Functions the model can call: plain Python functions with type hints and docstrings.

`schema.py` turns a function into a JSON schema, `registry.py` collects the
built-in sets and user functions, `runner.py` validates a call's arguments and
runs it, `handles.py` holds the narrow objects a tool may be given.
"""
