"""Rich views of `bpcli export` (ExportResult) and `bpcli import` (ImportResult)."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from bpcli.render.wrap import Prose


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB"


def export_view(res) -> Group:
    """What was written, the network it holds, and how to load it."""
    head = Text.assemble(("exported ", "bold"), (res.name, "bold"), f"  ({res.source}) -> ", (res.out_dir, "bold"),
                         f"  {res.to}\n")
    head.append(f"{res.sizes} network · {', '.join(res.activations)} · {res.n_params} parameters · {res.dtype}", style="dim")
    extras = []
    if res.scaled:
        extras.append("inputs standardised with the training statistics")
    if res.classes:
        extras.append("classes " + ", ".join(res.classes))
    for extra in extras:
        head.append("\n" + extra, style="dim")
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("file", no_wrap=True)
    t.add_column("size", justify="right", no_wrap=True)
    for name, n in res.files:
        t.add_row(Text(name), _size(n))
    return Group(Prose(head), t, Prose(Text.assemble("load it: ", (res.usage, "bold"))))


def import_view(res) -> Group:
    """The layers matched to the arrays, and the config written."""
    head = Text.assemble(("imported ", "bold"), Text(res.state_file), " -> ", (res.out, "bold"), "\n")
    head.append(f"{res.sizes} network · loss {res.loss} · {res.n_params} parameters · {res.dtype} · "
                f"data {res.data}, {res.samples} samples", style="dim")
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for c in ("layer", "<- weight", "bias", "in", "nodes", "activation"):
        t.add_column(c, justify="right" if c in ("in", "nodes") else "left", no_wrap=True)
    for layer in res.layers:
        shape = ", ".join(map(str, layer.bias_shape or ())) + ("," if len(layer.bias_shape or ()) == 1 else "")
        bias = "off" if layer.bias_key is None else f"{layer.bias_key} ({shape}) {layer.bias}"
        t.add_row(layer.letter, Text(f"{layer.weight_key} {tuple(layer.weight_shape)}"), Text(bias),
                  str(layer.n_in), str(layer.n_out), Text(layer.activation))
    parts = [Prose(head), t]
    for note in res.notes:
        parts.append(Prose(Text("note: " + note, style="dim")))
    parts.append(Prose(Text.assemble("next: ", (f"`bpcli show {res.out}`", "bold"), ", ",
                                     (f"`bpcli explain {res.out} -w w11`", "bold"), ", ",
                                     (f"`bpcli gradcheck {res.out} --against torch`", "bold"))))
    return Group(*parts)
