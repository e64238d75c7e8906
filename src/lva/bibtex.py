"""A small BibTeX reader: each entry's surnames and year for an author-year citation, and its line in a
reference list, with LaTeX accents decoded. It serves the student copies (``lva.markup``), which
cite as the book does without Sphinx."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

_ACCENTS = {
    '"': "\u0308",
    "'": "\u0301",
    "`": "\u0300",
    "^": "\u0302",
    "~": "\u0303",
    "=": "\u0304",
    ".": "\u0307",
    "c": "\u0327",
    "u": "\u0306",
    "v": "\u030c",
    "H": "\u030b",
    "r": "\u030a",
    "k": "\u0328",
}
_LETTERS = {
    "o": "ø",
    "O": "Ø",
    "l": "ł",
    "L": "Ł",
    "ss": "ß",
    "ae": "æ",
    "AE": "Æ",
    "oe": "œ",
    "OE": "Œ",
    "aa": "å",
    "AA": "Å",
    "i": "ı",
}


def latex_text(text: str) -> str:
    """A BibTeX value as plain text: accents and letters decoded (``S{\\o}gaard`` -> Søgaard), braces gone."""

    def accent(m: re.Match[str]) -> str:
        return unicodedata.normalize("NFC", m["letter"] + _ACCENTS[m["accent"]])

    text = re.sub(r"\\(?P<accent>[\"'`^~=.])\s*\{?(?P<letter>[A-Za-z])\}?", accent, text)
    text = re.sub(
        r"\\(?P<accent>[cuvHrk])(?:\s*\{(?P<letter>[A-Za-z])\}| (?=[A-Za-z])(?P<l2>[A-Za-z]))",
        lambda m: unicodedata.normalize("NFC", (m["letter"] or m["l2"]) + _ACCENTS[m["accent"]]),
        text,
    )
    text = re.sub(r"\\(ss|ae|AE|oe|OE|aa|AA|o|O|l|L|i)(?![A-Za-z]) ?", lambda m: _LETTERS[m[1]], text)
    text = re.sub(r"\\([&%_$#])", r"\1", text)
    text = text.replace("---", "\u2014").replace("--", "\u2013").replace("~", " ")
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()


@dataclass(frozen=True)
class Reference:
    """One bibliography entry: its surnames for a citation, and its line in a reference list."""

    key: str
    surnames: tuple[str, ...]  # "others" (BibTeX's "and others") ends a truncated list
    year: str
    entry: str  # "Milano, Nicola and Nolfi, Stefano (2026). Title. *Venue*. <url>"

    def authors(self) -> str:
        """ "Milano and Nolfi", "Laskey et al.", as the book's author-year style writes them."""
        names = self.surnames
        if len(names) >= 3 or (len(names) == 2 and names[1] == "others"):
            return f"{names[0]} et al."
        return " and ".join(names) if names else self.key


def _split_top(text: str, separator: re.Pattern[str]) -> list[str]:
    """``text`` split at ``separator`` wherever it stands outside braces."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        depth += (ch == "{") - (ch == "}")
        m = separator.match(text, i) if depth == 0 else None
        if m and m.end() > i:
            parts.append(text[start:i])
            start = i = m.end()
            continue
        i += 1
    return [*parts, text[start:]]


def _bib_fields(text: str, i: int) -> tuple[dict[str, str], int]:
    """The ``name = value`` fields of an entry starting at ``text[i]``; returns them and the end."""
    fields: dict[str, str] = {}
    while i < len(text):
        m = re.compile(r"\s*,?\s*(?:(?P<name>[\w-]+)\s*=\s*|(?P<end>\}))").match(text, i)
        if not m:
            raise ValueError(f"malformed BibTeX near {text[i : i + 40]!r}")
        if m["end"]:
            return fields, m.end()
        i = m.end()
        if text[i] in '{"':
            close, depth, j = ("}" if text[i] == "{" else '"'), 0, i
            while True:
                if j >= len(text):
                    raise ValueError(f"unterminated BibTeX value {text[i : i + 40]!r}")
                ch = text[j]
                depth += (ch == "{") - (ch == "}")
                j += 1
                if (close == "}" and depth == 0) or (close == '"' and ch == '"' and depth == 0 and j - 1 > i):
                    break
            value = text[i + 1 : j - 1]
        else:
            word = re.compile(r"[^,}\s]+").match(text, i)
            value, j = (word[0], word.end()) if word else ("", i)
        fields[m["name"].lower()] = value
        i = j
    raise ValueError("unterminated BibTeX entry")


def _surname(name: str) -> str:
    """ "Milano, Nicola" -> "Milano"; "Nicola Milano" -> "Milano"; {Gemma Team} as written."""
    name = name.strip()
    if name.startswith("{") and name.endswith("}"):  # {Gemma Team}: an institution, as written
        return latex_text(name)
    parts = _split_top(name, re.compile(r"\s*,\s*"))
    return latex_text(parts[0] if len(parts) > 1 else name.split()[-1])


def _full_name(name: str) -> str:
    """ "Milano, Nicola" -> "Nicola Milano"; "Last, Jr, First" -> "First Last Jr"; {Gemma Team} as written."""
    parts = [p.strip() for p in _split_top(name, re.compile(r"\s*,\s*"))]
    if len(parts) == 3:
        parts = [parts[2], parts[0], parts[1]]
    elif len(parts) == 2:
        parts = [parts[1], parts[0]]
    return latex_text(" ".join(p for p in parts if p))


def _name_list(names: list[str], truncated: bool) -> str:
    """ "A, B and C", or "A, B et al." for a list that BibTeX's "and others" cut short."""
    if truncated:
        return ", ".join(names) + " et al."
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def read_bib(path: Path) -> dict[str, Reference]:
    """Every entry of a ``.bib`` file by key (a small BibTeX reader: fields in braces or quotes)."""
    text = path.read_text(encoding="utf-8")
    refs: dict[str, Reference] = {}
    for m in re.finditer(r"@(?P<kind>\w+)\s*\{\s*(?P<key>[^,\s]+)\s*,", text):
        if m["kind"].lower() in ("comment", "string", "preamble"):
            continue
        fields, _ = _bib_fields(text, m.end())
        authors = fields.get("author", fields.get("editor", ""))
        names = [n.strip() for n in _split_top(authors, re.compile(r"\s+and\s+"))]
        names = [n for n in names if n]
        surnames = tuple("others" if n == "others" else _surname(n) for n in names)
        who = _name_list([_full_name(n) for n in names if n != "others"], "others" in names)
        year = latex_text(fields.get("year", "n.d."))
        venue = next((fields[f] for f in ("journal", "booktitle", "publisher", "howpublished") if fields.get(f)), "")
        if not venue and fields.get("eprint"):
            venue = f"{fields.get('archiveprefix', 'arXiv')}:{fields['eprint']}"
        link = fields.get("url") or (f"https://doi.org/{fields['doi']}" if fields.get("doi") else "")
        entry = f"{who} ({year}). {latex_text(fields.get('title', m['key'])).rstrip('.')}."
        entry += f" *{latex_text(venue)}*." if venue else ""
        entry += f" <{link}>" if link else ""
        refs[m["key"]] = Reference(m["key"], surnames, year, entry)
    return refs
