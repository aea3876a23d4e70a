"""What an agent or data source may be called: checked once, where each is created or renamed.

Names travel everywhere: into Markdown status lines, the picker, URLs (?agent=),
WebSocket frames and every visitor's page. So they are short plain words, with
no control or invisible characters to make two names look alike or reorder text.
"""

from __future__ import annotations

import re
import unicodedata

from engine.errors import InvalidName

MAX_NAME = 64
_NAME = re.compile(r"^[\w][\w .\-]*$", re.UNICODE)


def check_name(name: str, what: str = "agent") -> str:
    """The name as it will be stored (stripped, NFKC-normalized), or InvalidName saying what is wrong.

    NFKC first, so a name typed with combining accents or compatibility forms
    (the Kelvin sign, full-width letters) is stored in its ordinary spelling.
    `what` names the thing in the messages ("agent", "data source").
    """
    article = "An" if what[0] in "aeiou" else "A"
    if not isinstance(name, str):
        raise InvalidName(f"{article} {what} name must be text.")
    name = unicodedata.normalize("NFKC", name).strip()
    if not name:
        raise InvalidName(f"{article} {what} name cannot be empty.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in name):
        raise InvalidName(f"Bad {what} name {name[:80]!r}: it contains control or invisible characters.")
    if len(name) > MAX_NAME:
        raise InvalidName(f"{article} {what} name holds at most {MAX_NAME} characters; this one has {len(name)}.")
    if not _NAME.match(name):
        raise InvalidName(
            f"Bad {what} name {name[:80]!r}: use 1-{MAX_NAME} letters, digits, spaces, '.', '-' or '_', "
            "starting with a letter or digit."
        )
    return name
