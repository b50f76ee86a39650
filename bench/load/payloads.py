"""Writes ghz configurations for the search and enrollment RPCs, with real
lfw-dev faces as payloads, for a running stack:

    python -m bench.load.payloads --host 127.0.0.1:8080 --token "$TOKEN" --collection <id> [--out bench/load/out]

Then `ghz --config bench/load/out/search_crops.json` (or `python -m devkit.ghz ...`).

Each call is written two ways, as ghz can describe it:
- `<call>.json` names the descriptor set `make proto` writes
  (`gen/envoy/facesearch.pb`, ghz's `protoset`);
- `<call>-reflection.json` names no proto at all: ghz asks the server by
  reflection, through Envoy like any other gRPC call, with the same token.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from devkit import lfw

OUT = Path(__file__).parent / "out"
PROTOSET = Path(__file__).resolve().parents[2] / "gen" / "envoy" / "facesearch.pb"


def configs(host: str, token: str, collection: str, identity: int = 0) -> dict[str, dict]:
    name = lfw.identities()[identity]
    photos = lfw.photos(name)
    common = {
        "host": host,
        "insecure": True,
        "metadata": {"authorization": f"Bearer {token}"},
        "concurrency": 8,
        "connections": 2,
        "duration": "30s",
        "timeout": "20s",
    }
    return {
        # One 120x120 crop of a known face against the collection.
        "search_crops": {
            **common,
            "call": "facesearch.v1.FaceSearch.SearchCrops",
            "data": {
                "images": [lfw.b64(lfw.crop(photos[1]))],
                "min_score": 0.7,
                "search_mode": "ACCURATE",
                "collection_id": collection,
                "max_results": 10,
            },
        },
        # A whole LFW portrait, as a client enrolls it (each call adds a person).
        "create_person": {
            **common,
            "call": "facesearch.v1.FaceSearch.CreatePerson",
            "concurrency": 4,
            "data": {
                "name": name,
                "images": [lfw.b64(lfw.portrait(photos[0]))],
                "collections": [collection],
                "notes": "ghz load test",
            },
        },
    }


def write(host: str, token: str, collection: str, out: Path = OUT) -> dict[str, Path]:
    """Both ways of each call; answers the protoset files by call name."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, config in configs(host, token, collection).items():
        written[name] = out / f"{name}.json"
        written[name].write_text(json.dumps({"protoset": str(PROTOSET), **config}, indent=1) + "\n")
        (out / f"{name}-reflection.json").write_text(json.dumps(config, indent=1) + "\n")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    for name, path in write(args.host, args.token, args.collection, args.out).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
