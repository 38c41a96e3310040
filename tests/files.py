"""Real files made in the tests: PDF (fpdf2, with an outline), DOCX (python-docx), WAV, PNG,
and the hostile ones (a PDF stream bomb, a ZIP bomb dressed as DOCX)."""

from __future__ import annotations

import io
import struct
import wave
import zipfile
import zlib
from collections.abc import Sequence

import docx
from fpdf import FPDF

Section = tuple[str, Sequence[str]]

MANUAL: list[Section] = [
    (
        "Installation",
        [
            "Unpack the espresso machine and place it on a level counter near a grounded "
            "socket. Rinse the water tank before the first use.",
            "Fill the tank with filtered water up to the MAX line and switch the machine on.",
        ],
    ),
    (
        "Descaling",
        [
            "Limescale builds up every few weeks in hard-water areas. Dissolve one sachet of "
            "citric acid descaler in a litre of water and run it through the group head.",
            "Flush the boiler twice with clean water after descaling so no acid taste remains.",
        ],
    ),
    (
        "Warranty",
        [
            "The warranty covers manufacturing defects for thirty-six months from purchase. "
            "Keep the receipt: the serial number and date of sale are needed for a claim.",
        ],
    ),
]


def make_pdf(sections: Sequence[Section] = MANUAL, *, title: str = "Espresso manual") -> bytes:
    """A text PDF, one page per section, with an outline entry for each section."""
    pdf = FPDF()
    pdf.set_title(title)
    for heading, paragraphs in sections:
        pdf.add_page()
        pdf.start_section(heading)
        pdf.set_font("Helvetica", "B", 14)
        pdf.cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 5, paragraph)
            pdf.ln(4)
    return bytes(pdf.output())


def make_pages(pages: int, words_per_page: int = 300) -> bytes:
    """A long text PDF (benchmarks, page limits): numbered sections of varied sentences."""
    vocabulary = (
        "memory agent server vector recall graph embedding document chunk section heading "
        "paragraph storage encryption retrieval index query latency throughput budget"
    ).split()
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for page in range(pages):
        pdf.add_page()
        pdf.start_section(f"Part {page + 1}")
        words = [
            vocabulary[(page * 7 + i * 3 + i // 5) % len(vocabulary)] for i in range(words_per_page)
        ]
        sentences = [
            " ".join(words[i : i + 12]).capitalize() + "." for i in range(0, len(words), 12)
        ]
        pdf.multi_cell(0, 4, " ".join(sentences))
    return bytes(pdf.output())


def make_docx(sections: Sequence[Section] = MANUAL, *, title: str = "Espresso manual") -> bytes:
    """A DOCX with a Title paragraph, Heading 1 sections and a table."""
    document = docx.Document()
    document.add_heading(title, level=0)
    for heading, paragraphs in sections:
        document.add_heading(heading, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Model"
    table.cell(0, 1).text = "Pressure"
    table.cell(1, 0).text = "EX-9"
    table.cell(1, 1).text = "15 bar"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_markdown(sections: Sequence[Section] = MANUAL, *, title: str = "Espresso manual") -> str:
    lines = [f"# {title}", ""]
    for heading, paragraphs in sections:
        lines += [f"## {heading}", ""]
        for paragraph in paragraphs:
            lines += [paragraph, ""]
    return "\n".join(lines)


def make_html(sections: Sequence[Section] = MANUAL, *, title: str = "Espresso manual") -> str:
    body = "".join(
        f"<h2>{heading}</h2>" + "".join(f"<p>{p}</p>" for p in paragraphs)
        for heading, paragraphs in sections
    )
    return (
        f"<!doctype html><html><head><title>{title}</title><style>p{{}}</style></head>"
        f"<body><h1>{title}</h1>{body}<script>alert(1)</script></body></html>"
    )


def make_wav(seconds: float = 0.2, rate: int = 16_000) -> bytes:
    """A silent mono 16-bit WAV."""
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(b"\x00\x00" * int(seconds * rate))
    return out.getvalue()


def make_png(width: int = 4, height: int = 4) -> bytes:
    """A small grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def make_pdf_bomb(inflated: int = 40_000_000) -> bytes:
    """A one-page PDF whose content stream inflates ~1000:1 to ``inflated`` bytes."""
    stream = zlib.compress(b" " * inflated, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def make_zip_bomb(inflated: int = 200_000_000) -> bytes:
    """A ZIP named like a DOCX whose document part inflates ~1000:1."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            block = b"\x00" * (1 << 20)
            for _ in range(inflated // len(block)):
                part.write(block)
    return out.getvalue()
