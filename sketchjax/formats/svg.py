"""SVG sketches: read ``<path>``/``<polyline>``/``<polygon>``/``<line>``, write polylines.

Reading: every subpath (each ``M``/``m`` of a ``<path>``, each polyline, polygon or line) is a
stroke.  Straight commands give their end points; Bézier curves (``C S Q T``) and elliptical
arcs (``A``) are sampled at ``curve_samples`` points each (uniform in the curve parameter,
end point included, start point being the previous point).  ``Z`` closes the subpath by
returning to its start point.  ``transform`` attributes (``matrix``, ``translate``, ``scale``,
``rotate``, ``skewX``, ``skewY``) of the element and of all its ancestors are applied, so the
result is in the root's user units.  The root ``viewBox``/``width``/``height`` are *not*
applied (TU-Berlin files have ``viewBox="0 0 800 800"`` and no size, i.e. user units = pixels),
nor are a nested ``<svg>``'s ``x``/``y``/``viewBox`` (its content is read as a group's).
Of a ``<switch>`` only the first child without conditional attributes (``systemLanguage``,
``requiredFeatures``, ``requiredExtensions``; they are not evaluated) is read — the usual
fallback.  Only ``<svg>``, ``<g>``, ``<a>`` and ``<switch>`` are descended into, so the content of
``<defs>``, ``<clipPath>``, ``<mask>``, ``<marker>``, ``<pattern>``, ``<symbol>`` is ignored;
other visible shapes (``rect``, ``circle``, ``ellipse``, ``text``, ``image``, ``use``) are not
read as strokes and are skipped with a warning.

Writing: one ``<polyline>`` per stroke, coordinates printed with the shortest decimal that
reads back to the same float32, so ``read_svg(write_svg(s))`` returns ``s`` exactly (apart from
``time``, which SVG cannot hold).
"""
from __future__ import annotations

import math
import os
import re
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Optional, Sequence, Union

import numpy as np

from sketchjax._checks import check_positive_int, is_real
from sketchjax.formats._io import PathLike, atomic_write
from sketchjax.formats.strokes import from_strokes, to_strokes
from sketchjax.sketch import Sketch, SketchError

__all__ = ["read_svg", "write_svg"]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_SEPARATORS = re.compile(r"[\s,]*")
_PATH_COMMANDS = "MmLlHhVvCcSsQqTtAaZz"
_CONTAINERS = {"svg", "g", "a", "switch"}
_CONDITIONS = {"systemLanguage", "requiredFeatures", "requiredExtensions"}
_DESCRIPTIVE = {"title", "desc", "metadata"}  # never the child a <switch> renders
# Visible SVG content that is not read as strokes; skipping it deserves a warning.  Anything
# else (defs, clipPath, mask, marker, pattern, symbol, title, metadata, editor elements such
# as sodipodi:namedview, ...) draws nothing by itself and is skipped silently.
_UNSUPPORTED_VISIBLE = {"rect", "circle", "ellipse", "text", "image", "use", "foreignObject"}


# --- transforms -------------------------------------------------------------------------------


def _parse_transform(text: str, where: str) -> np.ndarray:
    """3x3 affine matrix of an SVG ``transform`` list (applied right to left to points)."""
    matrix = np.eye(3)
    text = text.strip()
    pos = 0
    item = re.compile(r"([A-Za-z]+)\s*\(([^)]*)\)[\s,]*")
    while pos < len(text):
        m = item.match(text, pos)
        if not m or _NUMBER.sub("", m.group(2)).strip(" \t\r\n,"):
            raise SketchError(f"{where}: bad transform {text!r} at character {pos}")
        args = [float(a) for a in _NUMBER.findall(m.group(2))]
        if not all(math.isfinite(a) for a in args):
            raise SketchError(f"{where}: transform {m.group(0).strip()!r}: a number out of range")
        with np.errstate(over="ignore", invalid="ignore"):  # an overflowing product is reported below
            matrix = matrix @ _transform_matrix(m.group(1), args, f"{where}: transform {m.group(0).strip()!r}")
        if not np.all(np.isfinite(matrix)):
            raise SketchError(f"{where}: transform {text!r} overflows (its product is not finite)")
        pos = m.end()
    return matrix


