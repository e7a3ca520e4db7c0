"""Keep each role's README variable table in step with its meta/argument_specs.yml.

  python scripts/role_docs.py          rewrite the tables
  python scripts/role_docs.py --check  fail (listing the roles) when a README has drifted

The table sits between the two marker lines below in roles/<role>/README.md.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

BEGIN = "<!-- BEGIN variables: generated from meta/argument_specs.yml by scripts/role_docs.py -->"
END = "<!-- END variables -->"
ROLES = Path(__file__).resolve().parents[1] / "roles"


MARKUP = re.compile(r"\b[VOCI]\(([^)]*)\)")  # ansible-doc's V(), O(), C(), I() -> code


def cell(text) -> str:
    text = " ".join(text) if isinstance(text, list) else str(text)
    return MARKUP.sub(r"`\1`", " ".join(text.split())).replace("|", "\\|")


def default_of(option: dict) -> str:
    if "default" not in option:
        return "required" if option.get("required") else ""
    return "`" + cell(yaml.safe_dump(option["default"], default_flow_style=True).strip().removesuffix("...").strip()) + "`"


def tables(specs: dict) -> str:
    """The main entry point's table; a role with several entry points gets one headed table per entry point."""
    entry_points = specs["argument_specs"]
    if list(entry_points) == ["main"]:
        return table(entry_points["main"])
    names = sorted(entry_points, key=lambda name: (name != "main", name))
    return "\n\n".join(f"#### Entry point `{name}`: {cell(entry_points[name].get('short_description', ''))}\n\n"
                       f"{table(entry_points[name])}" for name in names)


def table(entry_point: dict) -> str:
    rows = ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
    for name, option in entry_point.get("options", {}).items():
        kind = option.get("type", "str")
        if kind == "list" and option.get("elements"):
            kind = f"list of {option['elements']}"
        if option.get("choices"):
            kind += " (" + ", ".join(str(c) for c in option["choices"]) + ")"
        rows.append(f"| `{name}` | {kind} | {default_of(option)} | {cell(option.get('description', ''))} |")
    return "\n".join(rows)


def render(readme: str, specs: dict, role: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"roles/{role}/README.md has no variable table markers ({BEGIN} ... {END})")
    head, rest = readme.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{tables(specs)}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    drifted = []
    for spec_path in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        role_dir = spec_path.parent.parent
        readme_path = role_dir / "README.md"
        if not readme_path.exists():
            drifted.append(f"{role_dir.name}: no README.md")
            continue
        readme = readme_path.read_text()
        wanted = render(readme, yaml.safe_load(spec_path.read_text()), role_dir.name)
        if wanted != readme:
            if args.check:
                drifted.append(f"{role_dir.name}: README variable table differs from meta/argument_specs.yml")
            else:
                readme_path.write_text(wanted)
                print(f"updated roles/{role_dir.name}/README.md")
    for line in drifted:
        print(f"role_docs: {line} (run: python scripts/role_docs.py)", file=sys.stderr)
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main())
