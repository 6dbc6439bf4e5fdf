"""An animated SVG of `bpcli animate`: the figure drawn once by matplotlib, its changing parts animated with SMIL.

Each edge is one path whose stroke width, colour and dashes step through the frames (<animate calcMode="discrete">);
the epoch marker, the dot on the loss curve and the title are drawn once per frame, each shown only during its frame.
A viewer without SMIL shows the last frame.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

SVG = "http://www.w3.org/2000/svg"
DASH = (3.7, 1.6)  # matplotlib's '--' pattern, in line widths (lines.scale_dashes)


def _hex(rgba) -> str:
    r, g, b = (int(round(255 * float(v))) for v in rgba[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def _shown_in(i: int, k: int, dur: float) -> ET.Element:
    """An <animate> that shows an element during frame i of k only (opacity 1 then, 0 otherwise)."""
    if i == 0:
        values, times = "1;0", f"0;{1 / k:.6g}"
    elif i == k - 1:
        values, times = "0;1", f"0;{i / k:.6g}"
    else:
        values, times = "0;1;0", f"0;{i / k:.6g};{(i + 1) / k:.6g}"
    return ET.Element(f"{{{SVG}}}animate", {"attributeName": "opacity", "values": values, "keyTimes": times,
                                              "calcMode": "discrete", "dur": f"{dur:g}s", "repeatCount": "indefinite"})


def _steps(name: str, values: list[str], dur: float) -> ET.Element:
    return ET.Element(f"{{{SVG}}}animate", {"attributeName": name, "values": ";".join(values),
                                              "calcMode": "discrete", "dur": f"{dur:g}s", "repeatCount": "indefinite"})


def svg_bytes(d, fps: int, progress=None) -> bytes:
    """Draw the Diagram `d` once as SVG, with one path per edge and one marker, dot and title per frame, then add
    the SMIL animations."""
    import matplotlib
    from matplotlib.lines import Line2D

    fig, al = d.fig, d.al
    k = len(al.epochs)
    dur = k / fps
    styles = [d.style(i) for i in range(k)]  # (widths, colours, dashes) per frame
    last = k - 1
    extra = []
    d.edges.set_visible(False)
    for e, seg in enumerate(d.edges.get_segments()):
        widths, colours, dashes = styles[last]
        line = Line2D(seg[:, 0], seg[:, 1], linewidth=widths[e], color=colours[e], linestyle=dashes[e],
                      solid_capstyle="butt", dash_capstyle="butt", zorder=1, gid=f"edge-{e}")
        d.ax.add_line(line)
        extra.append(line)
    for a in (d.marker, d.dot, d.head):
        a.set_visible(False)
    ymin, ymax = d.curve.get_ylim()
    for i in range(k):
        e = int(al.epochs[i])
        extra.append(d.curve.plot([e, e], [ymin, ymax], color="C3", linewidth=1.2, gid=f"marker-{i}")[0])
        extra.append(d.curve.plot([e], [al.loss[i]], "o", color="C3", markersize=7, zorder=5, gid=f"dot-{i}")[0])
        extra.append(fig.text(0.5, d.head.get_position()[1], d.frame_title(i), ha="center", va=d.head.get_va(),
                              fontsize=d.head.get_fontsize(), gid=f"title-{i}"))
    d.curve.set_ylim(ymin, ymax)
    buf = io.BytesIO()
    try:
        with matplotlib.rc_context({"svg.hashsalt": "bpcli", "svg.fonttype": "none"}):
            fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        for a in extra:
            a.remove()
        for a in (d.edges, d.marker, d.dot, d.head):
            a.set_visible(True)
    ET.register_namespace("", SVG)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root = ET.fromstring(buf.getvalue())
    groups = {g.get("id"): g for g in root.iter(f"{{{SVG}}}g") if g.get("id")}
    for e in range(len(d.edges.get_segments())):
        target = groups[f"edge-{e}"].find(f"{{{SVG}}}path")
        widths = [f"{styles[i][0][e]:.3g}" for i in range(k)]
        target.append(_steps("stroke-width", widths, dur))
        target.append(_steps("stroke", [_hex(styles[i][1][e]) for i in range(k)], dur))
        dash = [f"{DASH[0] * styles[i][0][e]:.3g},{DASH[1] * styles[i][0][e]:.3g}" if styles[i][2][e] == "--"
                else "none" for i in range(k)]
        target.append(_steps("stroke-dasharray", dash, dur))
    for i in range(k):
        for what in ("marker", "dot", "title"):
            g = groups[f"{what}-{i}"]
            if i != last:
                g.set("opacity", "0")  # without SMIL, only the last frame shows
            g.append(_shown_in(i, k, dur))
        if progress is not None:
            progress(i + 1, k)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def frame_count(svg_bytes: bytes) -> int:
    """How many frames an SVG written here steps through (the values of its first edge's width animation)."""
    root = ET.fromstring(svg_bytes)
    for a in root.iter(f"{{{SVG}}}animate"):
        if a.get("attributeName") == "stroke-width":
            return len(a.get("values", "").split(";"))
    return 0

