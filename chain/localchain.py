"""A local chain for `make run` and tests: anvil from node_modules, plus the reference contracts.

`start_anvil()` runs the pinned anvil binary on a loopback port (stopped by pid);
`deploy_reference_contracts()` deploys a payment token, an equity token and a bond with holders,
one payout contract per asset, and funds the payout contracts. `write_chain_file()` /
`read_chain_file()` keep the deployed addresses in `$LOCAL_RUN_DIR/chain.json` for later set-up
steps (demo data). Nothing here is used in production.
"""

from __future__ import annotations

import datetime
import json
import platform
import subprocess
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from eth_account import Account

from chain.client import ChainClient
from chain.deploy import call_contract, deploy_contract, deploy_payout_contract
from chain.signers import LocalKeySigner
from config.localservices import LocalService, ServiceError, on_a_free_port, wait_for_port

BASE_DIR = Path(__file__).resolve().parent.parent

# anvil's well-known development accounts (funded on start): for the LOCAL chain only.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_ACCOUNTS = 10


def _dev_keys() -> tuple[str, ...]:
    Account.enable_unaudited_hdwallet_features()
    return tuple(
        "0x" + bytes(Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key).hex()
        for i in range(4)
    )


ANVIL_DEV_KEYS = _dev_keys()
ANVIL_CHAIN_ID = 31337
PAYMENT_DECIMALS = 6
ASSET_DECIMALS = 18
BOND_FIXED_RATE = 2


def anvil_binary() -> Path:
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = platform.system().lower()
    candidate = BASE_DIR / "node_modules" / "@foundry-rs" / f"anvil-{system}-{machine}" / "bin" / "anvil"
    if not candidate.exists():
        raise ServiceError(f"no anvil binary at {candidate}: run `make install`")
    return candidate


def start_anvil(
    port: int | None = None,
    block_time: float | None = None,
    *,
    no_mining: bool = False,
    chain_id: int = ANVIL_CHAIN_ID,
    state_file: Path | None = None,
) -> LocalService:
    """Start anvil on 127.0.0.1; automine unless `block_time` (seconds per block) or `no_mining`."""
    return on_a_free_port(
        lambda chosen: _start_anvil(
            chosen, block_time=block_time, no_mining=no_mining, chain_id=chain_id, state_file=state_file
        ),
        port,
    )


def _start_anvil(
    port: int, *, block_time: float | None, no_mining: bool, chain_id: int, state_file: Path | None
) -> LocalService:
    command = [
        str(anvil_binary()),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--chain-id", str(chain_id),
        "--accounts", str(ANVIL_ACCOUNTS),
        "--silent",
    ]  # fmt: skip
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    if no_mining:
        command.append("--no-mining")
    if state_file is not None:
        # loads the state if the file exists, dumps it on exit and every 30 s
        command += ["--state", str(state_file), "--state-interval", "30"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    service = LocalService("anvil", f"http://127.0.0.1:{port}", process)
    try:
        wait_for_port(port, process, 15, "anvil")
    except ServiceError:
        service.stop()
        raise
    return service


@dataclass(frozen=True)
class DeployedContracts:
    rpc_url: str
    chain_id: int
    deployer: str
    payment_token: str
    equity_token: str
    bond_token: str
    equity_payout: str
    bond_payout: str
    holders: tuple[str, ...]
    bond_maturity: int  # unix seconds


def holder_addresses(count: int) -> list[str]:
    """Deterministic holder addresses (keys derived from a fixed seed: local use only)."""
    return [Account.from_key((b"holder-%d" % i).rjust(32, b"\0")).address for i in range(1, count + 1)]


def deploy_reference_contracts(
    rpc_url: str,
    *,
    deployer_key: str = ANVIL_DEV_KEYS[0],
    holders: int = 5,
    payout_funding: int = 1_000_000 * 10**PAYMENT_DECIMALS,
    bond_maturity: int | None = None,
) -> DeployedContracts:
    """Deploy and fund the reference contracts; the deployer owns everything and may pay out."""
    client = ChainClient(rpc_url)
    deployer = LocalKeySigner(deployer_key)
    owner = deployer.address
    maturity = bond_maturity or int((datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(days=365)).timestamp())
    payment_token = deploy_contract(client, deployer, "PaymentToken", ["Local USD", "LUSD", owner])
    equity = deploy_contract(client, deployer, "AssetToken", ["Local Equity", "LEQ", ASSET_DECIMALS, 0, 0, owner])
    bond = deploy_contract(
        client, deployer, "AssetToken", ["Local Bond", "LBD", ASSET_DECIMALS, BOND_FIXED_RATE, maturity, owner]
    )
    equity_payout = deploy_payout_contract(client, deployer, equity, payment_token, hold_lane=False)
    bond_payout = deploy_payout_contract(client, deployer, bond, payment_token, hold_lane=False)
    addresses = holder_addresses(holders)
    for index, holder in enumerate(addresses, start=1):
        call_contract(client, deployer, "AssetToken", equity, "mint", [holder, index * 100 * 10**ASSET_DECIMALS])
        call_contract(client, deployer, "AssetToken", bond, "mint", [holder, index * 10 * 10**ASSET_DECIMALS])
    for payout in (equity_payout, bond_payout):
        call_contract(client, deployer, "PaymentToken", payment_token, "mint", [payout, payout_funding])
    return DeployedContracts(
        rpc_url=rpc_url,
        chain_id=client.chain_id(),
        deployer=owner,
        payment_token=payment_token,
        equity_token=equity,
        bond_token=bond,
        equity_payout=equity_payout,
        bond_payout=bond_payout,
        holders=tuple(addresses),
        bond_maturity=maturity,
    )


def write_chain_file(path: Path, contracts: DeployedContracts) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(contracts), indent=2) + "\n")


def read_chain_file(path: Path) -> DeployedContracts:
    """The addresses deployed by `manage.py localchain` (e.g. `$LOCAL_RUN_DIR/chain.json`)."""
    data = json.loads(path.read_text())
    data["holders"] = tuple(data["holders"])
    return DeployedContracts(**data)


def chain_file(run_dir: Path) -> Path:
    """Where `make run` keeps the local chain's deployed addresses (read it with read_chain_file)."""
    return run_dir / "chain.json"


def ensure_local_chain(
    run_dir: Path, *, port: int | None = None, block_time: float | None = None
) -> tuple[LocalService, DeployedContracts]:
    """Start anvil with its state kept in `run_dir`; deploy the reference contracts unless the kept
    state already has them. Writes `run_dir/chain.json`. The caller stops the service."""
    run_dir.mkdir(parents=True, exist_ok=True)
    service = start_anvil(port, block_time, state_file=run_dir / "anvil-state.json")
    try:
        path = chain_file(run_dir)
        contracts = read_chain_file(path) if path.exists() else None
        client = ChainClient(service.url)
        if contracts is None or not all(
            client.has_code(address)
            for address in (contracts.payment_token, contracts.equity_payout, contracts.bond_payout)
        ):
            contracts = deploy_reference_contracts(service.url)
        contracts = replace(contracts, rpc_url=service.url)
        write_chain_file(path, contracts)
    except Exception:
        service.stop()
        raise
    return service, contracts
