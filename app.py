"""`python app.py`: the web app (a Hugging Face Space runs this file) or a sub-command; see cli/entry.py."""

import sys

from cli.entry import main

if __name__ == "__main__":
    sys.exit(main())
