// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

interface IPayoutAssetToken {
    function maturityDate() external view returns (uint256);
    function redeem(address holder) external returns (uint256);
}

interface IPayoutPaymentToken {
    function balanceOf(address account) external view returns (uint256);
    function transfer(address to, uint256 amount) external returns (bool);
}

/// @title PayoutContract: holds payment tokens for one asset and pays its holders in batches.
/// @notice The on-chain half of "never pay twice": a holder is paid at most once per distribution
/// and a batch id executes at most once. Each holder's outcome is reported by an event.
contract PayoutContract {
    uint8 public constant REASON_INSUFFICIENT_BALANCE = 1;
    uint8 public constant REASON_ALREADY_PAID = 2;
    uint8 public constant REASON_TRANSFER_FAILED = 3;

    address public immutable assetToken;
    address public immutable paymentToken;
    address public admin;
    bool public paused;

    mapping(address => bool) public hasPayoutRole;
    mapping(bytes32 => bool) public batchExecuted;
    mapping(bytes32 => mapping(address => bool)) public isPaid;
    mapping(bytes32 => uint256) public paidHoldersCount;
    mapping(bytes32 => uint256) public paidTotal;

    event HolderPaid(bytes32 indexed distributionId, bytes32 indexed batchId, address indexed holder, uint256 amount);
    event HolderPaymentFailed(
        bytes32 indexed distributionId, bytes32 indexed batchId, address indexed holder, uint256 amount, uint8 reason
    );
    event PayoutCompleted(bytes32 indexed batchId, uint256 successfulPayments, uint256 failedPayments);
    event DistributionExecuted(bytes32 indexed distributionId, uint256 totalAmount, uint256 holdersCount);
    event PayoutRoleGranted(address indexed account);
    event PayoutRoleRevoked(address indexed account);
    event Paused(address account);
    event Unpaused(address account);

    modifier onlyAdmin() {
        require(msg.sender == admin, "only admin");
        _;
    }

    constructor(address assetToken_, address paymentToken_, address admin_) {
        require(assetToken_ != address(0) && paymentToken_ != address(0) && admin_ != address(0), "zero address");
        assetToken = assetToken_;
        paymentToken = paymentToken_;
        admin = admin_;
        hasPayoutRole[admin_] = true;
        emit PayoutRoleGranted(admin_);
    }

    function grantPayoutRole(address account) external onlyAdmin {
        hasPayoutRole[account] = true;
        emit PayoutRoleGranted(account);
    }

    function revokePayoutRole(address account) external onlyAdmin {
        hasPayoutRole[account] = false;
        emit PayoutRoleRevoked(account);
    }

    function pause() external onlyAdmin {
        paused = true;
        emit Paused(msg.sender);
    }

    function unpause() external onlyAdmin {
        paused = false;
        emit Unpaused(msg.sender);
    }

    function executeBatch(
        bytes32 distributionId,
        bytes32 batchId,
        uint256 distributionHoldersCount,
        address[] calldata holders,
        uint256[] calldata amounts
    ) external {
        _execute(distributionId, batchId, distributionHoldersCount, holders, amounts, false);
    }

    /// Pays principal and redeems (burns) each paid holder's bond tokens; only at maturity.
    function executeBondCashOut(
        bytes32 distributionId,
        bytes32 batchId,
        uint256 distributionHoldersCount,
        address[] calldata holders,
        uint256[] calldata amounts
    ) external {
        uint256 maturity = IPayoutAssetToken(assetToken).maturityDate();
        require(maturity != 0 && block.timestamp >= maturity, "bond not matured");
        _execute(distributionId, batchId, distributionHoldersCount, holders, amounts, true);
    }

    function _execute(
        bytes32 distributionId,
        bytes32 batchId,
        uint256 distributionHoldersCount,
        address[] calldata holders,
        uint256[] calldata amounts,
        bool redeem
    ) private {
        require(!paused, "paused");
        require(hasPayoutRole[msg.sender], "caller lacks PAYOUT_ROLE");
        require(holders.length == amounts.length, "lengths differ");
        require(!batchExecuted[batchId], "batch already executed");
        batchExecuted[batchId] = true;

        uint256 succeeded = 0;
        uint256 failed = 0;
        for (uint256 i = 0; i < holders.length; i++) {
            uint8 reason = _payHolder(distributionId, holders[i], amounts[i], redeem);
            if (reason == 0) {
                succeeded++;
                emit HolderPaid(distributionId, batchId, holders[i], amounts[i]);
            } else {
                failed++;
                emit HolderPaymentFailed(distributionId, batchId, holders[i], amounts[i], reason);
            }
        }
        emit PayoutCompleted(batchId, succeeded, failed);

        if (succeeded > 0 && paidHoldersCount[distributionId] == distributionHoldersCount) {
            emit DistributionExecuted(distributionId, paidTotal[distributionId], distributionHoldersCount);
        }
    }

    /// Returns 0 when paid, else the failure reason.
    function _payHolder(bytes32 distributionId, address holder, uint256 amount, bool redeem) private returns (uint8) {
        if (isPaid[distributionId][holder]) {
            return REASON_ALREADY_PAID;
        }
        if (IPayoutPaymentToken(paymentToken).balanceOf(address(this)) < amount) {
            return REASON_INSUFFICIENT_BALANCE;
        }
        // Effects before the external call: a re-entrant call sees the holder as paid.
        isPaid[distributionId][holder] = true;
        try IPayoutPaymentToken(paymentToken).transfer(holder, amount) returns (bool ok) {
            if (!ok) {
                isPaid[distributionId][holder] = false;
                return REASON_TRANSFER_FAILED;
            }
        } catch {
            isPaid[distributionId][holder] = false;
            return REASON_TRANSFER_FAILED;
        }
        if (redeem) {
            IPayoutAssetToken(assetToken).redeem(holder);
        }
        paidHoldersCount[distributionId] += 1;
        paidTotal[distributionId] += amount;
        return 0;
    }
}
