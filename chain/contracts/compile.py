"""Compile the reference contracts with the pinned npm `solc` (solc-js) and write their artifacts.

`python -m chain.contracts.compile` rewrites `chain/contracts/build/<Contract>.json`
(`{"abi": [...], "bytecode": "0x..."}`); `python -m chain.contracts.compile --check` exits 1 when the
committed artifacts differ from a fresh build. Settings are fixed (optimizer on, 200 runs, EVM
version, no metadata hash) so that the same sources always give the same bytes.

Every `*.sol` in the directory is a source; a source may import another (`import {ERC20Base} from
"./ERC20Base.sol";`), and an import that is not one of them is read through solc-js's import
callback, from inside that directory only. Only contracts with bytecode get an artifact, so an
abstract base or an interface has none.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parent
BUILD_DIR = CONTRACTS_DIR / "build"
BASE_DIR = CONTRACTS_DIR.parent.parent
SOLC_VERSION = "0.8.37"
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "none", "appendCBOR": False},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
}

# Reads standard JSON on stdin, writes solc's standard JSON output on stdout. Imports missing from
# the input are read from the sources directory (argv[3]); a path that leads outside it is refused.
_NODE_PROGRAM = """
const fs = require('fs');
const path = require('path');
const solc = require(process.argv[1]);
const root = fs.realpathSync(process.argv[3]);
const inside = (file) => file.startsWith(root + path.sep);
function findImports(name) {
  const wanted = path.resolve(root, name);
  if (!inside(wanted)) {
    return { error: 'outside ' + root };
  }
  if (!fs.existsSync(wanted) || !inside(fs.realpathSync(wanted))) {
    return { error: 'not found in ' + root };
  }
  return { contents: fs.readFileSync(wanted, 'utf8') };
}
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  if (!solc.version().startsWith(process.argv[2] + '+')) {
    console.error('solc ' + solc.version() + ' is not the pinned ' + process.argv[2]);
    process.exit(2);
  }
  process.stdout.write(solc.compile(input, { import: findImports }));
});
"""


class CompileError(RuntimeError):
    """solc reported errors, or could not be run."""


def source_files(directory: Path = CONTRACTS_DIR) -> list[Path]:
    return sorted(directory.glob("*.sol"))


def compile_contracts(directory: Path = CONTRACTS_DIR) -> dict[str, dict[str, Any]]:
    """Compile every `*.sol` in `directory` (the reference contracts by default; tests compile their
    own hostile contracts the same way), resolving imports inside `directory`; returns
    {contract name: {"abi", "bytecode"}} for the deployable contracts of those files."""
    node = shutil.which("node")
    solc_module = BASE_DIR / "node_modules" / "solc"
    if node is None or not solc_module.exists():
        raise CompileError("node and node_modules/solc are needed: run `make install`")
    standard_input = {
        "language": "Solidity",
        "sources": {path.name: {"content": path.read_text()} for path in source_files(directory)},
        "settings": SETTINGS,
    }
    result = subprocess.run(  # noqa: S603 - fixed program, our own arguments
        [node, "-e", _NODE_PROGRAM, str(solc_module), SOLC_VERSION, str(directory)],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise CompileError(result.stderr.strip() or f"solc exited with {result.returncode}")
    output = json.loads(result.stdout)
    errors = [error for error in output.get("errors", []) if error.get("severity") == "error"]
    if errors:
        raise CompileError("\n".join(error.get("formattedMessage", error.get("message", "")) for error in errors))
    artifacts: dict[str, dict[str, Any]] = {}
    for path in source_files(directory):
        for name, contract in output["contracts"][path.name].items():
            bytecode = contract["evm"]["bytecode"]["object"]
            if not bytecode:  # interfaces and abstract contracts
                continue
            artifacts[name] = {"abi": contract["abi"], "bytecode": "0x" + bytecode}
    return artifacts


def render(artifact: dict[str, Any]) -> str:
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


def write_artifacts(artifacts: dict[str, dict[str, Any]]) -> list[Path]:
    BUILD_DIR.mkdir(exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = BUILD_DIR / f"{name}.json"
        path.write_text(render(artifact))
        written.append(path)
    return written


def drifted(artifacts: dict[str, dict[str, Any]]) -> list[str]:
    """Names whose committed artifact differs from `artifacts` (or is missing or extra)."""
    committed = {path.stem for path in BUILD_DIR.glob("*.json")}
    names = set(artifacts) | committed
    return sorted(
        name
        for name in names
        if name not in artifacts
        or not (BUILD_DIR / f"{name}.json").exists()
        or (BUILD_DIR / f"{name}.json").read_text() != render(artifacts[name])
    )


def main(argv: list[str]) -> int:
    artifacts = compile_contracts()
    if "--check" in argv:
        changed = drifted(artifacts)
        if changed:
            sys.stderr.write(f"artifacts differ from the sources: {', '.join(changed)}\n")
            return 1
        return 0
    for path in write_artifacts(artifacts):
        sys.stdout.write(f"wrote {path.relative_to(BASE_DIR)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
