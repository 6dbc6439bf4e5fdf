"""The network as a Graphviz DOT graph in the seed's naming, optionally with one sample's values and gradients.

Inputs on the left, one column per layer under its title with the nodes in index order from the top, every
weight an edge labelled `name = value` (blue positive, red negative, thicker when larger). With a SampleTrace
each node also shows z, its output and the delta dL/dz, each edge the sample's gradient dL/dw, and a loss node
closes the graph (micrograd's value/grad view).
"""

from __future__ import annotations

import html
import shutil
import subprocess
import unicodedata
from pathlib import Path

from bpcli.errors import BpcliError
from bpcli.nn.model import Network, node_name, weight_name

MAX_EDGES = 1500  # beyond this a drawing of every weight is no longer readable
RENDER_FORMATS = ("svg", "png", "pdf")
TEXT_SUFFIXES = (".dot", ".gv")


def printable(text: str) -> str:
    """User text as Graphviz can take it: line ends as \\n, any other control character (a NUL would end the
    string, XML refuses the rest in an HTML label) or lone surrogate (not UTF-8) as ?."""
    s = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c if c == "\n" or unicodedata.category(c) not in ("Cc", "Cs") else "?" for c in s)


def quote(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, newlines as centred line breaks."""
    return '"' + printable(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(text: str) -> str:
    """Text for an HTML-like label: & < > and quotes as entities, a backslash doubled (Graphviz reads \\N in a
    label as the node's name, \\G as the graph's, even in HTML), newlines as line breaks."""
    return html.escape(printable(text)).replace("\\", "\\\\").replace("\n", "<BR/>")


def _num(v: float) -> str:
    return f"{v:.4g}"


def _html_node(rows: list[tuple[str, str]], title: str, fill: str) -> str:
    """An HTML-like label: a bold title row, then one row per (name, value)."""
    cells = [f'<TR><TD BGCOLOR="{fill}" COLSPAN="2"><B>{_html(title)}</B></TD></TR>']
    for name, value in rows:
        cells.append(f'<TR><TD ALIGN="LEFT">{_html(name)}</TD><TD ALIGN="RIGHT">{_html(value)}</TD></TR>')
    return '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">' + "".join(cells) + "</TABLE>>"


def network_dot(net: Network, title: str, trace=None, max_edges: int = MAX_EDGES) -> str:
    """DOT text for `net`; `trace` (show.SampleTrace) adds z, output, delta and per-sample gradients."""
    n_edges = sum(layer.n_in * layer.n_out for layer in net.layers)
    if n_edges > max_edges:
        raise BpcliError(f"--dot draws every weight, and this network has {n_edges} (at most {max_edges} "
                         "make a readable drawing); use `bpcli show` for the list of parameters")
    nodes_by_name = {}
    edges_by_name = {}
    if trace is not None:
        nodes_by_name = {(la.letter, n.name): n for la in trace.layers for n in la.nodes}
        edges_by_name = {(e.layer, e.name): e for e in trace.edges}
    # node ids are the seed's names (x1, A1, B); an input whose name clashes with a node gets a prefix
    taken = {node_name(layer, j) for layer in net.layers for j in range(layer.n_out)} | {"loss", "title inputs"}
    taken |= {f"title {layer.letter}" for layer in net.layers}
    in_ids = [quote(n if n not in taken else f"input {n}") for n in net.input_names]

    def nid(l: int, j: int) -> str:
        return quote(node_name(net.layers[l], j))

    label = title if trace is None else (f"{title}: sample {trace.index} of {trace.of}, "
                                         f"loss L = {_num(trace.loss)}")
    lines = [
        f"digraph {quote(title)} {{",
        f"  graph [rankdir=LR, ranksep=1.4, nodesep=0.25, fontname=Helvetica, labelloc=t, "
        f"label={quote(label)}];",
        "  node [shape=plaintext, fontname=Helvetica, fontsize=10];",
        "  edge [fontname=Helvetica, fontsize=9, arrowsize=0.6];",
    ]
    rows_in = []
    for k, name in enumerate(net.input_names):
        rows = [] if trace is None else [("value", _num(trace.inputs[k][1]))] if trace.raw_inputs is None else [
            ("standardised", _num(trace.inputs[k][1])), ("raw", _num(trace.raw_inputs[k][1]))]  # what the net sees
        rows_in.append(f"{in_ids[k]} [label={_html_node(rows, name, '#e8e8e8')}];")
    lines += _column("inputs", "inputs", rows_in, in_ids)
    last = len(net.layers) - 1
    for l, layer in enumerate(net.layers):
        decls = []
        for j in range(layer.n_out):
            node = node_name(layer, j)
            rows: list[tuple[str, str]] = []
            bias = None
            if layer.shared_bias:
                bias = f"b_{layer.letter}", float(net.b[l][0])
            elif layer.has_bias:
                bias = f"b_{node}", float(net.b[l][j])
            if bias is not None:
                rows.append((bias[0], _num(bias[1])))
            fill = "#fde0c5" if l == last else "#d6e6f5"
            if trace is not None:
                n = nodes_by_name[(layer.letter, node)]
                rows += [(f"z_{node}", _num(n.z)), (n.output_symbol, _num(n.output)),
                         ("delta dL/dz", _num(n.delta))]
                if n.bias_grad is not None:
                    rows.append((f"dL/d{n.bias}", _num(n.bias_grad)))
            decls.append(f"{nid(l, j)} [label={_html_node(rows, node, fill)}];")
        lines += _column(layer.letter, f"layer {layer.letter} ({layer.activation.name})", decls,
                         [nid(l, j) for j in range(layer.n_out)])
    lines += _weight_edges(net, in_ids, nid, None if trace is None else edges_by_name)
    if trace is not None:
        out = net.layers[last]
        rows = [(f"y{'' if out.n_out == 1 else k + 1}", _num(v)) for k, v in enumerate(trace.target)]
        rows.append(("L", _num(trace.loss)))
        lines.append(f"  loss [label={_html_node(rows, f'loss ({net.loss.name})', '#f4cccc')}];")
        for j in range(out.n_out):
            if trace.dy_hat is not None:
                text = f"dL/dy' = {_num(trace.dy_hat[j])}"
            else:
                text = "dL/dz = y' - y"
            lines.append(f"  {nid(last, j)} -> loss [label={quote(text)}, style=dashed, color=gray40];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _weight_edges(net: Network, in_ids: list[str], nid, grads: dict | None) -> list[str]:
    """One edge per weight, labelled `name = value` (and the sample's dL/dw when grads are given), blue for
    positive and red for negative, thicker the larger |w| is beside the largest."""
    wmax = max((float(abs(W).max()) for W in net.W if W.size), default=1.0) or 1.0
    lines = []
    for l, layer in enumerate(net.layers):
        for j in range(layer.n_out):
            for k in range(layer.n_in):
                w = float(net.W[l][j, k])
                name = weight_name(layer, j, k)
                text = f"{name} = {_num(w)}"
                if grads is not None:
                    text += f"\ndL/d{name} = {_num(grads[(layer.letter, name)].grad)}"
                src = in_ids[k] if l == 0 else nid(l - 1, k)
                colour = "#2166ac" if w >= 0 else "#b2182b"
                width = 0.6 + 2.4 * abs(w) / wmax
                lines.append(f"  {src} -> {nid(l, j)} [label={quote(text)}, color={quote(colour)}, "
                             f"fontcolor={quote(colour)}, penwidth={width:.2f}];")
    return lines


def _column(key: str, title: str, decls: list[str], ids: list[str]) -> list[str]:
    """One column: its title, then the nodes, chained invisibly in one rank in this order (top to bottom).

    No cluster box: with edge labels, Graphviz's dot ignores the order of a rank inside a cluster (2.43) and
    routes edges through a cluster's label; a title node is kept clear of edges like any node."""
    head = quote(f"title {key}")
    out = [f"  {head} [label={quote(title)}, fontsize=12];"]
    out += [f"  {d}" for d in decls]
    out.append(f"  {{ rank=same; {' -> '.join([head] + ids)} [style=invis]; }}")
    return out


def dot_program() -> str | None:
    """The path of Graphviz's `dot`, or None when it is not installed."""
    return shutil.which("dot")


def render_dot(text: str, path: Path, replace: bool = False, option: str = "--out", reads: tuple = ()) -> str:
    """Render DOT text to `path` (.svg, .png or .pdf) with Graphviz, under files.write_output's rules (an existing
    file only with `replace`); returns the format used."""
    from bpcli.files import check_output, write_output

    fmt = path.suffix.lower().lstrip(".")
    if fmt not in RENDER_FORMATS:
        raise BpcliError(f"--out: {path.name}: expected a .dot, .gv, .svg, .png or .pdf file")
    exe = dot_program()
    if exe is None:
        raise BpcliError(f"cannot render {path.name}: Graphviz's `dot` program is not installed "
                         "(install the graphviz package, or write the DOT text with --out FILE.dot)")
    check_output(path, replace, option, reads=reads, example="network.svg")
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=text.encode("utf-8"), capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise BpcliError(f"Graphviz's dot took over 120 s to draw {path.name}; write --out FILE.dot instead") from None
    if done.returncode != 0 or not done.stdout:
        msg = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BpcliError(f"Graphviz's dot failed on {path.name}: {msg[0] if msg else 'no output'}")
    write_output(path, done.stdout, replace, option, reads=reads, example="network.svg")
    return fmt
