"""Command line: `repatlas cka A.zarr [B.zarr] -o out.nc` and `repatlas info <artifact>`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_cka(args) -> int:
    from repatlas.cka import cka_stores_to_file

    if args.output.suffix != ".nc":
        raise SystemExit(f"repatlas cka: output {args.output} must end in .nc (netCDF)")
    for path in filter(None, (args.store_a, args.store_b)):
        if not Path(path).is_dir():
            raise SystemExit(f"repatlas cka: {path}: no such activation store (a directory ending in .zarr)")
    cka_stores_to_file(
        args.store_a, args.output, args.store_b, layers_a=args.layers_a, layers_b=args.layers_b,
        batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, threads=args.threads,
        window=args.window,
    )
    print(f"wrote {args.output}")
    return 0


def describe(path: Path) -> dict:
    """A short, JSON-serialisable description of any repatlas artifact."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.suffix == ".zarr" or (path / "zarr.json").exists():
        from repatlas.activations import layer_arrays, open_layers

        layers, attrs = open_layers(path)
        arrays = layer_arrays(path)
        return {
            "kind": "activation store",
            "examples": attrs.get("n_examples"),
            "layers": {n: {"shape": list(a.shape), "chunks": list(a.chunks), "dtype": str(a.dtype)}
                       for n, a in arrays.items()},
            "attrs": {k: v for k, v in attrs.items() if k != "layers"},
        }
    if path.suffix == ".nc":
        import xarray as xr

        with xr.open_dataarray(path) as da:
            out = {"kind": "DataArray", "name": da.name, "dims": dict(da.sizes), "attrs": dict(da.attrs)}
            for dim in da.dims:
                if dim in da.coords:
                    out[f"{dim} coords"] = [str(v) for v in da[dim].values]
            return out
    if path.suffix == ".npz":
        from repatlas.data import load_npz

        arrays, meta = load_npz(path)
        return {"kind": "dataset arrays", "arrays": {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()},
                "meta": meta}
    if path.suffix == ".pt":
        from repatlas.train import load_checkpoint

        model, spec, meta = load_checkpoint(path)
        return {"kind": "model checkpoint", "spec": spec, "parameters": sum(p.numel() for p in model.parameters()),
                "meta": meta}
    if path.suffix == ".json":
        return json.loads(path.read_text())
    raise ValueError(f"{path}: unknown artifact type; expected .zarr, .nc, .npz, .pt or .json")


def _cmd_info(args) -> int:
    print(json.dumps(describe(args.artifact), indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repatlas", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    cka = sub.add_parser("cka", help="minibatch CKA between the layers of one or two activation stores")
    cka.add_argument("store_a", type=Path, help="activation store (acts.zarr)")
    cka.add_argument("store_b", type=Path, nargs="?", help="second store for cross-model CKA")
    cka.add_argument("-o", "--output", type=Path, required=True, help="output .nc file")
    cka.add_argument("--layers-a", nargs="+", help="layers of A (default: all)")
    cka.add_argument("--layers-b", nargs="+", help="layers of B (default: all)")
    cka.add_argument("--batch-size", type=int, default=256)
    cka.add_argument("--epochs", type=int, default=1, help="passes (reshuffled when > 1)")
    cka.add_argument("--seed", type=int, default=0)
    cka.add_argument("--threads", type=int, default=1)
    cka.add_argument("--window", type=int, default=8, help="storage chunks read at a time")
    cka.set_defaults(func=_cmd_cka)

    info = sub.add_parser("info", help="describe an artifact (.zarr, .nc, .npz, .pt, .json)")
    info.add_argument("artifact", type=Path)
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"repatlas {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
