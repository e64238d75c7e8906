"""Docstrings and comments in ``src/lva`` say what the code does and why: no processor names and no
measured timings, rates or before/after figures (those belong in ``benchmarks/README.md``, dated
and with the machine named).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lva"

PROCESSOR = re.compile(
    r"\b(AMD|EPYC|Ryzen|Threadripper|Intel|Xeon|AVX(-?512|2)?|AMX|Skylake|Sapphire Rapids"
    r"|Ice Lake|Cascade Lake|Zen ?\d|Neoverse|Graviton)\b"
)
# a number with a unit of time, memory or rate, or a speed-up factor: what a measurement reports
MEASURED = re.compile(
    r"(?<![\w.])\d+(?:[.,]\d+)? ?(?:s|ms|us|µs|min|mins|minutes|seconds|hours?|h"
    r"|[KMGT]i?B|[a-z]+/s|GFLOP/s|TFLOP/s|it/s)(?![\w/])"
    r"|(?<![\w.])\d+(?:\.\d+)? ?(?:x|×) (?:faster|slower|quicker|longer|shorter|less|more|the)\b"
    r"|(?<![\w.])\d+(?:\.\d+)? times (?:faster|slower|quicker|longer|shorter)\b"
    r"|\b(?:faster|slower|speed-?up)\b[^.]{0,40}?\d+(?:\.\d+)? ?(?:x|×|%)"
)

LITERAL = re.compile(r"``.+?``")
#: (file relative to src/lva, exact matched text) pairs that are definitions, not measurements
#: (none today: say a definition's size through its constant, e.g. ``STALE_AFTER_S``).
ALLOWED: set[tuple[str, str]] = set()


def prose(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every module, class and function docstring and every comment in ``path``."""
    text = path.read_text()
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                found.append((node.body[0].lineno, doc))
    block: list[tuple[int, str]] = []  # consecutive comment lines read as one text: a figure may wrap
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type != tokenize.COMMENT:
            continue
        if block and tok.start[0] != block[-1][0] + 1:
            found.append((block[0][0], " ".join(t for _, t in block)))
            block = []
        block.append((tok.start[0], tok.string.lstrip("#:").strip()))
    if block:
        found.append((block[0][0], " ".join(t for _, t in block)))
    return found


def offences(path: Path, root: Path = SRC) -> list[str]:
    """Every processor name and measured figure in ``path``'s docstrings and comments."""
    rel = path.relative_to(root).as_posix()
    out = []
    for line, text in prose(path):
        # a figure may wrap across docstring lines; ``literals`` are examples of what code reads or
        # writes (a processor name it parses, a duration it formats), not claims about the code
        flat = LITERAL.sub("``...``", " ".join(text.split()))
        for pattern in (PROCESSOR, MEASURED):
            out += [
                f"{rel}:{line}: {m.group(0)!r} in {flat[max(0, m.start() - 40) : m.end() + 40]!r}"
                for m in pattern.finditer(flat)
                if (rel, m.group(0)) not in ALLOWED
            ]
    return out


FILES = sorted(SRC.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(SRC).as_posix())
def test_docstrings_and_comments_name_no_processor_and_no_measurement(path: Path) -> None:
    assert not offences(path), "\n".join(offences(path))


@pytest.mark.parametrize(
    "text",
    [
        "Runs on the 2-core AMD EPYC.",
        "uses AVX-512 kernels",
        "an Intel Xeon",
        "took 3.2 s on two cores",
        "12 ms per batch",
        "peak 5.2 GB",
        "about 40 views/s",
        "reaches 80 GFLOP/s",
        "3x faster than before",
        "10x longer on 2 threads",
        "4 times faster",
        "faster by 2.5x",
        "train 10 min",
        "3,400 transitions/s",
    ],
)
def test_the_scanner_catches_measurements_and_processors(tmp_path: Path, text: str) -> None:
    module = tmp_path / "m.py"
    module.write_text(f'"""{text}"""\n\nx = 1  # {text}\n')
    assert {o.split(":")[1] for o in offences(module, tmp_path)} == {"1", "3"}  # the docstring and the comment


@pytest.mark.parametrize(
    "text",
    [
        "k neighbours of 15 items",
        "N x d matrix",
        "1,000 permutations",
        "float16 step",
        "the 5-fold split",
        "seeds 0 and 1",
        "2 times the learning rate",
    ],
)
def test_the_scanner_leaves_definitions_alone(text: str) -> None:
    assert not any(p.search(text) for p in (PROCESSOR, MEASURED))


def test_the_scanner_skips_literal_examples_but_not_the_prose_around_them(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        'def f():\n    """Formats ``2 min 26 s``; ``Intel(R) Xeon(R)`` -> ``Intel Xeon``."""\n\n\n'
        'def g():\n    """``eigh`` took 3 s on an EPYC."""\n'
    )
    assert [o.split(":")[1] for o in offences(module, tmp_path)] == ["6", "6"]  # '3 s' and 'EPYC'
