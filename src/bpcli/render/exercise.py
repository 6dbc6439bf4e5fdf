"""The worksheet of `bpcli exercise` as Markdown or LaTeX text (builds text; never prints)."""

from __future__ import annotations

from bpcli.nn.model import LETTERS, SYMBOLS, Layer, node_name, weight_name
from bpcli.prose import wrap

FORMULAS = {
    "sigmoid": ("f(z) = 1 / (1 + e^(-z)), f'(z) = f(z) (1 - f(z))",
                r"f(z) = \frac{1}{1 + e^{-z}},\quad f'(z) = f(z)\,(1 - f(z))"),
    "tanh": ("f(z) = tanh(z), f'(z) = 1 - f(z)^2", r"f(z) = \tanh z,\quad f'(z) = 1 - f(z)^2"),
    "relu": ("f(z) = max(0, z), f'(z) = 1 if z > 0 else 0", r"f(z) = \max(0, z),\quad f'(z) = [z > 0]"),
    "identity": ("f(z) = z, f'(z) = 1", r"f(z) = z,\quad f'(z) = 1"),
}


def _layers(sheet) -> list[tuple[Layer, dict]]:
    out, n_in = [], sheet.size[0]
    for i, lc in enumerate(sheet.config["layers"]):
        out.append((Layer(LETTERS[i], n_in, lc["size"], None, "on", SYMBOLS[i]), lc))  # type: ignore[arg-type]
        n_in = lc["size"]
    return out


def _param_rows(sheet) -> list[tuple[str, str, float]]:
    rows = []
    for layer, lc in _layers(sheet):
        for j in range(layer.n_out):
            for k in range(layer.n_in):
                rows.append((layer.letter, weight_name(layer, j, k), lc["weights"][j][k]))
            rows.append((layer.letter, f"b_{node_name(layer, j)}", lc["biases"][j]))
    return rows


def _g(v: float) -> str:
    return f"{v:g}"


def _answers_yaml(sheet) -> str:
    meta = ", ".join(f"{k}: {v}" for k, v in sheet.meta.items())
    lines = [f"exercise: {{{meta}}}"] + [f"{q}: ...    # your dC/d{q}" for q in sheet.questions]
    return "\n".join(lines)


def sheet_markdown(sheet) -> str:
    layers = _layers(sheet)
    desc = ", ".join(f"layer {layer.letter} ({', '.join(node_name(layer, j) for j in range(layer.n_out))})"
                     for layer, _ in layers)
    out = [f"# Backpropagation exercise (seed {sheet.seed})", "",
           *wrap(f"A {sheet.size_text} network: inputs {', '.join(sheet.config['inputs'])}; {desc}."),
           *wrap(f"Every node computes z = sum_k w_jk a_k + b_j and a = f(z) with the {sheet.activation} activation: "
                 f"{FORMULAS[sheet.activation][0]}."),
           *wrap("The weight w_jk goes into node j from node k of the layer before "
                 "(a layer of one node drops j: v1 comes from o1)."),
           *wrap("The loss of one sample is L = 1/2 (y - y')^2 and the cost is the mean over the m samples, "
                 "C = 1/m * sum_i L_i."), "", "| layer | parameter | value |", "|---|---|---|"]
    out += [f"| {l} | {n} | {_g(v)} |" for l, n, v in _param_rows(sheet)]
    xs, ys = sheet.config["data"]["x"], sheet.config["data"]["y"]
    head = sheet.config["inputs"] + (["y"] if len(ys[0]) == 1 else [f"y{k + 1}" for k in range(len(ys[0]))])
    out += ["", f"Samples (m = {len(xs)}):", "", "| i | " + " | ".join(head) + " |",
            "|---|" + "---|" * len(head)]
    out += [f"| {i + 1} | " + " | ".join(_g(v) for v in x + y) + " |" for i, (x, y) in enumerate(zip(xs, ys))]
    out += ["", "Questions:", ""]
    out += [f"{i + 1}. Compute dC/d{q}." for i, q in enumerate(sheet.questions)]
    out += ["", *wrap("Give at least 4 significant figures. To check your working, write `answers.yaml`:"), "",
            "```yaml",
            _answers_yaml(sheet), "```", "", "and run `bpcli diagnose answers.yaml`.", ""]
    return "\n".join(out)


def sheet_latex(sheet) -> str:
    layers = _layers(sheet)
    tex_name = lambda n: n.replace("_", r"\_")  # noqa: E731
    out = [f"% bpcli exercise --seed {sheet.seed} --size {sheet.size_text} --activation {sheet.activation}",
           rf"\section*{{Backpropagation exercise (seed {sheet.seed})}}",
           *wrap(f"A {sheet.size_text} network with inputs ${', '.join(sheet.config['inputs'])}$ and layers "
                 f"{', '.join(layer.letter for layer, _ in layers)}; every node computes "
                 f"$z_j = \\sum_k w_{{jk}} a_k + b_j$ and $a_j = f(z_j)$ with ${FORMULAS[sheet.activation][1]}$."),
           *wrap(r"The loss of one sample is $L = \tfrac12 (y - y')^2$ and the cost is "
                 r"$C = \frac{1}{m}\sum_{i=1}^{m} L_i$."), "",
           r"\begin{tabular}{llr}", r"layer & parameter & value \\ \hline"]
    out += [rf"{l} & {tex_name(n)} & {_g(v)} \\" for l, n, v in _param_rows(sheet)]
    out += [r"\end{tabular}", ""]
    xs, ys = sheet.config["data"]["x"], sheet.config["data"]["y"]
    head = sheet.config["inputs"] + (["y"] if len(ys[0]) == 1 else [f"y{k + 1}" for k in range(len(ys[0]))])
    out += [r"\begin{tabular}{r" + "r" * len(head) + "}", "$i$ & " + " & ".join(f"${h}$" for h in head) +
            r" \\ \hline"]
    out += [f"{i + 1} & " + " & ".join(_g(v) for v in x + y) + r" \\" for i, (x, y) in enumerate(zip(xs, ys))]
    out += [r"\end{tabular}", "", r"\begin{enumerate}"]
    out += [rf"  \item Compute $\partial C / \partial {tex_name(q)}$." for q in sheet.questions]
    out += [r"\end{enumerate}", ""]
    return "\n".join(out)
