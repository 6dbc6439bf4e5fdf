"""explain's tables at the detail sample: each factor with its operands, the sums behind an upstream
gradient or the softmax Jacobian, and every layer's deltas."""

from __future__ import annotations

from bpcli.explain.context import ExplainContext
from bpcli.explain.result import (DetailLine, Factor, LayerDeltas, NodeDelta, Operand, SumRow, SumTable, d_text,
                                  fp_text)


def detail_lines(b: ExplainContext, columns: list[Factor]) -> list[DetailLine]:
    """Each factor at the detail sample with the numbers it is computed from."""
    N, i, n = b.N, b.i, b.n
    where = {N.node(l2, q): (l2, q) for l2 in range(n) for q in range(b.net.layers[l2].n_out)}
    outs = {N.out(n - 1, q): q for q in range(b.net.n_outputs)}

    def yy(q: int) -> list[Operand]:
        return [Operand(N.out(n - 1, q), float(b.y_hat[i, q])), Operand(N.target(q), float(b.y[i, q]))]

    lines = []
    for f in columns:
        ops: list[Operand] = []
        if f.kind == "loss":
            ops = yy(outs[f.symbol[4:]])
        elif f.kind == "delta" and b.mode == "fused" and f.symbol[6:] in where \
                and where[f.symbol[6:]][0] == n - 1:
            ops = yy(where[f.symbol[6:]][1])
        elif f.kind == "act":
            l2, q = where[f.symbol[2:f.symbol.index("'")]]
            node = N.node(l2, q)
            ops = [Operand(f"z_{node}", float(b.tape[l2].z[i, q])),
                   Operand(f"f(z_{node})", float(b.tape[l2].a_out[i, q]))]
        elif f.kind == "jacobian":
            yk, zq = f.symbol[1:].split("/dz_")
            ops = [Operand(yk, float(b.y_hat[i, outs[yk]])),
                   Operand(N.out(n - 1, where[zq][1]), float(b.y_hat[i, where[zq][1]]))]
        lines.append(DetailLine(f.symbol, f.values[i], f.rule, tuple(ops)))
    return lines

def sum_tables(b: ExplainContext) -> list[SumTable]:
    """The sums at the detail sample: the upstream sum of node j, the softmax Jacobian, a shared bias."""
    net, N, i, l, n = b.net, b.N, b.i, b.l, b.n
    tables = []
    if len(b.nodes) > 1:
        L = b.layer.letter
        rows = tuple(SumRow(N.node(l, q), f"dL/dz_{N.node(l, q)}", float(b.g.dz[l][i, q]), "1", 1.0,
                            float(b.g.dz[l][i, q])) for q in b.nodes)
        total = float(b.g.dz[l][i].sum())
        tables.append(SumTable(f"{b.ref.name} is shared by the nodes of layer {L}", f"dL_{i + 1}/d{b.ref.name}",
                               "delta dL/dz", "input", rows, total, (), None))
        return tables
    j = b.nodes[0]
    node = N.node(l, j)
    if l < n - 1:
        above = net.layers[l + 1]
        O = N.out(l, j)
        rows = tuple(
            SumRow(N.node(l + 1, q), f"dL/dz_{N.node(l + 1, q)}", float(b.g.dz[l + 1][i, q]),
                   N.weight(l + 1, q, j), float(net.W[l + 1][q, j]),
                   float(b.g.dz[l + 1][i, q] * net.W[l + 1][q, j]))
            for q in range(above.n_out)
        )
        total = float(b.g.da[l][i, j])  # the engine's upstream sum
        A = "1" if b.ref.kind == "b" else N.src(l, b.ref.from_node)
        a_val = 1.0 if b.ref.kind == "b" else float(b.tape[l].a_in[i, b.ref.from_node])
        combine = (Operand(fp_text(node), float(b.fp[l][i, j])), Operand(f"dL/dz_{node}", float(b.g.dz[l][i, j])),
                   Operand(A, a_val))
        result = Operand(f"dL_{i + 1}/d{b.ref.name}", float(b.g.dz[l][i, j]) * a_val)
        tables.append(SumTable(f"{O} feeds " + (f"node {N.node(l + 1, 0)}" if above.n_out == 1 else f"the {above.n_out} nodes of layer {above.letter}"), f"dL/d{O}",
                               "delta dL/dz", "weight", rows, total, combine, result))
    if l == n - 1 and b.mode == "softmax_jacobian":
        onode = N.node(n - 1, j)
        rows = tuple(
            SumRow(N.out(n - 1, k), d_text("L", N.out(n - 1, k)), float(b.g.dy_hat[i, k]),
                   f"d{N.out(n - 1, k)}/dz_{onode}", float(b.jac[i, k, j]),
                   float(b.g.dy_hat[i, k] * b.jac[i, k, j]))
            for k in range(net.n_outputs)
        )
        A = "1" if b.ref.kind == "b" else N.src(l, b.ref.from_node)
        a_val = 1.0 if b.ref.kind == "b" else float(b.tape[l].a_in[i, b.ref.from_node])
        tables.append(SumTable(f"the softmax Jacobian into z_{onode}", f"dL/dz_{onode}", "dL/dy'k", "dy'k/dz",
                               rows, float(b.g.dz[-1][i, j]), (Operand(A, a_val),),
                               Operand(f"dL_{i + 1}/d{b.ref.name}", float(b.g.dz[-1][i, j]) * a_val)))
    return tables

def layer_deltas(b: ExplainContext) -> list[LayerDeltas]:
    """Every layer's deltas at the detail sample, from the output layer down to the parameter's layer."""
    net, N, i, n = b.net, b.N, b.i, b.n
    out = []
    for l2 in range(n - 1, b.l - 1, -1):
        layer = net.layers[l2]
        qs = b.nodes if l2 == b.l else range(layer.n_out)
        nodes = []
        for q in qs:
            node = N.node(l2, q)
            delta = float(b.g.dz[l2][i, q])
            if l2 == n - 1:
                Y = N.out(l2, q)
                up = None if b.mode == "fused" else float(b.g.dy_hat[i, q])
                fpv = float(b.fp[l2][i, q]) if b.mode == "elementwise" else None
                nodes.append(NodeDelta(node, d_text("L", Y), up, fpv, delta))
            else:
                up = float(b.g.da[l2][i, q])
                nodes.append(NodeDelta(node, d_text("L", N.out(l2, q)), up, float(b.fp[l2][i, q]), delta))
        if l2 == n - 1:
            rule = {"fused": "dL/dz = y' - y (fused)", "elementwise": "dL/dz = dL/dy' * f'(z)",
                    "softmax_jacobian": "dL/dz_q = sum_k dL/dy'k * dy'k/dz_q (softmax Jacobian)"}[b.mode]
        else:
            rule = f"dL/dz = f'(z) * dL/do, dL/do = sum over layer {net.layers[l2 + 1].letter} of delta * weight"
        out.append(LayerDeltas(layer.letter, rule, tuple(nodes)))
    return out