def _transform_matrix(op: str, a: list, where: str) -> np.ndarray:
    arity = {"matrix": (6,), "translate": (1, 2), "scale": (1, 2), "rotate": (1, 3), "skewX": (1,), "skewY": (1,)}
    if op not in arity:
        raise SketchError(f"{where}: unknown transform function {op!r}")
    if len(a) not in arity[op]:
        raise SketchError(f"{where}: {op} takes {' or '.join(map(str, arity[op]))} numbers, got {len(a)}")
    if op == "matrix":
        return np.array([[a[0], a[2], a[4]], [a[1], a[3], a[5]], [0, 0, 1]], float)
    if op == "translate":
        return np.array([[1, 0, a[0]], [0, 1, a[1] if len(a) > 1 else 0.0], [0, 0, 1]], float)
    if op == "scale":
        return np.diag([a[0], a[1] if len(a) > 1 else a[0], 1.0])
    if op in ("skewX", "skewY"):
        t = math.tan(math.radians(a[0]))
        return np.array([[1, t, 0], [0, 1, 0], [0, 0, 1]] if op == "skewX" else [[1, 0, 0], [t, 1, 0], [0, 0, 1]], float)
    c, s = math.cos(math.radians(a[0])), math.sin(math.radians(a[0]))
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    if len(a) == 3:  # rotate(angle, cx, cy) = translate(cx, cy) rotate(angle) translate(-cx, -cy)
        cx, cy = a[1], a[2]
        return _transform_matrix("translate", [cx, cy], where) @ rotation @ _transform_matrix("translate", [-cx, -cy], where)
    return rotation


# --- path data --------------------------------------------------------------------------------


class _PathData:
    """Cursor over a path's ``d`` string (arc flags may be written without separators)."""

    def __init__(self, text: str, where: str):
        self.text, self.where, self.pos = text, where, 0

    def error(self, problem: str) -> SketchError:
        snippet = self.text[max(0, self.pos - 10) : self.pos + 10]
        return SketchError(f"{self.where}: bad path data at character {self.pos} (near {snippet!r}): {problem}")

    def _skip(self) -> None:
        self.pos = _SEPARATORS.match(self.text, self.pos).end()

    def command(self) -> Optional[str]:
        """Next command letter (consumed), or None at the end."""
        self._skip()
        if self.pos >= len(self.text):
            return None
        c = self.text[self.pos]
        if c not in _PATH_COMMANDS:
            raise self.error(f"unexpected character {c!r} (expected a number or a command letter)")
        self.pos += 1
        return c

    def has_number(self) -> bool:
        """Whether more parameters follow (else a command letter, junk or the end)."""
        self._skip()
        return self.pos < len(self.text) and self.text[self.pos] in "0123456789.+-"

    def number(self) -> float:
        self._skip()
        m = _NUMBER.match(self.text, self.pos)
        if not m:
            raise self.error("expected a number")
        value = float(m.group(0))
        if not math.isfinite(value):
            raise self.error(f"number {m.group(0)!r} out of range")
        self.pos = m.end()
        return value

    def numbers(self, n: int) -> list:
        return [self.number() for _ in range(n)]

    def flag(self) -> bool:
        self._skip()
        if self.pos >= len(self.text) or self.text[self.pos] not in "01":
            raise self.error("expected an arc flag 0 or 1")
        self.pos += 1
        return self.text[self.pos - 1] == "1"


def _bezier(control: np.ndarray, samples: int) -> np.ndarray:
    """Points at ``t = 1/samples .. 1`` of a Bézier curve with control points ``[k, 2]`` (Bernstein form)."""
    t = np.arange(1, samples + 1)[:, None] / samples
    k = len(control) - 1
    weights = [math.comb(k, i) * t**i * (1 - t) ** (k - i) for i in range(k + 1)]
    return sum(w * p for w, p in zip(weights, control))


