"""The email HTML policy: what rich text may hold (nh3), and its plain-text alternative."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import nh3

#: nh3's default tags and attributes, plus inline styles (common in email) limited to
#: presentational properties: no positioning, no ``background-image`` (remote loads).
_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "*": {"style", "align"},
}
_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "line-height",
    "text-align",
    "text-decoration",
    "vertical-align",
    "margin",
    "margin-top",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "padding",
    "padding-top",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "border",
    "border-collapse",
    "width",
    "max-width",
    "height",
}


def sanitize(html: str) -> str:
    """HTML with scripts, event handlers and unsafe URLs removed (nh3, inline styles kept)."""
    return nh3.clean(html, attributes=_ATTRIBUTES, filter_style_properties=_STYLE_PROPERTIES)


_BREAK_AFTER = {"tr", "div", "dt", "dd"}
_PARAGRAPHS = {
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "dl",
    "table",
    "blockquote",
    "pre",
    "hr",
    "figure",
}


class _TextOf(HTMLParser):
    """Plain text of (sanitised) HTML: paragraphs and line breaks kept, links as ``text (url)``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._links: list[tuple[str | None, int]] = []
        self._lists: list[int] = []  # per open list: the next number, 0 for bullets
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in _PARAGRAPHS:
            self.out.append("\n\n")
        if tag in ("ul", "ol"):
            self._lists.append(1 if tag == "ol" else 0)
        elif tag == "li":
            self.out.append("\n" + self._bullet())
        elif tag == "a":
            self._links.append((found.get("href"), len(self.out)))
        elif tag == "img" and found.get("alt"):
            self.out.append(found["alt"] or "")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "pre":
            self._pre += 1
        if tag in ("br", "hr"):
            self.out.append("\n")

    def _bullet(self) -> str:
        if not self._lists or self._lists[-1] == 0:
            return "- "
        number = self._lists[-1]
        self._lists[-1] += 1
        return f"{number}. "

    def handle_endtag(self, tag: str) -> None:
        if tag in ("ul", "ol") and self._lists:
            self._lists.pop()
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self.out[start:]).strip()
            if href and urlsplit(href).scheme in ("http", "https", "mailto"):
                shown = href.removeprefix("mailto:")
                if shown != label:
                    self.out.append(f" ({shown})" if label else shown)
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _PARAGRAPHS:
            self.out.append("\n\n")
        elif tag in _BREAK_AFTER:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        self.out.append(data if self._pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A plain-text alternative of ``html`` (paragraphs, line breaks and link URLs kept)."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    lines = [line.strip(" \t") for line in "".join(parser.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
