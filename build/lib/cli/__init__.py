"""The terminal faces: `python app.py chat`, `load ...`, `configure`, `list`, `add`, `export`...

Like the web app, they only call engine operations and render engine events.
`cli.main.run(argv)` dispatches; engine errors become `error: ...` and exit code 2.
"""


class CommandError(Exception):
    """A problem with what was typed on the command line (not an engine error)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code