def _arc(p0, rx, ry, phi_deg, large_arc, sweep, p1, samples: int) -> np.ndarray:
    """Points of an SVG elliptical arc from ``p0`` to ``p1`` (SVG 1.1 implementation notes F.6.5)."""
    if np.array_equal(p0, p1):
        # F.6.2: identical end points omit the arc.  Exact equality on purpose: end points a
        # hair apart (``a 50 50 0 1 0 0.003 0``) are a nearly full ellipse, not a dot.
        return np.asarray([p1], float)
    if rx == 0 or ry == 0:
        return np.asarray([p1], float)  # F.6.2: a zero radius makes the arc a straight line
    rx, ry = abs(rx), abs(ry)
    phi = math.radians(phi_deg)
    cos_phi, sin_phi = math.cos(phi), math.sin(phi)
    dx, dy = (p0[0] - p1[0]) / 2, (p0[1] - p1[1]) / 2
    x1p, y1p = cos_phi * dx + sin_phi * dy, -sin_phi * dx + cos_phi * dy
    # Radii too small to reach the end point are scaled up, keeping their ratio (F.6.6: by sqrt(L),
    # L = (x1'/rx)^2 + (y1'/ry)^2).  Computed from the ratio (ax, ay) = (rx, ry) / max(rx, ry) and
    # the size ``reach`` at which that ellipse just reaches the end points (r sqrt(L) = reach), so
    # that tiny radii (1e-300) are scaled up like any others instead of overflowing L.
    r = max(rx, ry)
    ax, ay = rx / r, ry / r
    if ax == 0 or ay == 0:  # a radius ratio below the floating-point range: a flat ellipse, i.e. a line
        return np.asarray([p1], float)
    reach = math.hypot(x1p / ax, y1p / ay)
    if reach > r:
        rx, ry = ax * reach, ay * reach
    num = rx**2 * ry**2 - rx**2 * y1p**2 - ry**2 * x1p**2
    den = rx**2 * y1p**2 + ry**2 * x1p**2
    if den == 0:  # end points so close that the squares underflow: the ellipse is unresolvable
        return np.asarray([p1], float)
    if not math.isfinite(num) or not math.isfinite(den):
        raise OverflowError("arc radii out of the floating-point range")
    coef = math.sqrt(max(num, 0.0) / den) * (-1 if large_arc == sweep else 1)
    cxp, cyp = coef * rx * y1p / ry, -coef * ry * x1p / rx
    cx = cos_phi * cxp - sin_phi * cyp + (p0[0] + p1[0]) / 2
    cy = sin_phi * cxp + cos_phi * cyp + (p0[1] + p1[1]) / 2
    theta1 = math.atan2((y1p - cyp) / ry, (x1p - cxp) / rx)
    theta2 = math.atan2((-y1p - cyp) / ry, (-x1p - cxp) / rx)
    delta = theta2 - theta1
    if sweep and delta < 0:
        delta += 2 * math.pi
    elif not sweep and delta > 0:
        delta -= 2 * math.pi
    theta = theta1 + delta * np.arange(1, samples + 1) / samples
    x = cx + rx * np.cos(theta) * cos_phi - ry * np.sin(theta) * sin_phi
    y = cy + rx * np.cos(theta) * sin_phi + ry * np.sin(theta) * cos_phi
    out = np.column_stack([x, y])
    out[-1] = p1  # land exactly on the end point
    return out


