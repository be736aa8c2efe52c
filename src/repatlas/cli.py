"""Command line: `repatlas cka A.zarr [B.zarr] -o out.nc` and `repatlas info <artifact>`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _cmd_cka(args) -> int:
    # lazy: a command imports only what its artifact needs (torch, zarr, dask import slowly)
    from repatlas.steps.cka import cka_stores_to_file

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


def _values(values, limit: int = 12) -> list:
    """Coordinate values for display: all of them, or the first `limit` and how many more."""
    shown = [str(v) for v in values[:limit]]
    return shown + [f"... ({len(values) - limit} more)"] if len(values) > limit else shown


def _describe_netcdf(path: Path, verify: bool) -> dict:
    """A .nc file the pipeline writes: a DataArray (CKA) or a Dataset of several variables
    (first PC, probes, pruning, predictions, complexity sweeps, ...). `verify` reads every value."""
    # lazy: a command imports only what its artifact needs (torch, zarr, dask import slowly)
    import xarray as xr

    with xr.open_dataset(path) as ds:
        if verify:
            ds.load()  # decoding every variable is the check
        coords = {dim: _values(ds[dim].values) for dim in ds.dims if dim in ds.coords}
        if len(ds.data_vars) == 1:
            (name, da), = ds.data_vars.items()
            return {"kind": "DataArray", "name": name, "dims": dict(da.sizes), "dtype": str(da.dtype),
                    "attrs": dict(da.attrs) or dict(ds.attrs),
                    **{f"{d} coords": coords[d] for d in da.dims if d in coords}}
        return {
            "kind": "Dataset",
            "dims": dict(ds.sizes),
            "variables": {n: {"dims": list(v.dims), "dtype": str(v.dtype)} for n, v in ds.data_vars.items()},
            "coords": coords,
            "attrs": dict(ds.attrs),
        }


def describe(path: Path, *, verify: bool = False) -> dict:
    """A short, JSON-serialisable description of any repatlas artifact. With `verify`, every
    chunk of an activation store (every value of a .nc file) is read, and an activation store's
    description gets a "verify" entry listing damaged chunks."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.suffix == ".zarr" or (path / "zarr.json").exists():
        # lazy: a command imports only what its artifact needs (torch, zarr, dask import slowly)
        from repatlas.activations import layer_arrays, open_layers, verify_store

        layers, attrs = open_layers(path)
        arrays = layer_arrays(path)
        out = {
            "kind": "activation store",
            "examples": attrs.get("n_examples"),
            "layers": {n: {"shape": list(a.shape), "chunks": list(a.chunks), "dtype": str(a.dtype)}
                       for n, a in arrays.items()},
            "attrs": {k: v for k, v in attrs.items() if k != "layers"},
        }
        if verify:
            out["verify"] = verify_store(path)
        return out
    if path.suffix == ".nc":
        return _describe_netcdf(path, verify)
    if path.suffix == ".npz":
        # lazy: a command imports only what its artifact needs (torch, zarr, dask import slowly)
        from repatlas.data import load_npz

        arrays, meta = load_npz(path)
        return {"kind": "dataset arrays",
                "arrays": {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()},
                "meta": meta}
    if path.suffix == ".pt":
        # lazy: a command imports only what its artifact needs (torch, zarr, dask import slowly)
        from repatlas.checkpoints import load_checkpoint

        model, spec, meta = load_checkpoint(path)
        return {"kind": "model checkpoint", "spec": spec,
                "parameters": sum(p.numel() for p in model.parameters()),
                "meta": meta}
    if path.suffix == ".json":
        return json.loads(path.read_text())
    if path.suffix == ".csv":
        # lazy: a command imports only what its artifact needs (torch, zarr, dask import slowly)
        import pandas as pd

        table = pd.read_csv(path)
        return {"kind": "table", "rows": len(table), "columns": {c: str(t) for c, t in table.dtypes.items()}}
    raise ValueError(f"{path}: unknown artifact type; expected .zarr, .nc, .npz, .pt, .json or .csv")


def _plain(value):
    """JSON for what json does not know: NumPy scalars and arrays (netCDF attrs) as numbers and lists."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _cmd_info(args) -> int:
    info = describe(args.artifact, verify=args.verify)
    print(json.dumps(info, indent=2, default=_plain))
    damaged = info.get("verify", {}).get("damaged", [])
    if damaged:
        print(f"repatlas info: {args.artifact}: {len(damaged)} of {info['verify']['chunks']} chunks "
              "cannot be read (listed under verify.damaged); delete the store "
              f"(rm -r {args.artifact}) and rerun snakemake, which writes it again", file=sys.stderr)
        return 1
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
    cka.add_argument("--batch-size", type=int, default=120,
                     help="examples per minibatch (default 120, as the pipeline's cka.batch_size)")
    cka.add_argument("--epochs", type=int, default=1, help="passes (reshuffled when > 1)")
    cka.add_argument("--seed", type=int, default=0)
    cka.add_argument("--threads", type=int, default=1)
    cka.add_argument("--window", type=int, default=8, help="storage chunks read at a time")
    cka.set_defaults(func=_cmd_cka)

    info = sub.add_parser("info", help="describe an artifact (.zarr, .nc, .npz, .pt, .json, .csv) as JSON")
    info.add_argument("artifact", type=Path)
    info.add_argument("--verify", action="store_true",
                      help="read every chunk of an activation store (every value of a .nc file); "
                           "exit status 1 and the damaged chunks listed if any cannot be read")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        print(f"repatlas {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader left (`repatlas info ... | head`): not an error of ours; point stdout at
        # /dev/null so that the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
