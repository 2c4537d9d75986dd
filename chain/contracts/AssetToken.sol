// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {ERC20Base} from "./ERC20Base.sol";

/// @title AssetToken: an ERC-20 security token (equity or bond) for local runs and tests.
/// @notice Enumerates its holders in pages, takes balance snapshots, records dividends and coupons,
/// and lets its payout contract redeem a bond holder's tokens at maturity. Every balance change
/// emits HolderBalanceUpdated so that an indexer can follow holders without replaying transfers.
contract AssetToken is ERC20Base {
    // 0 EQUITY, 1 BOND_VARIABLE_RATE, 2 BOND_FIXED_RATE, 3 BOND_KPI_LINKED_RATE, 4 BOND_SPT_RATE
    uint8 public constant EQUITY = 0;
    uint8 public constant MAX_ASSET_TYPE = 4;

    uint8 public immutable decimals;
    uint8 public immutable assetType;
    uint256 public immutable maturityDate; // unix seconds; 0 for equity
    address public owner;
    address public payoutContract;

    // Holders with a non-zero balance. holderIndex is 1-based (0 means "not a holder").
    address[] private _holders;
    mapping(address => uint256) private _holderIndex;

    // Snapshots: per account, the balance recorded at the first change after each snapshot.
    uint256 public currentSnapshotId;
    mapping(address => uint256[]) private _snapshotIds;
    mapping(address => uint256[]) private _snapshotBalances;

    struct CorporateAction {
        uint256 snapshotId;
        uint256 executionDate;
        uint256 amountPerToken; // payment-token base units per 10**decimals asset base units
    }

    uint256 public dividendCount;
    uint256 public couponCount;
    mapping(uint256 => CorporateAction) public dividends;
    mapping(uint256 => CorporateAction) public coupons;

    event HolderBalanceUpdated(address indexed holder, uint256 newBalance);
    event Snapshot(uint256 id);
    event DividendSet(uint256 indexed id, uint256 snapshotId, uint256 executionDate, uint256 amountPerToken);
    event CouponSet(uint256 indexed id, uint256 snapshotId, uint256 executionDate, uint256 amountPerToken);
    event PayoutContractSet(address payoutContract);
    event Redeemed(address indexed holder, uint256 amount);

    modifier onlyOwner() {
        require(msg.sender == owner, "only owner");
        _;
    }

    constructor(
        string memory name_,
        string memory symbol_,
        uint8 decimals_,
        uint8 assetType_,
        uint256 maturityDate_,
        address owner_
    ) ERC20Base(name_, symbol_) {
        require(assetType_ <= MAX_ASSET_TYPE, "unknown asset type");
        require((assetType_ == EQUITY) == (maturityDate_ == 0), "bonds need a maturity date, equity none");
        decimals = decimals_;
        assetType = assetType_;
        maturityDate = maturityDate_;
        owner = owner_;
    }

    // --- holders ------------------------------------------------------------------------------
    function holderCount() external view returns (uint256) {
        return _holders.length;
    }

    function holdersPage(uint256 offset, uint256 limit) external view returns (address[] memory page) {
        uint256 total = _holders.length;
        if (offset >= total) {
            return new address[](0);
        }
        uint256 end = offset + limit > total ? total : offset + limit;
        page = new address[](end - offset);
        for (uint256 i = offset; i < end; i++) {
            page[i - offset] = _holders[i];
        }
    }

    function balancesOf(address[] calldata holders) external view returns (uint256[] memory result) {
        result = new uint256[](holders.length);
        for (uint256 i = 0; i < holders.length; i++) {
            result[i] = balanceOf[holders[i]];
        }
    }

    // --- snapshots ----------------------------------------------------------------------------
    function snapshot() external onlyOwner returns (uint256) {
        return _snapshot();
    }

    function balanceOfAt(address holder, uint256 snapshotId) public view returns (uint256) {
        require(snapshotId > 0 && snapshotId <= currentSnapshotId, "unknown snapshot");
        uint256[] storage ids = _snapshotIds[holder];
        // First recorded snapshot id >= snapshotId holds the balance as it was at snapshotId.
        uint256 low = 0;
        uint256 high = ids.length;
        while (low < high) {
            uint256 mid = (low + high) / 2;
            if (ids[mid] < snapshotId) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        if (low == ids.length) {
            return balanceOf[holder];
        }
        return _snapshotBalances[holder][low];
    }

    function balancesOfAt(address[] calldata holders, uint256 snapshotId)
        external
        view
        returns (uint256[] memory result)
    {
        result = new uint256[](holders.length);
        for (uint256 i = 0; i < holders.length; i++) {
            result[i] = balanceOfAt(holders[i], snapshotId);
        }
    }

    // --- corporate actions --------------------------------------------------------------------
    function setDividend(uint256 executionDate, uint256 amountPerToken) external onlyOwner returns (uint256 id) {
        uint256 snapshotId = _snapshot();
        id = ++dividendCount;
        dividends[id] = CorporateAction(snapshotId, executionDate, amountPerToken);
        emit DividendSet(id, snapshotId, executionDate, amountPerToken);
    }

    function setCoupon(uint256 executionDate, uint256 amountPerToken) external onlyOwner returns (uint256 id) {
        require(assetType != EQUITY, "coupons are for bonds");
        uint256 snapshotId = _snapshot();
        id = ++couponCount;
        coupons[id] = CorporateAction(snapshotId, executionDate, amountPerToken);
        emit CouponSet(id, snapshotId, executionDate, amountPerToken);
    }

    // --- supply -------------------------------------------------------------------------------
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }

    function setPayoutContract(address payoutContract_) external onlyOwner {
        payoutContract = payoutContract_;
        emit PayoutContractSet(payoutContract_);
    }

    /// Burns exactly `amount` of the holder's tokens at maturity; only the payout contract may call
    /// it, and it pays for exactly these tokens in the same transaction.
    function redeem(address holder, uint256 amount) external {
        require(msg.sender == payoutContract && payoutContract != address(0), "only payout contract");
        require(assetType != EQUITY, "equity cannot be redeemed");
        require(block.timestamp >= maturityDate, "bond not matured");
        if (amount > 0) {
            _burn(holder, amount); // reverts "insufficient balance" beyond the holder's tokens
        }
        emit Redeemed(holder, amount);
    }

    // --- internals ----------------------------------------------------------------------------
    function _snapshot() private returns (uint256) {
        currentSnapshotId += 1;
        emit Snapshot(currentSnapshotId);
        return currentSnapshotId;
    }

    function _beforeBalanceChange(address account) internal override {
        uint256 current = currentSnapshotId;
        if (current == 0) {
            return;
        }
        uint256[] storage ids = _snapshotIds[account];
        if (ids.length == 0 || ids[ids.length - 1] < current) {
            ids.push(current);
            _snapshotBalances[account].push(balanceOf[account]);
        }
    }

    function _afterBalanceChange(address account) internal override {
        uint256 balance = balanceOf[account];
        uint256 index = _holderIndex[account];
        if (balance > 0 && index == 0) {
            _holders.push(account);
            _holderIndex[account] = _holders.length;
        } else if (balance == 0 && index != 0) {
            address last = _holders[_holders.length - 1];
            _holders[index - 1] = last;
            _holderIndex[last] = index;
            _holders.pop();
            _holderIndex[account] = 0;
        }
        emit HolderBalanceUpdated(account, balance);
    }
}