def _path_subpaths(d: str, where: str, samples: int) -> list:
    """Subpaths of SVG path data as ``[n, 2]`` arrays (untransformed user units)."""
    data = _PathData(d, where)
    subpaths: list = []
    points: list = []  # the open subpath
    current = start = np.zeros(2)
    prev_cmd, prev_ctrl = "", None  # S/T reflect the previous curve's last control point

    def add(new_points) -> None:
        nonlocal current
        if not points:  # drawing after Z (or after a lone M) continues from the current point
            points.append(current.copy())
        points.extend(np.atleast_2d(new_points))
        current = points[-1].copy()

    def close_subpath() -> None:
        nonlocal points
        if points:
            subpaths.append(np.asarray(points))
        points = []

    cmd = data.command()
    if cmd is None:
        return []
    if cmd not in "Mm":
        raise data.error("path data must start with a moveto (M or m)")
    while cmd is not None:
        rel = cmd.islower()
        upper = cmd.upper()
        first = True
        while True:
            origin = current.copy() if rel else np.zeros(2)  # relative to this group's start
            if upper == "Z":
                if points and not np.array_equal(points[-1], start):
                    points.append(start.copy())
                close_subpath()
                current = start.copy()
            elif upper == "M":
                p = origin + data.numbers(2)
                if first:  # a new subpath
                    close_subpath()
                    start = p.copy()
                    points.append(p)
                    current = p.copy()
                else:  # extra coordinate pairs after a moveto are lineto's
                    add(p)
            elif upper == "L":
                add(origin + data.numbers(2))
            elif upper == "H":
                add(np.array([data.number() + origin[0], current[1]]))
            elif upper == "V":
                add(np.array([current[0], data.number() + origin[1]]))
            elif upper in "CS":
                if upper == "C":
                    c1 = origin + data.numbers(2)
                else:  # reflect the previous cubic's second control point
                    c1 = 2 * current - prev_ctrl if prev_cmd in ("C", "S") else current.copy()
                c2 = origin + data.numbers(2)
                end = origin + data.numbers(2)
                p0 = current.copy()
                add(_bezier(np.stack([p0, c1, c2, end]), samples))
                prev_ctrl = c2
            elif upper in "QT":
                if upper == "Q":
                    c1 = origin + data.numbers(2)
                else:  # reflect the previous quadratic's control point
                    c1 = 2 * current - prev_ctrl if prev_cmd in ("Q", "T") else current.copy()
                end = origin + data.numbers(2)
                p0 = current.copy()
                add(_bezier(np.stack([p0, c1, end]), samples))
                prev_ctrl = c1
            elif upper == "A":
                rx, ry, angle = data.numbers(3)
                large_arc, sweep = data.flag(), data.flag()
                end = origin + data.numbers(2)
                try:
                    add(_arc(current.copy(), rx, ry, angle, large_arc, sweep, end, samples))
                except OverflowError:  # radii whose squares exceed float range
                    raise data.error(f"arc radii {rx:g}, {ry:g} out of the floating-point range") from None
            prev_cmd = upper
            first = False
            # Parameters may repeat without repeating the letter (Z takes none).
            if upper == "Z" or not data.has_number():
                break
        cmd = data.command()
    close_subpath()
    return subpaths


# --- elements ---------------------------------------------------------------------------------


def _coordinate_list(text: str, where: str) -> np.ndarray:
    """``points`` attribute of polyline/polygon as ``[n, 2]``."""
    values = _NUMBER.findall(text)
    if _NUMBER.sub("", text).strip(" \t\r\n,"):
        raise SketchError(f"{where}: bad points attribute {text[:60]!r} (non-numeric characters)")
    if len(values) % 2:
        raise SketchError(f"{where}: points attribute has an odd number ({len(values)}) of coordinates")
    return np.asarray(values, float).reshape(-1, 2)


def _length(element: ET.Element, attribute: str, where: str) -> float:
    text = element.get(attribute, "0").strip()
    m = re.fullmatch(rf"({_NUMBER.pattern})(px)?", text)
    if not m:
        raise SketchError(f"{where}: unsupported {attribute}={text!r} (plain numbers or px only)")
    return float(m.group(1))


