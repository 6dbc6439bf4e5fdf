"""bpcli export: a trained network as a PyTorch model.py or a plain-numpy predict.py, with its weights in an .npz.

Exporting needs neither torch nor anything else beyond numpy: the model files are text written from an
ExportSpec (export_spec), and the weights are plain arrays that the generated loader reads with allow_pickle=False.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bpcli.errors import BpcliError, SaveError
from bpcli.export_numpy import numpy_source
from bpcli.export_spec import ExportSpec, name_mapping, numpy_arrays, spec_from_network, torch_arrays  # noqa: F401
from bpcli.export_torch import torch_source
from bpcli.files import atomic_write_files, npz_bytes

FORMATS = ("pytorch", "numpy", "onnx")
ONNX_LEFT = ("--to onnx is not built yet: export --to pytorch, then torch.onnx.export(load(), x, "
             "'model.onnx') turns the module into ONNX")


# --- the command's result -------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    name: str
    source: str
    to: str
    out_dir: str
    files: tuple[tuple[str, int], ...]  # (file name, bytes)
    sizes: str
    activations: tuple[str, ...]
    n_params: int
    dtype: str
    scaled: bool
    classes: tuple[str, ...] | None
    usage: str  # how to load it, one line of Python

    def to_dict(self) -> dict:
        return {"command": "export", "name": self.name, "source": self.source, "to": self.to,
                "out_dir": self.out_dir, "files": [{"name": n, "bytes": b} for n, b in self.files],
                "sizes": self.sizes, "activations": list(self.activations), "params": self.n_params,
                "dtype": self.dtype, "scaled": self.scaled, "classes": list(self.classes) if self.classes else None,
                "usage": self.usage}


def export_files(spec: ExportSpec, to: str) -> dict[str, bytes]:
    """The files of an export, by name (nothing written)."""
    if to == "pytorch":
        return {"model.py": torch_source(spec).encode(), "weights.npz": npz_bytes(torch_arrays(spec)),
                "names.json": (json.dumps(name_mapping(spec, to), indent=2) + "\n").encode()}
    if to == "numpy":
        return {"predict.py": numpy_source(spec).encode(), "weights.npz": npz_bytes(numpy_arrays(spec)),
                "names.json": (json.dumps(name_mapping(spec, to), indent=2) + "\n").encode()}
    if to == "onnx":
        raise BpcliError(ONNX_LEFT)
    from bpcli.errors import did_you_mean, one_of
    raise BpcliError(f"--to: unknown format '{to}'{did_you_mean(to, FORMATS)}; expected one of {one_of(FORMATS)}")


def export(spec: ExportSpec, to: str, out_dir: Path, force: bool = False) -> ExportResult:
    """Write the export into out_dir, each file all or nothing; an existing non-empty folder only with force."""
    files = export_files(spec, to)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BpcliError(f"--out: {out_dir} is a file; give a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        clash = [n for n in files if (out_dir / n).exists()]
        what = f"holds {', '.join(clash)}" if clash else "is not empty"
        raise BpcliError(f"--out: {out_dir} {what}; choose another folder or add --force to overwrite")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_files(out_dir, files)
    except OSError as err:
        raise SaveError(f"{out_dir}: cannot write the export ({err.strerror or err})") from None
    n_params = sum(layer.W.size + (0 if layer.b is None else layer.b.size) for layer in spec.layers)
    usage = ("from model import load; net = load(); y_hat = net(torch.tensor(x))" if to == "pytorch"
             else "from predict import predict; y_hat = predict(x)")
    return ExportResult(spec.name, spec.source, to, str(out_dir), tuple((n, len(b)) for n, b in files.items()),
                        spec.sizes, tuple(layer.activation for layer in spec.layers), int(n_params), spec.dtype,
                        spec.mean is not None, spec.classes, usage)
