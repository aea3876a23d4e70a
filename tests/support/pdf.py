"""Writing small, valid PDF files by hand, for loader tests.

Each page shows its lines of text in Helvetica (a standard font every reader
knows, so nothing is embedded). The cross-reference table is computed from the
real byte offsets, so strict readers accept the file. ASCII text only.
"""

from __future__ import annotations

import zlib


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content(lines: list[str]) -> bytes:
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        ops.append(f"({_escape(line)}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("ascii")


def make_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with one page per entry of `pages`, each a list of text lines."""
    n = len(pages)
    font_id = 3
    first_page = 4  # page objects are 4.., their content streams follow them
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        (
            "<< /Type /Pages /Kids ["
            + " ".join(f"{first_page + i} 0 R" for i in range(n))
            + f"] /Count {n} >>"
        ).encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i in range(n):
        objects.append(
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {first_page + n + i} 0 R >>"
            ).encode()
        )
    for lines in pages:
        stream = _content(lines)
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    return _assemble(objects)


def make_shared_stream_pdf(pages: int, lines: int) -> bytes:
    """A small PDF whose `pages` all show one Flate stream of `lines` identical lines.

    Repeated lines compress about a thousand times, so a few KB of file make MBs of
    page content: the shape of a decompression bomb.
    """
    stream = zlib.compress(_content(["ab"] * lines), 9)
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % (5 + i) for i in range(pages)) + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    objects.extend([page] * pages)
    return _assemble(objects)


def _assemble(objects: list[bytes]) -> bytes:
    """Objects numbered from 1, with a cross-reference table of their real offsets."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
