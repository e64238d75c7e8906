"""MyST markup as plain Markdown, for chapters read outside the book (the student copies).

Jupyter renders CommonMark and ``$math$``, not MyST: roles (``{glue:text}`n```, ``{cite:p}`key```,
``{ref}`label```) and directives (```` ```{exercise} ````, ``:::{note}``) would show as raw text.
:func:`to_markdown` writes what they stand for: glued values, "(Author, year)" citations, chapter
and section names, bold titles and blockquotes. :func:`exercise_numbers` gives every exercise its
chapter-local number ("6.2"), the one student copies print and answer checks take.
"""

from __future__ import annotations

import re
from ast import literal_eval
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .bibtex import Reference, read_bib

#: What a glue role becomes when the chapter has not been executed (no ``book/chapters/NN_name.ipynb``)
#: or its executed copy lacks the value: the value's name in brackets, which :data:`GLUE_NOTE` explains
#: (a phrase in its place would read badly in sentences such as "the same [n_items] instructions").
GLUE_MISSING = "[{name}]"
GLUE_NOTE = (
    "> Values in square brackets, such as {example}, are computed when this chapter runs: "
    "this copy was written from a chapter the book build had not executed."
)

#: A role ``{name}`content```, or a span of inline code (left as it is).
_ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:.+-]*)\}`(?P<content>[^`]*)`|(?P<code>(?P<ticks>`+)[^`].*?(?P=ticks))")
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,})\{(?P<name>[^}\s]+)\}[ \t]*(?P<arg>.*?)[ \t]*$")
_CODE_FENCE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})")
_OPTION = re.compile(r"^[ \t]*:(?P<key>[\w-]+):[ \t]*(?P<value>.*?)[ \t]*$")
_TARGET = re.compile(r"^[ \t]*\((?P<label>[^()\s]+)\)=[ \t]*$")
_BLOCK_BREAK = re.compile(r"^[ \t]*\+\+\+.*$")
_COMMENT = re.compile(r"^%( .*)?$")
_MATH_LABEL = re.compile(r"^(?P<close>.*\$\$)[ \t]*\((?P<label>[^()\s]+)\)[ \t]*$")
_HEADING = re.compile(r"^(?P<hashes>#{1,6})[ \t]+(?P<title>.+?)[ \t]*#*[ \t]*$")
_TEXT_AND_TARGET = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)
_CHAPTER = re.compile(r"^(?P<number>\d+)_")
#: A heading's own number, if it has one: "3. The room", "4.1 Does it solve every episode?"
_SECTION_NUMBER = re.compile(r"^(?:(\d+(?:\.\d+)*)\.?\s+)?(.*)$", re.DOTALL)

_ADMONITIONS = {
    "note",
    "warning",
    "tip",
    "hint",
    "important",
    "caution",
    "attention",
    "danger",
    "error",
    "seealso",
    "admonition",
    "margin",
    "sidebar",
    "dropdown",
    "topic",
    "epigraph",
    "pull-quote",
    "card",
}
_DROPPED = {
    "solution",
    "solution-start",
    "solution-end",
    "exercise-end",
    "bibliography",
    "toctree",
    "tableofcontents",
    "contents",
    "glossary",
}
_CODE = {"code", "code-block", "code-cell", "sourcecode", "literalinclude"}
_VERBATIM = {"math", *_CODE}  # bodies kept as they are, never read as markup
_HTML_ROLES = {"sub": "sub", "sup": "sup", "kbd": "kbd"}
_CODE_ROLES = {
    "code",
    "literal",
    "samp",
    "file",
    "command",
    "program",
    "envvar",
    "option",
    "py:func",
    "py:class",
    "py:mod",
    "py:meth",
    "py:attr",
    "func",
    "class",
    "mod",
    "meth",
    "attr",
}


# --- what labels and documents point at --------------------------------------------------------------------------


@dataclass(frozen=True)
class Book:
    """What a chapter's markup can point at: ``targets`` (label -> "chapter 3, section 5 (Title)"),
    ``numbers`` (label -> "3.2" for exercises), ``docs`` (document stem -> its name) and ``references``."""

    targets: Mapping[str, str] = field(default_factory=dict)
    numbers: Mapping[str, str] = field(default_factory=dict)
    docs: Mapping[str, str] = field(default_factory=dict)
    references: Mapping[str, Reference] = field(default_factory=dict)


def chapter_number(path: Path) -> int | None:
    """The chapter number of ``NN_name.py`` (the int in its prefix); None for a page without one."""
    m = _CHAPTER.match(path.name)
    return int(m["number"]) if m else None


def markdown_of(path: Path) -> str:
    """The markdown cells of a chapter (``.py``, ``.ipynb``) or the text of a ``.md`` page, in order."""
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    import jupytext

    return "\n\n".join(c.source for c in jupytext.read(path).cells if c.cell_type == "markdown")


def _closing(fence: str) -> re.Pattern[str]:
    """The line that closes a fence: the same character, at least as many times, nothing else."""
    return re.compile(rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")


def _scan(text: str) -> Iterator[tuple[str, str, str]]:
    """(kind, name, value) events of MyST text in order, outside code: ``heading`` (level, title),
    ``target`` (label), ``directive`` (name, argument), ``option`` (key, value), ``math`` (label)."""
    lines, i, open_fences = text.split("\n"), 0, []
    while i < len(lines):
        line = lines[i]
        directive, code = _DIRECTIVE.match(line), _CODE_FENCE.match(line)
        if open_fences and open_fences[-1].fullmatch(line):
            open_fences.pop()
        elif directive:
            yield "directive", directive["name"], directive["arg"]
            i += 1
            while i < len(lines) and (option := _OPTION.match(lines[i])):
                yield "option", option["key"], option["value"]
                i += 1
            if directive["name"] not in _VERBATIM:
                open_fences.append(_closing(directive["fence"]))
                continue  # the body is scanned as text: it may hold nested directives
            while i < len(lines) and not _closing(directive["fence"]).fullmatch(lines[i]):
                i += 1
        elif code:
            i += 1
            while i < len(lines) and not _closing(code["fence"]).fullmatch(lines[i]):
                i += 1
        elif target := _TARGET.match(line):
            yield "target", target["label"], ""
        elif heading := _HEADING.match(line):
            yield "heading", str(len(heading["hashes"])), heading["title"]
        elif math := _MATH_LABEL.match(line):
            yield "math", math["label"], ""
        i += 1


def _exercise_events(text: str) -> Iterator[tuple[int, str]]:
    """(1-based order, label or "") of every exercise in MyST text."""
    n, pending = 0, False
    for kind, name, value in _scan(text):
        if pending and kind == "option" and name == "label":
            yield n, value
            pending = False
            continue
        if pending and kind != "option":
            yield n, ""
            pending = False
        if kind == "directive" and name in ("exercise", "exercise-start"):
            n, pending = n + 1, True
    if pending:
        yield n, ""


def exercise_numbers(path: Path) -> dict[str, str]:
    """``{label: "C.N"}`` for every labelled exercise of chapter ``NN_name`` (a ``.py`` or ``.ipynb``):
    C is the chapter number, N the exercise's order in the chapter, 1-based. Student copies print
    these numbers and answer checks take them (``check("6.2", answer)``)."""
    chapter = chapter_number(path)
    if chapter is None:
        raise ValueError(f"{path.name}: a chapter's file name starts with its number, NN_name")
    return {label: f"{chapter}.{n}" for n, label in _exercise_events(markdown_of(path)) if label}


def book_index(documents: Iterable[Path], bib: Path | None = None) -> Book:
    """Where every label of ``documents`` (chapters ``NN_name.py``, pages ``name.md``) points, and the
    bibliography ``bib``: what :func:`to_markdown` writes for a cross-reference or a citation."""
    targets, numbers, docs = {}, {}, {}
    for path in documents:
        chapter, text = chapter_number(path), markdown_of(path)
        title, where = path.stem, ""
        pending: list[str] = []
        directive, exercises = "", {label: n for n, label in _exercise_events(text) if label}
        for kind, name, value in _scan(text):
            if kind == "heading":
                number, heading = _SECTION_NUMBER.match(_ROLE.sub(lambda m: m["content"] or m[0], value)).groups()
                if name == "1" and not docs.get(path.stem):
                    title = heading
                    docs[path.stem] = f"chapter {chapter} ({title})" if chapter else f"the page \u201c{title}\u201d"
                    where = docs[path.stem]
                elif name != "1":
                    where = (
                        f"chapter {chapter}, section {number} ({heading})"
                        if chapter and number
                        else f"chapter {chapter}, section \u201c{heading}\u201d"
                        if chapter
                        else f"the section \u201c{heading}\u201d of the page \u201c{title}\u201d"
                    )
                targets.update(dict.fromkeys(pending, where))
                pending = []
            elif kind == "target":
                pending.append(name)
            elif kind == "directive":
                directive = name
            elif kind == "option" and name == "label":
                if directive in ("exercise", "exercise-start") and chapter:
                    numbers[value] = f"{chapter}.{exercises[value]}"
                    targets[value] = f"Exercise {numbers[value]}"
                else:
                    what = {"figure": "the figure in ", "math": "the equation in ", "table": "the table in "}
                    targets[value] = what.get(directive, "") + (where or path.stem)
            elif kind == "math":
                targets[name] = f"the equation in {where or path.stem}"
        docs.setdefault(path.stem, f"chapter {chapter}" if chapter else f"the page \u201c{title}\u201d")
    return Book(targets, numbers, docs, read_bib(bib) if bib and bib.exists() else {})


# --- the conversion -----------------------------------------------------------------------------------------------


@dataclass
class Context:
    """One chapter's conversion: its number, what it can point at, its glued values
    (name -> {mime type: data}; None when it was never executed), and what was cited and replaced."""

    chapter: int | None = None
    book: Book = field(default_factory=Book)
    glue: Mapping[str, Mapping[str, str]] | None = None
    cited: list[str] = field(default_factory=list)
    replaced: Counter[str] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)  # glued values it did not find
    exercises: int = 0


def format_plain_text(text: str, spec: str) -> str:
    """A glued ``text/plain`` value formatted as myst-nb's ``{glue:text}`name:spec``` does."""
    try:
        value = literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


def _glue(name: str, content: str, ctx: Context) -> str:
    key, spec = content, ""
    if name == "glue:text" and ":" in content.split("::")[-1]:
        key, spec = content.rsplit(":", 1)
    key = key.split("::")[-1]  # another document's value: looked up in this chapter's, else the phrase
    data = (ctx.glue or {}).get(key, {})
    if name in ("glue:md", "glue", "glue:any") and "text/markdown" in data:
        return data["text/markdown"].strip()
    if "text/plain" not in data:
        ctx.missing.append(key)
        return GLUE_MISSING.format(name=key)
    return format_plain_text(data["text/plain"], spec) if name != "glue:math" else f"${data['text/plain']}$"


def _cite(name: str, content: str, ctx: Context) -> str:
    refs = []
    for key in (k.strip() for k in content.split(",") if k.strip()):
        if key not in ctx.book.references:
            known = ", ".join(sorted(ctx.book.references)) or "none: no bibliography was read"
            raise ValueError(f"unknown citation key {key!r}; known keys: {known}")
        refs.append(ctx.book.references[key])
        if key not in ctx.cited:
            ctx.cited.append(key)
    style = name.split(":", 1)[1] if ":" in name else "p"
    if style in ("t", "ts"):
        return ", ".join(f"{r.authors()} ({r.year})" for r in refs)
    if style in ("author", "authors", "authorpar"):
        return ", ".join(r.authors() for r in refs)
    if style in ("year", "yearpar"):
        years = ", ".join(r.year for r in refs)
        return f"({years})" if style == "yearpar" else years
    inner = "; ".join(f"{r.authors()}, {r.year}" for r in refs)
    return inner if style in ("alp", "als", "label") else f"({inner})"


def _reference(name: str, content: str, ctx: Context) -> str:
    m = _TEXT_AND_TARGET.match(content)
    text, label = (m["text"], m["target"]) if m and m["text"] else ("", content)
    label = label.strip()
    if name == "doc":
        stem = Path(label.split("#")[0]).stem
        return text or ctx.book.docs.get(stem, stem)
    where = ctx.book.targets.get(label, label)
    if text and "%s" in text:
        return text.replace("%s", ctx.book.numbers.get(label, where))
    return text or where


def _role(name: str, content: str, ctx: Context) -> str:
    """The plain Markdown for one role."""
    if name.startswith("glue"):
        return _glue(name, content, ctx)
    if name == "cite" or name.startswith("cite:"):
        return _cite(name, content, ctx)
    if name in ("ref", "numref", "doc", "eq", "any", "std:ref", "std:doc", "prf:ref"):
        return _reference(name, content, ctx)
    if name == "math":
        return f"${content}$"
    if name in _HTML_ROLES:
        return f"<{_HTML_ROLES[name]}>{content}</{_HTML_ROLES[name]}>"
    if name in _CODE_ROLES:
        return f"`{content}`"
    m = _TEXT_AND_TARGET.match(content)  # term, download, abbr, index, ...: the text a reader sees
    text = m["text"] if m and m["text"] else content
    return re.sub(r"\s*\([^()]*\)$", "", text) if name == "abbr" else text


def _roles(text: str, ctx: Context) -> str:
    def replace(m: re.Match[str]) -> str:
        if m["code"]:
            return m["code"]
        ctx.replaced["roles"] += 1
        return _role(m["name"], m["content"], ctx)

    return _ROLE.sub(replace, text)


def _quote(title: str, body: str) -> str:
    lines = [f"**{title}**", "", *body.split("\n")] if title else body.split("\n")
    return "\n".join(f"> {line}".rstrip() for line in lines)


def _directive(name: str, arg: str, options: dict[str, str], body: str, ctx: Context) -> str:
    """The plain Markdown for one directive, its body already converted."""
    if name in _DROPPED:
        return ""
    if name in ("exercise", "exercise-start"):
        ctx.exercises += 1
        number = f"{ctx.chapter}.{ctx.exercises}" if ctx.chapter is not None else str(ctx.exercises)
        head = f"**Exercise {number}: {arg}**" if arg else f"**Exercise {number}**"
        return f"{head}\n\n{body}".strip()
    if name in _ADMONITIONS:
        title = (
            arg
            if name in ("admonition", "dropdown", "topic", "sidebar", "card")
            else ("See also" if name == "seealso" else name.capitalize()) + (f": {arg}" if arg else "")
        )
        return _quote(title, body)
    if name in ("figure", "image"):
        alt = options.get("alt", "")
        return f"![{alt}]({arg})" + (f"\n\n*{body}*" if body else "")
    if name == "math":
        return f"$$\n{body}\n$$"
    if name in _CODE:
        return f"```{options.get('language', arg)}\n{body}\n```"
    if name.startswith("glue"):
        key = arg.split("::")[-1]
        data = (ctx.glue or {}).get(key, {})
        plain = format_plain_text(data["text/plain"], "") if "text/plain" in data and name != "glue:figure" else None
        shown = data.get("text/markdown") or plain
        what = "figure" if name == "glue:figure" else "output"
        shown = shown or f"*(the {what} `{key}`, shown when the chapter runs)*"
        return shown + (f"\n\n*{body}*" if body else "")
    return (f"**{arg}**\n\n{body}" if arg else body).strip()


def _blocks(text: str, ctx: Context) -> str:
    """Directives converted (nested ones first), code blocks kept, everything else through :func:`_lines`."""
    lines, out, prose, i = text.split("\n"), [], [], 0

    def flush() -> None:
        out.append(_lines("\n".join(prose), ctx))
        prose.clear()

    while i < len(lines):
        line = lines[i]
        directive, code = _DIRECTIVE.match(line), _CODE_FENCE.match(line)
        if not directive and not code:
            prose.append(line)
            i += 1
            continue
        flush()
        fence = (directive or code)["fence"]  # type: ignore[index]
        closing = _closing(fence)
        j = i + 1
        while j < len(lines) and not closing.fullmatch(lines[j]):
            j += 1
        if not directive:
            out.append("\n".join(lines[i : j + 1]))
        else:
            k, options = i + 1, {}
            while k < j and (option := _OPTION.match(lines[k])):
                options[option["key"]] = option["value"]
                k += 1
            if k < j and lines[k].strip() == "---":  # options as a YAML block
                end = next((n for n in range(k + 1, j) if lines[n].strip() == "---"), k)
                k = end + 1
            ctx.replaced["directives"] += 1
            body = "\n".join(lines[k:j]).strip("\n")
            if directive["name"] not in _VERBATIM:  # type: ignore[index]
                body = _blocks(body, ctx).strip()
            arg = _roles(directive["arg"], ctx)  # type: ignore[index]
            out.append(_directive(directive["name"], arg, options, body, ctx))  # type: ignore[index]
        i = j + 1
    flush()
    return "\n".join(out)


def _lines(text: str, ctx: Context) -> str:
    """Prose: targets, block breaks and comments dropped, equation labels cut, roles replaced."""
    kept = []
    for line in text.split("\n"):
        if _TARGET.match(line) or _BLOCK_BREAK.match(line) or _COMMENT.match(line):
            ctx.replaced["markers"] += 1
            continue
        if m := _MATH_LABEL.match(line):
            line = m["close"]
        kept.append(line)
    return _roles("\n".join(kept), ctx)


def to_markdown(text: str, ctx: Context | None = None) -> str:
    """MyST ``text`` as plain Markdown (see the module's docstring). ``ctx`` carries the chapter's
    number, what its labels point at, its glued values, and collects what it cited and replaced."""
    out = _blocks(text, ctx if ctx is not None else Context())
    return re.sub(r"\n{3,}", "\n\n", out).strip()


def strip_solutions(text: str) -> str:
    """MyST ``text`` without its solution directives (``solution``, ``solution-start``, ``solution-end``)."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        directive = _DIRECTIVE.match(lines[i])
        if directive and directive["name"] in ("solution", "solution-start", "solution-end"):
            closing = _closing(directive["fence"])
            i += 1
            while i < len(lines) and not closing.fullmatch(lines[i]):
                i += 1
        else:
            out.append(lines[i])
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def references_markdown(ctx: Context) -> str:
    """A "References" section listing the works ``ctx`` cited (empty when it cited none)."""
    refs = sorted((ctx.book.references[k] for k in ctx.cited), key=lambda r: (r.surnames[:1], r.year))
    return "## References\n\n" + "\n".join(f"- {r.entry}" for r in refs) if refs else ""