def _local_name(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _element_strokes(element: ET.Element, kind: str, where: str, samples: int) -> list:
    if kind == "path":
        return _path_subpaths(element.get("d", ""), where, samples)
    if kind == "line":
        return [np.array([[_length(element, "x1", where), _length(element, "y1", where)],
                          [_length(element, "x2", where), _length(element, "y2", where)]])]
    points = _coordinate_list(element.get("points", ""), where)
    if len(points) == 0:
        return []
    if kind == "polygon" and not np.array_equal(points[0], points[-1]):
        points = np.vstack([points, points[:1]])  # a polygon is a closed polyline
    return [points]


def _looks_like_markup(source) -> bool:
    head = source[:4096].lstrip()
    if isinstance(head, bytes):
        head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
        return head.startswith(b"<")
    return head.removeprefix("\ufeff").lstrip().startswith("<")


def read_svg(
    source: Union[str, bytes, PathLike], *, curve_samples: int = 8, single_point: str = "error"
) -> Sketch:
    """Read an SVG drawing as a sketch (one stroke per subpath / polyline / polygon / line).

    Args:
      source: a file path, or the SVG document itself as a string or bytes (starting with
        ``<``, after white space or a byte-order mark; e.g. ``requests.get(url).content``).
      curve_samples: points per Bézier curve or arc segment (>= 1), end point included.
      single_point: policy for one-point strokes, e.g. a bare ``M x y`` (``"error"``,
        ``"keep"``, ``"drop"``, ``"dot"``).

    Returns:
      Unpadded sketch, float32 coordinates in the root element's user units (see module
      docstring), strokes in document order, no ``time``.

    Raises:
      SketchError: naming the file (and element) — unreadable file, malformed XML, a root that
        is not ``<svg>``, bad path data or transform, no strokes at all.
    """
    from_text = isinstance(source, (str, bytes)) and _looks_like_markup(source)
    name = "<svg text>" if from_text else os.fspath(source)
    curve_samples = check_positive_int(name, "curve_samples", curve_samples, SketchError)
    if from_text:
        text = source.encode("utf-8") if isinstance(source, str) else source
        # white space or a byte-order mark before an XML declaration is an XML error
        text = text.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()
    else:
        try:
            with open(name, "rb") as f:
                text = f.read()
        except OSError as e:
            raise SketchError(f"{name}: cannot read SVG file ({e})") from None
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise SketchError(f"{name}: malformed XML ({e}); truncated or corrupt file?") from None
    if _local_name(root.tag) != "svg":
        raise SketchError(f"{name}: not an SVG document (root element <{_local_name(root.tag)}>)")

    strokes, skipped, hidden = [], Counter(), 0
    stack = [(root, np.eye(3), True)]
    # Depth-first in document order, carrying the current transformation matrix and the
    # inherited visibility.  Hidden content is not drawn, so it is not read: display:none
    # (Inkscape's hidden layers) drops an element and everything in it; visibility is
    # inherited, and a descendant may set it back to visible.
    while stack:
        element, parent_ctm, parent_visible = stack.pop()
        kind = _local_name(element.tag)
        if _presentation(element, "display") == "none":
            hidden += 1
            continue
        visibility = _presentation(element, "visibility")
        visible = parent_visible if visibility in (None, "inherit") else visibility == "visible"
        where = f"{name}: <{kind}" + (f" id={element.get('id')!r}>" if element.get("id") is not None else ">")
        ctm = parent_ctm @ _parse_transform(element.get("transform", ""), where)
        if kind == "switch":
            chosen = [c for c in element if not _CONDITIONS.intersection(c.attrib)
                      and _local_name(c.tag) not in _DESCRIPTIVE][:1]
            stack.extend((child, ctm, visible) for child in chosen)
        elif kind in _CONTAINERS:
            stack.extend((child, ctm, visible) for child in reversed(list(element)))
        elif kind in ("path", "polyline", "polygon", "line"):
            if not visible:
                hidden += 1
                continue
            for points in _element_strokes(element, kind, where, curve_samples):
                strokes.append(points @ ctm[:2, :2].T + ctm[:2, 2])
        elif kind in _UNSUPPORTED_VISIBLE:
            skipped[kind] += 1
    if skipped:
        warnings.warn(f"{name}: skipped elements that are not strokes: {dict(skipped)}", stacklevel=2)
    if not strokes:
        raise SketchError(f"{name}: empty drawing (no " + ("visible " if hidden else "") + "path, polyline, polygon "
                          "or line elements" + (f"; {hidden} hidden by display:none or visibility:hidden)" if hidden
                                                else ")"))
    return from_strokes(strokes, name=name, single_point=single_point)


def _presentation(element, prop: str) -> Optional[str]:
    """A presentation property of an element (``display``, ``visibility``): its ``style``
    declaration if any (CSS wins over the attribute), else the attribute; lower-case, or None."""
    for decl in element.get("style", "").split(";"):
        key, sep, value = decl.partition(":")
        if sep and key.strip().lower() == prop:
            return value.replace("!important", "").strip().lower()
    value = element.get(prop)
    return None if value is None else value.strip().lower()


def _format(value: np.float32) -> str:
    # Shortest decimal that reads back (via float64 -> float32) to exactly this float32.
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def _xml_attr(text: str) -> str:
    return str(text).replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _positive_number(value) -> bool:
    return is_real(value) and math.isfinite(value) and value > 0


def _check_svg_lengths(name: str, size, stroke_width) -> None:
    """ValueError for a ``size`` or ``stroke_width`` that would be written as an invalid SVG
    length (NaN, negative, text...)."""
    sizes = () if size is None else (size,) if np.ndim(size) == 0 else tuple(size) if np.ndim(size) == 1 else (None,)
    if size is not None and (len(sizes) not in (1, 2) or not all(_positive_number(v) for v in sizes)):
        raise ValueError(f"{name}: size must be None, a number > 0 or (width, height) of numbers > 0, got {size!r}")
    if not _positive_number(stroke_width):
        raise ValueError(f"{name}: stroke_width must be a number > 0, got {stroke_width!r}")


def write_svg(
    sketch: Sketch,
    path: Optional[PathLike] = None,
    *,
    size: Union[None, float, tuple] = None,
    stroke_width: float = 1.0,
    stroke_colors: Optional[Sequence[str]] = None,
    name: str = "sketch",
) -> str:
    """An unbatched sketch as an SVG document with one ``<polyline>`` per stroke.

    Args:
      sketch: the sketch; coordinates are written unchanged (pixels = user units).
      path: if given, the document is also written there (atomically).
      size: canvas ``width = height`` or ``(width, height)`` in pixels for ``width``, ``height``
        and ``viewBox="0 0 w h"``; None = the smallest integer canvas from the origin that
        holds every point (at least 1); when points lie left of or above the origin (stroke-3
        data often does), the ``viewBox`` starts at their integer floor instead, so nothing is
        cut off (coordinates are still written unchanged).
      stroke_width: line width in pixels.
      stroke_colors: one SVG colour per stroke (e.g. ``"#b2182b"``, attribution colours from
        :func:`sketchjax.attribution.plot.stroke_colors`); default all black.

    Returns:
      The SVG text.  ``read_svg`` of it gives back the sketch's ``xy`` and ``pen`` exactly
      (single-point strokes need ``single_point="keep"`` to come back; they draw nothing).
    """
    strokes = to_strokes(sketch, name=name)
    _check_svg_lengths(name, size, stroke_width)
    left = top = 0
    if size is None:
        every = np.concatenate(strokes)
        left, top = (min(0, math.floor(float(v))) for v in np.min(every, axis=0))
        right, bottom = (math.ceil(float(v)) for v in np.max(every, axis=0))
        width, height = max(1, right - left), max(1, bottom - top)
    elif np.ndim(size) == 0:
        width = height = size
    else:
        width, height = size
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="{left} {top} {width} {height}">',
        f'<g fill="none" stroke="black" stroke-width="{stroke_width}" stroke-linecap="round" stroke-linejoin="round">',
    ]
    if stroke_colors is not None and len(stroke_colors) != len(strokes):
        raise ValueError(f"{name}: {len(stroke_colors)} stroke colours for {len(strokes)} strokes")
    for i, stroke in enumerate(strokes):
        points = " ".join(f"{_format(x)},{_format(y)}" for x, y in stroke)
        color = "" if stroke_colors is None else f' stroke="{_xml_attr(stroke_colors[i])}"'
        lines.append(f'<polyline points="{points}"{color}/>')
    lines += ["</g>", "</svg>", ""]
    text = "\n".join(lines)
    if path is not None:
        with atomic_write(path, "w") as f:
            f.write(text)
    return text
