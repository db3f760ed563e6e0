"""Which MatMuls the int8 export keeps in fp32: speed and agreement with fp32, in one run.

    python benchmarks/ab_int8_recipe.py [--data ../shared/data] [--texts 400] [--rounds 3]

Exports all-MiniLM-L6-v2 three times with rq's exporter (every MatMul int8; the first
layer's feed-forward down-projection kept fp32; the first two kept, as shipped), then embeds
the same SciFact abstracts with each in alternating rounds on rq's OnnxEmbedder (2 threads)
and compares the vectors with the fp32 graph's. Prints one line per recipe.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from rq.index.encoders import onnx_export
    from rq.index.encoders.model import resolve_model
    from rq.index.encoders.onnx_encoder import OnnxEmbedder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with open(args.data / "beir" / "scifact" / "corpus.jsonl") as fh:
        corpus = [json.loads(line) for line in fh][:args.texts]
    texts = [f"{d['title']} {d['text']}".strip() for d in corpus]
    shipped = onnx_export._kept_fp32
    recipes = {"every MatMul int8": lambda source: [], "layer 0 down-projection fp32": lambda s: shipped(s)[:1],
               "layers 0-1 down-projections fp32 (shipped)": shipped}
    with tempfile.TemporaryDirectory() as tmp:
        encoders = {}
        for name, kept in recipes.items():
            onnx_export._kept_fp32 = kept
            folder = Path(tmp) / str(len(encoders))
            onnx_export.export_onnx(resolve_model("all-MiniLM-L6-v2"), folder)
            encoders[name] = OnnxEmbedder(folder, bulk="int8")
        onnx_export._kept_fp32 = shipped
        exact = OnnxEmbedder(Path(tmp) / "0", bulk="fp32")
        reference = exact.encode(texts)
        speed = {name: [] for name in encoders}
        for _ in range(args.rounds):
            for name, encoder in encoders.items():
                start = time.perf_counter()
                encoder.encode(texts)
                speed[name].append(len(texts) / (time.perf_counter() - start))
        start = time.perf_counter()
        exact.encode(texts)
        print(f"fp32: {len(texts) / (time.perf_counter() - start):.1f} passages/s")
        for name, encoder in encoders.items():
            cos = (encoder.encode(texts) * reference).sum(axis=1)
            print(f"{name}: {statistics.median(speed[name]):.1f} passages/s (rounds "
                  f"{', '.join(f'{x:.1f}' for x in speed[name])}), cosine to fp32 min {cos.min():.4f} "
                  f"mean {cos.mean():.4f}")


if __name__ == "__main__":
    main()
