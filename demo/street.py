"""The demo street as data: its description (`wanlou/street.toml`) and its six import files.

The files are in the formats `services.blocks.importfiles` parses and the blocks service imports
(`ImportFile`); `demo.generate` made them from the description, deterministically.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

WANLOU = Path(__file__).resolve().parent / "wanlou"


@dataclass(frozen=True)
class DemoFiles:
    nodes_csv: str
    boundaries_geojson: str
    buildings_csv: str
    households_csv: str
    residents_csv: str
    staff_csv: str


# DemoFiles field -> file name in the street's folder.
FILE_NAMES = {
    f.name: f.name.replace("_csv", ".csv").replace("_geojson", ".geojson") for f in fields(DemoFiles)
}


def load_street(folder: Path = WANLOU) -> DemoFiles:
    return DemoFiles(
        **{field: (folder / name).read_text(encoding="utf-8") for field, name in FILE_NAMES.items()}
    )


def write_street(files: DemoFiles, folder: Path = WANLOU) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for field, name in FILE_NAMES.items():
        # newline="": written exactly as generated, "\n" on every platform.
        with (folder / name).open("w", encoding="utf-8", newline="") as out:
            out.write(getattr(files, field))


@dataclass(frozen=True)
class Community:
    code: str
    name: str
    lanes: tuple[str, ...]  # where the old single-storey houses without a building stand
    blocks: int


@dataclass(frozen=True)
class Street:
    reference_year: int  # ages and birth years are relative to it, not to today
    seed: int
    households: int
    district: tuple[str, str]  # (code, name)
    street: tuple[str, str]
    communities: tuple[Community, ...]

    @property
    def district_path(self) -> str:
        return self.district[0]

    @property
    def street_path(self) -> str:
        return f"{self.district[0]}/{self.street[0]}"


def load_plan(folder: Path = WANLOU) -> Street:
    path = folder / "street.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        return Street(
            reference_year=int(data["reference_year"]),
            seed=int(data["seed"]),
            households=int(data["households"]),
            district=(data["district"]["code"], data["district"]["name"]),
            street=(data["street"]["code"], data["street"]["name"]),
            communities=tuple(
                Community(c["code"], c["name"], tuple(c["lanes"]), int(c["blocks"]))
                for c in data["communities"]
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: missing or bad {exc}") from None
