"""What the web app lets a browser reach on the server's own disk.

Everything a browser can send is a stranger's input once the app is on a
Space or a share link, and Gradio makes every event callable over HTTP (a
hidden field is still a reachable handler). So the rules are enforced in the
handlers, from this one object, not by what the page shows:

- Uploaded files are read only from Gradio's upload folder (where Gradio put
  what the browser sent), never from a path the request names.
- A folder on the server is read only under an import root the operator named
  at start (`--import-root DIR` or `MEMGPT_IMPORT_ROOT`; none by default), and
  never when the app is exposed (bound beyond loopback, shared, or on a Space):
  then the field is not offered at all. Roots come from the command line or the
  environment only: config.yaml is not proof of the operator's intent, since the
  Config tab can rewrite it.
- The data home is never readable, whatever the roots (the store's live-file guard also
  refuses it to every loader, because reading the live database drops its locks).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from engine.errors import ConfigError

IMPORT_ROOT_ENV = "MEMGPT_IMPORT_ROOT"


class Refused(Exception):
    """A path a request may not read; the message says why, for the user."""


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@dataclasses.dataclass(frozen=True)
class Exposure:
    exposed: bool = False
    import_roots: tuple[Path, ...] = ()
    home: Path | None = None

    @classmethod
    def build(cls, *, exposed: bool, roots: list[str] | None, home: Path, env=None) -> Exposure:
        """The policy for a server; a ConfigError for a root that cannot be used."""
        env = os.environ if env is None else env
        given = list(roots or [])
        if not given and env.get(IMPORT_ROOT_ENV):
            given = [p for p in env[IMPORT_ROOT_ENV].split(os.pathsep) if p.strip()]
        home = Path(os.path.realpath(home))
        resolved = []
        for raw in given:
            root = Path(os.path.realpath(Path(raw).expanduser()))
            if not root.is_dir():
                raise ConfigError(f"The import root {raw} is not a folder.")
            if _inside(root, home):
                raise ConfigError(f"The import root {raw} is inside the data home {home}, which is never readable.")
            resolved.append(root)
        return cls(exposed=exposed, import_roots=tuple(resolved), home=home)

    @property
    def folders_offered(self) -> bool:
        return bool(self.import_roots) and not self.exposed

    def folder_note(self) -> str:
        if self.exposed:
            return ""
        if not self.import_roots:
            return ("To load a folder on this machine, start the app with `--import-root DIR`; "
                    "then folders under DIR can be loaded here.")
        return "Folders under " + ", ".join(f"`{r}`" for r in self.import_roots) + " can be loaded."

    def check_folder(self, text: str) -> Path:
        """The folder a request may read, resolved, or Refused."""
        if self.exposed:
            raise Refused("Loading folders on the server is not available on a public app; upload the files instead.")
        if not self.import_roots:
            raise Refused("Loading folders on the server is off: start the app with --import-root DIR to allow "
                          "folders under DIR. Or upload the files.")
        raw = Path(text.strip()).expanduser()
        if not raw.is_absolute():
            raw = self.import_roots[0] / raw
        folder = Path(os.path.realpath(raw))
        if not any(_inside(folder, root) for root in self.import_roots):
            raise Refused(f"{text.strip()} is outside the import root"
                          f"{'s' if len(self.import_roots) > 1 else ''} "
                          + ", ".join(str(r) for r in self.import_roots) + ".")
        if self.home is not None and (_inside(folder, self.home) or _inside(self.home, folder)):
            # A root above the home is refused as a whole rather than walked around: safer to explain.
            raise Refused(f"{text.strip()} holds the app's data home, which is never readable; pick a folder "
                          "outside it.")
        if not folder.is_dir():
            raise Refused(f"{text.strip()} is not a folder under the import root.")
        return folder

    @staticmethod
    def check_upload(path: str) -> Path:
        """An uploaded file's path, which must lie in Gradio's upload folder."""
        from gradio.utils import get_upload_folder

        upload = Path(os.path.realpath(get_upload_folder()))
        resolved = Path(os.path.realpath(path))
        if not _inside(resolved, upload) or resolved == upload:
            raise Refused("Only files uploaded through the page can be loaded.")
        return resolved


def is_exposed(host: str, share: bool, env=None) -> bool:
    """Whether strangers may reach the server: bound beyond loopback, shared, or on a Hugging Face Space."""
    from webapp.serve import is_loopback

    env = os.environ if env is None else env
    return share or bool(env.get("SPACE_ID")) or not is_loopback(host)
